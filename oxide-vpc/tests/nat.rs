//! NAT through a VPC port (SPEC §11.1 "Internet / NAT / external IPs"): SNAT of ICMP echo
//! both ways, ICMP errors whose quoted header is translated, receive-and-reply on every
//! kind of external IP, balancing over floating IPs, and replacing the external IPs.

mod common;

use common::*;
use opte::build::{Headers, L3Repr, UlpRepr};
use opte::engine::port::ProcessResult;
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::packet::Packet;
use opte::wire::ether::{ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, EtherRepr};
use opte::wire::icmp::{IcmpRepr, v4_type, v6_type};
use opte::wire::ip4::Ipv4Repr;
use opte::wire::ip6::Ipv6Repr;
use opte::wire::tcp::flags;
use opte_api::{Direction, IpAddr, MacAddr};
use oxide_vpc::api::{ExternalIpCfg, SNatCfg, SetExternalIpsReq, VpcCfg};
use oxide_vpc::engine::{PortLimits, VpcPort};
use oxide_vpc::tables::VpcTables;
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

const T0: Moment = Moment::ZERO;

fn gw_drop() -> ProcessResult {
    ProcessResult::Drop(DropReason::Layer {
        layer: "gateway",
        reason: DenyReason::Default,
    })
}

/// A port on the internet: IGW routes installed.
fn internet_port(tables: &Arc<VpcTables>) -> (VpcCfg, VpcPort) {
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), tables);
    add_igw_routes(&mut port, None);
    (g1, port)
}

fn set_ext(
    port: &mut VpcPort,
    v4: Option<ExternalIpCfg<opte_api::Ipv4Addr>>,
    v6: Option<ExternalIpCfg<opte_api::Ipv6Addr>>,
) {
    port.set_external_ips(&SetExternalIpsReq {
        port_name: "g".into(),
        external_ips_v4: v4,
        external_ips_v6: v6,
        inet_gw_map: None,
    })
    .unwrap();
}

fn ext4(snat: bool, eip: Option<&str>, fips: &[&str]) -> ExternalIpCfg<opte_api::Ipv4Addr> {
    ExternalIpCfg {
        snat: snat.then(|| SNatCfg {
            external_ip: p("10.77.77.13"),
            ports: 1025..=4096,
        }),
        ephemeral_ip: eip.map(p),
        floating_ips: fips.iter().map(|s| p(s)).collect(),
    }
}

fn ext6(snat: bool, eip: Option<&str>, fips: &[&str]) -> ExternalIpCfg<opte_api::Ipv6Addr> {
    ExternalIpCfg {
        snat: snat.then(|| SNatCfg {
            external_ip: p("2001:db8::1"),
            ports: 4097..=8192,
        }),
        ephemeral_ip: eip.map(p),
        floating_ips: fips.iter().map(|s| p(s)).collect(),
    }
}

fn echo(src: IpAddr, ty: u8, id: u16) -> L4 {
    match src {
        IpAddr::Ip4(_) => L4::Icmp4 { ty, id, seq: 1 },
        IpAddr::Ip6(_) => L4::Icmp6 { ty, id, seq: 1 },
    }
}

