//! `cargo xtask`: the project's tasks.
//!
//! - `test`: everything CI checks, in the order a failure is cheapest to see: formatting,
//!   clippy (warnings are errors), the `no_std` build of the engine crates, and every test of
//!   the workspace (which includes the tshark dissection check and the fuzz corpus replay).
//!   Installs what the tests need (Debian packages) if it is missing.

use std::process::{Command, ExitCode};

/// Debian packages the tests use, and a command each provides.
const APT_PACKAGES: &[(&str, &str)] = &[("tshark", "tshark")];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("-h" | "--help" | "help") | None => {
            println!(
                "usage: cargo xtask <task>\n\ntasks:\n  test   format, lint and run every test (installs what tests need)"
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
        "no_std build of the engine",
        cargo(&[
            "build",
            "-p",
            "opte",
            "-p",
            "opte-api",
            "--no-default-features",
        ]),
    )?;
    step(
        "workspace tests (with tshark check and fuzz corpus replay)",
        cargo(&["test", "--workspace"]),
    )?;
    Ok(())
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

fn have_command(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn ensure_apt_packages() -> Result<(), String> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(_, cmd)| !have_command(cmd))
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !is_root {
        return Err(format!(
            "the tests need these Debian packages: {}; install them (apt-get install {}) or run as root",
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
