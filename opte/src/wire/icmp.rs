//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443), with the NDP messages and options of RFC 4861.
//!
//! Both ICMP versions share an 8-byte header shape: type, code, checksum and four bytes whose
//! meaning depends on the type (echo identifier and sequence for echo messages). NDP message
//! bodies are views over the bytes after the 4-byte type/code/checksum prefix.

use super::{EmitError, HeaderKind, emit_space};
use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub mod v4_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACH: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
}

pub mod v6_type {
    pub const DEST_UNREACH: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
}

/// The 8-byte header shape of ICMPv4 and ICMPv6 messages.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IcmpHdr {
    pub ty: u8,
    pub code: u8,
    pub csum: [u8; 2],
    pub rest: [u8; 4],
}

impl IcmpHdr {
    pub const LEN: usize = 8;

    /// The echo identifier (first two bytes of `rest`), meaningful for echo messages only.
    pub const fn echo_id(&self) -> u16 {
        u16::from_be_bytes([self.rest[0], self.rest[1]])
    }

    pub const fn echo_seq(&self) -> u16 {
        u16::from_be_bytes([self.rest[2], self.rest[3]])
    }
}

/// An ICMP header summary (either version; the parse result says which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpRepr {
    pub ty: u8,
    pub code: u8,
    pub csum: u16,
    pub rest: [u8; 4],
}

impl IcmpRepr {
    pub const fn echo(ty: u8, id: u16, seq: u16) -> Self {
        let i = id.to_be_bytes();
        let s = seq.to_be_bytes();
        Self {
            ty,
            code: 0,
            csum: 0,
            rest: [i[0], i[1], s[0], s[1]],
        }
    }

    pub fn from_hdr(h: &IcmpHdr) -> Self {
        Self {
            ty: h.ty,
            code: h.code,
            csum: u16::from_be_bytes(h.csum),
            rest: h.rest,
        }
    }

    pub const fn emitted_len(&self) -> usize {
        IcmpHdr::LEN
    }

    pub fn emit(&self, buf: &mut [u8], hdr: HeaderKind) -> Result<usize, EmitError> {
        let out = emit_space(buf, IcmpHdr::LEN, hdr)?;
        let h = IcmpHdr {
            ty: self.ty,
            code: self.code,
            csum: self.csum.to_be_bytes(),
            rest: self.rest,
        };
        out.copy_from_slice(h.as_bytes());
        Ok(IcmpHdr::LEN)
    }
}

/// Router Advertisement body (after type/code/checksum), RFC 4861 §4.2.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RouterAdvertBody {
    pub cur_hop_limit: u8,
    /// M (0x80) and O (0x40) flags.
    pub flags: u8,
    pub router_lifetime: U16,
    pub reachable_time: U32,
    pub retrans_timer: U32,
}

pub const RA_FLAG_MANAGED: u8 = 0x80;
pub const RA_FLAG_OTHER: u8 = 0x40;

/// Neighbor Solicitation body, RFC 4861 §4.3.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct NeighborSolicitBody {
    pub reserved: [u8; 4],
    pub target: [u8; 16],
}

/// Neighbor Advertisement body, RFC 4861 §4.4: R (router), S (solicited), O (override) flags
/// in the top bits of the first byte.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct NeighborAdvertBody {
    pub flags: [u8; 4],
    pub target: [u8; 16],
}

pub const NA_FLAG_ROUTER: u8 = 0x80;
pub const NA_FLAG_SOLICITED: u8 = 0x40;
pub const NA_FLAG_OVERRIDE: u8 = 0x20;

/// Bytes from the start of an NDP message to its options.
pub const fn ndp_options_offset(ty: u8) -> Option<usize> {
    match ty {
        v6_type::ROUTER_SOLICIT => Some(8),
        v6_type::ROUTER_ADVERT => Some(16),
        v6_type::NEIGHBOR_SOLICIT | v6_type::NEIGHBOR_ADVERT => Some(24),
        v6_type::REDIRECT => Some(40),
        _ => None,
    }
}

pub mod ndp_opt {
    pub const SOURCE_LLA: u8 = 1;
    pub const TARGET_LLA: u8 = 2;
    pub const PREFIX_INFO: u8 = 3;
    pub const REDIRECTED_HDR: u8 = 4;
    pub const MTU: u8 = 5;
}

/// One NDP option: its type and its bytes after the 2-byte type/length prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdpOption<'a> {
    pub ty: u8,
    pub data: &'a [u8],
}

