//! A deterministic packet loop: N packets of one benchmark case through one VPC port.
//!
//! `cargo run --release -p opte-bench --bin pktloop -- --case ULP-FastPath/V4-Tcp-OUT-0B --packets 1000000`
//!
//! Packets are built ahead in batches (untimed); the timed work per packet is what the
//! `process` benchmarks time: parse, process, free the result. For the slow path the flow
//! tables are cleared before every packet (untimed, so each packet is timed on its own).
//! Under `valgrind --tool=callgrind --toggle-collect='*vpc::process*'` the instruction
//! count covers exactly the timed work; divide by N for instructions per packet.
//!
//! Family `XDE-FastPath` (instances as `ULP-FastPath`'s) runs the same packets through a
//! whole `xde` host instead: port lookup, the port's lock, the flow cache, the route cache
//! and the next-hop MACs (`--toggle-collect='*host::process*'`). Family `XDE-Batch` (OUT
//! instances) hands the host 32 packets a call with `tx_batch`, under one acquisition of the
//! port's lock.

use opte::build::samples::{self, Sample};
use opte::engine::port::ProcessResult;
use opte_bench::host;
use opte_bench::vpc::{self, clear_flows};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const BATCH: usize = 1024;
/// Packets a `tx_batch` call takes in family `XDE-Batch`: a typical receive batch of a TAP.
const XDE_BATCH: usize = 32;

fn usage(msg: &str) -> ExitCode {
    eprintln!("pktloop: {msg}");
    eprintln!("usage: pktloop --case <family/instance> --packets N");
    eprintln!(
        "  families: ULP-FastPath, ULP-SlowPath (instances V4-Tcp-OUT-0B ...), Hairpin-DHCPv4,"
    );
    eprintln!("  Hairpin-DHCPv6, Hairpin-ICMPv4, Hairpin-ICMPv6 (instances as in `cargo ubench`),");
    eprintln!("  XDE-FastPath (the ULP instances, through a whole xde host), XDE-Batch (OUT");
    eprintln!("  instances, 32 packets a tx_batch call)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut case = None;
    let mut packets: u64 = 1_000_000;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--case" => case = it.next().cloned(),
            "--packets" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => packets = n,
                _ => return usage("--packets needs a positive number"),
            },
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let Some(case) = case else {
        return usage("--case is required");
    };
    let Some((family, instance)) = case.split_once('/') else {
        return usage(&format!("bad case {case:?}: expected family/instance"));
    };
    if family == "XDE-FastPath" || family == "XDE-Batch" {
        let Some(s) = samples::ulp(instance) else {
            return usage(&format!("unknown ULP instance {instance:?}"));
        };
        let batch = family == "XDE-Batch";
        if batch && s.side != samples::Side::Guest {
            return usage("XDE-Batch takes the OUT instances (tx_batch is the guest side's)");
        }
        return xde_loop(&case, &s, vpc::out_twin(instance), packets, batch);
    }
    let (sample, slow, mut port) = match family {
        "ULP-FastPath" | "ULP-SlowPath" => {
            let Some(s) = samples::ulp(instance) else {
                return usage(&format!("unknown ULP instance {instance:?}"));
            };
            let slow = family == "ULP-SlowPath";
            (s, slow, vpc::ulp_port(slow))
        }
        _ => match samples::hairpin(family, instance) {
            Some(s) => (s, false, vpc::hairpin_port()),
            None => return usage(&format!("unknown case {case:?}")),
        },
    };
    let twin: Option<Sample> = vpc::out_twin(instance).filter(|_| family.starts_with("ULP"));

    let mut total = Duration::ZERO;
    let mut done = 0u64;
    let mut modified = 0u64;
    let mut hairpins = 0u64;
    while done < packets {
        let n = BATCH.min((packets - done) as usize);
        if let (false, Some(t)) = (slow, &twin) {
            // The fast path's pre-handle: an outbound packet of the flow keeps it in the UFT.
            let _ = vpc::process(&mut port, t.side, t.packet());
        }
        let mut batch: Vec<_> = (0..n).map(|_| sample.packet()).collect();
        if slow {
            for pkt in batch.drain(..) {
                clear_flows(&mut port);
                let t = Instant::now();
                let (r, out) = vpc::process(&mut port, sample.side, pkt);
                drop(black_box(out));
                total += t.elapsed();
                count(&r, &mut modified, &mut hairpins);
            }
        } else {
            let t = Instant::now();
            for pkt in batch.drain(..) {
                let (r, out) = vpc::process(&mut port, sample.side, pkt);
                drop(black_box(out));
                count(&r, &mut modified, &mut hairpins);
            }
            total += t.elapsed();
        }
        done += n as u64;
    }
    let ns = total.as_nanos();
    println!("case {case}");
    println!(
        "packets {done} (modified {modified}, hairpin {hairpins}, dropped {})",
        done - modified - hairpins
    );
    println!("total_ns {ns}");
    println!("ns_per_packet {:.1}", ns as f64 / done as f64);
    if modified + hairpins != done {
        eprintln!("pktloop: some packets were dropped: the case is misconfigured");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The loop through a whole host: every packet must come out as one thing for the OS to do.
fn xde_loop(
    case: &str,
    sample: &Sample,
    twin: Option<Sample>,
    packets: u64,
    batch: bool,
) -> ExitCode {
    let (x, port) = host::ulp_host();
    let ports = x.ports_snapshot();
    let mut out = Vec::with_capacity(4);
    let mut total = Duration::ZERO;
    let (mut done, mut emitted) = (0u64, 0u64);
    while done < packets {
        let n = BATCH.min((packets - done) as usize);
        if let Some(t) = &twin {
            host::process(&x, &port, &ports, t.side, t.packet(), &mut out);
        }
        let mut pkts: Vec<_> = (0..n).map(|_| sample.packet()).collect();
        let t = Instant::now();
        if batch {
            let mut chunk = Vec::with_capacity(XDE_BATCH);
            while !pkts.is_empty() {
                chunk.extend(pkts.drain(..XDE_BATCH.min(pkts.len())));
                emitted += host::process_batch(&x, &port, &mut chunk, &mut out) as u64;
            }
        } else {
            for pkt in pkts.drain(..) {
                emitted += host::process(&x, &port, &ports, sample.side, pkt, &mut out) as u64;
            }
        }
        out.clear();
        total += t.elapsed();
        done += n as u64;
    }
    let ns = total.as_nanos();
    println!("case {case}");
    println!("packets {done} (emitted {emitted})");
    println!("total_ns {ns}");
    println!("ns_per_packet {:.1}", ns as f64 / done as f64);
    if emitted != done {
        eprintln!("pktloop: some packets went nowhere: the case is misconfigured");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn count(r: &ProcessResult, modified: &mut u64, hairpins: &mut u64) {
    match r {
        ProcessResult::Modified => *modified += 1,
        ProcessResult::Hairpin(_) => *hairpins += 1,
        ProcessResult::Drop(_) => {}
    }
}
