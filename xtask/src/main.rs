//! `cargo xtask`: the project's tasks.
//!
//! - `demo [--keep | --down | --vm]`: the project's main job, a small VPC on this machine
//!   (see `lab/src/bin/xde-demo.rs`), built in release after installing what it needs;
//!   `--vm` adds a virtual machine on a port.
//! - `kbench [--runs N] [--json] [--no-vm]`: OPTE's Linux host against the kernel's
//!   bridge and VXLAN, and VM to VM by TAP and by vhost-user (`lab/src/bin/xde-kbench.rs`),
//!   built in release; `cargo kbench` is its alias.
//! - `test`: everything CI checks, in the order a failure is cheapest to see: formatting,
//!   clippy (warnings are errors), the `no_std` build of the engine crates, and every test of
//!   the workspace (which includes the tshark dissection check and the fuzz corpus replay).
//!   Installs what the tests need (Debian packages) if it is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use xtask::{kmod, linux_pkg};

/// The Debian packages the tests and the demo use, each with a command that shows it is installed: tshark
/// dissects our packets; the daemon's end-to-end tests make namespaces and links (iproute2)
/// and run real clients in them (dhclient, ping, rdisc6, iperf3, curl); ethtool turns a
/// link's offloads off so the kernel segments and checksums what crosses it.
const APT_PACKAGES: &[(&str, &str)] = &[
    ("tshark", "tshark"),
    ("iproute2", "ip"),
    ("isc-dhcp-client", "dhclient"),
    ("iputils-ping", "ping"),
    ("ndisc6", "rdisc6"),
    ("iperf3", "iperf3"),
    ("curl", "curl"),
    ("ethtool", "ethtool"),
    // A real VM on a port: QEMU, and the initramfs's busybox (static: no libraries in
    // there) and archiver. The guest's kernel is fetched as a package by the test itself.
    ("qemu-system-x86", "qemu-system-x86_64"),
    (
        "busybox-static",
        "dpkg-query -W -f '${Status}' busybox-static | grep -q 'install ok installed'",
    ),
    ("cpio", "cpio"),
    // Containers: the reference IPAM plugin the CNI plugin delegates to, and a real
    // Docker engine (runc) for the Docker driver's test.
    (
        "containernetworking-plugins",
        "test -x /usr/lib/cni/host-local",
    ),
    ("docker.io", "dockerd"),
    // The daemon's USDT probes traced for real.
    ("bpftrace", "bpftrace"),
];

