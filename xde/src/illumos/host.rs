//! The core's [`Host`] on illumos: each underlay link a mac client (its primary unicast
//! address, a siphon receiving every frame before IP does), each port a mac provider
//! (Ethernet, the guest's MAC, its MTU as the SDU, room for a VLAN tag) with a DLS devnet
//! under the datalink id `opteadm` allocated for it.
//!
//! The next hop (SPEC §7.6) comes from the global zone's IP route table and neighbour
//! cache: the route to the destination (`ire_ftable_lookup_v6`, the flow's hash choosing
//! among equal routes), its gateway (the destination itself on the link) and ILL (for an
//! off-link route, that of the route to the gateway), which must be one of the two
//! underlays' ILLs; then the gateway's neighbour entry, whose link-layer address is used
//! only while it is reachable (REACHABLE to PROBE). The structures are read through the
//! leading fields `illumos-sys-hdrs` lays out after the illumos headers.

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
    /// The global zone's IP stack (its netstack held) and the underlays' IPv6 ILLs (held),
    /// while the underlay is attached.
    ip: Option<IpState>,
    ports: BTreeMap<String, PortDev>,
}

struct IpState {
    ns: *mut sys::netstack_t,
    ipst: *mut sys::ip_stack_t,
    ills: [*mut sys::ill_t; 2],
}

impl IpState {
    fn open(u1: &str, u2: &str) -> Option<Self> {
        // SAFETY: the global zone's netstack, held until `close`; the ILLs found by name
        // in it, held likewise (null when a link has no IPv6 interface).
        unsafe {
            let ns = sys::netstack_find_by_zoneid(sys::GLOBAL_ZONEID);
            if ns.is_null() {
                return None;
            }
            let ipst: *mut sys::ip_stack_t = (*ns)
                .netstack_modules
                .get(sys::NS_IP)
                .copied()
                .unwrap_or(ptr::null_mut())
                .cast();
            if ipst.is_null() {
                sys::netstack_rele(ns);
                return None;
            }
            let ill = |name: &str| {
                let c = CStrBuf::<64>::new(name);
                sys::ill_lookup_on_name(
                    c.as_ptr(),
                    sys::types::B_FALSE,
                    sys::types::B_TRUE,
                    ptr::null_mut(),
                    ipst,
                )
            };
            Some(Self {
                ns,
                ipst,
                ills: [ill(u1), ill(u2)],
            })
        }
    }

    fn close(self) {
        // SAFETY: the holds taken by `open`, released once.
        unsafe {
            for i in self.ills {
                if !i.is_null() {
                    sys::ill_refrele(i);
                }
            }
            sys::netstack_rele(self.ns);
        }
    }
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

/// The largest TCP payload a guest may hand a port in one frame: the module cuts it into
/// segments at the guest's MSS (SPEC §7.5).
const LSO_MAX: u32 = 65_535;

/// A port's capabilities: partial checksums (the guest leaves the pseudo-header sum and
/// the offsets; the module finishes the sum as the frame comes in) and LSO for TCP over
/// both families (a super-frame goes through the engine once and is cut, every checksum
/// computed, where it leaves: see `super::datapath`), and the overlay capability. The IPv4 header checksum stays the
/// guest's: the engine only updates it.
unsafe extern "C" fn port_getcapab(
    _: *mut c_void,
    cap: c_uint,
    data: *mut c_void,
) -> sys::types::boolean_t {
    match cap {
        sys::MAC_CAPAB_HCKSUM => {
            // SAFETY: for HCKSUM the framework passes a `uint32_t *` of flags.
            unsafe { *data.cast::<u32>() = sys::HCKSUM_INET_PARTIAL };
            sys::types::B_TRUE
        }
        sys::MAC_CAPAB_LSO => {
            // SAFETY: for LSO the framework passes a `mac_capab_lso_t *`.
            unsafe {
                let lso = data.cast::<sys::mac_capab_lso_t>();
                (*lso).lso_flags = sys::LSO_TX_BASIC_TCP_IPV4 | sys::LSO_TX_BASIC_TCP_IPV6;
                (*lso).lso_basic_tcp_ipv4_max = LSO_MAX;
                (*lso).lso_basic_tcp_ipv6_max = LSO_MAX;
            }
            sys::types::B_TRUE
        }
        // An overlay, so that MAC fans a port's traffic out over soft rings.
        sys::MAC_CAPAB_OVERLAY => sys::types::B_TRUE,
        _ => sys::types::B_FALSE,
    }
}

impl IllumosHost {
    pub fn new(dip: *mut sys::dev_info_t) -> Self {
        Self {
            dip,
            devs: Mutex::new(Devices {
                underlay: None,
                ip: None,
                ports: BTreeMap::new(),
            }),
        }
    }

