//! The plugin's network configuration and its runtime environment, read and checked: every
//! mistake is the specification's error with its code, before anything is changed.
//!
//! ```json
//! {
//!   "cniVersion": "1.1.0",
//!   "name": "vpc-a",
//!   "type": "opte-cni",
//!   "vni": 100,
//!   "ipv4": { "subnet": "172.30.0.0/22", "gateway": "172.30.0.1" },
//!   "ipv6": { "subnet": "fd30::/64", "gateway": "fd30::1" },
//!   "gatewayMac": "a8:40:25:ff:77:77",
//!   "underlayIp": "fd00:99::1",
//!   "mtu": 1500,
//!   "dns": { "nameservers": ["203.0.113.53"], "search": ["vpc.example"] },
//!   "socket": "/run/opte/xde.sock",
//!   "peers": ["/run/opte/sled1.sock"],
//!   "ipam": { "type": "host-local", "ranges": [[{ "subnet": "172.30.0.0/22" }]] }
//! }
//! ```
//!
//! `ipam` is delegated to the IPAM plugin it names (found through `CNI_PATH`);
//! `addresses` (a list of CIDRs) gives fixed addresses instead. `peers` are other sleds'
//! daemons, told where this container lives (V2P) and untold on DEL. `mode: "kata"`
//! leaves the port's TAP (or, with `vhostUserDir`, a vhost-user socket) on the host and
//! writes the sandbox's Kata DAN file under `kataDir`.

use crate::spec::{self, Error, code};
use opte_api::{DhcpCfg, DomainName, IpAddr, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr, MacAddr, Vni};
use oxide_vpc::api::{ExternalIpCfg, IpCfg, Ipv4Cfg, Ipv6Cfg, VpcCfg};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Oxide's virtual gateway MAC, unless the configuration names another.
pub const DEFAULT_GATEWAY_MAC: MacAddr = MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]);

/// Where the plugin keeps what it attached, unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/opte";

/// Where Kata looks for DAN files, unless told otherwise.
pub const DEFAULT_KATA_DIR: &str = "/run/kata-containers/dans";

/// How the container's NIC is attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The port's TAP moves into the container's namespace as `CNI_IFNAME`.
    #[default]
    Netns,
    /// The device stays on the host for Kata's VMM; the sandbox's DAN file says how the
    /// guest configures it.
    Kata,
}

/// One family of the VPC.
#[derive(Clone, Debug)]
pub struct Family<C, A> {
    pub subnet: C,
    pub gateway: A,
}

/// One family as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound = "C: std::str::FromStr, A: std::str::FromStr"
)]
struct RawFamily<C, A> {
    subnet: Text<C>,
    gateway: Text<A>,
}

/// A value written as a string (an address, a prefix, a MAC), read by its `FromStr`.
#[derive(Clone, Copy, Debug)]
pub struct Text<T>(pub T);

impl<'de, T: std::str::FromStr> Deserialize<'de> for Text<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map(Text)
            .map_err(|_| serde::de::Error::custom(format!("cannot read {s:?}")))
    }
}

/// DNS for the container.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConf {
    #[serde(default)]
    pub nameservers: Vec<std::net::IpAddr>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub search: Vec<String>,
}

/// An attachment named in `cni.dev/valid-attachments` (GC).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The network configuration as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    cni_version: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    vni: u32,
    #[serde(default)]
    ipv4: Option<RawFamily<Ipv4Cidr, Ipv4Addr>>,
    #[serde(default)]
    ipv6: Option<RawFamily<Ipv6Cidr, Ipv6Addr>>,
    #[serde(default)]
    gateway_mac: Option<Text<MacAddr>>,
    underlay_ip: Text<Ipv6Addr>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    dns: DnsConf,
    #[serde(default)]
    socket: Option<PathBuf>,
    #[serde(default)]
    peers: Vec<PathBuf>,
    #[serde(default)]
    data_dir: Option<PathBuf>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    kata_dir: Option<PathBuf>,
    #[serde(default)]
    vhost_user_dir: Option<PathBuf>,
    #[serde(default)]
    ipam: Option<serde_json::Value>,
    #[serde(default)]
    addresses: Option<Vec<String>>,
    #[serde(default)]
    prev_result: Option<serde_json::Value>,
    #[serde(default, rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<Attachment>>,
    #[serde(default)]
    runtime_config: Option<RuntimeConfig>,
}

