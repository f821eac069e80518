//! Control commands: their codes, the API version both ends must agree on, and the
//! `repr(C)` ioctl envelope the illumos driver exchanges with its clients.
//!
//! Not the command payloads of the VPC (those live with the VPC crate) nor the Linux
//! daemon's socket framing ([`crate::control`]).

use crate::error::OpteError;
use crate::text::{ParseError, ParseReason, parse_decimal};
use core::ffi::c_int;
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// The control API version. Client and server must match exactly; any change to a type
/// that crosses the control boundary bumps it.
pub const API_VERSION: u64 = 46;

/// The major version of the OPTE package.
pub const MAJOR_VERSION: u64 = 0;

/// Set in [`OpteCmdIoctl::flags`] by the server when the response buffer holds a serialised
/// [`OpteError`] rather than the command's response.
pub const OPTE_CMD_RESP_COPY_OUT: u64 = 0x1;

/// Check a client's API version against ours: exact equality.
pub fn check_api_version(user: u64) -> Result<(), OpteError> {
    if user == API_VERSION {
        Ok(())
    } else {
        Err(OpteError::BadApiVersion {
            user,
            kernel: API_VERSION,
        })
    }
}

/// A control command. The discriminant is the code on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C)]
pub enum OpteCmd {
    /// List xde ports.
    ListPorts = 1,
    /// Add one firewall rule.
    AddFwRule = 20,
    /// Remove a firewall rule by direction and id.
    RemFwRule = 21,
    /// Replace all firewall rules, both directions.
    SetFwRules = 22,
    /// Dump the TCP flow table.
    DumpTcpFlows = 30,
    /// Dump a layer's rules, default actions and flow tables.
    DumpLayer = 31,
    /// Dump the unified flow tables.
    DumpUft = 32,
    /// Summarise a port's layers.
    ListLayers = 33,
    /// One page of a unified flow table: `DumpUftPageReq` → `FlowDumpPage<UftEntryDump>`
    /// (ours; for tables too big for one `DumpUft` response).
    DumpUftPage = 34,
    /// One page of the TCP flow table: `DumpTcpFlowsPageReq` →
    /// `FlowDumpPage<TcpFlowEntryDump>` (ours; for tables too big for one `DumpTcpFlows`
    /// response).
    DumpTcpFlowsPage = 35,
    /// Clear both unified flow tables.
    ClearUft = 40,
    /// Clear one layer's flow table.
    ClearLft = 41,
    /// Add a virtual-to-physical mapping.
    SetVirt2Phys = 50,
    /// Dump the virtual-to-physical mappings.
    DumpVirt2Phys = 51,
    /// Add virtual-to-boundary endpoints.
    SetVirt2Boundary = 52,
    /// Remove virtual-to-boundary endpoints.
    ClearVirt2Boundary = 53,
    /// Dump the virtual-to-boundary mappings.
    DumpVirt2Boundary = 54,
    /// Remove a virtual-to-physical mapping.
    ClearVirt2Phys = 55,
    /// Add a router entry.
    AddRouterEntry = 60,
    /// Delete a router entry.
    DelRouterEntry = 61,
    /// Create a port.
    CreateXde = 70,
    /// Delete a port.
    DeleteXde = 71,
    /// Bind the two underlay links.
    SetXdeUnderlay = 72,
    /// Unbind the underlay links (no ports may exist).
    ClearXdeUnderlay = 73,
    /// Replace a port's external IP configuration.
    SetExternalIps = 80,
    /// Allow a transit CIDR through a port.
    AllowCidr = 90,
    /// Remove a transit CIDR.
    RemoveCidr = 91,
    /// Attach a subnet to a port.
    AttachSubnet = 92,
    /// Detach a subnet from a port.
    DetachSubnet = 93,
    /// Set multicast forwarding for a group.
    SetMcastForwarding = 100,
    /// Clear multicast forwarding for a group.
    ClearMcastForwarding = 101,
    /// Dump multicast forwarding.
    DumpMcastForwarding = 102,
    /// Subscribe a port to a multicast group.
    McastSubscribe = 103,
    /// Unsubscribe a port from a multicast group.
    McastUnsubscribe = 104,
    /// Map an overlay multicast group to an underlay group.
    SetMcast2Phys = 105,
    /// Remove an overlay-to-underlay multicast mapping.
    ClearMcast2Phys = 106,
    /// Dump multicast subscriptions.
    DumpMcastSubscriptions = 107,
    /// Unsubscribe every port from a multicast group.
    McastUnsubscribeAll = 108,
    /// Dump the overlay-to-underlay multicast mappings.
    DumpMcast2Phys = 109,
    /// Dump the host's counters (ours; the reference reads them as kstats).
    DumpXdeStats = 120,
    /// Pause a port and take its flow state (ours: live migration).
    ExportPort = 121,
    /// Replace a port's flows with another's exported state, and run it (ours).
    ImportPort = 122,
    /// Run a paused port again (ours: an abandoned migration).
    ResumePort = 123,
}

