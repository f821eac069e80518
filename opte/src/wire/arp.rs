//! ARP for Ethernet and IPv4 (RFC 826).

use super::{EmitError, HeaderKind, emit_space};
use opte_api::{Ipv4Addr, MacAddr};
use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const ARP_HTYPE_ETHERNET: u16 = 1;
pub const ARP_OP_REQUEST: u16 = 1;
pub const ARP_OP_REPLY: u16 = 2;

/// The 28-byte ARP packet for Ethernet hardware and IPv4 protocol addresses.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ArpEthIpv4Hdr {
    pub htype: U16,
    pub ptype: U16,
    pub hlen: u8,
    pub plen: u8,
    pub op: U16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
}

impl ArpEthIpv4Hdr {
    pub const LEN: usize = 28;
}

/// An ARP packet summary; the fixed fields (htype 1, ptype IPv4, hlen 6, plen 4) are implied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRepr {
    pub op: u16,
    pub sha: MacAddr,
    pub spa: Ipv4Addr,
    pub tha: MacAddr,
    pub tpa: Ipv4Addr,
}

impl ArpRepr {
    pub const fn emitted_len(&self) -> usize {
        ArpEthIpv4Hdr::LEN
    }

    pub fn from_hdr(h: &ArpEthIpv4Hdr) -> Self {
        Self {
            op: h.op.get(),
            sha: MacAddr::from_const(h.sha),
            spa: Ipv4Addr::from_const(h.spa),
            tha: MacAddr::from_const(h.tha),
            tpa: Ipv4Addr::from_const(h.tpa),
        }
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let out = emit_space(buf, ArpEthIpv4Hdr::LEN, HeaderKind::Arp)?;
        let h = ArpEthIpv4Hdr {
            htype: U16::new(ARP_HTYPE_ETHERNET),
            ptype: U16::new(super::ether::ETHER_TYPE_IPV4),
            hlen: 6,
            plen: 4,
            op: U16::new(self.op),
            sha: self.sha.bytes(),
            spa: self.spa.bytes(),
            tha: self.tha.bytes(),
            tpa: self.tpa.bytes(),
        };
        out.copy_from_slice(h.as_bytes());
        Ok(ArpEthIpv4Hdr::LEN)
    }
}
