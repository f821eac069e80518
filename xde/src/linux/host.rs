//! [`LinuxHost`]: what the core asks of Linux. Ports are TAP devices the daemon owns.
//!
//! `set-xde-underlay` opens both links for Geneve (see [`super::underlay`]) and a
//! connection to the kernel's routing tables, where next hops are looked up (see
//! [`super::nexthop`]).

// A no_std crate: the daemon brings std's prelude in itself.
use super::nexthop::Rtnl;
use super::state::StateDir;
use super::tap::{Location, Tap};
use super::underlay::{UnderlayLink, hold_geneve_port};
use crate::Link;
use crate::host::Host;
use crate::route::{Route, RouteError};
use opte_api::{Ipv6Addr, MacAddr, OpteError};
use oxide_vpc::api::PortAttach;
use std::collections::BTreeMap;
use std::format;
use std::prelude::rust_2024::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// `ENODEV` and `EEXIST` in Linux's numbering.
const ENODEV: i32 = 19;

/// The daemon's devices: one TAP per port, and the two underlay links, each with a queue
/// (or socket) per datapath worker.
#[derive(Debug)]
pub struct LinuxHost {
    workers: usize,
    /// Underlay sockets get PACKET_MMAP receive rings where the kernel makes them.
    rx_rings: bool,
    taps: Mutex<BTreeMap<String, Arc<Tap>>>,
    underlay: Mutex<Option<Arc<Underlay>>>,
    /// Changes whenever a device comes or goes: a worker then looks at the devices again.
    generation: AtomicU64,
    /// Where the engine's clock starts: the datapath and the control path read it alike.
    epoch: std::time::Instant,
    /// Where the configuration, the TAPs' whereabouts and the flows are kept across a
    /// restart; with one, container TAPs are persistent.
    state: Option<StateDir>,
    /// Where a previous daemon's TAPs were, by port: a restored port opens its TAP again
    /// there rather than making a new one.
    adopt: Mutex<BTreeMap<String, Location>>,
    /// The TAP locations last written to the state directory.
    taps_written: Mutex<BTreeMap<String, Location>>,
}

impl Default for LinuxHost {
    fn default() -> Self {
        Self::new(1)
    }
}

/// Both underlay links, open, the UDP socket that holds the Geneve port, and the
/// connection to the kernel's routing tables.
#[derive(Debug)]
pub struct Underlay {
    links: [UnderlayLink; 2],
    _geneve: std::net::UdpSocket,
    rtnl: Rtnl,
}

impl Underlay {
    pub fn links(&self) -> &[UnderlayLink; 2] {
        &self.links
    }

    pub fn link(&self, l: Link) -> Option<&UnderlayLink> {
        self.links.get(l.index())
    }
}

impl LinuxHost {
    /// A host whose datapath has `workers` workers (at least one).
    pub fn new(workers: usize) -> Self {
        Self {
            workers: workers.max(1),
            rx_rings: true,
            taps: Mutex::default(),
            underlay: Mutex::default(),
            generation: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            state: None,
            adopt: Mutex::default(),
            taps_written: Mutex::default(),
        }
    }

    /// Keep state in `state` across restarts ([`super::state`]): the configuration, the
    /// TAPs' whereabouts, the flows at a stop. The TAPs the last daemon left there are
    /// opened again by the ports the restored configuration makes.
    pub fn with_state(mut self, state: StateDir) -> Self {
        let saved = state.read_taps();
        // What the file holds, so the first record writes it if anything differs.
        *self
            .taps_written
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = saved.clone();
        *self.adopt.get_mut().unwrap_or_else(PoisonError::into_inner) = saved;
        self.state = Some(state);
        self
    }

    /// The state directory, if the host keeps state.
    pub fn state(&self) -> Option<&StateDir> {
        self.state.as_ref()
    }