/// The runtime's dynamic settings this plugin honours (capability `mac`).
#[derive(Clone, Debug, Default, Deserialize)]
struct RuntimeConfig {
    #[serde(default)]
    mac: Option<Text<MacAddr>>,
}

/// The checked network configuration, and the raw JSON for the IPAM plugin.
#[derive(Clone, Debug)]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    pub vni: Vni,
    pub ipv4: Option<Family<Ipv4Cidr, Ipv4Addr>>,
    pub ipv6: Option<Family<Ipv6Cidr, Ipv6Addr>>,
    pub gateway_mac: MacAddr,
    pub underlay_ip: Ipv6Addr,
    pub mtu: Option<u32>,
    pub dns: DnsConf,
    pub socket: Option<PathBuf>,
    pub peers: Vec<PathBuf>,
    pub data_dir: PathBuf,
    pub mode: Mode,
    pub kata_dir: PathBuf,
    pub vhost_user_dir: Option<PathBuf>,
    /// The IPAM plugin's type, if addresses are delegated.
    pub ipam_type: Option<String>,
    /// Fixed addresses, if not.
    pub addresses: Vec<IpAddr>,
    pub prev_result: Option<spec::CniResult>,
    pub valid_attachments: Option<Vec<Attachment>>,
    pub mac: Option<MacAddr>,
    /// The configuration as the runtime gave it.
    pub json: serde_json::Value,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(code::INVALID_CONFIG, msg)
}

/// Read `bytes` (standard input) as this plugin's configuration.
pub fn parse(bytes: &[u8]) -> Result<NetConf, Error> {
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::new(code::DECODE, "the network configuration is not JSON").details(e)
    })?;
    let version = json
        .get("cniVersion")
        .ok_or_else(|| invalid("the network configuration has no cniVersion"))?
        .as_str()
        .ok_or_else(|| invalid("cniVersion is not a string"))?;
    if !spec::SUPPORTED.contains(&version) {
        return Err(Error::new(
            code::INCOMPATIBLE_VERSION,
            format!("CNI version {version} is not supported"),
        )
        .details(format!("supported: {}", spec::SUPPORTED.join(", "))));
    }
    let raw: Raw = serde_json::from_value(json.clone())
        .map_err(|e| invalid("the network configuration is invalid").details(e))?;
    let mut conf = check(raw)?;
    conf.json = json;
    Ok(conf)
}

