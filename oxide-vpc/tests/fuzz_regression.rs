//! Every input the fuzzers keep (the seed corpora, what the fuzzers found, and the
//! reference's regression cases) pushed through a whole VPC port, not just the parser:
//! whatever parses is processed without a panic and lands in exactly one result counter.

mod common;

use common::*;
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::Packet;
use opte::packet::parse::{parse_guest, parse_network};
use opte_api::Direction;
use oxide_vpc::tables::VpcTables;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn fuzz_inputs_through_a_vpc_port() {
    let tables = Arc::new(VpcTables::default());
    let mut port = setup(g1_cfg(), &tables);
    add_igw_routes(&mut port, None);
    let (mut parsed_in, mut parsed_out) = (0u64, 0u64);
    for (dir, network) in [
        ("corpus/parse-in", true),
        ("regressions/parse-in", true),
        ("corpus/parse-out", false),
        ("regressions/parse-out", false),
    ] {
        let inputs = files(dir);
        assert!(!inputs.is_empty(), "{dir} is empty");
        for (i, path) in inputs.iter().enumerate() {
            let data = std::fs::read(path).unwrap();
            let mut pkt = Packet::copy_from(&data);
            let now = Moment::from_millis(i as u64 * 10);
            let r = if network {
                parse_network(&mut pkt).map(|m| (Direction::In, Parsed::Network(m)))
            } else {
                parse_guest(&mut pkt).map(|m| (Direction::Out, Parsed::Guest(m)))
            };
            if let Ok((d, parsed)) = r {
                port.process(d, &mut pkt, &parsed, now);
                match d {
                    Direction::In => parsed_in += 1,
                    Direction::Out => parsed_out += 1,
                }
            }
        }
    }
    let s = port.port().stats();
    assert_eq!(s.r#in.results(), parsed_in);
    assert_eq!(s.out.results(), parsed_out);
    assert!(
        parsed_in > 50 && parsed_out > 50,
        "too few inputs parsed: {parsed_in} in, {parsed_out} out"
    );
}
