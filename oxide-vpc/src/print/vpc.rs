//! Tables of the VPC's own dumps: the ports of a host, and the shared V2P, V2B, M2P and
//! multicast tables.

use super::table::Table;
use super::{light_rule, write_hr, write_hrb};
use crate::api::{
    DumpMcast2PhysResp, DumpMcastForwardingResp, DumpMcastSubscriptionsResp, DumpVirt2BoundaryResp,
    DumpVirt2PhysResp, GuestPhysAddr, ListPortsResp, PortInfo, SourceFilter, TunnelEndpoint,
};
use alloc::collections::BTreeSet;
use core::fmt::{self, Display};
use opte_api::IpCidr;
use std::io::{self, Write};
use std::string::{String, ToString};
use std::vec::Vec;

const PORT_HEADER: &str = "LINK\tMAC ADDRESS\tIPv4 ADDRESS\tEPHEMERAL IPv4\tFLOATING IPv4\t\
                           IPv6 ADDRESS\tEXTERNAL IPv6\tFLOATING IPv6\tSTATE";
const V2P_HEADER: &str = "VPC_IP\tVPC MAC ADDR\tUNDERLAY IP";
const V2B_HEADER: &str = "TUNNELED PREFIX\tBOUNDARY IP\tVNI";
const M2P_HEADER: &str = "OVERLAY GROUP\tUNDERLAY MCAST";
/// The reference titles these columns GROUP IP, UNDERLAY IP, VNI, REPLICATION, FILTER but
/// prints the underlay group, the next hop, its VNI, replication and filter (SPEC §13 #6);
/// the headers here name what is printed.
const MCAST_FWD_HEADER: &str = "UNDERLAY GROUP\tNEXT HOP\tVNI\tREPLICATION\tFILTER";
const MCAST_SUBS_HEADER: &str = "UNDERLAY GROUP\tPORT\tFILTER";

/// `list-ports`: one row per port, `None` for an address it lacks. Ports named `opte<N>`
/// sort by `N`, others by name. Floating IPs past the first go on continuation rows,
/// followed by a blank row.
pub fn print_ports<W: Write + ?Sized>(w: &mut W, resp: &ListPortsResp) -> io::Result<()> {
    let mut ports: Vec<&PortInfo> = resp.ports.iter().collect();
    ports.sort_by(|a, b| match (opte_number(&a.name), opte_number(&b.name)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.name.cmp(&b.name),
    });
    let mut t = Table::new();
    t.header(PORT_HEADER);
    for p in ports {
        port_rows(&mut t, p);
    }
    t.write(w)
}

fn opte_number(name: &str) -> Option<u64> {
    name.strip_prefix("opte")?.parse().ok()
}

/// An optional value's cell: the value, or `None`.
fn or_none(v: Option<impl Display>) -> String {
    v.map_or_else(|| "None".into(), |v| v.to_string())
}

fn port_rows(t: &mut Table, p: &PortInfo) {
    let fip4 = p.floating_ip4_addrs.as_deref().unwrap_or_default();
    let fip6 = p.floating_ip6_addrs.as_deref().unwrap_or_default();
    t.row(&[
        &p.name,
        &p.mac_addr,
        &or_none(p.ip4_addr),
        &or_none(p.ephemeral_ip4_addr),
        &or_none(fip4.first()),
        &or_none(p.ip6_addr),
        &or_none(p.ephemeral_ip6_addr),
        &or_none(fip6.first()),
        &p.state,
    ]);
    let extra = fip4.len().max(fip6.len()).saturating_sub(1);
    for i in 1..=extra {
        let f4 = fip4.get(i).map(ToString::to_string).unwrap_or_default();
        let f6 = fip6.get(i).map(ToString::to_string).unwrap_or_default();
        t.row(&[&"", &"", &"", &"", &f4, &"", &"", &f6, &""]);
    }
    if extra > 0 {
        t.blank();
    }
}

/// `dump-v2p`: per VPC, its IPv4 then its IPv6 mappings.
pub fn print_v2p<W: Write + ?Sized>(w: &mut W, resp: &DumpVirt2PhysResp) -> io::Result<()> {
    writeln!(w, "Virtual to Physical Mappings")?;
    write_hrb(w)?;
    for vpc in &resp.mappings {
        writeln!(w, "\nVPC {}", vpc.vni)?;
        write_hr(w)?;
        writeln!(w, "\nIPv4 mappings")?;
        write_hr(w)?;
        v2p_table(vpc.ip4.iter().map(|(ip, phys)| (ip as &dyn Display, phys))).write(w)?;
        writeln!(w, "\nIPv6 mappings")?;
        write_hr(w)?;
        v2p_table(vpc.ip6.iter().map(|(ip, phys)| (ip as &dyn Display, phys))).write(w)?;
    }
    Ok(())
}