/// A name the specification allows for a network: letters, digits, `_`, `.` and `-`,
/// starting with a letter or digit.
pub fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn check(raw: Raw) -> Result<NetConf, Error> {
    if !is_name(&raw.name) {
        return Err(invalid(format!("{:?} is not a network name", raw.name)));
    }
    let vni =
        Vni::new(raw.vni).ok_or_else(|| invalid(format!("VNI {} is not 24 bits", raw.vni)))?;
    let ipv4 = raw.ipv4.map(|f| Family {
        subnet: f.subnet.0,
        gateway: f.gateway.0,
    });
    let ipv6 = raw.ipv6.map(|f| Family {
        subnet: f.subnet.0,
        gateway: f.gateway.0,
    });
    if ipv4.is_none() && ipv6.is_none() {
        return Err(invalid("the VPC has neither ipv4 nor ipv6"));
    }
    if let Some(f) = &ipv4
        && !f.subnet.is_member(f.gateway)
    {
        return Err(invalid(format!(
            "gateway {} is outside {}",
            f.gateway, f.subnet
        )));
    }
    if let Some(f) = &ipv6
        && !f.subnet.is_member(f.gateway)
    {
        return Err(invalid(format!(
            "gateway {} is outside {}",
            f.gateway, f.subnet
        )));
    }
    let gateway_mac = raw.gateway_mac.map_or(DEFAULT_GATEWAY_MAC, |m| m.0);
    if gateway_mac.is_multicast() {
        return Err(invalid("gatewayMac is a multicast address"));
    }
    if let Some(m) = raw.mtu
        && !(1280..=9000).contains(&m)
    {
        return Err(invalid(format!("MTU {m} is outside 1280..=9000")));
    }
    let ipam_type = match (&raw.ipam, &raw.addresses) {
        (Some(_), Some(_)) => return Err(invalid("both ipam and addresses are given")),
        (None, None) => return Err(invalid("neither ipam nor addresses is given")),
        (Some(i), None) => {
            let t = i
                .get("type")
                .and_then(|t| t.as_str())
                .ok_or_else(|| invalid("ipam has no type"))?;
            if !is_name(t) {
                return Err(invalid(format!("{t:?} is not a plugin name")));
            }
            Some(t.to_string())
        }
        (None, Some(_)) => None,
    };
    let mut addresses = Vec::new();
    for a in raw.addresses.iter().flatten() {
        let ip = a.split_once('/').map_or(a.as_str(), |(ip, _)| ip);
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| invalid(format!("{a:?} is not an address")))?;
        addresses.push(ip);
    }
    for d in raw.dns.search.iter().chain(&raw.dns.domain) {
        d.parse::<DomainName>()
            .map_err(|_| invalid(format!("{d:?} is not a domain name")))?;
    }
    if raw.mode == Mode::Netns && raw.vhost_user_dir.is_some() {
        return Err(invalid("vhostUserDir is for mode kata"));
    }
    let prev_result = raw
        .prev_result
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| invalid("prevResult is not a CNI result").details(e))?;
    let _ = raw.kind;
    Ok(NetConf {
        cni_version: raw.cni_version,
        name: raw.name,
        vni,
        ipv4,
        ipv6,
        gateway_mac,
        underlay_ip: raw.underlay_ip.0,
        mtu: raw.mtu,
        dns: raw.dns,
        socket: raw.socket,
        peers: raw.peers,
        data_dir: raw.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
        mode: raw.mode,
        kata_dir: raw.kata_dir.unwrap_or_else(|| DEFAULT_KATA_DIR.into()),
        vhost_user_dir: raw.vhost_user_dir,
        ipam_type,
        addresses,
        prev_result,
        valid_attachments: raw.valid_attachments,
        mac: raw.runtime_config.and_then(|r| r.mac).map(|m| m.0),
        json: serde_json::Value::Null,
    })
}

impl NetConf {
    /// The port configuration of a container with `mac` and `addrs` (one per family at
    /// most, each inside its VPC subnet), on this sled.
    pub fn vpc_cfg(&self, mac: MacAddr, addrs: &[IpAddr]) -> Result<VpcCfg, Error> {
        let (mut v4, mut v6) = (None, None);
        for a in addrs {
            match *a {
                IpAddr::Ip4(ip) => {
                    let f = self.ipv4.as_ref().ok_or_else(|| {
                        invalid(format!("address {ip} given, but the VPC has no IPv4"))
                    })?;
                    if !f.subnet.is_member(ip) || ip == f.gateway {
                        return Err(invalid(format!(
                            "{ip} is not a guest address of {}",
                            f.subnet
                        )));
                    }
                    if v4.replace(ip).is_some() {
                        return Err(invalid("more than one IPv4 address"));
                    }
                }
                IpAddr::Ip6(ip) => {
                    let f = self.ipv6.as_ref().ok_or_else(|| {
                        invalid(format!("address {ip} given, but the VPC has no IPv6"))
                    })?;
                    if !f.subnet.is_member(ip) || ip == f.gateway {
                        return Err(invalid(format!(
                            "{ip} is not a guest address of {}",
                            f.subnet
                        )));
                    }
                    if v6.replace(ip).is_some() {
                        return Err(invalid("more than one IPv6 address"));
                    }
                }
            }
        }
        let ipv4 = match (&self.ipv4, v4) {
            (Some(f), Some(ip)) => Some(Ipv4Cfg {
                vpc_subnet: f.subnet,
                private_ip: ip,
                gateway_ip: f.gateway,
                external_ips: ExternalIpCfg::default(),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            }),
            _ => None,
        };
        let ipv6 = match (&self.ipv6, v6) {
            (Some(f), Some(ip)) => Some(Ipv6Cfg {
                vpc_subnet: f.subnet,
                private_ip: ip,
                gateway_ip: f.gateway,
                external_ips: ExternalIpCfg::default(),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            }),
            _ => None,
        };
        let ip_cfg = match (ipv4, ipv6) {
            (Some(ipv4), Some(ipv6)) => IpCfg::DualStack { ipv4, ipv6 },
            (Some(v4), None) => IpCfg::Ipv4(v4),
            (None, Some(v6)) => IpCfg::Ipv6(v6),
            (None, None) => return Err(invalid("no address for the container")),
        };
        let domain = |d: &String| d.parse::<DomainName>().map_err(|_| invalid("bad domain"));
        let cfg = VpcCfg {
            ip_cfg,
            guest_mac: mac,
            gateway_mac: self.gateway_mac,
            vni: self.vni,
            phys_ip: self.underlay_ip,
            dhcp: DhcpCfg {
                hostname: None,
                host_domain: self.dns.domain.as_ref().map(domain).transpose()?,
                domain_search_list: self
                    .dns
                    .search
                    .iter()
                    .map(domain)
                    .collect::<Result<_, _>>()?,
                dns4_servers: self
                    .dns
                    .nameservers
                    .iter()
                    .filter_map(|a| match a {
                        std::net::IpAddr::V4(a) => Some(Ipv4Addr::from(a.octets())),
                        _ => None,
                    })
                    .collect(),
                dns6_servers: self
                    .dns
                    .nameservers
                    .iter()
                    .filter_map(|a| match a {
                        std::net::IpAddr::V6(a) => Some(Ipv6Addr::from(a.octets())),
                        _ => None,
                    })
                    .collect(),
            },
        };
        cfg.validate().map_err(|e| {
            invalid("the port's configuration is invalid").details(format!("{e:?}"))
        })?;
        Ok(cfg)
    }

