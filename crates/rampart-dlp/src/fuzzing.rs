//! Entry points for the fuzz targets (`fuzz/`), also replayed on stable by
//! `tests/fuzz_corpus.rs`. They assert the scanner's invariants, not only "no panic".

use std::sync::LazyLock;

use crate::{Scanner, Stream};

static SCANNER: LazyLock<Scanner> = LazyLock::new(Scanner::all);

/// Scans the input whole and streamed in chunks whose sizes come from its first bytes; the
/// matches must be the same, in bounds, and masking must keep the length and touch only them.
#[allow(clippy::panic)]
pub fn scan(data: &[u8]) {
    let s = &*SCANNER;
    let whole = s.scan(data, 0);
    for m in &whole {
        assert!(m.start < m.end && m.end as usize <= data.len(), "{m:?}");
    }
    let sizes: Vec<usize> = data
        .iter()
        .take(8)
        .map(|b| 1 + usize::from(*b) * 7)
        .collect();
    for mask in [false, true] {
        let mut st = Stream::new(s);
        let (mut found, mut out) = (Vec::new(), Vec::new());
        let mut i = 0;
        let mut k = 0;
        while i < data.len() {
            let n = sizes.get(k % sizes.len().max(1)).copied().unwrap_or(64);
            let end = (i + n).min(data.len());
            let (m, bytes) = st.feed(&data[i..end], mask);
            found.extend(m);
            out.extend(bytes);
            i = end;
            k += 1;
        }
        let (m, bytes) = st.finish(mask);
        found.extend(m);
        out.extend(bytes);
        assert_eq!(
            found, whole,
            "streamed matches differ from the whole body's"
        );
        assert_eq!(out.len(), data.len(), "the stream lost or added bytes");
        if !mask {
            assert_eq!(out, data, "unmasked bytes changed");
        } else {
            let mut expected = data.to_vec();
            for m in &whole {
                crate::mask(&mut expected, m.start as usize, m.end as usize, m.detector);
            }
            assert_eq!(out, expected, "masking touched other bytes");
        }
    }
}
