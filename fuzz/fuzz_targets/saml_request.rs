#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cas_fuzzing::saml_request(data));
