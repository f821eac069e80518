//! `xde-kbench` (`cargo kbench`): OPTE's Linux host against the kernel's own overlay, side
//! by side, on this machine. The demo's two sleds with a guest of one VPC on each, once
//! through the daemons (`xded` ×2, Geneve) and once built with the kernel alone (bridge +
//! VXLAN over the IPv6 underlay, and bridge + Geneve too where the kernel can make Geneve
//! devices), guest to guest across sleds:
//!
//! - iperf3 TCP, 1 stream and 4 streams (receiver's throughput);
//! - iperf3 UDP with 64-byte payloads: the packets per second received at under 1% loss
//!   (the sending rate is lowered until the loss is under 1%);
//! - request/response latency: sockperf ping-pong over TCP, full round trips, median and
//!   99th percentile;
//!
//! interleaved (OPTE, kernel, OPTE, ...), `--runs N` times each (3 by default), with the
//! CPU each side spent per packet: the whole machine's busy time (both sides), and for
//! OPTE the daemons' own. A benchmark, never a test. `--json` prints the figures as JSON;
//! `--xded-arg ARG` (repeatable) passes ARG to the daemons, to compare their options (e.g.
//! `--xded-arg --no-rx-rings`).
//!
//! Then VM to VM: two QEMU VMs (TCG) on the two sleds, their NICs once on `--vmm` TAP
//! ports and once on vhost-user ports; one fetches a 64 MiB file from the other's web
//! server (busybox `wget` and `httpd`), interleaved, `--runs N` times each. Under software
//! emulation the guests' own CPU bounds these figures; they compare the two attachments,
//! not OPTE with anything. `--no-vm` leaves this part out.

use serde_json::{Value, json};
use std::io::IsTerminal;
use std::process::ExitCode;
use xde_lab::kernel::{KernelVpc, Tunnel, has_geneve};
use xde_lab::vm::{self, Vm};
use xde_lab::vpc::{Bins, GuestSpec, Lab};
use xde_lab::{Netns, is_root, unique};

/// The figures of one test on one side.
#[derive(Clone, Copy, Debug, Default)]
struct Figure {
    /// The test's own measure (Mbit/s, packets/s or µs).
    value: f64,
    /// A second measure (the 99th percentile of a latency test).
    p99: f64,
    /// Machine CPU nanoseconds per packet.
    cpu_ns: f64,
    /// The daemons' CPU nanoseconds per packet (OPTE only).
    daemon_ns: f64,
}

/// One side under test: its two guests and how to count its packets and CPU.
trait Side {
    fn name(&self) -> &'static str;
    fn guests(&self) -> (&Netns, &Netns);
    /// Packets carried across the underlay so far.
    fn packets(&self) -> u64;
    /// CPU time of this side's own processes so far, in ns (0 if it has none).
    fn own_cpu_ns(&self) -> u64;
}

struct Opte {
    lab: Lab,
}

impl Side for Opte {
    fn name(&self) -> &'static str {
        "OPTE (xded ×2, Geneve)"
    }

    fn guests(&self) -> (&Netns, &Netns) {
        (&self.lab.guest("a1").ns, &self.lab.guest("a2").ns)
    }

    fn packets(&self) -> u64 {
        self.lab
            .sleds
            .iter()
            .map(|s| s.daemon.counter("tx_underlay"))
            .sum()
    }

    fn own_cpu_ns(&self) -> u64 {
        self.lab
            .sleds
            .iter()
            .map(|s| proc_cpu_ns(s.daemon.proc.pid()))
            .sum()
    }
}

struct Kernel {
    k: KernelVpc,
    tunnel: Tunnel,
}

