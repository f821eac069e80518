//! The simulated rack: several sleds, each an `xde` core with two underlay links wired
//! through an in-process IPv6 switch, a boundary-services endpoint, guests as packet
//! endpoints (frames built with the engine's builders), and a simulated clock. Every
//! control command goes through the real path: postcard-encoded into a control frame,
//! decoded, dispatched, and the response framed and decoded again.
//!
//! A scenario that panics writes every frame it saw (guest, wire and boundary) to
//! `target/rack-pcaps/<name>.pcap`.
#![allow(dead_code)]

use opte::engine::time::Moment;
use opte::packet::Packet;
use opte::packet::parse::{InnerMeta, parse_guest};
use opte::pcap::PcapWriter;
use opte_api::{
    ControlRequest, ControlResponse, DhcpCfg, IpAddr, IpCidr, Ipv6Addr, MacAddr, OpteError,
    SetXdeUnderlayReq, Vni,
};
use oxide_vpc::api::PortAttach;
use oxide_vpc::api::cmd::{self, Command};
use oxide_vpc::api::{
    CreateXdeReq, ExternalIpCfg, FirewallRule, IpCfg, Ipv4Cfg, Ipv6Cfg, PhysNet, RouterClass,
    RouterTarget, SNatCfg, SetVirt2BoundaryReq, SetVirt2PhysReq, TunnelEndpoint, VpcCfg,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use xde::route::{Route, RouteError};
use xde::{Emit, Host, Link, Xde};

pub const SWITCH_MAC: MacAddr = MacAddr::from_const([0xa8, 0x40, 0x25, 0x00, 0x00, 0x99]);
pub const GW_MAC: MacAddr = MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]);
pub const BOUNDARY_IP: Ipv6Addr = Ipv6Addr::from_segments([0xfd00, 0x99, 0, 0, 0, 0, 0, 1]);
pub const BOUNDARY_VNI: u32 = 99;
/// The rack switch's own underlay address: the next hop multicast is forwarded to (it
/// replicates to every other sled).
pub const SWITCH_IP: Ipv6Addr = Ipv6Addr::from_segments([0xfd00, 0x99, 0, 0, 0, 0, 0, 0xff]);
pub const VNI_A: u32 = 1_287_581;
pub const VNI_B: u32 = 2_000_001;

pub fn p<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

pub fn vni(v: u32) -> Vni {
    Vni::new(v).unwrap()
}

pub fn sled_ip(i: usize) -> Ipv6Addr {
    Ipv6Addr::from_segments([0xfd00, 0, 0xf7, 0x101 + i as u16, 0, 0, 0, 1])
}

fn sled_mac(i: usize, link: Link) -> MacAddr {
    MacAddr::from_const([0xa8, 0x40, 0x25, 0x10, i as u8, link.index() as u8])
}

/// What the switch knows: which underlay addresses are reachable.
#[derive(Default)]
pub struct Directory {
    known: RwLock<Vec<Ipv6Addr>>,
}

/// The OS of one simulated sled.
pub struct SimHost {
    pub links_up: [AtomicBool; 2],
    /// The sled's clock for control commands (ns); tests move it.
    pub clock_ns: AtomicU64,
    pub resolves: AtomicU64,
    pub ports: RwLock<Vec<String>>,
    pub attached: AtomicBool,
    /// The last configuration file the core asked it to keep.
    pub saved_config: RwLock<Option<Vec<u8>>>,
    sled: usize,
    dir: Arc<Directory>,
}

