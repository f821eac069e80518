//! The flow key: what identifies a flow in every flow table, its mirror image for the
//! reverse direction, its stable hash, and its text form.
//!
//! Not for extracting the key from a packet: the engine's parser does that.

use crate::ip::{IpAddr, Ipv4Addr, Ipv6Addr, Protocol};
use core::fmt;
use serde::{Deserialize, Serialize};

/// The address-family number tagging IPv4 pairs: illumos `AF_INET`.
pub const AF_INET: u16 = 2;
/// The address-family number tagging IPv6 pairs: illumos `AF_INET6` (what the probes on
/// the reference platform read; Linux's value would be 10).
pub const AF_INET6: u16 = 26;

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// The source and destination addresses of a flow, one family at a time.
///
/// `repr(C, u16)` with the address family as discriminant, so a probe script can read the
/// key from memory: tag at offset 0, addresses from offset 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(C, u16)]
pub enum AddrPair {
    /// IPv4 source and destination.
    V4 {
        /// Source address.
        src: Ipv4Addr,
        /// Destination address.
        dst: Ipv4Addr,
    } = AF_INET,
    /// IPv6 source and destination.
    V6 {
        /// Source address.
        src: Ipv6Addr,
        /// Destination address.
        dst: Ipv6Addr,
    } = AF_INET6,
}

impl AddrPair {
    /// The source address.
    pub const fn src(&self) -> IpAddr {
        match *self {
            Self::V4 { src, .. } => IpAddr::Ip4(src),
            Self::V6 { src, .. } => IpAddr::Ip6(src),
        }
    }

    /// The destination address.
    pub const fn dst(&self) -> IpAddr {
        match *self {
            Self::V4 { dst, .. } => IpAddr::Ip4(dst),
            Self::V6 { dst, .. } => IpAddr::Ip6(dst),
        }
    }

    /// The address family tag, [`AF_INET`] or [`AF_INET6`].
    pub const fn af(&self) -> u16 {
        match self {
            Self::V4 { .. } => AF_INET,
            Self::V6 { .. } => AF_INET6,
        }
    }

    /// The pair with source and destination swapped.
    pub const fn mirror(self) -> Self {
        match self {
            Self::V4 { src, dst } => Self::V4 { src: dst, dst: src },
            Self::V6 { src, dst } => Self::V6 { src: dst, dst: src },
        }
    }
}

/// The key of a flow: protocol, addresses, and either the L4 ports (TCP/UDP) or the ICMP
/// type, code and echo identifier packed into `proto_info`.
///
/// `repr(C, align(4))`, 40 bytes, so probe scripts can read it: `proto` at 0, `addrs` at 2
/// (its family tag at 2, addresses from 4), `proto_info` at 36. The derived order (protocol,
/// then IPv4 before IPv6 addresses, then `proto_info`) is the order flow-table dumps use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(C, align(4))]
pub struct InnerFlowId {
    /// The IP protocol number.
    pub proto: u8,
    /// Source and destination addresses.
    pub addrs: AddrPair,
    /// `[src_port, dst_port]` for port-bearing protocols; for ICMP and ICMPv6,
    /// `[type << 8 | code, echo id]` (the id is 0 for non-echo messages).
    pub proto_info: [u16; 2],
}

/// The key given to packets that carry no IP flow (ARP): protocol 255, zero addresses.
/// Such packets never create flow-table entries.
pub const FLOW_ID_DEFAULT: InnerFlowId = InnerFlowId {
    proto: 255,
    addrs: AddrPair::V4 {
        src: Ipv4Addr::ANY_ADDR,
        dst: Ipv4Addr::ANY_ADDR,
    },
    proto_info: [0, 0],
};

/// Feeds the hasher a few whole words rather than a field at a time: flow tables hash a key
/// on every packet, and a hasher's cost is per call. Equal keys write equal words, as `Eq`
/// requires.
impl core::hash::Hash for InnerFlowId {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        let head = u64::from(self.proto)
            | u64::from(self.addrs.af()) << 8
            | u64::from(self.proto_info[0]) << 32
            | u64::from(self.proto_info[1]) << 48;
        state.write_u64(head);
        match self.addrs {
            AddrPair::V4 { src, dst } => {
                state.write_u64(
                    u64::from(u32::from_be_bytes(src.bytes())) << 32
                        | u64::from(u32::from_be_bytes(dst.bytes())),
                );
            }
            AddrPair::V6 { src, dst } => {
                state.write_u128(u128::from_be_bytes(src.bytes()));
                state.write_u128(u128::from_be_bytes(dst.bytes()));
            }
        }
    }
}