impl Side for Kernel {
    fn name(&self) -> &'static str {
        match self.tunnel {
            Tunnel::Vxlan => "kernel (bridge+VXLAN)",
            Tunnel::Geneve => "kernel (bridge+Geneve)",
        }
    }

    fn guests(&self) -> (&Netns, &Netns) {
        (&self.k.guests[0], &self.k.guests[1])
    }

    fn packets(&self) -> u64 {
        self.k
            .sleds
            .iter()
            .map(|s| {
                s.try_exec(&["cat", "/sys/class/net/vx0/statistics/tx_packets"])
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }

    fn own_cpu_ns(&self) -> u64 {
        0
    }
}

/// /proc reports times in USER_HZ, which the kernel's ABI fixes at 100 a second.
const NS_PER_TICK: u64 = 10_000_000;

/// A process's CPU time (user and system), in ns.
fn proc_cpu_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) close with ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * NS_PER_TICK
}

/// The whole machine's busy CPU time so far, in ns.
fn machine_busy_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle) * NS_PER_TICK
}

/// Run `test` on `side`, with the CPU it took per packet.
fn measured(
    side: &dyn Side,
    test: impl FnOnce(&Netns, &Netns) -> Result<(f64, f64), String>,
) -> Result<Figure, String> {
    let (p0, m0, o0) = (side.packets(), machine_busy_ns(), side.own_cpu_ns());
    let (a, b) = side.guests();
    let (value, p99) = test(a, b)?;
    let (p1, m1, o1) = (side.packets(), machine_busy_ns(), side.own_cpu_ns());
    let pkts = (p1.saturating_sub(p0)).max(1) as f64;
    Ok(Figure {
        value,
        p99,
        cpu_ns: m1.saturating_sub(m0) as f64 / pkts,
        daemon_ns: o1.saturating_sub(o0) as f64 / pkts,
    })
}

const TO: &str = "172.30.0.6";

fn tcp(streams: &str) -> impl Fn(&Netns, &Netns) -> Result<(f64, f64), String> {
    move |a, b| {
        let r = xde_lab::iperf3(a, b, TO, &["-t", "3", "-P", streams])?;
        Ok((xde_lab::iperf3_received_bps(&r)? / 1e6, 0.0))
    }
}

/// UDP with 64-byte payloads: the received packets per second at under 1% loss. The first
/// try is unpaced; each next is paced at 90% of what was received before.
fn udp_small(a: &Netns, b: &Netns) -> Result<(f64, f64), String> {
    let mut rate = String::from("0");
    let mut best = 0.0f64;
    for _ in 0..4 {
        let r = xde_lab::iperf3(a, b, TO, &["-u", "-l", "64", "-b", &rate, "-t", "2"])?;
        let s = &r["end"]["sum"];
        let (packets, lost, secs) = (
            s["packets"].as_f64().unwrap_or(0.0),
            s["lost_packets"].as_f64().unwrap_or(0.0),
            s["seconds"].as_f64().unwrap_or(2.0).max(0.1),
        );
        let got_pps = (packets - lost).max(0.0) / secs;
        if packets > 0.0 && lost / packets < 0.01 {
            return Ok((got_pps, 0.0));
        }
        best = best.max(got_pps);
        // Bits per second of 64-byte payloads at 90% of the rate that got through.
        rate = format!("{:.0}", got_pps * 0.9 * 64.0 * 8.0);
    }
    Err(format!(
        "loss stayed at 1% or more (best {best:.0} packets/s)"
    ))
}

/// sockperf ping-pong over TCP for 3 s: the median and 99th percentile round trip, µs.
fn rr(a: &Netns, b: &Netns) -> Result<(f64, f64), String> {
    let mut server = b.serve(
        "sockperf",
        &["sr", "--tcp", "-i", TO, "-p", "11111"],
        &format!("{TO}:11111"),
    )?;
    let out = a.try_exec(&[
        "sockperf",
        "pp",
        "--tcp",
        "--full-rtt",
        "-i",
        TO,
        "-p",
        "11111",
        "-t",
        "3",
    ]);
    server.stop();
    let out = out?;
    let pct = |p: &str| {
        out.lines()
            .find_map(|l| l.split_once(&format!("percentile {p} =")))
            .and_then(|(_, v)| {
                v.trim()
                    .trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse::<f64>()
                    .ok()
            })
    };
    match (pct("50.000"), pct("99.000")) {
        (Some(p50), Some(p99)) => Ok((p50, p99)),
        _ => Err(format!("sockperf's report: {out}")),
    }
}

