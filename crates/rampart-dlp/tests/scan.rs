//! The scanner: what each detector finds and misses, and the streaming properties (any
//! chunking finds exactly the matches of the whole body; masking keeps the length; memory
//! stays bounded however long the body).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_dlp::{Detector, Scanner, Stream};

fn found(text: &str) -> Vec<(Detector, String)> {
    let s = Scanner::all();
    s.scan(text.as_bytes(), 0)
        .into_iter()
        .map(|m| {
            (
                m.detector,
                text[m.start as usize..m.end as usize].to_owned(),
            )
        })
        .collect()
}

#[test]
fn detectors_find_what_they_should_and_not_the_rest() {
    use Detector::*;
    let cases: Vec<(&str, Vec<(Detector, &str)>)> = vec![
        (r#"{"card":"4111 1111 1111 1111"}"#, vec![(PaymentCard, "4111 1111 1111 1111")]),
        ("pay 4012-8888-8888-1881 now", vec![(PaymentCard, "4012-8888-8888-1881")]),
        ("amex 378282246310005.", vec![(PaymentCard, "378282246310005")]),
        ("not a card: 4111111111111112, nor 1234567812345678, nor 4111 1111-1111 1111", vec![]),
        ("order 41111111111111110 (17 digits)", vec![]),
        ("version 4.111111111111111", vec![]),
        ("ssn 536-22-5469 and 536225469", vec![(UsSsn, "536-22-5469")]),
        ("bad ssn 000-22-5469, 666-22-5469, 078-05-1120", vec![]),
        ("iban GB82 WEST 1234 5698 7654 32 ok", vec![(Iban, "GB82 WEST 1234 5698 7654 32")]),
        ("iban DE89370400440532013000", vec![(Iban, "DE89370400440532013000")]),
        ("no iban GB82 WEST 1234 5698 7654 33", vec![]),
        ("mail ann.lee+x@mail.example.com.", vec![(Email, "ann.lee+x@mail.example.com")]),
        ("not mail: a@b, @example.com, ann@localhost", vec![]),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpQIBAAKCAQEAn6/O8li+SX4m98LLYt/PKSzEmQ++ZBD7Loh9P13f4yQ92EF3\nyxR5\n-----END RSA PRIVATE KEY----- tail",
            vec![(PrivateKey, "-----BEGIN RSA PRIVATE KEY-----\nMIIEpQIBAAKCAQEAn6/O8li+SX4m98LLYt/PKSzEmQ++ZBD7Loh9P13f4yQ92EF3\nyxR5\n-----END RSA PRIVATE KEY-----")],
        ),
        ("-----BEGIN PRIVATE KEY-----\nanything\n-----END PRIVATE KEY-----", vec![]),
        ("-----BEGIN PUBLIC KEY-----", vec![]),
        ("key AKIAZ7QRS2LMN4XPQ3TD here", vec![(AwsAccessKey, "AKIAZ7QRS2LMN4XPQ3TD")]),
        ("the documentation's AKIAIOSFODNN7EXAMPLE, XAKIAZ7QRS2LMN4XPQ3TD", vec![]),
        ("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx is a placeholder", vec![]),
        ("ghp_0123456789abcdefghijABCDEFGHIJ012345", vec![(GithubToken, "ghp_0123456789abcdefghijABCDEFGHIJ012345")]),
        (
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            vec![(Jwt, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")],
        ),
        ("call +1 415 555 0132 or (415) 555-0132 or 415.555.0132", vec![(Phone, "+1 415 555 0132"), (Phone, "(415) 555-0132"), (Phone, "415.555.0132")]),
        ("uk 020 7946 0958, de +49 30 1234567.", vec![(Phone, "020 7946 0958"), (Phone, "+49 30 1234567")]),
        (r#"{"id":4155550132,"ts":1717171717,"n":"123-456-7890","date":"2024-01-15"}"#, vec![]),
        ("from 192.168.1.20, [2001:db8::1]:443 and fe80::1%eth0", vec![(IpAddress, "192.168.1.20"), (IpAddress, "2001:db8::1"), (IpAddress, "fe80::1%eth0")]),
        ("v1.2.3.4.5, 12:34:56, std::cout, 256.1.1.1, aa:bb:cc:dd:ee:ff", vec![]),
        ("net 10.0.0.0/8 and 2001:db8::/32.", vec![(IpAddress, "10.0.0.0/8"), (IpAddress, "2001:db8::/32")]),
        (r#""client_secret": "bP88Q~rcBcYjzzOhg1Hnn76Wm3jGgakZiZ.8vMgR""#, vec![(AzureClientSecret, "bP88Q~rcBcYjzzOhg1Hnn76Wm3jGgakZiZ.8vMgR")]),
        (
            r#"{"api_key": "k9Xq2LmP7vR4tY8wZ3nB", "apiToken":"Zp3Lq9Xv2Rm8Tn4Wk7Yb1Cd6", "password=Hn7#", "key":"k9Xq2LmP7vR4tY8wZ3nB"}"#,
            vec![(GenericSecret, "k9Xq2LmP7vR4tY8wZ3nB"), (GenericSecret, "Zp3Lq9Xv2Rm8Tn4Wk7Yb1Cd6")],
        ),
        (
            r#"{"public_key":"k9Xq2LmP7vR4tY8wZ3nB","idempotency_key":"3f9a1c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b","token_type":"Bearer","api_key":"aaaaaaaaaaaaaaaaaaaa1"}"#,
            vec![],
        ),
        ("DefaultEndpointsProtocol=https;AccountName=x;AccountKey=Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyYmF6cX==;", vec![(AzureStorageKey, "AccountKey=Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyYmF6cX==")]),
        ("cards 4012888888881881 4012-8888-8888-1881 4012 8888 8888 1881", vec![(PaymentCard, "4012888888881881"), (PaymentCard, "4012-8888-8888-1881"), (PaymentCard, "4012 8888 8888 1881")]),
        ("uatp 122000000000003; ssn 536.22.5469", vec![(PaymentCard, "122000000000003"), (UsSsn, "536.22.5469")]),
    ];
    for (text, want) in cases {
        let want: Vec<(Detector, String)> =
            want.into_iter().map(|(d, s)| (d, s.to_owned())).collect();
        assert_eq!(found(text), want, "{text}");
    }
}

/// A deterministic pseudo-random generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn body(rng: &mut Rng, n: usize) -> Vec<u8> {
    let pieces: [&[u8]; 12] = [
        b"4111 1111 1111 1111",
        b"536-22-5469",
        b"GB82 WEST 1234 5698 7654 32",
        b"ann@example.com",
        b"AKIAZ7QRS2LMN4XPQ3TD",
        b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDAC4AWkdwKYSd8\n-----END PRIVATE KEY-----",
        b"12345",
        b" ",
        b"\",\"",
        b"-",
        b"4111111111111112",
        b"{\"user\":\"x\"}",
    ];
    let mut out = Vec::new();
    while out.len() < n {
        out.extend_from_slice(pieces[(rng.next() % pieces.len() as u64) as usize]);
    }
    out
}

fn stream(
    scanner: &Scanner,
    data: &[u8],
    rng: &mut Rng,
    mask: bool,
) -> (Vec<rampart_dlp::Match>, Vec<u8>) {
    let mut st = Stream::new(scanner);
    let mut matches = Vec::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let n = 1 + (rng.next() % 700) as usize;
        let end = (i + n).min(data.len());
        let (m, bytes) = st.feed(&data[i..end], mask);
        matches.extend(m);
        out.extend(bytes);
        i = end;
    }
    let (m, bytes) = st.finish(mask);
    matches.extend(m);
    out.extend(bytes);
    (matches, out)
}

#[test]
fn any_chunking_finds_exactly_the_whole_body_matches_and_masking_keeps_the_length() {
    let scanner = Scanner::all();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..200 {
        let n = 500 + (rng.next() % 20_000) as usize;
        let data = body(&mut rng, n);
        let whole = scanner.scan(&data, 0);
        assert!(!whole.is_empty());
        let (streamed, out) = stream(&scanner, &data, &mut rng, false);
        assert_eq!(streamed, whole, "round {round}");
        assert_eq!(out, data, "round {round}: unmasked bytes pass unchanged");
        let (masked_matches, masked) = stream(&scanner, &data, &mut rng, true);
        assert_eq!(masked_matches, whole, "round {round}");
        assert_eq!(
            masked.len(),
            data.len(),
            "round {round}: masking keeps the length"
        );
        for m in &whole {
            let s = &masked[m.start as usize..m.end as usize];
            assert!(
                s.iter().all(|b| *b == b'*' || *b == b' ' || *b == b'-'),
                "round {round}"
            );
        }
        // Outside the matches, nothing changed.
        let mut expected = data.clone();
        for m in &whole {
            rampart_dlp::mask(&mut expected, m.start as usize, m.end as usize, m.detector);
        }
        assert_eq!(masked, expected, "round {round}");
    }
}

#[test]
fn memory_stays_bounded_for_a_long_stream() {
    let scanner = Scanner::all();
    let mut st = Stream::new(&scanner);
    let chunk: Vec<u8> = body(&mut Rng(7), 64 * 1024);
    let mut released = 0usize;
    let mut found = 0usize;
    // 1 GiB through the stream, 64 KiB at a time.
    for _ in 0..16_384 {
        let (m, out) = st.feed(&chunk, true);
        found += m.len();
        released += out.len();
        assert!(
            st.held() <= chunk.len() + scanner.overlap() + 80,
            "{}",
            st.held()
        );
    }
    let (m, out) = st.finish(true);
    found += m.len();
    released += out.len();
    assert_eq!(released, 16_384 * chunk.len());
    assert!(found > 16_384);
}

#[test]
fn profiles_group_the_builtin_detectors() {
    use rampart_dlp::Profile;
    let pci: Vec<Detector> = Profile::Pci.detectors().collect();
    assert_eq!(pci, vec![Detector::PaymentCard]);
    let pii: Vec<&str> = Profile::Pii.detectors().map(Detector::as_str).collect();
    assert_eq!(pii, ["iban", "us_ssn", "email", "phone", "ip_address"]);
    let all: usize = Profile::ALL.iter().map(|p| p.detectors().count()).sum();
    assert_eq!(
        all,
        Detector::BUILTIN.len(),
        "every detector is in one profile"
    );
    for d in Detector::BUILTIN {
        assert_eq!(Detector::from_name(d.as_str()), Some(*d));
    }
    // A scanner with only the PCI profile finds cards and nothing else.
    let s = Scanner::new(&pci);
    let m = s.scan(b"4111 1111 1111 1111 ann@example.com 536-22-5469", 0);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].detector, Detector::PaymentCard);
}

