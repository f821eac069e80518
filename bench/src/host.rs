//! The ULP port of [`crate::vpc`] hosted in an `xde` core, configured through its control
//! dispatch, so the packet loop can time the whole host datapath: port lookup, the port's
//! lock, processing, the route cache and the next-hop MACs.

use crate::vpc;
use opte::build::samples::{self, Side};
use opte::engine::time::Moment;
use opte::packet::Packet;
use opte_api::{IpCidr, Ipv6Addr, MacAddr, OpteError, SetXdeUnderlayReq};
use oxide_vpc::api::PortAttach;
use oxide_vpc::api::cmd::{self, Command};
use oxide_vpc::api::{
    AddRouterEntryReq, CreateXdeReq, RouterClass, RouterTarget, SetExternalIpsReq, SetFwRulesReq,
    SetVirt2BoundaryReq, TunnelEndpoint,
};
use std::sync::Arc;
use xde::core::PortMap;
use xde::port::XdePort;
use xde::route::{Route, RouteError};
use xde::{Emit, Host, Link, Xde};

/// An OS whose every next hop is one fixed router on underlay 1.
pub struct BenchHost;

impl Host for BenchHost {
    fn attach_underlay(&self, _: &str, _: &str) -> Result<(), OpteError> {
        Ok(())
    }
    fn detach_underlay(&self) {}
    fn create_port(
        &self,
        _: &str,
        _: MacAddr,
        _: u32,
        _: &PortAttach,
        _: u32,
    ) -> Result<(), OpteError> {
        Ok(())
    }
    fn delete_port(&self, _: &str) {}
    fn now(&self) -> opte::engine::time::Moment {
        opte::engine::time::Moment::ZERO
    }
    fn next_hop(&self, _: Ipv6Addr, _: u16) -> Result<Route, RouteError> {
        Ok(Route {
            link: Link::U1,
            src_mac: MacAddr::from_const([0xa8, 0x40, 0x25, 0, 0, 1]),
            dst_mac: MacAddr::from_const([0xa8, 0x40, 0x25, 0, 0, 2]),
        })
    }
}

fn run<C: Command>(x: &Xde<BenchHost>, req: &C::Req) {
    let bytes = postcard::to_allocvec(req).expect("a request encodes");
    x.execute(C::CMD, &bytes).expect("a bench command succeeds");
}

/// A host with the ULP benchmark port (`bench0`) made through control commands.
pub fn ulp_host() -> (Xde<BenchHost>, Arc<XdePort>) {
    let x = Xde::new(BenchHost, 0x0b5e);
    run::<cmd::SetXdeUnderlay>(
        &x,
        &SetXdeUnderlayReq {
            u1: "u1".into(),
            u2: "u2".into(),
        },
    );
    let port_name = || "bench0".to_string();
    run::<cmd::CreateXde>(
        &x,
        &CreateXdeReq {
            linkid: 0,
            xde_devname: port_name(),
            cfg: vpc::cfg(),
            mtu: None,
            attach: PortAttach::Netdev,
        },
    );
    let sub: IpCidr = "172.30.0.0/22".parse().expect("a CIDR");
    let routes = [
        (sub, RouterTarget::VpcSubnet(sub)),
        (
            "0.0.0.0/0".parse().expect("a CIDR"),
            RouterTarget::InternetGateway(None),
        ),
        (
            "::/0".parse().expect("a CIDR"),
            RouterTarget::InternetGateway(None),
        ),
    ];
    for (dest, target) in routes {
        run::<cmd::AddRouterEntry>(
            &x,
            &AddRouterEntryReq {
                port_name: port_name(),
                dest,
                target,
                class: RouterClass::System,
            },
        );
    }
    run::<cmd::SetFwRules>(
        &x,
        &SetFwRulesReq {
            port_name: port_name(),
            rules: vpc::default_fw_rules(),
        },
    );
    let c = vpc::cfg();
    let mut e4 = c.ipv4().map(|c| c.external_ips.clone()).unwrap_or_default();
    let mut e6 = c.ipv6().map(|c| c.external_ips.clone()).unwrap_or_default();
    e4.ephemeral_ip = Some(samples::EPHEMERAL_IP4);
    e6.ephemeral_ip = Some(samples::EPHEMERAL_IP6);
    run::<cmd::SetExternalIps>(
        &x,
        &SetExternalIpsReq {
            port_name: port_name(),
            external_ips_v4: Some(e4),
            external_ips_v6: Some(e6),
            inet_gw_map: None,
        },
    );
    let tep = TunnelEndpoint {
        ip: samples::BOUNDARY_IP6,
        vni: opte_api::Vni::new(samples::BOUNDARY_VNI).expect("a 24-bit VNI"),
    };
    for vip in ["0.0.0.0/0", "::/0"] {
        run::<cmd::SetVirt2Boundary>(
            &x,
            &SetVirt2BoundaryReq {
                vip: vip.parse().expect("a CIDR"),
                tep: vec![tep],
            },
        );
    }
    let port = x.port("bench0").expect("the port exists");
    (x, port)
}

/// One packet through the host: `tx` from the guest or `rx_in` from underlay 1 (`ports`:
/// a snapshot of the port map, [`Xde::ports_snapshot`]). Returns how
/// many things the OS was asked to do (1 for a packet sent or delivered).
#[inline(never)]
pub fn process(
    x: &Xde<BenchHost>,
    port: &Arc<XdePort>,
    ports: &PortMap,
    side: Side,
    pkt: Packet,
    out: &mut Vec<Emit>,
) -> usize {
    out.clear();
    match side {
        Side::Guest => x.tx(port, pkt, Moment::ZERO, out),
        // As the daemon's workers do: the port looked up in the worker's own snapshot.
        Side::Network => x.rx_in(ports, Link::U1, pkt, Moment::ZERO, out),
    }
    out.len()
}

/// Guest packets through the host under one acquisition of the port's lock (`tx_batch`).
/// Returns how many things the OS was asked to do.
#[inline(never)]
pub fn process_batch(
    x: &Xde<BenchHost>,
    port: &Arc<XdePort>,
    pkts: &mut Vec<Packet>,
    out: &mut Vec<Emit>,
) -> usize {
    out.clear();
    x.tx_batch(port, pkts.drain(..), Moment::ZERO, out);
    out.len()
}
