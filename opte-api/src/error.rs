//! The error every control command can return, and its errno at the OS boundary.
//!
//! `OpteError` crosses the control boundary serialised (postcard encodes the variant index,
//! so the variant order is part of the API and must not change without bumping
//! `API_VERSION`). Not for packet-processing outcomes: drops are counted, not errors.

use crate::encap::Vni;
use crate::mac::MacAddr;
use alloc::string::String;
use serde::{Deserialize, Serialize};

/// The errno numbering of the operating system a host reports to. Most of the values
/// [`OpteError`] uses agree between the two; `ENOMSG` and `ENOBUFS` do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    /// Linux (the userland daemon; also every other non-illumos target).
    Linux,
    /// illumos (the kernel module).
    Illumos,
}

impl Os {
    /// The system this crate is compiled for (illumos or, for every other target, Linux's
    /// numbering, which is what the userland daemon reports).
    pub const HOST: Os = if cfg!(target_os = "illumos") {
        Os::Illumos
    } else {
        Os::Linux
    };
}

/// illumos errno values (`<sys/errno.h>`) where they differ from Linux's.
pub mod illumos_errno {
    /// No message of desired type.
    pub const ENOMSG: i32 = 35;
    /// No buffer space available.
    pub const ENOBUFS: i32 = 132;
}

/// Linux errno values used by [`OpteError::to_errno`].
///
/// Defined here rather than taken from a libc binding so the crate stays `no_std` without
/// one; [`OpteError::errno_for`] gives illumos's numbering where it differs.
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// Bad address.
    pub const EFAULT: i32 = 14;
    /// File exists.
    pub const EEXIST: i32 = 17;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Too many open files in system (a table is at capacity).
    pub const ENFILE: i32 = 23;
    /// No message of desired type (a message could not be (de)serialised).
    pub const ENOMSG: i32 = 42;
    /// Protocol error.
    pub const EPROTO: i32 = 71;
    /// No buffer space available.
    pub const ENOBUFS: i32 = 105;
}

use errno::*;

/// Why a control command failed.
///
/// Each variant documents the errno [`OpteError::to_errno`] gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum OpteError {
    /// The client was built for another API version. `EPROTO`.
    #[error("API version mismatch: client {user}, server {kernel}")]
    BadApiVersion {
        /// The client's `API_VERSION`.
        user: u64,
        /// The server's `API_VERSION`.
        kernel: u64,
    },
    /// A rule position does not exist in the layer. `EINVAL`.
    #[error("bad position for layer {layer}: {pos}")]
    BadLayerPos {
        /// The layer.
        layer: String,
        /// The position asked for.
        pos: String,
    },
    /// A name is malformed. `EINVAL`.
    #[error("bad name")]
    BadName,
    /// The object is in a state that forbids the command. `EINVAL`.
    #[error("command not allowed in this state: {0}")]
    BadState(String),
    /// The request could not be copied in from the caller. `EFAULT`.
    #[error("failed to copy in the request")]
    CopyinReq,
    /// The response could not be copied out to the caller. `EFAULT`.
    #[error("failed to copy out the response")]
    CopyoutResp,
    /// The error response could not be deserialised. `ENOMSG`.
    #[error("failed to deserialise the command's error response: {0}")]
    DeserCmdErr(String),
    /// The request could not be deserialised. `ENOMSG`.
    #[error("failed to deserialise the request: {0}")]
    DeserCmdReq(String),
    /// The flow already exists. `EEXIST`.
    #[error("flow exists: {0}")]
    FlowExists(String),
    /// A router entry's destination and target do not fit together. `EINVAL`.
    #[error("invalid router entry: destination {dest}, target {target}")]
    InvalidRouterEntry {
        /// The destination prefix, as text.
        dest: String,
        /// The target, as text.
        target: String,
    },
    /// An underlay multicast address is not admin-local (`ff04::/16`). `EINVAL`.
    #[error("invalid underlay multicast address: {0}")]
    InvalidUnderlayMulticast(String),
    /// No layer of that name. `ENOENT`.
    #[error("layer not found: {0}")]
    LayerNotFound(String),
    /// Another port already has this MAC on this VNI. `EEXIST`.
    #[error("MAC {mac} already in use on VNI {vni} by port {port}")]
    MacExists {
        /// The port that has it.
        port: String,
        /// The VNI.
        vni: Vni,
        /// The MAC.
        mac: MacAddr,
    },
    /// A table is full; the limit is given. `ENFILE`.
    #[error("at maximum capacity of {0}")]
    MaxCapacity(u64),
    /// The command needs a request body and none came. `EINVAL`.
    #[error("no request body")]
    NoRequestBody,
    /// The port could not be created. `EINVAL`.
    #[error("failed to create port: {0}")]
    PortCreate(String),
    /// A port of that name exists. `EEXIST`.
    #[error("port exists: {0}")]
    PortExists(String),
    /// No port of that name. `ENOENT`.
    #[error("port not found: {0}")]
    PortNotFound(String),
    /// The response does not fit the caller's buffer; retry with `needed` bytes.
    /// `ENOBUFS`, and the only error with that errno, so a client can tell it apart.
    #[error("response needs {needed} bytes, buffer has {given}")]
    RespTooLarge {
        /// Bytes the response needs.
        needed: u64,
        /// Bytes the caller offered.
        given: u64,
    },
    /// No rule with that id. `ENOENT`.
    #[error("rule not found: {0}")]
    RuleNotFound(u64),
    /// The error response could not be serialised. `ENOMSG`.
    #[error("failed to serialise the command's error response: {0}")]
    SerCmdErr(String),
    /// The response could not be serialised. `ENOMSG`.
    #[error("failed to serialise the response: {0}")]
    SerCmdResp(String),
    /// A system call failed; its errno is carried. That errno.
    #[error("system error {errno}: {msg}")]
    System {
        /// The errno.
        errno: i32,
        /// What was being done.
        msg: String,
    },
    /// The port's IP configuration is inconsistent. `EINVAL`.
    #[error("invalid IP configuration")]
    InvalidIpCfg,
    /// A port's flow state could not be imported: a file of another version or kind, one
    /// for another configuration, or flows this port cannot hold. `EINVAL`.
    #[error("flow state refused: {0}")]
    FlowStateRefused(String),
}

