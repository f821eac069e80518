//! Geneve (RFC 8926) and the Oxide option class.
//!
//! Options are TLVs after the 8-byte base header: class (16 bits), type (8 bits, the top bit
//! marks the option critical), and a 5-bit length in 4-byte words. The Oxide class 0x0129
//! defines External (0, empty), Multicast (1, 4 bytes: 2-bit replication mode) and Mss
//! (2, a 4-byte big-endian MSS).

use super::{EmitError, HeaderKind, emit_space};
use alloc::vec::Vec;
use opte_api::Vni;
use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const GENEVE_PORT: u16 = 6081;
pub const GENEVE_OPT_CLASS_OXIDE: u16 = 0x0129;
/// The critical bit of an option type.
pub const GENEVE_OPT_CRITICAL: u8 = 0x80;
/// The C flag of the base header: critical options are present.
pub const GENEVE_FLAG_CRITICAL: u8 = 0x40;
/// The O flag of the base header: an OAM frame.
pub const GENEVE_FLAG_OAM: u8 = 0x80;

/// The 8-byte Geneve base header.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct GeneveHdr {
    /// Version (top 2 bits) and total option length in 4-byte words (low 6 bits).
    pub ver_opt_len: u8,
    /// O and C flags (top 2 bits), then reserved.
    pub flags: u8,
    pub protocol: U16,
    pub vni: [u8; 3],
    pub reserved: u8,
}

impl GeneveHdr {
    pub const LEN: usize = 8;

    pub const fn version(&self) -> u8 {
        self.ver_opt_len >> 6
    }

    /// Length of all options in bytes.
    pub const fn opts_len(&self) -> usize {
        ((self.ver_opt_len & 0x3f) as usize) * 4
    }
}

/// The 4-byte header of one Geneve option.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct GeneveOptHdr {
    pub class: U16,
    pub ty: u8,
    /// Reserved (top 3 bits) and body length in 4-byte words (low 5 bits).
    pub len: u8,
}

impl GeneveOptHdr {
    pub const LEN: usize = 4;

    pub const fn body_len(&self) -> usize {
        ((self.len & 0x1f) as usize) * 4
    }
}

/// The option types of the Oxide class (without the critical bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OxideOptType {
    External = 0,
    Multicast = 1,
    Mss = 2,
}

impl OxideOptType {
    /// The option of this type byte. The critical bit is part of the type (RFC 8926 §3.5):
    /// 0x80 is not External but an unknown critical option.
    pub const fn from_type(ty: u8) -> Option<Self> {
        match ty {
            0 => Some(Self::External),
            1 => Some(Self::Multicast),
            2 => Some(Self::Mss),
            _ => None,
        }
    }
}

/// Multicast replication mode carried in the Oxide Multicast option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replication {
    External = 0,
    Underlay = 1,
    Both = 2,
    Reserved = 3,
}

impl Replication {
    pub const fn from_bits(b: u8) -> Self {
        match b & 0x3 {
            0 => Self::External,
            1 => Self::Underlay,
            2 => Self::Both,
            _ => Self::Reserved,
        }
    }
}

/// One Geneve option as found or to be written. `data` is the body, a multiple of 4 bytes
/// and at most 124.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneveOpt {
    pub class: u16,
    pub ty: u8,
    pub data: Vec<u8>,
}

impl GeneveOpt {
    pub fn oxide_external() -> Self {
        Self {
            class: GENEVE_OPT_CLASS_OXIDE,
            ty: OxideOptType::External as u8,
            data: Vec::new(),
        }
    }

    pub fn oxide_multicast(r: Replication) -> Self {
        let data = alloc::vec![(r as u8) << 6, 0, 0, 0];
        Self {
            class: GENEVE_OPT_CLASS_OXIDE,
            ty: OxideOptType::Multicast as u8,
            data,
        }
    }

    pub fn oxide_mss(mss: u32) -> Self {
        let data = Vec::from(mss.to_be_bytes());
        Self {
            class: GENEVE_OPT_CLASS_OXIDE,
            ty: OxideOptType::Mss as u8,
            data,
        }
    }

    pub const fn is_critical(&self) -> bool {
        self.ty & GENEVE_OPT_CRITICAL != 0
    }

    pub fn emitted_len(&self) -> usize {
        GeneveOptHdr::LEN + self.data.len()
    }
}

/// A Geneve header summary with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneveRepr {
    pub version: u8,
    pub flags: u8,
    pub protocol: u16,
    pub vni: Vni,
    pub reserved: u8,
    pub options: Vec<GeneveOpt>,
}

impl GeneveRepr {
    /// A version-0 header carrying Ethernet, with the C flag set if any option is critical.
    pub fn new(vni: Vni, options: Vec<GeneveOpt>) -> Self {
        let flags = if options.iter().any(GeneveOpt::is_critical) {
            GENEVE_FLAG_CRITICAL
        } else {
            0
        };
        Self {
            version: 0,
            flags,
            protocol: super::ether::ETHER_TYPE_ETHER,
            vni,
            reserved: 0,
            options,
        }
    }

    pub fn opts_len(&self) -> usize {
        self.options.iter().map(GeneveOpt::emitted_len).sum()
    }