    pub fn underlay_attached(&self) -> bool {
        self.devs.lock().underlay.is_some()
    }

    /// The mac client handles of the underlays (by [`Link::index`]), to transmit on.
    pub fn underlay_clients(&self) -> [Option<sys::mac_client_handle_t>; 2] {
        match &self.devs.lock().underlay {
            Some([a, b]) => [Some(a.mch), Some(b.mch)],
            None => [None, None],
        }
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
    fn now(&self) -> opte::engine::time::Moment {
        super::now()
    }

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
        d.ip = IpState::open(u1, u2);
        Ok(())
    }

    fn detach_underlay(&self) {
        let mut d = self.devs.lock();
        if let Some(ip) = d.ip.take() {
            ip.close();
        }
        if let Some([a, b]) = d.underlay.take() {
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

    fn next_hop(&self, dst: Ipv6Addr, hash: u16) -> Result<Route, RouteError> {
        let d = self.devs.lock();
        let (Some(u), Some(ip)) = (d.underlay.as_ref(), d.ip.as_ref()) else {
            return Err(RouteError::NoUnderlay);
        };
        let lookup = |addr: &sys::in6_addr, ill: *const sys::ill_t, flags| {
            // SAFETY: a lookup in the held IP stack; the returned route is held and is
            // released by the caller.
            unsafe {
                sys::ire_ftable_lookup_v6(
                    addr,
                    ptr::null(),
                    ptr::null(),
                    0,
                    ill,
                    sys::ALL_ZONES,
                    ptr::null(),
                    flags,
                    u32::from(hash),
                    ip.ipst,
                    ptr::null_mut(),
                )
            }
        };
        let dst6 = sys::in6_addr {
            s6_addr: dst.bytes(),
        };
        let ire = lookup(&dst6, ptr::null(), sys::MATCH_IRE_DSTONLY);
        if ire.is_null() {
            return Err(RouteError::NoRoute(dst));
        }
        // SAFETY: a held route: its gateway and ILL are read, then it is released.
        let (gw, mut ill) = unsafe {
            let r = ((*ire).ire_u.ire6_gateway_addr, (*ire).ire_ill);
            sys::ire_refrele(ire);
            r
        };
        let on_link = gw.s6_addr == [0; 16];
        let hop = if on_link { dst6 } else { gw };
        let hop_ip = Ipv6Addr::from_const(hop.s6_addr);
        if ill.is_null() {
            // An off-link route names no interface: the route to its gateway does.
            let gire = lookup(&hop, ptr::null(), sys::MATCH_IRE_DSTONLY);
            if gire.is_null() {
                return Err(RouteError::NoRoute(hop_ip));
            }
            // SAFETY: as above.
            unsafe {
                ill = (*gire).ire_ill;
                sys::ire_refrele(gire);
            }
        }
        let link = if !ill.is_null() && ill == ip.ills[0] {
            Link::U1
        } else if !ill.is_null() && ill == ip.ills[1] {
            Link::U2
        } else {
            return Err(RouteError::NotUnderlay(dst));
        };
        // SAFETY: the neighbour entry of the next hop on that ILL, held while its state
        // and link-layer address are read, then released.
        let mac = unsafe {
            let nce = sys::nce_lookup_v6(ill, &hop);
            if nce.is_null() {
                return Err(RouteError::Unresolved(hop_ip));
            }
            let ncec = (*nce).nce_common;
            let usable = !ncec.is_null()
                && (sys::ND_REACHABLE..=sys::ND_PROBE).contains(&(*ncec).ncec_state)
                && !(*ncec).ncec_lladdr.is_null();
            let mut mac = [0u8; 6];
            if usable {
                ptr::copy_nonoverlapping((*ncec).ncec_lladdr, mac.as_mut_ptr(), 6);
            }
            sys::nce_refrele(nce);
            if !usable {
                return Err(RouteError::Unresolved(hop_ip));
            }
            mac
        };
        let src_mac = u
            .get(link.index())
            .map(|l| l.mac)
            .ok_or(RouteError::NoUnderlay)?;
        Ok(Route {
            link,
            src_mac,
            dst_mac: MacAddr::from_const(mac),
        })
    }
}