impl NdpOption<'_> {
    /// The link-layer address of a Source/Target LLA option on Ethernet.
    pub fn lla(&self) -> Option<[u8; 6]> {
        match self.ty {
            ndp_opt::SOURCE_LLA | ndp_opt::TARGET_LLA => self.data.get(..6)?.try_into().ok(),
            _ => None,
        }
    }

    /// The MTU of an MTU option.
    pub fn mtu(&self) -> Option<u32> {
        if self.ty != ndp_opt::MTU {
            return None;
        }
        Some(u32::from_be_bytes(self.data.get(2..6)?.try_into().ok()?))
    }
}

/// A malformed NDP option list (RFC 4861 §4.6: a length of zero, or past the message end,
/// makes the whole message invalid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdpOptionError {
    ZeroLength { ty: u8 },
    Truncated { ty: u8, need: usize, have: usize },
}

/// Iterates the options of an NDP message; yields an error once and then stops.
pub struct NdpOptions<'a> {
    bytes: &'a [u8],
}

impl<'a> NdpOptions<'a> {
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }
}

impl<'a> Iterator for NdpOptions<'a> {
    type Item = Result<NdpOption<'a>, NdpOptionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&ty, rest) = self.bytes.split_first()?;
        let units = match rest.first() {
            Some(&u) => usize::from(u),
            None => {
                self.bytes = &[];
                return Some(Err(NdpOptionError::Truncated {
                    ty,
                    need: 2,
                    have: 1,
                }));
            }
        };
        if units == 0 {
            self.bytes = &[];
            return Some(Err(NdpOptionError::ZeroLength { ty }));
        }
        let len = units * 8;
        let have = self.bytes.len();
        match (self.bytes.get(2..len), self.bytes.get(len..)) {
            (Some(data), Some(next)) => {
                self.bytes = next;
                Some(Ok(NdpOption { ty, data }))
            }
            _ => {
                self.bytes = &[];
                Some(Err(NdpOptionError::Truncated {
                    ty,
                    need: len,
                    have,
                }))
            }
        }
    }
}

/// Write a Source or Target Link-Layer Address option for an Ethernet address (8 bytes).
pub fn emit_lla_option(buf: &mut [u8], ty: u8, mac: [u8; 6]) -> Result<usize, EmitError> {
    let out = emit_space(buf, 8, HeaderKind::Icmpv6)?;
    let (head, addr) = out.split_at_mut(2);
    head.copy_from_slice(&[ty, 1]);
    addr.copy_from_slice(&mac);
    Ok(8)
}

/// Write an MTU option (8 bytes).
pub fn emit_mtu_option(buf: &mut [u8], mtu: u32) -> Result<usize, EmitError> {
    let out = emit_space(buf, 8, HeaderKind::Icmpv6)?;
    let (head, val) = out.split_at_mut(4);
    head.copy_from_slice(&[ndp_opt::MTU, 1, 0, 0]);
    val.copy_from_slice(&mtu.to_be_bytes());
    Ok(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndp_options_walk_and_reject_zero_length() {
        let mut buf = [0u8; 16];
        emit_lla_option(&mut buf, ndp_opt::SOURCE_LLA, [1, 2, 3, 4, 5, 6]).unwrap();
        emit_mtu_option(&mut buf[8..], 1500).unwrap();
        let opts: alloc::vec::Vec<_> = NdpOptions::new(&buf).collect();
        assert_eq!(opts.len(), 2);
        assert_eq!(opts[0].unwrap().lla(), Some([1, 2, 3, 4, 5, 6]));
        assert_eq!(opts[1].unwrap().mtu(), Some(1500));

        let bad = [ndp_opt::SOURCE_LLA, 0, 1, 2, 3, 4, 5, 6];
        let mut it = NdpOptions::new(&bad);
        assert_eq!(it.next(), Some(Err(NdpOptionError::ZeroLength { ty: 1 })));
        assert_eq!(it.next(), None);

        let short = [ndp_opt::MTU, 2, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            NdpOptions::new(&short).next(),
            Some(Err(NdpOptionError::Truncated {
                ty: 5,
                need: 16,
                have: 8
            }))
        );
    }

    #[test]
    fn echo_fields() {
        let r = IcmpRepr::echo(v4_type::ECHO_REQUEST, 7, 777);
        let mut buf = [0u8; 8];
        r.emit(&mut buf, HeaderKind::Icmpv4).unwrap();
        let (h, _) = IcmpHdr::ref_from_prefix(&buf[..]).unwrap();
        assert_eq!((h.ty, h.echo_id(), h.echo_seq()), (8, 7, 777));
        assert_eq!(ndp_options_offset(v6_type::ROUTER_ADVERT), Some(16));
        assert_eq!(core::mem::size_of::<RouterAdvertBody>(), 12);
    }
}
