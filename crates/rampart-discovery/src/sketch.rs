//! Keyed sketches: a count-min sketch (staging) and a HyperLogLog (distinct values). Both hash
//! with SipHash under a key of their own, so that nobody who does not know it can craft values
//! that collide or inflate an estimate.

use std::hash::{BuildHasher, Hasher};

/// SipHash-2-4 under a 128-bit key.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Key(pub u64, pub u64);

impl Key {
    /// A random key (from the operating system, as `std`'s hash maps get theirs).
    pub fn random() -> Self {
        let s = std::collections::hash_map::RandomState::new();
        Self(s.hash_one(1u8), s.hash_one(2u8))
    }

    /// The keyed hash of `parts`.
    pub fn hash(&self, parts: &[&[u8]]) -> u64 {
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(self.0, self.1);
        for p in parts {
            h.write(p);
            h.write_u8(0xff);
        }
        h.finish()
    }
}

/// A count-min sketch of `u16` counters: 4 rows of 16,384 (128 KiB).
#[derive(Clone, Debug)]
pub struct CountMin {
    rows: Vec<u16>,
}

const WIDTH: usize = 16_384;
const DEPTH: usize = 4;

impl Default for CountMin {
    fn default() -> Self {
        Self {
            rows: vec![0; WIDTH * DEPTH],
        }
    }
}

impl CountMin {
    /// Counts `h` once and returns its estimate (never below the true count).
    pub fn add(&mut self, h: u64) -> u16 {
        let mut est = u16::MAX;
        for r in 0..DEPTH {
            let i = r * WIDTH + slot(h, r);
            self.rows[i] = self.rows[i].saturating_add(1);
            est = est.min(self.rows[i]);
        }
        est
    }

    /// Halves every counter: old one-off values fade, so a flood cannot saturate the sketch
    /// for good.
    pub fn decay(&mut self) {
        for c in &mut self.rows {
            *c >>= 1;
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.rows.len() * 2
    }
}

fn slot(h: u64, row: usize) -> usize {
    // Four 16-bit-ish slices of one 64-bit hash, mixed per row.
    let x =
        h.rotate_left((row as u32) * 16) ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(row as u64 + 1));
    (x as usize) % WIDTH
}

/// A HyperLogLog of 256 registers (linear counting below 640 values, where the thresholds
/// that matter here are).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hll {
    reg: Box<[u8; 256]>,
}

/// Saved as hex (an empty string when nothing was added).
impl serde::Serialize for Hll {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.reg.iter().all(|r| *r == 0) {
            return s.serialize_str("");
        }
        let mut hex = String::with_capacity(512);
        for r in self.reg.iter() {
            hex.push_str(&format!("{r:02x}"));
        }
        s.serialize_str(&hex)
    }
}

impl<'de> serde::Deserialize<'de> for Hll {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        let mut h = Hll::default();
        if hex.is_empty() {
            return Ok(h);
        }
        if hex.len() != 512 {
            return Err(serde::de::Error::custom("a HyperLogLog is 256 hex bytes"));
        }
        for (i, r) in h.reg.iter_mut().enumerate() {
            *r = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(h)
    }
}

impl Default for Hll {
    fn default() -> Self {
        Self {
            reg: Box::new([0; 256]),
        }
    }
}

impl Hll {
    /// Adds a value by its keyed hash.
    pub fn add(&mut self, h: u64) {
        let i = (h >> 56) as usize;
        let rank = ((h << 8) | 0x80).leading_zeros() as u8 + 1;
        if rank > self.reg[i] {
            self.reg[i] = rank;
        }
    }

    /// The estimated number of distinct values.
    pub fn estimate(&self) -> u64 {
        let m = 256.0f64;
        let zeros = self.reg.iter().filter(|r| **r == 0).count();
        let raw = 0.7182 * m * m
            / self
                .reg
                .iter()
                .map(|r| 2f64.powi(-i32::from(*r)))
                .sum::<f64>();
        let e = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        e.round() as u64
    }

    /// Adds what `other` saw.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.reg.iter_mut().zip(other.reg.iter()) {
            *a = (*a).max(*b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hll_is_close_and_merges() {
        let k = Key(1, 2);
        for n in [1u64, 10, 50, 256, 1000, 10_000] {
            let mut h = Hll::default();
            for i in 0..n {
                h.add(k.hash(&[&i.to_le_bytes()]));
            }
            let e = h.estimate() as f64;
            let err = (e - n as f64).abs() / n as f64;
            assert!(err < 0.15 || (e - n as f64).abs() <= 2.0, "{n}: {e}");
        }
        let (mut a, mut b, mut all) = (Hll::default(), Hll::default(), Hll::default());
        for i in 0..100u64 {
            let h = k.hash(&[&i.to_le_bytes()]);
            if i % 2 == 0 {
                a.add(h)
            } else {
                b.add(h)
            }
            all.add(h);
        }
        a.merge(&b);
        assert_eq!(a, all);
    }

    #[test]
    fn count_min_never_undercounts_and_decays() {
        let k = Key(3, 4);
        let mut c = CountMin::default();
        for i in 0..5_000u64 {
            let h = k.hash(&[&i.to_le_bytes()]);
            for n in 1..=3 {
                assert!(c.add(h) >= n);
            }
        }
        c.decay();
        assert_eq!(c.bytes(), 131_072);
    }

    #[test]
    fn keys_change_the_hash() {
        assert_ne!(Key(1, 2).hash(&[b"a"]), Key(1, 3).hash(&[b"a"]));
        assert_eq!(Key(1, 2).hash(&[b"a", b"b"]), Key(1, 2).hash(&[b"a", b"b"]));
        assert_ne!(Key(1, 2).hash(&[b"ab"]), Key(1, 2).hash(&[b"a", b"b"]));
    }
}
