//! The demo's VPC, built for real in network namespaces:
//!
//! ```text
//!              internet (203.0.113.10, a web server)
//!                 │ eth0 ── inet0 (203.0.113.1)
//!              boundary services (xde-boundary; fd00:99::1; a TUN toward the internet)
//!                 │ u1 u2
//!   rack switch: two bridges, sw1 (fd00:1::/64) and sw2 (fd00:2::/64)
//!                 │ u1 u2                     │ u1 u2
//!              sled 0 (xded; fd00:10::1)   sled 1 (xded; fd00:10::2)
//!                 │ TAP                       │ TAP        │ TAP
//!              guest a1                    guest a2     guest b1
//! ```
//!
//! Every sled and the boundary have two underlay links, one to each bridge, their own
//! address on the loopback, and ECMP routes to each other's over both. Guests are
//! namespaces holding their port's TAP; they lease their addresses with `dhclient`.

use crate::{Daemon, Netns, Proc, wire};
use opte_api::{DhcpCfg, Ipv6Addr, MacAddr, Vni};
use oxide_vpc::api::{
    ExternalIpCfg, IpCfg, Ipv4Cfg, Ipv6Cfg, PortAttach, SNatCfg, SetVirt2BoundaryReq,
    TunnelEndpoint, VpcCfg,
};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The VNI of traffic to boundary services.
pub const BOUNDARY_VNI: u32 = 99;
/// The boundary's underlay address.
pub const BOUNDARY_IP: &str = "fd00:99::1";
/// The internet host's address, and the boundary's on the same link.
pub const INTERNET_IP: &str = "203.0.113.10";
const INTERNET_GW: &str = "203.0.113.1";
/// External IPs (SNAT, ephemeral, floating) are taken from here.
pub const EXTERNAL_NET: &str = "198.51.100.0/24";
/// The virtual gateway's MAC on every port.
pub const GW_MAC: MacAddr = MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]);
/// The underlay's MTU: a full guest frame plus Geneve fits.
const UNDERLAY_MTU: u32 = 9000;

/// The programs the lab runs.
#[derive(Clone, Debug)]
pub struct Bins {
    pub xded: PathBuf,
    pub boundary: PathBuf,
}

impl Bins {
    /// The daemon's programs in the same build directory as `exe` (a test's own program:
    /// the workspace's tests build them all there), or why not.
    pub fn beside(exe: &std::path::Path) -> Result<Self, String> {
        let dir = exe.parent().ok_or("a program without a directory")?;
        let b = Self {
            xded: dir.join("xded"),
            boundary: dir.join("xde-boundary"),
        };
        if b.xded.is_file() && b.boundary.is_file() {
            Ok(b)
        } else {
            Err(format!(
                "build the daemon first (cargo build -p xde): {b:?}"
            ))
        }
    }
}

/// A guest to make.
#[derive(Clone, Debug)]
pub struct GuestSpec {
    /// Its port's (and TAP's) name.
    pub name: String,
    pub vni: u32,
    /// Its IPv4 address is 172.`net`.0.`last` in 172.`net`.0.0/22; its IPv6 address
    /// fd`net`::`last` in fd`net`::/64.
    pub net: u8,
    pub last: u8,
    pub sled: usize,
    /// Its SNAT address and port range.
    pub snat: Option<(String, RangeInclusive<u16>)>,
    /// More external IPs that boundary services routes to it (ephemeral and floating IPs
    /// it may be given later).
    pub more_external: Vec<String>,
}

impl GuestSpec {
    pub fn new(name: &str, vni: u32, net: u8, last: u8, sled: usize) -> Self {
        Self {
            name: name.into(),
            vni,
            net,
            last,
            sled,
            snat: None,
            more_external: Vec::new(),
        }
    }

    pub fn snat(mut self, ip: &str, ports: RangeInclusive<u16>) -> Self {
        self.snat = Some((ip.into(), ports));
        self
    }

    pub fn external(mut self, ip: &str) -> Self {
        self.more_external.push(ip.into());
        self
    }

