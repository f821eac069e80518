//! Kata Containers' Directly Attachable Network (DAN): the file through which Kata's
//! runtime is told which host device to give a sandbox's VM as its NIC, and how the guest
//! sees its network: `{dan_conf}/{sandbox_id}.json`, one per sandbox. For an OPTE port
//! the device is its TAP (`host-tap`, a `--vmm` port) or its vhost-user socket, the guest
//! has the port's address (a /32, or /128, as OPTE's DHCP gives it), the gateway on the
//! link, the default route through it, and the gateway's MAC as a permanent neighbour
//! (OPTE's gateway answers ARP and NDP, but the guest need not ask).
//!
//! Written by `opteadm kata-dan` (and by the CNI plugin's kata mode).

use opte_api::{Ipv4Addr, Ipv6Addr};
use oxide_vpc::api::PortInfo;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Where Kata's runtime looks for DAN files by default (`dan_conf`).
pub const DEFAULT_DAN_DIR: &str = "/run/kata-containers/dans";
/// A route on the link (`RT_SCOPE_LINK`); 0 is `RT_SCOPE_UNIVERSE`.
pub const SCOPE_LINK: u8 = 253;
/// A neighbour entry that never expires (`NUD_PERMANENT`).
pub const NUD_PERMANENT: u16 = 0x80;

/// A sandbox's DAN file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DanConfig {
    /// The sandbox's network namespace (a path, such as `/var/run/netns/NAME`).
    pub netns: String,
    /// The sandbox's NICs.
    pub devices: Vec<DanDevice>,
}

/// One NIC of the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DanDevice {
    /// The interface's name in the guest.
    pub name: String,
    /// The NIC's MAC (lower case, colon separated).
    pub guest_mac: String,
    /// The host device behind it.
    pub device: Device,
    /// How the guest configures it.
    pub network_info: NetworkInfo,
}

