//! Rule predicates: tests on the header view ([`Predicate`]) and on the payload
//! ([`DataPredicate`]). Every variant carries a list of matches that are OR-ed.

use super::action::ActionMeta;
use super::view::PacketView;
use crate::packet::Packet;
use crate::packet::parse::{InnerMeta, UlpKind};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::RangeInclusive;
use opte_api::{AddrPair, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr, MacAddr, Protocol};

/// An exact value or an inclusive range.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Match<T> {
    Exact(T),
    Range(RangeInclusive<T>),
}

impl<T: PartialOrd + Copy> Match<T> {
    /// A range whose ends are equal is an exact match.
    pub fn range(r: RangeInclusive<T>) -> Self {
        if r.start() == r.end() {
            Self::Exact(*r.start())
        } else {
            Self::Range(r)
        }
    }

    pub fn matches(&self, v: T) -> bool {
        match self {
            Self::Exact(e) => *e == v,
            Self::Range(r) => r.contains(&v),
        }
    }
}

impl<T: fmt::Display> fmt::Display for Match<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(v) => write!(f, "={v}"),
            Self::Range(r) => write!(f, "∈({}..={})", r.start(), r.end()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EtherAddrMatch {
    Exact(MacAddr),
    /// The I/G bit is set: multicast, broadcast included.
    Multicast,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ipv4AddrMatch {
    Exact(Ipv4Addr),
    Prefix(Ipv4Cidr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ipv6AddrMatch {
    Exact(Ipv6Addr),
    Prefix(Ipv6Cidr),
}

impl Ipv4AddrMatch {
    fn matches(&self, a: Ipv4Addr) -> bool {
        match self {
            Self::Exact(e) => *e == a,
            Self::Prefix(c) => c.is_member(a),
        }
    }
}

impl Ipv6AddrMatch {
    fn matches(&self, a: Ipv6Addr) -> bool {
        match self {
            Self::Exact(e) => *e == a,
            Self::Prefix(c) => c.is_member(a),
        }
    }
}

/// A test on the inner headers (and the action metadata).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Predicate {
    InnerEtherType(Vec<u16>),
    InnerEtherDst(Vec<EtherAddrMatch>),
    InnerEtherSrc(Vec<EtherAddrMatch>),
    InnerSrcIp4(Vec<Ipv4AddrMatch>),
    InnerDstIp4(Vec<Ipv4AddrMatch>),
    InnerSrcIp6(Vec<Ipv6AddrMatch>),
    InnerDstIp6(Vec<Ipv6AddrMatch>),
    InnerIpProto(Vec<Protocol>),
    InnerSrcPort(Vec<Match<u16>>),
    InnerDstPort(Vec<Match<u16>>),
    IcmpMsgType(Vec<Match<u8>>),
    IcmpMsgCode(Vec<Match<u8>>),
    Icmpv6MsgType(Vec<Match<u8>>),
    Icmpv6MsgCode(Vec<Match<u8>>),
    Not(Box<Predicate>),
    Any(Vec<Predicate>),
    All(Vec<Predicate>),
    /// Action metadata key equals value (false if absent).
    Meta(String, String),
}

impl Predicate {
    /// Inlined into the rule scan: most predicates are a compare or two, cheaper than a
    /// call. The nesting ones go through [`Self::is_match_nested`].
    #[inline]
    pub fn is_match(&self, v: &PacketView, meta: &ActionMeta) -> bool {
        let ports = || {
            v.ulp
                .as_ref()
                .filter(|u| matches!(u.kind, UlpKind::Tcp | UlpKind::Udp))
        };
        let icmp = |k: UlpKind| v.ulp.as_ref().filter(|u| u.kind == k);
        match self {
            Self::InnerEtherType(l) => l.contains(&v.ether_type),
            Self::InnerEtherDst(l) => l.iter().any(|m| mac_match(m, v.eth_dst)),
            Self::InnerEtherSrc(l) => l.iter().any(|m| mac_match(m, v.eth_src)),
            Self::InnerSrcIp4(l) => match v.ip {
                Some((_, AddrPair::V4 { src, .. })) => l.iter().any(|m| m.matches(src)),
                _ => false,
            },
            Self::InnerDstIp4(l) => match v.ip {
                Some((_, AddrPair::V4 { dst, .. })) => l.iter().any(|m| m.matches(dst)),
                _ => false,
            },
            Self::InnerSrcIp6(l) => match v.ip {
                Some((_, AddrPair::V6 { src, .. })) => l.iter().any(|m| m.matches(src)),
                _ => false,
            },
            Self::InnerDstIp6(l) => match v.ip {
                Some((_, AddrPair::V6 { dst, .. })) => l.iter().any(|m| m.matches(dst)),
                _ => false,
            },
            Self::InnerIpProto(l) => v.ip.is_some_and(|(p, _)| l.contains(&Protocol::from(p))),
            Self::InnerSrcPort(l) => {
                ports().is_some_and(|u| l.iter().any(|m| m.matches(u.src_port)))
            }
            Self::InnerDstPort(l) => {
                ports().is_some_and(|u| l.iter().any(|m| m.matches(u.dst_port)))
            }
            Self::IcmpMsgType(l) => {
                icmp(UlpKind::Icmpv4).is_some_and(|u| l.iter().any(|m| m.matches(u.icmp_type)))
            }
            Self::IcmpMsgCode(l) => {
                icmp(UlpKind::Icmpv4).is_some_and(|u| l.iter().any(|m| m.matches(u.icmp_code)))
            }
            Self::Icmpv6MsgType(l) => {
                icmp(UlpKind::Icmpv6).is_some_and(|u| l.iter().any(|m| m.matches(u.icmp_type)))
            }
            Self::Icmpv6MsgCode(l) => {
                icmp(UlpKind::Icmpv6).is_some_and(|u| l.iter().any(|m| m.matches(u.icmp_code)))
            }
            Self::Not(_) | Self::Any(_) | Self::All(_) => self.is_match_nested(v, meta),
            Self::Meta(k, val) => meta.get(k) == Some(val.as_str()),
        }
    }

    #[inline(never)]
    fn is_match_nested(&self, v: &PacketView, meta: &ActionMeta) -> bool {
        match self {
            Self::Not(p) => !p.is_match(v, meta),
            Self::Any(l) => l.iter().any(|p| p.is_match(v, meta)),
            Self::All(l) => l.iter().all(|p| p.is_match(v, meta)),
            p => p.is_match(v, meta),
        }
    }
}

fn mac_match(m: &EtherAddrMatch, a: MacAddr) -> bool {
    match m {
        EtherAddrMatch::Exact(e) => *e == a,
        EtherAddrMatch::Multicast => a.is_group(),
    }
}

fn ether_type_name(t: u16) -> Option<&'static str> {
    match t {
        0x0806 => Some("ARP"),
        0x6558 => Some("ETHER"),
        0x0800 => Some("IPv4"),
        0x86dd => Some("IPv6"),
        _ => None,
    }
}

fn list<T>(
    f: &mut fmt::Formatter<'_>,
    l: &[T],
    each: impl Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (i, x) in l.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        each(f, x)?;
    }
    Ok(())
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mac = |f: &mut fmt::Formatter<'_>, m: &EtherAddrMatch| match m {
            EtherAddrMatch::Exact(a) => write!(f, "{a}"),
            EtherAddrMatch::Multicast => f.write_str("multicast"),
        };
        let v4 = |f: &mut fmt::Formatter<'_>, m: &Ipv4AddrMatch| match m {
            Ipv4AddrMatch::Exact(a) => write!(f, "{a}"),
            Ipv4AddrMatch::Prefix(c) => write!(f, "{c}"),
        };
        let v6 = |f: &mut fmt::Formatter<'_>, m: &Ipv6AddrMatch| match m {
            Ipv6AddrMatch::Exact(a) => write!(f, "{a}"),
            Ipv6AddrMatch::Prefix(c) => write!(f, "{c}"),
        };
        let port = |f: &mut fmt::Formatter<'_>, m: &Match<u16>| match m {
            Match::Exact(p) => write!(f, "{p}"),
            Match::Range(r) => write!(f, "{}..={}", r.start(), r.end()),
        };
        let num = |f: &mut fmt::Formatter<'_>, m: &Match<u8>| match m {
            Match::Exact(p) => write!(f, "{p}"),
            Match::Range(r) => write!(f, "{}..={}", r.start(), r.end()),
        };
        match self {
            Self::InnerEtherType(l) => {
                f.write_str("inner.ether.ether_type=")?;
                list(f, l, |f, t| match ether_type_name(*t) {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{t:#06x}"),
                })
            }
            Self::InnerEtherDst(l) => {
                f.write_str("inner.ether.dst=")?;
                list(f, l, mac)
            }
            Self::InnerEtherSrc(l) => {
                f.write_str("inner.ether.src=")?;
                list(f, l, mac)
            }
            Self::InnerSrcIp4(l) => {
                f.write_str("inner.ip.src=")?;
                list(f, l, v4)
            }
            Self::InnerDstIp4(l) => {
                f.write_str("inner.ip.dst=")?;
                list(f, l, v4)
            }
            Self::InnerSrcIp6(l) => {
                f.write_str("inner.ip6.src=")?;
                list(f, l, v6)
            }
            Self::InnerDstIp6(l) => {
                f.write_str("inner.ip6.dst=")?;
                list(f, l, v6)
            }
            Self::InnerIpProto(l) => {
                f.write_str("inner.ip.proto=")?;
                list(f, l, |f, p| write!(f, "{p}"))
            }
            Self::InnerSrcPort(l) => {
                f.write_str("inner.ulp.src=")?;
                list(f, l, port)
            }
            Self::InnerDstPort(l) => {
                f.write_str("inner.ulp.dst=")?;
                list(f, l, port)
            }
            Self::IcmpMsgType(l) => {
                f.write_str("inner.icmp.type=")?;
                list(f, l, num)
            }
            Self::IcmpMsgCode(l) => {
                f.write_str("inner.icmp.code=")?;
                list(f, l, num)
            }
            Self::Icmpv6MsgType(l) => {
                f.write_str("inner.icmp6.type=")?;
                list(f, l, num)
            }
            Self::Icmpv6MsgCode(l) => {
                f.write_str("inner.icmp6.code=")?;
                list(f, l, num)
            }
            Self::Not(p) => write!(f, "!{p}"),
            Self::Any(l) => {
                f.write_str("any(")?;
                list(f, l, |f, p| write!(f, "{p}"))?;
                f.write_str(")")
            }
            Self::All(l) => {
                f.write_str("all(")?;
                list(f, l, |f, p| write!(f, "{p}"))?;
                f.write_str(")")
            }
            Self::Meta(k, v) => write!(f, "meta: {k}={v}"),
        }
    }
}

/// A test on the payload after the L4 header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DataPredicate {
    /// The DHCPv4 message type (option 53); false if the body is not a DHCP message.
    DhcpMsgType(Match<u8>),
    /// The DHCPv6 message type (first body byte).
    Dhcpv6MsgType(Match<u8>),
    Not(Box<DataPredicate>),
}

impl DataPredicate {
    pub fn is_match(&self, pkt: &Packet, m: &InnerMeta) -> bool {
        let body = pkt.bytes_at(m.body, m.body_len as usize);
        match self {
            Self::DhcpMsgType(want) => body
                .and_then(super::hairpin::dhcp4_message_type)
                .is_some_and(|t| want.matches(t)),
            Self::Dhcpv6MsgType(want) => body
                .and_then(super::hairpin::dhcp6_message_type)
                .is_some_and(|t| want.matches(t)),
            Self::Not(p) => !p.is_match(pkt, m),
        }
    }
}

impl fmt::Display for DataPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DhcpMsgType(m) => write!(f, "dhcp.msg_type{m}"),
            Self::Dhcpv6MsgType(m) => write!(f, "dhcpv6.msg_type{m}"),
            Self::Not(p) => write!(f, "!{p}"),
        }
    }
}
