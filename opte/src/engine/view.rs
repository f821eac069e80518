//! The engine's picture of a packet while it walks the layers.
//!
//! [`Parsed`] is what a parse produced (guest-side or network-side shape). [`PacketView`] is a
//! small owned summary of the inner headers' current values: predicates read it, and each
//! layer's header transform updates it, so a later layer sees what an earlier one rewrote.
//! The packet's bytes are rewritten once, at the end (see [`super::transform`]).

use crate::packet::parse::{self, InnerMeta, L3Info, NetworkMeta, UlpKind};
use crate::packet::{Packet, ParseError};
use crate::wire::proto;
use crate::wire::tcp::TcpHdr;
use opte_api::{AddrPair, InnerFlowId, IpAddr, MacAddr, Vni};

/// A parse result of either shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    Guest(InnerMeta),
    Network(NetworkMeta),
}

impl Parsed {
    /// Parse a frame from a guest into the shape the engine processes.
    #[inline]
    pub fn from_guest(pkt: &mut Packet) -> Result<Self, ParseError> {
        parse::parse_guest_into(pkt, Self::Guest)
    }

    /// Parse a frame from the underlay into the shape the engine processes.
    #[inline]
    pub fn from_network(pkt: &mut Packet) -> Result<Self, ParseError> {
        parse::parse_network_into(pkt, Self::Network)
    }

    pub const fn inner(&self) -> &InnerMeta {
        match self {
            Self::Guest(m) => m,
            Self::Network(n) => &n.inner,
        }
    }

    pub const fn network(&self) -> Option<&NetworkMeta> {
        match self {
            Self::Guest(_) => None,
            Self::Network(n) => Some(n),
        }
    }

    pub const fn flow(&self) -> InnerFlowId {
        self.inner().flow
    }

    /// The same parse with another flow key: a later IP fragment processed as the flow its
    /// first fragment belonged to (see [`super::frag`]).
    pub const fn with_flow(mut self, flow: InnerFlowId) -> Self {
        match &mut self {
            Self::Guest(m) => m.flow = flow,
            Self::Network(n) => n.inner.flow = flow,
        }
        self
    }
}

/// The current values of the upper-layer header fields predicates and transforms touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UlpView {
    pub kind: UlpKind,
    pub src_port: u16,
    pub dst_port: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// Echo identifier (ICMP echo request/reply only; 0 otherwise).
    pub icmp_id: u16,
    pub tcp_flags: u8,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
}

/// The inner headers as the layers see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketView {
    pub eth_src: MacAddr,
    pub eth_dst: MacAddr,
    pub ether_type: u16,
    /// Protocol and addresses, for IP packets.
    pub ip: Option<(u8, AddrPair)>,
    pub ulp: Option<UlpView>,
    /// The Geneve VNI, for a packet that arrived encapsulated.
    pub vni: Option<Vni>,
    /// The encapsulation carried the Oxide External option: the packet came from outside
    /// the rack (boundary services), not from another guest.
    pub external: bool,
    /// Length of the whole packet as received, for byte counters.
    pub pkt_len: usize,
}

impl PacketView {
    pub fn new(pkt: &Packet, parsed: &Parsed) -> Self {
        let m = parsed.inner();
        let flow = m.flow;
        let ip = m.l3.map(|_| (flow.proto, flow.addrs));
        // A later fragment has no L4 header; its flow key (its first fragment's) says what
        // the datagram's is.
        let kind = m.ulp.map(|u| u.kind).or_else(|| later_fragment_ulp(m));
        let ulp = kind.map(|kind| {
            let mut v = UlpView {
                kind,
                src_port: 0,
                dst_port: 0,
                icmp_type: 0,
                icmp_code: 0,
                icmp_id: 0,
                tcp_flags: 0,
                tcp_seq: 0,
                tcp_ack: 0,
            };
            match kind {
                UlpKind::Tcp => {
                    v.src_port = flow.src_port();
                    v.dst_port = flow.dst_port();
                    if let Some(t) = m.ulp.and_then(|u| pkt.view::<TcpHdr>(u.loc)) {
                        v.tcp_flags = t.flags;
                        v.tcp_seq = t.seq.get();
                        v.tcp_ack = t.ack.get();
                    }
                }
                UlpKind::Udp => {
                    v.src_port = flow.src_port();
                    v.dst_port = flow.dst_port();
                }
                UlpKind::Icmpv4 | UlpKind::Icmpv6 => {
                    v.icmp_type = flow.icmp_type();
                    v.icmp_code = flow.icmp_code();
                    v.icmp_id = flow.icmp_id();
                }
            }
            v
        });
        Self {
            eth_src: m.eth.src,
            eth_dst: m.eth.dst,
            ether_type: m.eth.ether_type,
            ip,
            ulp,
            vni: parsed.network().map(|n| n.outer.geneve.vni),
            external: parsed.network().is_some_and(|n| n.outer.geneve.external),
            pkt_len: pkt.len(),
        }
    }

    /// The flow key these values describe.
    pub fn flow(&self) -> InnerFlowId {
        let Some((proto, addrs)) = self.ip else {
            return opte_api::FLOW_ID_DEFAULT;
        };
        match self.ulp {
            Some(u) if matches!(u.kind, UlpKind::Icmpv4 | UlpKind::Icmpv6) => {
                InnerFlowId::with_icmp(proto, addrs, u.icmp_type, u.icmp_code, u.icmp_id)
            }
            Some(u) => InnerFlowId::with_ports(proto, addrs, u.src_port, u.dst_port),
            None => InnerFlowId::with_ports(proto, addrs, 0, 0),
        }
    }

    pub fn src_ip(&self) -> Option<IpAddr> {
        self.ip.map(|(_, a)| a.src())
    }

    pub fn dst_ip(&self) -> Option<IpAddr> {
        self.ip.map(|(_, a)| a.dst())
    }

    pub fn is_tcp(&self) -> bool {
        matches!(
            self.ulp,
            Some(UlpView {
                kind: UlpKind::Tcp,
                ..
            })
        )
    }
}

/// The upper-layer protocol of a later fragment's datagram, by its flow key's protocol.
fn later_fragment_ulp(m: &InnerMeta) -> Option<UlpKind> {
    if m.frag.is_none_or(|f| f.is_first()) {
        return None;
    }
    match (m.flow.proto, m.l3?) {
        (proto::TCP, _) => Some(UlpKind::Tcp),
        (proto::UDP, _) => Some(UlpKind::Udp),
        (proto::ICMP, L3Info::Ipv4(_)) => Some(UlpKind::Icmpv4),
        (proto::ICMPV6, L3Info::Ipv6(_)) => Some(UlpKind::Icmpv6),
        _ => None,
    }
}

/// True if the inner frame is IPv4 (a helper for code that only has the parse).
pub fn is_ipv4(m: &InnerMeta) -> bool {
    matches!(m.l3, Some(L3Info::Ipv4(_)))
}