/// The metapackage naming Debian's cloud kernel, which the VM tests fetch with
/// `apt-get download`: the package lists must know it.
const VM_KERNEL_META: &str = "linux-image-cloud-amd64";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(&args[1..]),
        Some("kbench") => kbench(&args[1..]),
        Some("build") => build(&args[1..]),
        Some("package") => package(&args[1..]).map(|deb| println!("{}", deb.display())),
        Some("install") => install(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!(
                "usage: cargo xtask <task>\n\ntasks:\n  demo [--keep | --down | --vm]  a small VPC on this machine, step by step (root; installs what it needs)\n  kbench [--runs N] [--json] [--no-vm]  OPTE's Linux host against the kernel's bridge + VXLAN, and VM to VM by TAP and vhost-user (root)\n  test                     format, lint and run every test (installs what tests need)\n  build [xde|xde-link|opteadm|all]  the illumos module (checked: its symbols; linked with ld -r on illumos) and opteadm\n  package [--skip-build]   the Debian package of the Linux host (target/package/opte_VERSION_ARCH.deb)\n  install [--root DIR] [--from-package] [--skip-build]  install the Linux host (xded, opteadm, opte-cni, opte-docker, systemd units, bpftrace scripts)"
            );
            Ok(())
        }
        Some(other) => Err(format!("unknown task {other:?}; try `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository's root (xtask lives one level below it).
fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// Build the programs a Linux installation carries (release).
fn build_host() -> Result<(), String> {
    step(
        "cargo build --release (xded, opteadm, opte-cni, opte-docker)",
        cargo(&[
            "build",
            "--release",
            "-p",
            "xde",
            "-p",
            "opteadm",
            "-p",
            "opte-cni",
            "--bins",
        ]),
    )
}

/// `cargo xtask build`: the illumos module (`xde`, its symbols checked, linked into
/// `target/kmod/xde` on illumos) and `opteadm` (release).
fn build(args: &[String]) -> Result<(), String> {
    let what: Vec<&str> = if args.is_empty() {
        vec!["all"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    for w in what {
        match w {
            "xde" => build_kmod()?,
            "xde-link" => build_link()?,
            "opteadm" => step(
                "cargo build --release -p opteadm",
                cargo(&["build", "--release", "-p", "opteadm"]),
            )?,
            "all" => {
                build_kmod()?;
                build_link()?;
                step(
                    "cargo build --release -p opteadm",
                    cargo(&["build", "--release", "-p", "opteadm"]),
                )?;
            }
            w => {
                return Err(format!(
                    "build: unknown part {w:?} (xde, xde-link, opteadm or all)"
                ));
            }
        }
    }
    Ok(())
}

/// The devfsadm link module, checked.
fn build_link() -> Result<(), String> {
    eprintln!("xtask: == xde-link, the devfsadm link module");
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let so = kmod::build_link(&cargo_bin, &repo_root())?;
    eprintln!(
        "xtask: {}: no panic machinery, both tables exported",
        so.display()
    );
    Ok(())
}

/// The module's static library, its symbol check, and on illumos the link.
fn build_kmod() -> Result<(), String> {
    eprintln!(
        "xtask: == the illumos module (kernel code generation; target {})",
        kmod::target()
    );
    let repo = repo_root();
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let lib = kmod::build(&cargo_bin, &repo)?;
    let problems = kmod::check(&lib, &kmod::allowed(&repo)?)?;
    if !problems.is_empty() {
        return Err(format!(
            "the module's symbols:\n  {}",
            problems.join("\n  ")
        ));
    }
    eprintln!(
        "xtask: {}: every undefined symbol is the kernel's; nothing unwinds or names std",
        lib.display()
    );
    if cfg!(target_os = "illumos") {
        let m = kmod::link(&lib, &repo)?;
        eprintln!("xtask: linked {}", m.display());
    }
    Ok(())
}

/// `cargo xtask package`: the Debian package, in `target/package`.
fn package(args: &[String]) -> Result<PathBuf, String> {
    if cfg!(target_os = "illumos") {
        if !args.iter().any(|a| a == "--skip-build") {
            build(&[])?;
        }
        let repo = repo_root();
        let out = Command::new("bash")
            .arg(repo.join("pkg/illumos/build.sh"))
            .output()
            .map_err(|e| format!("pkg/illumos/build.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "pkg/illumos/build.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let p5p = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        return Ok(repo.join("pkg/illumos").join(p5p));
    }
    let mut skip_build = false;
    for a in args {
        match a.as_str() {
            "--skip-build" => skip_build = true,
            a => return Err(format!("package: unknown argument {a:?}")),
        }
    }
    if !skip_build {
        build_host()?;
    }
    let repo = repo_root();
    let files = linux_pkg::files(&repo.join("target/release"), &repo)?;
    let out = repo.join("target/package");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    linux_pkg::build_deb(
        &files,
        &out,
        &linux_pkg::version(&repo),
        linux_pkg::Compression::Small,
    )
}

/// `cargo xtask install`: the Linux host's files under `--root` (default `/`), or the
/// package built by `package` installed with dpkg (`--from-package`). With systemd
/// running and the root `/`, the units are loaded (the package's own scripts also start
/// the daemon).
fn install(args: &[String]) -> Result<(), String> {
    let (mut root, mut from_package, mut skip_build) = (PathBuf::from("/"), false, false);
    let mut unfreeze = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" => {
                root = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--root takes a directory")?
            }
            "--from-package" => from_package = true,
            "--skip-build" => skip_build = true,
            "--force-package-unfreeze" => unfreeze = true,
            a => return Err(format!("install: unknown argument {a:?}")),
        }
    }
    if cfg!(target_os = "illumos") {
        return install_illumos(from_package, skip_build, unfreeze);
    }
    if from_package {
        let mut pa = Vec::new();
        if skip_build {
            pa.push("--skip-build".to_string());
        }
        let deb = package(&pa)?;
        let mut c = Command::new("dpkg");
        if root != Path::new("/") {
            c.arg(format!("--root={}", root.display()))
                .args(["--force-script-chrootless", "--force-depends"]);
        }
        c.arg("-i").arg(&deb);
        return step(&format!("dpkg -i {}", deb.display()), c);
    }
    if !skip_build {
        build_host()?;
    }
    let repo = repo_root();
    let files = linux_pkg::files(&repo.join("target/release"), &repo)?;
    linux_pkg::install(&files, &root)?;
    for f in &files {
        eprintln!("xtask: installed {}", root.join(&f.to).display());
    }
    if root == Path::new("/") && Path::new("/run/systemd/system").is_dir() {
        step("systemctl daemon-reload", {
            let mut c = Command::new("systemctl");
            c.arg("daemon-reload");
            c
        })?;
    }
    Ok(())
}

/// SPEC §7.10's install on Helios: the files copied and the driver added (`add_drv`), or
/// the IPS package built and installed with `pkg`.
fn install_illumos(from_package: bool, skip_build: bool, unfreeze: bool) -> Result<(), String> {
    let run = |name: &str, prog: &str, args: &[&str]| {
        let mut c = Command::new(prog);
        c.args(args);
        step(name, c)
    };
    if from_package {
        let mut pa = Vec::new();
        if skip_build {
            pa.push("--skip-build".to_string());
        }
        let p5p = package(&pa)?;
        if unfreeze {
            let _ = run("pkg unfreeze opte", "pkg", &["unfreeze", "opte"]);
        }
        let p5p = p5p.to_string_lossy().into_owned();
        return run("pkg install opte", "pkg", &["install", "-g", &p5p, "opte"]);
    }
    if !skip_build {
        build(&[])?;
    }
    let repo = repo_root();
    // A driver still attached is detached first; these fail harmlessly when it is not.
    let _ = run(
        "opteadm clear-xde-underlay",
        "/opt/oxide/opte/bin/opteadm",
        &["clear-xde-underlay"],
    );
    let _ = run("rem_drv xde", "rem_drv", &["xde"]);
    let copies = [
        (repo.join("xde/xde.conf"), "/kernel/drv/xde.conf"),
        (repo.join("target/kmod/xde"), "/kernel/drv/amd64/xde"),
        (
            repo.join("target/release/opteadm"),
            "/opt/oxide/opte/bin/opteadm",
        ),
    ];
    for (from, to) in &copies {
        if let Some(d) = Path::new(to).parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        std::fs::copy(from, to).map_err(|e| format!("{} -> {to}: {e}", from.display()))?;
    }
    run(
        "add_drv xde",
        "add_drv",
        &["-m", "xde 0755 root sys", "xde"],
    )
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Build the Linux host's programs and the lab's (release).
fn build_lab() -> Result<(), String> {
    step(
        "build xded, xde-boundary, opteadm, the demo and kbench (release)",
        cargo(&[
            "build",
            "--release",
            "-p",
            "xde",
            "-p",
            "opteadm",
            "-p",
            "xde-lab",
            "--bins",
        ]),
    )
}

/// A program of the lab, built in release, run with `args`.
fn run_release(program: &str, args: &[&str]) -> Result<(), String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let status = Command::new(target.join("release").join(program))
        .args(args)
        .status()
        .map_err(|e| format!("running {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} failed ({status})"))
    }
}

/// `cargo kbench`: as root, iperf3 and sockperf installed, built in release, then
/// `xde-kbench` (a benchmark: it prints figures and never fails on them).
fn kbench(args: &[String]) -> Result<(), String> {
    if !is_root() {
        return Err(
            "kbench must run as root: it makes network namespaces, bridges and TAP devices".into(),
        );
    }
    ensure_apt_packages()?;
    ensure_packages(&[("sockperf", "sockperf")])?;
    build_lab()?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_release("xde-kbench", &args)
}

/// The demo: as root, what it needs installed, built in release, then run
/// (`target/release/xde-demo`, with `--keep` or `--down` passed on).
fn demo(args: &[String]) -> Result<(), String> {
    if !is_root() {
        return Err(
            "the demo must run as root: it makes network namespaces, bridges and TAP devices \
             (try: sudo -E cargo xtask demo)"
                .into(),
        );
    }
    let flags: Vec<&str> = args.iter().map(String::as_str).collect();
    if !matches!(flags.as_slice(), [] | ["--keep"] | ["--down"] | ["--vm"]) {
        return Err(format!(
            "demo takes one of --keep, --down and --vm, not {}",
            flags.join(" ")
        ));
    }
    if flags != ["--down"] {
        ensure_apt_packages()?;
    }
    build_lab()?;
    run_release("xde-demo", &flags).map_err(|_| "the demo failed".to_string())
}

fn test() -> Result<(), String> {
    ensure_apt_packages()?;
    step(
        "cargo fmt --check",
        cargo(&["fmt", "--all", "--", "--check"]),
    )?;
    step(
        "clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "no_std build of the engine and the host core",
        cargo(&[
            "build",
            "-p",
            "opte",
            "-p",
            "opte-api",
            "-p",
            "oxide-vpc",
            "-p",
            "xde",
            "--no-default-features",
        ]),
    )?;
    step(
        "the kernel configuration (kernel locks) of the engine and the host core",
        cargo(&[
            "build",
            "-p",
            "opte",
            "-p",
            "oxide-vpc",
            "-p",
            "xde",
            "--no-default-features",
            "--features",
            "xde/kernel",
        ]),
    )?;
    build_kmod()?;
    build_link()?;
    eprintln!("xtask: == workspace tests (with tshark check and fuzz corpus replay)");
    let (mut passed, mut failed) = run_tests(cargo(&["test", "--workspace", "--no-fail-fast"]))?;
    // The engine's own unit tests once more on the kernel's lock backend (its lock calls
    // played by a mock kernel inside the test binary).
    eprintln!("xtask: == the engine's unit tests on kernel locks");
    let (p, f) = run_tests(cargo(&[
        "test",
        "-p",
        "opte",
        "--features",
        "kernel",
        "--lib",
    ]))?;
    passed += p;
    failed += f;
    // One closing line for the whole run: cargo prints a result per test binary, and the
    // last of those is often a crate's empty doc-test run.
    println!("tests: {passed} passed, {failed} failed");
    if failed > 0 {
        return Err(format!("{failed} tests failed"));
    }
    Ok(())
}

/// Run `cmd` (a `cargo test`), passing its output through, and add up the passed and
/// failed counts of its `test result:` lines.
fn run_tests(mut cmd: Command) -> Result<(u64, u64), String> {
    use std::io::{BufRead, BufReader, Write};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo test: cannot run: {e}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout().lock();
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("cargo test: reading its output: {e}"))?;
            let _ = writeln!(stdout, "{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                passed += count_before(rest, " passed");
                failed += count_before(rest, " failed");
            }
        }
    }
    let status = child.wait().map_err(|e| format!("cargo test: {e}"))?;
    if !status.success() && failed == 0 {
        return Err(format!("cargo test failed ({status})"));
    }
    Ok((passed, failed))
}

