//! [`Xde`]: the state of one host. Ports by name and by (VNI, guest MAC), the underlay
//! pair, the VPC tables every port shares (V2P, V2B, M2P, multicast forwarding and
//! subscriptions), the host's counters, and the once-a-second [`Xde::tick`].

use crate::host::Host;
use crate::persist::{ConfigLog, Restored};
use crate::port::{VniMac, XdePort};
use crate::stats::XdeCounters;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use opte::engine::time::Moment;
use opte::sync::{Mutex, RwLock};
use oxide_vpc::tables::VpcTables;

/// How many flow-table entries each port visits per tick, at most: a port with a million
/// flows is swept over several seconds rather than stalling its datapath for one sweep.
pub const EXPIRE_BUDGET: usize = 65_536;

/// The ports by name and by key. Replaced whole when a port comes or goes (ports are few
/// and change rarely), so a datapath worker can keep a snapshot of it and look ports up
/// without taking a lock shared with the other workers (see [`Xde::ports_generation`]).
#[derive(Clone, Default)]
pub struct PortMap {
    pub(crate) by_name: BTreeMap<String, Arc<XdePort>>,
    pub(crate) by_key: BTreeMap<VniMac, Arc<XdePort>>,
}

/// The names of the two underlay links in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Underlay {
    pub u1: String,
    pub u2: String,
}

pub struct Xde<H: Host> {
    pub(crate) host: H,
    pub(crate) ports: RwLock<Arc<PortMap>>,
    /// Changes whenever the port map is replaced.
    ports_gen: AtomicU64,
    pub(crate) underlay: RwLock<Option<Underlay>>,
    pub(crate) tables: Arc<VpcTables>,
    pub(crate) stats: XdeCounters,
    /// Serialises control commands, so validate-then-apply sees no interleaved change.
    pub(crate) mgmt: Mutex<()>,
    /// Each port's flow tables get their own hash seed.
    seed: AtomicU64,
    /// The most flows a new port's UFTs, TCP table and firewall may hold (0: the host's
    /// default, [`oxide_vpc::engine::PortLimits::for_host`]).
    flow_limit: core::sync::atomic::AtomicU32,
    /// Every accepted configuration change, compacted ([`crate::persist`]).
    pub(crate) config: Mutex<ConfigLog>,
    /// Set while [`Xde::restore`] replays a log: nothing is saved until it is done.
    pub(crate) restoring: AtomicBool,
}

impl<H: Host> Xde<H> {
    /// A host with no ports and no underlay. `seed` seeds the ports' flow-table hashers
    /// (give it randomness from the OS).
    pub fn new(host: H, seed: u64) -> Self {
        Self {
            host,
            ports: RwLock::new(Arc::new(PortMap::default())),
            ports_gen: AtomicU64::new(0),
            underlay: RwLock::new(None),
            tables: Arc::new(VpcTables::default()),
            stats: XdeCounters::default(),
            mgmt: Mutex::new(()),
            seed: AtomicU64::new(seed),
            flow_limit: core::sync::atomic::AtomicU32::new(0),
            config: Mutex::new(ConfigLog::default()),
            restoring: AtomicBool::new(false),
        }
    }

    /// Replay a configuration log (a restarted host's), command by command, through the
    /// same checks as the commands it records. The host is told to keep the result once,
    /// at the end, and only if every entry was applied: a log that cannot be replayed
    /// whole (an underlay link that is not there yet, say) stays as it was for the next
    /// try.
    pub fn restore(&self, log: &ConfigLog) -> Restored {
        self.restoring.store(true, Ordering::Relaxed);
        let mut done = Restored::default();
        for e in log.entries() {
            match self.execute(e.cmd, &e.req) {
                Ok(_) => done.applied += 1,
                Err(err) => done.failed.push((e.cmd, err)),
            }
        }
        self.restoring.store(false, Ordering::Relaxed);
        if done.failed.is_empty() {
            let _serial = self.mgmt.lock();
            self.save_config(&self.config.lock());
        }
        done
    }

    /// The configuration log as it stands.
    pub fn config_log(&self) -> ConfigLog {
        self.config.lock().clone()
    }

