//! The illumos kernel's interfaces that the `xde` module uses: types, constants and
//! function prototypes, grouped by the header that declares them. Only what the module
//! calls is here. Structures the module reads or writes field by field (`mblk_t`,
//! `dblk_t`, the DDI operation vectors, `kstat_named_t`, the MAC registration) are laid
//! out as their headers lay them out; everything the module only passes along is opaque.
//!
//! This crate cannot be checked against the headers on Linux: the layouts follow the
//! illumos-gate headers named beside each, and must be confirmed against a Helios build
//! (its CTF data) before the module is loaded. The symbol check of the kernel build
//! (`cargo xtask test`) confirms that every function the module calls is among those
//! declared here and listed in `xde/kernel-symbols.txt`.
#![no_std]
#![allow(non_camel_case_types, non_upper_case_globals)]

pub use core::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

/// An opaque kernel type: only ever behind a pointer.
macro_rules! opaque {
    ($($(#[$m:meta])* $name:ident;)*) => {$(
        $(#[$m])*
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
            _not_send_sync: core::marker::PhantomData<*mut u8>,
        }
    )*};
}

/// `<sys/types.h>`
pub mod types {
    pub type size_t = usize;
    pub type ssize_t = isize;
    pub type uintptr_t = usize;
    pub type minor_t = u32;
    pub type major_t = u32;
    pub type dev_t = u64;
    pub type boolean_t = super::c_int;
    pub type hrtime_t = i64;
    pub type caddr_t = *mut super::c_char;
    pub type zoneid_t = i32;
    pub const B_FALSE: boolean_t = 0;
    pub const B_TRUE: boolean_t = 1;
}
use types::*;

/// `<sys/errno.h>`
pub mod errno {
    use super::c_int;
    pub const EPERM: c_int = 1;
    pub const ENOENT: c_int = 2;
    pub const EIO: c_int = 5;
    pub const ENXIO: c_int = 6;
    pub const ENOMEM: c_int = 12;
    pub const EFAULT: c_int = 14;
    pub const EBUSY: c_int = 16;
    pub const EEXIST: c_int = 17;
    pub const EINVAL: c_int = 22;
    pub const ENOTTY: c_int = 25;
    pub const ENOBUFS: c_int = 132;
    pub const EPROTO: c_int = 71;
    pub const ENOTSUP: c_int = 48;
}

opaque! {
    /// `<sys/cred.h>`
    cred_t;
    /// `<sys/sunddi.h>`
    dev_info_t;
    /// `<sys/stream.h>`: a STREAMS queue.
    queue_t;
    /// `<sys/ddi_periodic.h>`
    ddi_periodic_opaque;
    /// `<sys/mac.h>`
    mac_handle_opaque;
    /// `<sys/mac_client.h>`
    mac_client_handle_opaque;
    /// `<sys/mac_client.h>`
    mac_unicast_handle_opaque;
    /// `<sys/mac_provider.h>`
    mac_register_opaque_placeholder;
    /// `<inet/ip.h>`: an IP interface.
    ill_t;
    /// `<inet/ip_stack.h>`
    ip_stack_t;
    /// `<sys/modctl.h>`
    modinfo;
}

/// `<sys/stream.h>`: a message block.
#[repr(C)]
pub struct mblk_t {
    pub b_next: *mut mblk_t,
    pub b_prev: *mut mblk_t,
    pub b_cont: *mut mblk_t,
    pub b_rptr: *mut u8,
    pub b_wptr: *mut u8,
    pub b_datap: *mut dblk_t,
    pub b_band: u8,
    pub b_tag: u8,
    pub b_flag: u16,
    pub b_queue: *mut queue_t,
}

/// `<sys/stream.h>`: a data block (the fields before the free routine's union).
#[repr(C)]
pub struct dblk_t {
    pub db_frtnp: *mut c_void,
    pub db_base: *mut u8,
    pub db_lim: *mut u8,
    pub db_ref: u8,
    pub db_type: u8,
    pub db_flags: u8,
    pub db_struioflag: u8,
    pub db_cpid: i32,
    pub db_cache: *mut c_void,
    pub db_mblk: *mut mblk_t,
    pub db_free: *mut c_void,
    pub db_lastfree: *mut c_void,
    pub db_cksumstart: isize,
    pub db_cksumend: isize,
    pub db_cksumstuff: isize,
    pub db_struioun: [u64; 2],
}

/// `<sys/stream.h>`: message types.
pub const M_DATA: u8 = 0x00;
/// `<sys/stream.h>`: `allocb` priority.
pub const BPRI_HI: c_uint = 3;

/// `<sys/kmem.h>`
pub const KM_SLEEP: c_int = 0x0000;
/// `<sys/kmem.h>`
pub const KM_NOSLEEP: c_int = 0x0001;

/// `<sys/cmn_err.h>`
pub const CE_NOTE: c_int = 1;
/// `<sys/cmn_err.h>`
pub const CE_WARN: c_int = 2;

/// `<sys/ksynch.h>`: a kernel mutex (its storage; the kernel owns its meaning).
#[repr(C)]
pub struct kmutex_t {
    pub _opaque: [u64; 1],
}

/// `<sys/ddi_intr.h>`: interrupt priority levels for `mutex_init`.
pub const MUTEX_DRIVER: c_int = 4;

/// `<sys/devops.h>`: the character device entry points.
#[repr(C)]
pub struct cb_ops {
    pub cb_open: unsafe extern "C" fn(*mut dev_t, c_int, c_int, *mut cred_t) -> c_int,
    pub cb_close: unsafe extern "C" fn(dev_t, c_int, c_int, *mut cred_t) -> c_int,
    pub cb_strategy: unsafe extern "C" fn(*mut c_void) -> c_int,
    pub cb_print: unsafe extern "C" fn(dev_t, *mut c_char) -> c_int,
    pub cb_dump: unsafe extern "C" fn(dev_t, caddr_t, c_int, c_int) -> c_int,
    pub cb_read: unsafe extern "C" fn(dev_t, *mut c_void, *mut cred_t) -> c_int,
    pub cb_write: unsafe extern "C" fn(dev_t, *mut c_void, *mut cred_t) -> c_int,
    pub cb_ioctl:
        unsafe extern "C" fn(dev_t, c_int, isize, c_int, *mut cred_t, *mut c_int) -> c_int,
    pub cb_devmap: unsafe extern "C" fn() -> c_int,
    pub cb_mmap: unsafe extern "C" fn() -> c_int,
    pub cb_segmap: unsafe extern "C" fn() -> c_int,
    pub cb_chpoll: unsafe extern "C" fn() -> c_int,
    pub cb_prop_op: unsafe extern "C" fn() -> c_int,
    pub cb_str: *mut c_void,
    pub cb_flag: c_int,
    pub cb_rev: c_int,
    pub cb_aread: unsafe extern "C" fn() -> c_int,
    pub cb_awrite: unsafe extern "C" fn() -> c_int,
}

/// `<sys/devops.h>`: the driver's operations.
#[repr(C)]
pub struct dev_ops {
    pub devo_rev: c_int,
    pub devo_refcnt: c_int,
    pub devo_getinfo:
        unsafe extern "C" fn(*mut dev_info_t, c_int, *mut c_void, *mut *mut c_void) -> c_int,
    pub devo_identify: unsafe extern "C" fn(*mut dev_info_t) -> c_int,
    pub devo_probe: unsafe extern "C" fn(*mut dev_info_t) -> c_int,
    pub devo_attach: unsafe extern "C" fn(*mut dev_info_t, c_int) -> c_int,
    pub devo_detach: unsafe extern "C" fn(*mut dev_info_t, c_int) -> c_int,
    pub devo_reset: unsafe extern "C" fn(*mut dev_info_t, c_int) -> c_int,
    pub devo_cb_ops: *const cb_ops,
    pub devo_bus_ops: *const c_void,
    pub devo_power: unsafe extern "C" fn(*mut dev_info_t, c_int, c_int) -> c_int,
    pub devo_quiesce: unsafe extern "C" fn(*mut dev_info_t) -> c_int,
}

/// `<sys/modctl.h>`
#[repr(C)]
pub struct modldrv {
    pub drv_modops: *const c_void,
    pub drv_linkinfo: *const c_char,
    pub drv_dev_ops: *const dev_ops,
}

/// `<sys/modctl.h>`
#[repr(C)]
pub struct modlinkage {
    pub ml_rev: c_int,
    pub ml_linkage: [*const c_void; 7],
}

/// `<sys/modctl.h>`
pub const MODREV_1: c_int = 1;
/// `<sys/devops.h>`
pub const DEVO_REV: c_int = 4;
/// `<sys/devops.h>`
pub const CB_REV: c_int = 1;
/// `<sys/conf.h>`
pub const D_MP: c_int = 0x20;
/// `<sys/sunddi.h>`
pub const DDI_SUCCESS: c_int = 0;
/// `<sys/sunddi.h>`
pub const DDI_FAILURE: c_int = -1;
/// `<sys/sunddi.h>`: attach and detach commands.
pub const DDI_ATTACH: c_int = 0;
/// `<sys/sunddi.h>`
pub const DDI_DETACH: c_int = 0;
/// `<sys/sunddi.h>`: `getinfo` commands.
pub const DDI_INFO_DEVT2DEVINFO: c_int = 0;
/// `<sys/sunddi.h>`
pub const DDI_INFO_DEVT2INSTANCE: c_int = 1;
/// `<sys/stat.h>`
pub const S_IFCHR: c_int = 0x2000;
/// `<sys/sunddi.h>`
pub const DDI_PSEUDO: &core::ffi::CStr = c"ddi_pseudo";
/// `<sys/file.h>`: open flags refused on the control node.
pub const FEXCL: c_int = 0x0400;
/// `<sys/file.h>`
pub const FNDELAY: c_int = 0x04;
/// `<sys/file.h>`
pub const FNONBLOCK: c_int = 0x80;
/// `<sys/open.h>`
pub const OTYP_CHR: c_int = 2;
/// `<sys/ddi_periodic.h>`: a periodic's handle.
pub type ddi_periodic_t = *mut ddi_periodic_opaque;
/// `<sys/ddi_intr.h>`: run a periodic at kernel level 0 (a taskq thread).
pub const DDI_IPL_0: c_int = 0;

/// `<sys/kstat.h>`: the length of a kstat's names.
pub const KSTAT_STRLEN: usize = 31;

/// `<sys/kstat.h>`: a named statistic (the value is a 16-byte union; a `uint64_t`
/// statistic is its first 8 bytes).
#[repr(C)]
pub struct kstat_named_t {
    pub name: [c_char; KSTAT_STRLEN],
    pub data_type: u8,
    pub value: [u64; 2],
}

/// `<sys/kstat.h>`: a kstat's header, as kstat(9S) documents it.
#[repr(C)]
pub struct kstat_t {
    pub ks_crtime: hrtime_t,
    pub ks_next: *mut kstat_t,
    pub ks_kid: i32,
    pub ks_module: [c_char; KSTAT_STRLEN],
    pub ks_resv: u8,
    pub ks_instance: c_int,
    pub ks_name: [c_char; KSTAT_STRLEN],
    pub ks_type: u8,
    pub ks_class: [c_char; KSTAT_STRLEN],
    pub ks_flags: u8,
    pub ks_data: *mut c_void,
    pub ks_ndata: c_uint,
    pub ks_data_size: usize,
    pub ks_snaptime: hrtime_t,
    pub ks_update: Option<unsafe extern "C" fn(*mut kstat_t, c_int) -> c_int>,
    pub ks_private: *mut c_void,
    pub ks_snapshot: Option<unsafe extern "C" fn(*mut kstat_t, *mut c_void, c_int) -> c_int>,
    pub ks_lock: *mut c_void,
}

/// `<sys/kstat.h>`
pub const KSTAT_TYPE_NAMED: u8 = 1;
/// `<sys/kstat.h>`
pub const KSTAT_DATA_UINT64: u8 = 4;
/// `<sys/kstat.h>`
pub const KSTAT_FLAG_VIRTUAL: u8 = 0x01;

/// `<sys/mac.h>`: handles.
pub type mac_handle_t = *mut mac_handle_opaque;
/// `<sys/mac_client.h>`
pub type mac_client_handle_t = *mut mac_client_handle_opaque;
/// `<sys/mac_client.h>`
pub type mac_unicast_handle_t = *mut mac_unicast_handle_opaque;
/// `<sys/dls_mgmt.h>`
pub type datalink_id_t = u32;
/// `<sys/mac.h>`: a transmit cookie.
pub type mac_tx_cookie_t = uintptr_t;
/// `<sys/mac_client.h>`: the siphon, called with every received chain before the client.
pub type mac_siphon_t = unsafe extern "C" fn(
    *mut c_void,
    *mut mblk_t,
    *mut *mut mblk_t,
    *mut c_uint,
    *mut usize,
) -> *mut mblk_t;

/// `<sys/mac_provider.h>`: the provider's callbacks.
#[repr(C)]
pub struct mac_callbacks_t {
    pub mc_callbacks: c_uint,
    pub mc_getstat: unsafe extern "C" fn(*mut c_void, c_uint, *mut u64) -> c_int,
    pub mc_start: unsafe extern "C" fn(*mut c_void) -> c_int,
    pub mc_stop: unsafe extern "C" fn(*mut c_void),
    pub mc_setpromisc: unsafe extern "C" fn(*mut c_void, boolean_t) -> c_int,
    pub mc_multicst: unsafe extern "C" fn(*mut c_void, boolean_t, *const u8) -> c_int,
    pub mc_unicst: unsafe extern "C" fn(*mut c_void, *const u8) -> c_int,
    pub mc_tx: unsafe extern "C" fn(*mut c_void, *mut mblk_t) -> *mut mblk_t,
    pub mc_reserved: *mut c_void,
    pub mc_ioctl: *mut c_void,
    pub mc_getcapab: unsafe extern "C" fn(*mut c_void, c_uint, *mut c_void) -> boolean_t,
    pub mc_open: *mut c_void,
    pub mc_close: *mut c_void,
    pub mc_setprop: *mut c_void,
    pub mc_getprop: *mut c_void,
    pub mc_propinfo: *mut c_void,
}

/// `<sys/mac_provider.h>`: `mc_callbacks` bits.
pub const MC_GETCAPAB: c_uint = 0x0004;
/// `<sys/mac_provider.h>`: capabilities asked of a provider.
pub const MAC_CAPAB_HCKSUM: c_uint = 0x0000_0001;
/// `<sys/mac_provider.h>`
pub const MAC_CAPAB_LSO: c_uint = 0x0000_0008;
/// `<sys/mac_provider.h>`: the provider is an overlay (boolean; MAC then gives its clients
/// software ring fanout).
pub const MAC_CAPAB_OVERLAY: c_uint = 0x0080_0000;
/// `<sys/dlpi.h>`: partial checksum offload (the stack leaves the pseudo-header sum and
/// the offsets).
pub const HCKSUM_INET_PARTIAL: u32 = 0x02;
/// `<sys/dlpi.h>`: full checksum offload, IPv4 and IPv6.
pub const HCKSUM_INET_FULL_V4: u32 = 0x04;
/// `<sys/pattr.h>`
pub const HCKSUM_INET_FULL_V6: u32 = 0x08;
/// `<sys/pattr.h>`
pub const HCKSUM_IPHDRCKSUM: u32 = 0x10;
/// `<sys/pattr.h>`: an mblk's offload flags (`mac_hcksum_get`): the ULP checksum is to be
/// finished from `start` (offsets from the IP header) into `stuff`.
pub const HCK_PARTIALCKSUM: u32 = 0x02;
/// `<sys/pattr.h>`
pub const HCK_FULLCKSUM: u32 = 0x04;
/// `<sys/pattr.h>`
pub const HCK_IPV4_HDRCKSUM: u32 = 0x01;
/// `<sys/pattr.h>`
pub const HW_LSO: u32 = 0x10;

/// `<sys/mac_provider.h>`: the LSO capability (basic TCP over IPv4 and IPv6).
#[repr(C)]
pub struct mac_capab_lso_t {
    pub lso_flags: u32,
    /// `lso_basic_tcp_ipv4.lso_max`: the largest payload.
    pub lso_basic_tcp_ipv4_max: u32,
    /// `lso_basic_tcp_ipv6.lso_max`.
    pub lso_basic_tcp_ipv6_max: u32,
}

/// `<sys/mac_provider.h>`
pub const LSO_TX_BASIC_TCP_IPV4: u32 = 0x01;
/// `<sys/mac_provider.h>`
pub const LSO_TX_BASIC_TCP_IPV6: u32 = 0x02;

/// `<sys/mac_provider.h>`: the registration.
#[repr(C)]
pub struct mac_register_t {
    pub m_version: c_uint,
    pub m_type_ident: *const c_char,
    pub m_driver: *mut c_void,
    pub m_dip: *mut dev_info_t,
    pub m_instance: c_uint,
    pub m_src_addr: *mut u8,
    pub m_dst_addr: *mut u8,
    pub m_callbacks: *const mac_callbacks_t,
    pub m_min_sdu: c_uint,
    pub m_max_sdu: c_uint,
    pub m_pdata: *mut c_void,
    pub m_pdata_size: usize,
    pub m_priv_props: *mut *mut c_char,
    pub m_margin: u32,
    pub m_v12n: u32,
    pub m_multicast_sdu: c_uint,
}

/// `<sys/mac_provider.h>`
pub const MAC_VERSION: c_uint = 0x1;
/// `<sys/mac_ether.h>`
pub const MAC_PLUGIN_IDENT_ETHER: &core::ffi::CStr = c"mac_ether";
/// `<sys/mac.h>`: link states.
pub const LINK_STATE_UP: c_int = 1;
/// `<sys/mac_client.h>`: open flags.
pub const MAC_OPEN_FLAGS_EXCLUSIVE: u16 = 0x0001;
/// `<sys/mac_client.h>`
pub const MAC_UNICAST_PRIMARY: u16 = 0x0001;
/// `<sys/mac_client.h>`: transmit flags.
pub const MAC_DROP_ON_NO_DESC: u16 = 0x01;

/// `<sys/zone.h>`
pub const GLOBAL_ZONEID: zoneid_t = 0;

/// `<netinet/in.h>`: an IPv6 address (a union with `uint32_t[4]`, hence 4-byte aligned).
#[repr(C, align(4))]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct in6_addr {
    pub s6_addr: [u8; 16],
}

