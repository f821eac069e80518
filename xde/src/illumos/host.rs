//! The core's [`Host`] on illumos: each underlay link a mac client (its primary unicast
//! address, a siphon receiving every frame before IP does), each port a mac provider
//! (Ethernet, the guest's MAC, its MTU as the SDU, room for a VLAN tag) with a DLS devnet
//! under the datalink id `opteadm` allocated for it.
//!
//! Not yet: the next hop (SPEC §7.6) comes from the IP route table and the neighbour
//! cache (`ire_ftable_lookup_v6`, the route's ILL and gateway, that gateway's NCE), whose
//! structures the module must read field by field; until their layouts are taken from a
//! Helios build's CTF, [`IllumosHost::next_hop`] answers that there is no route, and the
//! core's route cache counts each miss.

use super::datapath::{xde_mc_tx, xde_rx};
use super::{CStrBuf, sys};
use crate::host::{Host, Link};
use crate::route::{Route, RouteError};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use core::ffi::{c_int, c_uint, c_void};
use core::ptr;
use opte::sync::Mutex;
use opte_api::{Ipv6Addr, MacAddr, OpteError};
use oxide_vpc::api::PortAttach;

fn system(errno: c_int, msg: &str) -> OpteError {
    OpteError::System {
        errno,
        msg: msg.into(),
    }
}

/// One underlay link, open.
pub struct UnderlayDev {
    pub mh: sys::mac_handle_t,
    pub mch: sys::mac_client_handle_t,
    muh: sys::mac_unicast_handle_t,
    pub mac: MacAddr,
    pub mtu: u32,
}

/// One port's mac provider.
pub struct PortDev {
    pub mh: sys::mac_handle_t,
    linkid: sys::datalink_id_t,
    /// The callbacks' argument: the port's name, kept at a stable address.
    driver: *mut PortDriver,
}

/// What a port's mac callbacks receive: which port they are for.
pub struct PortDriver {
    pub name: String,
}

struct Devices {
    underlay: Option<[UnderlayDev; 2]>,
    ports: BTreeMap<String, PortDev>,
}

/// The illumos host.
pub struct IllumosHost {
    dip: *mut sys::dev_info_t,
    devs: Mutex<Devices>,
}

// SAFETY: the raw handles are the kernel's, usable from any thread; `devs` is behind a
// kernel mutex.
unsafe impl Send for IllumosHost {}
// SAFETY: as above.
unsafe impl Sync for IllumosHost {}

static PORT_CALLBACKS: sys::mac_callbacks_t = sys::mac_callbacks_t {
    mc_callbacks: sys::MC_GETCAPAB,
    mc_getstat: port_getstat,
    mc_start: port_start,
    mc_stop: port_stop,
    mc_setpromisc: port_setpromisc,
    mc_multicst: port_multicst,
    mc_unicst: port_unicst,
    mc_tx: xde_mc_tx,
    mc_reserved: ptr::null_mut(),
    mc_ioctl: ptr::null_mut(),
    mc_getcapab: port_getcapab,
    mc_open: ptr::null_mut(),
    mc_close: ptr::null_mut(),
    mc_setprop: ptr::null_mut(),
    mc_getprop: ptr::null_mut(),
    mc_propinfo: ptr::null_mut(),
};

unsafe extern "C" fn port_getstat(_: *mut c_void, _: c_uint, _: *mut u64) -> c_int {
    sys::errno::ENOTSUP
}

unsafe extern "C" fn port_start(_: *mut c_void) -> c_int {
    0
}

unsafe extern "C" fn port_stop(_: *mut c_void) {}

unsafe extern "C" fn port_setpromisc(_: *mut c_void, _: sys::types::boolean_t) -> c_int {
    0
}

// Multicast joins succeed (so NDP works); what reaches the guest is the engine's choice.
unsafe extern "C" fn port_multicst(
    _: *mut c_void,
    _: sys::types::boolean_t,
    _: *const u8,
) -> c_int {
    0
}

