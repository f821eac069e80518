//! UDP (RFC 768).

use super::{EmitError, HeaderKind, emit_space};
use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct UdpHdr {
    pub src_port: U16,
    pub dst_port: U16,
    pub len: U16,
    pub csum: [u8; 2],
}

impl UdpHdr {
    pub const LEN: usize = 8;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub len: u16,
    pub csum: u16,
}

impl UdpRepr {
    pub const fn new(src_port: u16, dst_port: u16) -> Self {
        Self {
            src_port,
            dst_port,
            len: 0,
            csum: 0,
        }
    }

    pub fn from_hdr(h: &UdpHdr) -> Self {
        Self {
            src_port: h.src_port.get(),
            dst_port: h.dst_port.get(),
            len: h.len.get(),
            csum: u16::from_be_bytes(h.csum),
        }
    }

    pub const fn emitted_len(&self) -> usize {
        UdpHdr::LEN
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let out = emit_space(buf, UdpHdr::LEN, HeaderKind::Udp)?;
        let h = UdpHdr {
            src_port: U16::new(self.src_port),
            dst_port: U16::new(self.dst_port),
            len: U16::new(self.len),
            csum: self.csum.to_be_bytes(),
        };
        out.copy_from_slice(h.as_bytes());
        Ok(UdpHdr::LEN)
    }
}
