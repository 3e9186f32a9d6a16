//! Throughput of each detector alone on the benchmark response (where the time goes).
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use rampart_dlp::{bench_data::api_response, Detector, Scanner};

fn main() {
    let data = api_response(1 << 20);
    let mut sets: Vec<(String, Vec<Detector>)> = Detector::BUILTIN
        .iter()
        .map(|d| (d.as_str().to_owned(), vec![*d]))
        .collect();
    let lit: Vec<Detector> = Detector::BUILTIN[6..19].to_vec();
    sets.push(("literal-anchored".into(), lit));
    for (a, b) in [(6, 10), (10, 13), (13, 16), (16, 19), (6, 8), (8, 10)] {
        sets.push((format!("lit[{a}..{b}]"), Detector::BUILTIN[a..b].to_vec()));
    }
    sets.push((
        "numeric".into(),
        Detector::BUILTIN[0..3]
            .iter()
            .chain(&Detector::BUILTIN[4..5])
            .copied()
            .collect(),
    ));
    sets.push(("all".into(), Detector::BUILTIN.to_vec()));
    // DLP_ONLY=name runs one set only (for callgrind).
    let only = std::env::var("DLP_ONLY").ok();
    for (name, set) in sets {
        if only.as_ref().is_some_and(|o| *o != name) {
            continue;
        }
        let s = Scanner::new(&set);
        let mut best = f64::MAX;
        for _ in 0..10 {
            let t = Instant::now();
            std::hint::black_box(s.scan(&data, 0));
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{name:24} {:8.1} MB/s", data.len() as f64 / best / 1e6);
    }
}
