//! Validators: what turns a pattern's candidate into a finding.

/// A payment card network, by its issuer identification number and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardNetwork {
    /// Visa: 4, 13, 16 or 19 digits.
    Visa,
    /// Mastercard: 51–55 and 2221–2720, 16 digits.
    Mastercard,
    /// American Express: 34 and 37, 15 digits.
    Amex,
    /// Discover: 6011, 644–649, 65 and 622126–622925, 16 to 19 digits.
    Discover,
    /// JCB: 3528–3589, 16 to 19 digits.
    Jcb,
    /// Diners Club: 300–305, 3095, 36, 38 and 39, 14 to 19 digits.
    Diners,
    /// UnionPay: 62 (outside Discover's range) and 81, 16 to 19 digits.
    UnionPay,
    /// Maestro: 50, 56–58, 6 (outside the others), 12 to 19 digits.
    Maestro,
    /// UATP (airline cards): 1, 15 digits.
    Uatp,
}

impl CardNetwork {
    /// The name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Discover => "discover",
            Self::Jcb => "jcb",
            Self::Diners => "diners",
            Self::UnionPay => "unionpay",
            Self::Maestro => "maestro",
            Self::Uatp => "uatp",
        }
    }
}

/// The Luhn checksum over ASCII digits (anything else: false).
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.len() < 2 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn prefix(digits: &[u8], n: usize) -> u32 {
    digits
        .iter()
        .take(n)
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
}

/// The network of a card number (digits only), if its prefix and length are a real card's and
/// its Luhn checksum holds. All-same-digit numbers (test patterns) are refused.
pub fn card_network(digits: &[u8]) -> Option<CardNetwork> {
    let len = digits.len();
    if !(12..=19).contains(&len) || !luhn_valid(digits) {
        return None;
    }
    if digits.iter().all(|d| *d == digits[0]) {
        return None;
    }
    let p1 = prefix(digits, 1);
    let p2 = prefix(digits, 2);
    let p3 = prefix(digits, 3);
    let p4 = prefix(digits, 4);
    let p6 = prefix(digits, 6);
    let network = if p1 == 4 {
        CardNetwork::Visa
    } else if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) {
        CardNetwork::Mastercard
    } else if p2 == 34 || p2 == 37 {
        CardNetwork::Amex
    } else if p4 == 6011
        || (644..=649).contains(&p3)
        || p2 == 65
        || (622_126..=622_925).contains(&p6)
    {
        CardNetwork::Discover
    } else if (3528..=3589).contains(&p4) {
        CardNetwork::Jcb
    } else if (300..=305).contains(&p3) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39 {
        CardNetwork::Diners
    } else if p2 == 62 || p2 == 81 {
        CardNetwork::UnionPay
    } else if p2 == 50 || (56..=58).contains(&p2) || p1 == 6 {
        CardNetwork::Maestro
    } else if p1 == 1 {
        CardNetwork::Uatp
    } else {
        return None;
    };
    let ok = match network {
        CardNetwork::Visa => matches!(len, 13 | 16 | 19),
        CardNetwork::Mastercard => len == 16,
        CardNetwork::Amex => len == 15,
        CardNetwork::Discover | CardNetwork::Jcb | CardNetwork::UnionPay => {
            (16..=19).contains(&len)
        }
        CardNetwork::Diners => (14..=19).contains(&len),
        CardNetwork::Maestro => (12..=19).contains(&len),
        CardNetwork::Uatp => len == 15,
    };
    ok.then_some(network)
}

/// IBAN lengths by country (the SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// The length of an IBAN of this country code (either case), if the country issues IBANs.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    let c = [
        country.first()?.to_ascii_uppercase(),
        country.get(1)?.to_ascii_uppercase(),
    ];
    IBAN_LENGTHS
        .iter()
        .find(|(k, _)| **k == c)
        .map(|(_, len)| *len)
}

