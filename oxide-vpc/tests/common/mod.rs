//! The scenario harness: canned guests (g1, g2 of the reference's test harness), a port
//! set up the way the host sets one up, packet makers for every kind of guest-side and
//! network-side traffic, and a pcap recorder that writes the packets of a failing scenario
//! to `target/scenario-pcaps/<name>.pcap`.
#![allow(dead_code)]

use opte::build::Encap;
use opte::engine::port::{PortState, ProcessResult};
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::Packet;
use opte::packet::parse::{InnerMeta, NetworkMeta, parse_guest, parse_network};
use opte::pcap::PcapWriter;
use opte::wire::ether::{ETHER_TYPE_IPV6, EtherRepr};
use opte::wire::geneve::{GeneveOpt, GeneveRepr};
use opte::wire::ip6::Ipv6Repr;
use opte::wire::udp::UdpRepr;
use opte_api::{DhcpCfg, Direction, IpAddr, IpCidr, Ipv4Addr, Ipv6Addr, MacAddr, Vni};
use oxide_vpc::api::{
    ExternalIpCfg, FirewallRule, IpCfg, Ipv4Cfg, Ipv6Cfg, PhysNet, RouterClass, RouterTarget,
    SNatCfg, SetExternalIpsReq, TunnelEndpoint, VpcCfg,
};
use oxide_vpc::engine::{PortLimits, VpcPort};
use oxide_vpc::tables::VpcTables;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const G1_MAC: &str = "a8:40:25:fa:fa:37";
pub const GW_MAC: &str = "a8:40:25:ff:77:77";
pub const G2_MAC: &str = "a8:40:25:fa:fa:38";
pub const VNI: u32 = 1_287_581;
pub const BOUNDARY_IP: &str = "fd00:99::1";
pub const BOUNDARY_VNI: u32 = 99;
pub const TEP_MAC: &str = "a8:40:25:77:77:77";
pub const REMOTE4: &str = "93.184.216.34";
pub const REMOTE6: &str = "2606:2800:220:1:248:1893:25c8:1946";

pub fn p<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

pub fn vni(v: u32) -> Vni {
    Vni::new(v).unwrap()
}

fn guest_cfg(last: u8, mac: &str, sled: &str) -> VpcCfg {
    let dhcp = DhcpCfg {
        hostname: Some(p("testbox")),
        host_domain: Some(p("test.oxide.computer")),
        domain_search_list: vec![p("oxide.computer")],
        ..DhcpCfg::default()
    };
    VpcCfg {
        ip_cfg: IpCfg::DualStack {
            ipv4: Ipv4Cfg {
                vpc_subnet: p("172.30.0.0/22"),
                private_ip: p(&format!("172.30.0.{last}")),
                gateway_ip: p("172.30.0.1"),
                external_ips: ExternalIpCfg {
                    snat: Some(SNatCfg {
                        external_ip: p("10.77.77.13"),
                        ports: 1025..=4096,
                    }),
                    ephemeral_ip: None,
                    floating_ips: vec![],
                },
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            },
            ipv6: Ipv6Cfg {
                vpc_subnet: p("fd00::/64"),
                private_ip: p(&format!("fd00::{last}")),
                gateway_ip: p("fd00::1"),
                external_ips: ExternalIpCfg {
                    snat: Some(SNatCfg {
                        external_ip: p("2001:db8::1"),
                        ports: 4097..=8192,
                    }),
                    ephemeral_ip: None,
                    floating_ips: vec![],
                },
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            },
        },
        guest_mac: p(mac),
        gateway_mac: p(GW_MAC),
        vni: vni(VNI),
        phys_ip: p(sled),
        dhcp,
    }
}

pub fn g1_cfg() -> VpcCfg {
    guest_cfg(5, G1_MAC, "fd00:0:f7:101::1")
}

