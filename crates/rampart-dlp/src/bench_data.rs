//! A deterministic JSON API response for benchmarks: pages of orders with customers,
//! addresses, line items, timestamps, UUIDs and prices, the shape of a real API's output, with
//! a little sensitive data among it (about one e-mail per record, one card and one key per
//! few hundred). The same bytes feed the criterion bench and the comparison with ripgrep and
//! detect-secrets (`bench/dlp.sh`).

/// About `size` bytes of a JSON response (a whole document: `{"orders":[…]}`).
pub fn api_response(size: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let first = [
        "Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hiro",
    ];
    let last = [
        "Lee", "Smith", "Müller", "Okafor", "Rossi", "Tanaka", "Dubois",
    ];
    let streets = [
        "Main St",
        "Rue de Rivoli",
        "Hauptstraße",
        "Via Roma",
        "Baker Street",
    ];
    let products = [
        "USB-C cable 2m",
        "Mechanical keyboard",
        "27\" monitor",
        "Noise-cancelling headphones",
        "Laptop stand",
        "Webcam 1080p",
    ];
    let mut out = String::with_capacity(size + 4096);
    out.push_str("{\"orders\":[");
    let mut i = 0u64;
    while out.len() < size {
        if i > 0 {
            out.push(',');
        }
        let r = next();
        let f = first[(r % first.len() as u64) as usize];
        let l = last[((r >> 8) % last.len() as u64) as usize];
        let uuid = format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            r as u32,
            (r >> 32) as u16,
            (r >> 48) & 0xfff,
            (r >> 20) & 0xfff,
            next() & 0xffff_ffff_ffff
        );
        let items: Vec<String> = (0..1 + r % 3)
            .map(|k| {
                let p = products[((r >> (12 + k)) % products.len() as u64) as usize];
                format!(
                    "{{\"sku\":\"SKU-{:06}\",\"name\":\"{p}\",\"qty\":{},\"unit_price\":{}.{:02}}}",
                    (r >> (k * 7)) % 1_000_000,
                    1 + k,
                    5 + (r >> 3) % 400,
                    (r >> 5) % 100
                )
            })
            .collect();
        let sensitive = match i % 400 {
            7 => ",\"payment\":{\"card\":\"4111 1111 1111 1111\",\"exp\":\"12/29\"}".to_owned(),
            123 => ",\"debug\":{\"aws\":\"AKIAZ7QRS2LMN4XPQ3TD\"}".to_owned(),
            250 => ",\"iban\":\"DE89 3704 0044 0532 0130 00\"".to_owned(),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{{\"id\":{},\"uuid\":\"{uuid}\",\"created_at\":\"2026-{:02}-{:02}T{:02}:{:02}:{:02}Z\",\
             \"status\":\"{}\",\"customer\":{{\"id\":{},\"name\":\"{f} {l}\",\"email\":\"{}.{}{}@example.com\",\
             \"address\":{{\"street\":\"{} {}\",\"city\":\"Springfield\",\"zip\":\"{:05}\",\"country\":\"US\"}}}},\
             \"items\":[{}],\"total\":{}.{:02},\"currency\":\"USD\",\"notes\":\"Leave at the door, ring twice.\"{sensitive}}}",
            100_000 + i,
            1 + r % 12,
            1 + (r >> 4) % 28,
            (r >> 9) % 24,
            (r >> 14) % 60,
            (r >> 19) % 60,
            ["paid", "shipped", "delivered", "refunded"][((r >> 24) % 4) as usize],
            5_000 + (r >> 30) % 90_000,
            f.to_lowercase(),
            l.to_lowercase(),
            (r >> 40) % 100,
            1 + (r >> 44) % 999,
            streets[((r >> 50) % streets.len() as u64) as usize],
            (r >> 33) % 100_000,
            items.join(","),
            10 + (r >> 36) % 2000,
            (r >> 41) % 100,
        ));
        i += 1;
    }
    out.push_str("]}");
    out.into_bytes()
}
