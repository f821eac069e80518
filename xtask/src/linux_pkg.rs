//! What OPTE installs on a Linux machine, and the Debian package that carries it: one list
//! of files ([`files`]) used both by `cargo xtask install` (copied into a root) and by
//! `cargo xtask package` (staged and packed with `dpkg-deb`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The package's name.
pub const PACKAGE: &str = "opte";

/// One installed file: where it comes from, where it goes (relative to the root), its mode.
#[derive(Clone, Debug)]
pub struct File {
    pub from: PathBuf,
    pub to: String,
    pub mode: u32,
}

/// The files of an installation: the programs built in `bins` (a cargo profile's output
/// directory), and from the repository at `repo` the systemd units and the bpftrace
/// scripts.
pub fn files(bins: &Path, repo: &Path) -> Result<Vec<File>, String> {
    let f = |from: PathBuf, to: &str, mode: u32| File {
        from,
        to: to.into(),
        mode,
    };
    let mut v = vec![
        f(bins.join("xded"), "usr/sbin/xded", 0o755),
        f(bins.join("opteadm"), "usr/bin/opteadm", 0o755),
        f(bins.join("opte-cni"), "usr/lib/cni/opte-cni", 0o755),
        f(bins.join("opte-docker"), "usr/sbin/opte-docker", 0o755),
        f(
            repo.join("pkg/linux/xded.service"),
            "lib/systemd/system/xded.service",
            0o644,
        ),
        f(
            repo.join("pkg/linux/opte-docker.service"),
            "lib/systemd/system/opte-docker.service",
            0o644,
        ),
        f(
            repo.join("pkg/linux/opte-docker.default"),
            "etc/default/opte-docker",
            0o644,
        ),
    ];
    let bt = repo.join("dtrace/bpftrace");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&bt)
        .map_err(|e| format!("{}: {e}", bt.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    scripts.sort();
    for s in scripts {
        let name = s
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("a script name that is not UTF-8")?
            .to_string();
        let mode = if name.ends_with(".bt") { 0o644 } else { 0o755 };
        v.push(f(s, &format!("usr/share/opte/bpftrace/{name}"), mode));
    }
    for x in &v {
        if !x.from.is_file() {
            return Err(format!(
                "{} is missing (build first: cargo build --release -p xde -p opteadm -p opte-cni)",
                x.from.display()
            ));
        }
    }
    Ok(v)
}

/// Copy `files` under `root`, each with its mode; directories made as needed. A file
/// already there is replaced whole (written beside it, then renamed), never truncated in
/// place, so a running program keeps its own copy.
pub fn install(files: &[File], root: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for f in files {
        let to = root.join(&f.to);
        let dir = to.parent().ok_or("a file without a directory")?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let tmp = dir.join(format!(".{}.new", f.to.replace('/', "_")));
        std::fs::copy(&f.from, &tmp).map_err(|e| format!("{}: {e}", f.from.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(f.mode))
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    Ok(())
}

/// The package version: `0.API_VERSION.COMMITS` (the commit count of `repo`'s history,
/// 0 outside a git checkout), as the illumos package numbers it.
pub fn version(repo: &Path) -> String {
    let commits = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-list", "--count", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    format!("0.{}.{commits}", opte_api::API_VERSION)
}

const POSTINST: &str = r#"#!/bin/sh
# Start the daemon where systemd runs (never in a root being prepared for another
# machine: DPKG_ROOT set).
set -e
if [ "$1" = configure ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	systemctl enable --now xded.service || true
fi
exit 0
"#;

const PRERM: &str = r#"#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl disable --now opte-docker.service xded.service || true
fi
exit 0
"#;

const POSTRM: &str = r#"#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
"#;

/// How hard `dpkg-deb` compresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// xz: the package as shipped.
    Small,
    /// gzip at its fastest: for tests of large debug builds.
    Fast,
}

/// Build `opte_VERSION_amd64.deb` in `out` from `files`: staged in a directory beside it,
/// with the control file and the maintainer scripts, packed by `dpkg-deb` (files owned by
/// root). Returns its path.
pub fn build_deb(
    files: &[File],
    out: &Path,
    version: &str,
    compression: Compression,
) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let name = format!("{PACKAGE}_{version}_{arch}");
    let stage = out.join(&name);
    let _ = std::fs::remove_dir_all(&stage);
    install(files, &stage)?;
    let debian = stage.join("DEBIAN");
    std::fs::create_dir_all(&debian).map_err(|e| e.to_string())?;
    let size_kib: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.from).ok())
        .map(|m| m.len().div_ceil(1024))
        .sum();
    let control = format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: The OPTE developers <opte@example.invalid>\n\
         Installed-Size: {size_kib}\n\
         Depends: libc6, iproute2\n\
         Recommends: bpftrace, containernetworking-plugins\n\
         Section: net\n\
         Priority: optional\n\
         Description: The Oxide Packet Transformation Engine (Linux host)\n \
         The xde daemon (xded) hosting OPTE ports as TAP and vhost-user devices over\n \
         Geneve on an IPv6 underlay, its operator CLI (opteadm), the CNI plugin\n \
         (opte-cni), the Docker network driver (opte-docker), their systemd units and\n \
         the bpftrace scripts for the daemon's USDT probes.\n"
    );
    std::fs::write(debian.join("control"), control).map_err(|e| e.to_string())?;
    std::fs::write(debian.join("conffiles"), "/etc/default/opte-docker\n")
        .map_err(|e| e.to_string())?;
    for (n, body) in [("postinst", POSTINST), ("prerm", PRERM), ("postrm", POSTRM)] {
        let p = debian.join(n);
        std::fs::write(&p, body).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
    }
    let deb = out.join(format!("{name}.deb"));
    let z: &[&str] = match compression {
        Compression::Small => &["-Zxz"],
        Compression::Fast => &["-Zgzip", "-z1"],
    };
    let o = Command::new("dpkg-deb")
        .arg("--root-owner-group")
        .args(z)
        .arg("--build")
        .arg(&stage)
        .arg(&deb)
        .output()
        .map_err(|e| format!("dpkg-deb: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "dpkg-deb failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    let _ = std::fs::remove_dir_all(&stage);
    Ok(deb)
}
