//! The requests and rule sets the CRS benchmarks and profiles run (`benches/crs.rs`,
//! `examples/crs_profile.rs`): the CRS v4.28 of ../shared/corpora/crs at a paranoia level, a
//! browser's benign GET, a benign 1 KB JSON POST and an attack, each through phases 1 to 4 as
//! the `waf.crs` stage runs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::eval::{Request, Transaction};
use crate::ruleset::{compile_ruleset, Ruleset};

/// The CRS checkout the benches read.
pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/crs")
}

/// The CRS compiled at a paranoia level.
pub fn load(pl: u8) -> Ruleset {
    let dir = corpus();
    let main = format!(
        "SecRuleEngine On\nSecRequestBodyAccess On\nSecResponseBodyAccess On\n\
         SecResponseBodyMimeType text/plain text/html text/xml application/json\n\
         Include {}\n\
         SecAction \"id:900000,phase:1,pass,nolog,setvar:tx.blocking_paranoia_level={pl}\"\n\
         Include {}/rules/*.conf\n",
        dir.join("crs-setup.conf.example").display(),
        dir.display()
    );
    let parsed = crate::parse_str(&main, "main.conf", &dir);
    compile_ruleset(&parsed).unwrap_or_else(|e| panic!("{e:#?}"))
}

/// A browser-like request with headers and a cookie; with a content type, a body of
/// `json_1kb()`'s length is announced.
pub fn request(method: &str, uri: &str, ct: Option<&str>) -> Request {
    let mut headers = vec![
        ("Host".to_owned(), b"shop.example".to_vec()),
        (
            "User-Agent".to_owned(),
            b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".to_vec(),
        ),
        ("Accept".to_owned(), b"application/json".to_vec()),
        ("Accept-Language".to_owned(), b"en-US,en;q=0.5".to_vec()),
        ("Accept-Encoding".to_owned(), b"gzip, deflate, br".to_vec()),
        (
            "Cookie".to_owned(),
            b"session=4f3c2a1b9e8d7c6b5a49; theme=dark".to_vec(),
        ),
    ];
    if let Some(ct) = ct {
        headers.push(("Content-Type".to_owned(), ct.as_bytes().to_vec()));
        headers.push((
            "Content-Length".to_owned(),
            json_1kb().len().to_string().into_bytes(),
        ));
    }
    Request {
        method: method.into(),
        uri: uri.into(),
        protocol: "HTTP/1.1".into(),
        headers,
        remote_addr: Some("192.0.2.10".parse().unwrap()),
        unique_id: "bench".into(),
    }
}

/// One transaction through phases 1 to 4; how many rules matched.
#[inline(never)]
pub fn run(set: &Arc<Ruleset>, req: &Request, body: &[u8]) -> usize {
    let mut t = Transaction::new(set.clone(), req.clone());
    t.phase(1);
    t.request_body(body);
    t.phase(2);
    t.response_head(
        200,
        "HTTP/1.1",
        vec![("Content-Type".into(), b"application/json".to_vec())],
    );
    t.phase(3);
    t.response_body(br#"{"ok":true,"items":[1,2,3]}"#);
    t.phase(4);
    t.matched().len()
}

/// A 1 KB JSON order.
pub fn json_1kb() -> Vec<u8> {
    let mut items = Vec::new();
    for i in 0..12 {
        items.push(format!(
            r#"{{"sku":"SKU-{i:05}","name":"Mechanical keyboard","qty":{},"price":49.90}}"#,
            i % 3 + 1
        ));
    }
    let body = format!(
        r#"{{"customer":{{"id":10023,"name":"Ann Lee"}},"items":[{}],"note":"leave at the door"}}"#,
        items.join(",")
    );
    assert!((900..1200).contains(&body.len()), "{}", body.len());
    body.into_bytes()
}