fn v2p_table<'a>(rows: impl Iterator<Item = (&'a dyn Display, &'a GuestPhysAddr)>) -> Table {
    let mut t = Table::new();
    t.header(V2P_HEADER);
    for (ip, phys) in rows {
        t.row(&[ip, &phys.ether, &phys.ip]);
    }
    t
}

/// `dump-v2b`: IPv4 then IPv6 prefixes, one row per tunnel endpoint of a prefix.
pub fn print_v2b<W: Write + ?Sized>(w: &mut W, resp: &DumpVirt2BoundaryResp) -> io::Result<()> {
    writeln!(w, "Virtual to Boundary Mappings")?;
    write_hrb(w)?;
    writeln!(w, "\nIPv4 mappings")?;
    write_hr(w)?;
    let v4 = resp.mappings.ip4.iter().map(|(p, s)| (IpCidr::Ip4(*p), s));
    v2b_table(v4).write(w)?;
    writeln!(w, "\nIPv6 mappings")?;
    write_hr(w)?;
    let v6 = resp.mappings.ip6.iter().map(|(p, s)| (IpCidr::Ip6(*p), s));
    v2b_table(v6).write(w)?;
    writeln!(w)
}

fn v2b_table<'a>(rows: impl Iterator<Item = (IpCidr, &'a BTreeSet<TunnelEndpoint>)>) -> Table {
    let mut t = Table::new();
    t.header(V2B_HEADER);
    for (prefix, teps) in rows {
        for tep in teps {
            t.row(&[&prefix, &tep.ip, &tep.vni]);
        }
    }
    t
}

/// `dump-m2p`: IPv4 then IPv6 overlay groups and their underlay multicast addresses.
pub fn print_m2p<W: Write + ?Sized>(w: &mut W, resp: &DumpMcast2PhysResp) -> io::Result<()> {
    writeln!(w, "Multicast to Physical Mappings (M2P)")?;
    write_hrb(w)?;
    writeln!(w, "\nIPv4 groups")?;
    write_hr(w)?;
    let mut t = Table::new();
    t.header(M2P_HEADER);
    for (group, underlay) in &resp.ip4 {
        t.row(&[group, underlay]);
    }
    t.write(w)?;
    writeln!(w, "\nIPv6 groups")?;
    write_hr(w)?;
    let mut t = Table::new();
    t.header(M2P_HEADER);
    for (group, underlay) in &resp.ip6 {
        t.row(&[group, underlay]);
    }
    t.write(w)?;
    writeln!(w)
}

/// `dump-mcast-fwd`: one row per next hop of each underlay group. Replication is printed
/// the way `set-mcast-fwd` takes it (`external`, `underlay`, `both`).
pub fn print_mcast_fwd<W: Write + ?Sized>(
    w: &mut W,
    resp: &DumpMcastForwardingResp,
) -> io::Result<()> {
    writeln!(w, "Multicast Forwarding Table")?;
    write_hrb(w)?;
    writeln!(w)?;
    let mut t = Table::new();
    t.header(MCAST_FWD_HEADER);
    t.line(light_rule());
    for e in &resp.entries {
        for hop in &e.next_hops {
            t.row(&[
                &e.underlay,
                &hop.next_hop.addr,
                &hop.next_hop.vni,
                &hop.replication,
                &FilterText(&hop.source_filter),
            ]);
        }
    }
    t.write(w)?;
    writeln!(w)
}

/// `dump-mcast-subs`: one row per subscribed port of each underlay group.
pub fn print_mcast_subs<W: Write + ?Sized>(
    w: &mut W,
    resp: &DumpMcastSubscriptionsResp,
) -> io::Result<()> {
    writeln!(w, "Multicast Subscriptions")?;
    write_hrb(w)?;
    writeln!(w)?;
    let mut t = Table::new();
    t.header(MCAST_SUBS_HEADER);
    t.line(light_rule());
    for e in &resp.entries {
        for sub in &e.subscribers {
            t.row(&[&e.underlay, &sub.port, &FilterText(&sub.filter)]);
        }
    }
    t.write(w)?;
    writeln!(w)
}

/// A source filter in IGMPv3/MLDv2 notation: `EXCLUDE() (any)`, `INCLUDE() (none)`, or
/// `MODE(a, b, …)`.
struct FilterText<'a>(&'a SourceFilter);