/// The host side of the NIC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Device {
    /// A TAP the VMM opens by name.
    HostTap {
        /// The TAP's name.
        tap_name: String,
    },
    /// A vhost-user socket the VMM connects to.
    VhostUser {
        /// The socket's path.
        path: String,
        /// Queue pairs.
        queue_num: u32,
        /// Descriptors per queue.
        queue_size: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// How the guest configures the NIC.
pub struct NetworkInfo {
    /// The interface's addresses and link.
    pub interface: Interface,
    /// Its routes.
    pub routes: Vec<Route>,
    /// Its static neighbour entries.
    pub neighbors: Vec<Neighbor>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// The guest interface.
pub struct Interface {
    /// `ADDRESS/PREFIX` each.
    pub ip_addresses: Vec<String>,
    /// The link's MTU.
    pub mtu: u32,
    /// The kind of link (`tuntap`).
    pub ntype: String,
    /// Interface flags (none).
    pub flags: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// A route of the guest.
pub struct Route {
    /// `NETWORK/PREFIX`.
    pub dest: String,
    /// Empty for a route on the link.
    pub gateway: String,
    /// The preferred source address.
    pub source: String,
    /// [`SCOPE_LINK`] or 0 (universe).
    pub scope: u8,
    /// Route flags (none).
    pub flags: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// A static neighbour entry of the guest.
pub struct Neighbor {
    /// The neighbour's address.
    pub ip_address: String,
    /// Its MAC.
    pub hardware_addr: String,
    /// [`NUD_PERMANENT`].
    pub state: u16,
    /// Neighbour flags (none).
    pub flags: u8,
}

/// The port's gateway as the guest sees it.
#[derive(Clone, Copy, Debug)]
pub struct Gateway {
    /// Its MAC.
    pub mac: opte_api::MacAddr,
    /// Its IPv4 address, if the port has IPv4.
    pub ip4: Option<Ipv4Addr>,
    /// Its IPv6 address, if the port has IPv6.
    pub ip6: Option<Ipv6Addr>,
}

impl DanDevice {
    /// The NIC of `port` (as `list-ports` gives it), attached by `device`, named `name` in
    /// the guest, with link MTU `mtu`, behind `gw`. An address of a family whose gateway is
    /// not given is left out (the guest could not leave its link with it).
    pub fn for_port(port: &PortInfo, name: &str, device: Device, gw: &Gateway, mtu: u32) -> Self {
        let mac = |m: opte_api::MacAddr| m.to_string().to_ascii_lowercase();
        let mut ip_addresses = Vec::new();
        let mut routes = Vec::new();
        let mut neighbors = Vec::new();
        let mut family = |addr: String, gw_ip: String, host: u8, default: &str| {
            ip_addresses.push(format!("{addr}/{host}"));
            routes.push(Route {
                dest: format!("{gw_ip}/{host}"),
                gateway: String::new(),
                source: addr.clone(),
                scope: SCOPE_LINK,
                flags: 0,
            });
            routes.push(Route {
                dest: default.to_string(),
                gateway: gw_ip.clone(),
                source: addr,
                scope: 0,
                flags: 0,
            });
            neighbors.push(Neighbor {
                ip_address: gw_ip,
                hardware_addr: mac(gw.mac),
                state: NUD_PERMANENT,
                flags: 0,
            });
        };
        if let (Some(a), Some(g)) = (port.ip4_addr, gw.ip4) {
            family(a.to_string(), g.to_string(), 32, "0.0.0.0/0");
        }
        if let (Some(a), Some(g)) = (port.ip6_addr, gw.ip6) {
            family(a.to_string(), g.to_string(), 128, "::/0");
        }
        Self {
            name: name.to_string(),
            guest_mac: mac(port.mac_addr),
            device,
            network_info: NetworkInfo {
                interface: Interface {
                    ip_addresses,
                    mtu,
                    ntype: "tuntap".into(),
                    flags: 0,
                },
                routes,
                neighbors,
            },
        }
    }
}

/// Write `cfg` as `{dir}/{sandbox_id}.json` (the directory made if missing; the file
/// replaced whole, never seen half-written). A sandbox ID that is not a plain file name
/// is refused.
pub fn write(dir: &Path, sandbox_id: &str, cfg: &DanConfig) -> io::Result<PathBuf> {
    let plain = !sandbox_id.is_empty()
        && sandbox_id != "."
        && sandbox_id != ".."
        && !sandbox_id.contains(['/', '\0']);
    if !plain {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{sandbox_id:?} is not a sandbox ID (a file name)"),
        ));
    }
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{sandbox_id}.json"));
    let tmp = dir.join(format!(".{sandbox_id}.json.{}", std::process::id()));
    let json = serde_json::to_vec_pretty(cfg).map_err(io::Error::other)?;
    std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port() -> PortInfo {
        PortInfo {
            name: "vm1".into(),
            mac_addr: opte_api::MacAddr::from_const([0xa8, 0x40, 0x25, 0xfa, 0x64, 0x05]),
            ip4_addr: Some(std::net::Ipv4Addr::new(172, 30, 0, 5).into()),
            ephemeral_ip4_addr: None,
            floating_ip4_addrs: None,
            ip6_addr: Some("fd30::5".parse().unwrap()),
            ephemeral_ip6_addr: None,
            floating_ip6_addrs: None,
            state: "running".into(),
        }
    }

    #[test]
    fn a_port_becomes_its_nic_address_routes_and_gateway_neighbour() {
        let gw = Gateway {
            mac: opte_api::MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]),
            ip4: Some(std::net::Ipv4Addr::new(172, 30, 0, 1).into()),
            ip6: None,
        };
        let dev = Device::HostTap {
            tap_name: "vm1".into(),
        };
        let d = DanDevice::for_port(&port(), "eth0", dev, &gw, 1500);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["guest_mac"], "a8:40:25:fa:64:05");
        assert_eq!(
            v["device"],
            serde_json::json!({"type": "host-tap", "tap_name": "vm1"})
        );
        let ni = &v["network_info"];
        // IPv6 has no gateway given: left out.
        assert_eq!(
            ni["interface"]["ip_addresses"],
            serde_json::json!(["172.30.0.5/32"])
        );
        assert_eq!(ni["routes"][0]["dest"], "172.30.0.1/32");
        assert_eq!(ni["routes"][0]["scope"], 253);
        assert_eq!(ni["routes"][1]["dest"], "0.0.0.0/0");
        assert_eq!(ni["routes"][1]["gateway"], "172.30.0.1");
        assert_eq!(
            ni["neighbors"],
            serde_json::json!([{"ip_address": "172.30.0.1",
                "hardware_addr": "a8:40:25:ff:77:77", "state": 128, "flags": 0}])
        );
        let vu = Device::VhostUser {
            path: "/run/vm1.sock".into(),
            queue_num: 1,
            queue_size: 1024,
        };
        assert_eq!(
            serde_json::to_value(&vu).unwrap(),
            serde_json::json!({"type": "vhost-user", "path": "/run/vm1.sock",
                "queue_num": 1, "queue_size": 1024})
        );
    }

    #[test]
    fn files_are_written_whole_and_odd_ids_refused() {
        let dir = std::env::temp_dir().join(format!("kata-dan-{}", std::process::id()));
        let cfg = DanConfig {
            netns: "/var/run/netns/x".into(),
            devices: vec![],
        };
        let path = write(&dir, "sb1", &cfg).unwrap();
        let back: DanConfig = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for bad in ["", "..", "a/b", "."] {
            assert!(write(&dir, bad, &cfg).is_err(), "{bad:?}");
        }
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(left.len(), 1, "only the file itself");
        let extra = r#"{"netns": "", "devices": [], "more": 1}"#;
        assert!(serde_json::from_str::<DanConfig>(extra).is_err());
    }
}
