//! Recorded traffic for Rampart: what `rampart replay` reads and the gateway's recorder writes.
//!
//! - [`record`]: Rampart's own JSON-lines format, `rampart-traffic/1` (one exchange per line:
//!   ordered headers, raw bodies with their content-coding, the client's address and TLS
//!   identity, what the gateway decided). Its JSON Schema is `docs/traffic.schema.json`.
//! - [`read`]: readers for that format and for HAR 1.2 (browsers, mitmproxy, Charles,
//!   Fiddler), both turned into [`Record`]s, with every entry that could not be used listed
//!   with its reason instead of dropped silently.
//! - [`redact`]: secrets replaced by keyed HMACs (equal tokens stay equal, so sessions survive
//!   redaction; the secret is gone).
//! - [`mod@write`]: the recorder's writer: one header line per file, rotation by size and count,
//!   files readable by their owner only.
//!
//! No HTTP server and no clock in here: the gateway and the `rampart` binary bring those.

pub mod read;
pub mod record;
pub mod redact;
pub mod write;

pub use read::{read_bytes, read_file, Entry, Format, ReadError, Skipped, Traffic};
pub use record::{Body, FileHeader, Record, VERSION};
pub use redact::{RedactPolicy, Redactor};
pub use write::{RotatingWriter, WriterConfig};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp.
pub fn parse_ts_ms(s: &str) -> Result<u64, String> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|e| format!("{s:?}: {e}"))?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).map_err(|_| format!("{s:?}: before 1970"))
}

/// An RFC 3339 timestamp (UTC, microseconds) of a time in microseconds since the epoch.
pub fn format_ts_us(us: u64) -> String {
    let nanos = i128::from(us) * 1_000;
    let t = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    // `2026-12-04T21:50:32.123456Z`: fixed width, sorts as text.
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Lower-case hex of SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut s = String::with_capacity(64);
    for b in d.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// For the fuzz targets: every reader on arbitrary bytes, as a file of each format.
#[doc(hidden)]
pub mod fuzzing {
    /// Reads `data` as HAR, as JSON lines and by sniffing; none may panic.
    pub fn read(data: &[u8]) {
        for f in [
            super::Format::Har,
            super::Format::Jsonl,
            super::Format::Auto,
        ] {
            if let Ok(t) = super::read_bytes(data, "fuzz", f) {
                for e in &t.entries {
                    let _ = e.record.req.body.as_ref().map(super::Body::bytes);
                    let _ = e
                        .record
                        .resp
                        .as_ref()
                        .and_then(|r| r.body.as_ref())
                        .map(super::Body::bytes);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let us = 1_800_000_000_123_456;
        let s = format_ts_us(us);
        assert_eq!(s, "2027-01-15T08:00:00.123456Z");
        assert_eq!(parse_ts_ms(&s).unwrap(), us / 1000);
        assert_eq!(
            parse_ts_ms("2027-01-15T10:00:00.123+02:00").unwrap(),
            1_800_000_000_123
        );
        assert!(parse_ts_ms("yesterday").is_err());
        assert!(parse_ts_ms("1969-12-31T23:59:59Z").is_err());
    }
}
