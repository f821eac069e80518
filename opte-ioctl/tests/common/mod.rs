//! What the client tests share: a host core on a host that accepts everything, handles
//! onto it, and a port configuration.
#![allow(dead_code)] // each test binary uses its own part of this

use opte_api::{ControlRequest, ControlResponse, DhcpCfg, MacAddr};
use opte_ioctl::{InProcess, OpteHdl};
use oxide_vpc::api::{ExternalIpCfg, IpCfg, Ipv4Cfg, Ipv6Cfg, VpcCfg};
use std::collections::BTreeMap;
use std::sync::Arc;
use xde::Xde;
use xde::host::NullHost;

pub type TestXde = Arc<Xde<NullHost>>;

pub fn xde() -> TestXde {
    Arc::new(Xde::new(NullHost, 0x0badc0de))
}

/// A handle onto `xde` through its socket-shaped dispatch.
pub fn hdl(xde: &TestXde) -> OpteHdl {
    let x = xde.clone();
    OpteHdl::new(InProcess::new(move |r: &ControlRequest| x.dispatch(r)))
}

/// A handle whose every request passes through `f` on its way to `xde`.
pub fn hdl_with(
    xde: &TestXde,
    f: impl Fn(&ControlRequest, &dyn Fn(&ControlRequest) -> ControlResponse) -> ControlResponse
    + 'static,
) -> OpteHdl {
    let x = xde.clone();
    OpteHdl::new(InProcess::new(move |r: &ControlRequest| {
        f(r, &|r: &ControlRequest| x.dispatch(r))
    }))
}

/// A dual-stack guest `n` (1..=250) of VPC 1287581 on sled fd00:0:f7:101::1.
pub fn cfg(n: u8) -> VpcCfg {
    VpcCfg {
        ip_cfg: IpCfg::DualStack {
            ipv4: Ipv4Cfg {
                vpc_subnet: "172.30.0.0/22".parse().unwrap(),
                private_ip: format!("172.30.0.{}", n + 4).parse().unwrap(),
                gateway_ip: "172.30.0.1".parse().unwrap(),
                external_ips: ExternalIpCfg::default(),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            },
            ipv6: Ipv6Cfg {
                vpc_subnet: "fd00::/64".parse().unwrap(),
                private_ip: format!("fd00::{:x}", n + 4).parse().unwrap(),
                gateway_ip: "fd00::1".parse().unwrap(),
                external_ips: ExternalIpCfg::default(),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            },
        },
        guest_mac: MacAddr::from_const([0xa8, 0x40, 0x25, 0xfa, 0xfa, n]),
        gateway_mac: MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]),
        vni: "1287581".parse().unwrap(),
        phys_ip: "fd00:0:f7:101::1".parse().unwrap(),
        dhcp: DhcpCfg::default(),
    }
}