fn custom_scanner() -> Scanner {
    use rampart_dlp::{CustomDetector, CustomRule, Validator};
    Scanner::with_custom(
        &[Detector::Email],
        &[
            CustomDetector {
                name: "employee_id".into(),
                rule: CustomRule::Regex {
                    pattern: r"\bEMP-(\d{6})\b".into(),
                    keywords: vec!["employee".into()],
                    validator: Validator::None,
                    min_entropy: None,
                },
            },
            CustomDetector {
                name: "loyalty_card".into(),
                rule: CustomRule::Regex {
                    pattern: r"\bLC\d{12}\b".into(),
                    keywords: vec![],
                    validator: Validator::None,
                    min_entropy: None,
                },
            },
            CustomDetector {
                name: "internal_card".into(),
                rule: CustomRule::Regex {
                    pattern: r"\b9\d{15}\b".into(),
                    keywords: vec![],
                    validator: Validator::Luhn,
                    min_entropy: None,
                },
            },
            CustomDetector {
                name: "codename".into(),
                rule: CustomRule::Terms {
                    terms: vec!["Project Nightjar".into(), "bluebird".into()],
                    case_insensitive: true,
                },
            },
        ],
    )
    .unwrap()
}

#[test]
fn custom_detectors_regex_keywords_validators_and_terms() {
    let s = custom_scanner();
    let text = "employee EMP-123456 and EMP-654321 far away from the word............................................................................ EMP-111111; LC123456789012; 9000000000000009 9000000000000001; project nightjar, bluebirds, BLUEBIRD.";
    let got: Vec<(String, String)> = s
        .scan(text.as_bytes(), 0)
        .into_iter()
        .map(|m| {
            (
                s.name(m.detector).to_owned(),
                text[m.start as usize..m.end as usize].to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("employee_id", "123456"),
        ("employee_id", "654321"),
        ("loyalty_card", "LC123456789012"),
        ("internal_card", "9000000000000001"),
        ("codename", "project nightjar"),
        ("codename", "BLUEBIRD"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(got, want);
    // Errors name the detector.
    let bad = Scanner::with_custom(
        &[],
        &[rampart_dlp::CustomDetector {
            name: "broken".into(),
            rule: rampart_dlp::CustomRule::Regex {
                pattern: "(".into(),
                keywords: vec![],
                validator: rampart_dlp::Validator::None,
                min_entropy: None,
            },
        }],
    )
    .unwrap_err();
    assert!(bad.starts_with("detector broken: invalid regex"), "{bad}");
}

#[test]
fn custom_regexes_stream_like_whole_scans() {
    let s = custom_scanner();
    let mut rng = Rng(0x5eed);
    let pieces: [&[u8]; 7] = [
        b"employee EMP-123456 ",
        b"LC123456789012 ",
        b"LC12345678901234 ",
        b"9000000000000009 ",
        b"bluebird ",
        b"x",
        b"0",
    ];
    for _ in 0..100 {
        let mut data = Vec::new();
        while data.len() < 20_000 {
            data.extend_from_slice(pieces[(rng.next() % pieces.len() as u64) as usize]);
        }
        let whole = s.scan(&data, 0);
        let (m, out) = stream(&s, &data, &mut rng, true);
        if let Some(i) = (0..m.len().max(whole.len())).find(|i| m.get(*i) != whole.get(*i)) {
            let show = |v: &[rampart_dlp::Match]| {
                v.get(i.saturating_sub(1)..(i + 2).min(v.len()))
                    .map(|w| format!("{w:?}"))
                    .unwrap_or_default()
            };
            panic!(
                "streamed {} matches, whole {}; first difference at {i}: streamed {} whole {}",
                m.len(),
                whole.len(),
                show(&m),
                show(&whole)
            );
        }
        assert_eq!(out.len(), data.len());
    }
}
