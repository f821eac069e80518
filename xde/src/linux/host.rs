//! [`LinuxHost`]: what the core asks of Linux. Ports are TAP devices the daemon owns.
//!
//! The underlay is not yet attached for real: `set-xde-underlay` checks that both links
//! exist and remembers them, but no AF_PACKET socket sends or receives on them yet, and
//! every next hop is "no route" (the core counts and drops such packets). Guest loopback
//! and the gateway's hairpins need neither.

// A no_std crate: the daemon brings std's prelude in itself.
use super::tap::Tap;
use crate::host::Host;
use crate::route::{Route, RouteError};
use opte_api::{Ipv6Addr, MacAddr, OpteError};
use std::collections::BTreeMap;
use std::format;
use std::prelude::rust_2024::*;
use std::sync::{Arc, Mutex, PoisonError};

/// `ENODEV` and `EEXIST` in Linux's numbering.
const ENODEV: i32 = 19;

/// The daemon's devices: one TAP per port, and the underlay links' names.
#[derive(Debug, Default)]
pub struct LinuxHost {
    taps: Mutex<BTreeMap<String, Arc<Tap>>>,
    underlay: Mutex<Option<(String, String)>>,
}

impl LinuxHost {
    /// The TAP of port `name`.
    pub fn tap(&self, name: &str) -> Option<Arc<Tap>> {
        self.taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every port's TAP.
    pub fn taps(&self) -> Vec<Arc<Tap>> {
        self.taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Close every TAP (which removes the devices), at shutdown.
    pub fn close_all(&self) {
        self.taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

fn system(e: &std::io::Error, msg: String) -> OpteError {
    OpteError::System {
        errno: e.raw_os_error().unwrap_or(ENODEV),
        msg,
    }
}

impl Host for LinuxHost {
    fn attach_underlay(&self, u1: &str, u2: &str) -> Result<(), OpteError> {
        for u in [u1, u2] {
            nix::net::if_::if_nametoindex(u).map_err(|e| OpteError::System {
                errno: e as i32,
                msg: format!("underlay link {u}: {e}"),
            })?;
        }
        *self.underlay.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((u1.to_string(), u2.to_string()));
        tracing::info!(u1, u2, "underlay links recorded");
        Ok(())
    }

    fn detach_underlay(&self) {
        *self.underlay.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn create_port(&self, name: &str, mac: MacAddr, mtu: u32) -> Result<(), OpteError> {
        let tap = Tap::create(name, mac, mtu)
            .map_err(|e| system(&e, format!("creating TAP {name}: {e}")))?;
        tracing::info!(port = name, %mac, mtu, "TAP created");
        self.taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), Arc::new(tap));
        Ok(())
    }

    fn delete_port(&self, name: &str) {
        if self
            .taps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
            .is_some()
        {
            tracing::info!(port = name, "TAP removed");
        }
    }

    fn next_hop(&self, dst: Ipv6Addr, _hash: u16) -> Result<Route, RouteError> {
        Err(RouteError::NoRoute(dst))
    }
}
