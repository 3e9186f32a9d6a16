//! Pseudonyms: a found value replaced by a made-up value of the same kind and the same length,
//! so that what reads the data afterwards still sees an e-mail, an IP address or a card number
//! (a JSON Schema `format`, the DLP scanner itself) while the real value is gone.
//!
//! The caller gives the randomness (the traffic recorder derives it from a keyed HMAC of the
//! value, so equal values get equal pseudonyms) and checks the result with the scanner: a
//! pseudonym that no longer passes the detector's validation is tried again or masked.

use crate::scan::Detector;

/// A same-length stand-in for `orig`, a match of `detector`; `None` for kinds that get no
/// pseudonym (secrets, keys, tokens: they are masked).
pub fn pseudonym(orig: &[u8], detector: Detector, next: &mut dyn FnMut() -> u8) -> Option<Vec<u8>> {
    let mut out = orig.to_vec();
    match detector {
        Detector::PaymentCard => {
            // The first six digits (the issuer, which PCI DSS allows to show) stay, so the
            // network stays; the rest is made up and the last digit fixes the Luhn sum.
            let pos: Vec<usize> = (0..out.len())
                .filter(|&i| out[i].is_ascii_digit())
                .collect();
            if pos.len() < 12 {
                return None;
            }
            for &i in &pos[6..pos.len() - 1] {
                out[i] = digit(next);
            }
            let digits: Vec<u8> = pos.iter().map(|&i| out[i]).collect();
            let last = pos[pos.len() - 1];
            out[last] = luhn_check_digit(&digits[..digits.len() - 1]);
        }
        Detector::Iban => {
            let pos: Vec<usize> = (0..out.len()).filter(|&i| out[i] != b' ').collect();
            if pos.len() < 5 {
                return None;
            }
            for &i in &pos[4..] {
                out[i] = match out[i] {
                    b'0'..=b'9' => digit(next),
                    b'A'..=b'Z' => b'A' + next() % 26,
                    b'a'..=b'z' => b'a' + next() % 26,
                    b => b,
                };
            }
            let chars: Vec<u8> = pos.iter().map(|&i| out[i].to_ascii_uppercase()).collect();
            let check = iban_check_digits(&chars)?;
            out[pos[2]] = check[0];
            out[pos[3]] = check[1];
        }
        Detector::UsSsn => {
            let pos: Vec<usize> = (0..out.len())
                .filter(|&i| out[i].is_ascii_digit())
                .collect();
            if pos.len() != 9 {
                return None;
            }
            // Area 100 to 665, group 01 to 99, serial 0001 to 9999: all issued forms.
            let area = 100 + (u32::from(next()) << 8 | u32::from(next())) % 566;
            let group = 1 + u32::from(next()) % 99;
            let serial = 1 + (u32::from(next()) << 8 | u32::from(next())) % 9999;
            let s = format!("{area:03}{group:02}{serial:04}");
            for (k, &i) in pos.iter().enumerate() {
                out[i] = s.as_bytes()[k];
            }
        }
        Detector::Email => {
            let at = out.iter().rposition(|b| *b == b'@')?;
            let tld = out.iter().rposition(|b| *b == b'.').filter(|&d| d > at)?;
            for (i, b) in out.iter_mut().enumerate() {
                if i == at || (i > tld) || !b.is_ascii_alphanumeric() {
                    continue;
                }
                *b = b'a' + next() % 26;
            }
        }
        Detector::Phone => {
            // The first three digits stay (the country or area code); each later digit is
            // made up, from 2 to 9 where a group starts (national plans refuse 0 and 1 there).
            let mut seen = 0;
            let mut prev_digit = false;
            for b in &mut out {
                if b.is_ascii_digit() {
                    seen += 1;
                    if seen > 3 {
                        *b = if prev_digit {
                            digit(next)
                        } else {
                            b'2' + next() % 8
                        };
                    }
                    prev_digit = true;
                } else {
                    prev_digit = false;
                }
            }
        }
        Detector::IpAddress => {
            let text = std::str::from_utf8(orig).ok()?;
            let (addr, suffix) = match text.find(['/', '%']) {
                Some(i) => text.split_at(i),
                None => (text, ""),
            };
            let made = if addr.contains(':') {
                // IPv6: every hex digit made up, in the same case; an embedded IPv4 tail too.
                addr.bytes()
                    .map(|b| match b {
                        b'0'..=b'9' if !addr.contains('.') => hex(next, false),
                        b'a'..=b'f' => hex(next, false),
                        b'A'..=b'F' => hex(next, true),
                        b => b,
                    })
                    .collect::<Vec<u8>>()
            } else {
                // IPv4: each octet keeps its length: 1 digit any, 2 digits 10 to 99, 3 digits
                // 100 to 199.
                let mut v = Vec::with_capacity(addr.len());
                for (k, octet) in addr.split('.').enumerate() {
                    if k > 0 {
                        v.push(b'.');
                    }
                    match octet.len() {
                        1 => v.push(digit(next)),
                        2 => {
                            v.push(b'1' + next() % 9);
                            v.push(digit(next));
                        }
                        3 => {
                            v.push(b'1');
                            v.push(digit(next));
                            v.push(digit(next));
                        }
                        _ => return None,
                    }
                }
                v
            };
            out = made;
            out.extend_from_slice(suffix.as_bytes());
            if out.len() != orig.len() {
                return None;
            }
        }
        _ => return None,
    }
    Some(out)
}

