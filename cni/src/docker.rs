//! Docker's remote network driver protocol: JSON over HTTP, each call a POST to
//! `/Plugin.Activate` or `/NetworkDriver.*` on the driver's Unix socket (Docker finds it
//! as `/run/docker/plugins/NAME.sock`; the driver's name is `NAME`). Errors are
//! `{"Err": "..."}` with status 500, as Docker's plugin helpers answer them.
//!
//! A network is a VPC: its VNI comes from `docker network create -o vni=N` (also
//! `-o gateway-mac=MAC`, `-o mtu=N`), its subnet and gateway from Docker's IPAM (the
//! network's IPv4 pool). An endpoint is an OPTE port (`CreateEndpoint`), its address the
//! one Docker's IPAM gave, its MAC Docker's or one the driver derives; `Join` hands Docker
//! the port's TAP (`SrcName`) to move into the container as `eth*`, with the VPC gateway as
//! the default gateway. The container's address keeps the pool's prefix, so it asks ARP
//! for its neighbours: the gateway answers for the whole VPC subnet (proxy ARP).
//!
//! IPv6 networks are refused: a container with the pool's /64 would solicit its
//! neighbours, and the gateway answers Neighbor Solicitations only for itself.
//!
//! State (networks and endpoints) is kept in a JSON file, rewritten whole after each
//! change, so a restarted driver still knows what it made.

use crate::plugin::{guest_mac, port_name};
use opte_api::{Ipv4Addr, Ipv4Cidr, Ipv6Addr, MacAddr, Vni};
use opte_ioctl::OpteHdl;
use oxide_vpc::api::{ExternalIpCfg, IpCfg, Ipv4Cfg, PortAttach, VpcCfg};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// The media type of the plugin protocol's bodies.
pub const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// A network: a VPC.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    pub vni: u32,
    pub subnet: Ipv4Cidr,
    pub gateway: Ipv4Addr,
    pub gateway_mac: MacAddr,
    pub mtu: Option<u32>,
}

/// An endpoint: a port.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub port: String,
    pub cfg: VpcCfg,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    networks: BTreeMap<String, Network>,
    endpoints: BTreeMap<String, Endpoint>,
}

/// The driver: its daemons, its underlay address, what it made.
pub struct Driver {
    hdl: OpteHdl,
    peers: Vec<(PathBuf, OpteHdl)>,
    underlay_ip: Ipv6Addr,
    state_file: PathBuf,
    state: Mutex<State>,
}