    pub fn emitted_len(&self) -> usize {
        GeneveHdr::LEN + self.opts_len()
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let opts_len = self.opts_len();
        let len = GeneveHdr::LEN + opts_len;
        // 6 bits of 4-byte words for all options, 5 bits for each body.
        let bad_opt = self
            .options
            .iter()
            .any(|o| !o.data.len().is_multiple_of(4) || o.data.len() > 124);
        if opts_len > 252 || bad_opt {
            return Err(EmitError {
                hdr: HeaderKind::GeneveOpt,
                need: opts_len,
                have: 252,
            });
        }
        let out = emit_space(buf, len, HeaderKind::Geneve)?;
        let h = GeneveHdr {
            ver_opt_len: (self.version << 6) | (opts_len / 4) as u8,
            flags: self.flags,
            protocol: U16::new(self.protocol),
            vni: self.vni.bytes(),
            reserved: self.reserved,
        };
        let (base, mut rest) = out.split_at_mut(GeneveHdr::LEN);
        base.copy_from_slice(h.as_bytes());
        for o in &self.options {
            let oh = GeneveOptHdr {
                class: U16::new(o.class),
                ty: o.ty,
                len: (o.data.len() / 4) as u8,
            };
            let (ohb, tail) = rest.split_at_mut(GeneveOptHdr::LEN);
            ohb.copy_from_slice(oh.as_bytes());
            let (body, tail) = tail.split_at_mut(o.data.len());
            body.copy_from_slice(&o.data);
            rest = tail;
        }
        Ok(len)
    }
}

/// Walks the options of a Geneve header: yields each option's header and body.
pub struct GeneveOpts<'a> {
    bytes: &'a [u8],
}

impl<'a> GeneveOpts<'a> {
    pub const fn new(opts: &'a [u8]) -> Self {
        Self { bytes: opts }
    }
}

/// An option whose declared length runs past the end of the option area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneveOptOverrun {
    pub class: u16,
    pub ty: u8,
    pub need: usize,
    pub have: usize,
}

impl<'a> Iterator for GeneveOpts<'a> {
    type Item = Result<(&'a GeneveOptHdr, &'a [u8]), GeneveOptOverrun>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        let have = self.bytes.len();
        let Ok((oh, rest)) = GeneveOptHdr::ref_from_prefix(self.bytes) else {
            self.bytes = &[];
            return Some(Err(GeneveOptOverrun {
                class: 0,
                ty: 0,
                need: GeneveOptHdr::LEN,
                have,
            }));
        };
        let body_len = oh.body_len();
        match (rest.get(..body_len), rest.get(body_len..)) {
            (Some(body), Some(next)) => {
                self.bytes = next;
                Some(Ok((oh, body)))
            }
            _ => {
                self.bytes = &[];
                Some(Err(GeneveOptOverrun {
                    class: oh.class.get(),
                    ty: oh.ty,
                    need: GeneveOptHdr::LEN + body_len,
                    have,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_no_opts() {
        let r = GeneveRepr::new(Vni::new(1287581).unwrap(), Vec::new());
        let mut buf = [0u8; 8];
        assert_eq!(r.emit(&mut buf), Ok(8));
        assert_eq!(buf, [0x00, 0x00, 0x65, 0x58, 0x13, 0xa5, 0x9d, 0x00]);
    }

    #[test]
    fn emit_single_opt_and_walk() {
        let r = GeneveRepr::new(
            Vni::new(99).unwrap(),
            alloc::vec![GeneveOpt::oxide_external()],
        );
        let mut buf = [0u8; 12];
        assert_eq!(r.emit(&mut buf), Ok(12));
        assert_eq!(
            buf,
            [
                0x01, 0x00, 0x65, 0x58, 0x00, 0x00, 0x63, 0x00, 0x01, 0x29, 0x00, 0x00
            ]
        );
        let (h, opts) = GeneveHdr::ref_from_prefix(&buf[..]).unwrap();
        assert_eq!(h.opts_len(), 4);
        let found: Vec<_> = GeneveOpts::new(opts).collect();
        assert_eq!(found.len(), 1);
        let (oh, body) = found[0].unwrap();
        assert_eq!((oh.class.get(), oh.ty, body.len()), (0x0129, 0, 0));
    }

    #[test]
    fn multi_opt_and_replication_values() {
        let r = GeneveRepr::new(
            Vni::new(77).unwrap(),
            alloc::vec![
                GeneveOpt::oxide_mss(1448),
                GeneveOpt::oxide_multicast(Replication::Both)
            ],
        );
        let mut buf = [0u8; 24];
        assert_eq!(r.emit(&mut buf), Ok(24));
        let (_, opts) = GeneveHdr::ref_from_prefix(&buf[..]).unwrap();
        let found: Vec<_> = GeneveOpts::new(opts).map(Result::unwrap).collect();
        assert_eq!(
            OxideOptType::from_type(found[0].0.ty),
            Some(OxideOptType::Mss)
        );
        assert_eq!(found[0].1, &1448u32.to_be_bytes());
        assert_eq!(
            Replication::from_bits(found[1].1[0] >> 6),
            Replication::Both
        );
        for b in 0..4 {
            assert_eq!(Replication::from_bits(b) as u8, b);
        }
    }

    #[test]
    fn critical_option_sets_c_flag_and_overrun_is_reported() {
        let crit = GeneveOpt {
            class: 0x0129,
            ty: 0x85,
            data: Vec::new(),
        };
        assert_eq!(
            GeneveRepr::new(Vni::new(1).unwrap(), alloc::vec![crit]).flags,
            0x40
        );
        let bad = [0x01, 0x29, 0x02, 0x02, 0, 0, 0, 0];
        let mut it = GeneveOpts::new(&bad);
        assert_eq!(
            it.next().unwrap().unwrap_err(),
            GeneveOptOverrun {
                class: 0x0129,
                ty: 2,
                need: 12,
                have: 8
            }
        );
        assert!(it.next().is_none());
    }

    #[test]
    fn oversized_options_are_refused() {
        let big = GeneveOpt {
            class: 1,
            ty: 1,
            data: alloc::vec![0; 128],
        };
        assert!(
            GeneveRepr::new(Vni::new(1).unwrap(), alloc::vec![big])
                .emit(&mut [0; 256])
                .is_err()
        );
    }
}