/// A command code that names no command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown OPTE command code {0}")]
pub struct UnknownCmd(pub c_int);

impl OpteCmd {
    /// Every command, in code order.
    pub const ALL: [OpteCmd; 43] = [
        Self::ListPorts,
        Self::AddFwRule,
        Self::RemFwRule,
        Self::SetFwRules,
        Self::DumpTcpFlows,
        Self::DumpLayer,
        Self::DumpUft,
        Self::ListLayers,
        Self::DumpUftPage,
        Self::DumpTcpFlowsPage,
        Self::ClearUft,
        Self::ClearLft,
        Self::SetVirt2Phys,
        Self::DumpVirt2Phys,
        Self::SetVirt2Boundary,
        Self::ClearVirt2Boundary,
        Self::DumpVirt2Boundary,
        Self::ClearVirt2Phys,
        Self::AddRouterEntry,
        Self::DelRouterEntry,
        Self::CreateXde,
        Self::DeleteXde,
        Self::SetXdeUnderlay,
        Self::ClearXdeUnderlay,
        Self::SetExternalIps,
        Self::AllowCidr,
        Self::RemoveCidr,
        Self::AttachSubnet,
        Self::DetachSubnet,
        Self::SetMcastForwarding,
        Self::ClearMcastForwarding,
        Self::DumpMcastForwarding,
        Self::McastSubscribe,
        Self::McastUnsubscribe,
        Self::SetMcast2Phys,
        Self::ClearMcast2Phys,
        Self::DumpMcastSubscriptions,
        Self::McastUnsubscribeAll,
        Self::DumpMcast2Phys,
        Self::DumpXdeStats,
        Self::ExportPort,
        Self::ImportPort,
        Self::ResumePort,
    ];

    /// The command's code.
    pub const fn code(self) -> c_int {
        self as c_int
    }
}

impl TryFrom<c_int> for OpteCmd {
    type Error = UnknownCmd;

    /// Every command's code, 92 (`AttachSubnet`) and 93 (`DetachSubnet`) included.
    fn try_from(code: c_int) -> Result<Self, Self::Error> {
        Self::ALL
            .into_iter()
            .find(|cmd| cmd.code() == code)
            .ok_or(UnknownCmd(code))
    }
}

impl fmt::Display for OpteCmd {
    /// The variant's name, e.g. `DumpLayer`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl FromStr for OpteCmd {
    type Err = ParseError;

    /// A command's name in any case (`dumplayer`, `DumpLayer`) or its decimal code (`31`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseError::new("OPTE command", s, reason);
        if s.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            let code = parse_decimal("command code", s, u64::from(c_int::MAX.unsigned_abs()))
                .map_err(err)?;
            let code = c_int::try_from(code).unwrap_or(c_int::MAX);
            return Self::try_from(code)
                .map_err(|_| err(ParseReason::Invalid("no command has this code")));
        }
        Self::ALL
            .into_iter()
            .find(|cmd| alloc::format!("{cmd:?}").eq_ignore_ascii_case(s))
            .ok_or_else(|| err(ParseReason::Invalid("no command has this name")))
    }
}

/// Serialised as its code (not the variant index), so the wire value is the same number the
/// ioctl envelope carries; an unknown code is a deserialisation error.
impl Serialize for OpteCmd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.code())
    }
}

impl<'de> Deserialize<'de> for OpteCmd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = c_int::deserialize(d)?;
        Self::try_from(code).map_err(serde::de::Error::custom)
    }
}

/// A successful command's response type.
pub trait CmdOk: fmt::Debug + Serialize {}

/// The response of commands that answer nothing but success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoResp {
    /// Unused; present so the encoding is never empty.
    pub unused: u64,
}

impl CmdOk for NoResp {}

/// Bind the two underlay links the host sends and receives encapsulated traffic on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetXdeUnderlayReq {
    /// The first underlay link's name.
    pub u1: alloc::string::String,
    /// The second underlay link's name.
    pub u2: alloc::string::String,
}