impl Display for FilterText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mode, sources) = match self.0 {
            SourceFilter::Include(s) => ("INCLUDE", s),
            SourceFilter::Exclude(s) => ("EXCLUDE", s),
        };
        if sources.is_empty() {
            let what = match self.0 {
                SourceFilter::Include(_) => "none",
                SourceFilter::Exclude(_) => "any",
            };
            return write!(f, "{mode}() ({what})");
        }
        write!(f, "{mode}(")?;
        for (i, src) in sources.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{src}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{assert_json_round_trip, render};
    use super::*;
    use crate::api::{
        McastForwardingEntry, McastForwardingNextHop, McastSubscriberEntry, McastSubscriptionEntry,
        NextHopV6, PhysNet, Replication,
    };
    use crate::tables::VpcTables;
    use core::str::FromStr;
    use opte_api::{IpAddr, MulticastUnderlay, Vni};
    use std::{format, vec};

    fn p<T: FromStr>(s: &str) -> T
    where
        T::Err: fmt::Debug,
    {
        s.parse().unwrap()
    }

    fn vni(v: u32) -> Vni {
        Vni::new(v).unwrap()
    }

    fn port(name: &str, last: u8) -> PortInfo {
        PortInfo {
            name: name.into(),
            mac_addr: p(&format!("a8:40:25:fa:fa:{last:02x}")),
            ip4_addr: Some(p(&format!("172.30.0.{last}"))),
            ephemeral_ip4_addr: None,
            floating_ip4_addrs: None,
            ip6_addr: None,
            ephemeral_ip6_addr: None,
            floating_ip6_addrs: None,
            state: "running".into(),
        }
    }

    fn ports() -> ListPortsResp {
        let mut dual = port("opte2", 6);
        dual.ephemeral_ip4_addr = Some(p("10.77.77.14"));
        dual.floating_ip4_addrs = Some(vec![p("10.77.77.20"), p("10.77.77.21")]);
        dual.ip6_addr = Some(p("fd00::6"));
        dual.ephemeral_ip6_addr = Some(p("2001:db8::14"));
        dual.floating_ip6_addrs = Some(vec![
            p("2001:db8::20"),
            p("2001:db8::21"),
            p("2001:db8::22"),
        ]);
        ListPortsResp {
            ports: vec![port("vnic", 9), port("opte10", 5), dual, port("opte1", 7)],
        }
    }

    #[test]
    fn list_ports_sorts_by_opte_number_and_continues_floating_ips() {
        assert_eq!(
            render(|w| print_ports(w, &ports())),
            "\
LINK    MAC ADDRESS        IPv4 ADDRESS  EPHEMERAL IPv4  FLOATING IPv4  IPv6 ADDRESS  EXTERNAL IPv6  FLOATING IPv6  STATE
opte1   A8:40:25:FA:FA:07  172.30.0.7    None            None           None          None           None           running
opte2   A8:40:25:FA:FA:06  172.30.0.6    10.77.77.14     10.77.77.20    fd00::6       2001:db8::14   2001:db8::20   running
                                                         10.77.77.21                                 2001:db8::21
                                                                                                     2001:db8::22

opte10  A8:40:25:FA:FA:05  172.30.0.5    None            None           None          None           None           running
vnic    A8:40:25:FA:FA:09  172.30.0.9    None            None           None          None           None           running
"
        );
    }

    fn tables() -> VpcTables {
        let t = VpcTables::default();
        let g1 = PhysNet {
            ether: p("a8:40:25:fa:fa:37"),
            ip: p("fd00:1::1"),
            vni: vni(1_287_581),
        };
        let g2 = PhysNet {
            ether: p("a8:40:25:fa:fa:38"),
            ip: p("fd00:2::1"),
            vni: vni(1_287_581),
        };
        t.v2p.add(p("172.30.0.5"), g1).unwrap();
        t.v2p.add(p("fd00::5"), g1).unwrap();
        t.v2p.add(p("172.30.0.6"), g2).unwrap();
        let tep = |ip: &str| TunnelEndpoint {
            ip: p(ip),
            vni: vni(99),
        };
        t.v2b
            .set(p("0.0.0.0/0"), &[tep("fd00:99::1"), tep("fd00:99::2")])
            .unwrap();
        t.v2b.set(p("::/0"), &[tep("fd00:99::1")]).unwrap();
        t.m2p
            .set(p("239.1.1.1"), p::<MulticastUnderlay>("ff04::e001:101"))
            .unwrap();
        t.m2p
            .set(p("ff0e::1:3"), p::<MulticastUnderlay>("ff04::1:3"))
            .unwrap();
        t
    }

    #[test]
    fn dump_v2p_lists_each_vpc_by_family() {
        let resp = tables().v2p.dump();
        assert_eq!(
            render(|w| print_v2p(w, &resp)),
            "\
Virtual to Physical Mappings
======================================================================

VPC 1287581
----------------------------------------------------------------------

IPv4 mappings
----------------------------------------------------------------------
VPC_IP      VPC MAC ADDR       UNDERLAY IP
172.30.0.5  A8:40:25:FA:FA:37  fd00:1::1
172.30.0.6  A8:40:25:FA:FA:38  fd00:2::1

IPv6 mappings
----------------------------------------------------------------------
VPC_IP   VPC MAC ADDR       UNDERLAY IP
fd00::5  A8:40:25:FA:FA:37  fd00:1::1
"
        );
    }

    #[test]
    fn dump_v2b_has_a_row_per_tunnel_endpoint() {
        let resp = tables().v2b.dump();
        assert_eq!(
            render(|w| print_v2b(w, &resp)),
            "\
Virtual to Boundary Mappings
======================================================================

IPv4 mappings
----------------------------------------------------------------------
TUNNELED PREFIX  BOUNDARY IP  VNI
0.0.0.0/0        fd00:99::1   99
0.0.0.0/0        fd00:99::2   99

IPv6 mappings
----------------------------------------------------------------------
TUNNELED PREFIX  BOUNDARY IP  VNI
::/0             fd00:99::1   99

"
        );
    }

    #[test]
    fn dump_m2p_lists_overlay_groups_by_family() {
        let resp = tables().m2p.dump();
        assert_eq!(
            render(|w| print_m2p(w, &resp)),
            "\
Multicast to Physical Mappings (M2P)
======================================================================

IPv4 groups
----------------------------------------------------------------------
OVERLAY GROUP  UNDERLAY MCAST
239.1.1.1      ff04::e001:101

IPv6 groups
----------------------------------------------------------------------
OVERLAY GROUP  UNDERLAY MCAST
ff0e::1:3      ff04::1:3

"
        );
    }

    fn fwd() -> DumpMcastForwardingResp {
        let hop = |addr: &str, replication, source_filter| McastForwardingNextHop {
            next_hop: NextHopV6 {
                addr: p(addr),
                vni: vni(77),
            },
            replication,
            source_filter,
        };
        let srcs: BTreeSet<IpAddr> = [p("10.1.1.1"), p("10.1.1.2")].into_iter().collect();
        DumpMcastForwardingResp {
            entries: vec![McastForwardingEntry {
                underlay: p("ff04::e001:101"),
                next_hops: vec![
                    hop("fd00::1", Replication::Underlay, SourceFilter::default()),
                    hop("fd00::2", Replication::Both, SourceFilter::Include(srcs)),
                ],
            }],
        }
    }

    #[test]
    fn dump_mcast_fwd_headers_name_the_values_printed() {
        assert_eq!(
            render(|w| print_mcast_fwd(w, &fwd())),
            "\
Multicast Forwarding Table
======================================================================

UNDERLAY GROUP  NEXT HOP  VNI  REPLICATION  FILTER
----------------------------------------------------------------------
ff04::e001:101  fd00::1   77   underlay     EXCLUDE() (any)
ff04::e001:101  fd00::2   77   both         INCLUDE(10.1.1.1, 10.1.1.2)

"
        );
    }

    fn subs() -> DumpMcastSubscriptionsResp {
        DumpMcastSubscriptionsResp {
            entries: vec![McastSubscriptionEntry {
                underlay: p("ff04::1:3"),
                subscribers: vec![
                    McastSubscriberEntry {
                        port: "opte0".into(),
                        filter: SourceFilter::default(),
                    },
                    McastSubscriberEntry {
                        port: "opte12".into(),
                        filter: SourceFilter::Include(BTreeSet::new()),
                    },
                ],
            }],
        }
    }

    #[test]
    fn dump_mcast_subs_shows_each_subscriber_and_its_filter() {
        assert_eq!(
            render(|w| print_mcast_subs(w, &subs())),
            "\
Multicast Subscriptions
======================================================================

UNDERLAY GROUP  PORT    FILTER
----------------------------------------------------------------------
ff04::1:3       opte0   EXCLUDE() (any)
ff04::1:3       opte12  INCLUDE() (none)

"
        );
    }

    #[test]
    fn vpc_read_responses_round_trip_through_json() {
        let t = tables();
        assert_json_round_trip(&ports());
        assert_json_round_trip(&t.v2p.dump());
        assert_json_round_trip(&t.v2b.dump());
        assert_json_round_trip(&t.m2p.dump());
        assert_json_round_trip(&fwd());
        assert_json_round_trip(&subs());
    }
}
