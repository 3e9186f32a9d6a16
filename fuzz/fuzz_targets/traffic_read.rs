#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_traffic::fuzzing::read(data));
