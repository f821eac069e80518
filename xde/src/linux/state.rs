//! The daemon's state directory (`--state-dir`, default `/var/lib/opte`): what a restarted
//! daemon needs to come back as it was.
//!
//! - `config`: the configuration log ([`crate::persist`]), written after every accepted
//!   change. A new file is written beside it, flushed to disk, and renamed over it, the
//!   one before it kept as `config.prev` until then; so there is always a whole file, and
//!   a crash at any point leaves the last good configuration.
//! - `taps`: where each port's TAP is now (`PORT IFNAME NSDEV NSINO MULTI` lines), kept up
//!   to date every second, so even a daemon that was killed can find its guests' NICs
//!   again in their namespaces.
//! - `flows/PORT`: each port's flow state (a flow-state file, as `opteadm export-port`
//!   writes), saved when the daemon stops on SIGTERM, and taken back (then removed) by the
//!   next start.

// A no_std crate: the daemon brings std's prelude in itself.
use super::tap::Location;
use crate::persist::ConfigLog;
use std::collections::BTreeMap;
use std::format;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::prelude::rust_2024::*;

/// The default state directory.
pub const DEFAULT_DIR: &str = "/var/lib/opte";

#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
}

/// What loading the configuration found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    /// No configuration was ever saved.
    Nothing,
    /// The configuration.
    Config(ConfigLog),
    /// `config` was refused (why); the previous good one is used, and the refused file
    /// was set aside (where).
    Previous {
        log: ConfigLog,
        refused: String,
        aside: PathBuf,
    },
}

fn at(path: &Path, e: io::Error) -> String {
    format!("{}: {e}", path.display())
}