impl InnerFlowId {
    /// The length of [`InnerFlowId::key_bytes`].
    pub const KEY_LEN: usize = 40;

    /// A TCP/UDP-style key from ports.
    pub const fn with_ports(proto: u8, addrs: AddrPair, src_port: u16, dst_port: u16) -> Self {
        Self {
            proto,
            addrs,
            proto_info: [src_port, dst_port],
        }
    }

    /// An ICMP/ICMPv6-style key: type and code packed in the first word, echo id in the second.
    pub const fn with_icmp(proto: u8, addrs: AddrPair, ty: u8, code: u8, id: u16) -> Self {
        Self {
            proto,
            addrs,
            proto_info: [u16::from_be_bytes([ty, code]), id],
        }
    }

    /// The protocol as a [`Protocol`].
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.proto)
    }

    /// True for ICMP and ICMPv6 keys, whose `proto_info` holds type, code and id.
    pub const fn is_icmp(&self) -> bool {
        self.proto == 1 || self.proto == 58
    }

    /// Source port (TCP/UDP); meaningless for ICMP.
    pub const fn src_port(&self) -> u16 {
        self.proto_info[0]
    }

    /// Destination port (TCP/UDP); meaningless for ICMP.
    pub const fn dst_port(&self) -> u16 {
        self.proto_info[1]
    }

    /// ICMP type; meaningless for other protocols.
    pub const fn icmp_type(&self) -> u8 {
        self.proto_info[0].to_be_bytes()[0]
    }

    /// ICMP code; meaningless for other protocols.
    pub const fn icmp_code(&self) -> u8 {
        self.proto_info[0].to_be_bytes()[1]
    }

    /// ICMP echo identifier (0 for non-echo messages); meaningless for other protocols.
    pub const fn icmp_id(&self) -> u16 {
        self.proto_info[1]
    }

    /// The source address.
    pub const fn src_ip(&self) -> IpAddr {
        self.addrs.src()
    }

    /// The destination address.
    pub const fn dst_ip(&self) -> IpAddr {
        self.addrs.dst()
    }

    /// The source address, if this is an IPv6 key.
    pub const fn src_ip6(&self) -> Option<Ipv6Addr> {
        match self.addrs {
            AddrPair::V6 { src, .. } => Some(src),
            AddrPair::V4 { .. } => None,
        }
    }

    /// The key of the reverse direction of this flow: addresses and ports swapped. For
    /// ICMP/ICMPv6 the id stays, and an echo request becomes an echo reply (and back)
    /// when its code is 0; other messages keep their type.
    pub const fn mirror(&self) -> Self {
        let proto_info = if self.is_icmp() {
            let code = self.icmp_code();
            let ty = match (self.proto, self.icmp_type(), code) {
                (1, ICMP_ECHO_REQUEST, 0) => ICMP_ECHO_REPLY,
                (1, ICMP_ECHO_REPLY, 0) => ICMP_ECHO_REQUEST,
                (58, ICMPV6_ECHO_REQUEST, 0) => ICMPV6_ECHO_REPLY,
                (58, ICMPV6_ECHO_REPLY, 0) => ICMPV6_ECHO_REQUEST,
                (_, ty, _) => ty,
            };
            [u16::from_be_bytes([ty, code]), self.icmp_id()]
        } else {
            [self.proto_info[1], self.proto_info[0]]
        };
        Self {
            proto: self.proto,
            addrs: self.addrs.mirror(),
            proto_info,
        }
    }

    /// A fixed, platform-independent byte form of the key, the input of [`Self::crc32`]:
    /// `proto`, a zero byte, the family tag (big-endian), source then destination address
    /// (IPv4 pairs zero-padded to 32 bytes), then `proto_info` (big-endian).
    pub fn key_bytes(&self) -> [u8; Self::KEY_LEN] {
        let mut out = [0u8; Self::KEY_LEN];
        let mut slots = out.iter_mut();
        let mut put = |bytes: &[u8]| {
            // `bytes` first: `zip` pulls from its left side before finding the right one
            // exhausted, which would skip a slot.
            for (byte, slot) in bytes.iter().zip(slots.by_ref()) {
                *slot = *byte;
            }
        };
        put(&[self.proto, 0]);
        put(&self.addrs.af().to_be_bytes());
        match self.addrs {
            AddrPair::V4 { src, dst } => {
                put(&src.bytes());
                put(&dst.bytes());
                put(&[0; 24]);
            }
            AddrPair::V6 { src, dst } => {
                put(&src.bytes());
                put(&dst.bytes());
            }
        }
        put(&self.proto_info[0].to_be_bytes());
        put(&self.proto_info[1].to_be_bytes());
        out
    }

    /// A stable 32-bit hash of the key: CRC-32 of [`Self::key_bytes`]. The same key hashes
    /// the same on every build and host, so it can pick ECMP paths, Geneve source ports and
    /// NAT addresses.
    pub fn crc32(&self) -> u32 {
        crc32fast::hash(&self.key_bytes())
    }
}

