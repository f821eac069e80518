//! Delegation to an IPAM plugin, as the specification says: the plugin named by
//! `ipam.type` is found in the `CNI_PATH` directories and run with this invocation's
//! environment (its `CNI_COMMAND` set to the delegated command) and the network
//! configuration on its standard input. Its error is passed on with its code.
//!
//! The configuration goes in the highest version both plugins speak: Debian's
//! `host-local`, for one, stops at 1.0.0, while the runtime may speak 1.1.0 to us.

use crate::spec::{self, CniResult, Error, code};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An IPAM plugin, found.
#[derive(Clone, Debug)]
pub struct Ipam {
    path: PathBuf,
    /// The version its configuration is given in.
    version: String,
    /// Whether it speaks 1.1.0 (and so STATUS and GC).
    speaks_1_1: bool,
}

impl Ipam {
    /// Find plugin `kind` in `dirs` and agree on a version with it, starting from the
    /// runtime's `wanted`.
    pub fn find(kind: &str, dirs: &[PathBuf], wanted: &str) -> Result<Self, Error> {
        let path = dirs
            .iter()
            .map(|d| d.join(kind))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::new(
                    code::INVALID_CONFIG,
                    format!("IPAM plugin {kind} is not in CNI_PATH"),
                )
                .details(format!("searched: {dirs:?}"))
            })?;
        let version_conf = format!(r#"{{"cniVersion":"{wanted}"}}"#);
        let out = run(&path, "VERSION", version_conf.as_bytes(), &[])?;
        let info: spec::VersionInfo = serde_json::from_slice(&out).map_err(|e| {
            Error::new(code::DECODE, format!("IPAM plugin {kind}'s VERSION answer")).details(e)
        })?;
        let theirs = &info.supported_versions;
        let version = if theirs.iter().any(|v| v == wanted) {
            wanted.to_string()
        } else {
            spec::SUPPORTED
                .iter()
                .filter(|v| theirs.iter().any(|t| t == *v))
                .max_by_key(|v| spec::parse_version(v))
                .ok_or_else(|| {
                    Error::new(
                        code::INCOMPATIBLE_VERSION,
                        format!("IPAM plugin {kind} speaks none of our versions"),
                    )
                    .details(format!("it speaks {theirs:?}"))
                })?
                .to_string()
        };
        Ok(Self {
            speaks_1_1: theirs.iter().any(|v| v == "1.1.0"),
            path,
            version,
        })
    }

    /// Whether the plugin takes STATUS and GC (version 1.1.0).
    pub fn speaks_1_1(&self) -> bool {
        self.speaks_1_1
    }

    /// Run `command` with network configuration `conf` (its `cniVersion` replaced by the
    /// agreed one): the plugin's result, if it printed one.
    pub fn exec(
        &self,
        command: &str,
        conf: &serde_json::Value,
    ) -> Result<Option<CniResult>, Error> {
        self.exec_env(command, conf, &[])
    }

    /// [`Self::exec`] for another attachment than this invocation's (GC).
    pub fn exec_for(
        &self,
        command: &str,
        conf: &serde_json::Value,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<CniResult>, Error> {
        let env = [("CNI_CONTAINERID", container_id), ("CNI_IFNAME", ifname)];
        self.exec_env(command, conf, &env)
    }

    fn exec_env(
        &self,
        command: &str,
        conf: &serde_json::Value,
        env: &[(&str, &str)],
    ) -> Result<Option<CniResult>, Error> {
        let mut conf = conf.clone();
        let version = if matches!(command, "STATUS" | "GC") {
            "1.1.0"
        } else {
            self.version.as_str()
        };
        if let Some(o) = conf.as_object_mut() {
            o.insert("cniVersion".into(), version.into());
        }
        let out = run(&self.path, command, conf.to_string().as_bytes(), env)?;
        if out.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&out).map(Some).map_err(|e| {
            Error::new(
                code::DECODE,
                format!("{}'s {command} result", self.path.display()),
            )
            .details(e)
        })
    }
}

/// Run plugin `path` for `command` with `stdin`: its standard output, or its error.
fn run(path: &Path, command: &str, stdin: &[u8], env: &[(&str, &str)]) -> Result<Vec<u8>, Error> {
    let name = path.display();
    let mut child = Command::new(path)
        .env("CNI_COMMAND", command)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(code::IO, format!("running {name}")).details(e))?;
    if let Some(mut i) = child.stdin.take() {
        // A plugin that exits without reading its input is judged by its answer.
        let _ = i.write_all(stdin);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::new(code::IO, format!("waiting for {name}")).details(e))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    match serde_json::from_slice::<Error>(&out.stdout) {
        Ok(mut e) => {
            e.msg = format!("{name}: {}", e.msg);
            Err(e)
        }
        Err(_) => Err(
            Error::new(code::IO, format!("{name} failed ({})", out.status))
                .details(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        ),
    }
}