    /// The port's configuration on sled address `phys_ip`.
    pub fn cfg(&self, phys_ip: Ipv6Addr) -> Result<VpcCfg, String> {
        let n = self.net;
        let snat = match &self.snat {
            Some((ip, ports)) => Some(SNatCfg {
                external_ip: parse(ip)?,
                ports: ports.clone(),
            }),
            None => None,
        };
        Ok(VpcCfg {
            ip_cfg: IpCfg::DualStack {
                ipv4: Ipv4Cfg {
                    vpc_subnet: parse(&format!("172.{n}.0.0/22"))?,
                    private_ip: parse(&format!("172.{n}.0.{}", self.last))?,
                    gateway_ip: parse(&format!("172.{n}.0.1"))?,
                    external_ips: ExternalIpCfg {
                        snat,
                        ephemeral_ip: None,
                        floating_ips: vec![],
                    },
                    attached_subnets: BTreeMap::new(),
                    transit_ips: BTreeMap::new(),
                },
                ipv6: Ipv6Cfg {
                    vpc_subnet: parse(&format!("fd{n}::/64"))?,
                    private_ip: parse(&format!("fd{n}::{}", self.last))?,
                    gateway_ip: parse(&format!("fd{n}::1"))?,
                    external_ips: ExternalIpCfg::default(),
                    attached_subnets: BTreeMap::new(),
                    transit_ips: BTreeMap::new(),
                },
            },
            guest_mac: MacAddr::from_const([
                0xa8,
                0x40,
                0x25,
                0xfa,
                (self.vni % 251) as u8,
                self.last,
            ]),
            gateway_mac: GW_MAC,
            vni: Vni::new(self.vni).ok_or("bad VNI")?,
            phys_ip,
            dhcp: DhcpCfg {
                hostname: Some(parse(&self.name)?),
                host_domain: Some(parse("vpc.example")?),
                domain_search_list: vec![parse("vpc.example")?],
                dns4_servers: vec![parse("203.0.113.53")?],
                dns6_servers: vec![],
            },
        })
    }
}

/// A sled: a namespace running `xded`.
#[derive(Debug)]
pub struct Sled {
    /// Dropped first: the daemon ends (its TAPs go with it) before its namespace.
    pub daemon: Daemon,
    pub ns: Netns,
    pub ip: Ipv6Addr,
}

/// A guest: a namespace holding its port's TAP.
#[derive(Debug)]
pub struct Guest {
    pub name: String,
    pub cfg: VpcCfg,
    pub sled: usize,
    pub ns: Netns,
    /// Its `dhclient` lease files: DHCPv4, DHCPv6.
    pub leases: [PathBuf; 2],
}

impl Guest {
    pub fn ip4(&self) -> String {
        self.cfg
            .ipv4()
            .map(|c| c.private_ip.to_string())
            .unwrap_or_default()
    }

    pub fn ip6(&self) -> String {
        self.cfg
            .ipv6()
            .map(|c| c.private_ip.to_string())
            .unwrap_or_default()
    }
}

/// The whole VPC. Its parts go in field order when it drops: guests, sleds, boundary,
/// internet, switch.
#[derive(Debug)]
pub struct Lab {
    pub id: String,
    pub guests: Vec<Guest>,
    pub sleds: Vec<Sled>,
    pub boundary: Proc,
    pub boundary_ns: Netns,
    pub internet: Netns,
    pub switch: Netns,
    /// Leases, PID files, the boundary's log.
    pub dir: PathBuf,
    /// Who owns each external IP, as the boundary's NAT file says.
    nat: Vec<NatOwner>,
    /// The sleds' daemon and its arguments, to start one again ([`Lab::start_sled`]).
    xded: PathBuf,
    xded_args: Vec<String>,
    keep: bool,
}

/// How [`Lab::stop_sled`] stops a daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: a clean stop (one that keeps state saves its flows).
    Term,
    /// SIGKILL: nothing is saved at the stop.
    Kill,
}

/// One line of the boundary's NAT file: `external` (`IP[@FIRST-LAST]`) belongs to guest
/// `guest`, on sled `sled`.
#[derive(Clone, Debug)]
struct NatOwner {
    guest: String,
    external: String,
    sled: usize,
    vni: u32,
    mac: MacAddr,
}

