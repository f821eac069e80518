//! Sets `OPTEADM_VERSION` to `MAJOR.API_VERSION.COMMITS` (SPEC §5): the API version as
//! `opte-api` declares it, and the number of commits on `HEAD` (0 where git or the
//! history is not available, as in a source tarball).

use std::path::Path;
use std::process::Command;

fn main() {
    let cmd_rs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../opte-api/src/cmd.rs");
    println!("cargo:rerun-if-changed={}", cmd_rs.display());
    let source = std::fs::read_to_string(&cmd_rs).unwrap_or_default();
    let major = declared(&source, "MAJOR_VERSION").unwrap_or(0);
    // A version string without the API version would mislead; the lib's tests check
    // this against opte_api::API_VERSION.
    let api = declared(&source, "API_VERSION").unwrap_or(0);
    let commits = git(&["rev-list", "--count", "HEAD"]).unwrap_or_else(|| "0".into());
    println!("cargo:rustc-env=OPTEADM_VERSION={major}.{api}.{commits}");

    // Count again after each commit (the files exist only in a git checkout).
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for f in ["HEAD", "logs/HEAD"] {
            let p = Path::new(&git_dir).join(f);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The value of `pub const NAME: u64 = N;` in `source`.
fn declared(source: &str, name: &str) -> Option<u64> {
    let decl = format!("pub const {name}: u64 = ");
    source.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&decl)?
            .strip_suffix(';')?
            .trim()
            .parse()
            .ok()
    })
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}
