//! The Linux package, built from this build's programs (the debug ones the workspace's
//! tests compile) exactly as `cargo xtask package` builds it from the release ones; then
//! installed into a scratch root with dpkg (its maintainer scripts run outside a chroot,
//! `DPKG_ROOT` set, so they leave the machine's systemd alone), `opteadm --version` run
//! from there, and removed again.

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;
use xtask::linux_pkg;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// This build's output directory (target/debug), where the workspace's tests built the
/// programs.
fn bins() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("debug")
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A directory of this test's own, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_package_builds_installs_and_runs() {
    let have = |c: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        have("dpkg-deb") && have("dpkg"),
        "dpkg is part of every Debian system"
    );
    let files = match linux_pkg::files(&bins(), &repo()) {
        Ok(f) => f,
        Err(e) => panic!("{e} (the workspace's tests build these programs)"),
    };
    let scratch =
        Scratch(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pkg-{}", std::process::id())));
    let out = scratch.0.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let version = linux_pkg::version(&repo());
    assert!(
        version.starts_with(&format!("0.{}.", opte_api::API_VERSION)),
        "{version}"
    );
    let deb = linux_pkg::build_deb(&files, &out, &version, linux_pkg::Compression::Fast).unwrap();

    // What is in it, and the control fields.
    let list = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for f in [
        "./usr/sbin/xded",
        "./usr/bin/opteadm",
        "./usr/lib/cni/opte-cni",
        "./usr/sbin/opte-docker",
        "./lib/systemd/system/xded.service",
        "./usr/share/opte/bpftrace/port-process.bt",
        "./usr/share/opte/bpftrace/opte-bpftrace",
    ] {
        assert!(list.contains(f), "{f} is not in the package:\n{list}");
    }
    assert!(list.contains("root/root"), "files are not root's:\n{list}");
    let info = run(Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .args(["Package", "Version"]));
    assert!(
        info.contains("Package: opte") && info.contains(&version),
        "{info}"
    );

    // Installed into a scratch root, with its maintainer scripts.
    let root = scratch.0.join("root");
    let admin = root.join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(d)).unwrap();
    }
    std::fs::write(admin.join("status"), "").unwrap();
    std::fs::write(admin.join("available"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let mut c = Command::new("dpkg");
        c.arg(format!("--root={}", root.display()))
            .arg(format!("--log={}", scratch.0.join("dpkg.log").display()))
            .args([
                "--force-script-chrootless",
                "--force-depends",
                "--force-not-root",
            ])
            .args(args);
        run(&mut c)
    };
    dpkg(&["-i", deb.to_str().unwrap()]);
    let status = dpkg(&["-s", "opte"]);
    assert!(status.contains("Status: install ok installed"), "{status}");
    // The postinst ran (dpkg records it configured) and, DPKG_ROOT being set, touched
    // nothing outside the root.
    assert!(admin.join("info/opte.postinst").is_file());
    let v = run(Command::new(root.join("usr/bin/opteadm")).arg("--version"));
    let want = format!(
        "opteadm {}.{}.",
        opte_api::MAJOR_VERSION,
        opte_api::API_VERSION
    );
    assert!(v.starts_with(&want), "{v}");
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/xded.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/sbin/xded"), "{unit}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(root.join("usr/sbin/xded"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);

    // And removed: nothing of it is left but the configuration file dpkg keeps.
    dpkg(&["-r", "opte"]);
    assert!(!root.join("usr/sbin/xded").exists());
    assert!(
        !root
            .join("usr/share/opte/bpftrace/port-process.bt")
            .exists()
    );
    assert!(
        root.join("etc/default/opte-docker").exists(),
        "a conffile stays until purge"
    );
    dpkg(&["-P", "opte"]);
    assert!(!root.join("etc/default/opte-docker").exists());
}