/// Write the boundary's NAT file whole (a temporary file renamed over it), so the
/// boundary never reads half of it.
fn write_nat_file(path: &std::path::Path, nat: &[NatOwner]) -> Result<(), String> {
    let mut text = String::from("# EXTERNAL[@FIRST-LAST]=SLED,VNI,MAC, written by the lab\n");
    for n in nat {
        text += &format!("{}={},{},{}\n", n.external, sled_ip(n.sled), n.vni, n.mac);
    }
    let tmp = path.with_extension("nat.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// What moving a guest carried ([`Lab::move_guest`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    /// Flow pairs and TCP connections in the flow state.
    pub pairs: u64,
    pub tcp: u64,
    /// How long the guest's port was paused: from the export until its interface was
    /// back in its namespace on the new sled.
    pub paused: Duration,
}

/// The underlay addresses of host `k` (a sled, or the boundary after them): on link 1,
/// on link 2.
fn link_addrs(k: usize) -> [String; 2] {
    [format!("fd00:1::{}", k + 1), format!("fd00:2::{}", k + 1)]
}

fn sled_ip(i: usize) -> String {
    format!("fd00:10::{}", i + 1)
}

impl Lab {
    /// Build it: `sleds` sleds, the boundary, the internet, and `guests` (each leasing its
    /// addresses by DHCP). Anything made is removed again if a step fails.
    ///
    /// `id` names it: its namespaces are `ID-ROLE` (`ID-sled0`, `ID-a1`...), its files are
    /// in the directory `ID` under the temporary directory. Make it unique
    /// ([`crate::unique`]); [`remove_by_id`] removes what a lab of that id left.
    pub fn build(
        bins: &Bins,
        id: &str,
        sleds: usize,
        guests: &[GuestSpec],
    ) -> Result<Self, String> {
        Self::build_with(bins, id, sleds, guests, &[])
    }

    /// [`Lab::build`], every sled's `xded` started with `xded_args` too; `{dir}` in them
    /// stands for the sled's own directory (`--state-dir {dir}/state`).
    pub fn build_with(
        bins: &Bins,
        id: &str,
        sleds: usize,
        guests: &[GuestSpec],
        xded_args: &[&str],
    ) -> Result<Self, String> {
        let id = id.to_string();
        let dir = lab_dir(&id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lab = Self::build_in(bins, id, dir.clone(), sleds, guests, xded_args);
        if lab.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        lab
    }

    fn build_in(
        bins: &Bins,
        id: String,
        dir: PathBuf,
        sleds: usize,
        guests: &[GuestSpec],
        xded_args: &[&str],
    ) -> Result<Self, String> {
        let ns = |role: &str| Netns::try_named(&format!("{id}-{role}"));
        // Made in the reverse of the order they are removed.
        let switch = ns("switch")?;
        let internet = ns("inet")?;
        let boundary_ns = ns("bsvc")?;
        let mut hosts: Vec<Netns> = Vec::new();
        for i in 0..sleds {
            hosts.push(ns(&format!("sled{i}"))?);
        }

        // The rack switch: a bridge per underlay; every sled and the boundary on both.
        for br in ["sw1", "sw2"] {
            switch.try_exec(&["ip", "link", "add", br, "type", "bridge"])?;
            switch.try_exec(&["ip", "link", "set", br, "up"])?;
        }
        let mut all: Vec<(&Netns, String)> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h, sled_ip(i)))
            .collect();
        all.push((&boundary_ns, BOUNDARY_IP.to_string()));
        for (k, (h, lo)) in all.iter().enumerate() {
            for (l, br) in [(1, "sw1"), (2, "sw2")] {
                let port = format!("h{k}u{l}");
                wire(h, &format!("u{l}"), &switch, &port, UNDERLAY_MTU)?;
                switch.try_exec(&["ip", "link", "set", &port, "master", br])?;
            }
            let [a1, a2] = link_addrs(k);
            h.try_exec(&[
                "ip",
                "addr",
                "add",
                &format!("{a1}/64"),
                "dev",
                "u1",
                "nodad",
            ])?;
            h.try_exec(&[
                "ip",
                "addr",
                "add",
                &format!("{a2}/64"),
                "dev",
                "u2",
                "nodad",
            ])?;
            h.try_exec(&["ip", "addr", "add", &format!("{lo}/128"), "dev", "lo"])?;
            // A link without carrier is no way to a peer.
            h.try_exec(&[
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.ignore_routes_with_linkdown=1",
            ])?;
        }
        for (k, (h, _)) in all.iter().enumerate() {
            for (j, (_, peer_lo)) in all.iter().enumerate() {
                if j == k {
                    continue;
                }
                let [v1, v2] = link_addrs(j);
                h.try_exec(&[
                    "ip",
                    "-6",
                    "route",
                    "add",
                    &format!("{peer_lo}/128"),
                    "nexthop",
                    "via",
                    &v1,
                    "dev",
                    "u1",
                    "nexthop",
                    "via",
                    &v2,
                    "dev",
                    "u2",
                ])?;
            }
        }
        // Neighbours learnt before traffic flows: a frame whose next hop is unresolved is
        // dropped while the kernel resolves it (a counted drop, never a guess).
        for (k, (h, _)) in all.iter().enumerate() {
            for j in (0..all.len()).filter(|&j| j != k) {
                for a in link_addrs(j) {
                    h.try_exec(&["ping", "-c", "1", "-W", "2", &a])?;
                }
            }
        }

        // The internet, behind the boundary.
        wire(&boundary_ns, "inet0", &internet, "eth0", 1500)?;
        boundary_ns.try_exec(&[
            "ip",
            "addr",
            "add",
            &format!("{INTERNET_GW}/24"),
            "dev",
            "inet0",
        ])?;
        boundary_ns.try_exec(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])?;
        internet.try_exec(&[
            "ip",
            "addr",
            "add",
            &format!("{INTERNET_IP}/24"),
            "dev",
            "eth0",
        ])?;
        internet.try_exec(&["ip", "route", "add", "default", "via", INTERNET_GW])?;

        // Boundary services, told who owns each external IP (in a file it reads again
        // when it changes: a guest that moves takes its external IPs along).
        let mut nat = Vec::new();
        for g in guests {
            let (mac, vni) = (g.cfg(Ipv6Addr::from_const([0; 16]))?.guest_mac, g.vni);
            if let Some((ip, ports)) = &g.snat {
                nat.push(NatOwner {
                    guest: g.name.clone(),
                    external: format!("{ip}@{}-{}", ports.start(), ports.end()),
                    sled: g.sled,
                    vni,
                    mac,
                });
            }
            for ip in &g.more_external {
                nat.push(NatOwner {
                    guest: g.name.clone(),
                    external: ip.clone(),
                    sled: g.sled,
                    vni,
                    mac,
                });
            }
        }
        let nat_file = dir.join("boundary.nat");
        write_nat_file(&nat_file, &nat)?;
        let log_path = dir.join("boundary.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut cmd = boundary_ns.command(&bins.boundary);
        cmd.args([
            "--underlay",
            "u1",
            "--underlay",
            "u2",
            "--addr",
            BOUNDARY_IP,
            "--tun",
            "bsvc",
            "--nat-file",
        ]);
        cmd.arg(&nat_file);
        cmd.stdout(std::process::Stdio::null()).stderr(log);
        let mut boundary = Proc::spawn(&mut cmd)?;
        let until = Instant::now() + Duration::from_secs(10);
        while boundary_ns
            .try_exec(&["ip", "link", "show", "bsvc"])
            .is_err()
        {
            if boundary.exited().is_some() || Instant::now() > until {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("xde-boundary did not start: {log}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        boundary_ns.try_exec(&["ip", "route", "add", EXTERNAL_NET, "dev", "bsvc"])?;

        // The sleds' daemons, their underlay, the way to the boundary.
        let mut sled_v = Vec::new();
        for (i, ns) in hosts.into_iter().enumerate() {
            let sled_dir = dir.join(format!("sled{i}"));
            let args = sled_args(xded_args, &sled_dir);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let daemon = Daemon::start_at_with(&bins.xded, Some(&ns), sled_dir, &args)?;
            let hdl = daemon.hdl();
            hdl.set_xde_underlay("u1", "u2")
                .map_err(|e| e.to_string())?;
            for vip in ["0.0.0.0/0", "::/0"] {
                hdl.set_v2b(&SetVirt2BoundaryReq {
                    vip: vip.parse().map_err(|_| "bad prefix")?,
                    tep: vec![TunnelEndpoint {
                        ip: parse(BOUNDARY_IP)?,
                        vni: Vni::new(BOUNDARY_VNI).ok_or("bad VNI")?,
                    }],
                })
                .map_err(|e| e.to_string())?;
            }
            sled_v.push(Sled {
                daemon,
                ns,
                ip: parse(&sled_ip(i))?,
            });
        }
        let mut lab = Self {
            id,
            guests: Vec::new(),
            sleds: sled_v,
            boundary,
            boundary_ns,
            internet,
            switch,
            dir,
            nat,
            xded: bins.xded.clone(),
            xded_args: xded_args.iter().map(|a| a.to_string()).collect(),
            keep: false,
        };
        for g in guests {
            lab.add_guest(g)?;
        }
        Ok(lab)
    }

    /// Make guest `g`: its port on its sled, the port's routes and firewall, its TAP moved
    /// into a namespace of its own, its addresses leased there by DHCPv4 and DHCPv6; every
    /// sled told where it lives.
    pub fn add_guest(&mut self, g: &GuestSpec) -> Result<(), String> {
        let cfg = self.make_port(g, PortAttach::Netdev)?;
        let sled = &self.sleds[g.sled];
        let ns = Netns::try_named(&format!("{}-{}", self.id, g.name))?;
        sled.ns
            .try_exec(&["ip", "link", "set", &g.name, "netns", ns.name()])?;
        ns.try_exec(&["ip", "link", "set", &g.name, "up"])?;
        let leases = [
            ns.dhclient("-4", &g.name, &self.dir)?,
            ns.dhclient("-6", &g.name, &self.dir)?,
        ];
        self.guests.push(Guest {
            name: g.name.clone(),
            cfg,
            sled: g.sled,
            ns,
            leases,
        });
        Ok(())
    }

    /// Make the port of a virtual machine `g` (`create-xde --vmm`): its TAP stays in its
    /// sled's namespace for the VM monitor to open by name; routes, firewall and every
    /// sled's V2P mapping as for any guest. The VM leases its addresses itself.
    pub fn add_vm_port(&mut self, g: &GuestSpec) -> Result<VpcCfg, String> {
        self.make_port(g, PortAttach::Vmm)
    }

    /// Make the vhost-user port of a virtual machine `g` (`create-xde --vhost-user
    /// PATH`): its sled's daemon serves the protocol at `path`.
    pub fn add_vhost_user_port(
        &mut self,
        g: &GuestSpec,
        path: &std::path::Path,
    ) -> Result<VpcCfg, String> {
        let path = path.to_str().ok_or("a socket path that is not UTF-8")?;
        self.make_port(g, PortAttach::VhostUser(path.to_string()))
    }

    /// Guest `g`'s port on its sled, with the port's routes and firewall; every sled told
    /// where it lives.
    fn make_port(&self, g: &GuestSpec, attach: PortAttach) -> Result<VpcCfg, String> {
        let sled = self
            .sleds
            .get(g.sled)
            .ok_or_else(|| format!("no sled {}", g.sled))?;
        let cfg = g.cfg(sled.ip)?;
        let e = |e: opte_ioctl::Error| format!("{}: {e}", g.name);
        sled.daemon
            .hdl()
            .create_guest_port(&g.name, &cfg, None, attach)
            .map_err(e)?;
        for s in &self.sleds {
            s.daemon.hdl().publish_guest(&cfg).map_err(e)?;
        }
        Ok(cfg)
    }

    pub fn guest(&self, name: &str) -> &Guest {
        self.guests
            .iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("no guest {name}"))
    }

    /// The sled a guest is on.
    pub fn sled_of(&self, name: &str) -> &Sled {
        &self.sleds[self.guest(name).sled]
    }

    /// Move guest `name` to sled `to` as a live migration does, its connections running:
    /// a port of the same configuration on the new sled; the old port paused and its flow
    /// state exported into the new one; the guest's interface swapped in its namespace for
    /// the new port's, with the addresses and routes it had (its `dhclient`s are ended
    /// first, by PID, so they cannot clean up after the old one); the old port deleted;
    /// every sled told where the guest lives now, and the boundary where its external IPs
    /// go.
    pub fn move_guest(&mut self, name: &str, to: usize) -> Result<Moved, String> {
        let gi = self
            .guests
            .iter()
            .position(|g| g.name == name)
            .ok_or_else(|| format!("no guest {name}"))?;
        let from = self.guests[gi].sled;
        if to == from || to >= self.sleds.len() {
            return Err(format!("{name} cannot move from sled {from} to sled {to}"));
        }
        let cfg = VpcCfg {
            phys_ip: self.sleds[to].ip,
            ..self.guests[gi].cfg.clone()
        };
        let e = |what: &'static str| move |err: opte_ioctl::Error| format!("{name}: {what}: {err}");
        let (old, new, g) = (&self.sleds[from], &self.sleds[to], &self.guests[gi]);
        new.daemon
            .hdl()
            .create_guest_port(name, &cfg, None, PortAttach::Netdev)
            .map_err(e("its port on the new sled"))?;

        // What the guest's interface carries, to put back on the new one.
        let addrs =
            g.ns.try_exec(&["ip", "-o", "addr", "show", "dev", name, "scope", "global"])?;
        let routes: Vec<(&str, String)> = vec![
            (
                "-4",
                g.ns.try_exec(&["ip", "-4", "route", "show", "dev", name])?,
            ),
            (
                "-6",
                g.ns.try_exec(&["ip", "-6", "route", "show", "dev", name])?,
            ),
        ];
        for fam in ["-4", "-6"] {
            let pid = self.dir.join(format!("{}-{name}{fam}.pid", g.ns.name()));
            if let Ok(p) = std::fs::read_to_string(&pid)
                && let Ok(p) = p.trim().parse::<i32>()
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }

        let t0 = Instant::now();
        let exp = old
            .daemon
            .hdl()
            .export_port(name)
            .map_err(e("exporting its flow state"))?;
        new.daemon
            .hdl()
            .import_port(name, exp.state)
            .map_err(e("importing its flow state"))?;
        g.ns.try_exec(&["ip", "link", "set", name, "netns", old.ns.name()])?;
        new.ns
            .try_exec(&["ip", "link", "set", name, "netns", g.ns.name()])?;
        g.ns.try_exec(&["ip", "link", "set", name, "up"])?;
        for line in addrs.lines() {
            let mut t = line.split_whitespace();
            let Some(fam) = t.find(|w| *w == "inet" || *w == "inet6") else {
                continue;
            };
            let Some(addr) = t.next() else {
                continue;
            };
            let mut cmd = vec!["ip", "addr", "add", addr, "dev", name];
            if fam == "inet6" {
                cmd.push("nodad");
            }
            g.ns.try_exec(&cmd)?;
        }
        // On-link routes before the routes through them.
        for defaults in [false, true] {
            for (fam, text) in &routes {
                for line in text.lines() {
                    // Flags and lifetimes `ip route show` prints but `add` does not take.
                    let mut words: Vec<&str> = Vec::new();
                    let mut it = line.split_whitespace();
                    while let Some(w) = it.next() {
                        match w {
                            "linkdown" => {}
                            "expires" => {
                                it.next();
                            }
                            w => words.push(w),
                        }
                    }
                    if words.is_empty()
                        || line.contains("proto kernel")
                        || (words[0] == "default") != defaults
                    {
                        continue;
                    }
                    let mut cmd = vec!["ip", fam, "route", "replace"];
                    cmd.extend(&words);
                    cmd.extend(["dev", name]);
                    g.ns.try_exec(&cmd)?;
                }
            }
        }
        let paused = t0.elapsed();

        old.daemon
            .hdl()
            .delete_xde(name)
            .map_err(e("deleting its old port"))?;
        for s in &self.sleds {
            s.daemon
                .hdl()
                .publish_guest(&cfg)
                .map_err(e("its new V2P mapping"))?;
        }
        for n in self.nat.iter_mut().filter(|n| n.guest == name) {
            n.sled = to;
        }
        write_nat_file(&self.dir.join("boundary.nat"), &self.nat)?;
        let g = &mut self.guests[gi];
        g.sled = to;
        g.cfg = cfg;
        Ok(Moved {
            pairs: exp.pairs,
            tcp: exp.tcp,
            paused,
        })
    }

    /// Stop sled `i`'s daemon; its directory (state, log) stays for [`Lab::start_sled`].
    /// The exit status, for a clean stop.
    pub fn stop_sled(&mut self, i: usize, how: Stop) -> Option<std::process::ExitStatus> {
        let d = &mut self.sleds[i].daemon;
        match how {
            Stop::Term => Some(d.stop()),
            Stop::Kill => {
                d.proc.kill();
                None
            }
        }
    }

    /// Start sled `i`'s daemon again, in its directory, with the lab's arguments; once its
    /// socket answers. On failure the error carries the daemon's log.
    pub fn start_sled(&mut self, i: usize) -> Result<(), String> {
        let sled = &mut self.sleds[i];
        if sled.daemon.proc.exited().is_none() {
            return Err(format!("sled {i}'s daemon is still running"));
        }
        let dir = sled.daemon.dir.clone();
        let args = sled_args(&self.xded_args, &dir);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let d = Daemon::start_at_with(&self.xded, Some(&sled.ns), dir, &args)?;
        // The old guard must not take the directory with it.
        sled.daemon.keep();
        sled.daemon = d;
        Ok(())
    }

    /// The boundary's log.
    pub fn boundary_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("boundary.log")).unwrap_or_default()
    }

    /// Leave everything up when this drops; returns the namespaces and PIDs to remove
    /// later (see [`down`]).
    pub fn keep(&mut self) -> State {
        self.keep = true;
        let mut namespaces: Vec<String> = self.guests.iter().map(|g| g.ns.name().into()).collect();
        let mut pids = vec![self.boundary.pid()];
        let dirs = vec![self.dir.clone()];
        for g in &mut self.guests {
            g.ns.keep();
        }
        for s in &mut self.sleds {
            namespaces.push(s.ns.name().into());
            pids.push(s.daemon.proc.pid());
            s.ns.keep();
            s.daemon.keep();
        }
        self.boundary.keep();
        for ns in [&mut self.boundary_ns, &mut self.internet, &mut self.switch] {
            namespaces.push(ns.name().into());
            ns.keep();
        }
        State {
            pids,
            namespaces,
            dirs,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What a kept lab left running: enough to take it down from another process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub pids: Vec<u32>,
    pub namespaces: Vec<String>,
    pub dirs: Vec<PathBuf>,
}

impl State {
    /// One `kind value` line each.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for p in &self.pids {
            s += &format!("pid {p}\n");
        }
        for n in &self.namespaces {
            s += &format!("netns {n}\n");
        }
        for d in &self.dirs {
            s += &format!("dir {}\n", d.display());
        }
        s
    }

    pub fn from_text(t: &str) -> Self {
        let mut s = Self::default();
        for line in t.lines() {
            match line.split_once(' ') {
                Some(("pid", p)) => s.pids.extend(p.parse::<u32>().ok()),
                Some(("netns", n)) => s.namespaces.push(n.into()),
                Some(("dir", d)) => s.dirs.push(d.into()),
                _ => {}
            }
        }
        s
    }
}

