//! IPv4 (RFC 791), with options.

use super::csum::Checksum;
use super::{EmitError, HeaderKind, emit_space};
use alloc::vec::Vec;
use opte_api::Ipv4Addr;
use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The fixed 20 bytes of an IPv4 header; options follow when IHL > 5.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Ipv4Hdr {
    pub ver_ihl: u8,
    pub dscp_ecn: u8,
    pub total_len: U16,
    pub ident: U16,
    pub flags_frag: U16,
    pub ttl: u8,
    pub proto: u8,
    pub csum: [u8; 2],
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

pub const IPV4_FLAG_DF: u16 = 0x4000;
pub const IPV4_FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

impl Ipv4Hdr {
    pub const MIN_LEN: usize = 20;
    pub const MAX_LEN: usize = 60;

    pub const fn version(&self) -> u8 {
        self.ver_ihl >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub const fn hdr_len(&self) -> usize {
        ((self.ver_ihl & 0x0f) as usize) * 4
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag.get() & FRAG_OFFSET_MASK) * 8
    }

    pub fn more_frags(&self) -> bool {
        self.flags_frag.get() & IPV4_FLAG_MF != 0
    }

    /// True for any fragment: the first (MF set, offset 0) or a later one.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
}

/// An IPv4 header summary. Field values are kept as found (including the checksum), so a
/// parsed header re-emits byte for byte; builders fill `total_len` and `csum`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub dscp_ecn: u8,
    pub total_len: u16,
    pub ident: u16,
    pub flags_frag: u16,
    pub ttl: u8,
    pub proto: u8,
    pub csum: u16,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Option bytes (a multiple of 4, at most 40).
    pub options: Vec<u8>,
}

impl Ipv4Repr {
    /// A header with no options, TTL 64 and zero length/checksum for a builder to fill.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Self {
        Self {
            dscp_ecn: 0,
            total_len: 0,
            ident: 0,
            flags_frag: 0,
            ttl: 64,
            proto,
            csum: 0,
            src,
            dst,
            options: Vec::new(),
        }
    }

    pub fn from_hdr(h: &Ipv4Hdr, options: &[u8]) -> Self {
        Self {
            dscp_ecn: h.dscp_ecn,
            total_len: h.total_len.get(),
            ident: h.ident.get(),
            flags_frag: h.flags_frag.get(),
            ttl: h.ttl,
            proto: h.proto,
            csum: u16::from_be_bytes(h.csum),
            src: Ipv4Addr::from_const(h.src),
            dst: Ipv4Addr::from_const(h.dst),
            options: Vec::from(options),
        }
    }

    pub fn emitted_len(&self) -> usize {
        Ipv4Hdr::MIN_LEN + self.options.len()
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let len = self.emitted_len();
        if len > Ipv4Hdr::MAX_LEN || !self.options.len().is_multiple_of(4) {
            // An IHL cannot express this length.
            return Err(EmitError {
                hdr: HeaderKind::Ipv4,
                need: len,
                have: Ipv4Hdr::MAX_LEN,
            });
        }
        let out = emit_space(buf, len, HeaderKind::Ipv4)?;
        let h = Ipv4Hdr {
            ver_ihl: 0x40 | (len / 4) as u8,
            dscp_ecn: self.dscp_ecn,
            total_len: U16::new(self.total_len),
            ident: U16::new(self.ident),
            flags_frag: U16::new(self.flags_frag),
            ttl: self.ttl,
            proto: self.proto,
            csum: self.csum.to_be_bytes(),
            src: self.src.bytes(),
            dst: self.dst.bytes(),
        };
        let (fixed, opts) = out.split_at_mut(Ipv4Hdr::MIN_LEN);
        fixed.copy_from_slice(h.as_bytes());
        opts.copy_from_slice(&self.options);
        Ok(len)
    }
}

/// Compute and store the header checksum of the IPv4 header at the front of `hdr`
/// (`hdr` must be exactly the header, options included).
pub fn fill_header_csum(hdr: &mut [u8]) {
    if let Some(c) = hdr.get_mut(10..12) {
        c.copy_from_slice(&[0, 0]);
    }
    let csum = Checksum::of(hdr).finalize();
    if let Some(c) = hdr.get_mut(10..12) {
        c.copy_from_slice(&csum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_with_options_sets_ihl() {
        let mut r = Ipv4Repr::new(
            Ipv4Addr::from_const([172, 30, 0, 5]),
            Ipv4Addr::from_const([93, 184, 216, 34]),
            6,
        );
        r.options = alloc::vec![1, 1, 1, 0]; // NOP NOP NOP EOL
        r.total_len = 44;
        let mut buf = [0u8; 24];
        assert_eq!(r.emit(&mut buf), Ok(24));
        assert_eq!(buf[0], 0x46);
        assert_eq!(&buf[2..4], &[0, 44]);
        assert_eq!(&buf[12..16], &[172, 30, 0, 5]);
        assert_eq!(&buf[20..24], &[1, 1, 1, 0]);
        fill_header_csum(&mut buf);
        assert_eq!(Checksum::of(&buf).fold(), 0xffff);
        let (h, _) = Ipv4Hdr::ref_from_prefix(&buf[..]).unwrap();
        assert_eq!(Ipv4Repr::from_hdr(h, &buf[20..24]).emitted_len(), 24);
    }

    #[test]
    fn unaligned_options_are_refused() {
        let mut r = Ipv4Repr::new(Ipv4Addr::ANY_ADDR, Ipv4Addr::ANY_ADDR, 17);
        r.options = alloc::vec![1, 1];
        assert!(r.emit(&mut [0u8; 64]).is_err());
    }

    #[test]
    fn fragment_fields() {
        let mut buf = [0u8; 20];
        buf[0] = 0x45;
        buf[6..8].copy_from_slice(&(IPV4_FLAG_MF | 3).to_be_bytes());
        let (h, _) = Ipv4Hdr::ref_from_prefix(&buf[..]).unwrap();
        assert!(h.more_frags());
        assert_eq!(h.frag_offset(), 24);
        assert!(h.is_fragment());
    }
}
