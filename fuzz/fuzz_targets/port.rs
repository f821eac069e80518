//! Frames both ways through a VPC port while time moves; see `opte_fuzz::check_port`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| opte_fuzz::check_port(data));
