//! Why a packet failed to parse: which header, which field, what was expected, what was seen.

use crate::wire::HeaderKind;
use core::fmt;

/// What a field should have held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Exactly(u64),
    AtLeast(u64),
    AtMost(u64),
    /// One of a set of values, described for a reader (e.g. "IPv4|IPv6|ARP").
    OneOf(&'static str),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exactly(v) => write!(f, "{v}"),
            Self::AtLeast(v) => write!(f, "at least {v}"),
            Self::AtMost(v) => write!(f, "at most {v}"),
            Self::OneOf(s) => write!(f, "one of {s}"),
        }
    }
}

/// A field whose value did not fit the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub hdr: HeaderKind,
    pub field: &'static str,
    pub expected: Expected,
    pub actual: u64,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}: expected {}, found {}",
            self.hdr, self.field, self.expected, self.actual
        )
    }
}

/// A packet the parser refuses. Every variant says where the problem is; none is a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The packet ended inside a header.
    Truncated {
        hdr: HeaderKind,
        need: usize,
        have: usize,
    },
    /// A field holds a value the protocol forbids (a bad version, say).
    IllegalValue(Mismatch),
    /// A length field disagrees with the bytes present or with another length.
    BadLength(Mismatch),
    /// A well-formed header for something this parse shape does not carry (a protocol or
    /// ethertype OPTE does not handle, a UDP port that is not Geneve).
    Unwanted(Mismatch),
    /// A critical Geneve option we do not understand (RFC 8926 §3.5: must drop).
    UnrecognisedTunnelOpt { class: u16, ty: u8 },
}

impl ParseError {
    /// A short stable name for drop counters and probes.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::IllegalValue(_) => "illegal_value",
            Self::BadLength(_) => "bad_length",
            Self::Unwanted(_) => "unwanted",
            Self::UnrecognisedTunnelOpt { .. } => "unrecognised_tunnel_opt",
        }
    }

    /// The header at fault.
    pub fn header(&self) -> HeaderKind {
        match self {
            Self::Truncated { hdr, .. } => *hdr,
            Self::IllegalValue(m) | Self::BadLength(m) | Self::Unwanted(m) => m.hdr,
            Self::UnrecognisedTunnelOpt { .. } => HeaderKind::GeneveOpt,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { hdr, need, have } => {
                write!(f, "{hdr}: truncated, need {need} bytes, {have} left")
            }
            Self::IllegalValue(m) => write!(f, "illegal value: {m}"),
            Self::BadLength(m) => write!(f, "bad length: {m}"),
            Self::Unwanted(m) => write!(f, "unwanted: {m}"),
            Self::UnrecognisedTunnelOpt { class, ty } => {
                write!(
                    f,
                    "GeneveOpt: unrecognised critical option class {class:#06x} type {ty:#04x}"
                )
            }
        }
    }
}

impl core::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn messages_name_header_field_expected_and_actual() {
        let e = ParseError::BadLength(Mismatch {
            hdr: HeaderKind::Ipv4,
            field: "total_len",
            expected: Expected::AtLeast(20),
            actual: 12,
        });
        assert_eq!(
            e.to_string(),
            "bad length: Ipv4.total_len: expected at least 20, found 12"
        );
        assert_eq!(e.reason(), "bad_length");
        assert_eq!(e.header(), HeaderKind::Ipv4);
    }
}
