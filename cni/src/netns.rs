//! A container's interface over rtnetlink: the port's TAP moved into the container's
//! network namespace under its new name, brought up with its addresses and routes, and
//! read back for CHECK.

use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;
use xde::linux::nexthop::Rtnl;

/// A route in the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsRoute {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gw: Option<IpAddr>,
}

/// What CHECK reads of the interface.
#[derive(Clone, Debug)]
pub struct LinkState {
    pub mac: Vec<u8>,
    pub mtu: u32,
    pub up: bool,
    pub addrs: Vec<(IpAddr, u8)>,
    pub routes: Vec<NsRoute>,
}

/// The index of interface `name` as `rtnl`'s namespace knows it; `None` if there is none.
pub fn link_index(rtnl: &Rtnl, name: &str) -> io::Result<Option<u32>> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.into()));
    match rtnl.ask(RouteNetlinkMessage::GetLink(m)) {
        Ok(RouteNetlinkMessage::NewLink(l)) => Ok(Some(l.header.index)),
        Ok(_) => Err(io::Error::other("unexpected rtnetlink answer")),
        Err(e) if e.raw_os_error() == Some(libc_enodev()) => Ok(None),
        Err(e) => Err(e),
    }
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

/// Move interface `name` of this namespace into the namespace at `netns`, renamed
/// `ifname` there.
pub fn move_into(name: &str, netns: &Path, ifname: &str) -> io::Result<()> {
    let host = Rtnl::open()?;
    let index = link_index(&host, name)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")))?;
    let ns = std::fs::File::open(netns)?;
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
    m.attributes.push(LinkAttribute::IfName(ifname.into()));
    host.acked(RouteNetlinkMessage::SetLink(m))
}

fn prefix_family(ip: &IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_addr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

/// Bring interface `ifname` of the namespace at `netns` up with `addrs` (address and
/// prefix length; IPv6 ones without duplicate address detection, since the VPC gave
/// them) and `routes`: a route without a gateway is on the link.
pub fn configure(
    netns: &Path,
    ifname: &str,
    addrs: &[(IpAddr, u8)],
    routes: &[NsRoute],
) -> io::Result<()> {
    let rtnl = Rtnl::open_in(netns)?;
    let index = link_index(&rtnl, ifname)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {ifname}")))?;
    let mut up = LinkMessage::default();
    up.header.index = index;
    up.header.flags = LinkFlags::Up;
    up.header.change_mask = LinkFlags::Up;
    rtnl.acked(RouteNetlinkMessage::SetLink(up))?;
    for (ip, len) in addrs {
        let mut m = AddressMessage::default();
        m.header.family = prefix_family(ip);
        m.header.prefix_len = *len;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Address(*ip));
        match ip {
            IpAddr::V4(_) => m.attributes.push(AddressAttribute::Local(*ip)),
            IpAddr::V6(_) => m
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad)),
        }
        rtnl.create(RouteNetlinkMessage::NewAddress(m))
            .map_err(|e| io::Error::new(e.kind(), format!("address {ip}/{len}: {e}")))?;
    }
    for r in routes {
        let mut m = RouteMessage::default();
        m.header.address_family = prefix_family(&r.dst);
        m.header.destination_prefix_length = r.prefix;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.kind = RouteType::Unicast;
        m.header.scope = if r.gw.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        m.attributes
            .push(RouteAttribute::Destination(route_addr(r.dst)));
        m.attributes.push(RouteAttribute::Oif(index));
        if let Some(gw) = r.gw {
            m.attributes.push(RouteAttribute::Gateway(route_addr(gw)));
        }
        // Replace, not create: the link is up, so the kernel may already hold a default
        // route learned from the gateway's Router Advertisement (same destination).
        rtnl.replace(RouteNetlinkMessage::NewRoute(m))
            .map_err(|e| io::Error::new(e.kind(), format!("route {}/{}: {e}", r.dst, r.prefix)))?;
    }
    Ok(())
}

/// Read interface `ifname` of the namespace at `netns`: `None` if it is not there.
pub fn inspect(netns: &Path, ifname: &str) -> io::Result<Option<LinkState>> {
    let rtnl = Rtnl::open_in(netns)?;
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(ifname.into()));
    let link = match rtnl.ask(RouteNetlinkMessage::GetLink(m)) {
        Ok(RouteNetlinkMessage::NewLink(l)) => l,
        Ok(_) => return Err(io::Error::other("unexpected rtnetlink answer")),
        Err(e) if e.raw_os_error() == Some(libc_enodev()) => return Ok(None),
        Err(e) => return Err(e),
    };
    let index = link.header.index;
    let mut st = LinkState {
        mac: Vec::new(),
        mtu: 0,
        up: link.header.flags.contains(LinkFlags::Up),
        addrs: Vec::new(),
        routes: Vec::new(),
    };
    for a in &link.attributes {
        match a {
            LinkAttribute::Address(b) => st.mac = b.clone(),
            LinkAttribute::Mtu(m) => st.mtu = *m,
            _ => {}
        }
    }
    for msg in rtnl.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))? {
        let RouteNetlinkMessage::NewAddress(a) = msg else {
            continue;
        };
        if a.header.index != index {
            continue;
        }
        if let Some(ip) = a.attributes.iter().find_map(|x| match x {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        }) {
            st.addrs.push((ip, a.header.prefix_len));
        }
    }
    for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut q = RouteMessage::default();
        q.header.address_family = fam;
        for msg in rtnl.dump(RouteNetlinkMessage::GetRoute(q))? {
            let RouteNetlinkMessage::NewRoute(r) = msg else {
                continue;
            };
            let oif = r.attributes.iter().find_map(|x| match x {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            if oif != Some(index) || r.header.table != RouteHeader::RT_TABLE_MAIN {
                continue;
            }
            let ip = |x: &RouteAddress| match x {
                RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
                RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
                _ => None,
            };
            let dst = r
                .attributes
                .iter()
                .find_map(|x| match x {
                    RouteAttribute::Destination(d) => ip(d),
                    _ => None,
                })
                .unwrap_or(match fam {
                    AddressFamily::Inet => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                    _ => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                });
            let gw = r.attributes.iter().find_map(|x| match x {
                RouteAttribute::Gateway(g) => ip(g),
                _ => None,
            });
            st.routes.push(NsRoute {
                dst,
                prefix: r.header.destination_prefix_length,
                gw,
            });
        }
    }
    Ok(Some(st))
}