impl Host for SimHost {
    fn attach_underlay(&self, _u1: &str, _u2: &str) -> Result<(), OpteError> {
        self.attached.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn detach_underlay(&self) {
        self.attached.store(false, Ordering::SeqCst);
    }

    fn create_port(
        &self,
        name: &str,
        _mac: MacAddr,
        _mtu: u32,
        _attach: &PortAttach,
        _linkid: u32,
    ) -> Result<(), OpteError> {
        self.ports.write().unwrap().push(name.to_string());
        Ok(())
    }

    fn delete_port(&self, name: &str) {
        self.ports.write().unwrap().retain(|n| n != name);
    }

    fn save_config(&self, file: &[u8]) -> Result<(), OpteError> {
        *self.saved_config.write().unwrap() = Some(file.to_vec());
        Ok(())
    }

    fn now(&self) -> Moment {
        Moment::from_nanos(self.clock_ns.load(Ordering::SeqCst))
    }

    fn next_hop(&self, dst: Ipv6Addr, hash: u16) -> Result<Route, RouteError> {
        self.resolves.fetch_add(1, Ordering::SeqCst);
        if !self.dir.known.read().unwrap().contains(&dst) {
            return Err(RouteError::NoRoute(dst));
        }
        let pick = [Link::U1, Link::U2][usize::from(hash % 2)];
        let other = if pick == Link::U1 { Link::U2 } else { Link::U1 };
        let up = |l: Link| self.links_up[l.index()].load(Ordering::SeqCst);
        let link = if up(pick) {
            pick
        } else if up(other) {
            other
        } else {
            return Err(RouteError::NoRoute(dst));
        };
        Ok(Route {
            link,
            src_mac: sled_mac(self.sled, link),
            dst_mac: SWITCH_MAC,
        })
    }
}

pub struct Sled {
    pub xde: Xde<SimHost>,
    pub ip: Ipv6Addr,
}

/// A frame the switch carried: from which sled, on which link.
pub struct WireFrame {
    pub from: usize,
    pub link: Link,
    pub bytes: Vec<u8>,
}

pub struct Rack {
    pub name: String,
    pub sleds: Vec<Sled>,
    pub now: Moment,
    dir: Arc<Directory>,
    /// Frames handed to each guest, by (sled, port).
    pub inbox: BTreeMap<(usize, String), Vec<Vec<u8>>>,
    /// Frames the boundary received.
    pub boundary: Vec<Vec<u8>>,
    pub wire: Vec<WireFrame>,
    /// Frames lost on a link that was down.
    pub lost: usize,
    pub not_ours: Vec<Vec<u8>>,
    pcap: RefCell<Vec<Vec<u8>>>,
}

impl Drop for Rack {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rack-pcaps");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{}.pcap", self.name));
        if let Ok(f) = std::fs::File::create(&path)
            && let Ok(mut w) = PcapWriter::new(f)
        {
            for (i, fr) in self.pcap.borrow().iter().enumerate() {
                let _ = w.write_frame(i as u64, fr);
            }
            let _ = w.flush();
            eprintln!("rack frames written to {}", path.display());
        }
    }
}

impl Rack {
    /// `n` sleds, each with its underlay attached, and the boundary reachable.
    pub fn new(name: &str, n: usize) -> Self {
        let rack = Self::unconfigured(name, n);
        for i in 0..n {
            rack.cmd::<cmd::SetXdeUnderlay>(
                i,
                &SetXdeUnderlayReq {
                    u1: format!("sled{i}u1"),
                    u2: format!("sled{i}u2"),
                },
            )
            .unwrap();
        }
        rack
    }

    /// `n` sleds with nothing configured, not even their underlay.
    pub fn unconfigured(name: &str, n: usize) -> Self {
        let dir = Arc::new(Directory::default());
        dir.known.write().unwrap().extend([BOUNDARY_IP, SWITCH_IP]);
        let mut sleds = Vec::new();
        for i in 0..n {
            dir.known.write().unwrap().push(sled_ip(i));
            let host = SimHost {
                links_up: [AtomicBool::new(true), AtomicBool::new(true)],
                clock_ns: AtomicU64::new(0),
                resolves: AtomicU64::new(0),
                ports: RwLock::new(Vec::new()),
                attached: AtomicBool::new(false),
                saved_config: RwLock::new(None),
                sled: i,
                dir: dir.clone(),
            };
            sleds.push(Sled {
                xde: Xde::new(host, 0x5eed + i as u64),
                ip: sled_ip(i),
            });
        }
        Self {
            name: name.into(),
            sleds,
            now: Moment::from_secs(100),
            dir,
            inbox: BTreeMap::new(),
            boundary: Vec::new(),
            wire: Vec::new(),
            lost: 0,
            not_ours: Vec::new(),
            pcap: RefCell::new(Vec::new()),
        }
    }

    /// Send a command to sled `i` through the control framing and dispatch.
    pub fn cmd<C: Command>(&self, i: usize, req: &C::Req) -> Result<C::Resp, OpteError> {
        let r = ControlRequest::with_body(C::CMD, req, 1 << 20).unwrap();
        let frame = r.to_frame().unwrap();
        let req = ControlRequest::from_frame_body(&frame[4..])?;
        let resp = self.sleds[i].xde.dispatch(&req);
        let frame = resp.to_frame().unwrap();
        ControlResponse::from_frame_body(&frame[4..])
            .unwrap()
            .into_result()
    }

