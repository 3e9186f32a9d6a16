#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_discovery::fuzzing::observe(data));
