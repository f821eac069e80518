//! Boundary services, played for the demo and the end-to-end tests: the part of the rack
//! switch that joins the VPCs to the outside world. Sleds send a guest's internet traffic,
//! already NATed to an external IP, Geneve-encapsulated to the boundary's underlay address;
//! the boundary takes the encapsulation off and hands the inner IP packet to the kernel of
//! its own network namespace (through a TUN device), which routes it to the "internet".
//! Return traffic to an external IP is routed by that kernel into the TUN; the boundary
//! looks up which sled owns the address (a NAT table it is given, like the switch's:
//! external IP and port range → sled, VNI, guest MAC) and encapsulates the packet to that
//! sled with the VPC's VNI and the Oxide "external" Geneve option, as the overlay layer
//! expects inbound.
//!
//! The underlay side is the daemon's own: the same filtered AF_PACKET links, the same UDP
//! port held against port-unreachable answers, next hops from the kernel's tables.
// A no_std crate: the daemon brings std's prelude in itself.
use std::prelude::rust_2024::*;
use std::{format, vec};

use super::nexthop::Rtnl;
use super::tap::Tap;
use super::underlay::{GENEVE_PORT, UnderlayLink, hold_geneve_port};
use crate::route::Route;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use opte::build::Encap;
use opte::packet::Packet;
use opte::packet::parse::{parse_guest, parse_network};
use opte::wire::ether::{ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, EtherRepr};
use opte::wire::geneve::{GeneveOpt, GeneveRepr};
use opte::wire::ip6::Ipv6Repr;
use opte::wire::udp::UdpRepr;
use opte_api::{IpAddr, Ipv6Addr, MacAddr, Vni};
use std::collections::HashMap;
use std::io::{IoSlice, Read, Write};
use std::ops::RangeInclusive;
use std::os::fd::AsFd;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The inner source MAC of what the boundary sends to a sled.
pub const BOUNDARY_MAC: MacAddr = MacAddr::from_const([0xa8, 0x40, 0x25, 0x77, 0x77, 0x77]);

/// How long a next hop found in the kernel's tables is used before it is asked again.
const ROUTE_TTL: Duration = Duration::from_secs(1);

/// The largest frame on the underlay.
const MAX_FRAME: usize = 9216;

/// One NAT entry: traffic to `external` (with a destination port, or ICMP echo
/// identifier, in `ports`) belongs to the guest with MAC `mac` on sled `sled`, VPC `vni`.
///
/// Written `EXTERNAL[@FIRST-LAST]=SLED,VNI,MAC`, e.g.
/// `198.51.100.13@1025-4096=fd00:a::1,77,a8:40:25:f0:00:05`; without a range, every port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatEntry {
    pub external: IpAddr,
    pub ports: RangeInclusive<u16>,
    pub sled: Ipv6Addr,
    pub vni: Vni,
    pub mac: MacAddr,
}

impl FromStr for NatEntry {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("NAT entry {s:?}: {why} (EXTERNAL[@FIRST-LAST]=SLED,VNI,MAC)");
        let (key, to) = s.split_once('=').ok_or_else(|| bad("no '='"))?;
        let (ip, ports) = match key.split_once('@') {
            Some((ip, range)) => {
                let (a, b) = range
                    .split_once('-')
                    .ok_or_else(|| bad("a range is FIRST-LAST"))?;
                let a: u16 = a.parse().map_err(|_| bad("bad first port"))?;
                let b: u16 = b.parse().map_err(|_| bad("bad last port"))?;
                if a > b {
                    return Err(bad("the first port is past the last"));
                }
                (ip, a..=b)
            }
            None => (key, 0..=u16::MAX),
        };
        let external = ip.parse().map_err(|_| bad("bad external IP"))?;
        let mut parts = to.split(',');
        let (Some(sled), Some(vni), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("the target is SLED,VNI,MAC"));
        };
        Ok(Self {
            external,
            ports,
            sled: sled.parse().map_err(|_| bad("bad sled IPv6 address"))?,
            vni: vni.parse().map_err(|_| bad("bad VNI"))?,
            mac: mac.parse().map_err(|_| bad("bad MAC"))?,
        })
    }
}

