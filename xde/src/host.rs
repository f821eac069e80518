//! What the core asks of the operating system. The illumos module answers with mac
//! clients, DLS devnets and the IP route table; the Linux daemon with AF_PACKET sockets,
//! TAP devices and netlink; the simulated rack with an in-process switch.
//!
//! Each call either does what it says or fails, changing nothing, with an `OpteError`
//! (usually `System` with the OS's errno) that the control command then returns.

use crate::route::{Route, RouteError};
use opte::engine::time::Moment;
use opte_api::{Ipv6Addr, MacAddr, OpteError};
use oxide_vpc::api::PortAttach;

/// One of the host's two underlay links.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Link {
    U1,
    U2,
}

impl Link {
    pub const fn index(self) -> usize {
        match self {
            Self::U1 => 0,
            Self::U2 => 1,
        }
    }
}

pub trait Host: Send + Sync {
    /// Open the two named links for underlay traffic (Geneve in and out).
    fn attach_underlay(&self, u1: &str, u2: &str) -> Result<(), OpteError>;

    /// Close them again.
    fn detach_underlay(&self);

    /// Create the guest-side device of a port (a TAP, a mac provider) named `name`, with
    /// datalink id `linkid` where the OS keeps a datalink registry (illumos's dlmgmtd; the
    /// Linux daemon has none and ignores it).
    fn create_port(
        &self,
        name: &str,
        mac: MacAddr,
        mtu: u32,
        attach: &PortAttach,
        linkid: u32,
    ) -> Result<(), OpteError>;

    /// Remove it.
    fn delete_port(&self, name: &str);

    /// The next hop towards underlay address `dst` for a flow of hash `hash` (ECMP picks
    /// among equal routes by it): which link, and the Ethernet addresses of the hop.
    fn next_hop(&self, dst: Ipv6Addr, hash: u16) -> Result<Route, RouteError>;

    /// The host's own counters, reported after the core's by `DumpXdeStats`.
    fn counters(&self) -> alloc::vec::Vec<(alloc::string::String, u64)> {
        alloc::vec::Vec::new()
    }

    /// Keep the configuration file (the bytes of a [`crate::persist::ConfigLog`]) so a
    /// restarted host can restore it: all of it or none (the last good file stays until a
    /// new one is whole). A host that keeps nothing says `Ok`.
    fn save_config(&self, _file: &[u8]) -> Result<(), OpteError> {
        Ok(())
    }

    /// Now, on the clock the host's datapath gives the engine (a control command that
    /// ages flows, an export or import, reads it).
    fn now(&self) -> Moment;
}

/// A host whose OS does nothing: devices are "made", underlays "attached", and no next
/// hop is ever found. For tools and tests that exercise control without a datapath.
#[derive(Debug, Default)]
pub struct NullHost;

impl Host for NullHost {
    fn attach_underlay(&self, _u1: &str, _u2: &str) -> Result<(), OpteError> {
        Ok(())
    }

    fn detach_underlay(&self) {}

    fn create_port(
        &self,
        _name: &str,
        _mac: MacAddr,
        _mtu: u32,
        _attach: &PortAttach,
        _linkid: u32,
    ) -> Result<(), OpteError> {
        Ok(())
    }

    fn delete_port(&self, _name: &str) {}

    fn now(&self) -> Moment {
        Moment::ZERO
    }

    fn next_hop(&self, dst: Ipv6Addr, _hash: u16) -> Result<Route, RouteError> {
        Err(RouteError::NoRoute(dst))
    }
}