    /// Write down where every container TAP is now, if that changed since the last time
    /// (the guest's side moves and renames them). Run every second.
    pub fn record_taps(&self) {
        let Some(state) = &self.state else { return };
        let taps: Vec<Arc<Tap>> = self
            .taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut now = BTreeMap::new();
        for t in taps.iter().filter(|t| !t.is_gone()) {
            match t.location() {
                Ok(Some(loc)) => {
                    now.insert(t.name().to_string(), loc);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(port = t.name(), error = %e, "TAP location"),
            }
        }
        let mut written = self
            .taps_written
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *written != now {
            match state.write_taps(&now) {
                Ok(()) => *written = now,
                Err(e) => tracing::warn!(error = %e, "recording where the TAPs are"),
            }
        }
    }

    /// At a stop before a restart: record where the TAPs are, then close them all but
    /// leave the devices (and their guests' NICs) in place.
    pub fn keep_all(&self) {
        self.record_taps();
        self.keep_devices();
    }

    /// After a restore that failed: close every TAP but leave the devices, and the record
    /// of where they are, as they were (the TAPs not reached are still to be found there
    /// by the next start).
    pub fn keep_devices(&self) {
        for t in self
            .taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            t.keep_device();
        }
        self.close_all();
    }

    /// After a restore: the TAPs of the last daemon that no restored port took over are
    /// no port's now, and a port made later does not go looking for them.
    pub fn forget_unclaimed(&self) {
        let left = std::mem::take(&mut *self.adopt.lock().unwrap_or_else(PoisonError::into_inner));
        for (port, at) in left {
            tracing::info!(
                port,
                ifname = at.ifname,
                "a TAP the last daemon left is no port's now"
            );
        }
    }

    /// A container's TAP for port `name`: the one a previous daemon left, opened again
    /// where it is now, or a new one.
    fn netdev(&self, name: &str, mac: MacAddr, mtu: u32) -> std::io::Result<Tap> {
        if self.state.is_none() {
            return Tap::create_multi(name, mac, mtu, self.workers);
        }
        let saved = self
            .adopt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        if let Some(at) = saved {
            match Tap::adopt(name, &at, self.workers) {
                Ok(t) => {
                    tracing::info!(
                        port = name,
                        ifname = at.ifname,
                        "TAP opened again where it was"
                    );
                    return Ok(t);
                }
                Err(e) => tracing::warn!(port = name, ifname = at.ifname, error = %e,
                    "the TAP a previous daemon left is not there: making a new one"),
            }
        }
        Tap::create_persistent(name, mac, mtu, self.workers)
    }

    /// Where the engine's clock starts ([`Host::now`] is the time since).
    pub fn epoch(&self) -> std::time::Instant {
        self.epoch
    }

    /// Whether the underlay sockets get receive rings ([`super::ring`]; on by default).
    pub fn with_rx_rings(mut self, on: bool) -> Self {
        self.rx_rings = on;
        self
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The devices' generation: it changes whenever one comes or goes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The TAP of port `name`.
    pub fn tap(&self, name: &str) -> Option<Arc<Tap>> {
        self.taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every port's TAP that is still there to be read.
    pub fn taps(&self) -> Vec<Arc<Tap>> {
        self.taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|t| !t.is_gone())
            .cloned()
            .collect()
    }

    /// The underlay, while attached.
    pub fn underlay(&self) -> Option<Arc<Underlay>> {
        self.underlay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Close every TAP (which removes the devices), at shutdown.
    pub fn close_all(&self) {
        self.taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.changed();
    }
}

fn system(e: &std::io::Error, msg: String) -> OpteError {
    OpteError::System {
        errno: e.raw_os_error().unwrap_or(ENODEV),
        msg,
    }
}

impl Host for LinuxHost {
    fn now(&self) -> opte::engine::time::Moment {
        opte::engine::time::Moment::from_nanos(
            u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX),
        )
    }

    fn attach_underlay(&self, u1: &str, u2: &str) -> Result<(), OpteError> {
        let open = |u: &str| {
            UnderlayLink::open_vnet(u, self.workers, self.rx_rings)
                .map_err(|e| system(&e, format!("underlay link {u}: {e}")))
        };
        let links = [open(u1)?, open(u2)?];
        for l in &links {
            tracing::info!(link = l.name(), workers = self.workers, steer = ?l.steer(),
                rx_ring = l.ring_of(0).is_some(), "underlay link open");
        }
        let geneve =
            hold_geneve_port().map_err(|e| system(&e, format!("binding UDP port 6081: {e}")))?;
        let rtnl = Rtnl::open().map_err(|e| system(&e, format!("opening rtnetlink: {e}")))?;
        *self.underlay.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(Underlay {
            links,
            _geneve: geneve,
            rtnl,
        }));
        self.changed();
        tracing::info!(u1, u2, "underlay attached");
        Ok(())
    }