/// The ioctl envelope of the illumos driver, `repr(C)`: 72 bytes on LP64.
///
/// The client serialises its request into a buffer and points `req_bytes` at it, and offers
/// a response buffer in `resp_bytes`/`resp_len`. The server writes the serialised response
/// (or, with [`OPTE_CMD_RESP_COPY_OUT`] set in `flags`, a serialised [`OpteError`]) and sets
/// `resp_len_actual`.
///
/// `cmd` is the raw code (`c_int`, the size and alignment of the C enum): memory that comes
/// from a caller must not be read as a Rust enum until checked, so read it with
/// [`OpteCmdIoctl::cmd`].
#[derive(Debug)]
#[repr(C)]
pub struct OpteCmdIoctl {
    /// The client's `API_VERSION`.
    pub api_version: u64,
    /// The command code.
    pub cmd: c_int,
    /// Flags; the server sets [`OPTE_CMD_RESP_COPY_OUT`] when returning an error body.
    pub flags: u64,
    /// Reserved; zero.
    pub reserved1: u64,
    /// The serialised request.
    pub req_bytes: *const u8,
    /// Length of the serialised request.
    pub req_len: usize,
    /// The response buffer.
    pub resp_bytes: *mut u8,
    /// Capacity of the response buffer.
    pub resp_len: usize,
    /// Bytes of response the server wrote (or would need, with `RespTooLarge`).
    pub resp_len_actual: usize,
}

impl OpteCmdIoctl {
    /// An envelope for `cmd` at this crate's API version over the caller's request and
    /// response buffers. The buffers must outlive the ioctl call.
    pub fn new(cmd: OpteCmd, req: &[u8], resp: &mut [u8]) -> Self {
        Self {
            api_version: API_VERSION,
            cmd: cmd.code(),
            flags: 0,
            reserved1: 0,
            req_bytes: req.as_ptr(),
            req_len: req.len(),
            resp_bytes: resp.as_mut_ptr(),
            resp_len: resp.len(),
            resp_len_actual: 0,
        }
    }

    /// The command, if the code names one.
    pub fn cmd(&self) -> Result<OpteCmd, UnknownCmd> {
        OpteCmd::try_from(self.cmd)
    }

    /// Check the client's API version: exact equality.
    pub fn check_version(&self) -> Result<(), OpteError> {
        check_api_version(self.api_version)
    }