/// Take down what a kept lab left: its processes by PID (SIGTERM: the daemons remove
/// their TAPs and sockets), then its namespaces, then its directories.
pub fn down(s: &State) {
    for &pid in &s.pids {
        // Only a process of ours: the PID may have been reused since.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains("xde") {
            continue;
        }
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
            let until = Instant::now() + Duration::from_secs(5);
            while nix::sys::signal::kill(pid, None).is_ok() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    for n in &s.namespaces {
        crate::remove_netns(n);
    }
    for d in &s.dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// On SIGINT or SIGTERM, remove what the lab named `id` made (see [`remove_by_id`]) and
/// exit. Blocks both signals in the calling thread: call it first, from the main thread.
pub fn on_interrupt_remove(id: String) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        if set.wait().is_ok() {
            println!("\ninterrupted: removing {id}");
            remove_by_id(&id);
            std::process::exit(130);
        }
    });
}

/// The arguments of sled daemon whose directory is `dir`: `{dir}` stands for it.
fn sled_args(args: &[impl AsRef<str>], dir: &std::path::Path) -> Vec<String> {
    let d = dir.display().to_string();
    args.iter()
        .map(|a| a.as_ref().replace("{dir}", &d))
        .collect()
}

/// Where a lab keeps its files.
fn lab_dir(id: &str) -> PathBuf {
    std::env::temp_dir().join(id)
}

/// Remove what a lab named `id` left, from anywhere (a demo interrupted midway): its
/// namespaces (what runs in them is ended first) and its files.
pub fn remove_by_id(id: &str) {
    if let Ok(list) = crate::try_ok("ip", &["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if name.strip_prefix(id).is_some_and(|r| r.starts_with('-')) {
                crate::remove_netns(name);
            }
        }
    }
    let _ = std::fs::remove_dir_all(lab_dir(id));
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("{s:?} does not parse"))
}
