//! The host's configuration, kept so that a restarted daemon comes back as it was.
//!
//! What is kept is the configuration log: every control command that changed the
//! configuration and was accepted, as its command code and serialised request, in order.
//! A restart replays it through [`crate::core::Xde::restore`], so a restored host went
//! through exactly the checks a configured one did. The log is compacted as it grows, so
//! that it holds the configuration rather than its history:
//!
//! - deleting a port drops every entry that names it (its creation, rules, routes...);
//! - clearing the underlay drops the underlay and the multicast forwarding;
//! - `SetFwRules` drops the port's earlier firewall entries, `SetExternalIps` its earlier
//!   external IPs;
//! - a removal whose request is byte for byte an earlier addition's (a router entry, a
//!   V2P or V2B mapping, an allowed CIDR, an M2P mapping) drops that addition and is not
//!   kept itself;
//! - a request that is byte for byte an earlier one replaces it (a control plane that
//!   sends its whole state again and again does not grow the log).
//!
//! Flow state (`ClearUft`, `ExportPort`...) is not configuration and is not logged.
//!
//! The file: the 8 bytes `OPTECONF`, a big-endian `u32` layout version ([`VERSION`]), the
//! big-endian `u64` API version the requests were serialised at, a postcard list of
//! entries, and the CRC-32 of everything before it (big-endian `u32`). A file of another
//! kind, layout or API version, a truncated one and a corrupt one are refused with an error
//! that says which.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use opte_api::control::decode_body;
use opte_api::{API_VERSION, OpteCmd};
use oxide_vpc::api::cmd::{self, Command};
use serde::{Deserialize, Serialize};

/// The first bytes of every configuration file.
pub const MAGIC: [u8; 8] = *b"OPTECONF";

/// The layout this build writes and reads.
pub const VERSION: u32 = 1;

/// The header: magic, layout version, API version.
const HEADER_LEN: usize = 8 + 4 + 8;

/// One accepted command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub cmd: OpteCmd,
    pub req: Vec<u8>,
}

/// The configuration log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigLog {
    entries: Vec<Entry>,
}

/// Why a configuration file cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    NotConfig,
    Truncated { len: usize },
    Layout(u32),
    Api(u64),
    Checksum,
    Corrupt(String),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotConfig => write!(f, "not an OPTE configuration file"),
            Self::Truncated { len } => {
                write!(f, "truncated: {len} bytes, too short for a configuration")
            }
            Self::Layout(v) => write!(
                f,
                "configuration layout {v}; this daemon reads layout {VERSION}"
            ),
            Self::Api(v) => write!(
                f,
                "configuration of API version {v}; this daemon speaks API version {API_VERSION}"
            ),
            Self::Checksum => write!(f, "checksum mismatch: a corrupt or truncated file"),
            Self::Corrupt(e) => write!(f, "corrupt: {e}"),
        }
    }
}

/// Whether `cmd` changes the configuration (and so is logged when it succeeds).
pub fn is_config(cmd: OpteCmd) -> bool {
    use OpteCmd::*;
    matches!(
        cmd,
        AddFwRule
            | RemFwRule
            | SetFwRules
            | SetVirt2Phys
            | ClearVirt2Phys
            | SetVirt2Boundary
            | ClearVirt2Boundary
            | AddRouterEntry
            | DelRouterEntry
            | CreateXde
            | DeleteXde
            | SetXdeUnderlay
            | ClearXdeUnderlay
            | SetExternalIps
            | AllowCidr
            | RemoveCidr
            | AttachSubnet
            | DetachSubnet
            | SetMcastForwarding
            | ClearMcastForwarding
            | McastSubscribe
            | McastUnsubscribe
            | SetMcast2Phys
            | ClearMcast2Phys
            | McastUnsubscribeAll
    )
}

/// The addition a removal undoes, where both take the same request.
fn undoes(cmd: OpteCmd) -> Option<OpteCmd> {
    use OpteCmd::*;
    Some(match cmd {
        DelRouterEntry => AddRouterEntry,
        ClearVirt2Phys => SetVirt2Phys,
        ClearVirt2Boundary => SetVirt2Boundary,
        RemoveCidr => AllowCidr,
        ClearMcast2Phys => SetMcast2Phys,
        _ => return None,
    })
}

/// The port a request of `C` names.
fn named<C: Command>(req: &[u8], f: impl FnOnce(C::Req) -> String) -> Option<String> {
    decode_body::<C::Req>(C::CMD, req).ok().map(f)
}

