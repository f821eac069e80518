//! `xde-demo`: a small VPC on this machine, shown step by step (what `cargo xtask demo`
//! runs). Two sleds running `xded` joined by a rack switch, two guests of one VPC on
//! different sleds and a guest of a second VPC, boundary services and an internet host
//! with a web server. Each step prints one line, ✓ or ✗ and what it measured; then
//! everything is removed, and the exit status is 0 only if every step passed.
//!
//! `xde-demo [--keep]`: `--keep` leaves the VPC up and says how to enter each guest.
//! `xde-demo --vm`: the same, and then a virtual machine on a TAP port of sled 0 (QEMU
//! under TCG, Debian's cloud kernel fetched as a package, a busybox initramfs built on the
//! spot) that leases its address from the OPTE gateway, pings a guest across sleds and
//! fetches a file from it; and a second VM on sled 1, on a vhost-user port, that leases
//! and pings the first.
//! `xde-demo --down [ID]`: removes the kept ones (or the one named).
//! `xde-demo --compare`: iperf3 TCP, one stream, guest to guest across sleds through the
//! daemons and through the same topology built with the kernel alone (bridge + VXLAN),
//! interleaved, three runs each. As root. `xded`, `xde-boundary` and `opteadm`
//! are taken from beside this program.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;
use xde_lab::vpc::{self, Bins, GuestSpec, INTERNET_IP, Lab, State};
use xde_lab::{Proc, is_root, unique};

/// Where kept demos are written down, for `--down`.
const STATE_DIR: &str = "/run/opte-demo";

const USAGE: &str = "usage: xde-demo [--keep | --vm] | --down [ID] | --compare";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve-http", addr] => serve_http(addr),
        [] => demo(false, false),
        ["--keep"] => demo(true, false),
        ["--vm"] => demo(false, true),
        ["--down"] => down(None),
        ["--down", id] => down(Some(id)),
        ["--compare"] => compare(3),
        ["-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The internet host's web server, in the foreground.
fn serve_http(addr: &str) -> ExitCode {
    let l = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("xde-demo serve-http: {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let never = std::sync::atomic::AtomicBool::new(false);
    match xde_lab::http::serve(l, &never) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xde-demo serve-http: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The programs beside this one.
fn beside_me(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    let p = me.with_file_name(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} is missing (build it: cargo build -p xde -p opteadm)",
            p.display()
        ))
    }
}

/// Steps, printed as they pass or fail.
struct Steps {
    failed: usize,
    passed: usize,
}

impl Steps {
    fn run(&mut self, what: &str, f: impl FnOnce() -> Result<String, String>) -> bool {
        // On a terminal the step shows while it runs, and its result replaces it.
        let tty = std::io::stdout().is_terminal();
        if tty {
            print!("  {what} …");
            let _ = std::io::stdout().flush();
        }
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        let clear = if tty { "\r\x1b[K" } else { "" };
        match &r {
            Ok(m) => {
                self.passed += 1;
                println!("{clear}✓ {what}: {m} ({secs:.1} s)");
            }
            Err(e) => {
                self.failed += 1;
                println!("{clear}✗ {what}: {e}");
            }
        }
        r.is_ok()
    }
}

