//! The VPC ports the process benchmarks run, configured as BENCH.md §3.2 describes the
//! reference's: guest a8:40:25:fa:fa:37 at 172.30.0.5 / fd00::5 in VNI 1287581 on sled
//! fd00:0:f7:101::1, V2B of everything to boundary services (fd00:99::1, VNI 99), a system
//! route for the VPC subnet and the RFD 63 default firewall rules; the test harness's table
//! limits (UFT and TCP 16, firewall/gateway/nat LFT 8096, router/overlay 1).

use opte::build::samples::{self, Sample, Side};
use opte::engine::port::{PortState, ProcessResult};
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::Packet;

use opte_api::{DhcpCfg, Direction, IpAddr, IpCidr, Vni};
use oxide_vpc::api::{
    ExternalIpCfg, FirewallRule, IpCfg, Ipv4Cfg, Ipv6Cfg, PhysNet, RouterClass, RouterTarget,
    SNatCfg, SetExternalIpsReq, TunnelEndpoint, VpcCfg,
};
use oxide_vpc::engine::{PortLimits, VpcPort};
use oxide_vpc::tables::VpcTables;
use std::collections::BTreeMap;
use std::sync::Arc;

fn p<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("a valid literal")
}

/// The benchmark guest's configuration.
pub fn cfg() -> VpcCfg {
    let dhcp = DhcpCfg {
        hostname: Some(p("testbox")),
        host_domain: Some(p("test.oxide.computer")),
        domain_search_list: vec![p("oxide.computer")],
        dns4_servers: vec![p("8.8.8.8"), p("1.1.1.1")],
        dns6_servers: vec![
            p("2001:4860:4860::8888"),
            p("2001:4860:4860::8844"),
            p("2606:4700:4700::1111"),
            p("2606:4700:4700::1001"),
        ],
    };
    fn ext<T: std::str::FromStr>(ip: &str, ports: std::ops::RangeInclusive<u16>) -> ExternalIpCfg<T>
    where
        T::Err: std::fmt::Debug,
    {
        ExternalIpCfg {
            snat: Some(SNatCfg {
                external_ip: p(ip),
                ports,
            }),
            ephemeral_ip: None,
            floating_ips: vec![],
        }
    }
    VpcCfg {
        ip_cfg: IpCfg::DualStack {
            ipv4: Ipv4Cfg {
                vpc_subnet: p("172.30.0.0/22"),
                private_ip: p("172.30.0.5"),
                gateway_ip: p("172.30.0.1"),
                external_ips: ext("10.77.77.13", 1025..=4096),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            },
            ipv6: Ipv6Cfg {
                vpc_subnet: p("fd00::/64"),
                private_ip: p("fd00::5"),
                gateway_ip: p("fd00::1"),
                external_ips: ext("2001:db8::1", 4097..=8192),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            },
        },
        guest_mac: samples::GUEST_MAC,
        gateway_mac: samples::GW_MAC,
        vni: Vni::new(samples::GUEST_VNI).expect("a 24-bit VNI"),
        phys_ip: samples::SLED_IP6,
        dhcp,
    }
}

fn base_port(limits: PortLimits) -> VpcPort {
    let cfg = cfg();
    let tables = Arc::new(VpcTables::default());
    let me = PhysNet {
        ether: cfg.guest_mac,
        ip: cfg.phys_ip,
        vni: cfg.vni,
    };
    tables.v2p.add(IpAddr::Ip4(samples::GUEST_IP4), me).unwrap();
    tables.v2p.add(IpAddr::Ip6(samples::GUEST_IP6), me).unwrap();
    let tep = TunnelEndpoint {
        ip: samples::BOUNDARY_IP6,
        vni: Vni::new(samples::BOUNDARY_VNI).expect("a 24-bit VNI"),
    };
    tables.v2b.set(p("0.0.0.0/0"), &[tep]).expect("a V2B entry");
    tables.v2b.set(p("::/0"), &[tep]).expect("a V2B entry");
    let sub: IpCidr = p("172.30.0.0/22");
    let mut port = VpcPort::new("bench0", cfg, 1500, tables, limits, 0x0b5e)
        .expect("a valid port configuration");
    port.add_router_entry(sub, RouterTarget::VpcSubnet(sub), RouterClass::System)
        .expect("a valid route");
    port.set_fw_rules(&default_fw_rules())
        .expect("valid firewall rules");
    port
}