    pub fn advance_ms(&mut self, ms: u64) {
        self.now = self.now.plus_millis(ms);
        for s in &self.sleds {
            s.xde
                .host()
                .clock_ns
                .store(self.now.as_nanos(), Ordering::SeqCst);
        }
    }

    /// Run every sled's once-a-second timer.
    pub fn tick(&mut self) {
        for s in &self.sleds {
            s.xde.tick(self.now);
        }
    }

    pub fn set_link(&self, sled: usize, link: Link, up: bool) {
        self.sleds[sled].xde.host().links_up[link.index()].store(up, Ordering::SeqCst);
    }

    /// Create guest `name` with `cfg` on sled `sled`, routed and firewalled the way the
    /// control plane sets a port up, and tell every other sled where it lives (V2P).
    pub fn add_guest(&self, sled: usize, name: &str, cfg: &VpcCfg) {
        self.cmd::<cmd::CreateXde>(
            sled,
            &CreateXdeReq {
                linkid: 0,
                xde_devname: name.into(),
                cfg: cfg.clone(),
                mtu: None,
                attach: PortAttach::Netdev,
            },
        )
        .unwrap();
        let mut routes = vec![];
        if let Some(c) = cfg.ipv4() {
            let sub = IpCidr::Ip4(c.vpc_subnet);
            routes.push((sub, RouterTarget::VpcSubnet(sub)));
            routes.push((p("0.0.0.0/0"), RouterTarget::InternetGateway(None)));
        }
        if let Some(c) = cfg.ipv6() {
            let sub = IpCidr::Ip6(c.vpc_subnet);
            routes.push((sub, RouterTarget::VpcSubnet(sub)));
            routes.push((p("::/0"), RouterTarget::InternetGateway(None)));
        }
        for (dest, target) in routes {
            self.cmd::<cmd::AddRouterEntry>(
                sled,
                &oxide_vpc::api::AddRouterEntryReq {
                    port_name: name.into(),
                    dest,
                    target,
                    class: RouterClass::System,
                },
            )
            .unwrap();
        }
        self.cmd::<cmd::SetFwRules>(
            sled,
            &oxide_vpc::api::SetFwRulesReq {
                port_name: name.into(),
                rules: default_fw_rules(cfg.vni),
            },
        )
        .unwrap();
        let tep = TunnelEndpoint {
            ip: BOUNDARY_IP,
            vni: vni(BOUNDARY_VNI),
        };
        for cidr in ["0.0.0.0/0", "::/0"] {
            self.cmd::<cmd::SetVirt2Boundary>(
                sled,
                &SetVirt2BoundaryReq {
                    vip: p(cidr),
                    tep: vec![tep],
                },
            )
            .unwrap();
        }
        for other in (0..self.sleds.len()).filter(|o| *o != sled) {
            self.map_guest(other, cfg);
        }
    }

    /// Tell sled `on` where `cfg`'s guest lives.
    pub fn map_guest(&self, on: usize, cfg: &VpcCfg) {
        let phys = PhysNet {
            ether: cfg.guest_mac,
            ip: cfg.phys_ip,
            vni: cfg.vni,
        };
        for vip in own_ips(cfg) {
            self.cmd::<cmd::SetVirt2Phys>(on, &SetVirt2PhysReq { vip, phys })
                .unwrap();
        }
    }

    /// Guest `port` on sled `sled` sends `frame`; everything it causes is carried out.
    pub fn send(&mut self, sled: usize, port: &str, frame: Vec<u8>) {
        self.pcap.borrow_mut().push(frame.clone());
        let xp = self.sleds[sled].xde.port(port).expect("no such port");
        let mut out = Vec::new();
        self.sleds[sled]
            .xde
            .tx(&xp, Packet::copy_from(&frame), self.now, &mut out);
        self.pump(sled, out);
    }

    /// An encapsulated frame arrives at sled `sled` on `link` (from the boundary, or forged).
    pub fn inject(&mut self, sled: usize, link: Link, frame: Vec<u8>) {
        self.pcap.borrow_mut().push(frame.clone());
        let mut out = Vec::new();
        self.sleds[sled]
            .xde
            .rx(link, Packet::copy_from(&frame), self.now, &mut out);
        self.pump(sled, out);
    }

