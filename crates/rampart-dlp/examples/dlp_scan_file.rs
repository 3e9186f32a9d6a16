//! `dlp_scan_file gen <path>` writes the 1 MB benchmark response; `dlp_scan_file scan <path>
//! <reps>` scans a file that many times with every detector and prints the best MB/s (used
//! by `bench/dlp.sh` beside ripgrep and detect-secrets, in the same run).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") => {
            std::fs::write(&args[2], rampart_dlp::bench_data::api_response(1 << 20)).unwrap();
        }
        Some("scan") => {
            let data = std::fs::read(&args[2]).unwrap();
            let reps: usize = args.get(3).map_or(20, |r| r.parse().unwrap());
            let s = rampart_dlp::Scanner::all();
            let mut best = f64::MAX;
            let mut found = 0;
            for _ in 0..reps {
                let t = Instant::now();
                found = s.scan(&data, 0).len();
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!(
                "rampart {:.1} MB/s ({found} matches, best of {reps})",
                data.len() as f64 / best / 1e6
            );
        }
        _ => {
            eprintln!("usage: dlp_scan_file gen <path> | scan <path> [reps]");
            std::process::exit(2);
        }
    }
}