/// The RFD 63 default inbound rules of the benchmark guest's VPC.
pub fn default_fw_rules() -> Vec<FirewallRule> {
    let vni = samples::GUEST_VNI;
    [
        format!("dir=in action=allow priority=65534 hosts=vni={vni}"),
        "dir=in action=allow priority=65534 protocol=tcp port=22".into(),
        "dir=in action=allow priority=65534 protocol=icmp".into(),
    ]
    .iter()
    .map(|s| p(s))
    .collect()
}

/// The hairpin port: SNAT only, no internet-gateway routes.
pub fn hairpin_port() -> VpcPort {
    let mut port = base_port(PortLimits::for_tests());
    port.port_mut().start();
    port
}

/// The ULP port: SNAT plus ephemeral IPs 10.60.1.20 and 2001:db8::2 and default routes to
/// the internet gateway; the slow-path variant admits every inbound flow.
pub fn ulp_port(slow: bool) -> VpcPort {
    ulp_port_with(slow, PortLimits::for_tests())
}

/// [`ulp_port`] with other table limits (the `port` fuzz target's are small, to be hit).
pub fn ulp_port_with(slow: bool, limits: PortLimits) -> VpcPort {
    let mut port = base_port(limits);
    for d in ["0.0.0.0/0", "::/0"] {
        port.add_router_entry(
            p(d),
            RouterTarget::InternetGateway(None),
            RouterClass::System,
        )
        .expect("a valid route");
    }
    let c = port.cfg().clone();
    let mut e4 = c.ipv4().map(|c| c.external_ips.clone()).unwrap_or_default();
    let mut e6 = c.ipv6().map(|c| c.external_ips.clone()).unwrap_or_default();
    e4.ephemeral_ip = Some(samples::EPHEMERAL_IP4);
    e6.ephemeral_ip = Some(samples::EPHEMERAL_IP6);
    port.set_external_ips(&SetExternalIpsReq {
        port_name: "bench0".into(),
        external_ips_v4: Some(e4),
        external_ips_v6: Some(e6),
        inet_gw_map: None,
    })
    .expect("valid external IPs");
    if slow {
        let allow: FirewallRule = p("dir=in action=allow priority=1000 protocol=any");
        port.set_fw_rules(&[allow]).expect("a valid firewall rule");
    }
    port.port_mut().start();
    debug_assert_eq!(port.port().state(), PortState::Running);
    port
}

/// Forget every flow the port holds, as the slow-path benchmark does before each packet:
/// the UFT, every layer's flows and the TCP table too, so that a TCP case pays for
/// creating its connection entry as a true first packet does. (The reference's benchmark
/// keeps the TCP table, which flatters its TCP first-packet figures.)
pub fn clear_flows(port: &mut VpcPort) {
    let p = port.port_mut();
    let _ = p.clear_uft();
    let _ = p.clear_tcp_flows();
    for l in ["gateway", "firewall", "router", "nat", "overlay"] {
        let _ = p.clear_lft(l);
    }
}

/// Parse a sample's packet with its shape and process it: the timed work of a process
/// benchmark (freeing the result is the caller's).
#[inline(never)]
pub fn process(port: &mut VpcPort, side: Side, mut pkt: Packet) -> (ProcessResult, Packet) {
    let (dir, parsed) = match side {
        Side::Guest => (Direction::Out, Parsed::from_guest(&mut pkt)),
        Side::Network => (Direction::In, Parsed::from_network(&mut pkt)),
    };
    let r = match parsed {
        Ok(parsed) => port.process(dir, &mut pkt, &parsed, Moment::ZERO),
        Err(_) => ProcessResult::Drop(opte::engine::stats::DropReason::TransformFailed),
    };
    (r, pkt)
}

/// The outbound packet of the same flow as a ULP case (its "OUT twin").
pub fn out_twin(case: &str) -> Option<Sample> {
    samples::ulp(&case.replace("-IN-", "-OUT-"))
}
