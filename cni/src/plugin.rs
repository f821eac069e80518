//! The plugin's commands. Each takes the per-network lock, so concurrent invocations for
//! one network run one at a time, and keeps what it attached in a state file per
//! attachment (`{dataDir}/{network}/{containerID}/{ifname}.json`): DEL, CHECK and GC work
//! from it, and ADD refuses an attachment that already has one.
//!
//! ADD makes the port with the VPC's routes and firewall, tells this sled's daemon and the
//! configured peers where the container lives (V2P), and either moves the TAP into the
//! container's namespace (addresses /32 and /128, the gateway on the link, the default
//! routes through it: what the VPC's DHCP gives a VM) or, in kata mode, writes the
//! sandbox's DAN file. Any failure undoes what was done. DEL undoes all of it and
//! succeeds when there is nothing to undo.

use crate::conf::{Env, Mode, NetConf};
use crate::ipam::Ipam;
use crate::netns::{self, NsRoute};
use crate::spec::{self, CniResult, Error, code};
use opte_api::{IpAddr, Ipv6Addr, MacAddr};
use opte_ioctl::kata;
use opte_ioctl::{OpteHdl, UnixTransport};
use oxide_vpc::api::{PortAttach, VpcCfg};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What ADD attached, as its state file keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attached {
    pub container_id: String,
    pub ifname: String,
    /// The port (and its TAP's name on the host).
    pub port: String,
    pub netns: Option<PathBuf>,
    pub kata: bool,
    /// The Kata DAN file written, in kata mode.
    pub dan: Option<PathBuf>,
    pub cfg: VpcCfg,
    pub result: CniResult,
}

/// Run one invocation: `env` and the configuration on `stdin`. What to print on success.
pub fn run(env: &Env, stdin: &[u8]) -> Result<Option<String>, Error> {
    if env.command == "VERSION" {
        let asked = serde_json::from_slice::<serde_json::Value>(stdin)
            .ok()
            .and_then(|v| v.get("cniVersion")?.as_str().map(String::from));
        let info = spec::version_info(asked.as_deref());
        return Ok(Some(json(&info)?));
    }
    let conf = crate::conf::parse(stdin)?;
    let p = Plugin::new(env, conf)?;
    let _lock = p.lock()?;
    match env.command.as_str() {
        "ADD" => p.add().and_then(|r| json(&r)).map(Some),
        "DEL" => p.del().map(|()| None),
        "CHECK" => p.check().map(|()| None),
        "STATUS" => p.status().map(|()| None),
        "GC" => p.gc().map(|()| None),
        c => Err(Error::new(
            code::INVALID_ENV,
            format!("unknown command {c}"),
        )),
    }
}

fn json<T: Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::new(code::IO, "writing the answer").details(e))
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |e| Error::new(code::IO, what).details(e)
}

/// The error a daemon's failure is to the runtime: not running is "try again later".
fn daemon_err(what: &str, e: opte_ioctl::Error) -> Error {
    match e {
        opte_ioctl::Error::DaemonNotRunning { .. } => Error::new(
            code::TRY_AGAIN,
            format!("{what}: the xde daemon is not running"),
        )
        .details(e),
        opte_ioctl::Error::CommandError(..) => {
            Error::new(code::DAEMON, format!("{what}: the xde daemon refused")).details(e)
        }
        e => Error::new(code::IO, format!("{what}: talking to the xde daemon")).details(e),
    }
}

/// 64-bit FNV-1a: the plugin's names and MACs derive from the attachment with it.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(&[0u8]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The `n`th candidate port name of an attachment: `opte` and 11 hex digits (15 bytes,
/// an interface name's most).
pub fn port_name(network: &str, container: &str, ifname: &str, n: u32) -> String {
    let h = fnv(&[
        network.as_bytes(),
        container.as_bytes(),
        ifname.as_bytes(),
        &n.to_le_bytes(),
    ]);
    format!("opte{:011x}", h >> 20)
}

