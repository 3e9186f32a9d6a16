//! Content codings: what the scanner can read through (`gzip`, `deflate`, `br`), decoded
//! whole or as the body streams, with a cap on the decoded size (a small compressed body can
//! expand a thousandfold).

use std::io::Write;

use http::HeaderMap;

/// A body's content coding, as far as DLP is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// No coding (or `identity`).
    Identity,
    /// `gzip` or `x-gzip`.
    Gzip,
    /// `deflate` (zlib-wrapped as the RFC says, or raw as some servers send it).
    Deflate,
    /// `br`.
    Brotli,
}

/// The coding of a message from its `Content-Encoding`: `Err` with the coding's name when
/// it is one we cannot read (or several stacked).
pub fn coding(headers: &HeaderMap) -> Result<Coding, String> {
    let mut codings = Vec::new();
    for v in headers.get_all(http::header::CONTENT_ENCODING) {
        let v = v
            .to_str()
            .map_err(|_| "a non-ASCII content coding".to_owned())?;
        codings.extend(
            v.split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty() && c != "identity"),
        );
    }
    match codings.as_slice() {
        [] => Ok(Coding::Identity),
        [one] => match one.as_str() {
            "gzip" | "x-gzip" => Ok(Coding::Gzip),
            "deflate" => Ok(Coding::Deflate),
            "br" => Ok(Coding::Brotli),
            other => Err(other.to_owned()),
        },
        more => Err(more.join(", ")),
    }
}

/// The codings the scanner reads, for `Accept-Encoding`.
pub const READABLE: &[&str] = &["gzip", "x-gzip", "deflate", "br", "identity"];

/// Rewrites `Accept-Encoding` to the codings the scanner can read, so that a compliant
/// upstream never answers in one it cannot (`zstd`, `compress`). Returns true if it changed.
pub fn restrict_accept_encoding(headers: &mut HeaderMap) -> bool {
    let Some(v) = headers.get(http::header::ACCEPT_ENCODING) else {
        return false;
    };
    let Ok(text) = v.to_str() else {
        headers.remove(http::header::ACCEPT_ENCODING);
        return true;
    };
    let kept: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|item| {
            let name = item.split(';').next().unwrap_or("").trim();
            READABLE.iter().any(|r| r.eq_ignore_ascii_case(name))
        })
        .collect();
    let joined = kept.join(", ");
    if joined == text {
        return false;
    }
    if kept.is_empty() {
        headers.remove(http::header::ACCEPT_ENCODING);
    } else if let Ok(v) = http::HeaderValue::from_str(&joined) {
        headers.insert(http::header::ACCEPT_ENCODING, v);
    }
    true
}

/// Why a body could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The data is not valid for its coding.
    Corrupt(String),
    /// It decodes to more than the cap.
    TooLarge,
}

/// A decoder fed the body chunk by chunk.
pub struct Decoder {
    inner: Inner,
    produced: u64,
    max: u64,
    /// For `deflate`: the first bytes, until we know whether it is zlib-wrapped.
    sniff: Vec<u8>,
}

enum Inner {
    Identity,
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    Raw(flate2::write::DeflateDecoder<Vec<u8>>),
    DeflateUnknown,
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

fn corrupt(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Corrupt(e.to_string())
}

impl Decoder {
    /// A decoder for `coding` that refuses to produce more than `max` bytes.
    pub fn new(coding: Coding, max: u64) -> Self {
        let inner = match coding {
            Coding::Identity => Inner::Identity,
            Coding::Gzip => Inner::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            Coding::Deflate => Inner::DeflateUnknown,
            Coding::Brotli => Inner::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(Vec::new(), 4096),
            )),
        };
        Self {
            inner,
            produced: 0,
            max,
            sniff: Vec::new(),
        }
    }

    /// Decodes a chunk; returns the bytes it produced.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, DecodeError> {
        if let Inner::DeflateUnknown = self.inner {
            self.sniff.extend_from_slice(chunk);
            if self.sniff.len() < 2 {
                return Ok(Vec::new());
            }
            // A zlib header: compression method 8, and the header's check bits.
            let (cmf, flg) = (self.sniff[0], self.sniff[1]);
            let zlib = cmf & 0x0f == 8 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0;
            self.inner = if zlib {
                Inner::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
            } else {
                Inner::Raw(flate2::write::DeflateDecoder::new(Vec::new()))
            };
            let first = std::mem::take(&mut self.sniff);
            return self.feed(&first);
        }
        let out = match &mut self.inner {
            Inner::Identity => chunk.to_vec(),
            Inner::DeflateUnknown => Vec::new(),
            Inner::Gzip(d) => {
                d.write_all(chunk).map_err(corrupt)?;
                std::mem::take(d.get_mut())
            }
            Inner::Zlib(d) => {
                d.write_all(chunk).map_err(corrupt)?;
                std::mem::take(d.get_mut())
            }
            Inner::Raw(d) => {
                d.write_all(chunk).map_err(corrupt)?;
                std::mem::take(d.get_mut())
            }
            Inner::Brotli(d) => {
                d.write_all(chunk).map_err(corrupt)?;
                std::mem::take(d.get_mut())
            }
        };
        self.count(out)
    }

    /// The end of the body: the last bytes, or an error if the data stopped mid-stream.
    pub fn finish(&mut self) -> Result<Vec<u8>, DecodeError> {
        if let Inner::DeflateUnknown = self.inner {
            if self.sniff.is_empty() {
                return Ok(Vec::new());
            }
            return Err(DecodeError::Corrupt("a truncated deflate body".into()));
        }
        let out = match &mut self.inner {
            Inner::Identity | Inner::DeflateUnknown => Vec::new(),
            Inner::Gzip(d) => {
                d.try_finish().map_err(corrupt)?;
                std::mem::take(d.get_mut())
            }
            Inner::Zlib(d) => {
                d.try_finish().map_err(corrupt)?;
                std::mem::take(d.get_mut())
            }
            Inner::Raw(d) => {
                d.try_finish().map_err(corrupt)?;
                std::mem::take(d.get_mut())
            }
            Inner::Brotli(d) => {
                d.flush().map_err(corrupt)?;
                d.close().map_err(corrupt)?;
                std::mem::take(d.get_mut())
            }
        };
        self.count(out)
    }

    fn count(&mut self, out: Vec<u8>) -> Result<Vec<u8>, DecodeError> {
        self.produced += out.len() as u64;
        if self.produced > self.max {
            return Err(DecodeError::TooLarge);
        }
        Ok(out)
    }
}

