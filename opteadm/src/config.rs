//! Port configuration from the command line: `create-xde`'s [`VpcCfg`] and the external
//! addresses of `create-xde` and `set-external-ips`.
//!
//! The families must agree: an IPv4 port gets IPv4 subnet, gateway and external addresses
//! (IPv6 ones only if it is dual stack), and the reverse. A mismatch is an error naming
//! the argument, never a silently dropped address.

use crate::Error;
use crate::cli::{CreateXdeArgs, ExternalNetArgs};
use opte_api::{DhcpCfg, IpAddr, IpCidr, Ipv4Addr, Ipv6Addr};
use oxide_vpc::api::{ExternalIpCfg, IpCfg, Ipv4Cfg, Ipv6Cfg, SNatCfg, VpcCfg};
use std::collections::BTreeMap;

/// External addresses by family: `None` for a family none was given of.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExternalIps {
    /// The IPv4 ones.
    pub v4: Option<ExternalIpCfg<Ipv4Addr>>,
    /// The IPv6 ones.
    pub v6: Option<ExternalIpCfg<Ipv6Addr>>,
}

impl ExternalNetArgs {
    /// The addresses given, split by family.
    pub fn split(&self) -> ExternalIps {
        let mut v4 = ExternalIpCfg::<Ipv4Addr>::default();
        let mut v6 = ExternalIpCfg::<Ipv6Addr>::default();
        if let (Some(ip), Some(start), Some(end)) = (self.snat_ip, self.snat_start, self.snat_end) {
            let ports = start..=end;
            match ip {
                IpAddr::Ip4(external_ip) => v4.snat = Some(SNatCfg { external_ip, ports }),
                IpAddr::Ip6(external_ip) => v6.snat = Some(SNatCfg { external_ip, ports }),
            }
        }
        match self.ephemeral_ip {
            Some(IpAddr::Ip4(a)) => v4.ephemeral_ip = Some(a),
            Some(IpAddr::Ip6(a)) => v6.ephemeral_ip = Some(a),
            None => {}
        }
        (v4.floating_ips, v6.floating_ips) = split_by_family(&self.floating_ip);
        ExternalIps {
            v4: (v4 != ExternalIpCfg::default()).then_some(v4),
            v6: (v6 != ExternalIpCfg::default()).then_some(v6),
        }
    }
}

/// The configuration `create-xde` asks for.
pub fn vpc_cfg(a: &CreateXdeArgs) -> Result<VpcCfg, Error> {
    let ext = a.external.split();
    let ipv6_extra = |ext6: Option<ExternalIpCfg<Ipv6Addr>>| -> Result<Option<Ipv6Cfg>, Error> {
        let (Some(private_ip), Some(vpc_subnet), Some(gateway_ip)) =
            (a.private_ipv6, a.vpc_ipv6_subnet, a.gateway_ipv6)
        else {
            return Ok(None);
        };
        Ok(Some(Ipv6Cfg {
            vpc_subnet,
            private_ip,
            gateway_ip,
            external_ips: ext6.unwrap_or_default(),
            attached_subnets: BTreeMap::new(),
            transit_ips: BTreeMap::new(),
        }))
    };
    let ip_cfg = match (a.private_ip, a.vpc_subnet, a.gateway_ip) {
        (IpAddr::Ip4(private_ip), IpCidr::Ip4(vpc_subnet), IpAddr::Ip4(gateway_ip)) => {
            let ipv4 = Ipv4Cfg {
                vpc_subnet,
                private_ip,
                gateway_ip,
                external_ips: ext.v4.unwrap_or_default(),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            };
            let has_v6_external = ext.v6.is_some();
            match ipv6_extra(ext.v6)? {
                Some(ipv6) => IpCfg::DualStack { ipv4, ipv6 },
                None if has_v6_external => {
                    return Err(Error::Usage(
                        "IPv6 external addresses need an IPv6 port (--private-ipv6)".into(),
                    ));
                }
                None => IpCfg::Ipv4(ipv4),
            }
        }
        (IpAddr::Ip6(private_ip), IpCidr::Ip6(vpc_subnet), IpAddr::Ip6(gateway_ip)) => {
            if a.private_ipv6.is_some() {
                return Err(Error::Usage(
                    "--private-ipv6 adds IPv6 to an IPv4 port; --private-ip is already IPv6".into(),
                ));
            }
            if ext.v4.is_some() {
                return Err(Error::Usage(
                    "IPv4 external addresses need an IPv4 port (--private-ip)".into(),
                ));
            }
            IpCfg::Ipv6(Ipv6Cfg {
                vpc_subnet,
                private_ip,
                gateway_ip,
                external_ips: ext.v6.unwrap_or_default(),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            })
        }
        (private, subnet, gateway) => {
            let (what, value) = if cidr_family(subnet) != family(private) {
                ("--vpc-subnet", subnet.to_string())
            } else {
                ("--gateway-ip", gateway.to_string())
            };
            return Err(Error::Usage(format!(
                "mixed IP families: --private-ip {private} is {}, {what} {value} is not",
                family(private)
            )));
        }
    };
    let (dns4_servers, dns6_servers) = split_by_family(&a.dns_servers);
    Ok(VpcCfg {
        ip_cfg,
        guest_mac: a.guest_mac,
        gateway_mac: a.gateway_mac,
        vni: a.vpc_vni,
        phys_ip: a.src_underlay_addr,
        dhcp: DhcpCfg {
            hostname: a.hostname.clone(),
            host_domain: a.host_domain.clone(),
            domain_search_list: a.domain_search_list.clone(),
            dns4_servers,
            dns6_servers,
        },
    })
}

fn family(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::Ip4(_) => "IPv4",
        IpAddr::Ip6(_) => "IPv6",
    }
}

fn cidr_family(c: IpCidr) -> &'static str {
    match c {
        IpCidr::Ip4(_) => "IPv4",
        IpCidr::Ip6(_) => "IPv6",
    }
}

fn split_by_family(ips: &[IpAddr]) -> (Vec<Ipv4Addr>, Vec<Ipv6Addr>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for ip in ips {
        match *ip {
            IpAddr::Ip4(a) => v4.push(a),
            IpAddr::Ip6(a) => v6.push(a),
        }
    }
    (v4, v6)
}