    /// After the call: the server's error, if it returned one. `resp` is the response buffer
    /// this envelope pointed at. A body that cannot be decoded is itself reported, as
    /// `DeserCmdErr`.
    pub fn err_resp(&self, resp: &[u8]) -> Option<OpteError> {
        if self.flags & OPTE_CMD_RESP_COPY_OUT == 0 {
            return None;
        }
        let Some(body) = resp.get(..self.resp_len_actual) else {
            return Some(OpteError::DeserCmdErr(alloc::format!(
                "error body of {} bytes exceeds the {}-byte buffer",
                self.resp_len_actual,
                resp.len()
            )));
        };
        Some(
            postcard::from_bytes(body)
                .unwrap_or_else(|e| OpteError::DeserCmdErr(alloc::format!("{e}"))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use core::mem::{offset_of, size_of};

    #[test]
    fn try_from_accepts_every_code_including_92_and_93() {
        for cmd in OpteCmd::ALL {
            assert_eq!(OpteCmd::try_from(cmd.code()), Ok(cmd));
        }
        assert_eq!(OpteCmd::try_from(92), Ok(OpteCmd::AttachSubnet));
        assert_eq!(OpteCmd::try_from(93), Ok(OpteCmd::DetachSubnet));
        // Exactly the listed codes and nothing else.
        let accepted: alloc::vec::Vec<c_int> = (-1..=256)
            .filter(|c| OpteCmd::try_from(*c).is_ok())
            .collect();
        let codes: alloc::vec::Vec<c_int> = OpteCmd::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(accepted, codes);
        assert_eq!(
            codes,
            [
                1, 20, 21, 22, 30, 31, 32, 33, 34, 35, 40, 41, 50, 51, 52, 53, 54, 55, 60, 61, 70,
                71, 72, 73, 80, 90, 91, 92, 93, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109,
                120, 121, 122, 123
            ]
        );
        assert_eq!(OpteCmd::try_from(34), Ok(OpteCmd::DumpUftPage));
        assert_eq!(OpteCmd::try_from(35), Ok(OpteCmd::DumpTcpFlowsPage));
        assert_eq!(OpteCmd::try_from(36), Err(UnknownCmd(36)));
        assert_eq!(OpteCmd::try_from(94), Err(UnknownCmd(94)));
        assert_eq!(OpteCmd::try_from(124), Err(UnknownCmd(124)));
        assert_eq!(UnknownCmd(0).to_string(), "unknown OPTE command code 0");
    }

    #[test]
    fn cmd_text_round_trips() {
        for cmd in OpteCmd::ALL {
            assert_eq!(cmd.to_string().parse(), Ok(cmd));
            assert_eq!(cmd.code().to_string().parse(), Ok(cmd));
        }
        assert_eq!(OpteCmd::DumpLayer.to_string(), "DumpLayer");
        assert_eq!("dumplayer".parse(), Ok(OpteCmd::DumpLayer));
        assert_eq!("93".parse(), Ok(OpteCmd::DetachSubnet));
        assert_eq!("dumpuftpage".parse(), Ok(OpteCmd::DumpUftPage));
        assert_eq!("35".parse(), Ok(OpteCmd::DumpTcpFlowsPage));
        assert_eq!(OpteCmd::DumpTcpFlowsPage.to_string(), "DumpTcpFlowsPage");
        let e = "94".parse::<OpteCmd>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad OPTE command \"94\": no command has this code"
        );
        assert!("DumpEverything".parse::<OpteCmd>().is_err());
        assert!("99999999999".parse::<OpteCmd>().is_err());
    }

    #[test]
    fn cmd_serialises_as_its_code() {
        let bytes = postcard::to_allocvec(&OpteCmd::DumpLayer).unwrap();
        assert_eq!(bytes, [62]); // zigzag varint of 31
        assert_eq!(
            postcard::from_bytes::<OpteCmd>(&bytes),
            Ok(OpteCmd::DumpLayer)
        );
        let unknown = postcard::to_allocvec(&94i32).unwrap();
        assert!(postcard::from_bytes::<OpteCmd>(&unknown).is_err());
    }

    #[test]
    fn api_version_must_match_exactly() {
        // 41 is the reference's; 42 adds DumpXdeStats; 43 adds DumpUftPage and
        // DumpTcpFlowsPage; 44 adds CreateXdeReq's `attach`; 45 its `VhostUser`; 46
        // ExportPort, ImportPort and ResumePort.
        assert_eq!(API_VERSION, 46);
        assert_eq!(check_api_version(API_VERSION), Ok(()));
        assert_eq!(
            check_api_version(40),
            Err(OpteError::BadApiVersion {
                user: 40,
                kernel: API_VERSION
            })
        );
        assert!(check_api_version(API_VERSION + 1).is_err());
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn ioctl_envelope_layout() {
        assert_eq!(size_of::<OpteCmdIoctl>(), 72);
        assert_eq!(offset_of!(OpteCmdIoctl, cmd), 8);
        assert_eq!(offset_of!(OpteCmdIoctl, flags), 16);
        assert_eq!(offset_of!(OpteCmdIoctl, req_bytes), 32);
        assert_eq!(offset_of!(OpteCmdIoctl, resp_len_actual), 64);
        assert_eq!(size_of::<OpteCmd>(), size_of::<c_int>());
    }

    #[test]
    fn ioctl_envelope_error_body() {
        let req = [1u8, 2, 3];
        let mut resp = [0u8; 64];
        let mut ioc = OpteCmdIoctl::new(OpteCmd::ClearUft, &req, &mut resp);
        assert_eq!(ioc.cmd(), Ok(OpteCmd::ClearUft));
        assert_eq!((ioc.req_len, ioc.resp_len), (3, 64));
        assert_eq!(ioc.check_version(), Ok(()));
        ioc.api_version = 7;
        assert!(matches!(
            ioc.check_version(),
            Err(OpteError::BadApiVersion { user: 7, .. })
        ));

        // No flag: no error, whatever the buffer holds.
        assert_eq!(ioc.err_resp(&resp), None);

        // The server wrote an error.
        let err = OpteError::PortNotFound("opte9".into());
        let body = postcard::to_slice(&err, &mut resp).unwrap().len();
        ioc.flags |= OPTE_CMD_RESP_COPY_OUT;
        ioc.resp_len_actual = body;
        assert_eq!(ioc.err_resp(&resp), Some(err));

        // Garbage, or a length past the buffer, is reported rather than trusted.
        ioc.resp_len_actual = 1;
        resp[0] = 200;
        assert!(matches!(
            ioc.err_resp(&resp),
            Some(OpteError::DeserCmdErr(_))
        ));
        ioc.resp_len_actual = 65;
        assert!(matches!(
            ioc.err_resp(&resp),
            Some(OpteError::DeserCmdErr(_))
        ));

        ioc.cmd = 94;
        assert_eq!(ioc.cmd(), Err(UnknownCmd(94)));
    }

    #[test]
    fn no_resp_encodes_one_byte() {
        assert_eq!(postcard::to_allocvec(&NoResp::default()).unwrap(), [0]);
        let req = SetXdeUnderlayReq {
            u1: "igb0".into(),
            u2: "igb1".into(),
        };
        let bytes = postcard::to_allocvec(&req).unwrap();
        assert_eq!(bytes, b"\x04igb0\x04igb1");
        assert_eq!(postcard::from_bytes::<SetXdeUnderlayReq>(&bytes), Ok(req));
    }
}
