//! A loop for profilers (`valgrind --tool=callgrind`, `perf`): the CRS at paranoia level 1
//! (`CRS_PL` to change it) evaluating `N` (default 200) benign GETs, or with `CRS_CASE=post`
//! 1 KB JSON POSTs, or `attack`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;

use rampart_seclang::bench_data::{json_1kb, load, request, run};

fn main() {
    let pl: u8 = std::env::var("CRS_PL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let case = std::env::var("CRS_CASE").unwrap_or_else(|_| "get".into());
    let set = Arc::new(load(pl));
    let body = json_1kb();
    let (req, body) = match case.as_str() {
        "post" => (
            request("POST", "/api/orders", Some("application/json")),
            &body[..],
        ),
        "attack" => (
            request(
                "GET",
                "/download?file=../../../../etc/passwd&cmd=;cat%20/etc/shadow",
                None,
            ),
            &b""[..],
        ),
        _ => (
            request("GET", "/api/products?page=2&sort=price&q=keyboard", None),
            &b""[..],
        ),
    };
    {
        let mut t = rampart_seclang::eval::Transaction::new(set.clone(), req.clone());
        t.phase(1);
        t.request_body(body);
        t.phase(2);
        for m in t.matched() {
            println!("matched {} {} {}", m.id, m.msg, m.logdata);
        }
    }
    let start = std::time::Instant::now();
    let mut matched = 0;
    for _ in 0..n {
        matched += run(&set, &req, body);
    }
    println!(
        "{case} at PL{pl}: {n} transactions, {:.1} µs each, {matched} matches",
        start.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