/// The number just before `word` in a `test result:` line ("ok. 12 passed; 0 failed; ...").
fn count_before(line: &str, word: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(word.trim_start())
                .map(str::trim)
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn cargo(args: &[&str]) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(args);
    c
}

fn step(name: &str, mut cmd: Command) -> Result<(), String> {
    eprintln!("xtask: == {name}");
    let status = cmd
        .status()
        .map_err(|e| format!("{name}: cannot run: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name}: failed ({status})"))
    }
}

/// Whether `check` holds: a command on the PATH, or (with a space in it) a shell test.
fn have_command(check: &str) -> bool {
    let script = if check.contains(' ') {
        check.to_string()
    } else {
        format!("command -v {check} >/dev/null 2>&1")
    };
    Command::new("sh")
        .args(["-c", &script])
        .status()
        .is_ok_and(|s| s.success())
}

fn ensure_apt_packages() -> Result<(), String> {
    ensure_packages(APT_PACKAGES)?;
    let listed = Command::new("apt-cache")
        .args(["depends", VM_KERNEL_META])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Depends: linux-image-"));
    if listed || !is_root() {
        return Ok(());
    }
    step("apt-get update (for the VM's kernel package)", {
        let mut c = Command::new("apt-get");
        c.args(["update", "-q"]);
        c
    })
}

/// Install those of `packages` (Debian package, and a command it provides or a shell test
/// that it is installed) that are missing.
fn ensure_packages(packages: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, cmd)| !have_command(cmd))
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "these Debian packages are needed: {}; install them (apt-get install {}) or run as root",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    step("apt-get update", {
        let mut c = Command::new("apt-get");
        c.args(["update", "-q"]);
        c
    })?;
    step(&format!("apt-get install {}", missing.join(" ")), {
        let mut c = Command::new("apt-get");
        c.args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing);
        c.env("DEBIAN_FRONTEND", "noninteractive");
        c
    })
}

#[cfg(test)]
mod tests {
    use super::count_before;

    #[test]
    fn counts_come_from_cargo_test_result_lines() {
        let ok =
            "ok. 156 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 4.29s";
        assert_eq!(
            (count_before(ok, " passed"), count_before(ok, " failed")),
            (156, 0)
        );
        let bad =
            "FAILED. 12 passed; 3 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.1s";
        assert_eq!(
            (count_before(bad, " passed"), count_before(bad, " failed")),
            (12, 3)
        );
        assert_eq!(count_before("garbage", " passed"), 0);
    }
}