    fn pump(&mut self, from: usize, out: Vec<Emit>) {
        let mut q: VecDeque<(usize, Emit)> = out.into_iter().map(|e| (from, e)).collect();
        while let Some((s, e)) = q.pop_front() {
            match e {
                Emit::Guest { port, pkt } => {
                    let b = pkt.to_vec();
                    self.pcap.borrow_mut().push(b.clone());
                    self.inbox
                        .entry((s, port.name().to_string()))
                        .or_default()
                        .push(b);
                }
                Emit::NotOurs(pkt) => self.not_ours.push(pkt.to_vec()),
                Emit::Spent(_) => {}
                Emit::Underlay { link, pkt } => {
                    let b = pkt.to_vec();
                    self.pcap.borrow_mut().push(b.clone());
                    self.wire.push(WireFrame {
                        from: s,
                        link,
                        bytes: b.clone(),
                    });
                    if !self.sleds[s].xde.host().links_up[link.index()].load(Ordering::SeqCst) {
                        self.lost += 1;
                        continue;
                    }
                    assert_eq!(&b[6..12], &sled_mac(s, link).bytes(), "outer source MAC");
                    let dst = Ipv6Addr::from_const(b[38..54].try_into().unwrap());
                    let targets: Vec<usize> = if dst.is_multicast() {
                        (0..self.sleds.len()).filter(|d| *d != s).collect()
                    } else if dst == BOUNDARY_IP {
                        self.boundary.push(b);
                        continue;
                    } else {
                        (0..self.sleds.len())
                            .filter(|d| self.sleds[*d].ip == dst)
                            .collect()
                    };
                    for d in targets {
                        let mut o = Vec::new();
                        self.sleds[d]
                            .xde
                            .rx(link, Packet::copy_from(&b), self.now, &mut o);
                        q.extend(o.into_iter().map(|e| (d, e)));
                    }
                }
            }
        }
    }

    /// Take the frames guest `port` of sled `sled` has received.
    pub fn take(&mut self, sled: usize, port: &str) -> Vec<Vec<u8>> {
        self.inbox
            .remove(&(sled, port.to_string()))
            .unwrap_or_default()
    }

    /// A host counter of sled `sled`.
    pub fn counter(&self, sled: usize, name: &str) -> u64 {
        self.sleds[sled].xde.stats().get(name).unwrap()
    }
}

pub fn own_ips(cfg: &VpcCfg) -> Vec<IpAddr> {
    let mut v = vec![];
    if let Some(c) = cfg.ipv4() {
        v.push(IpAddr::Ip4(c.private_ip));
    }
    if let Some(c) = cfg.ipv6() {
        v.push(IpAddr::Ip6(c.private_ip));
    }
    v
}

/// The RFD 63 default inbound rules: from the VPC, SSH, ICMP.
pub fn default_fw_rules(v: Vni) -> Vec<FirewallRule> {
    FirewallRule::vpc_defaults(v)
}

/// A dual-stack guest of VPC `v`: 172.30.0.`last` and fd00::`last`, SNAT on 10.77.77.13.
pub fn guest(v: u32, last: u8, sled: usize) -> VpcCfg {
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
                external_ips: ExternalIpCfg::default(),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            },
        },
        guest_mac: MacAddr::from_const([0xa8, 0x40, 0x25, 0xfa, (v % 251) as u8, last]),
        gateway_mac: GW_MAC,
        vni: vni(v),
        phys_ip: sled_ip(sled),
        dhcp: DhcpCfg::default(),
    }
}

pub fn ip4(c: &VpcCfg) -> IpAddr {
    IpAddr::Ip4(c.ipv4().unwrap().private_ip)
}

pub fn ip6(c: &VpcCfg) -> IpAddr {
    IpAddr::Ip6(c.ipv6().unwrap().private_ip)
}

pub use opte::build::samples::{L4, frame};

pub mod tcpf {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

pub fn tcp(sport: u16, dport: u16, flags: u8, seq: u32, ack: u32) -> L4 {
    L4::tcp(sport, dport, flags, seq, ack)
}

/// A frame guest `c` sends to the gateway (everything it sends off-link).
pub fn from_guest(c: &VpcCfg, src: IpAddr, dst: IpAddr, l4: L4, body: &[u8]) -> Vec<u8> {
    frame(c.guest_mac, c.gateway_mac, src, dst, l4, body)
}

/// Parse a frame a guest received.
pub fn parsed(f: &[u8]) -> InnerMeta {
    parse_guest(&mut Packet::copy_from(f)).unwrap()
}

/// The L4 payload of a frame a guest received.
pub fn payload(f: &[u8]) -> Vec<u8> {
    let m = parsed(f);
    let off = m.body.off as usize;
    f[off..off + m.body_len as usize].to_vec()
}