pub fn g2_cfg() -> VpcCfg {
    guest_cfg(6, G2_MAC, "fd00:0:f7:102::1")
}

pub fn ip4(c: &VpcCfg) -> Ipv4Addr {
    c.ipv4().unwrap().private_ip
}

pub fn ip6(c: &VpcCfg) -> Ipv6Addr {
    c.ipv6().unwrap().private_ip
}

pub fn phys(c: &VpcCfg) -> PhysNet {
    PhysNet {
        ether: c.guest_mac,
        ip: c.phys_ip,
        vni: c.vni,
    }
}

/// Register a guest's private IPs in V2P, as the host does when it creates the port.
pub fn register(tables: &VpcTables, c: &VpcCfg) {
    if let Some(v4) = c.ipv4() {
        tables.v2p.add(IpAddr::Ip4(v4.private_ip), phys(c)).unwrap();
    }
    if let Some(v6) = c.ipv6() {
        tables.v2p.add(IpAddr::Ip6(v6.private_ip), phys(c)).unwrap();
    }
}

/// The RFD 63 default inbound rules the control plane installs.
pub fn default_fw_rules(v: Vni) -> Vec<FirewallRule> {
    FirewallRule::vpc_defaults(v)
}

/// A running port set up like the reference harness: V2P of itself, V2B defaults to
/// boundary services, a system route for the VPC IPv4 subnet, the default firewall rules.
/// Epoch ends at 3.
pub fn setup(cfg: VpcCfg, tables: &Arc<VpcTables>) -> VpcPort {
    setup_with_limits(cfg, tables, PortLimits::for_tests())
}

/// [`setup`] with other table limits.
pub fn setup_with_limits(cfg: VpcCfg, tables: &Arc<VpcTables>, limits: PortLimits) -> VpcPort {
    register(tables, &cfg);
    let tep = TunnelEndpoint {
        ip: p(BOUNDARY_IP),
        vni: vni(BOUNDARY_VNI),
    };
    tables.v2b.set(p("0.0.0.0/0"), &[tep]).unwrap();
    tables.v2b.set(p("::/0"), &[tep]).unwrap();
    let sub = IpCidr::Ip4(cfg.ipv4().unwrap().vpc_subnet);
    let v = cfg.vni;
    let mut port = VpcPort::new("g", cfg, 1500, tables.clone(), limits, 7).unwrap();
    assert_eq!(port.port().epoch(), 1);
    port.add_router_entry(sub, RouterTarget::VpcSubnet(sub), RouterClass::System)
        .unwrap();
    port.set_fw_rules(&default_fw_rules(v)).unwrap();
    port.port_mut().start();
    assert_eq!(port.port().state(), PortState::Running);
    assert_eq!(port.port().epoch(), 3);
    port
}

/// Add the internet-gateway default routes.
pub fn add_igw_routes(port: &mut VpcPort, igw: Option<oxide_vpc::api::Uuid>) {
    for d in ["0.0.0.0/0", "::/0"] {
        port.add_router_entry(
            p(d),
            RouterTarget::InternetGateway(igw),
            RouterClass::System,
        )
        .unwrap();
    }
}

pub fn set_ephemeral(port: &mut VpcPort, v4: Option<&str>, v6: Option<&str>) {
    let c = port.cfg().clone();
    let mut e4 = c.ipv4().unwrap().external_ips.clone();
    let mut e6 = c.ipv6().unwrap().external_ips.clone();
    e4.ephemeral_ip = v4.map(p);
    e6.ephemeral_ip = v6.map(p);
    port.set_external_ips(&SetExternalIpsReq {
        port_name: "g".into(),
        external_ips_v4: Some(e4),
        external_ips_v6: Some(e6),
        inet_gw_map: None,
    })
    .unwrap();
}

pub use opte::build::samples::{L4, frame};

pub fn tcp(sport: u16, dport: u16, flags: u8) -> L4 {
    L4::tcp(sport, dport, flags, 1000, 0)
}