unsafe extern "C" fn port_unicst(_: *mut c_void, _: *const u8) -> c_int {
    0
}

unsafe extern "C" fn port_getcapab(
    _: *mut c_void,
    cap: c_uint,
    data: *mut c_void,
) -> sys::types::boolean_t {
    match cap {
        sys::MAC_CAPAB_HCKSUM => {
            // SAFETY: for HCKSUM the framework passes a `uint32_t *` of flags.
            unsafe {
                *data.cast::<u32>() =
                    sys::HCKSUM_INET_FULL_V4 | sys::HCKSUM_INET_FULL_V6 | sys::HCKSUM_IPHDRCKSUM
            };
            sys::types::B_TRUE
        }
        _ => sys::types::B_FALSE,
    }
}

impl IllumosHost {
    pub fn new(dip: *mut sys::dev_info_t) -> Self {
        Self {
            dip,
            devs: Mutex::new(Devices {
                underlay: None,
                ports: BTreeMap::new(),
            }),
        }
    }

    pub fn underlay_attached(&self) -> bool {
        self.devs.lock().underlay.is_some()
    }

    /// The mac client handle of underlay `link`, to transmit on.
    pub fn underlay_client(&self, link: Link) -> Option<sys::mac_client_handle_t> {
        self.devs
            .lock()
            .underlay
            .as_ref()
            .and_then(|u| u.get(link.index()))
            .map(|u| u.mch)
    }

    /// The mac handle of port `name`, to deliver to.
    pub fn port_handle(&self, name: &str) -> Option<sys::mac_handle_t> {
        self.devs.lock().ports.get(name).map(|p| p.mh)
    }

    fn open_underlay(name: &str, link: Link) -> Result<UnderlayDev, OpteError> {
        let cname = CStrBuf::<64>::new(name);
        let mut linkid: sys::datalink_id_t = 0;
        // SAFETY: a NUL-terminated name and an out pointer.
        if unsafe { sys::dls_mgmt_get_linkid(cname.as_ptr(), &mut linkid) } != 0 {
            return Err(system(sys::errno::EFAULT, "no such underlay link"));
        }
        let mut mh: sys::mac_handle_t = ptr::null_mut();
        // SAFETY: out pointers; every handle opened is closed on the failure paths.
        unsafe {
            let e = sys::mac_open_by_linkid(linkid, &mut mh);
            if e != 0 {
                return Err(system(e, "mac_open_by_linkid"));
            }
            let mut mch: sys::mac_client_handle_t = ptr::null_mut();
            let e = sys::mac_client_open(mh, &mut mch, c"xde".as_ptr(), 0);
            if e != 0 {
                sys::mac_close(mh);
                return Err(system(e, "mac_client_open"));
            }
            let mut muh: sys::mac_unicast_handle_t = ptr::null_mut();
            let mut diag: c_int = 0;
            let e = sys::mac_unicast_add(
                mch,
                ptr::null_mut(),
                sys::MAC_UNICAST_PRIMARY,
                &mut muh,
                0,
                &mut diag,
            );
            if e != 0 {
                sys::mac_client_close(mch, 0);
                sys::mac_close(mh);
                return Err(system(e, "mac_unicast_add"));
            }
            let mut mac = [0u8; 6];
            sys::mac_unicast_primary_get(mh, mac.as_mut_ptr());
            let (mut min, mut max): (c_uint, c_uint) = (0, 0);
            sys::mac_sdu_get(mh, &mut min, &mut max);
            // The siphon's argument is the link's index, so the callback knows its link.
            sys::mac_siphon_set(mch, xde_rx, link.index() as *mut c_void);
            Ok(UnderlayDev {
                mh,
                mch,
                muh,
                mac: MacAddr::from_const(mac),
                mtu: max,
            })
        }
    }