    /// The DNS part of the result.
    pub fn dns_result(&self) -> spec::Dns {
        spec::Dns {
            nameservers: self.dns.nameservers.iter().map(|a| a.to_string()).collect(),
            domain: self.dns.domain.clone(),
            search: self.dns.search.clone(),
            options: Vec::new(),
        }
    }
}

/// The runtime's environment variables for one invocation.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub command: String,
    pub container_id: Option<String>,
    pub netns: Option<PathBuf>,
    pub ifname: Option<String>,
    pub path: Vec<PathBuf>,
}

impl Env {
    /// Read the `CNI_*` variables through `var`.
    pub fn read(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let env_err = |m: String| Error::new(code::INVALID_ENV, m);
        let command = var("CNI_COMMAND").ok_or_else(|| env_err("CNI_COMMAND is not set".into()))?;
        if !matches!(
            command.as_str(),
            "ADD" | "DEL" | "CHECK" | "STATUS" | "GC" | "VERSION"
        ) {
            return Err(env_err(format!(
                "CNI_COMMAND {command:?} is not a CNI command"
            )));
        }
        let nonempty = |k: &str| var(k).filter(|v| !v.is_empty());
        let container_id = nonempty("CNI_CONTAINERID");
        if let Some(c) = &container_id
            && !is_name(c)
        {
            return Err(env_err(format!(
                "CNI_CONTAINERID {c:?} is not a container ID"
            )));
        }
        let ifname = nonempty("CNI_IFNAME");
        if let Some(i) = &ifname
            && !is_ifname(i)
        {
            return Err(env_err(format!(
                "CNI_IFNAME {i:?} is not an interface name"
            )));
        }
        let netns = nonempty("CNI_NETNS").map(PathBuf::from);
        let path = var("CNI_PATH")
            .unwrap_or_default()
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        let env = Self {
            command,
            container_id,
            netns,
            ifname,
            path,
        };
        let need = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(env_err(format!("{what} is not set for {}", env.command)))
            }
        };
        match env.command.as_str() {
            "ADD" | "CHECK" => {
                need(env.container_id.is_some(), "CNI_CONTAINERID")?;
                need(env.ifname.is_some(), "CNI_IFNAME")?;
                need(env.netns.is_some(), "CNI_NETNS")?;
            }
            "DEL" => {
                need(env.container_id.is_some(), "CNI_CONTAINERID")?;
                need(env.ifname.is_some(), "CNI_IFNAME")?;
            }
            _ => {}
        }
        Ok(env)
    }
}