/// `<sys/zone.h>`
pub const ALL_ZONES: zoneid_t = -1;
/// `<inet/ip.h>`: IRE lookup match flags.
pub const MATCH_IRE_DSTONLY: c_int = 0x0000;
/// `<inet/ip.h>`
pub const MATCH_IRE_ILL: c_int = 0x0010;
/// `<net/if.h>`: neighbour states; REACHABLE to PROBE have a usable link-layer address.
pub const ND_REACHABLE: u16 = 2;
/// `<net/if.h>`
pub const ND_PROBE: u16 = 5;

/// `<inet/ip.h>`: `ire6_t`, the IPv6 part of a route's address union.
#[repr(C)]
pub struct ire6_t {
    pub ire6_mask: in6_addr,
    pub ire6_addr: in6_addr,
    pub ire6_gateway_addr: in6_addr,
    pub ire6_setsrc_addr: in6_addr,
}

/// `<inet/ip.h>`: the leading fields of `struct ire_s`, through the address union (the
/// module reads `ire_ill` and the IPv6 gateway, and only through a pointer the kernel
/// gave it).
#[repr(C)]
pub struct ire_t {
    pub ire_next: *mut ire_t,
    pub ire_ptpn: *mut *mut ire_t,
    pub ire_refcnt: u32,
    pub ire_ill: *mut ill_t,
    pub ire_identical_ref: u32,
    pub ire_ipversion: u8,
    pub ire_type: u16,
    pub ire_generation: c_uint,
    pub ire_ib_pkt_count: c_uint,
    pub ire_ob_pkt_count: c_uint,
    pub ire_create_time: i64,
    pub ire_flags: u32,
    pub ire_testhidden: boolean_t,
    pub ire_recvfn: *mut c_void,
    pub ire_sendfn: *mut c_void,
    pub ire_postfragfn: *mut c_void,
    pub ire_masklen: c_uint,
    pub ire_u: ire6_t,
}

