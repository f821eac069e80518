//! The daemon's USDT probes, as root: the engine's probe points and the host's own (bad
//! packet, guest loopback, next hop) are in `xded` as SystemTap notes of provider `opte`
//! (checked with `readelf -n`), each with a bpftrace and a D script; and
//! `dtrace/bpftrace/port-process.bt` run against a sled's daemon while a guest pings a
//! guest on the other sled prints the port and the ICMP flow, both ways. tracefs is mounted for bpftrace if it is not (and
//! unmounted again). Where the kernel refuses bpftrace (no BPF, no uprobes), the test says
//! so and keeps to the notes.

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use xde_lab::vpc::{Bins, GuestSpec, Lab};
use xde_lab::{Proc, root_or_skip, try_ok, unique};

fn bins() -> Bins {
    Bins {
        xded: PathBuf::from(env!("CARGO_BIN_EXE_xded")),
        boundary: PathBuf::from(env!("CARGO_BIN_EXE_xde-boundary")),
    }
}

/// Every probe point of the engine, as the notes name them.
const PROBES: &[&str] = &[
    "port-process-entry",
    "port-process-return",
    "port-drop",
    "uft-hit",
    "uft-invalidate",
    "uft-tcp-closed",
    "layer-process-entry",
    "layer-process-return",
    "rule-match",
    "rule-no-match",
    "rule-deny",
    "ht-run",
    "gen-desc-fail",
    "gen-ht-fail",
    "flow-expired",
    "tcp-flow-state",
    "tcp-err",
    "bad-packet",
    "guest-loopback",
    "next-hop",
    "mcast",
];

#[test]
fn probes_are_in_the_binary_and_every_one_has_a_script() {
    let notes = try_ok("readelf", &["-n", env!("CARGO_BIN_EXE_xded")]).unwrap();
    let bt_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dtrace/bpftrace");
    let d_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dtrace");
    let read_all = |dir: &Path, ext: &str| {
        let mut s = String::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == ext) {
                s += &std::fs::read_to_string(e.path()).unwrap();
            }
        }
        s
    };
    let (bt, d) = (read_all(&bt_dir, "bt"), read_all(&d_dir, "d"));
    for p in PROBES {
        assert!(
            notes.contains(&format!("Provider: opte\n    Name: {p}\n")),
            "probe {p} is not in xded's notes"
        );
        assert!(
            bt.contains(&format!("usdt:*:opte:{p}\n")),
            "no bpftrace script traces {p}"
        );
        let sdt = format!("sdt:xde::{p}");
        assert!(d.contains(&sdt), "no D script traces {sdt}");
    }
}

/// tracefs at /sys/kernel/tracing for as long as this lives, if it was not there.
struct Tracefs(bool);

impl Tracefs {
    fn ensure() -> Self {
        let mounted = std::fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/sys/kernel/tracing"));
        if mounted {
            return Self(false);
        }
        Self(try_ok("mount", &["-t", "tracefs", "nodev", "/sys/kernel/tracing"]).is_ok())
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.0 {
            let _ = try_ok("umount", &["/sys/kernel/tracing"]);
        }
    }
}

#[test]
fn bpftrace_sees_the_port_and_the_flow() {
    if !root_or_skip() {
        return;
    }
    let probe = try_ok("bpftrace", &["-e", "BEGIN { printf(\"ok\\n\"); exit(); }"]);
    if let Err(e) = probe {
        eprintln!("bpftrace cannot run here ({e}); the probes were checked in the notes only");
        return;
    }
    let _tracefs = Tracefs::ensure();
    let id = unique("usdt");
    let lab = Lab::build(
        &bins(),
        &id,
        2,
        &[
            GuestSpec::new("a1", 100, 30, 5, 0),
            GuestSpec::new("a2", 100, 30, 6, 1),
        ],
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dtrace/bpftrace/port-process.bt");
    let out_path = lab.dir.join("bpftrace.out");
    let mut bt = Proc::spawn(
        xde_lab::command("bpftrace")
            .arg("-p")
            .arg(lab.sleds[0].daemon.proc.pid().to_string())
            .arg(&script)
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    // Attached once the header is printed.
    let until = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&out_path)
        .unwrap_or_default()
        .contains("NAME")
    {
        assert!(bt.exited().is_none(), "bpftrace ended before attaching");
        assert!(Instant::now() < until, "bpftrace never attached");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (a1, a2) = (lab.guest("a1"), lab.guest("a2"));
    a1.ns
        .try_exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", &a2.ip4()])
        .unwrap();
    // Let the last lines out, then end it (SIGTERM, by PID).
    std::thread::sleep(Duration::from_millis(500));
    bt.stop();
    let out = std::fs::read_to_string(&out_path).unwrap();
    let (ip1, ip2) = (a1.ip4(), a2.ip4());
    let out_line = out.lines().find(|l| {
        l.starts_with("a1 ") && l.contains(" OUT ") && l.contains(&format!(":{ip1}:{ip2}:"))
    });
    assert!(out_line.is_some(), "no outbound ICMP of port a1 in:\n{out}");
    let in_line = out.lines().find(|l| {
        l.starts_with("a1 ") && l.contains(" IN ") && l.contains(&format!(":{ip2}:{ip1}:"))
    });
    assert!(in_line.is_some(), "no inbound ICMP of port a1 in:\n{out}");
    // The first echo request took the slow path, the next ones the compiled entry.
    assert!(out.contains(" SLOW ") && out.contains(" FAST "), "{out}");
}
