//! Network-side parse of arbitrary bytes; see `opte_fuzz::check_parse_in`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| opte_fuzz::check_parse_in(data));