/// `<inet/ip_ndp.h>`: the leading fields of `struct ncec_s` (a neighbour's state and
/// link-layer address).
#[repr(C)]
pub struct ncec_t {
    pub ncec_next: *mut ncec_t,
    pub ncec_ptpn: *mut *mut ncec_t,
    pub ncec_ill: *mut ill_t,
    pub ncec_flags: u16,
    pub ncec_state: u16,
    pub ncec_pcnt: i16,
    pub ncec_rcnt: u16,
    pub ncec_addr: in6_addr,
    pub ncec_lladdr: *mut u8,
}

/// `<sys/list.h>`: a list linkage.
#[repr(C)]
pub struct list_node_t {
    pub list_next: *mut list_node_t,
    pub list_prev: *mut list_node_t,
}

/// `<inet/ip_ndp.h>`: the leading fields of `struct nce_s`, through its `ncec_t`.
#[repr(C)]
pub struct nce_t {
    pub nce_node: list_node_t,
    pub nce_ill: *mut ill_t,
    pub nce_is_condemned: boolean_t,
    pub nce_addr: in6_addr,
    pub nce_dlur_mp: *mut mblk_t,
    pub nce_fp_mp: *mut mblk_t,
    pub nce_common: *mut ncec_t,
}

/// `<sys/netstack.h>`: the module index of IP in a netstack's module array.
pub const NS_IP: usize = 6;
/// `<sys/netstack.h>`: the number of modules.
pub const NS_MAX: usize = 19;