pub fn udp(sport: u16, dport: u16) -> L4 {
    L4::Udp { sport, dport }
}

/// A guest's outbound packet: from its MAC to the gateway's.
pub fn guest_pkt(c: &VpcCfg, src: IpAddr, dst: IpAddr, l4: L4) -> Packet {
    Packet::copy_from(&frame(c.guest_mac, c.gateway_mac, src, dst, l4, &[]))
}

/// Wrap an inner frame in Geneve as it arrives from the underlay.
pub fn encap(src: Ipv6Addr, dst: Ipv6Addr, v: Vni, external: bool, inner: &[u8]) -> Packet {
    let options = if external {
        vec![GeneveOpt::oxide_external()]
    } else {
        vec![]
    };
    let outer = Encap {
        eth: EtherRepr {
            dst: MacAddr::ZERO,
            src: MacAddr::ZERO,
            ether_type: ETHER_TYPE_IPV6,
            vlan: None,
        },
        ip6: Ipv6Repr::new(src, dst, 17),
        udp: UdpRepr::new(7777, 6081),
        geneve: GeneveRepr::new(v, options),
    }
    .header_bytes(inner.len());
    Packet::from_segments(&[&outer, inner])
}

/// An inbound packet from the internet (via boundary services) to `dst` at guest `c`.
pub fn from_internet(c: &VpcCfg, src: IpAddr, dst: IpAddr, l4: L4) -> Packet {
    let inner = frame(p(TEP_MAC), c.guest_mac, src, dst, l4, &[]);
    encap(p(BOUNDARY_IP), c.phys_ip, c.vni, true, &inner)
}

/// Records every packet of a scenario; dropped while panicking, it writes them as a pcap.
pub struct Recorder {
    name: String,
    frames: RefCell<Vec<Vec<u8>>>,
}

impl Recorder {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            frames: RefCell::new(Vec::new()),
        }
    }

    pub fn record(&self, pkt: &Packet) {
        self.frames.borrow_mut().push(pkt.to_vec());
    }

    pub fn record_bytes(&self, b: &[u8]) {
        self.frames.borrow_mut().push(b.to_vec());
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scenario-pcaps");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{}.pcap", self.name));
        if let Ok(f) = std::fs::File::create(&path)
            && let Ok(mut w) = PcapWriter::new(f)
        {
            for (i, fr) in self.frames.borrow().iter().enumerate() {
                let _ = w.write_frame(i as u64, fr);
            }
            let _ = w.flush();
            eprintln!("scenario packets written to {}", path.display());
        }
    }
}

/// Process an outbound packet, recording it before and after.
pub fn out(
    port: &mut VpcPort,
    rec: &Recorder,
    mut pkt: Packet,
    now: Moment,
) -> (ProcessResult, Packet) {
    rec.record(&pkt);
    let parsed = Parsed::Guest(parse_guest(&mut pkt).unwrap());
    let r = port.process(Direction::Out, &mut pkt, &parsed, now);
    match &r {
        ProcessResult::Modified => rec.record(&pkt),
        ProcessResult::Hairpin(h) => rec.record_bytes(h),
        ProcessResult::Drop(_) => {}
    }
    (r, pkt)
}

/// Process an inbound packet, recording it before and after.
pub fn inb(
    port: &mut VpcPort,
    rec: &Recorder,
    mut pkt: Packet,
    now: Moment,
) -> (ProcessResult, Packet) {
    rec.record(&pkt);
    let parsed = Parsed::Network(parse_network(&mut pkt).unwrap());
    let r = port.process(Direction::In, &mut pkt, &parsed, now);
    if r == ProcessResult::Modified {
        rec.record(&pkt);
    }
    (r, pkt)
}

pub fn net(pkt: &mut Packet) -> NetworkMeta {
    parse_network(pkt).unwrap()
}