    fn save_config(&self, file: &[u8]) -> Result<(), OpteError> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        state.write_config(file).map_err(|e| {
            tracing::error!(dir = %state.path().display(), error = %e,
                "saving the configuration");
            system(&e, format!("saving the configuration: {e}"))
        })
    }

    fn detach_underlay(&self) {
        *self.underlay.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.changed();
    }

    fn create_port(
        &self,
        name: &str,
        mac: MacAddr,
        mtu: u32,
        attach: &PortAttach,
        _linkid: u32,
    ) -> Result<(), OpteError> {
        let tap = match attach {
            PortAttach::Netdev => self.netdev(name, mac, mtu),
            PortAttach::Vmm if self.state.is_some() => Tap::adopt_for_vmm(name, mtu),
            PortAttach::Vmm => Tap::create_for_vmm(name, mtu),
            PortAttach::VhostUser(path) => Tap::create_vhost_user(name, std::path::Path::new(path))
                .map_err(|e| std::io::Error::new(e.kind(), format!("vhost-user at {path}: {e}"))),
        }
        .map_err(|e| system(&e, format!("creating port {name}: {e}")))?;
        tracing::info!(port = name, %mac, mtu, ?attach, "TAP created");
        self.taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), Arc::new(tap));
        self.changed();
        Ok(())
    }

    fn delete_port(&self, name: &str) {
        let tap = self
            .taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        self.changed();
        if let Some(tap) = tap {
            // The device goes when its last holder lets go: each datapath worker drops its
            // view of the ports within one rescan of seeing the generation change. Wait for that (boundedly), so that the device is
            // gone when delete-xde returns.
            let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
            while Arc::strong_count(&tap) > 1 && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            drop(tap);
            tracing::info!(port = name, "TAP removed");
        }
    }

    fn counters(&self) -> Vec<(String, u64)> {
        // Frames the kernel dropped on the underlay sockets: the datapath did not keep up.
        let rx_kernel_drops = self
            .underlay()
            .map_or(0, |u| u.links.iter().map(|l| l.kernel_drops()).sum());
        let mut c = vec![
            ("rx_kernel_drops".to_string(), rx_kernel_drops),
            ("worker_allocs".to_string(), super::allocs::worker_allocs()),
            (
                "worker_route_allocs".to_string(),
                super::allocs::route_allocs(),
            ),
        ];
        // The vhost-user ports' devices, summed.
        let taps = self.taps.lock().unwrap_or_else(PoisonError::into_inner);
        let vhost: Vec<_> = taps.values().filter_map(|t| t.vhost_user()).collect();
        c.extend(super::vhost::Counters::sum(
            vhost.iter().map(|s| &*s.counters),
        ));
        c
    }

    fn next_hop(&self, dst: Ipv6Addr, hash: u16) -> Result<Route, RouteError> {
        let u = self.underlay().ok_or(RouteError::NoUnderlay)?;
        super::allocs::route_lookup(|| u.rtnl.next_hop(&u.links, dst, hash))
    }
}
