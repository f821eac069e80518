//! Ethernet II frames, with recognition of one IEEE 802.1Q tag.

use super::{EmitError, HeaderKind, emit_space};
use opte_api::MacAddr;
use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const ETHER_TYPE_IPV4: u16 = 0x0800;
pub const ETHER_TYPE_ARP: u16 = 0x0806;
pub const ETHER_TYPE_VLAN: u16 = 0x8100;
pub const ETHER_TYPE_IPV6: u16 = 0x86dd;
/// Transparent Ethernet bridging: what Geneve carries.
pub const ETHER_TYPE_ETHER: u16 = 0x6558;

/// The 14-byte Ethernet II header.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct EtherHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ether_type: U16,
}

impl EtherHdr {
    pub const LEN: usize = 14;
}

/// The 4 bytes an 802.1Q tag adds after the source address: TCI, then the real ethertype.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VlanTag {
    pub tci: U16,
    pub ether_type: U16,
}

impl VlanTag {
    pub const LEN: usize = 4;
}

/// An Ethernet header summary. `vlan` is the tag's TCI when the frame is 802.1Q-tagged;
/// `ether_type` is always the type of the payload (after the tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EtherRepr {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ether_type: u16,
    pub vlan: Option<u16>,
}

impl EtherRepr {
    pub const fn emitted_len(&self) -> usize {
        match self.vlan {
            Some(_) => EtherHdr::LEN + VlanTag::LEN,
            None => EtherHdr::LEN,
        }
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let len = self.emitted_len();
        let out = emit_space(buf, len, HeaderKind::Ethernet)?;
        let outer_type = if self.vlan.is_some() {
            ETHER_TYPE_VLAN
        } else {
            self.ether_type
        };
        let hdr = EtherHdr {
            dst: self.dst.bytes(),
            src: self.src.bytes(),
            ether_type: U16::new(outer_type),
        };
        let (h, rest) = out.split_at_mut(EtherHdr::LEN);
        h.copy_from_slice(hdr.as_bytes());
        if let Some(tci) = self.vlan {
            let tag = VlanTag {
                tci: U16::new(tci),
                ether_type: U16::new(self.ether_type),
            };
            rest.copy_from_slice(tag.as_bytes());
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_plain_and_tagged() {
        let r = EtherRepr {
            dst: MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]),
            src: MacAddr::from_const([0xa8, 0x40, 0x25, 0xfa, 0xfa, 0x37]),
            ether_type: ETHER_TYPE_IPV4,
            vlan: None,
        };
        let mut buf = [0u8; 18];
        assert_eq!(r.emit(&mut buf), Ok(14));
        assert_eq!(
            &buf[..14],
            &[
                0xa8, 0x40, 0x25, 0xff, 0x77, 0x77, 0xa8, 0x40, 0x25, 0xfa, 0xfa, 0x37, 0x08, 0x00
            ]
        );
        let tagged = EtherRepr {
            vlan: Some(0x0064),
            ..r
        };
        assert_eq!(tagged.emit(&mut buf), Ok(18));
        assert_eq!(&buf[12..18], &[0x81, 0x00, 0x00, 0x64, 0x08, 0x00]);
        let mut short = [0u8; 10];
        assert_eq!(
            r.emit(&mut short),
            Err(EmitError {
                hdr: HeaderKind::Ethernet,
                need: 14,
                have: 10
            })
        );
    }
}
