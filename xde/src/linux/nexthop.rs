//! Next hops on the underlay, from the kernel's own tables over rtnetlink: the route to a
//! destination (asked once per underlay link, so that a destination reachable by both is
//! shared between them by flow hash, ECMP-style, one flow always on one link), then the
//! gateway's (or the on-link destination's) link-layer address from the neighbour table.
//! A neighbour the kernel does not know yet is resolved by the kernel: a datagram sent to
//! it by way of that link makes the kernel start neighbour discovery, and the lookup says
//! "unresolved" meanwhile (the core's route cache asks again soon after). Frames are never
//! sent to a guessed or zero MAC.
//!
//! The core's route cache stands in front of this (SPEC §7.6), so these requests happen
//! per destination and flow hash every 100 ms at most, never per packet.

// A no_std crate: the daemon brings std's prelude in itself.
use std::prelude::rust_2024::*;

use super::underlay::UnderlayLink;
use crate::Link;
use crate::route::{Route, RouteError};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use opte_api::{Ipv6Addr, MacAddr};
use std::io;
use std::sync::Mutex;
use std::time::Duration;

/// How long one rtnetlink request may take.
const TIMEOUT: Duration = Duration::from_millis(500);

/// A connection to the kernel's routing tables.
#[derive(Debug)]
pub struct Rtnl {
    inner: Mutex<(Socket, u32)>,
}