/// Decodes a whole body.
pub fn decode_all(coding: Coding, body: &[u8], max: u64) -> Result<Vec<u8>, DecodeError> {
    let mut d = Decoder::new(coding, max);
    let mut out = d.feed(body)?;
    out.extend(d.finish()?);
    Ok(out)
}

/// The fuzz target's body (`fuzz/fuzz_targets/dlp_decode.rs`, replayed on stable by
/// `tests/fuzz_corpus.rs`): the first byte picks the coding and the chunk size, the rest is a
/// body. Decoding in chunks must give what decoding whole gives (the same bytes, or a refusal
/// both ways), never more than the cap.
#[doc(hidden)]
#[allow(clippy::panic)]
pub fn fuzz_decode(data: &[u8]) {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let coding = match head % 4 {
        0 => Coding::Identity,
        1 => Coding::Gzip,
        2 => Coding::Deflate,
        _ => Coding::Brotli,
    };
    let chunk = 1 + usize::from(head / 4);
    let max = 1 << 16;
    let whole = decode_all(coding, body, max);
    let mut d = Decoder::new(coding, max);
    let mut out = Vec::new();
    let mut failed = None;
    for c in body.chunks(chunk) {
        match d.feed(c) {
            Ok(p) => out.extend(p),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if failed.is_none() {
        match d.finish() {
            Ok(p) => out.extend(p),
            Err(e) => failed = Some(e),
        }
    }
    assert!(out.len() as u64 <= max, "the cap was passed");
    match (whole, failed) {
        (Ok(w), None) => assert_eq!(w, out, "chunked decoding differs from whole"),
        // A body both too large and corrupt may be caught by either check first, depending
        // on where the chunks end: any refusal agrees with any other.
        (Err(_), Some(_)) => {}
        (w, f) => panic!("whole: {w:?}, chunked: {f:?}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn codings_decode_whole_and_in_chunks_with_a_cap() {
        let data = b"{\"card\":\"4111 1111 1111 1111\"}".repeat(100);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&data).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&data).unwrap();
        let raw = raw.finish().unwrap();
        for (coding, enc) in [
            (Coding::Gzip, gzip(&data)),
            (Coding::Deflate, zlib),
            (Coding::Deflate, raw),
        ] {
            assert_eq!(decode_all(coding, &enc, 1 << 20).unwrap(), data);
            let mut d = Decoder::new(coding, 1 << 20);
            let mut out = Vec::new();
            for c in enc.chunks(7) {
                out.extend(d.feed(c).unwrap());
            }
            out.extend(d.finish().unwrap());
            assert_eq!(out, data);
            assert_eq!(
                decode_all(coding, &enc, 100),
                Err(DecodeError::TooLarge),
                "the cap holds"
            );
        }
        assert!(matches!(
            decode_all(Coding::Gzip, b"not gzip at all", 1 << 20),
            Err(DecodeError::Corrupt(_))
        ));
        let g = gzip(&data);
        assert!(
            decode_all(Coding::Gzip, &g[..g.len() / 2], 1 << 20).is_err(),
            "a truncated body is an error"
        );
    }

    #[test]
    fn content_encoding_and_accept_encoding() {
        let mut h = HeaderMap::new();
        assert_eq!(coding(&h), Ok(Coding::Identity));
        h.insert("content-encoding", "GZIP".parse().unwrap());
        assert_eq!(coding(&h), Ok(Coding::Gzip));
        h.insert("content-encoding", "zstd".parse().unwrap());
        assert_eq!(coding(&h), Err("zstd".into()));
        h.insert("content-encoding", "gzip, br".parse().unwrap());
        assert!(coding(&h).is_err(), "stacked codings are not read");
        let mut h = HeaderMap::new();
        h.insert("accept-encoding", "zstd, br;q=0.9, gzip".parse().unwrap());
        assert!(restrict_accept_encoding(&mut h));
        assert_eq!(h["accept-encoding"], "br;q=0.9, gzip");
        h.insert("accept-encoding", "zstd".parse().unwrap());
        assert!(restrict_accept_encoding(&mut h));
        assert!(h.get("accept-encoding").is_none());
    }
}
