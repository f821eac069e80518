//! The core's counters as named kstats, refreshed by the tick: `xde:0:xde` (the host's, SPEC
//! §7.9), `xde:0:PORT` for each port (its packets, drops by reason, flows, route cache) and
//! `xde:0:PORT_LAYER` for each of its layers (rules each way, flows). Each is virtual: its
//! data is an array the module owns, created when first seen with one `uint64` per
//! counter, and deleted when its port goes.

use super::{CStrBuf, sys};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::ptr;
use oxide_vpc::api::cmd::XdeStats;

/// One named kstat and its data.
pub struct KstatSet {
    ks: *mut sys::kstat_t,
    data: Vec<sys::kstat_named_t>,
}

// SAFETY: the kstat is the kernel's, usable from any thread; its data is only written by
// the holder of the `Kstats` lock.
unsafe impl Send for KstatSet {}

impl KstatSet {
    /// `xde:0:NAME` with one counter per `names`; `None` if the kernel refused it.
    fn new(name: &str, names: &[&str]) -> Option<Self> {
        let mut data: Vec<sys::kstat_named_t> = names
            .iter()
            .map(|_| sys::kstat_named_t {
                name: [0; sys::KSTAT_STRLEN],
                data_type: 0,
                value: [0; 2],
            })
            .collect();
        for (k, n) in data.iter_mut().zip(names) {
            let c = CStrBuf::<{ sys::KSTAT_STRLEN }>::new(n);
            // SAFETY: `k` is ours; the name is NUL-terminated.
            unsafe { sys::kstat_named_init(k, c.as_ptr(), sys::KSTAT_DATA_UINT64) };
        }
        let cname = CStrBuf::<{ sys::KSTAT_STRLEN }>::new(name);
        // SAFETY: NUL-terminated names; a virtual named kstat of `data.len()` entries.
        let ks = unsafe {
            sys::kstat_create(
                c"xde".as_ptr(),
                0,
                cname.as_ptr(),
                c"net".as_ptr(),
                sys::KSTAT_TYPE_NAMED,
                u32::try_from(data.len()).unwrap_or(0),
                sys::KSTAT_FLAG_VIRTUAL,
            )
        };
        if ks.is_null() {
            return None;
        }
        // SAFETY: the new kstat; its data is the vector kept with it (a Vec's buffer does
        // not move while the Vec is not resized).
        unsafe {
            (*ks).ks_data = data.as_mut_ptr().cast();
            sys::kstat_install(ks);
        }
        Some(Self { ks, data })
    }

    fn set(&mut self, values: &[(String, u64)]) {
        for (k, (_, v)) in self.data.iter_mut().zip(values) {
            k.value[0] = *v;
        }
    }
}

impl Drop for KstatSet {
    fn drop(&mut self) {
        if !self.ks.is_null() {
            // SAFETY: the kstat made by `new`, deleted once, before its data is freed.
            unsafe { sys::kstat_delete(self.ks) };
            self.ks = ptr::null_mut();
        }
    }
}

/// Every kstat of the module.
#[derive(Default)]
pub struct Kstats {
    xde: Option<KstatSet>,
    ports: BTreeMap<String, KstatSet>,
}

impl Kstats {
    /// Bring every kstat up to date with `st` and the ports' `layers` (kstat name,
    /// counters): make those of new ports and layers, delete those gone.
    pub fn refresh(&mut self, st: &XdeStats, layers: &[(String, Vec<(String, u64)>)]) {
        if self.xde.is_none() {
            let names: Vec<&str> = st.counters.iter().map(|(n, _)| n.as_str()).collect();
            self.xde = KstatSet::new("xde", &names);
        }
        if let Some(x) = &mut self.xde {
            x.set(&st.counters);
        }
        let sets = || st.ports.iter().chain(layers);
        self.ports.retain(|name, _| sets().any(|(p, _)| p == name));
        for (port, counters) in sets() {
            if !self.ports.contains_key(port) {
                let names: Vec<&str> = counters.iter().map(|(n, _)| n.as_str()).collect();
                if let Some(k) = KstatSet::new(port, &names) {
                    self.ports.insert(String::clone(port), k);
                }
            }
            if let Some(k) = self.ports.get_mut(port) {
                k.set(counters);
            }
        }
    }
}

/// The layer kstats' names and counters of port `port` with `layers`.
pub fn layer_sets(
    port: &str,
    layers: &[opte_api::dump::LayerDesc],
) -> Vec<(String, Vec<(String, u64)>)> {
    layers
        .iter()
        .map(|l| {
            (
                alloc::format!("{port}_{}", l.name),
                alloc::vec![
                    (String::from("rules_in"), l.rules_in),
                    (String::from("rules_out"), l.rules_out),
                    (String::from("flows"), l.flows),
                ],
            )
        })
        .collect()
}
