//! The illumos module's build and its symbol check.
//!
//! The module is `xde/kmod` (a `no_std` staticlib) built with the kernel's code
//! generation: kernel code model, static relocations, no red zone, `panic = "abort"`,
//! fat LTO. Where no illumos target is installed it is built for the host's target, which
//! is enough to check what the module needs from the kernel. On illumos `build` then links
//! it into the loadable module with `ld -r -ztype=kmod`.
//!
//! The check reads the archive with `nm`: starting from the module's own object it pulls
//! in the compiler-runtime members that define what it needs (as `ld -r` without
//! `allextract` would), and requires that nothing is left undefined but the symbols listed
//! in `xde/kernel-symbols.txt` and SDT probes (`__dtrace_probe_*`), that nothing names
//! `std`, and that nothing unwinds (no undefined `_Unwind_*` or personality routine).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The rustc flags of the kernel's code generation.
pub const RUSTFLAGS: &str =
    "-C code-model=kernel -C relocation-model=static -C no-redzone=yes -C panic=abort";

/// The target the module is built for: illumos where it is installed, else this host's.
pub fn target() -> &'static str {
    if cfg!(target_os = "illumos") {
        "x86_64-unknown-illumos"
    } else {
        "x86_64-unknown-linux-gnu"
    }
}

/// `cargo build` of the module's static library; its path.
pub fn build(cargo: &str, repo: &Path) -> Result<PathBuf, String> {
    let target_dir = repo.join("target/kmod");
    let status = Command::new(cargo)
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", RUSTFLAGS)
        .args([
            "build",
            "--profile",
            "release-lto",
            "--manifest-path",
            "xde/kmod/Cargo.toml",
            "--features",
            "module",
            "--target",
            target(),
        ])
        .status()
        .map_err(|e| format!("cargo build of the module: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of the module failed ({status})"));
    }
    Ok(target_dir.join(target()).join("release-lto/libxde_kmod.a"))
}

/// A member's symbols: those it defines, those it needs.
type Symbols = (BTreeSet<String>, BTreeSet<String>);

/// The symbols of each member of archive `lib`.
fn members(lib: &Path) -> Result<BTreeMap<String, Symbols>, String> {
    let out = Command::new("nm")
        .args(["-A", "-P"])
        .arg(lib)
        .output()
        .map_err(|e| format!("nm: {e}"))?;
    if !out.status.success() {
        return Err(format!("nm {} failed", lib.display()));
    }
    let mut m: BTreeMap<String, Symbols> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "lib.a[member.o]: name type value size" (GNU nm -A -P).
        let Some((who, rest)) = line.split_once(": ") else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (Some(name), Some(ty)) = (f.next(), f.next()) else {
            continue;
        };
        let e = m.entry(who.to_string()).or_default();
        if ty == "U" {
            e.1.insert(name.to_string());
        } else if ty != "w" && ty != "v" {
            e.0.insert(name.to_string());
        }
    }
    Ok(m)
}

/// Check the module in `lib` against `allowed` (the kernel's symbols): the problems found.
pub fn check(lib: &Path, allowed: &BTreeSet<String>) -> Result<Vec<String>, String> {
    let m = members(lib)?;
    let main = m
        .keys()
        .find(|k| k.contains("xde_kmod-"))
        .cloned()
        .ok_or("the module's own object is not in the archive")?;
    // Pull members in as a linker would.
    let mut pulled = BTreeSet::from([main]);
    let mut defined: BTreeSet<String> = BTreeSet::new();
    let mut undefined: BTreeSet<String> = BTreeSet::new();
    loop {
        defined.clear();
        undefined.clear();
        for p in &pulled {
            let (d, u) = &m[p];
            defined.extend(d.iter().cloned());
            undefined.extend(u.iter().cloned());
        }
        let missing: Vec<&String> = undefined.iter().filter(|u| !defined.contains(*u)).collect();
        let more: Vec<String> = m
            .iter()
            .filter(|(k, (d, _))| !pulled.contains(*k) && missing.iter().any(|u| d.contains(*u)))
            .map(|(k, _)| k.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        pulled.extend(more);
    }
    let mut problems = Vec::new();
    for u in undefined.iter().filter(|u| !defined.contains(*u)) {
        let ok = allowed.contains(u) || u.starts_with("__dtrace_probe_");
        if !ok {
            problems.push(format!(
                "undefined symbol {u} is not one the kernel exports"
            ));
        }
        if u.starts_with("_Unwind_") || u.contains("eh_personality") {
            problems.push(format!("the module unwinds: it needs {u}"));
        }
    }
    for p in &pulled {
        let (d, u) = &m[p];
        for s in d.iter().chain(u) {
            if s.contains("_ZN3std") || s.starts_with("std::") {
                problems.push(format!("{p} names std: {s}"));
            }
        }
    }
    Ok(problems)
}

/// The kernel's symbols the module may use (`xde/kernel-symbols.txt`).
pub fn allowed(repo: &Path) -> Result<BTreeSet<String>, String> {
    let p = repo.join("xde/kernel-symbols.txt");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// On illumos: link the loadable module `target/kmod/xde` from the archive.
pub fn link(lib: &Path, repo: &Path) -> Result<PathBuf, String> {
    let out = repo.join("target/kmod/xde");
    let status = Command::new("ld")
        .args([
            "-r",
            "-ztype=kmod",
            "-Ndrv/dld",
            "-Ndrv/ip",
            "-Nmisc/dls",
            "-Nmisc/mac",
        ])
        .args(["-u", "_init", "-u", "_info", "-u", "_fini"])
        .arg(lib)
        .arg("-o")
        .arg(&out)
        .status()
        .map_err(|e| format!("ld: {e}"))?;
    if !status.success() {
        return Err(format!("ld -r of the module failed ({status})"));
    }
    Ok(out)
}

/// `cargo xtask build xde-link`: the devfsadm link module as a shared object (32-bit
/// `i686-unknown-illumos` on illumos, this host's target elsewhere), checked with `nm` to
/// contain no panic machinery (SPEC §7.10). Its path.
pub fn build_link(cargo: &str, repo: &Path) -> Result<PathBuf, String> {
    let target_dir = repo.join("target/xde-link");
    let target = if cfg!(target_os = "illumos") {
        "i686-unknown-illumos"
    } else {
        "x86_64-unknown-linux-gnu"
    };
    let status = Command::new(cargo)
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "rustc",
            "--release",
            "-p",
            "xde-link",
            "--crate-type",
            "cdylib",
        ])
        .args(["--target", target, "--", "-C", "panic=abort"])
        .status()
        .map_err(|e| format!("cargo rustc of xde-link: {e}"))?;
    if !status.success() {
        return Err(format!("cargo rustc of xde-link failed ({status})"));
    }
    let so = target_dir.join(target).join("release/libxde_link.so");
    let out = Command::new("nm")
        .arg(&so)
        .output()
        .map_err(|e| format!("nm: {e}"))?;
    let syms = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("nm {} failed", so.display()));
    }
    if let Some(bad) = syms.lines().find(|l| l.contains("panicking")) {
        return Err(format!("xde-link pulls in panic machinery: {bad}"));
    }
    for want in ["_devfsadm_create_reg", "_devfsadm_remove_reg"] {
        if !syms
            .lines()
            .any(|l| l.ends_with(&format!(" D {want}")) || l.ends_with(&format!(" R {want}")))
        {
            return Err(format!("xde-link does not export {want}"));
        }
    }
    Ok(so)
}
