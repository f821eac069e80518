//! The demo, as `cargo xtask demo` runs it: every step passes (with `--vm`, the VM's too)
//! and nothing is left; kept with `--keep`, it is up until `--down` removes it. As root (CI is root). The demo
//! takes `xded`, `xde-boundary` and `opteadm` from beside itself: `cargo test --workspace`
//! (what `cargo xtask test` runs) builds them there.

use std::path::Path;
use std::process::Command;
use xde_lab::root_or_skip;

fn demo(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xde-demo"))
        .args(args)
        .output()
        .expect("xde-demo runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The demo's id, from its first line ("OPTE demo ID: ...").
fn id_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("OPTE demo "))
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("no id in the demo's output:\n{out}"))
        .to_string()
}

fn namespaces_of(id: &str) -> Vec<String> {
    let list = xde_lab::ok("ip", &["netns", "list"]);
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{id}-")))
        .map(String::from)
        .collect()
}

fn assert_all_passed(ok: bool, out: &str, steps: usize) {
    assert!(ok, "the demo failed:\n{out}");
    assert!(!out.contains('✗'), "{out}");
    assert!(
        out.contains(&format!("✓ all {steps} steps passed")),
        "{out}"
    );
    for step in [
        "a1 leases its addresses (dhclient -4, -6): 172.30.0.5, fd30::5, router 172.30.0.1",
        "ping a1 → a2, across sleds: 3/3 answered",
        "TCP a1 → a2 (iperf3, 3 s):",
        "the internet saw 198.51.100.13 port",
        "the internet saw 198.51.100.14 port",
        "b1 ↛ a1, b1 ↛ a2, a1 ↛ b1",
        "$ opteadm dump-v2p",
    ] {
        assert!(out.contains(step), "no {step:?} in:\n{out}");
    }
}

#[test]
fn the_demo_with_a_vm_passes_every_step_and_leaves_nothing_behind() {
    if !root_or_skip() {
        return;
    }
    let (ok, out) = demo(&["--vm"]);
    let id = id_of(&out);
    assert_all_passed(ok, &out, 18);
    for step in [
        "✓ VM vm1 on sled 0: kernel, initramfs, boot (QEMU, TCG)",
        "✓ vm1 leases its address (udhcpc): 172.30.0.7/32 via 172.30.0.1",
        "✓ ping vm1 → a2, across sleds",
        "✓ vm1 fetches 1 MiB from a2 over HTTP (busybox wget): sha256",
        "✓ VM vm2 on sled 1 by vhost-user: boot",
        "✓ vm2 leases its address (udhcpc): 172.30.0.8/32 via 172.30.0.1",
        "✓ ping vm2 → vm1, across sleds (vhost-user to TAP): round-trip",
    ] {
        assert!(out.contains(step), "no {step:?} in:\n{out}");
    }
    // No process is left that names the demo (QEMU's command line holds its directory).
    let left = Command::new("pgrep").args(["-af", &id]).output().unwrap();
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert!(
        namespaces_of(&id).is_empty(),
        "left: {:?}",
        namespaces_of(&id)
    );
    assert!(
        !std::env::temp_dir().join(&id).exists(),
        "its files are removed"
    );
}

#[test]
fn a_kept_demo_stays_up_until_down_removes_it() {
    if !root_or_skip() {
        return;
    }
    let (ok, out) = demo(&["--keep"]);
    let id = id_of(&out);
    // Whatever happens below, this demo is taken down.
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = Command::new(env!("CARGO_BIN_EXE_xde-demo"))
                .args(["--down", &self.0])
                .output();
            xde_lab::vpc::remove_by_id(&self.0);
        }
    }
    let _down = Down(id.clone());
    assert_all_passed(ok, &out, 11);
    assert!(out.contains("cargo xtask demo --down"), "{out}");
    // Up: a guest still reaches the internet, through the daemons left running.
    let a1 = format!("{id}-a1");
    let seen = xde_lab::ok(
        "ip",
        &[
            "netns",
            "exec",
            &a1,
            "curl",
            "-sS",
            "--max-time",
            "5",
            "http://203.0.113.10/",
        ],
    );
    assert!(seen.starts_with("seen from 198.51.100.13 "), "{seen}");
    let state = Path::new("/run/opte-demo").join(format!("{id}.state"));
    let kept = xde_lab::vpc::State::from_text(&std::fs::read_to_string(&state).unwrap());
    assert_eq!(kept.namespaces.len(), 8, "{kept:?}");
    assert_eq!(
        kept.pids.len(),
        4,
        "2 daemons, boundary, web server: {kept:?}"
    );

    let (ok, out) = demo(&["--down", &id]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("removed demo {id} (4 processes, 8 namespaces)")),
        "{out}"
    );
    assert!(
        namespaces_of(&id).is_empty(),
        "left: {:?}",
        namespaces_of(&id)
    );
    assert!(!state.exists());
    for pid in kept.pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived --down"
        );
    }
    let (ok, out) = demo(&["--down", &id]);
    assert!(ok && out.contains("no kept demo"), "{out}");
}

#[test]
fn the_demo_run_by_someone_else_than_root_says_so_and_stops() {
    if !root_or_skip() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // A copy of the demo that `nobody` may run wherever the checkout lives.
    let dir = std::env::temp_dir().join(xde_lab::unique("xdemo-nobody-"));
    std::fs::create_dir_all(&dir).unwrap();
    let me = dir.join("xde-demo");
    std::fs::copy(env!("CARGO_BIN_EXE_xde-demo"), &me).unwrap();
    for (p, mode) in [(&dir, 0o755), (&me, 0o755)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let out = Command::new(&me).uid(65534).gid(65534).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("must run as root"), "{err}");
    assert!(out.stdout.is_empty(), "it started nothing");
}