impl OpteError {
    /// The errno reported for this error on the system this crate is built for.
    pub fn to_errno(&self) -> i32 {
        self.errno_for(Os::HOST)
    }

    /// The errno of this error in `os`'s numbering. A `System` error carries the number
    /// its own system gave.
    pub fn errno_for(&self, os: Os) -> i32 {
        let linux = self.linux_errno();
        match (os, linux) {
            (Os::Illumos, ENOMSG) if !matches!(self, Self::System { .. }) => illumos_errno::ENOMSG,
            (Os::Illumos, ENOBUFS) if !matches!(self, Self::System { .. }) => {
                illumos_errno::ENOBUFS
            }
            _ => linux,
        }
    }

    fn linux_errno(&self) -> i32 {
        match self {
            Self::BadApiVersion { .. } => EPROTO,
            Self::BadLayerPos { .. } => EINVAL,
            Self::BadName => EINVAL,
            Self::BadState(_) => EINVAL,
            Self::CopyinReq => EFAULT,
            Self::CopyoutResp => EFAULT,
            Self::DeserCmdErr(_) => ENOMSG,
            Self::DeserCmdReq(_) => ENOMSG,
            Self::FlowExists(_) => EEXIST,
            Self::InvalidRouterEntry { .. } => EINVAL,
            Self::InvalidUnderlayMulticast(_) => EINVAL,
            Self::LayerNotFound(_) => ENOENT,
            Self::MacExists { .. } => EEXIST,
            Self::MaxCapacity(_) => ENFILE,
            Self::NoRequestBody => EINVAL,
            Self::PortCreate(_) => EINVAL,
            Self::PortExists(_) => EEXIST,
            Self::PortNotFound(_) => ENOENT,
            Self::RespTooLarge { .. } => ENOBUFS,
            Self::RuleNotFound(_) => ENOENT,
            Self::SerCmdErr(_) => ENOMSG,
            Self::SerCmdResp(_) => ENOMSG,
            Self::System { errno, .. } => *errno,
            Self::InvalidIpCfg => EINVAL,
            Self::FlowStateRefused(_) => EINVAL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    /// One of each variant, in declaration order.
    fn every_variant() -> Vec<OpteError> {
        let s = || String::from("x");
        alloc::vec![
            OpteError::BadApiVersion {
                user: 40,
                kernel: 41
            },
            OpteError::BadLayerPos {
                layer: s(),
                pos: s()
            },
            OpteError::BadName,
            OpteError::BadState(s()),
            OpteError::CopyinReq,
            OpteError::CopyoutResp,
            OpteError::DeserCmdErr(s()),
            OpteError::DeserCmdReq(s()),
            OpteError::FlowExists(s()),
            OpteError::InvalidRouterEntry {
                dest: s(),
                target: s()
            },
            OpteError::InvalidUnderlayMulticast(s()),
            OpteError::LayerNotFound(s()),
            OpteError::MacExists {
                port: s(),
                vni: Vni::new(7777).unwrap_or_default(),
                mac: MacAddr::ZERO
            },
            OpteError::MaxCapacity(8192),
            OpteError::NoRequestBody,
            OpteError::PortCreate(s()),
            OpteError::PortExists(s()),
            OpteError::PortNotFound(s()),
            OpteError::RespTooLarge {
                needed: 100,
                given: 10
            },
            OpteError::RuleNotFound(3),
            OpteError::SerCmdErr(s()),
            OpteError::SerCmdResp(s()),
            OpteError::System { errno: 5, msg: s() },
            OpteError::InvalidIpCfg,
            OpteError::FlowStateRefused(s()),
        ]
    }

    #[test]
    fn errno_mapping() {
        let want = [
            EPROTO, EINVAL, EINVAL, EINVAL, EFAULT, EFAULT, ENOMSG, ENOMSG, EEXIST, EINVAL, EINVAL,
            ENOENT, EEXIST, ENFILE, EINVAL, EINVAL, EEXIST, ENOENT, ENOBUFS, ENOENT, ENOMSG,
            ENOMSG, 5, EINVAL, EINVAL,
        ];
        let got: Vec<i32> = every_variant().iter().map(OpteError::to_errno).collect();
        assert_eq!(got, want);
        // ENOBUFS is reserved for "retry with a bigger buffer".
        let enobufs = every_variant()
            .into_iter()
            .filter(|e| e.to_errno() == ENOBUFS)
            .count();
        assert_eq!(enobufs, 1);
        assert_eq!((EPROTO, EINVAL, EFAULT, ENOMSG), (71, 22, 14, 42));
        assert_eq!((EEXIST, ENOENT, ENFILE, ENOBUFS), (17, 2, 23, 105));
    }

    #[test]
    fn illumos_numbers_differ_where_its_errno_h_does() {
        let linux: Vec<i32> = every_variant()
            .iter()
            .map(|e| e.errno_for(Os::Linux))
            .collect();
        let illumos: Vec<i32> = every_variant()
            .iter()
            .map(|e| e.errno_for(Os::Illumos))
            .collect();
        for (i, (l, s)) in linux.iter().zip(&illumos).enumerate() {
            match *l {
                ENOMSG => assert_eq!(*s, 35, "variant {i}"),
                ENOBUFS => assert_eq!(*s, 132, "variant {i}"),
                _ => assert_eq!(s, l, "variant {i}"),
            }
        }
        // A system error keeps the number its own system gave, whatever it is.
        let sys = OpteError::System {
            errno: ENOBUFS,
            msg: String::new(),
        };
        assert_eq!(sys.errno_for(Os::Illumos), ENOBUFS);
        assert_eq!(Os::HOST, Os::Linux);
        assert_eq!(OpteError::NoRequestBody.to_errno(), EINVAL);
    }

    #[test]
    fn variant_order_is_the_postcard_index() {
        for (index, err) in every_variant().into_iter().enumerate() {
            let bytes = postcard::to_allocvec(&err).unwrap();
            assert_eq!(bytes.first().copied(), u8::try_from(index).ok(), "{err:?}");
            assert_eq!(postcard::from_bytes::<OpteError>(&bytes), Ok(err));
        }
    }

    #[test]
    fn messages_carry_the_details() {
        let e = OpteError::BadApiVersion {
            user: 40,
            kernel: 41,
        };
        assert_eq!(e.to_string(), "API version mismatch: client 40, server 41");
        let e = OpteError::RespTooLarge {
            needed: 100,
            given: 10,
        };
        assert_eq!(e.to_string(), "response needs 100 bytes, buffer has 10");
        let e = OpteError::MacExists {
            port: "opte0".into(),
            vni: Vni::new(7777).unwrap(),
            mac: MacAddr::from([0xa8, 0x40, 0x25, 0, 0, 1]),
        };
        assert_eq!(
            e.to_string(),
            "MAC A8:40:25:00:00:01 already in use on VNI 7777 by port opte0"
        );
    }
}