fn demo(keep: bool, vm: bool) -> ExitCode {
    if !is_root() {
        eprintln!(
            "xde-demo must run as root: it makes network namespaces, bridges and TAP devices (try sudo)"
        );
        return ExitCode::FAILURE;
    }
    let bins = match (
        beside_me("xded"),
        beside_me("xde-boundary"),
        beside_me("opteadm"),
    ) {
        (Ok(xded), Ok(boundary), Ok(opteadm)) => (Bins { xded, boundary }, opteadm),
        (a, b, c) => {
            for e in [a.err(), b.err(), c.err()].into_iter().flatten() {
                eprintln!("xde-demo: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    for tool in ["ip", "dhclient", "ping", "iperf3", "curl"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("xde-demo: {tool} is not installed (cargo xtask demo installs it)");
            return ExitCode::FAILURE;
        }
    }
    let id = unique("xdemo");
    vpc::on_interrupt_remove(id.clone());
    let (bins, opteadm) = bins;
    let a = 100;
    let b = 200;
    let guests = [
        GuestSpec::new("a1", a, 30, 5, 0).snat("198.51.100.13", 1025..=4096),
        GuestSpec::new("a2", a, 30, 6, 1).snat("198.51.100.13", 4097..=8192),
        GuestSpec::new("b1", b, 31, 5, 1).snat("198.51.100.14", 1025..=4096),
    ];
    println!("OPTE demo {id}: a VPC on this machine, in network namespaces");
    println!("  sled 0: a1 (VPC {a})    sled 1: a2 (VPC {a}), b1 (VPC {b})");
    println!("  rack switch: two bridges; boundary services; internet host {INTERNET_IP}");
    let mut steps = Steps {
        failed: 0,
        passed: 0,
    };
    let mut lab = None;
    steps.run(
        "build the VPC (namespaces, xded ×2, xde-boundary, dhclient)",
        || {
            let l = Lab::build(&bins, &id, 2, &guests)?;
            lab = Some(l);
            Ok("2 sleds, 3 guests".into())
        },
    );
    let Some(mut lab) = lab else {
        vpc::remove_by_id(&id);
        return ExitCode::FAILURE;
    };
    let web = Proc::spawn(
        lab.internet
            .command(&std::env::current_exe().unwrap_or_default())
            .args(["serve-http", &format!("{INTERNET_IP}:80")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    for g in &guests {
        let guest = lab.guest(&g.name);
        steps.run(
            &format!("{} leases its addresses (dhclient -4, -6)", g.name),
            || leased(guest),
        );
    }
    let (a1, a2, b1) = (lab.guest("a1"), lab.guest("a2"), lab.guest("b1"));
    steps.run("ping a1 → a2, across sleds", || ping(a1, &a2.ip4()));
    steps.run("ping -6 a1 → a2, across sleds", || ping(a1, &a2.ip6()));
    steps.run("TCP a1 → a2 (iperf3, 3 s)", || iperf3(a1, a2));
    for (g, what) in [(a1, "SNAT"), (b1, "SNAT, VPC 200")] {
        steps.run(
            &format!("curl {} → http://{INTERNET_IP}/ ({what})", g.name),
            || curl(g),
        );
    }
    steps.run("VPC 200 and VPC 100 cannot reach each other", || {
        let mut tried = Vec::new();
        for (from, to) in [(b1, a1), (b1, a2), (a1, b1)] {
            if ping(from, &to.ip4()).is_ok() {
                return Err(format!("{} reached {}", from.name, to.name));
            }
            tried.push(format!("{} ↛ {}", from.name, to.name));
        }
        Ok(tried.join(", "))
    });
    let sock0 = lab.sleds[0].daemon.sock();
    let mut dumps = String::new();
    steps.run("opteadm on sled 0 (below)", || {
        let cmds: [&[&str]; 6] = [
            &["list-ports"],
            &["list-layers", "-p", "a1"],
            &["dump-layer", "-p", "a1", "firewall"],
            &["dump-uft", "-p", "a1"],
            &["dump-tcp-flows", "-p", "a1"],
            &["dump-v2p"],
        ];
        for args in cmds {
            let o = Command::new(&opteadm)
                .arg("--socket")
                .arg(&sock0)
                .args(args)
                .output()
                .map_err(|e| format!("opteadm: {e}"))?;
            if !o.status.success() {
                return Err(format!(
                    "opteadm {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            dumps += &format!(
                "\n$ opteadm {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&o.stdout)
            );
        }
        Ok(format!("{} commands", cmds.len()))
    });
    for line in dumps.lines() {
        println!("    {line}");
    }
    if vm {
        vm_steps(&mut steps, &mut lab);
    }

    let total = steps.passed + steps.failed;
    if keep {
        let mut state = lab.keep();
        if let Ok(mut w) = web {
            w.keep();
            state.pids.push(w.pid());
        }
        match save_state(&id, &state) {
            Ok(path) => {
                println!("\nKept. Enter a guest:");
                for g in &lab.guests {
                    println!(
                        "  ip netns exec {} bash    # {} {} {}",
                        g.ns.name(),
                        g.name,
                        g.ip4(),
                        g.ip6()
                    );
                }
                for (i, s) in lab.sleds.iter().enumerate() {
                    println!(
                        "  opteadm --socket {} list-ports    # sled {i}",
                        s.daemon.sock().display()
                    );
                }
                println!(
                    "  ip netns exec {} curl http://{INTERNET_IP}/",
                    lab.guests[0].ns.name()
                );
                println!(
                    "Remove it: cargo xtask demo --down   (written down in {})",
                    path.display()
                );
            }
            Err(e) => {
                eprintln!("xde-demo: {e}; removing the demo");
                vpc::down(&state);
            }
        }
    } else {
        drop(web);
        drop(lab);
    }
    if steps.failed == 0 {
        println!("\n✓ all {total} steps passed");
        ExitCode::SUCCESS
    } else {
        println!("\n✗ {} of {total} steps failed", steps.failed);
        ExitCode::FAILURE
    }
}

/// A VM on a port of sled 0, in VPC 100: boot it, lease, ping a2 across sleds, fetch a
/// file from a2's web server (busybox httpd) and compare checksums. The VM is killed and
/// its files go with the lab.
fn vm_steps(steps: &mut Steps, lab: &mut Lab) {
    use std::time::Duration;
    use xde_lab::vm;
    let mut booted = None;
    let mut image = None;
    steps.run(
        "VM vm1 on sled 0: kernel, initramfs, boot (QEMU, TCG)",
        || {
            // Debian's cloud kernel, fetched once into target/tmp (beside the tests' copy).
            let kernel = vm::debian_kernel_for_this_build()?;
            let initramfs = lab.dir.join("vm.initrd");
            vm::initramfs(&kernel, &initramfs)?;
            let g = GuestSpec::new("vm1", 100, 30, 7, 0);
            let (v, cfg) = vm::boot_on_port(lab, &g, false, &kernel, &initramfs, 256)?;
            let msg = format!("pid {}, MAC {}", v.pid(), cfg.guest_mac);
            booted = Some(v);
            image = Some((kernel, initramfs));
            Ok(msg)
        },
    );
    let Some(mut v) = booted else {
        return;
    };
    let t = Duration::from_secs(30);
    steps.run("vm1 leases its address (udhcpc)", || {
        let l = v.udhcpc(t)?;
        Ok(format!("{} via {}", l.addr, l.router))
    });
    let a2 = lab.guest("a2");
    steps.run("ping vm1 → a2, across sleds", || v.ping(&a2.ip4(), t));
    steps.run("vm1 fetches 1 MiB from a2 over HTTP (busybox wget)", || {
        let www = lab.dir.join("www");
        std::fs::create_dir_all(&www).map_err(|e| e.to_string())?;
        let blob: Vec<u8> = (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(www.join("blob"), &blob).map_err(|e| e.to_string())?;
        let listen = format!("{}:8080", a2.ip4());
        let www_s = www.to_str().ok_or("a path that is not UTF-8")?;
        let _httpd = a2.ns.serve(
            "/bin/busybox",
            &["httpd", "-f", "-p", &listen, "-h", www_s],
            &listen,
        )?;
        let want = xde_lab::try_ok("sha256sum", &[&format!("{www_s}/blob")])?;
        let want = want
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let got = v.wget_sha256(&format!("http://{listen}/blob"), Duration::from_secs(60))?;
        if got == want {
            Ok(format!("sha256 {}…", &got[..16]))
        } else {
            Err(format!("sha256 {got}, sent {want}"))
        }
    });
    // A second VM, on the other sled, served by the daemon over vhost-user.
    let Some((kernel, initramfs)) = image else {
        return;
    };
    let mut second = None;
    steps.run("VM vm2 on sled 1 by vhost-user: boot", || {
        let g = GuestSpec::new("vm2", 100, 30, 8, 1);
        let (v2, cfg) = vm::boot_on_port(lab, &g, true, &kernel, &initramfs, 256)?;
        let msg = format!("pid {}, MAC {}", v2.pid(), cfg.guest_mac);
        second = Some(v2);
        Ok(msg)
    });
    let Some(mut v2) = second else {
        return;
    };
    steps.run("vm2 leases its address (udhcpc)", || {
        let l = v2.udhcpc(t)?;
        Ok(format!("{} via {}", l.addr, l.router))
    });
    steps.run("ping vm2 → vm1, across sleds (vhost-user to TAP)", || {
        v2.ping("172.30.0.7", t)
    });
}

/// The guest's leased addresses and router, checked against its configuration.
fn leased(g: &vpc::Guest) -> Result<String, String> {
    let v4 =
        g.ns.try_exec(&["ip", "-4", "-o", "addr", "show", "dev", &g.name])?;
    let v6 = g.ns.try_exec(&[
        "ip", "-6", "-o", "addr", "show", "dev", &g.name, "scope", "global",
    ])?;
    let route = g.ns.try_exec(&["ip", "-4", "route", "show", "default"])?;
    let want4 = format!("inet {}/", g.ip4());
    let want6 = format!("inet6 {}/", g.ip6());
    if !v4.contains(&want4) {
        return Err(format!("no {}: {}", g.ip4(), v4.trim()));
    }
    if !v6.contains(&want6) {
        return Err(format!("no {}: {}", g.ip6(), v6.trim()));
    }
    let via = route.split_whitespace().nth(2).unwrap_or("none");
    Ok(format!("{}, {}, router {via}", g.ip4(), g.ip6()))
}

/// Three pings: how many answered, the mean round trip.
fn ping(from: &vpc::Guest, to: &str) -> Result<String, String> {
    let out = from
        .ns
        .try_exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", to])
        .map_err(|_| format!("{to} did not answer"))?;
    let rtt = out
        .lines()
        .find_map(|l| l.split_once(" = ").filter(|(k, _)| k.starts_with("rtt")))
        .and_then(|(_, v)| v.split('/').nth(1))
        .unwrap_or("?");
    Ok(format!("3/3 answered, mean rtt {rtt} ms"))
}

/// iperf3 for 3 s from `from` to `to`: the throughput the receiver measured.
fn iperf3(from: &vpc::Guest, to: &vpc::Guest) -> Result<String, String> {
    let report = xde_lab::iperf3(&from.ns, &to.ns, &to.ip4(), &["-t", "3"])?;
    let bps = xde_lab::iperf3_received_bps(&report)?;
    let bytes = report["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    Ok(format!(
        "{:.0} Mbit/s, {:.0} MB received",
        bps / 1e6,
        bytes as f64 / 1e6
    ))
}

/// curl the internet host's web server: the address it saw.
fn curl(g: &vpc::Guest) -> Result<String, String> {
    let body = g.ns.try_exec(&[
        "curl",
        "-sS",
        "--max-time",
        "5",
        &format!("http://{INTERNET_IP}/"),
    ])?;
    let seen = body
        .trim()
        .strip_prefix("seen from ")
        .ok_or_else(|| format!("unexpected answer {body:?}"))?;
    let snat = &g.cfg.ipv4().and_then(|c| c.external_ips.snat.clone());
    let Some(snat) = snat else {
        return Ok(format!("the internet saw {seen}"));
    };
    let want = snat.external_ip.to_string();
    let port: u16 = seen
        .split_once(" port ")
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(0);
    if !seen.starts_with(&format!("{want} ")) || !snat.ports.contains(&port) {
        return Err(format!(
            "the internet saw {seen}, not {want} with a port in {}-{}",
            snat.ports.start(),
            snat.ports.end()
        ));
    }
    Ok(format!("the internet saw {seen}"))
}

/// iperf3 TCP (one stream, 3 s) guest to guest across sleds, through OPTE and through the
/// kernel's bridge + VXLAN, `runs` times each, interleaved; both and their ratio.
fn compare(runs: usize) -> ExitCode {
    if !is_root() {
        eprintln!("xde-demo --compare must run as root");
        return ExitCode::FAILURE;
    }
    let (Ok(xded), Ok(boundary)) = (beside_me("xded"), beside_me("xde-boundary")) else {
        eprintln!("xde-demo: xded or xde-boundary is missing beside me");
        return ExitCode::FAILURE;
    };
    let id = unique("xdcmp");
    vpc::on_interrupt_remove(id.clone());
    let built = Lab::build(
        &Bins { xded, boundary },
        &id,
        2,
        &[
            GuestSpec::new("a1", 100, 30, 5, 0),
            GuestSpec::new("a2", 100, 30, 6, 1),
        ],
    )
    .and_then(|lab| Ok((lab, xde_lab::kernel::KernelVpc::build(&id)?)));
    let (lab, kernel) = match built {
        Ok(b) => b,
        Err(e) => {
            eprintln!("xde-demo: {e}");
            vpc::remove_by_id(&id);
            return ExitCode::FAILURE;
        }
    };
    let (mut opte, mut kern) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let o = xde_lab::iperf3(
            &lab.guest("a1").ns,
            &lab.guest("a2").ns,
            "172.30.0.6",
            &["-t", "3"],
        )
        .and_then(|r| xde_lab::iperf3_received_bps(&r));
        let k = xde_lab::iperf3(
            &kernel.guests[0],
            &kernel.guests[1],
            "172.30.0.6",
            &["-t", "3"],
        )
        .and_then(|r| xde_lab::iperf3_received_bps(&r));
        match (o, k) {
            (Ok(o), Ok(k)) => {
                opte.push(o / 1e6);
                kern.push(k / 1e6);
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("xde-demo: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let show = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("iperf3 TCP, 1 stream, 3 s, guest to guest across sleds (Mbit/s):");
    println!("  OPTE (xded ×2, Geneve):      {}", show(&opte));
    println!("  kernel (bridge + VXLAN):     {}", show(&kern));
    let (mo, mk) = (median(&mut opte), median(&mut kern));
    println!(
        "  medians: OPTE {mo:.0}, kernel {mk:.0}; OPTE/kernel = {:.2}",
        mo / mk
    );
    ExitCode::SUCCESS
}

fn save_state(id: &str, s: &State) -> Result<PathBuf, String> {
    std::fs::create_dir_all(STATE_DIR).map_err(|e| format!("{STATE_DIR}: {e}"))?;
    let path = Path::new(STATE_DIR).join(format!("{id}.state"));
    std::fs::write(&path, s.to_text()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Remove kept demo `id`, or every kept demo.
fn down(id: Option<&str>) -> ExitCode {
    if !is_root() {
        eprintln!("xde-demo --down must run as root");
        return ExitCode::FAILURE;
    }
    let entries = match std::fs::read_dir(STATE_DIR) {
        Ok(e) => e.flatten().map(|e| e.path()).collect::<Vec<_>>(),
        Err(_) => Vec::new(),
    };
    let kept: Vec<PathBuf> = entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "state"))
        .filter(|p| id.is_none_or(|id| p.file_stem().is_some_and(|s| s == id)))
        .collect();
    if kept.is_empty() {
        println!("no kept demo to remove");
        return ExitCode::SUCCESS;
    }
    for p in kept {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let s = State::from_text(&text);
        vpc::down(&s);
        let _ = std::fs::remove_file(&p);
        println!(
            "removed demo {} ({} processes, {} namespaces)",
            p.file_stem()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default(),
            s.pids.len(),
            s.namespaces.len()
        );
    }
    ExitCode::SUCCESS
}