/// An IBAN, written whole or in the print format (groups of four separated by one space), all
/// upper case or all lower case: a known country, its length, digits for the check, only
/// letters and digits in the account part, and mod 97 == 1.
pub fn iban_valid(text: &[u8]) -> bool {
    if text.contains(&b' ') {
        // Print format: every group but the last has four characters.
        let groups: Vec<&[u8]> = text.split(|b| *b == b' ').collect();
        let last = groups.len() - 1;
        if groups
            .iter()
            .enumerate()
            .any(|(i, g)| g.is_empty() || g.len() > 4 || (i < last && g.len() != 4))
        {
            return false;
        }
    }
    let upper = text.iter().any(u8::is_ascii_uppercase);
    let lower = text.iter().any(u8::is_ascii_lowercase);
    if upper && lower {
        return false;
    }
    let mut s: Vec<u8> = Vec::with_capacity(34);
    for &b in text {
        match b {
            b' ' => {}
            b'0'..=b'9' | b'A'..=b'Z' => s.push(b),
            b'a'..=b'z' => s.push(b.to_ascii_uppercase()),
            _ => return false,
        }
        if s.len() > 34 {
            return false;
        }
    }
    if s.len() < 15 {
        return false;
    }
    let Some((_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| c[..] == s[..2]) else {
        return false;
    };
    if s.len() != *len
        || !s[2..4].iter().all(u8::is_ascii_digit)
        || !s[..2].iter().all(u8::is_ascii_uppercase)
    {
        return false;
    }
    // Move the first four characters to the end, letters as 10..35, remainder mod 97.
    let mut rem = 0u32;
    for &b in s[4..].iter().chain(&s[..4]) {
        if b.is_ascii_digit() {
            rem = (rem * 10 + u32::from(b - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(b - b'A') + 10) % 97;
        }
    }
    rem == 1
}

/// A US social security number (nine digits, separators removed): no area 000, 666 or
/// 900–999, no group 00, no serial 0000, and not one of the numbers published as examples
/// (078-05-1120, 219-09-9999, 123-45-6789) nor a run of one digit.
pub fn us_ssn_valid(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let area = prefix(digits, 3);
    let group = prefix(&digits[3..], 2);
    let serial = prefix(&digits[5..], 4);
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return false;
    }
    if matches!(digits, b"078051120" | b"219099999" | b"123456789") {
        return false;
    }
    !digits.iter().all(|d| *d == digits[0])
}

/// Shannon entropy of the bytes, in bits per byte.
pub fn shannon_entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// A sample for an event: the first and last four characters kept, the rest starred
/// (`4111********1111`); a value of eight characters or fewer is starred whole.
pub fn redact_sample(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < 4 || i >= n - 4 { *c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards() {
        for (n, net) in [
            ("4111111111111111", CardNetwork::Visa),
            ("4012888888881881", CardNetwork::Visa),
            ("5555555555554444", CardNetwork::Mastercard),
            ("2223003122003222", CardNetwork::Mastercard),
            ("378282246310005", CardNetwork::Amex),
            ("6011111111111117", CardNetwork::Discover),
            ("3530111333300000", CardNetwork::Jcb),
            ("30569309025904", CardNetwork::Diners),
            ("6200000000000005", CardNetwork::UnionPay),
        ] {
            assert_eq!(card_network(n.as_bytes()), Some(net), "{n}");
        }
        for n in [
            "4111111111111112",
            "1234567812345678",
            "0000000000000000",
            "4111111111111",
            "37828224631000",
        ] {
            assert_eq!(card_network(n.as_bytes()), None, "{n}");
        }
    }

    #[test]
    fn ibans_ssns_entropy_samples() {
        assert!(iban_valid(b"GB82 WEST 1234 5698 7654 32"));
        assert!(iban_valid(b"de89370400440532013000"));
        assert!(!iban_valid(b"GB82 WEST 1234 5698 7654 33"));
        assert!(!iban_valid(b"GB82 WEST 1234 5698 7654"));
        assert!(!iban_valid(b"XX82 WEST 1234 5698 7654 32"));
        assert!(
            !iban_valid(b"G B82 WEST 1234 5698 7654 32"),
            "a space inside a group"
        );
        assert!(!iban_valid(b"GB82 West 1234 5698 7654 32"), "mixed case");
        assert!(us_ssn_valid(b"536225469"));
        for bad in [
            "000225469",
            "666225469",
            "936225469",
            "536005469",
            "536220000",
            "078051120",
            "111111111",
        ] {
            assert!(!us_ssn_valid(bad.as_bytes()), "{bad}");
        }
        assert!(shannon_entropy(b"aaaaaaaa") < 0.01);
        assert!(shannon_entropy(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") > 4.0);
        assert_eq!(redact_sample("4111111111111111"), "4111********1111");
        assert_eq!(redact_sample("secret"), "******");
    }
}
