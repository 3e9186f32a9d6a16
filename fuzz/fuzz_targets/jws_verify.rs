#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_stages::authn::jws::fuzzing::verify_token(data));