    /// Cap the flow tables of the ports made from now on at `n` entries each (UFT each
    /// way, TCP, firewall): an operator's bound on what a flood of new flows may cost.
    pub fn set_flow_limit(&self, n: u32) {
        self.flow_limit.store(n, Ordering::Relaxed);
    }

    /// The cap [`Self::set_flow_limit`] set, if any.
    pub fn flow_limit(&self) -> Option<core::num::NonZeroU32> {
        core::num::NonZeroU32::new(self.flow_limit.load(Ordering::Relaxed))
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    pub fn tables(&self) -> &Arc<VpcTables> {
        &self.tables
    }

    pub fn stats(&self) -> &XdeCounters {
        &self.stats
    }

    pub fn underlay(&self) -> Option<Underlay> {
        self.underlay.read().clone()
    }

    pub(crate) fn next_seed(&self) -> u64 {
        self.seed
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .rotate_left(17)
    }

    /// Changes whenever a port comes or goes: a worker holding a snapshot of the port map
    /// takes a new one when it sees this change (the snapshot keeps a deleted port alive
    /// until then).
    pub fn ports_generation(&self) -> u64 {
        self.ports_gen.load(Ordering::Acquire)
    }

    /// The port map as it is now: a datapath thread's own copy, for [`Xde::rx_in`].
    pub fn ports_snapshot(&self) -> Arc<PortMap> {
        self.ports.read().clone()
    }

    /// Change the port map (control path only): `f` edits a copy, which replaces the map
    /// if `f` succeeds (a refused change leaves the workers' snapshots current).
    pub(crate) fn edit_ports<R, E>(
        &self,
        f: impl FnOnce(&mut PortMap) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut m = self.ports.write();
        let mut next = PortMap::clone(&m);
        let r = f(&mut next)?;
        *m = Arc::new(next);
        self.ports_gen.fetch_add(1, Ordering::AcqRel);
        Ok(r)
    }

    /// The port named `name`.
    pub fn port(&self, name: &str) -> Option<Arc<XdePort>> {
        self.ports.read().by_name.get(name).cloned()
    }

    /// The port of guest `mac` on VPC `vni`.
    pub fn port_by_key(&self, key: VniMac) -> Option<Arc<XdePort>> {
        self.ports.read().by_key.get(&key).cloned()
    }

    /// Every port, by name.
    pub fn ports(&self) -> Vec<Arc<XdePort>> {
        self.ports.read().by_name.values().cloned().collect()
    }

    /// Everything the read commands would show (the shared tables, every port's
    /// configuration, layers, rules and flows), as text: two equal states print the same.
    /// For checking that a refused command changed nothing.
    pub fn state_text(&self) -> String {
        use core::fmt::Write;
        let t = &self.tables;
        let mut s = String::new();
        let _ = writeln!(s, "underlay {:?}", self.underlay());
        let _ = writeln!(s, "v2p {:?}", t.v2p.dump());
        let _ = writeln!(s, "v2b {:?}", t.v2b.dump());
        let _ = writeln!(s, "m2p {:?}", t.m2p.dump());
        let _ = writeln!(s, "mcast_fwd {:?}", t.mcast_fwd.dump());
        let _ = writeln!(s, "mcast_subs {:?}", t.mcast_subs.dump());
        for p in self.ports() {
            let _ = writeln!(s, "port {} {:?} {:?}", p.name(), p.key(), p.info());
            p.with_vpc(|v| {
                let port = v.port();
                let _ = writeln!(s, " cfg {:?} epoch {}", v.cfg(), port.epoch());
                for l in port.list_layers() {
                    let _ = writeln!(s, " layer {:?}", port.dump_layer(l.name.as_str()));
                }
                let _ = writeln!(s, " uft {:?}", port.dump_uft());
                let _ = writeln!(s, " tcp {:?}", port.dump_tcp_flows());
            });
        }
        s
    }

    /// Once a second: expire idle flows on every port (a bounded step each) and forget
    /// unused next hops.
    pub fn tick(&self, now: Moment) {
        for p in self.ports() {
            p.with_vpc(|v| {
                // A port that is not running has nothing to expire.
                let _ = v.port_mut().expire_some(now, EXPIRE_BUDGET);
            });
            p.routes.lock().purge(now);
        }
    }
}
