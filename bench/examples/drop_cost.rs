//! How long freeing a packet takes, by shape (1 and 2 segments).
use opte::build::samples;
use std::time::Instant;

fn main() {
    for case in ["V4-Tcp-OUT-0B", "V4-Tcp-IN-0B"] {
        let s = samples::ulp(case).unwrap();
        let n = 200_000;
        let mut total = 0.0;
        for _ in 0..5 {
            let v: Vec<_> = (0..n).map(|_| s.packet()).collect();
            let t = Instant::now();
            drop(v);
            total += t.elapsed().as_nanos() as f64 / n as f64;
        }
        println!("{case}: {:.1} ns per packet freed", total / 5.0);
    }
}