/// Guest pings the internet through SNAT: the echo id is the SNAT "port" going out and is
/// restored on the reply, checksums valid both ways.
fn snat_icmp_echo_rewrite(v6: bool) {
    let rec = Recorder::new(if v6 {
        "snat_icmp6_echo_rewrite"
    } else {
        "snat_icmp4_echo_rewrite"
    });
    let tables = Arc::new(VpcTables::default());
    let (g1, mut port) = internet_port(&tables);
    let (private, remote, snat, ports, req, rep): (IpAddr, IpAddr, IpAddr, _, _, _) = if v6 {
        (
            IpAddr::Ip6(ip6(&g1)),
            p(REMOTE6),
            p("2001:db8::1"),
            4097..=8192,
            v6_type::ECHO_REQUEST,
            v6_type::ECHO_REPLY,
        )
    } else {
        (
            IpAddr::Ip4(ip4(&g1)),
            p(REMOTE4),
            p("10.77.77.13"),
            1025..=4096,
            v4_type::ECHO_REQUEST,
            v4_type::ECHO_REPLY,
        )
    };
    let ping = guest_pkt(&g1, private, remote, echo(private, req, 7));
    let (r, mut pkt) = out(&mut port, &rec, ping, T0);
    assert_eq!(r, ProcessResult::Modified);
    let inner = inner_frame(&mut pkt);
    let m = assert_csums_valid(&inner);
    assert_eq!((m.flow.src_ip(), m.flow.dst_ip()), (snat, remote));
    assert_eq!(m.flow.icmp_type(), req);
    let id = m.flow.icmp_id();
    assert!(ports.contains(&id), "echo id {id} is a SNAT port");
    assert_eq!(port.port().num_flows("nat", Direction::Out), Some(1));

    let reply = from_internet(&g1, remote, snat, echo(remote, rep, id));
    let (r, pkt) = inb(&mut port, &rec, reply, T0);
    assert_eq!(r, ProcessResult::Modified);
    let f = pkt.to_vec();
    let m = assert_csums_valid(&f);
    assert_eq!((m.flow.src_ip(), m.flow.dst_ip()), (remote, private));
    assert_eq!((m.flow.icmp_type(), m.flow.icmp_id()), (rep, 7));
    assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));

    // A reply with an id no flow owns is not translated, and the guest never sees it: the
    // default rules admit ICMPv4 (then the gateway refuses a packet not for the guest's
    // address) but not ICMPv6.
    let stray = from_internet(&g1, remote, snat, echo(remote, rep, id ^ 1));
    let (r, _) = inb(&mut port, &rec, stray, T0);
    let refused_by = if v6 { "firewall" } else { "gateway" };
    assert_eq!(
        r,
        ProcessResult::Drop(DropReason::Layer {
            layer: refused_by,
            reason: DenyReason::Default
        })
    );
    assert_eq!(port.port().stats().r#in.modified, 1);
}

#[test]
fn snat_icmp4_echo_rewrite() {
    snat_icmp_echo_rewrite(false);
}

#[test]
fn snat_icmp6_echo_rewrite() {
    snat_icmp_echo_rewrite(true);
}

/// An ICMP error (type `ty`, code `code`) from `src` to `dst` quoting `quoted` (an IP
/// packet), as it arrives from boundary services.
fn icmp_error_from_internet(
    c: &VpcCfg,
    src: IpAddr,
    dst: IpAddr,
    ty: u8,
    code: u8,
    quoted: &[u8],
) -> Packet {
    let icmp = IcmpRepr {
        ty,
        code,
        csum: 0,
        rest: [0; 4],
    };
    let (l3, et, ulp) = match (src, dst) {
        (IpAddr::Ip4(s), IpAddr::Ip4(d)) => (
            L3Repr::Ipv4(Ipv4Repr::new(s, d, 1)),
            ETHER_TYPE_IPV4,
            UlpRepr::Icmpv4(icmp),
        ),
        (IpAddr::Ip6(s), IpAddr::Ip6(d)) => (
            L3Repr::Ipv6(Ipv6Repr::new(s, d, 58)),
            ETHER_TYPE_IPV6,
            UlpRepr::Icmpv6(icmp),
        ),
        _ => panic!("mixed families"),
    };
    let eth = EtherRepr {
        dst: c.guest_mac,
        src: p::<MacAddr>(TEP_MAC),
        ether_type: et,
        vlan: None,
    };
    let inner = Headers::new(eth, l3, ulp).build(quoted).unwrap();
    encap(p(BOUNDARY_IP), c.phys_ip, c.vni, true, &inner)
}

