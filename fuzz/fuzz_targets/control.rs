//! Control requests of arbitrary bytes into a populated host; see `opte_fuzz::check_control`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| opte_fuzz::check_control(data));