/// A Linux interface name: 1 to 15 bytes, none of them `/`, `:` or white space, and not
/// `.` or `..`.
pub fn is_ifname(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s != "."
        && s != ".."
        && !s
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "cniVersion": "1.1.0", "name": "vpc-a", "type": "opte-cni", "vni": 100,
            "ipv4": {"subnet": "172.30.0.0/22", "gateway": "172.30.0.1"},
            "underlayIp": "fd00:99::1",
            "ipam": {"type": "host-local"}
        })
    }

    fn code_of(v: serde_json::Value) -> u32 {
        parse(v.to_string().as_bytes()).unwrap_err().code
    }

    #[test]
    fn a_good_configuration_is_read() {
        let c = parse(base().to_string().as_bytes()).unwrap();
        assert_eq!(c.vni.as_u32(), 100);
        assert_eq!(c.ipam_type.as_deref(), Some("host-local"));
        assert_eq!(c.gateway_mac, DEFAULT_GATEWAY_MAC);
        assert_eq!(c.mode, Mode::Netns);
        let cfg = c
            .vpc_cfg(DEFAULT_GATEWAY_MAC, &["172.30.0.5".parse().unwrap()])
            .unwrap_err();
        // The gateway's MAC is not a guest's: the port configuration is refused.
        assert_eq!(cfg.code, code::INVALID_CONFIG);
        let mac = MacAddr::from_const([0xa8, 0x40, 0x25, 0xf0, 0, 5]);
        let cfg = c.vpc_cfg(mac, &["172.30.0.5".parse().unwrap()]).unwrap();
        assert_eq!(cfg.ipv4().unwrap().private_ip.to_string(), "172.30.0.5");
        assert!(cfg.ipv6().is_none());
    }

    #[test]
    fn each_mistake_gets_its_code() {
        assert_eq!(parse(b"{not json").unwrap_err().code, code::DECODE);
        let mut v = base();
        v["cniVersion"] = "0.4.0".into();
        assert_eq!(code_of(v), code::INCOMPATIBLE_VERSION);
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("vni", serde_json::json!(1u32 << 24)),
            ("vni", serde_json::json!("x")),
            ("underlayIp", serde_json::json!("10.0.0.1")),
            (
                "ipv4",
                serde_json::json!({"subnet": "172.30.0.0/22", "gateway": "10.0.0.1"}),
            ),
            ("ipv4", serde_json::Value::Null),
            ("name", serde_json::json!("bad/name")),
            ("mtu", serde_json::json!(100)),
            ("gatewayMac", serde_json::json!("01:00:5e:00:00:01")),
            ("addresses", serde_json::json!(["172.30.0.5/22"])),
            ("ipam", serde_json::json!({})),
            ("dns", serde_json::json!({"search": ["bad..domain"]})),
            ("prevResult", serde_json::json!({"ips": 3})),
        ];
        for (k, val) in cases {
            let mut v = base();
            v[k] = val.clone();
            assert_eq!(code_of(v), code::INVALID_CONFIG, "{k} = {val}");
        }
        let mut v = base();
        v.as_object_mut().unwrap().remove("ipam");
        assert_eq!(code_of(v), code::INVALID_CONFIG);
        let mut v = base();
        v.as_object_mut().unwrap().remove("cniVersion");
        assert_eq!(code_of(v), code::INVALID_CONFIG);
    }

    #[test]
    fn the_environment_is_checked() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            Env::read(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(env(&[]).unwrap_err().code, code::INVALID_ENV);
        assert_eq!(
            env(&[("CNI_COMMAND", "FOO")]).unwrap_err().code,
            code::INVALID_ENV
        );
        assert_eq!(
            env(&[("CNI_COMMAND", "ADD")]).unwrap_err().code,
            code::INVALID_ENV
        );
        let add = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/var/run/netns/x"),
            ("CNI_PATH", "/usr/lib/cni:/opt/cni/bin"),
        ];
        let e = env(Box::leak(Box::new(add))).unwrap();
        assert_eq!(e.path.len(), 2);
        let mut bad = add;
        bad[2] = ("CNI_IFNAME", "a-name-too-long-x");
        assert_eq!(
            env(Box::leak(Box::new(bad))).unwrap_err().code,
            code::INVALID_ENV
        );
        let mut bad = add;
        bad[1] = ("CNI_CONTAINERID", "../x");
        assert_eq!(
            env(Box::leak(Box::new(bad))).unwrap_err().code,
            code::INVALID_ENV
        );
        // DEL needs no namespace; VERSION nothing at all.
        assert!(
            env(&[
                ("CNI_COMMAND", "DEL"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_IFNAME", "e")
            ])
            .is_ok()
        );
        assert!(env(&[("CNI_COMMAND", "VERSION")]).is_ok());
    }
}