/// A test: its name, unit, and what runs it.
type Test = (
    &'static str,
    &'static str,
    Box<dyn Fn(&Netns, &Netns) -> Result<(f64, f64), String>>,
);

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn spread(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn main() -> ExitCode {
    let (mut json_out, mut runs, mut xded_args) = (false, 3usize, Vec::new());
    let mut vms = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json_out = true,
            "--runs" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => runs = n,
                _ => {
                    eprintln!("xde-kbench: --runs takes a number of runs (1 or more)");
                    return ExitCode::from(2);
                }
            },
            "--no-vm" => vms = false,
            "--xded-arg" => match args.next() {
                Some(x) => xded_args.push(x),
                None => {
                    eprintln!("xde-kbench: --xded-arg takes an argument for xded");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("usage: xde-kbench [--runs N] [--json] [--xded-arg ARG]...");
                return ExitCode::from(2);
            }
        }
    }
    if !xded_args.is_empty() {
        // SAFETY (of the environment): set before any thread of this process starts.
        unsafe { std::env::set_var(xde_lab::XDED_ARGS_ENV, xded_args.join("\x1f")) };
    }
    if !is_root() {
        eprintln!("xde-kbench must run as root: it makes network namespaces and TAP devices");
        return ExitCode::FAILURE;
    }
    let me = std::env::current_exe().unwrap_or_default();
    let bins = Bins {
        xded: me.with_file_name("xded"),
        boundary: me.with_file_name("xde-boundary"),
    };
    let id = unique("xdkb");
    xde_lab::vpc::on_interrupt_remove(id.clone());
    let built = Lab::build(
        &bins,
        &id,
        2,
        &[
            GuestSpec::new("a1", 100, 30, 5, 0),
            GuestSpec::new("a2", 100, 30, 6, 1),
        ],
    )
    .and_then(|lab| Ok((lab, KernelVpc::build(&id)?)));
    // Geneve too, where the kernel has it (this machine kind's does not).
    let geneve = if has_geneve() {
        match KernelVpc::build_with(&format!("{id}g"), Tunnel::Geneve) {
            Ok(g) => Some(g),
            Err(e) => {
                eprintln!("xde-kbench: the kernel's Geneve: {e}");
                None
            }
        }
    } else {
        None
    };
    let (lab, k) = match built {
        Ok(b) => b,
        Err(e) => {
            eprintln!("xde-kbench: {e}");
            xde_lab::vpc::remove_by_id(&id);
            return ExitCode::FAILURE;
        }
    };
    let mut sides: Vec<Box<dyn Side>> = vec![
        Box::new(Opte { lab }),
        Box::new(Kernel {
            k,
            tunnel: Tunnel::Vxlan,
        }),
    ];
    if let Some(k) = geneve {
        sides.push(Box::new(Kernel {
            k,
            tunnel: Tunnel::Geneve,
        }));
    }
    let tests: Vec<Test> = vec![
        ("TCP, 1 stream", "Mbit/s", Box::new(tcp("1"))),
        ("TCP, 4 streams", "Mbit/s", Box::new(tcp("4"))),
        ("UDP 64 B, <1% loss", "pkt/s", Box::new(udp_small)),
        ("TCP request/response", "µs", Box::new(rr)),
    ];
    // Progress on a terminal only.
    let progress = !json_out && std::io::stderr().is_terminal();
    // figures[test][side] = one Figure per run.
    let mut figures = vec![vec![Vec::new(); sides.len()]; tests.len()];
    for run in 0..runs {
        for (t, (name, _, f)) in tests.iter().enumerate() {
            for (s, side) in sides.iter().enumerate() {
                if progress {
                    eprint!("\r\x1b[Krun {}/{runs}: {name}, {}…", run + 1, side.name());
                }
                match measured(side.as_ref(), f) {
                    Ok(fig) => figures[t][s].push(fig),
                    Err(e) => {
                        eprintln!("\nxde-kbench: {name} through {}: {e}", side.name());
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let mut report = Vec::new();
    for (t, (name, unit, _)) in tests.iter().enumerate() {
        let per_side: Vec<Value> = sides
            .iter()
            .zip(&figures[t])
            .map(|(side, figs)| {
                let col = |f: fn(&Figure) -> f64| -> Vec<f64> { figs.iter().map(f).collect() };
                let values = col(|f| f.value);
                json!({
                    "side": side.name(),
                    "values": values,
                    "median": median(&values),
                    "p99": col(|f| f.p99),
                    "cpu_ns_per_packet": median(&col(|f| f.cpu_ns)),
                    "own_cpu_ns_per_packet": median(&col(|f| f.daemon_ns)),
                })
            })
            .collect();
        let med = |i: usize| {
            per_side
                .get(i)
                .and_then(|s| s["median"].as_f64())
                .unwrap_or(0.0)
        };
        report.push(json!({
            "test": name,
            "unit": unit,
            "sides": per_side,
            "ratio_opte_to_kernel": med(0) / med(1).max(f64::MIN_POSITIVE),
        }));
    }
    // VM to VM, on a lab of its own once the guests' figures are in.
    let side_names: Vec<&'static str> = sides.iter().map(|s| s.name()).collect();
    drop(sides);
    let vm_figures = if vms {
        if progress {
            eprint!("\r\x1b[KVM to VM: booting four VMs…");
        }
        match vm_to_vm(&bins, &format!("{id}v"), runs) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("\nxde-kbench: VM to VM: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        Vec::new()
    };
    if progress {
        eprint!("\r\x1b[K");
    }
    if json_out {
        for (name, values) in &vm_figures {
            report.push(json!({
                "test": format!("VM to VM TCP (wget 64 MiB), {name}"),
                "unit": "Mbit/s",
                "sides": [{"side": name, "values": values, "median": median(values)}],
            }));
        }
        println!("{}", Value::Array(report));
        return ExitCode::SUCCESS;
    }
    println!("guest to guest across two sleds, {runs} runs each, interleaved; median (min–max)");
    if side_names.len() == 2 {
        println!("(this kernel has no Geneve devices: the kernel's side is VXLAN only)");
    }
    print!("\n{:<26}", "test");
    for name in &side_names {
        print!(" {name:>26}");
    }
    println!(
        " {:>7} {:>24} {:>12}",
        "ratio", "CPU ns/pkt (machine)", "xded ns/pkt"
    );
    for r in &report {
        let sides_r = r["sides"].as_array().cloned().unwrap_or_default();
        let nums = |s: &Value, k: &str| -> Vec<f64> {
            s[k].as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let cell = |v: Vec<f64>| {
            let (lo, hi) = spread(&v);
            format!("{:.0} ({:.0}–{:.0})", median(&v), lo, hi)
        };
        let unit = r["unit"].as_str().unwrap_or("");
        print!(
            "{:<26}",
            format!("{} [{unit}]", r["test"].as_str().unwrap_or(""))
        );
        for s in &sides_r {
            print!(" {:>26}", cell(nums(s, "values")));
        }
        let cpu: Vec<String> = sides_r
            .iter()
            .map(|s| format!("{:.0}", s["cpu_ns_per_packet"].as_f64().unwrap_or(0.0)))
            .collect();
        let own = sides_r
            .first()
            .and_then(|s| s["own_cpu_ns_per_packet"].as_f64())
            .unwrap_or(0.0);
        println!(
            " {:>7.2} {:>24} {:>12.0}",
            r["ratio_opte_to_kernel"].as_f64().unwrap_or(0.0),
            cpu.join(" | "),
            own
        );
        if unit == "µs" {
            print!("{:<26}", "  99th percentile [µs]");
            let mut p99 = Vec::new();
            for s in &sides_r {
                let v = nums(s, "p99");
                p99.push(median(&v));
                print!(" {:>26}", cell(v));
            }
            let ratio = p99.first().copied().unwrap_or(0.0)
                / p99.get(1).copied().unwrap_or(0.0).max(f64::MIN_POSITIVE);
            println!(" {ratio:>7.2}");
        }
    }
    println!(
        "\n(ratio: OPTE / the kernel's VXLAN; for latency, lower is better. CPU per packet: \
         busy time over underlay packets, a kernel packet often being a 64 KB GSO super-frame)"
    );
    if !vm_figures.is_empty() {
        println!("\nVM to VM across two sleds through the daemons (QEMU, TCG; wget of 64 MiB)");
        for (name, values) in &vm_figures {
            let (lo, hi) = spread(values);
            println!(
                "  {name:<22} {:>6.0} Mbit/s ({lo:.0}–{hi:.0})",
                median(values)
            );
        }
    }
    ExitCode::SUCCESS
}

/// The size of the file VMs fetch from each other.
const VM_FILE_MIB: u64 = 64;

/// Two VMs on two sleds, on `--vmm` TAP ports and on vhost-user ports: each pair's
/// throughput, one fetching a file from the other's web server, `runs` times each,
/// interleaved. (name, Mbit/s per run) per attachment.
fn vm_to_vm(bins: &Bins, id: &str, runs: usize) -> Result<Vec<(String, Vec<f64>)>, String> {
    let kernel = vm::debian_kernel_for_this_build()?;
    let mut lab = Lab::build(bins, id, 2, &[])?;
    let initramfs = lab.dir.join("vm.initrd");
    vm::initramfs(&kernel, &initramfs)?;
    let mut pairs: Vec<(String, Vm, Vm)> = Vec::new();
    for (kind, first) in [("TAP (--vmm)", 10u8), ("vhost-user", 20)] {
        let mut pair = Vec::new();
        for (i, sled) in [(first, 0usize), (first + 1, 1)] {
            let g = GuestSpec::new(&format!("vm{i}"), 100, 30, i, sled);
            let vhost_user = kind == "vhost-user";
            let (mut v, _) = vm::boot_on_port(&mut lab, &g, vhost_user, &kernel, &initramfs, 384)?;
            v.udhcpc(std::time::Duration::from_secs(60))?;
            pair.push(v);
        }
        let (Some(client), Some(mut server)) = (pair.pop(), pair.pop()) else {
            return Err("a VM pair".into());
        };
        let t = std::time::Duration::from_secs(60);
        server.ok(
            &format!(
                "mkdir -p /www && dd if=/dev/zero of=/www/f bs=1M count={VM_FILE_MIB} 2>/dev/null \
                 && httpd -p 80 -h /www"
            ),
            t,
        )?;
        pairs.push((kind.to_string(), server, client));
    }
    let mut figures: Vec<(String, Vec<f64>)> = pairs
        .iter()
        .map(|(k, ..)| (k.clone(), Vec::new()))
        .collect();
    for _ in 0..runs {
        for (i, (_, _, client)) in pairs.iter_mut().enumerate() {
            let server_ip = format!("172.30.0.{}", [10, 20][i]);
            let start = std::time::Instant::now();
            client.ok(
                &format!("wget -q -O /dev/null http://{server_ip}/f"),
                std::time::Duration::from_secs(300),
            )?;
            let secs = start.elapsed().as_secs_f64();
            figures[i]
                .1
                .push((VM_FILE_MIB * 8 * 1024 * 1024) as f64 / secs / 1e6);
        }
    }
    drop(pairs);
    drop(lab);
    Ok(figures)
}