/// `<sys/netstack.h>`: the leading field of `struct netstack`, its modules' stacks
/// (`netstack_ip` is `[NS_IP]`).
#[repr(C)]
pub struct netstack_t {
    pub netstack_modules: [*mut c_void; NS_MAX],
}

unsafe extern "C" {
    // <sys/modctl.h>
    pub fn mod_install(ml: *const modlinkage) -> c_int;
    pub fn mod_remove(ml: *const modlinkage) -> c_int;
    pub fn mod_info(ml: *const modlinkage, mi: *mut modinfo) -> c_int;
    pub static mod_driverops: c_void;

    // <sys/sunddi.h>
    pub fn ddi_create_minor_node(
        dip: *mut dev_info_t,
        name: *const c_char,
        spec_type: c_int,
        minor: minor_t,
        node_type: *const c_char,
        flag: c_int,
    ) -> c_int;
    pub fn ddi_remove_minor_node(dip: *mut dev_info_t, name: *const c_char);
    pub fn ddi_get_instance(dip: *mut dev_info_t) -> c_int;
    pub fn ddi_copyin(buf: *const c_void, driverbuf: *mut c_void, cn: usize, mode: c_int) -> c_int;
    pub fn ddi_copyout(driverbuf: *const c_void, buf: *mut c_void, cn: usize, mode: c_int)
    -> c_int;
    pub fn ddi_quiesce_not_needed(dip: *mut dev_info_t) -> c_int;
    pub fn nodev() -> c_int;
    pub fn nulldev() -> c_int;
    pub fn getminor(dev: dev_t) -> minor_t;
    pub fn gethrtime() -> hrtime_t;

    // <sys/ddi_periodic.h>
    pub fn ddi_periodic_add(
        func: unsafe extern "C" fn(*mut c_void),
        arg: *mut c_void,
        interval: hrtime_t,
        level: c_int,
    ) -> ddi_periodic_t;
    pub fn ddi_periodic_delete(p: ddi_periodic_t);

    // <sys/cmn_err.h>
    pub fn cmn_err(level: c_int, fmt: *const c_char, ...);
    pub fn panic(fmt: *const c_char, ...) -> !;

    // <sys/kmem.h>
    pub fn kmem_alloc(size: usize, flag: c_int) -> *mut c_void;
    pub fn kmem_zalloc(size: usize, flag: c_int) -> *mut c_void;
    pub fn kmem_free(buf: *mut c_void, size: usize);

    // <sys/policy.h>
    pub fn secpolicy_dl_config(cr: *const cred_t) -> c_int;

    // <sys/stream.h>, <sys/strsun.h>
    pub fn allocb(size: usize, pri: c_uint) -> *mut mblk_t;
    pub fn freeb(mp: *mut mblk_t);
    pub fn freemsg(mp: *mut mblk_t);
    pub fn freemsgchain(mp: *mut mblk_t);

    // <sys/kstat.h>
    pub fn kstat_create(
        module: *const c_char,
        instance: c_int,
        name: *const c_char,
        class: *const c_char,
        ks_type: u8,
        ndata: c_uint,
        flags: u8,
    ) -> *mut kstat_t;
    pub fn kstat_install(ks: *mut kstat_t);
    pub fn kstat_delete(ks: *mut kstat_t);
    pub fn kstat_named_init(knp: *mut kstat_named_t, name: *const c_char, data_type: u8);

    // <sys/mac_provider.h>
    pub fn mac_init_ops(ops: *mut dev_ops, name: *const c_char);
    pub fn mac_fini_ops(ops: *mut dev_ops);
    pub fn mac_getinfo(
        dip: *mut dev_info_t,
        cmd: c_int,
        arg: *mut c_void,
        result: *mut *mut c_void,
    ) -> c_int;
    pub fn mac_private_minor() -> minor_t;
    pub fn mac_alloc(version: c_uint) -> *mut mac_register_t;
    pub fn mac_free(mregp: *mut mac_register_t);
    pub fn mac_register(mregp: *mut mac_register_t, mhp: *mut mac_handle_t) -> c_int;
    pub fn mac_unregister(mh: mac_handle_t) -> c_int;
    pub fn mac_rx(mh: mac_handle_t, mrh: *mut c_void, mp: *mut mblk_t);
    pub fn mac_link_update(mh: mac_handle_t, state: c_int);
    pub fn mac_hcksum_get(
        mp: *const mblk_t,
        start: *mut u32,
        stuff: *mut u32,
        end: *mut u32,
        value: *mut u32,
        flags: *mut u32,
    );
    pub fn mac_hcksum_set(
        mp: *mut mblk_t,
        start: u32,
        stuff: u32,
        end: u32,
        value: u32,
        flags: u32,
    );
    pub fn mac_lso_get(mp: *mut mblk_t, mss: *mut u32, flags: *mut u32);

    // <sys/mac_client.h>
    pub fn mac_open_by_linkid(linkid: datalink_id_t, mhp: *mut mac_handle_t) -> c_int;
    pub fn mac_close(mh: mac_handle_t);
    pub fn mac_client_open(
        mh: mac_handle_t,
        mchp: *mut mac_client_handle_t,
        name: *const c_char,
        flags: u16,
    ) -> c_int;
    pub fn mac_client_close(mch: mac_client_handle_t, flags: u16);
    pub fn mac_unicast_add(
        mch: mac_client_handle_t,
        addr: *mut u8,
        flags: u16,
        muh: *mut mac_unicast_handle_t,
        vid: u16,
        diag: *mut c_int,
    ) -> c_int;
    pub fn mac_unicast_remove(mch: mac_client_handle_t, muh: mac_unicast_handle_t) -> c_int;
    pub fn mac_siphon_set(mch: mac_client_handle_t, f: mac_siphon_t, arg: *mut c_void);
    pub fn mac_siphon_clear(mch: mac_client_handle_t);
    pub fn mac_unicast_primary_get(mh: mac_handle_t, addr: *mut u8);
    pub fn mac_sdu_get(mh: mac_handle_t, min: *mut c_uint, max: *mut c_uint);
    pub fn mac_tx(
        mch: mac_client_handle_t,
        mp: *mut mblk_t,
        hint: uintptr_t,
        flags: u16,
        ret: *mut *mut mblk_t,
    ) -> mac_tx_cookie_t;

    // <sys/dls_mgmt.h>, <sys/dls.h>
    pub fn dls_mgmt_get_linkid(name: *const c_char, linkid: *mut datalink_id_t) -> c_int;
    pub fn dls_devnet_create(mh: mac_handle_t, linkid: datalink_id_t, zoneid: zoneid_t) -> c_int;
    pub fn dls_devnet_destroy(
        mh: mac_handle_t,
        linkid: *mut datalink_id_t,
        wait: boolean_t,
    ) -> c_int;

    // <sys/netstack.h>, <inet/ip_ire.h>, <inet/ip_ndp.h>: next hops on the underlay.
    pub fn netstack_find_by_zoneid(zoneid: zoneid_t) -> *mut netstack_t;
    pub fn netstack_rele(ns: *mut netstack_t);
    pub fn ire_ftable_lookup_v6(
        addr: *const in6_addr,
        mask: *const in6_addr,
        gateway: *const in6_addr,
        ire_type: c_int,
        ill: *const ill_t,
        zoneid: zoneid_t,
        tsl: *const c_void,
        flags: c_int,
        xmit_hint: u32,
        ipst: *mut ip_stack_t,
        generationp: *mut c_uint,
    ) -> *mut ire_t;
    pub fn ill_lookup_on_name(
        name: *const c_char,
        do_alloc: boolean_t,
        isv6: boolean_t,
        did_alloc: *mut boolean_t,
        ipst: *mut ip_stack_t,
    ) -> *mut ill_t;
    pub fn ill_refrele(ill: *mut ill_t);
    pub fn ire_refrele(ire: *mut ire_t);
    pub fn nce_lookup_v6(ill: *mut ill_t, addr: *const in6_addr) -> *mut nce_t;
    pub fn nce_refrele(nce: *mut nce_t);

    // <sys/systm.h> (what compiled Rust code calls for memory moves)
    pub fn memcpy(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
    pub fn memmove(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
    pub fn memset(dst: *mut c_void, c: c_int, n: usize) -> *mut c_void;
    pub fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int;
    pub fn bcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int;
    pub fn strlen(s: *const c_char) -> usize;
}

// The operation vectors and the module linkage are tables the kernel only reads (or, for
// `dev_ops`, that `mac_init_ops` writes once before the module is installed): sharing
// them between threads is what the kernel does with them.
// SAFETY: read-only after initialisation, as above.
unsafe impl Sync for cb_ops {}
// SAFETY: as above.
unsafe impl Sync for dev_ops {}
// SAFETY: as above.
unsafe impl Sync for mac_callbacks_t {}
// SAFETY: as above.
unsafe impl Sync for modldrv {}
// SAFETY: as above.
unsafe impl Sync for modlinkage {}
