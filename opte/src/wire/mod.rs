//! Wire formats: header layouts as zerocopy views, header summaries (`*Repr`) that emit
//! themselves, and the Internet checksum.
//!
//! Each header is a `#[repr(C)]` struct of network-endian fields that derives zerocopy's
//! traits, so a view over packet bytes is a checked cast: after `ref_from_prefix` succeeds no
//! accessor can fail. Each `*Repr` is a small owned summary whose `emit` writes exactly
//! `emitted_len()` bytes and returns an error, never panics, on a short buffer. This module
//! knows nothing of packets, flows or ports.

pub mod arp;
pub mod csum;
pub mod ether;
pub mod geneve;
pub mod icmp;
pub mod ip4;
pub mod ip6;
pub mod tcp;
pub mod udp;

use core::fmt;

/// Which header a parse or emit error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderKind {
    Ethernet,
    Vlan,
    Arp,
    Ipv4,
    Ipv6,
    Ipv6Ext,
    Tcp,
    Udp,
    Icmpv4,
    Icmpv6,
    Geneve,
    GeneveOpt,
}

impl HeaderKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ethernet => "Ethernet",
            Self::Vlan => "Vlan",
            Self::Arp => "Arp",
            Self::Ipv4 => "Ipv4",
            Self::Ipv6 => "Ipv6",
            Self::Ipv6Ext => "Ipv6Ext",
            Self::Tcp => "Tcp",
            Self::Udp => "Udp",
            Self::Icmpv4 => "Icmpv4",
            Self::Icmpv6 => "Icmpv6",
            Self::Geneve => "Geneve",
            Self::GeneveOpt => "GeneveOpt",
        }
    }
}

impl fmt::Display for HeaderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A buffer was too small for the header being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmitError {
    pub hdr: HeaderKind,
    pub need: usize,
    pub have: usize,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: need {} bytes to emit, buffer has {}",
            self.hdr, self.need, self.have
        )
    }
}

/// The first `n` bytes of `buf`, or an [`EmitError`] naming `hdr`.
pub(crate) fn emit_space(
    buf: &mut [u8],
    n: usize,
    hdr: HeaderKind,
) -> Result<&mut [u8], EmitError> {
    let have = buf.len();
    buf.get_mut(..n).ok_or(EmitError { hdr, need: n, have })
}

/// IP protocol numbers and IPv6 next-header values the parser knows.
pub mod proto {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const IGMP: u8 = 2;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
    /// RFC 3692 experimental values; the DDM header of the Oxide rack is 0xFE.
    pub const EXPERIMENT1: u8 = 253;
    pub const EXPERIMENT2: u8 = 254;
}