fn digit(next: &mut dyn FnMut() -> u8) -> u8 {
    b'0' + next() % 10
}

fn hex(next: &mut dyn FnMut() -> u8, upper: bool) -> u8 {
    let d = next() % 16;
    match (d, upper) {
        (0..=9, _) => b'0' + d,
        (_, false) => b'a' + d - 10,
        (_, true) => b'A' + d - 10,
    }
}

/// The digit that makes `digits` followed by it pass the Luhn check.
fn luhn_check_digit(digits: &[u8]) -> u8 {
    let mut all = digits.to_vec();
    all.push(b'0');
    for d in b'0'..=b'9' {
        if let Some(last) = all.last_mut() {
            *last = d;
        }
        if crate::validate::luhn_valid(&all) {
            return d;
        }
    }
    b'0'
}

/// The two check digits of an IBAN (`chars` without spaces, upper case).
fn iban_check_digits(chars: &[u8]) -> Option<[u8; 2]> {
    let mut rem = 0u32;
    let rearranged = chars[4..].iter().chain(&chars[..2]).chain(b"00".iter());
    for &c in rearranged {
        match c {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return None,
        }
    }
    let check = 98 - rem;
    Some([b'0' + (check / 10) as u8, b'0' + (check % 10) as u8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Scanner;

    /// Each pseudonym keeps the length and is found again by the scanner as the same kind.
    #[test]
    fn pseudonyms_keep_kind_and_length() {
        let scanner = Scanner::all();
        let cases: &[(&str, Detector)] = &[
            ("4111 1111 1111 1111", Detector::PaymentCard),
            ("5500-0000-0000-0004", Detector::PaymentCard),
            ("378282246310005", Detector::PaymentCard),
            ("DE89 3704 0044 0532 0130 00", Detector::Iban),
            ("GB82WEST12345698765432", Detector::Iban),
            ("536-90-4399", Detector::UsSsn),
            ("ada.lovelace@example.com", Detector::Email),
            ("+44 20 7946 0958", Detector::Phone),
            ("(415) 555-2671", Detector::Phone),
            ("203.0.113.42", Detector::IpAddress),
            ("2001:db8:85a3::8a2e:370:7334", Detector::IpAddress),
        ];
        let mut seed = 7u8;
        for (text, det) in cases {
            let doc = |v: &[u8]| {
                let mut d = b"{\"v\": \"".to_vec();
                d.extend_from_slice(v);
                d.extend_from_slice(b"\"}");
                d
            };
            let found = |v: &[u8]| {
                scanner
                    .scan(&doc(v), 0)
                    .iter()
                    .any(|m| m.detector == *det && m.end - m.start == v.len() as u64)
            };
            assert!(found(text.as_bytes()), "{text} is found to begin with");
            let mut ok = 0;
            for _ in 0..20 {
                let mut next = || {
                    seed = seed.wrapping_mul(31).wrapping_add(17);
                    seed
                };
                let p = pseudonym(text.as_bytes(), *det, &mut next).unwrap();
                assert_eq!(p.len(), text.len(), "{text}");
                assert_ne!(p, text.as_bytes(), "{text}");
                if found(&p) {
                    ok += 1;
                }
            }
            // The recorder retries; most tries must already pass.
            assert!(ok >= 15, "{text}: {ok} of 20 found again");
        }
        assert!(pseudonym(b"AKIAZ7QRS2LMN4XPQ3TD", Detector::AwsAccessKey, &mut || 1).is_none());
    }

    #[test]
    fn check_digits() {
        assert_eq!(luhn_check_digit(b"411111111111111"), b'1');
        assert_eq!(
            &iban_check_digits(b"GB00WEST12345698765432").unwrap(),
            b"82"
        );
    }
}