/// The quoted packet inside an ICMP error frame, as (src, dst) of its IP header, after
/// checking that header's checksum (IPv4) and the quoted UDP checksum.
fn quoted_addrs(frame: &[u8]) -> (IpAddr, IpAddr) {
    let m = assert_csums_valid(frame);
    let q = l4_body(frame, &m);
    // The quote is a whole small datagram here, so it parses and verifies as one.
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&if q[0] >> 4 == 4 { [8, 0] } else { [0x86, 0xdd] });
    eth.extend_from_slice(q);
    let qm = assert_csums_valid(&eth);
    (qm.flow.src_ip(), qm.flow.dst_ip())
}

/// An inbound ICMP error about a datagram the guest sent from its ephemeral IP reaches the
/// guest quoting its private IP, every checksum (outer ICMP, quoted IP header, quoted UDP)
/// still valid; and the guest's own ICMP error about an inbound datagram leaves quoting
/// the external IP.
fn icmp_inner_has_nat_applied(v6: bool) {
    let rec = Recorder::new(if v6 {
        "icmpv6_inner_has_nat_applied"
    } else {
        "icmp_inner_has_nat_applied"
    });
    let tables = Arc::new(VpcTables::default());
    let (g1, mut port) = internet_port(&tables);
    set_ephemeral(&mut port, Some("10.60.1.20"), Some("2001:db8::2"));
    // ICMPv6 is not admitted inbound by the default rules; UDP is not either.
    port.add_fw_rule(&p("dir=in action=allow priority=10 protocol=icmp6"))
        .unwrap();
    port.add_fw_rule(&p("dir=in action=allow priority=10 protocol=udp"))
        .unwrap();
    let (private, remote, eip, unreach, code): (IpAddr, IpAddr, IpAddr, u8, u8) = if v6 {
        (
            IpAddr::Ip6(ip6(&g1)),
            p(REMOTE6),
            p("2001:db8::2"),
            v6_type::DEST_UNREACH,
            4,
        )
    } else {
        (
            IpAddr::Ip4(ip4(&g1)),
            p(REMOTE4),
            p("10.60.1.20"),
            v4_type::DEST_UNREACH,
            3,
        )
    };
    let dgram = |src, dst, sport, dport| {
        frame(
            g1.guest_mac,
            g1.gateway_mac,
            src,
            dst,
            udp(sport, dport),
            b"abcdefgh",
        )[14..]
            .to_vec()
    };

    // Outbound datagram, NATed to the ephemeral IP.
    let d = guest_pkt(&g1, private, remote, udp(5555, 53));
    let (r, mut pkt) = out(&mut port, &rec, d, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(net(&mut pkt).inner.flow.src_ip(), eip);
    // The remote says "port unreachable", quoting what it received.
    let err = icmp_error_from_internet(
        &g1,
        remote,
        eip,
        unreach,
        code,
        &dgram(eip, remote, 5555, 53),
    );
    let (r, pkt) = inb(&mut port, &rec, err, T0);
    assert_eq!(r, ProcessResult::Modified);
    let f = pkt.to_vec();
    let m = assert_csums_valid(&f);
    assert_eq!((m.flow.src_ip(), m.flow.dst_ip()), (remote, private));
    assert_eq!((m.flow.icmp_type(), m.flow.icmp_code()), (unreach, code));
    assert_eq!(
        quoted_addrs(&f),
        (private, remote),
        "quoted source un-NATed"
    );

    // The other way: a datagram arrives at the ephemeral IP, the guest answers with an
    // ICMP error quoting its private IP; it leaves quoting the external one.
    let d = from_internet(&g1, remote, eip, udp(40000, 9999));
    let (r, _) = inb(&mut port, &rec, d, T0);
    assert_eq!(r, ProcessResult::Modified);
    let icmp = IcmpRepr {
        ty: unreach,
        code,
        csum: 0,
        rest: [0; 4],
    };
    let (l3, et, ulp) = match (private, remote) {
        (IpAddr::Ip4(s), IpAddr::Ip4(d)) => (
            L3Repr::Ipv4(Ipv4Repr::new(s, d, 1)),
            ETHER_TYPE_IPV4,
            UlpRepr::Icmpv4(icmp),
        ),
        (IpAddr::Ip6(s), IpAddr::Ip6(d)) => (
            L3Repr::Ipv6(Ipv6Repr::new(s, d, 58)),
            ETHER_TYPE_IPV6,
            UlpRepr::Icmpv6(icmp),
        ),
        _ => unreachable!(),
    };
    let eth = EtherRepr {
        dst: g1.gateway_mac,
        src: g1.guest_mac,
        ether_type: et,
        vlan: None,
    };
    let err = Headers::new(eth, l3, ulp)
        .build(&dgram(remote, private, 40000, 9999))
        .unwrap();
    let (r, mut pkt) = out(&mut port, &rec, Packet::copy_from(&err), T0);
    assert_eq!(r, ProcessResult::Modified);
    let f = inner_frame(&mut pkt);
    let m = assert_csums_valid(&f);
    assert_eq!((m.flow.src_ip(), m.flow.dst_ip()), (eip, remote));
    assert_eq!(quoted_addrs(&f), (remote, eip), "quoted destination NATed");
}

#[test]
fn icmp_inner_has_nat_applied_v4() {
    icmp_inner_has_nat_applied(false);
}

#[test]
fn icmpv6_inner_has_nat_applied() {
    icmp_inner_has_nat_applied(true);
}

/// With an ephemeral IP and floating IPs, a connection opened from the internet to any of
/// them reaches the guest and the guest's replies leave from that same IP; SNAT's address
/// admits only return traffic of flows the guest opened.
#[test]
fn external_ip_receive_and_reply_on_all() {
    let rec = Recorder::new("external_ip_receive_and_reply_on_all");
    let tables = Arc::new(VpcTables::default());
    let (g1, mut port) = internet_port(&tables);
    let fips4 = ["10.60.1.30", "10.60.1.31"];
    let fips6 = ["2001:db8::30", "2001:db8::31"];
    set_ext(
        &mut port,
        Some(ext4(true, Some("10.60.1.20"), &fips4)),
        Some(ext6(true, Some("2001:db8::2"), &fips6)),
    );
    let mut ext: Vec<(IpAddr, IpAddr, IpAddr)> = Vec::new();
    for e in ["10.60.1.20"].iter().chain(&fips4) {
        ext.push((p(e), IpAddr::Ip4(ip4(&g1)), p(REMOTE4)));
    }
    for e in ["2001:db8::2"].iter().chain(&fips6) {
        ext.push((p(e), IpAddr::Ip6(ip6(&g1)), p(REMOTE6)));
    }
    for (i, (e, private, remote)) in ext.iter().copied().enumerate() {
        let sport = 40000 + i as u16;
        let syn = from_internet(&g1, remote, e, tcp(sport, 22, flags::SYN));
        let (r, mut pkt) = inb(&mut port, &rec, syn, T0);
        assert_eq!(r, ProcessResult::Modified, "SYN to {e}");
        let m = guest(&mut pkt);
        assert_eq!((m.flow.src_ip(), m.flow.dst_ip()), (remote, private));
        assert_eq!((m.flow.src_port(), m.flow.dst_port()), (sport, 22));
        let synack = guest_pkt(
            &g1,
            private,
            remote,
            L4::Tcp {
                sport: 22,
                dport: sport,
                flags: flags::SYN | flags::ACK,
                seq: 5000,
                ack: 1001,
            },
        );
        let (r, mut pkt) = out(&mut port, &rec, synack, T0);
        assert_eq!(r, ProcessResult::Modified, "reply from {e}");
        let n = net(&mut pkt);
        assert_eq!(n.inner.flow.src_ip(), e, "the reply leaves from {e}");
        assert_eq!(n.inner.flow.src_port(), 22);
        assert_eq!(n.outer.dst, p(BOUNDARY_IP));
        let inner = inner_frame(&mut pkt);
        assert_csums_valid(&inner);
    }
    assert_eq!(port.port().num_tcp_flows(), ext.len() as u32);

    // SNAT only: an unsolicited SYN to the SNAT address goes nowhere; return traffic of a
    // guest-opened flow comes back.
    set_ext(
        &mut port,
        Some(ext4(true, None, &[])),
        Some(ext6(true, None, &[])),
    );
    for (snat, private, remote) in [
        (
            p::<IpAddr>("10.77.77.13"),
            IpAddr::Ip4(ip4(&g1)),
            p::<IpAddr>(REMOTE4),
        ),
        (p("2001:db8::1"), IpAddr::Ip6(ip6(&g1)), p(REMOTE6)),
    ] {
        let syn = from_internet(&g1, remote, snat, tcp(41000, 22, flags::SYN));
        let (r, _) = inb(&mut port, &rec, syn, T0);
        assert_eq!(r, gw_drop(), "unsolicited to {snat}");
        let q = guest_pkt(&g1, private, remote, udp(5353, 53));
        let (r, mut pkt) = out(&mut port, &rec, q, T0);
        assert_eq!(r, ProcessResult::Modified);
        let n = net(&mut pkt);
        assert_eq!(n.inner.flow.src_ip(), snat);
        let sport = n.inner.flow.src_port();
        let a = from_internet(&g1, remote, snat, udp(53, sport));
        let (r, mut pkt) = inb(&mut port, &rec, a, T0);
        assert_eq!(r, ProcessResult::Modified, "return traffic to {snat}");
        let m = guest(&mut pkt);
        assert_eq!((m.flow.dst_ip(), m.flow.dst_port()), (private, 5353));
    }
}

/// New outbound flows spread over all floating IPs and never use the ephemeral IP (nor
/// SNAT) while floating IPs exist.
#[test]
fn external_ip_balanced_over_floating_ips() {
    let rec = Recorder::new("external_ip_balanced_over_floating_ips");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let limits = PortLimits {
        uft: NonZeroU32::new(256).unwrap(),
        tcp: NonZeroU32::new(256).unwrap(),
        ..PortLimits::for_tests()
    };
    let mut port = setup_with_limits(g1.clone(), &tables, limits);
    add_igw_routes(&mut port, None);
    let fips4 = ["10.60.1.30", "10.60.1.31", "10.60.1.32"];
    let fips6 = ["2001:db8::30", "2001:db8::31", "2001:db8::32"];
    set_ext(
        &mut port,
        Some(ext4(true, Some("10.60.1.20"), &fips4)),
        Some(ext6(true, Some("2001:db8::2"), &fips6)),
    );
    let mut seen: BTreeMap<IpAddr, u32> = BTreeMap::new();
    for i in 0..32u16 {
        for (private, remote) in [
            (IpAddr::Ip4(ip4(&g1)), p::<IpAddr>(REMOTE4)),
            (IpAddr::Ip6(ip6(&g1)), p(REMOTE6)),
        ] {
            let pkt = guest_pkt(&g1, private, remote, udp(20000 + i * 7, 443));
            let (r, mut pkt) = out(&mut port, &rec, pkt, T0);
            assert_eq!(r, ProcessResult::Modified);
            let n = net(&mut pkt);
            assert_eq!(
                n.inner.flow.src_port(),
                20000 + i * 7,
                "1:1 NAT keeps ports"
            );
            *seen.entry(n.inner.flow.src_ip()).or_default() += 1;
        }
    }
    let want: Vec<IpAddr> = fips4.iter().chain(&fips6).map(|s| p::<IpAddr>(s)).collect();
    let got: Vec<IpAddr> = seen.keys().copied().collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        got, want_sorted,
        "every floating IP used, nothing else: {seen:?}"
    );
    assert_eq!(seen.values().sum::<u32>(), 64);
    assert_eq!(port.port().num_flows("uft", Direction::Out), Some(64));
    assert_eq!(port.port().num_flows("nat", Direction::Out), Some(64));
}