    fn close_underlay(u: UnderlayDev) {
        // SAFETY: handles opened by `open_underlay`, closed once, siphon first.
        unsafe {
            sys::mac_siphon_clear(u.mch);
            sys::mac_unicast_remove(u.mch, u.muh);
            sys::mac_client_close(u.mch, 0);
            sys::mac_close(u.mh);
        }
    }
}

impl Host for IllumosHost {
    fn attach_underlay(&self, u1: &str, u2: &str) -> Result<(), OpteError> {
        let mut d = self.devs.lock();
        if d.underlay.is_some() {
            return Err(system(sys::errno::EEXIST, "underlay already set"));
        }
        let a = Self::open_underlay(u1, Link::U1)?;
        let b = match Self::open_underlay(u2, Link::U2) {
            Ok(b) => b,
            Err(e) => {
                Self::close_underlay(a);
                return Err(e);
            }
        };
        d.underlay = Some([a, b]);
        Ok(())
    }

    fn detach_underlay(&self) {
        if let Some([a, b]) = self.devs.lock().underlay.take() {
            Self::close_underlay(a);
            Self::close_underlay(b);
        }
    }

    fn create_port(
        &self,
        name: &str,
        mac: MacAddr,
        mtu: u32,
        attach: &PortAttach,
        linkid: u32,
    ) -> Result<(), OpteError> {
        if let PortAttach::VhostUser(_) = attach {
            return Err(system(
                sys::errno::ENOTSUP,
                "vhost-user ports are the Linux daemon's",
            ));
        }
        let driver = Box::into_raw(Box::new(PortDriver { name: name.into() }));
        let mut addr = mac.bytes();
        // SAFETY: a registration from mac_alloc, filled and handed to mac_register, then
        // freed; the driver argument lives until the port is deleted.
        unsafe {
            let reg = sys::mac_alloc(sys::MAC_VERSION);
            if reg.is_null() {
                drop(Box::from_raw(driver));
                return Err(system(sys::errno::ENOMEM, "mac_alloc"));
            }
            (*reg).m_type_ident = sys::MAC_PLUGIN_IDENT_ETHER.as_ptr();
            (*reg).m_driver = driver.cast();
            (*reg).m_dip = self.dip;
            (*reg).m_instance = 0;
            (*reg).m_src_addr = addr.as_mut_ptr();
            (*reg).m_callbacks = &PORT_CALLBACKS;
            (*reg).m_min_sdu = 1;
            (*reg).m_max_sdu = mtu;
            (*reg).m_margin = 4;
            let mut mh: sys::mac_handle_t = ptr::null_mut();
            let e = sys::mac_register(reg, &mut mh);
            sys::mac_free(reg);
            if e != 0 {
                drop(Box::from_raw(driver));
                return Err(system(e, "mac_register"));
            }
            let e = sys::dls_devnet_create(mh, linkid, sys::GLOBAL_ZONEID);
            if e != 0 {
                sys::mac_unregister(mh);
                drop(Box::from_raw(driver));
                return Err(system(e, "dls_devnet_create"));
            }
            sys::mac_link_update(mh, sys::LINK_STATE_UP);
            self.devs
                .lock()
                .ports
                .insert(name.into(), PortDev { mh, linkid, driver });
        }
        Ok(())
    }

    fn delete_port(&self, name: &str) {
        let Some(p) = self.devs.lock().ports.remove(name) else {
            return;
        };
        // SAFETY: the port's handles and driver argument, released once.
        unsafe {
            let mut linkid = p.linkid;
            sys::dls_devnet_destroy(p.mh, &mut linkid, sys::types::B_TRUE);
            sys::mac_unregister(p.mh);
            drop(Box::from_raw(p.driver));
        }
    }

    fn next_hop(&self, dst: Ipv6Addr, _hash: u16) -> Result<Route, RouteError> {
        if !self.underlay_attached() {
            return Err(RouteError::NoUnderlay);
        }
        Err(RouteError::NoRoute(dst))
    }
}