/// A failed call: its message.
#[derive(Debug)]
pub struct Fail(pub String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

fn fail<T>(m: impl Into<String>) -> Result<T, Fail> {
    Err(Fail(m.into()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PoolData {
    pool: String,
    #[serde(default)]
    gateway: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateNetworkReq {
    #[serde(rename = "NetworkID")]
    network_id: String,
    #[serde(default)]
    options: BTreeMap<String, Value>,
    #[serde(default, rename = "IPv4Data")]
    ipv4_data: Option<Vec<PoolData>>,
    #[serde(default, rename = "IPv6Data")]
    ipv6_data: Option<Vec<PoolData>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkReq {
    #[serde(rename = "NetworkID")]
    network_id: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct IfaceReq {
    #[serde(default)]
    address: String,
    #[serde(default, rename = "AddressIPv6")]
    address_ipv6: String,
    #[serde(default)]
    mac_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointReq {
    #[serde(rename = "NetworkID")]
    network_id: String,
    #[serde(rename = "EndpointID")]
    endpoint_id: String,
    #[serde(default)]
    interface: Option<IfaceReq>,
}

/// The text of a `-o` option (Docker passes them as strings; JSON numbers are taken too).
fn opt(generic: &Value, k: &str) -> Option<String> {
    match generic.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Driver {
    /// A driver configuring ports through `hdl` (this sled's daemon), publishing V2P to
    /// `peers` too, for a sled at `underlay_ip`; its state in `state_file` (read if there).
    pub fn new(
        hdl: OpteHdl,
        peers: Vec<PathBuf>,
        underlay_ip: Ipv6Addr,
        state_file: PathBuf,
    ) -> Result<Self, Fail> {
        let state = match std::fs::read(&state_file) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Fail(format!("{}: {e}", state_file.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return fail(format!("{}: {e}", state_file.display())),
        };
        Ok(Self {
            hdl,
            peers: peers
                .into_iter()
                .map(|p| (p.clone(), OpteHdl::new(opte_ioctl::UnixTransport::new(p))))
                .collect(),
            underlay_ip,
            state_file,
            state: Mutex::new(state),
        })
    }

    fn save(&self, st: &State) -> Result<(), Fail> {
        if let Some(d) = self.state_file.parent() {
            std::fs::create_dir_all(d)?;
        }
        let tmp = self.state_file.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(st)?)?;
        std::fs::rename(&tmp, &self.state_file)?;
        Ok(())
    }

    /// Answer a call to `path` with `body`: the HTTP status and the JSON answer.
    pub fn handle(&self, path: &str, body: &[u8]) -> (u16, Value) {
        match self.call(path, body) {
            Ok(v) => (200, v),
            Err(Fail(m)) => (500, json!({ "Err": m })),
        }
    }

    fn call(&self, path: &str, body: &[u8]) -> Result<Value, Fail> {
        let parse = |what: &str| -> Result<Value, Fail> {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(json!({}));
            }
            serde_json::from_slice(body)
                .map_err(|e| Fail(format!("{what}: the body is not JSON: {e}")))
        };
        let req = parse(path)?;
        match path {
            "/Plugin.Activate" => Ok(json!({"Implements": ["NetworkDriver"]})),
            "/NetworkDriver.GetCapabilities" => {
                Ok(json!({"Scope": "local", "ConnectivityScope": "local"}))
            }
            "/NetworkDriver.CreateNetwork" => self.create_network(
                serde_json::from_value(req).map_err(|e| Fail(format!("CreateNetwork: {e}")))?,
            ),
            "/NetworkDriver.DeleteNetwork" => {
                let r: NetworkReq =
                    serde_json::from_value(req).map_err(|e| Fail(format!("DeleteNetwork: {e}")))?;
                self.delete_network(&r.network_id)
            }
            "/NetworkDriver.CreateEndpoint" => self.create_endpoint(
                serde_json::from_value(req).map_err(|e| Fail(format!("CreateEndpoint: {e}")))?,
            ),
            "/NetworkDriver.DeleteEndpoint" => {
                let r: EndpointReq = serde_json::from_value(req)
                    .map_err(|e| Fail(format!("DeleteEndpoint: {e}")))?;
                self.delete_endpoint(&r.endpoint_id)
            }
            "/NetworkDriver.EndpointOperInfo" => {
                let r: EndpointReq = serde_json::from_value(req)
                    .map_err(|e| Fail(format!("EndpointOperInfo: {e}")))?;
                let st = self.lock();
                let ep = st
                    .endpoints
                    .get(&r.endpoint_id)
                    .ok_or_else(|| Fail(format!("no endpoint {}", r.endpoint_id)))?;
                Ok(json!({"Value": {
                    "port": ep.port,
                    "mac": ep.cfg.guest_mac.to_string().to_ascii_lowercase(),
                    "vni": ep.cfg.vni.as_u32(),
                }}))
            }
            "/NetworkDriver.Join" => {
                let r: EndpointReq =
                    serde_json::from_value(req).map_err(|e| Fail(format!("Join: {e}")))?;
                let st = self.lock();
                let ep = st
                    .endpoints
                    .get(&r.endpoint_id)
                    .ok_or_else(|| Fail(format!("no endpoint {}", r.endpoint_id)))?;
                if ep.network != r.network_id {
                    return fail(format!(
                        "endpoint {} is not on network {}",
                        r.endpoint_id, r.network_id
                    ));
                }
                let gw = ep
                    .cfg
                    .ipv4()
                    .map(|c| c.gateway_ip.to_string())
                    .unwrap_or_default();
                Ok(json!({
                    "InterfaceName": {"SrcName": ep.port, "DstPrefix": "eth"},
                    "Gateway": gw,
                    "DisableGatewayService": false,
                }))
            }
            "/NetworkDriver.Leave" => {
                let r: EndpointReq =
                    serde_json::from_value(req).map_err(|e| Fail(format!("Leave: {e}")))?;
                if !self.lock().endpoints.contains_key(&r.endpoint_id) {
                    return fail(format!("no endpoint {}", r.endpoint_id));
                }
                Ok(json!({}))
            }
            "/NetworkDriver.DiscoverNew"
            | "/NetworkDriver.DiscoverDelete"
            | "/NetworkDriver.ProgramExternalConnectivity"
            | "/NetworkDriver.RevokeExternalConnectivity" => Ok(json!({})),
            p => fail(format!("{p} is not a call of the network driver protocol")),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn create_network(&self, r: CreateNetworkReq) -> Result<Value, Fail> {
        if r.ipv6_data.as_ref().is_some_and(|v| !v.is_empty()) {
            return fail("IPv6 networks are not supported by the opte driver (IPv4 only)");
        }
        let generic = r
            .options
            .get("com.docker.network.generic")
            .cloned()
            .unwrap_or(Value::Null);
        let vni: u32 = opt(&generic, "vni")
            .ok_or_else(|| Fail("the network needs its VPC's VNI: -o vni=N".into()))?
            .parse()
            .map_err(|_| Fail("vni is not a number".into()))?;
        Vni::new(vni).ok_or_else(|| Fail(format!("VNI {vni} is not 24 bits")))?;
        let gateway_mac = match opt(&generic, "gateway-mac") {
            Some(m) => m
                .parse::<MacAddr>()
                .map_err(|_| Fail(format!("gateway-mac {m:?} is not a MAC")))?,
            None => crate::conf::DEFAULT_GATEWAY_MAC,
        };
        let mtu = opt(&generic, "mtu")
            .map(|m| {
                m.parse::<u32>()
                    .map_err(|_| Fail(format!("mtu {m:?} is not a number")))
            })
            .transpose()?;
        if let Some(m) = mtu
            && !(1280..=9000).contains(&m)
        {
            return fail(format!("MTU {m} is outside 1280..=9000"));
        }
        let pools = r.ipv4_data.unwrap_or_default();
        let [pool] = pools.as_slice() else {
            return fail("the network needs exactly one IPv4 pool (--subnet)");
        };
        let subnet: Ipv4Cidr = pool
            .pool
            .parse()
            .map_err(|_| Fail(format!("pool {:?} is not an IPv4 prefix", pool.pool)))?;
        let gw_text = pool.gateway.split('/').next().unwrap_or_default();
        let gateway: Ipv4Addr = gw_text
            .parse()
            .map_err(|_| Fail(format!("gateway {:?} is not an IPv4 address", pool.gateway)))?;
        if !subnet.is_member(gateway) {
            return fail(format!("gateway {gateway} is outside {subnet}"));
        }
        let mut st = self.lock();
        if st.networks.contains_key(&r.network_id) {
            return fail(format!("network {} exists", r.network_id));
        }
        st.networks.insert(
            r.network_id,
            Network {
                vni,
                subnet,
                gateway,
                gateway_mac,
                mtu,
            },
        );
        self.save(&st)?;
        Ok(json!({}))
    }

    fn delete_network(&self, id: &str) -> Result<Value, Fail> {
        let mut st = self.lock();
        if st.endpoints.values().any(|e| e.network == id) {
            return fail(format!("network {id} still has endpoints"));
        }
        if st.networks.remove(id).is_none() {
            return fail(format!("no network {id}"));
        }
        self.save(&st)?;
        Ok(json!({}))
    }

    fn create_endpoint(&self, r: EndpointReq) -> Result<Value, Fail> {
        let mut st = self.lock();
        let net = st
            .networks
            .get(&r.network_id)
            .cloned()
            .ok_or_else(|| Fail(format!("no network {}", r.network_id)))?;
        if st.endpoints.contains_key(&r.endpoint_id) {
            return fail(format!("endpoint {} exists", r.endpoint_id));
        }
        let iface = r.interface.unwrap_or_default();
        if !iface.address_ipv6.is_empty() {
            return fail("IPv6 addresses are not supported by the opte driver");
        }
        let addr = iface.address.split('/').next().unwrap_or_default();
        let ip: Ipv4Addr = addr.parse().map_err(|_| {
            Fail(format!(
                "the endpoint needs an IPv4 address, not {:?}",
                iface.address
            ))
        })?;
        let (mac, ours) = if iface.mac_address.is_empty() {
            (guest_mac(&r.network_id, &r.endpoint_id, "docker"), true)
        } else {
            let m = iface
                .mac_address
                .parse::<MacAddr>()
                .map_err(|_| Fail(format!("{:?} is not a MAC", iface.mac_address)))?;
            (m, false)
        };
        let vni = Vni::new(net.vni).ok_or_else(|| Fail("bad VNI".into()))?;
        let cfg = VpcCfg {
            ip_cfg: IpCfg::Ipv4(Ipv4Cfg {
                vpc_subnet: net.subnet,
                private_ip: ip,
                gateway_ip: net.gateway,
                external_ips: ExternalIpCfg::default(),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            }),
            guest_mac: mac,
            gateway_mac: net.gateway_mac,
            vni,
            phys_ip: self.underlay_ip,
            dhcp: Default::default(),
        };
        cfg.validate()
            .map_err(|e| Fail(format!("the port's configuration: {e:?}")))?;
        let ports = self.hdl.list_ports()?.ports;
        let taken: Vec<&str> = st.endpoints.values().map(|e| e.port.as_str()).collect();
        let port = (0..64)
            .map(|n| port_name(&r.network_id, &r.endpoint_id, "docker", n))
            .find(|n| !ports.iter().any(|p| &p.name == n) && !taken.contains(&n.as_str()))
            .ok_or_else(|| Fail("no free port name".into()))?;
        self.hdl
            .create_guest_port(&port, &cfg, net.mtu, PortAttach::Netdev)?;
        let published = (|| -> Result<(), Fail> {
            self.hdl.publish_guest(&cfg)?;
            for (p, h) in &self.peers {
                h.publish_guest(&cfg)
                    .map_err(|e| Fail(format!("publishing V2P to {}: {e}", p.display())))?;
            }
            Ok(())
        })();
        if let Err(e) = published {
            self.undo(&port, &cfg);
            return Err(e);
        }
        st.endpoints.insert(
            r.endpoint_id,
            Endpoint {
                network: r.network_id,
                port: port.clone(),
                cfg,
            },
        );
        self.save(&st)?;
        if ours {
            Ok(json!({"Interface": {"MacAddress": mac.to_string().to_ascii_lowercase()}}))
        } else {
            Ok(json!({"Interface": null}))
        }
    }

    /// Withdraw an endpoint's mappings and delete its port, as far as possible.
    fn undo(&self, port: &str, cfg: &VpcCfg) {
        for (p, h) in &self.peers {
            if let Err(e) = h.withdraw_guest(cfg) {
                eprintln!("opte-docker: withdrawing V2P from {}: {e}", p.display());
            }
        }
        if let Err(e) = self.hdl.withdraw_guest(cfg) {
            eprintln!("opte-docker: withdrawing V2P: {e}");
        }
        if let Err(e) = self.hdl.delete_xde(port) {
            eprintln!("opte-docker: deleting port {port}: {e}");
        }
    }

    fn delete_endpoint(&self, id: &str) -> Result<Value, Fail> {
        let mut st = self.lock();
        let ep = st
            .endpoints
            .get(id)
            .cloned()
            .ok_or_else(|| Fail(format!("no endpoint {id}")))?;
        for (p, h) in &self.peers {
            if let Err(e) = h.withdraw_guest(&ep.cfg) {
                eprintln!("opte-docker: withdrawing V2P from {}: {e}", p.display());
            }
        }
        self.hdl.withdraw_guest(&ep.cfg)?;
        match self.hdl.delete_xde(&ep.port) {
            Ok(_) => {}
            Err(e)
                if e.opte_error()
                    .is_some_and(|o| matches!(o, opte_api::OpteError::PortNotFound(_))) => {}
            Err(e) => return Err(e.into()),
        }
        st.endpoints.remove(id);
        self.save(&st)?;
        Ok(json!({}))
    }
}

/// Serve the protocol on `server` until `stop` says so (checked at least every 200 ms).
pub fn serve(driver: &Driver, server: &tiny_http::Server, stop: &std::sync::atomic::AtomicBool) {
    use std::io::Read;
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], CONTENT_TYPE.as_bytes()).ok();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let mut req = match server.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("opte-docker: {e}");
                continue;
            }
        };
        // Bodies are small JSON objects: a megabyte is more than any call needs.
        let mut body = Vec::new();
        let read = req.as_reader().take(1 << 20).read_to_end(&mut body);
        let (status, answer) = match (req.method(), read) {
            (tiny_http::Method::Post, Ok(_)) => driver.handle(req.url(), &body),
            (_, Err(e)) => (500, json!({"Err": format!("reading the request: {e}")})),
            (m, _) => (405, json!({"Err": format!("{m} is not POST")})),
        };
        let mut resp =
            tiny_http::Response::from_string(answer.to_string()).with_status_code(status);
        if let Some(h) = header.clone() {
            resp.add_header(h);
        }
        if let Err(e) = req.respond(resp) {
            eprintln!("opte-docker: answering: {e}");
        }
    }
}