/// What boundary services is started with.
#[derive(Clone, Debug)]
pub struct Options {
    /// The two underlay links.
    pub underlay: [String; 2],
    /// The boundary's underlay address: sleds' V2B entries point here.
    pub addr: Ipv6Addr,
    /// The TUN device toward the "internet" (created; routes to it are the operator's).
    pub tun: String,
    /// Who owns which external IP.
    pub nat: Vec<NatEntry>,
    /// More entries, one a line (`#` starts a comment), read again whenever the file
    /// changes: the control plane moving an external IP to another sled (a migrated
    /// guest's). A file that does not parse is reported and the entries before it kept.
    pub nat_file: Option<std::path::PathBuf>,
}

/// The entries of a NAT file's text.
pub fn parse_nat_file(text: &str) -> Result<Vec<NatEntry>, String> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| l.parse().map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// What identifies one version of the NAT file: it is read again when this changes.
type FileStamp = (std::time::SystemTime, u64, u64);

fn stamp(path: &std::path::Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// What was done, counted.
#[derive(Debug, Default)]
pub struct Counters {
    /// Geneve frames decapsulated to the internet.
    pub decapped: AtomicU64,
    /// Packets from the internet encapsulated to a sled.
    pub encapped: AtomicU64,
    /// Geneve not addressed to the boundary, or whose inner packet is not IP.
    pub not_ours: AtomicU64,
    /// Frames that did not parse.
    pub malformed: AtomicU64,
    /// Return traffic no NAT entry owns.
    pub no_nat: AtomicU64,
    /// Return traffic whose sled has no usable next hop yet.
    pub no_route: AtomicU64,
}

impl Counters {
    fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "decapsulated {}, encapsulated {}, not for the boundary {}, malformed {}, no NAT entry {}, no route {}",
            g(&self.decapped),
            g(&self.encapped),
            g(&self.not_ours),
            g(&self.malformed),
            g(&self.no_nat),
            g(&self.no_route)
        )
    }
}

/// Boundary services between the underlay and the TUN device.
pub struct Boundary {
    addr: Ipv6Addr,
    links: [UnderlayLink; 2],
    tun: Tap,
    nat: Vec<NatEntry>,
    /// The entries given on the command line; the file's come after them.
    nat_args: Vec<NatEntry>,
    nat_file: Option<(std::path::PathBuf, Option<FileStamp>)>,
    rtnl: Rtnl,
    routes: HashMap<(Ipv6Addr, u16), (Route, Instant)>,
    pub counters: Arc<Counters>,
}