impl Default for InnerFlowId {
    fn default() -> Self {
        FLOW_ID_DEFAULT
    }
}

impl fmt::Display for InnerFlowId {
    /// `PROTO:src:sport:dst:dport` for TCP and UDP, `PROTO/type/code:src:dst:id` for ICMP
    /// and ICMPv6, `PROTO:src:dst` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (proto, src, dst) = (self.protocol(), self.src_ip(), self.dst_ip());
        match proto {
            Protocol::TCP | Protocol::UDP => {
                write!(
                    f,
                    "{proto}:{src}:{}:{dst}:{}",
                    self.src_port(),
                    self.dst_port()
                )
            }
            Protocol::ICMP | Protocol::ICMPv6 => write!(
                f,
                "{proto}/{}/{}:{src}:{dst}:{}",
                self.icmp_type(),
                self.icmp_code(),
                self.icmp_id()
            ),
            _ => write!(f, "{proto}:{src}:{dst}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use core::mem::{align_of, offset_of, size_of};

    fn v4_pair(src: [u8; 4], dst: [u8; 4]) -> AddrPair {
        AddrPair::V4 {
            src: src.into(),
            dst: dst.into(),
        }
    }

    fn v6_pair(src: &str, dst: &str) -> AddrPair {
        AddrPair::V6 {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
        }
    }

    #[test]
    fn layout_is_the_one_probes_read() {
        assert_eq!(size_of::<InnerFlowId>(), 40);
        assert_eq!(align_of::<InnerFlowId>(), 4);
        assert_eq!(offset_of!(InnerFlowId, proto), 0);
        assert_eq!(offset_of!(InnerFlowId, addrs), 2);
        assert_eq!(offset_of!(InnerFlowId, proto_info), 36);
        assert_eq!(size_of::<AddrPair>(), 34);
    }

    #[test]
    fn mirror_swaps_addresses_and_ports() {
        let flow = InnerFlowId::with_ports(6, v4_pair([10, 0, 0, 1], [10, 0, 0, 2]), 1234, 80);
        let back = flow.mirror();
        assert_eq!(back.src_ip(), IpAddr::Ip4([10, 0, 0, 2].into()));
        assert_eq!(back.dst_ip(), IpAddr::Ip4([10, 0, 0, 1].into()));
        assert_eq!((back.src_port(), back.dst_port()), (80, 1234));
        assert_eq!(back.mirror(), flow);
    }

    #[test]
    fn mirror_turns_echo_requests_into_replies() {
        let pair = v4_pair([10, 0, 0, 1], [10, 0, 0, 2]);
        let req = InnerFlowId::with_icmp(1, pair, 8, 0, 7);
        let rep = req.mirror();
        assert_eq!((rep.icmp_type(), rep.icmp_code(), rep.icmp_id()), (0, 0, 7));
        assert_eq!(rep.addrs, pair.mirror());
        assert_eq!(rep.mirror(), req);

        let pair6 = v6_pair("fd00::1", "fd00::2");
        let req6 = InnerFlowId::with_icmp(58, pair6, 128, 0, 9);
        let rep6 = req6.mirror();
        assert_eq!(
            (rep6.icmp_type(), rep6.icmp_code(), rep6.icmp_id()),
            (129, 0, 9)
        );
        assert_eq!(rep6.mirror(), req6);

        // A non-zero code is not an echo; other types keep their type.
        let odd = InnerFlowId::with_icmp(1, pair, 8, 1, 7).mirror();
        assert_eq!((odd.icmp_type(), odd.icmp_code()), (8, 1));
        let unreachable = InnerFlowId::with_icmp(1, pair, 3, 3, 0).mirror();
        assert_eq!((unreachable.icmp_type(), unreachable.icmp_code()), (3, 3));
        // ICMPv4 numbers mean nothing to ICMPv6.
        let v6_type8 = InnerFlowId::with_icmp(58, pair6, 8, 0, 1).mirror();
        assert_eq!(v6_type8.icmp_type(), 8);
    }

    #[test]
    fn key_bytes_are_fixed() {
        let flow = InnerFlowId::with_ports(17, v4_pair([10, 0, 0, 1], [10, 0, 0, 2]), 53, 0x1234);
        let mut want = [0u8; 40];
        want[..12].copy_from_slice(&[17, 0, 0, 2, 10, 0, 0, 1, 10, 0, 0, 2]);
        want[36..].copy_from_slice(&[0, 53, 0x12, 0x34]);
        assert_eq!(flow.key_bytes(), want);

        let flow6 = InnerFlowId::with_ports(6, v6_pair("fd00::1", "fd00::2"), 1, 2);
        let bytes = flow6.key_bytes();
        assert_eq!(bytes[..4], [6, 0, 0, 26]);
        assert_eq!(bytes[4..6], [0xfd, 0x00]);
        assert_eq!(bytes[19], 1);
        assert_eq!(bytes[20..22], [0xfd, 0x00]);
        assert_eq!(bytes[35], 2);
        assert_eq!(bytes[36..], [0, 1, 0, 2]);
    }

    #[test]
    fn crc32_is_stable_and_direction_sensitive() {
        let flow = InnerFlowId::with_ports(6, v4_pair([10, 0, 0, 1], [10, 0, 0, 2]), 1234, 80);
        // Pinned (checked against zlib): it must not change between builds, or ECMP paths and NAT
        // choices move under established flows.
        assert_eq!(flow.crc32(), 0xa61c_569c);
        assert_ne!(flow.crc32(), flow.mirror().crc32());
        assert_eq!(FLOW_ID_DEFAULT.crc32(), FLOW_ID_DEFAULT.crc32());
    }

    #[test]
    fn display_forms() {
        let tcp = InnerFlowId::with_ports(6, v4_pair([10, 0, 0, 1], [10, 0, 0, 2]), 1234, 80);
        assert_eq!(tcp.to_string(), "TCP:10.0.0.1:1234:10.0.0.2:80");
        let udp = InnerFlowId::with_ports(17, v6_pair("fd00::1", "fd00::2"), 546, 547);
        assert_eq!(udp.to_string(), "UDP:fd00::1:546:fd00::2:547");
        let icmp = InnerFlowId::with_icmp(1, v4_pair([10, 0, 0, 1], [10, 0, 0, 2]), 8, 0, 7);
        assert_eq!(icmp.to_string(), "ICMP/8/0:10.0.0.1:10.0.0.2:7");
        let icmp6 = InnerFlowId::with_icmp(58, v6_pair("fe80::1", "ff02::2"), 133, 0, 0);
        assert_eq!(icmp6.to_string(), "ICMPv6/133/0:fe80::1:ff02::2:0");
        assert_eq!(FLOW_ID_DEFAULT.to_string(), "255:0.0.0.0:0.0.0.0");
    }

    #[test]
    fn order_is_proto_then_v4_before_v6() {
        let a = InnerFlowId::with_ports(6, v6_pair("::1", "::2"), 1, 1);
        let b = InnerFlowId::with_ports(6, v4_pair([9, 9, 9, 9], [9, 9, 9, 9]), 1, 1);
        let c = InnerFlowId::with_ports(17, v4_pair([0; 4], [0; 4]), 0, 0);
        let mut flows = [c, a, b];
        flows.sort();
        assert_eq!(flows, [b, a, c]);
    }

    #[test]
    fn accessors_and_postcard_round_trip() {
        let flow = InnerFlowId::with_ports(6, v6_pair("fd00::1", "fd00::2"), 1, 2);
        assert_eq!(flow.protocol(), Protocol::TCP);
        assert_eq!(flow.src_ip6(), Some("fd00::1".parse().unwrap()));
        assert_eq!(FLOW_ID_DEFAULT.src_ip6(), None);
        assert_eq!(InnerFlowId::default(), FLOW_ID_DEFAULT);
        let bytes = postcard::to_allocvec(&flow).unwrap();
        assert_eq!(postcard::from_bytes::<InnerFlowId>(&bytes), Ok(flow));
    }
}