/// Replacing the external IPs stops the old ones being admitted (new and existing flows)
/// and admits the new ones.
#[test]
fn external_ip_reconfigurable() {
    let rec = Recorder::new("external_ip_reconfigurable");
    let tables = Arc::new(VpcTables::default());
    let (g1, mut port) = internet_port(&tables);
    let private = IpAddr::Ip4(ip4(&g1));
    let remote: IpAddr = p(REMOTE4);
    let (old, new): (IpAddr, IpAddr) = (p("10.60.1.20"), p("10.60.1.21"));
    set_ext(&mut port, Some(ext4(false, Some("10.60.1.20"), &[])), None);
    let syn = |dst, sport| from_internet(&g1, remote, dst, tcp(sport, 22, flags::SYN));
    let (r, mut pkt) = inb(&mut port, &rec, syn(old, 40000), T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(guest(&mut pkt).flow.dst_ip(), private);
    let (r, _) = inb(&mut port, &rec, syn(new, 40001), T0);
    assert_eq!(r, gw_drop(), "{new} not ours yet");

    let e = port.port().epoch();
    set_ext(&mut port, Some(ext4(false, Some("10.60.1.21"), &[])), None);
    assert_eq!(port.port().epoch(), e + 1);
    assert_eq!(
        port.cfg().ipv4().unwrap().external_ips.ephemeral_ip,
        Some(p("10.60.1.21"))
    );
    // The established flow to the old IP no longer gets through...
    let ack = from_internet(&g1, remote, old, tcp(40000, 22, flags::ACK));
    let (r, _) = inb(&mut port, &rec, ack, T0);
    assert_eq!(r, gw_drop(), "existing flow to the removed IP");
    // ...nor a new one; the new IP is admitted and replies leave from it.
    let (r, _) = inb(&mut port, &rec, syn(old, 40002), T0);
    assert_eq!(r, gw_drop(), "new flow to the removed IP");
    let (r, mut pkt) = inb(&mut port, &rec, syn(new, 40003), T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(guest(&mut pkt).flow.dst_ip(), private);
    let reply = guest_pkt(
        &g1,
        private,
        remote,
        L4::Tcp {
            sport: 22,
            dport: 40003,
            flags: flags::SYN | flags::ACK,
            seq: 1,
            ack: 1001,
        },
    );
    let (r, mut pkt) = out(&mut port, &rec, reply, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(net(&mut pkt).inner.flow.src_ip(), new);
    // Outbound from the guest now uses the new IP too (no SNAT configured).
    let q = guest_pkt(&g1, private, remote, udp(1, 53));
    let (r, mut pkt) = out(&mut port, &rec, q, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(net(&mut pkt).inner.flow.src_ip(), new);
    // Removing every external IP leaves IGW traffic with no source: dropped by NAT.
    set_ext(&mut port, Some(ext4(false, None, &[])), None);
    let q = guest_pkt(&g1, private, remote, udp(2, 53));
    let (r, _) = out(&mut port, &rec, q, T0);
    assert_eq!(
        r,
        ProcessResult::Drop(DropReason::Layer {
            layer: "nat",
            reason: DenyReason::Rule
        })
    );
}

/// With every SNAT port in use, a new flow is dropped as exhaustion, its own counter, not
/// as a generic action failure.
#[test]
fn snat_exhaustion_is_a_counted_drop_reason() {
    let tables = Arc::new(VpcTables::default());
    let (g1, mut port) = internet_port(&tables);
    let mut e = ext4(true, None, &[]);
    e.snat = Some(SNatCfg {
        external_ip: p("10.77.77.13"),
        ports: 5000..=5001,
    });
    set_ext(&mut port, Some(e), None);
    let rec = Recorder::new("snat_exhaustion_is_a_counted_drop_reason");
    let remote: IpAddr = p(REMOTE4);
    for sport in [40000, 40001] {
        let pkt = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), remote, udp(sport, 53));
        assert_eq!(out(&mut port, &rec, pkt, T0).0, ProcessResult::Modified);
    }
    let pkt = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), remote, udp(40002, 53));
    assert_eq!(
        out(&mut port, &rec, pkt, T0).0,
        ProcessResult::Drop(DropReason::Exhausted { layer: "nat" })
    );
    let st = port.port().stats().out;
    assert_eq!((st.drop_exhausted, st.drop_action_failed), (1, 0));
}