impl StateDir {
    /// Use `dir`, made (mode 0700) if it is not there.
    pub fn open(dir: &Path) -> Result<Self, String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join("flows"))
            .map_err(|e| at(dir, e))?;
        Ok(Self { dir: dir.into() })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Write `name` whole or not at all: a temporary file, flushed, renamed over it, the
    /// directory flushed. With `keep_prev` the file it replaces becomes `NAME.prev`.
    fn write_atomic(&self, name: &str, bytes: &[u8], keep_prev: bool) -> io::Result<()> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if keep_prev && path.exists() {
            fs::rename(&path, self.dir.join(format!("{name}.prev")))?;
        }
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()
    }

    /// Keep a configuration file ([`ConfigLog::encode`]'s bytes).
    pub fn write_config(&self, file: &[u8]) -> io::Result<()> {
        self.write_atomic("config", file, true)
    }

    /// The saved configuration. A `config` that cannot be read is refused, set aside as
    /// `config.refused`, and the previous good one is used; if there is none that reads,
    /// the error says why and nothing is changed.
    pub fn load_config(&self) -> Result<Loaded, String> {
        let path = self.dir.join("config");
        let prev = self.dir.join("config.prev");
        let read = |p: &Path| -> Result<Option<ConfigLog>, String> {
            match fs::read(p) {
                Ok(b) => ConfigLog::decode(&b)
                    .map(Some)
                    .map_err(|e| format!("{}: {e}", p.display())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(at(p, e)),
            }
        };
        match read(&path) {
            Ok(Some(log)) => Ok(Loaded::Config(log)),
            // Between the two renames of a save only the previous file is there.
            Ok(None) => Ok(read(&prev)?.map_or(Loaded::Nothing, Loaded::Config)),
            Err(refused) => match read(&prev) {
                Ok(Some(log)) => {
                    let aside = self.dir.join("config.refused");
                    fs::rename(&path, &aside).map_err(|e| at(&path, e))?;
                    Ok(Loaded::Previous {
                        log,
                        refused,
                        aside,
                    })
                }
                Ok(None) => Err(format!(
                    "{refused}, and there is no previous configuration; move {} away to \
                     start with none",
                    path.display()
                )),
                Err(also) => Err(format!(
                    "{refused}; the previous one too: {also}; move them away to start \
                     with no configuration"
                )),
            },
        }
    }

    /// Record where every port's TAP is.
    pub fn write_taps(&self, taps: &BTreeMap<String, Location>) -> io::Result<()> {
        let mut text = String::from("# PORT IFNAME NETNS-DEV NETNS-INO MULTI-QUEUE\n");
        for (port, loc) in taps {
            text += &format!("{port} {}\n", loc.to_line());
        }
        self.write_atomic("taps", text.as_bytes(), false)
    }

    /// Where the TAPs were (lines that do not read are skipped, with a warning).
    pub fn read_taps(&self) -> BTreeMap<String, Location> {
        let path = self.dir.join("taps");
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut out = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            match line
                .split_once(' ')
                .and_then(|(p, rest)| Some((p, Location::from_line(rest)?)))
            {
                Some((port, loc)) => {
                    out.insert(port.to_string(), loc);
                }
                None => tracing::warn!(file = %path.display(), line, "not a TAP location"),
            }
        }
        out
    }

    fn flow_path(&self, port: &str) -> PathBuf {
        self.dir.join("flows").join(port)
    }

    /// Keep port `port`'s flow-state file.
    pub fn write_flows(&self, port: &str, file: &[u8]) -> io::Result<()> {
        self.write_atomic(&format!("flows/{port}"), file, false)
            .map_err(|e| io::Error::new(e.kind(), at(&self.flow_path(port), e)))
    }

    /// Take the saved flow-state files: each port's, removed from the directory (a flow
    /// state is taken back once, by the start that follows the stop that saved it).
    pub fn take_flows(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(self.dir.join("flows")) else {
            return out;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
                continue;
            }
            match fs::read(e.path()) {
                Ok(b) => out.push((name, b)),
                Err(err) => tracing::warn!(file = %e.path().display(), error = %err,
                    "reading a saved flow state"),
            }
            let _ = fs::remove_file(e.path());
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opte_api::OpteCmd;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "xde-state-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_refused_config_falls_back_to_the_previous_one() {
        let d = dir();
        let s = StateDir::open(&d).unwrap();
        assert_eq!(s.load_config(), Ok(Loaded::Nothing));
        let mut one = ConfigLog::default();
        one.record(OpteCmd::ClearXdeUnderlay, &[]);
        one.record(OpteCmd::SetVirt2Phys, &[1, 2, 3]);
        let mut two = one.clone();
        two.record(OpteCmd::SetVirt2Phys, &[4, 5, 6]);
        s.write_config(&one.encode()).unwrap();
        assert_eq!(s.load_config(), Ok(Loaded::Config(one.clone())));
        s.write_config(&two.encode()).unwrap();
        assert_eq!(s.load_config(), Ok(Loaded::Config(two.clone())));
        // Truncate the current file: it is refused and set aside, the previous one used.
        let f = two.encode();
        fs::write(d.join("config"), &f[..f.len() - 3]).unwrap();
        match s.load_config().unwrap() {
            Loaded::Previous {
                log,
                refused,
                aside,
            } => {
                assert_eq!(log, one);
                assert!(refused.contains("config"), "{refused}");
                assert_eq!(fs::read(&aside).unwrap(), &f[..f.len() - 3]);
            }
            other => std::panic!("{other:?}"),
        }
        // With the previous one corrupt too, loading fails and changes nothing.
        fs::write(d.join("config"), b"OPTECONF garbage").unwrap();
        fs::write(d.join("config.prev"), b"junk").unwrap();
        let e = s.load_config().unwrap_err();
        assert!(e.contains("not an OPTE configuration file"), "{e}");
        assert_eq!(fs::read(d.join("config")).unwrap(), b"OPTECONF garbage");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn taps_and_flows_round_trip() {
        let d = dir();
        let s = StateDir::open(&d).unwrap();
        let loc = Location {
            ifname: "eth0".into(),
            netns: (4, 4026532999),
            multi_queue: true,
        };
        let taps = BTreeMap::from([("opte0".to_string(), loc)]);
        s.write_taps(&taps).unwrap();
        assert_eq!(s.read_taps(), taps);
        s.write_flows("opte0", b"OPTEFLOW1").unwrap();
        s.write_flows("opte1", b"OPTEFLOW2").unwrap();
        assert_eq!(
            s.take_flows(),
            vec![
                ("opte0".to_string(), b"OPTEFLOW1".to_vec()),
                ("opte1".to_string(), b"OPTEFLOW2".to_vec())
            ]
        );
        assert_eq!(s.take_flows(), vec![], "taken once");
        fs::remove_dir_all(&d).unwrap();
    }
}