/// The MAC of an attachment that the runtime did not choose: in Oxide's guest range
/// A8:40:25:F0:00:00–F7:FF:FF.
pub fn guest_mac(network: &str, container: &str, ifname: &str) -> MacAddr {
    let h = fnv(&[
        b"mac",
        network.as_bytes(),
        container.as_bytes(),
        ifname.as_bytes(),
    ]);
    let b = h.to_le_bytes();
    MacAddr::from_const([0xa8, 0x40, 0x25, 0xf0 | (b[0] & 7), b[1], b[2]])
}

pub struct Plugin<'a> {
    env: &'a Env,
    conf: NetConf,
    hdl: OpteHdl,
}

impl<'a> Plugin<'a> {
    fn new(env: &'a Env, conf: NetConf) -> Result<Self, Error> {
        let sock = conf
            .socket
            .clone()
            .unwrap_or_else(UnixTransport::default_path);
        Ok(Self {
            env,
            hdl: OpteHdl::new(UnixTransport::new(sock)),
            conf,
        })
    }

    fn dir(&self) -> PathBuf {
        self.conf.data_dir.join(&self.conf.name)
    }

    fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, Error> {
        let dir = self.dir();
        std::fs::create_dir_all(&dir).map_err(io_err(format!("making {}", dir.display())))?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))
            .map_err(io_err("opening the lock"))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::new(code::IO, "taking the lock").details(e))
    }

    fn state_path(&self, container: &str, ifname: &str) -> PathBuf {
        self.dir().join(container).join(format!("{ifname}.json"))
    }

    fn load(&self, container: &str, ifname: &str) -> Result<Option<Attached>, Error> {
        let p = self.state_path(container, ifname);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::new(code::DECODE, format!("state {}", p.display())).details(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(format!("reading {}", p.display()))(e)),
        }
    }

    fn save(&self, a: &Attached) -> Result<(), Error> {
        let p = self.state_path(&a.container_id, &a.ifname);
        let dir = p.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_err("making the state directory"))?;
        let tmp = p.with_extension("json.tmp");
        let body =
            serde_json::to_vec_pretty(a).map_err(|e| Error::new(code::IO, "state").details(e))?;
        std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, &p))
            .map_err(io_err(format!("writing {}", p.display())))
    }

    fn forget(&self, container: &str, ifname: &str) -> Result<(), Error> {
        let p = self.state_path(container, ifname);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("removing {}", p.display()))(e)),
        }
        // The container's directory goes with its last interface.
        if let Some(d) = p.parent() {
            let _ = std::fs::remove_dir(d);
        }
        Ok(())
    }

    /// Every attachment this network has state for.
    fn all(&self) -> Result<Vec<Attached>, Error> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(self.dir()) else {
            return Ok(out);
        };
        for d in dirs.flatten() {
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                let p = f.path();
                if p.extension().is_some_and(|e| e == "json")
                    && let Ok(b) = std::fs::read(&p)
                    && let Ok(a) = serde_json::from_slice::<Attached>(&b)
                {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }

    fn ids(&self) -> (&str, &str) {
        (
            self.env.container_id.as_deref().unwrap_or_default(),
            self.env.ifname.as_deref().unwrap_or_default(),
        )
    }

    fn ipam(&self) -> Result<Option<Ipam>, Error> {
        let Some(t) = &self.conf.ipam_type else {
            return Ok(None);
        };
        if self.env.path.is_empty() {
            return Err(Error::new(
                code::INVALID_ENV,
                "CNI_PATH is not set, and the IPAM plugin is found through it",
            ));
        }
        Ipam::find(t, &self.env.path, &self.conf.cni_version).map(Some)
    }

    fn peers(&self) -> impl Iterator<Item = (PathBuf, OpteHdl)> + '_ {
        self.conf
            .peers
            .iter()
            .map(|p| (p.clone(), OpteHdl::new(UnixTransport::new(p.clone()))))
    }

    fn add(&self) -> Result<CniResult, Error> {
        let (container, ifname) = self.ids();
        if self.load(container, ifname)?.is_some() {
            return Err(Error::new(
                code::ALREADY_ATTACHED,
                format!(
                    "container {container} already has {ifname} on network {}",
                    self.conf.name
                ),
            ));
        }
        let ports = self
            .hdl
            .list_ports()
            .map_err(|e| daemon_err("listing ports", e))?
            .ports;
        let ipam = self.ipam()?;
        let addrs = match &ipam {
            Some(i) => {
                let r = i
                    .exec("ADD", &self.conf.json)?
                    .ok_or_else(|| Error::new(code::DECODE, "the IPAM plugin gave no result"))?;
                let mut v = Vec::new();
                for ip in &r.ips {
                    let a = ip
                        .address
                        .split_once('/')
                        .map_or(ip.address.as_str(), |x| x.0);
                    match a.parse::<IpAddr>() {
                        Ok(a) => v.push(a),
                        Err(_) => {
                            let _ = i.exec("DEL", &self.conf.json);
                            return Err(Error::new(
                                code::DECODE,
                                format!("the IPAM plugin gave {:?}", ip.address),
                            ));
                        }
                    }
                }
                v
            }
            None => self.conf.addresses.clone(),
        };
        let release = || {
            if let Some(i) = &ipam {
                let _ = i.exec("DEL", &self.conf.json);
            }
        };
        let taken: Vec<String> = self.all()?.into_iter().map(|a| a.port).collect();
        let port = (0..64)
            .map(|n| port_name(&self.conf.name, container, ifname, n))
            .find(|n| !ports.iter().any(|p| &p.name == n) && !taken.contains(n));
        let Some(port) = port else {
            release();
            return Err(Error::new(code::DAEMON, "no free port name"));
        };
        let mac = self
            .conf
            .mac
            .unwrap_or_else(|| guest_mac(&self.conf.name, container, ifname));
        let cfg = match self.conf.vpc_cfg(mac, &addrs) {
            Ok(c) => c,
            Err(e) => {
                release();
                return Err(e);
            }
        };
        let mut a = Attached {
            container_id: container.into(),
            ifname: ifname.into(),
            port,
            netns: self.env.netns.clone(),
            kata: self.conf.mode == Mode::Kata,
            dan: None,
            cfg,
            result: CniResult::default(),
        };
        match self.attach(&mut a) {
            Ok(()) => {
                if let Err(e) = self.save(&a) {
                    let _ = self.teardown(&a);
                    release();
                    return Err(e);
                }
                Ok(a.result)
            }
            Err(e) => {
                let _ = self.teardown(&a);
                release();
                Err(e)
            }
        }
    }

    /// The port, the V2P mappings, the interface: everything but the addresses' lease.
    fn attach(&self, a: &mut Attached) -> Result<(), Error> {
        let vhost = self
            .conf
            .vhost_user_dir
            .as_ref()
            .map(|d| d.join(format!("{}.sock", a.port)));
        let attach = match &vhost {
            Some(p) => PortAttach::VhostUser(p.to_string_lossy().into_owned()),
            None => PortAttach::Netdev,
        };
        self.hdl
            .create_guest_port(&a.port, &a.cfg, self.conf.mtu, attach)
            .map_err(|e| daemon_err("creating the port", e))?;
        self.hdl
            .publish_guest(&a.cfg)
            .map_err(|e| daemon_err("publishing V2P", e))?;
        for (path, h) in self.peers() {
            h.publish_guest(&a.cfg)
                .map_err(|e| daemon_err(&format!("publishing V2P to {}", path.display()), e))?;
        }
        let gw_mac = self.conf.gateway_mac;
        let gw_ll = Ipv6Addr::from_eui64(&gw_mac);
        let mtu = self.conf.mtu.unwrap_or(1500);
        let mut result = CniResult {
            cni_version: self.conf.cni_version.clone(),
            dns: self.conf.dns_result(),
            ..Default::default()
        };
        let mut addrs = Vec::new();
        let mut routes = Vec::new();
        if let Some(c) = a.cfg.ipv4() {
            let gw = std::net::IpAddr::V4(c.gateway_ip.into());
            addrs.push((std::net::IpAddr::V4(c.private_ip.into()), 32, gw));
            routes.push(NsRoute {
                dst: gw,
                prefix: 32,
                gw: None,
            });
            let any = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
            routes.push(NsRoute {
                dst: any,
                prefix: 0,
                gw: Some(gw),
            });
        }
        if let Some(c) = a.cfg.ipv6() {
            let gw = std::net::IpAddr::V6(gw_ll.into());
            addrs.push((std::net::IpAddr::V6(c.private_ip.into()), 128, gw));
            let any = std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
            routes.push(NsRoute {
                dst: any,
                prefix: 0,
                gw: Some(gw),
            });
        }
        let iface = match (self.conf.mode, &a.netns) {
            (Mode::Netns, Some(ns)) => {
                netns::move_into(&a.port, ns, &a.ifname).map_err(|e| {
                    Error::new(
                        code::NETNS,
                        format!("moving {} into {}", a.port, ns.display()),
                    )
                    .details(e)
                })?;
                let plain: Vec<_> = addrs.iter().map(|(ip, l, _)| (*ip, *l)).collect();
                netns::configure(ns, &a.ifname, &plain, &routes).map_err(|e| {
                    Error::new(
                        code::NETNS,
                        format!("configuring {} in {}", a.ifname, ns.display()),
                    )
                    .details(e)
                })?;
                spec::Interface {
                    name: a.ifname.clone(),
                    mac: Some(mac_text(a.cfg.guest_mac)),
                    mtu: Some(mtu),
                    sandbox: Some(ns.to_string_lossy().into_owned()),
                    socket_path: None,
                }
            }
            (Mode::Netns, None) => {
                return Err(Error::new(code::INVALID_ENV, "CNI_NETNS is not set"));
            }
            (Mode::Kata, _) => {
                let port = self
                    .hdl
                    .list_ports()
                    .map_err(|e| daemon_err("listing ports", e))?
                    .ports
                    .into_iter()
                    .find(|p| p.name == a.port)
                    .ok_or_else(|| Error::new(code::DAEMON, "the new port is not listed"))?;
                let device = match &vhost {
                    Some(p) => kata::Device::VhostUser {
                        path: p.to_string_lossy().into_owned(),
                        queue_num: 1,
                        queue_size: 256,
                    },
                    None => kata::Device::HostTap {
                        tap_name: a.port.clone(),
                    },
                };
                let gw = kata::Gateway {
                    mac: gw_mac,
                    ip4: a.cfg.ipv4().map(|c| c.gateway_ip),
                    ip6: a.cfg.ipv6().map(|c| c.gateway_ip),
                };
                let dev = kata::DanDevice::for_port(&port, &a.ifname, device, &gw, mtu);
                let dan = kata::DanConfig {
                    netns: a
                        .netns
                        .as_ref()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    devices: vec![dev],
                };
                let path = kata::write(&self.conf.kata_dir, &a.container_id, &dan)
                    .map_err(io_err("writing the Kata DAN file"))?;
                a.dan = Some(path);
                spec::Interface {
                    name: a.port.clone(),
                    mac: Some(mac_text(a.cfg.guest_mac)),
                    mtu: Some(mtu),
                    sandbox: None,
                    socket_path: vhost.map(|p| p.to_string_lossy().into_owned()),
                }
            }
        };
        result.interfaces.push(iface);
        for (ip, len, gw) in &addrs {
            result.ips.push(spec::IpConfig {
                address: format!("{ip}/{len}"),
                gateway: Some(gw.to_string()),
                interface: Some(0),
            });
        }
        for r in &routes {
            result.routes.push(spec::Route {
                dst: format!("{}/{}", r.dst, r.prefix),
                gw: r.gw.map(|g| g.to_string()),
            });
        }
        a.result = result;
        Ok(())
    }

    /// Undo [`Self::attach`]: V2P mappings, the port (its TAP goes with it), the DAN
    /// file. Whatever is already gone is skipped; the local daemon being down is an error
    /// (the runtime tries again), a peer being down is not (its mapping goes when the
    /// peer's own control plane resyncs, and DEL must be able to finish).
    fn teardown(&self, a: &Attached) -> Result<(), Error> {
        for (path, h) in self.peers() {
            if let Err(e) = h.withdraw_guest(&a.cfg) {
                eprintln!("opte-cni: withdrawing V2P from {}: {e}", path.display());
            }
        }
        self.hdl
            .withdraw_guest(&a.cfg)
            .map_err(|e| daemon_err("withdrawing V2P", e))?;
        match self.hdl.delete_xde(&a.port) {
            Ok(_) => {}
            Err(e)
                if e.opte_error()
                    .is_some_and(|o| matches!(o, opte_api::OpteError::PortNotFound(_))) => {}
            Err(e) => return Err(daemon_err("deleting the port", e)),
        }
        if let Some(d) = &a.dan {
            match std::fs::remove_file(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("removing the DAN file")(e)),
            }
        }
        Ok(())
    }

    fn del(&self) -> Result<(), Error> {
        let (container, ifname) = self.ids();
        if let Some(a) = self.load(container, ifname)? {
            self.teardown(&a)?;
        }
        if let Some(i) = self.ipam()? {
            i.exec("DEL", &self.conf.json)?;
        }
        self.forget(container, ifname)
    }

    fn check(&self) -> Result<(), Error> {
        let (container, ifname) = self.ids();
        let prev = self
            .conf
            .prev_result
            .as_ref()
            .ok_or_else(|| Error::new(code::INVALID_CONFIG, "CHECK needs prevResult"))?;
        let a = self.load(container, ifname)?.ok_or_else(|| {
            Error::new(
                code::UNKNOWN_CONTAINER,
                format!(
                    "container {container} has no {ifname} on network {}",
                    self.conf.name
                ),
            )
        })?;
        let bad = |m: String| Error::new(code::CHECK_FAILED, m);
        for ip in &prev.ips {
            if !a.result.ips.iter().any(|x| x.address == ip.address) {
                return Err(bad(format!(
                    "prevResult's {} is not this attachment's",
                    ip.address
                )));
            }
        }
        let ports = self
            .hdl
            .list_ports()
            .map_err(|e| daemon_err("listing ports", e))?
            .ports;
        let p = ports
            .iter()
            .find(|p| p.name == a.port)
            .ok_or_else(|| bad(format!("port {} is gone", a.port)))?;
        if p.mac_addr != a.cfg.guest_mac
            || p.ip4_addr != a.cfg.ipv4().map(|c| c.private_ip)
            || p.ip6_addr != a.cfg.ipv6().map(|c| c.private_ip)
        {
            return Err(bad(format!("port {} has another configuration", a.port)));
        }
        let v2p = self
            .hdl
            .dump_v2p()
            .map_err(|e| daemon_err("dumping V2P", e))?;
        let mapped = |vip: IpAddr| {
            v2p.mappings
                .iter()
                .filter(|m| m.vni == a.cfg.vni)
                .any(|m| match vip {
                    IpAddr::Ip4(ip) => m
                        .ip4
                        .iter()
                        .any(|(i, g)| *i == ip && g.ether == a.cfg.guest_mac),
                    IpAddr::Ip6(ip) => m
                        .ip6
                        .iter()
                        .any(|(i, g)| *i == ip && g.ether == a.cfg.guest_mac),
                })
        };
        for m in opte_ioctl::guest::v2p(&a.cfg) {
            if !mapped(m.vip) {
                return Err(bad(format!("the V2P mapping of {} is gone", m.vip)));
            }
        }
        if a.kata {
            if let Some(d) = &a.dan
                && !d.is_file()
            {
                return Err(bad(format!("the DAN file {} is gone", d.display())));
            }
        } else {
            let ns = a
                .netns
                .as_ref()
                .ok_or_else(|| bad("no namespace recorded".into()))?;
            let st = netns::inspect(ns, &a.ifname)
                .map_err(|e| {
                    Error::new(code::NETNS, format!("reading {}", ns.display())).details(e)
                })?
                .ok_or_else(|| bad(format!("{} is not in {}", a.ifname, ns.display())))?;
            if st.mac != a.cfg.guest_mac.bytes() {
                return Err(bad(format!("{} has another MAC", a.ifname)));
            }
            if !st.up {
                return Err(bad(format!("{} is down", a.ifname)));
            }
            for ip in &a.result.ips {
                let (addr, len) = ip.address.split_once('/').unwrap_or((&ip.address, ""));
                let ok = st
                    .addrs
                    .iter()
                    .any(|(i, l)| i.to_string() == addr && l.to_string() == len);
                if !ok {
                    return Err(bad(format!("{} lacks {}", a.ifname, ip.address)));
                }
            }
            for r in &a.result.routes {
                let ok = st.routes.iter().any(|x| {
                    format!("{}/{}", x.dst, x.prefix) == r.dst
                        && x.gw.map(|g| g.to_string()) == r.gw
                });
                if !ok {
                    return Err(bad(format!("the route to {} is gone", r.dst)));
                }
            }
        }
        if let Some(i) = self.ipam()? {
            i.exec("CHECK", &self.conf.json)?;
        }
        Ok(())
    }

    fn status(&self) -> Result<(), Error> {
        self.hdl.list_ports().map_err(|e| {
            Error::new(code::NOT_AVAILABLE, "the xde daemon does not answer").details(e)
        })?;
        if let Some(t) = &self.conf.ipam_type
            && !self.env.path.is_empty()
        {
            let i = Ipam::find(t, &self.env.path, &self.conf.cni_version)?;
            if i.speaks_1_1() {
                i.exec("STATUS", &self.conf.json)?;
            }
        }
        Ok(())
    }

    fn gc(&self) -> Result<(), Error> {
        let valid = self.conf.valid_attachments.as_ref().ok_or_else(|| {
            Error::new(code::INVALID_CONFIG, "GC needs cni.dev/valid-attachments")
        })?;
        let ipam = self.ipam()?;
        for a in self.all()? {
            let keep = valid
                .iter()
                .any(|v| v.container_id == a.container_id && v.ifname == a.ifname);
            if keep {
                continue;
            }
            self.teardown(&a)?;
            if let Some(i) = &ipam {
                i.exec_for("DEL", &self.conf.json, &a.container_id, &a.ifname)?;
            }
            self.forget(&a.container_id, &a.ifname)?;
        }
        if let Some(i) = &ipam
            && i.speaks_1_1()
        {
            i.exec("GC", &self.conf.json)?;
        }
        Ok(())
    }
}

/// A MAC as CNI results write it: lower case, colon separated.
fn mac_text(m: MacAddr) -> String {
    m.to_string().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_an_interface_and_differ() {
        let a = port_name("vpc", "c1", "eth0", 0);
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("opte"));
        assert!(crate::conf::is_ifname(&a));
        assert_ne!(a, port_name("vpc", "c1", "eth0", 1));
        assert_ne!(a, port_name("vpc", "c2", "eth0", 0));
        assert_ne!(a, port_name("vpc", "c1", "eth1", 0));
        // Field boundaries matter: ("c1", "eth0") is not ("c1e", "th0").
        assert_ne!(a, port_name("vpc", "c1e", "th0", 0));
        assert_eq!(a, port_name("vpc", "c1", "eth0", 0));
    }

    #[test]
    fn macs_are_in_the_guest_range() {
        for c in ["a", "b", "c", "d", "e"] {
            let m = guest_mac("vpc", c, "eth0").bytes();
            assert_eq!(&m[..3], &[0xa8, 0x40, 0x25]);
            assert_eq!(m[3] & 0xf8, 0xf0);
        }
        assert_ne!(guest_mac("vpc", "a", "eth0"), guest_mac("vpc", "b", "eth0"));
    }
}