/// The port an entry's request names, if it is about one port.
fn port_of(e: &Entry) -> Option<String> {
    use OpteCmd as O;
    let r = &e.req[..];
    match e.cmd {
        O::AddFwRule => named::<cmd::AddFwRule>(r, |q| q.port_name),
        O::RemFwRule => named::<cmd::RemFwRule>(r, |q| q.port_name),
        O::SetFwRules => named::<cmd::SetFwRules>(r, |q| q.port_name),
        O::AddRouterEntry => named::<cmd::AddRouterEntry>(r, |q| q.port_name),
        O::DelRouterEntry => named::<cmd::DelRouterEntry>(r, |q| q.port_name),
        O::CreateXde => named::<cmd::CreateXde>(r, |q| q.xde_devname),
        O::DeleteXde => named::<cmd::DeleteXde>(r, |q| q.xde_devname),
        O::SetExternalIps => named::<cmd::SetExternalIps>(r, |q| q.port_name),
        O::AllowCidr => named::<cmd::AllowCidr>(r, |q| q.port_name),
        O::RemoveCidr => named::<cmd::RemoveCidr>(r, |q| q.port_name),
        O::AttachSubnet => named::<cmd::AttachSubnet>(r, |q| q.port_name),
        O::DetachSubnet => named::<cmd::DetachSubnet>(r, |q| q.port_name),
        O::McastSubscribe => named::<cmd::McastSubscribe>(r, |q| q.port_name),
        O::McastUnsubscribe => named::<cmd::McastUnsubscribe>(r, |q| q.port_name),
        _ => None,
    }
}

impl ConfigLog {
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Note that `cmd` with request `req` was accepted. Commands that are not
    /// configuration ([`is_config`]) are ignored.
    pub fn record(&mut self, cmd: OpteCmd, req: &[u8]) {
        use OpteCmd as O;
        if !is_config(cmd) {
            return;
        }
        let new = Entry {
            cmd,
            req: req.to_vec(),
        };
        let port = port_of(&new);
        let same_port = |e: &Entry| port.is_some() && port_of(e) == port;
        match cmd {
            O::DeleteXde => {
                self.entries.retain(|e| !same_port(e));
                return;
            }
            O::ClearXdeUnderlay => {
                self.entries.retain(|e| {
                    !matches!(
                        e.cmd,
                        O::SetXdeUnderlay | O::SetMcastForwarding | O::ClearMcastForwarding
                    )
                });
                return;
            }
            O::SetFwRules => self.entries.retain(|e| {
                !(matches!(e.cmd, O::AddFwRule | O::RemFwRule | O::SetFwRules) && same_port(e))
            }),
            O::SetExternalIps => self
                .entries
                .retain(|e| !(e.cmd == O::SetExternalIps && same_port(e))),
            _ => {}
        }
        if let Some(i) = undoes(cmd).and_then(|add| {
            self.entries
                .iter()
                .rposition(|e| e.cmd == add && e.req == new.req)
        }) {
            self.entries.remove(i);
            return;
        }
        if let Some(i) = self.entries.iter().position(|e| *e == new) {
            self.entries.remove(i);
        }
        self.entries.push(new);
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::from(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&API_VERSION.to_be_bytes());
        // A list of byte strings and command codes cannot fail to serialise.
        if let Ok(b) = postcard::to_allocvec(&self.entries) {
            out.extend_from_slice(&b);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Read a file's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, LoadError> {
        if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(LoadError::NotConfig);
        }
        let Some(((header, body), crc)) = bytes
            .split_last_chunk::<4>()
            .and_then(|(all, crc)| Some((all.split_first_chunk::<HEADER_LEN>()?, crc)))
        else {
            return Err(LoadError::Truncated { len: bytes.len() });
        };
        let word = |at: usize| -> [u8; 4] {
            let mut w = [0u8; 4];
            w.copy_from_slice(header.get(at..at + 4).unwrap_or(&[0; 4]));
            w
        };
        let layout = u32::from_be_bytes(word(8));
        if layout != VERSION {
            return Err(LoadError::Layout(layout));
        }
        let checked = bytes.len() - crc.len();
        if crc32fast::hash(bytes.get(..checked).unwrap_or_default()) != u32::from_be_bytes(*crc) {
            return Err(LoadError::Checksum);
        }
        let api =
            u64::from(u32::from_be_bytes(word(12))) << 32 | u64::from(u32::from_be_bytes(word(16)));
        if api != API_VERSION {
            return Err(LoadError::Api(api));
        }
        match postcard::take_from_bytes::<Vec<Entry>>(body) {
            Ok((entries, [])) => Ok(Self { entries }),
            Ok((_, extra)) => Err(LoadError::Corrupt(format!(
                "{} bytes after the entries",
                extra.len()
            ))),
            Err(e) => Err(LoadError::Corrupt(e.to_string())),
        }
    }
}

