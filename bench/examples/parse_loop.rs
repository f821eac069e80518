//! Times parsing alone (no allocation, no free) over many iterations of one packet, to see
//! the parser's own cost apart from the benchmark harness: `cargo run --release -p
//! opte-bench --example parse_loop -- [iterations]`.

use opte::build::samples::{self, Side};
use opte::packet::parse::{parse_guest, parse_network};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    for s in samples::all()
        .iter()
        .filter(|s| s.name.starts_with('V') || s.name.starts_with("Hairpin"))
    {
        let mut pkt = s.packet();
        let t = Instant::now();
        for _ in 0..n {
            match s.side {
                Side::Guest => {
                    black_box(parse_guest(black_box(&mut pkt)).is_ok());
                }
                Side::Network => {
                    black_box(parse_network(black_box(&mut pkt)).is_ok());
                }
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        println!("{:<36} {:>7.1} ns", s.name, ns);
    }
}
