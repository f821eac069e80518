//! TCP (RFC 9293), with options carried as bytes.

use super::{EmitError, HeaderKind, emit_space};
use alloc::vec::Vec;
use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The fixed 20 bytes of a TCP header; options follow when the data offset exceeds 5.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TcpHdr {
    pub src_port: U16,
    pub dst_port: U16,
    pub seq: U32,
    pub ack: U32,
    /// Data offset (high 4 bits) and reserved bits.
    pub off_res: u8,
    pub flags: u8,
    pub window: U16,
    pub csum: [u8; 2],
    pub urg: U16,
}

impl TcpHdr {
    pub const MIN_LEN: usize = 20;
    pub const MAX_LEN: usize = 60;

    /// Header length in bytes (data offset × 4).
    pub const fn hdr_len(&self) -> usize {
        ((self.off_res >> 4) as usize) * 4
    }
}

pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// The low 4 bits of the offset byte (reserved/AE), kept so a parsed header re-emits as is.
    pub reserved: u8,
    pub flags: u8,
    pub window: u16,
    pub csum: u16,
    pub urg: u16,
    /// Option bytes (a multiple of 4, at most 40).
    pub options: Vec<u8>,
}

impl TcpRepr {
    pub fn new(src_port: u16, dst_port: u16, flags: u8) -> Self {
        Self {
            src_port,
            dst_port,
            seq: 0,
            ack: 0,
            reserved: 0,
            flags,
            window: 0,
            csum: 0,
            urg: 0,
            options: Vec::new(),
        }
    }

    pub fn from_hdr(h: &TcpHdr, options: &[u8]) -> Self {
        Self {
            src_port: h.src_port.get(),
            dst_port: h.dst_port.get(),
            seq: h.seq.get(),
            ack: h.ack.get(),
            reserved: h.off_res & 0x0f,
            flags: h.flags,
            window: h.window.get(),
            csum: u16::from_be_bytes(h.csum),
            urg: h.urg.get(),
            options: Vec::from(options),
        }
    }

    pub fn emitted_len(&self) -> usize {
        TcpHdr::MIN_LEN + self.options.len()
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let len = self.emitted_len();
        if len > TcpHdr::MAX_LEN || !self.options.len().is_multiple_of(4) {
            return Err(EmitError {
                hdr: HeaderKind::Tcp,
                need: len,
                have: TcpHdr::MAX_LEN,
            });
        }
        let out = emit_space(buf, len, HeaderKind::Tcp)?;
        let h = TcpHdr {
            src_port: U16::new(self.src_port),
            dst_port: U16::new(self.dst_port),
            seq: U32::new(self.seq),
            ack: U32::new(self.ack),
            off_res: (((len / 4) as u8) << 4) | (self.reserved & 0x0f),
            flags: self.flags,
            window: U16::new(self.window),
            csum: self.csum.to_be_bytes(),
            urg: U16::new(self.urg),
        };
        let (fixed, opts) = out.split_at_mut(TcpHdr::MIN_LEN);
        fixed.copy_from_slice(h.as_bytes());
        opts.copy_from_slice(&self.options);
        Ok(len)
    }
}
