//! Scan throughput on a 1 MB JSON API response with every built-in detector on: whole, and
//! streamed in 16 KiB chunks with masking. `bench/dlp.sh` compares the same bytes with
//! ripgrep and detect-secrets.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart_dlp::{bench_data::api_response, Scanner, Stream};

fn scan(c: &mut Criterion) {
    let data = api_response(1 << 20);
    let scanner = Scanner::all();
    let found = scanner.scan(&data, 0).len();
    assert!(found > 0);
    let mut g = c.benchmark_group("dlp");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("scan_1mb_json_all_detectors", |b| {
        b.iter(|| scanner.scan(std::hint::black_box(&data), 0).len())
    });
    g.bench_function("stream_1mb_json_16k_chunks_masking", |b| {
        b.iter(|| {
            let mut st = Stream::new(&scanner);
            let mut n = 0;
            for chunk in data.chunks(16 * 1024) {
                n += st.feed(chunk, true).1.len();
            }
            n + st.finish(true).1.len()
        })
    });
    g.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
