//! IPv6 (RFC 8200) and its extension headers.
//!
//! Extension headers are walked by class: the Fragment header (fixed 8 bytes) and every
//! header in the RFC 6564 uniform format (Hop-by-Hop, Routing, Destination Options,
//! Mobility, HIP, Shim6 and the experimental 253/254), whose second byte gives the length in
//! 8-octet units after the first 8.

use super::{EmitError, HeaderKind, emit_space, proto};
use alloc::vec::Vec;
use opte_api::Ipv6Addr;
use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The fixed 40-byte IPv6 header.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Ipv6Hdr {
    pub vtc_flow: U32,
    pub payload_len: U16,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

impl Ipv6Hdr {
    pub const LEN: usize = 40;

    pub fn version(&self) -> u8 {
        (self.vtc_flow.get() >> 28) as u8
    }
}

/// The first two bytes every RFC 6564-format extension header shares.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtHdrPrefix {
    pub next_header: u8,
    pub hdr_ext_len: u8,
}

impl ExtHdrPrefix {
    /// Length of the whole extension header in bytes.
    pub const fn hdr_len(&self) -> usize {
        (self.hdr_ext_len as usize + 1) * 8
    }
}

/// The 8-byte Fragment extension header.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FragmentHdr {
    pub next_header: u8,
    pub reserved: u8,
    pub offset_flags: U16,
    pub ident: U32,
}

impl FragmentHdr {
    pub const LEN: usize = 8;

    /// Fragment offset in bytes.
    pub fn offset(&self) -> u16 {
        self.offset_flags.get() & 0xfff8
    }

    pub fn more_frags(&self) -> bool {
        self.offset_flags.get() & 1 != 0
    }
}

/// How an IPv6 next-header value is to be walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtKind {
    /// RFC 6564 uniform format: length in the second byte.
    Uniform,
    Fragment,
    /// Not an extension header: the upper-layer protocol.
    NotExt,
}

pub const fn ext_kind(next_header: u8) -> ExtKind {
    match next_header {
        proto::HOP_BY_HOP
        | proto::ROUTING
        | proto::DEST_OPTS
        | proto::MOBILITY
        | proto::HIP
        | proto::SHIM6
        | proto::EXPERIMENT1
        | proto::EXPERIMENT2 => ExtKind::Uniform,
        proto::FRAGMENT => ExtKind::Fragment,
        _ => ExtKind::NotExt,
    }
}

/// An IPv6 header summary. `next_header` is the fixed header's field (the first extension
/// header's type when `ext` is non-empty); `ext` holds the extension headers' bytes as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub traffic_class: u8,
    pub flow_label: u32,
    pub payload_len: u16,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub ext: Vec<u8>,
}

impl Ipv6Repr {
    /// A header with no extension headers and hop limit 64; a builder fills the length.
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8) -> Self {
        Self {
            traffic_class: 0,
            flow_label: 0,
            payload_len: 0,
            next_header,
            hop_limit: 64,
            src,
            dst,
            ext: Vec::new(),
        }
    }

    pub fn from_hdr(h: &Ipv6Hdr, ext: &[u8]) -> Self {
        let v = h.vtc_flow.get();
        Self {
            traffic_class: (v >> 20) as u8,
            flow_label: v & 0x000f_ffff,
            payload_len: h.payload_len.get(),
            next_header: h.next_header,
            hop_limit: h.hop_limit,
            src: Ipv6Addr::from_const(h.src),
            dst: Ipv6Addr::from_const(h.dst),
            ext: Vec::from(ext),
        }
    }

    pub fn emitted_len(&self) -> usize {
        Ipv6Hdr::LEN + self.ext.len()
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let len = self.emitted_len();
        let out = emit_space(buf, len, HeaderKind::Ipv6)?;
        let h = Ipv6Hdr {
            vtc_flow: U32::new(
                (6 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff),
            ),
            payload_len: U16::new(self.payload_len),
            next_header: self.next_header,
            hop_limit: self.hop_limit,
            src: self.src.bytes(),
            dst: self.dst.bytes(),
        };
        let (fixed, ext) = out.split_at_mut(Ipv6Hdr::LEN);
        fixed.copy_from_slice(h.as_bytes());
        ext.copy_from_slice(&self.ext);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_header_lengths() {
        assert_eq!(
            ExtHdrPrefix {
                next_header: 6,
                hdr_ext_len: 0
            }
            .hdr_len(),
            8
        );
        assert_eq!(
            ExtHdrPrefix {
                next_header: 6,
                hdr_ext_len: 2
            }
            .hdr_len(),
            24
        );
        assert_eq!(
            ExtHdrPrefix {
                next_header: 6,
                hdr_ext_len: 255
            }
            .hdr_len(),
            2048
        );
        assert_eq!(ext_kind(0xfe), ExtKind::Uniform);
        assert_eq!(ext_kind(44), ExtKind::Fragment);
        assert_eq!(ext_kind(6), ExtKind::NotExt);
        assert_eq!(ext_kind(51), ExtKind::NotExt);
    }

    #[test]
    fn emit_fixed_fields() {
        let mut r = Ipv6Repr::new(
            Ipv6Addr::from_const([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]),
            Ipv6Addr::ANY_ADDR,
            17,
        );
        r.traffic_class = 0xab;
        r.flow_label = 0x12345;
        r.payload_len = 8;
        let mut buf = [0u8; 40];
        assert_eq!(r.emit(&mut buf), Ok(40));
        assert_eq!(&buf[..8], &[0x6a, 0xb1, 0x23, 0x45, 0, 8, 17, 64]);
        let (h, _) = Ipv6Hdr::ref_from_prefix(&buf[..]).unwrap();
        assert_eq!(h.version(), 6);
        assert_eq!(Ipv6Repr::from_hdr(h, &[]), r);
    }
}