impl Boundary {
    /// Open both links and create the TUN device.
    pub fn open(opts: &Options) -> Result<Self, String> {
        let link = |n: &String| UnderlayLink::open(n).map_err(|e| format!("underlay {n}: {e}"));
        let links = [link(&opts.underlay[0])?, link(&opts.underlay[1])?];
        let tun = Tap::create_tun(&opts.tun, 1500)
            .map_err(|e| format!("TUN device {}: {e}", opts.tun))?;
        let mut b = Self {
            addr: opts.addr,
            links,
            tun,
            nat: opts.nat.clone(),
            nat_args: opts.nat.clone(),
            nat_file: opts.nat_file.clone().map(|p| (p, None)),
            rtnl: Rtnl::open().map_err(|e| format!("rtnetlink: {e}"))?,
            routes: HashMap::new(),
            counters: Arc::default(),
        };
        if let Some((path, _)) = &b.nat_file {
            // The first reading must succeed: a typo is an error at start, not a log line.
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("NAT file {}: {e}", path.display()))?;
            parse_nat_file(&text).map_err(|e| format!("NAT file {}: {e}", path.display()))?;
            b.reload_nat();
        }
        Ok(b)
    }

    /// Read the NAT file again if it changed since it was last read.
    fn reload_nat(&mut self) {
        let Some((path, seen)) = &mut self.nat_file else {
            return;
        };
        let now = stamp(path);
        if now == *seen {
            return;
        }
        *seen = now;
        let parsed = std::fs::read_to_string(&*path)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_nat_file(&t));
        match parsed {
            Ok(entries) => {
                let mut nat = self.nat_args.clone();
                nat.extend(entries);
                tracing::info!(file = %path.display(), entries = nat.len(), "NAT table read");
                self.nat = nat;
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "NAT file not read; the table stays");
            }
        }
    }

    /// Serve until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; MAX_FRAME];
        while !stop.load(Ordering::Acquire) {
            self.reload_nat();
            let mut fds = [
                PollFd::new(self.tun.file().as_fd(), PollFlags::POLLIN),
                PollFd::new(self.links[0].socket().as_fd(), PollFlags::POLLIN),
                PollFd::new(self.links[1].socket().as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::from(200u16)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "poll failed");
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            if ready.first() == Some(&true) {
                while let Ok(n) = { self.tun.file() }.read(&mut buf) {
                    if let Some(ip) = buf.get(..n) {
                        let ip = ip.to_vec();
                        self.encap_to_sled(&ip);
                    }
                }
            }
            for (link, &ready) in self.links.iter().zip(ready.get(1..).unwrap_or(&[])) {
                if ready {
                    while let Ok(Some(n)) = link.recv(&mut buf) {
                        self.decap_to_internet(buf.get(..n).unwrap_or(&[]));
                    }
                }
            }
        }
    }

    /// A Geneve frame from a sled: its inner IP packet goes to the internet.
    fn decap_to_internet(&self, frame: &[u8]) {
        let c = &self.counters;
        let Ok(n) = parse_network(&mut Packet::copy_from(frame)) else {
            c.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let inner_l3 = n.outer.encap_len() + usize::from(n.inner.eth.hdr_len);
        let et = n.inner.eth.ether_type;
        let ip = frame.get(inner_l3..).unwrap_or(&[]);
        if n.outer.dst != self.addr || (et != ETHER_TYPE_IPV4 && et != ETHER_TYPE_IPV6) {
            c.not_ours.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // A TUN takes a packet per write, whole or not at all.
        match { self.tun.file() }.write_all(ip) {
            Ok(()) => {
                c.decapped.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(error = %e, "writing to the TUN device"),
        }
    }

    /// An IP packet from the internet: encapsulated to the sled that owns its destination.
    fn encap_to_sled(&mut self, ip: &[u8]) {
        let c = self.counters.clone();
        let et = match ip.first().map(|b| b >> 4) {
            Some(4) => ETHER_TYPE_IPV4,
            Some(6) => ETHER_TYPE_IPV6,
            _ => {
                c.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let mut inner = vec![0u8; 14 + ip.len()];
        let eth = EtherRepr {
            dst: MacAddr::ZERO,
            src: BOUNDARY_MAC,
            ether_type: et,
            vlan: None,
        };
        if eth.emit(&mut inner).is_err() {
            return;
        }
        if let Some(rest) = inner.get_mut(14..) {
            rest.copy_from_slice(ip);
        }
        let Ok(m) = parse_guest(&mut Packet::copy_from(&inner)) else {
            c.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (dst, port) = (m.flow.addrs.dst(), m.flow.proto_info[1]);
        let Some(e) = self
            .nat
            .iter()
            .find(|e| e.external == dst && e.ports.contains(&port))
        else {
            tracing::debug!(%dst, port, "no NAT entry");
            c.no_nat.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (sled, vni, mac) = (e.sled, e.vni, e.mac);
        if let Some(d) = inner.get_mut(..6) {
            d.copy_from_slice(&mac.bytes());
        }
        let hash = m.flow.crc32() as u16;
        let Some(route) = self.route(sled, hash) else {
            c.no_route.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let outer = Encap {
            eth: EtherRepr {
                dst: route.dst_mac,
                src: route.src_mac,
                ether_type: ETHER_TYPE_IPV6,
                vlan: None,
            },
            ip6: Ipv6Repr::new(self.addr, sled, 17),
            // The flow hash as entropy, in the dynamic port range.
            udp: UdpRepr::new(0xc000 | (hash & 0x3fff), GENEVE_PORT),
            geneve: GeneveRepr::new(vni, vec![GeneveOpt::oxide_external()]),
        }
        .header_bytes(inner.len());
        let [l1, l2] = &self.links;
        let link = if route.link == crate::Link::U2 {
            l2
        } else {
            l1
        };
        match link.send(&[IoSlice::new(&outer), IoSlice::new(&inner)]) {
            Ok(()) => {
                c.encapped.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(error = %e, link = link.name(), "send failed"),
        }
    }

    /// The next hop to `sled` for flow hash `hash`: from the cache while fresh, else from
    /// the kernel (which starts resolving an unknown neighbour; this packet is dropped).
    fn route(&mut self, sled: Ipv6Addr, hash: u16) -> Option<Route> {
        let now = Instant::now();
        if let Some((r, at)) = self.routes.get(&(sled, hash))
            && now.duration_since(*at) < ROUTE_TTL
        {
            return Some(*r);
        }
        match self.rtnl.next_hop(&self.links, sled, hash) {
            Ok(r) => {
                self.routes.insert((sled, hash), (r, now));
                Some(r)
            }
            Err(e) => {
                tracing::debug!(%sled, error = %e, "no next hop");
                None
            }
        }
    }
}

/// Run boundary services until SIGTERM or SIGINT.
pub fn run(opts: &Options) -> Result<(), String> {
    let signals = super::daemon::block_stop_signals()?;
    let _geneve = hold_geneve_port().map_err(|e| format!("holding UDP port 6081: {e}"))?;
    let mut b = Boundary::open(opts)?;
    let counters = b.counters.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("boundary".into())
            .spawn(move || b.run(&stop))
            .map_err(|e| format!("starting the datapath thread: {e}"))?
    };
    tracing::info!(
        addr = %opts.addr,
        tun = %opts.tun,
        nat_entries = opts.nat.len(),
        pid = std::process::id(),
        "boundary services ready"
    );
    let sig = signals
        .wait()
        .map_err(|e| format!("waiting for a signal: {e}"))?;
    tracing::info!(signal = %sig, "shutting down");
    stop.store(true, Ordering::Release);
    let _ = worker.join();
    tracing::info!("{}", counters.summary());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_entries_parse_with_and_without_a_port_range() {
        let e: NatEntry = "198.51.100.13@1025-4096=fd00:a::1,77,a8:40:25:f0:00:05"
            .parse()
            .unwrap();
        assert_eq!(e.external, "198.51.100.13".parse::<IpAddr>().unwrap());
        assert_eq!(e.ports, 1025..=4096);
        assert_eq!(e.sled, "fd00:a::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(e.vni.as_u32(), 77);
        assert_eq!(e.mac, MacAddr::from_const([0xa8, 0x40, 0x25, 0xf0, 0, 5]));
        let e: NatEntry = "fd77::20=fd00:a::1,5,a8:40:25:f0:00:05".parse().unwrap();
        assert_eq!(e.ports, 0..=u16::MAX);
        assert!(matches!(e.external, IpAddr::Ip6(_)));
    }

    #[test]
    fn bad_nat_entries_say_what_is_wrong() {
        for (text, why) in [
            ("198.51.100.13", "no '='"),
            (
                "198.51.100.13@9-1=fd00::1,5,a8:40:25:f0:00:05",
                "past the last",
            ),
            ("198.51.100.13@1=fd00::1,5,a8:40:25:f0:00:05", "FIRST-LAST"),
            ("nope=fd00::1,5,a8:40:25:f0:00:05", "bad external IP"),
            ("198.51.100.13=10.0.0.1,5,a8:40:25:f0:00:05", "bad sled"),
            (
                "198.51.100.13=fd00::1,16777216,a8:40:25:f0:00:05",
                "bad VNI",
            ),
            ("198.51.100.13=fd00::1,5", "SLED,VNI,MAC"),
            (
                "198.51.100.13=fd00::1,5,a8:40:25:f0:00:05,x",
                "SLED,VNI,MAC",
            ),
            ("198.51.100.13=fd00::1,5,zz", "bad MAC"),
        ] {
            let e = text.parse::<NatEntry>().unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn a_nat_file_has_an_entry_a_line_comments_and_blank_lines() {
        let text = "# who owns what\n\n198.51.100.13@1025-4096=fd00:a::1,77,a8:40:25:f0:00:05\n\
                    198.51.100.14=fd00:a::2,77,a8:40:25:f0:00:06 # a floating IP\n";
        let e = parse_nat_file(text).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].ports, 0..=u16::MAX);
        assert_eq!(e[1].sled.to_string(), "fd00:a::2");
        let err =
            parse_nat_file("198.51.100.13=fd00::1,5,a8:40:25:f0:00:05\nnonsense\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert_eq!(parse_nat_file("# nothing\n").unwrap(), vec![]);
    }
}