impl Rtnl {
    pub fn open() -> io::Result<Self> {
        let mut s = Socket::new(NETLINK_ROUTE)?;
        s.bind_auto()?;
        s.connect(&SocketAddr::new(0, 0))?;
        let tv = nix::sys::time::TimeVal::new(0, TIMEOUT.as_micros() as i64);
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::ReceiveTimeout, &tv)?;
        Ok(Self {
            inner: Mutex::new((s, 0)),
        })
    }

    /// A connection to the routing tables of the network namespace at `netns` (a file
    /// such as `/var/run/netns/NAME` or `/proc/PID/ns/net`). A netlink socket belongs to
    /// the namespace it was made in, so a short-lived thread enters the namespace and makes
    /// it there; the calling thread stays where it is.
    pub fn open_in(netns: &std::path::Path) -> io::Result<Self> {
        let ns = std::fs::File::open(netns)?;
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
                Self::open()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the netlink thread failed")))
        })
    }

    /// One request, its one answer (a route or neighbour message), or the kernel's error.
    pub fn ask(&self, msg: RouteNetlinkMessage) -> io::Result<RouteNetlinkMessage> {
        match self.exchange(msg, NLM_F_REQUEST)? {
            NetlinkPayload::InnerMessage(m) => Ok(m),
            NetlinkPayload::Error(e) => Err(e.code.map_or_else(
                || io::Error::other("empty answer"),
                |c| io::Error::from_raw_os_error(-c.get()),
            )),
            _ => Err(io::Error::other("unexpected rtnetlink answer")),
        }
    }

    /// Delete network interface `ifindex` (RTM_DELLINK, acknowledged).
    pub fn delete_link(&self, ifindex: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        self.acked(RouteNetlinkMessage::DelLink(m))
    }

    /// A request the kernel acknowledges: its answer, success or its error.
    pub fn acked(&self, msg: RouteNetlinkMessage) -> io::Result<()> {
        self.acked_with(msg, 0)
    }

    /// A new object (an address, a route): acknowledged, and refused if it exists
    /// (`NLM_F_CREATE | NLM_F_EXCL`).
    pub fn create(&self, msg: RouteNetlinkMessage) -> io::Result<()> {
        self.acked_with(msg, NLM_F_CREATE | NLM_F_EXCL)
    }

    /// An object made or, if one with its key exists, replaced (`NLM_F_CREATE |
    /// NLM_F_REPLACE`): a route the kernel may have made itself meanwhile.
    pub fn replace(&self, msg: RouteNetlinkMessage) -> io::Result<()> {
        self.acked_with(msg, NLM_F_CREATE | NLM_F_REPLACE)
    }

    fn acked_with(&self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        match self.exchange(msg, NLM_F_REQUEST | NLM_F_ACK | flags)? {
            NetlinkPayload::Error(e) => match e.code {
                None => Ok(()),
                Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
            },
            _ => Err(io::Error::other("unexpected rtnetlink answer")),
        }
    }

    /// Set link `ifindex`'s `gso_max_size`: the largest super-frame its stack makes.
    pub fn set_gso_max_size(&self, ifindex: u32, size: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        m.attributes.push(LinkAttribute::GsoMaxSize(size));
        self.acked(RouteNetlinkMessage::SetLink(m))
    }

    /// Send `msg` with `flags`; the answer to it.
    fn exchange(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<NetlinkPayload<RouteNetlinkMessage>> {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (sock, seq) = &mut *g;
        *seq = seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = flags;
        hdr.sequence_number = *seq;
        let mut packet = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        sock.send(&buf, 0)?;
        let mut rx = vec![0u8; 8192];
        loop {
            let n = sock.recv(&mut &mut rx[..], 0)?;
            let bytes = rx.get(..n).unwrap_or(&[]);
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if reply.header.sequence_number != *seq {
                // An answer to an earlier request that timed out.
                continue;
            }
            return Ok(reply.payload);
        }
    }

    /// A dump request (`NLM_F_DUMP`): every message the kernel answers with, up to its
    /// end-of-dump mark.
    pub fn dump(&self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (sock, seq) = &mut *g;
        *seq = seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | NLM_F_DUMP;
        hdr.sequence_number = *seq;
        let mut packet = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        sock.send(&buf, 0)?;
        let mut out = Vec::new();
        let mut rx = vec![0u8; 64 * 1024];
        loop {
            let n = sock.recv(&mut &mut rx[..], 0)?;
            let mut bytes = rx.get(..n).unwrap_or(&[]);
            while bytes.len() >= 16 {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                // Messages are aligned to 4 bytes in a datagram.
                let len = (reply.header.length as usize).div_ceil(4) * 4;
                bytes = bytes.get(len.max(16)..).unwrap_or(&[]);
                if reply.header.sequence_number != *seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return Err(e.code.map_or_else(
                            || io::Error::other("empty answer"),
                            |c| io::Error::from_raw_os_error(-c.get()),
                        ));
                    }
                    _ => {}
                }
            }
        }
    }

    /// The kernel's route to `dst` leaving by interface `oif`: the gateway, if not on-link.
    /// `None` when there is no such route.
    fn route_via(&self, dst: Ipv6Addr, oif: u32) -> Option<Option<Ipv6Addr>> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet6;
        m.header.destination_prefix_length = 128;
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet6(std_ip(
                dst,
            ))));
        m.attributes.push(RouteAttribute::Oif(oif));
        let RouteNetlinkMessage::NewRoute(r) = self.ask(RouteNetlinkMessage::GetRoute(m)).ok()?
        else {
            return None;
        };
        let out = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(i) => Some(*i),
            _ => None,
        });
        if out != Some(oif) {
            return None;
        }
        Some(r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => Some(Ipv6Addr::from(g.octets())),
            _ => None,
        }))
    }

    /// The link-layer address of neighbour `ip` on interface `ifindex`, if the kernel has a
    /// usable one.
    fn neighbour(&self, ip: Ipv6Addr, ifindex: u32) -> Option<MacAddr> {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet6;
        m.header.ifindex = ifindex;
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet6(
                std_ip(ip),
            )));
        let RouteNetlinkMessage::NewNeighbour(n) =
            self.ask(RouteNetlinkMessage::GetNeighbour(m)).ok()?
        else {
            return None;
        };
        if matches!(
            n.header.state,
            NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None
        ) {
            return None;
        }
        n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(b) => <[u8; 6]>::try_from(b.as_slice())
                .ok()
                .map(MacAddr::from_const),
            _ => None,
        })
    }

    /// The next hop to underlay address `dst` for a flow of hash `hash`, over `links`.
    pub fn next_hop(
        &self,
        links: &[UnderlayLink; 2],
        dst: Ipv6Addr,
        hash: u16,
    ) -> Result<Route, RouteError> {
        let mut ways: Vec<(Link, &UnderlayLink, Option<Ipv6Addr>)> = Vec::with_capacity(2);
        for (link, l) in [Link::U1, Link::U2].into_iter().zip(links) {
            if let Some(gw) = self.route_via(dst, l.ifindex()) {
                ways.push((link, l, gw));
            }
        }
        if ways.is_empty() {
            return Err(RouteError::NoRoute(dst));
        }
        let pick = usize::from(hash) % ways.len();
        let Some(&(link, l, gw)) = ways.get(pick) else {
            return Err(RouteError::NoRoute(dst));
        };
        let hop = gw.unwrap_or(dst);
        match self.neighbour(hop, l.ifindex()) {
            Some(dst_mac) => Ok(Route {
                link,
                src_mac: l.mac(),
                dst_mac,
            }),
            None => {
                solicit(hop, l);
                Err(RouteError::Unresolved(hop))
            }
        }
    }
}

/// Make the kernel resolve `hop` on `l`: a datagram to it, by way of that link, to a port
/// nothing listens on (the discard port).
fn solicit(hop: Ipv6Addr, l: &UnderlayLink) {
    let Ok(s) = std::net::UdpSocket::bind("[::]:0") else {
        return;
    };
    let _ = nix::sys::socket::setsockopt(
        &s,
        nix::sys::socket::sockopt::BindToDevice,
        &std::ffi::OsString::from(l.name()),
    );
    let to = std::net::SocketAddrV6::new(std_ip(hop), 9, 0, l.ifindex());
    let _ = s.send_to(&[], to);
}

fn std_ip(a: Ipv6Addr) -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::from(a.bytes())
}