/// What [`crate::core::Xde::restore`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Entries applied.
    pub applied: usize,
    /// Entries refused: the command and why.
    pub failed: Vec<(OpteCmd, opte_api::OpteError)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxide_vpc::api::{AddRouterEntryReq, DelRouterEntryReq, DeleteXdeReq, SetFwRulesReq};

    fn req<T: Serialize>(v: &T) -> Vec<u8> {
        postcard::to_allocvec(v).unwrap()
    }

    fn route(port: &str, dest: &str) -> AddRouterEntryReq {
        AddRouterEntryReq {
            port_name: port.into(),
            dest: dest.parse().unwrap(),
            target: oxide_vpc::api::RouterTarget::InternetGateway(None),
            class: oxide_vpc::api::RouterClass::System,
        }
    }

    fn del(r: &AddRouterEntryReq) -> DelRouterEntryReq {
        DelRouterEntryReq {
            port_name: r.port_name.clone(),
            dest: r.dest,
            target: r.target,
            class: r.class,
        }
    }

    #[test]
    fn compaction() {
        let mut log = ConfigLog::default();
        let (a, b) = (route("opte0", "0.0.0.0/0"), route("opte1", "::/0"));
        log.record(OpteCmd::AddRouterEntry, &req(&a));
        log.record(OpteCmd::AddRouterEntry, &req(&b));
        // Not configuration: ignored.
        log.record(OpteCmd::ClearUft, b"x");
        assert_eq!(log.len(), 2);
        // The same request again replaces the first.
        log.record(OpteCmd::AddRouterEntry, &req(&a));
        assert_eq!(log.len(), 2);
        assert_eq!(log.entries()[1].req, req(&a));
        // A removal of exactly that route takes it out and is not kept.
        log.record(OpteCmd::DelRouterEntry, &req(&del(&a)));
        assert_eq!(log.len(), 1);
        assert_eq!(log.entries()[0].req, req(&b));
        // A removal of a route not in the log is kept.
        log.record(OpteCmd::DelRouterEntry, &req(&del(&a)));
        assert_eq!(log.len(), 2);
        // SetFwRules replaces the port's earlier firewall entries, no other port's.
        let fw = |p: &str| SetFwRulesReq {
            port_name: p.into(),
            rules: Vec::new(),
        };
        log.record(OpteCmd::SetFwRules, &req(&fw("opte1")));
        log.record(OpteCmd::SetFwRules, &req(&fw("opte0")));
        let mut r = fw("opte1");
        r.rules = Vec::new();
        log.record(OpteCmd::SetFwRules, &req(&r));
        assert_eq!(
            log.entries()
                .iter()
                .filter(|e| e.cmd == OpteCmd::SetFwRules)
                .count(),
            2
        );
        // Deleting a port drops everything that names it.
        log.record(
            OpteCmd::DeleteXde,
            &req(&DeleteXdeReq {
                xde_devname: "opte0".into(),
            }),
        );
        assert!(
            log.entries()
                .iter()
                .all(|e| port_of(e).as_deref() == Some("opte1"))
        );
        assert_eq!(log.len(), 2);
    }

    #[test]
    fn file_round_trip_and_refusals() {
        let mut log = ConfigLog::default();
        log.record(OpteCmd::AddRouterEntry, &req(&route("opte0", "10.0.0.0/8")));
        log.record(OpteCmd::ClearXdeUnderlay, &[]);
        let f = log.encode();
        assert_eq!(ConfigLog::decode(&f), Ok(log.clone()));
        assert_eq!(
            ConfigLog::decode(b"OPTEFLOW...."),
            Err(LoadError::NotConfig)
        );
        assert_eq!(
            ConfigLog::decode(&f[..10]),
            Err(LoadError::Truncated { len: 10 })
        );
        // Every truncation and every flipped bit is refused.
        for n in MAGIC.len()..f.len() {
            assert!(ConfigLog::decode(&f[..n]).is_err(), "{n} bytes accepted");
        }
        for i in 0..f.len() * 8 {
            let mut g = f.clone();
            g[i / 8] ^= 1 << (i % 8);
            assert!(ConfigLog::decode(&g).is_err(), "bit {i} flipped accepted");
        }
        let mut other = f.clone();
        other[12..20].copy_from_slice(&(API_VERSION + 1).to_be_bytes());
        let n = other.len() - 4;
        let crc = crc32fast::hash(&other[..n]);
        other[n..].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            ConfigLog::decode(&other),
            Err(LoadError::Api(API_VERSION + 1))
        );
    }
}