pub fn guest(pkt: &mut Packet) -> InnerMeta {
    parse_guest(pkt).unwrap()
}

/// Assert a port's rule and flow counts: (layer, rules in, rules out).
pub fn assert_rules(port: &VpcPort, want: &[(&str, usize, usize)]) {
    for (l, i, o) in want {
        assert_eq!(
            (
                port.port().num_rules(l, Direction::In).unwrap(),
                port.port().num_rules(l, Direction::Out).unwrap()
            ),
            (*i, *o),
            "rules of layer {l}"
        );
    }
}

pub fn flows(port: &VpcPort, layer: &str) -> u32 {
    port.port().num_flows(layer, Direction::Out).unwrap()
}

/// The result of a packet denied by `layer` for `reason`.
pub fn layer_drop(layer: &'static str, reason: DenyReason) -> ProcessResult {
    ProcessResult::Drop(DropReason::Layer { layer, reason })
}

/// The frame of a hairpin reply; anything else fails the test.
pub fn hairpin_frame(r: ProcessResult) -> Vec<u8> {
    match r {
        ProcessResult::Hairpin(f) => f,
        other => panic!("expected a hairpin reply, got {other:?}"),
    }
}

/// Parse a guest-side frame and assert its IPv4 header checksum and its L4 checksum (over
/// the pseudo-header, as the receiver checks them) verify. A UDP checksum of zero over
/// IPv4 means "none" and passes.
pub fn assert_csums_valid(frame: &[u8]) -> InnerMeta {
    use opte::packet::parse::{L3Info, UlpKind};
    use opte::wire::csum::{Checksum, pseudo_v4, pseudo_v6};
    let m = parse_guest(&mut Packet::copy_from(frame)).unwrap();
    let ulp = m.ulp.expect("an L4 header");
    let l4_off = ulp.loc.off as usize;
    let mut c;
    match m.l3.expect("an IP header") {
        L3Info::Ipv4(i) => {
            let off = i.loc.off as usize;
            let hdr = &frame[off..off + i.hdr_len as usize];
            assert_eq!(Checksum::of(hdr).fold(), 0xffff, "IPv4 header checksum");
            let l4 = &frame[l4_off..off + i.total_len as usize];
            c = Checksum::of(l4);
            let p = match ulp.kind {
                UlpKind::Icmpv4 => None,
                UlpKind::Tcp => Some(6),
                _ => Some(17),
            };
            if ulp.kind == UlpKind::Udp && l4[6..8] == [0, 0] {
                return m;
            }
            if let Some(p) = p {
                let src: [u8; 4] = hdr[12..16].try_into().unwrap();
                let dst: [u8; 4] = hdr[16..20].try_into().unwrap();
                c.add(pseudo_v4(src, dst, p, l4.len() as u16));
            }
        }
        L3Info::Ipv6(i) => {
            let off = i.loc.off as usize;
            let l4 = &frame[l4_off..off + 40 + i.payload_len as usize];
            let src: [u8; 16] = frame[off + 8..off + 24].try_into().unwrap();
            let dst: [u8; 16] = frame[off + 24..off + 40].try_into().unwrap();
            c = Checksum::of(l4);
            c.add(pseudo_v6(src, dst, i.proto, l4.len() as u32));
        }
    }
    assert_eq!(c.fold(), 0xffff, "L4 checksum of {:?}", ulp.kind);
    m
}

/// The inner frame of an encapsulated packet (what the receiving guest will see).
pub fn inner_frame(pkt: &mut Packet) -> Vec<u8> {
    let n = parse_network(pkt).unwrap();
    pkt.to_vec()[n.outer.encap_len()..].to_vec()
}

/// The bytes after a parsed frame's L4 header.
pub fn l4_body<'a>(frame: &'a [u8], m: &InnerMeta) -> &'a [u8] {
    let off = m.body.off as usize;
    &frame[off..off + m.body_len as usize]
}
