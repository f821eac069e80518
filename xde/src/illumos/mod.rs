//! The illumos kernel module `xde`: thin glue between the kernel's interfaces and the core
//! ([`crate::Xde`]). Everything that decides is in the core; this module only moves bytes
//! and calls between the two (SPEC §7.1–7.9):
//!
//! | part | what it does |
//! |---|---|
//! | entry points | `_init`/`_info`/`_fini`; `attach` makes the control node `ctl` (`/dev/xde` by `xde-link`) and the state; `detach` refuses while ports or an underlay exist |
//! | control node | `open` (that minor only, `secpolicy_dl_config`, no `FEXCL`/`FNDELAY`/`FNONBLOCK`), `ioctl` `XDE_IOC_OPTE_CMD`: the 72-byte envelope copied in, the request copied in, the core's `dispatch_ioctl`, the answer copied out (`ENOBUFS` with the size needed) |
//! | [`host`] | the core's [`crate::Host`]: the two underlays as mac clients with a siphon, each port a mac provider with a DLS devnet |
//! | [`datapath`] | a port's `mc_tx` and the underlays' siphon: chains in, the core's `tx`/`rx`, what it emits out (`mac_tx`, `mac_rx`) |
//! | [`mblk`] | `mblk_t` chains lent to the engine as its segments, and back |
//! | [`kstat`], tick | the core's counters as named kstats (`xde:0:xde`, `xde:0:PORT`), refreshed by the one-second `ddi_periodic` that runs the core's `tick` |
//!
//! It cannot run on Linux: `cargo xtask test` builds it (`xde/kmod`, a `no_std` staticlib
//! in the kernel's code model) and checks its symbols; it has not been loaded on Helios.
#![allow(unsafe_code)]

pub mod datapath;
pub mod host;
pub mod kstat;
pub mod mblk;

pub(crate) use illumos_sys_hdrs as sys;

use crate::Xde;
use alloc::boxed::Box;
use core::ffi::{c_char, c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use host::IllumosHost;
use opte::engine::time::Moment;
use opte_api::OpteCmdIoctl;
use opte_api::error::Os;
use sys::errno::*;

/// The control node's one ioctl command, `XDE_IOC_OPTE_CMD`:
/// `('x' << 24) | ('d' << 16) | ('e' << 8) | 1`.
pub const XDE_IOC_OPTE_CMD: c_int =
    ((b'x' as c_int) << 24) | ((b'd' as c_int) << 16) | ((b'e' as c_int) << 8) | 1;

const _: () = assert!(core::mem::size_of::<OpteCmdIoctl>() == 72);

/// The largest request copied in: no control request comes near it.
const REQ_MAX: usize = 4 << 20;

/// Everything the module keeps between calls.
pub struct XdeState {
    pub xde: Xde<IllumosHost>,
    dip: *mut sys::dev_info_t,
    periodic: sys::ddi_periodic_t,
    kstats: opte::sync::Mutex<kstat::Kstats>,
}

static STATE: AtomicPtr<XdeState> = AtomicPtr::new(ptr::null_mut());

/// The module's state, once attached.
pub fn state() -> Option<&'static XdeState> {
    // SAFETY: set in attach to a leaked box and cleared (then freed) only in detach, which
    // the DDI never runs concurrently with the entry points that call this.
    unsafe { STATE.load(Ordering::Acquire).as_ref() }
}

/// Now, for the engine (ns since boot).
pub fn now() -> Moment {
    // SAFETY: gethrtime has no preconditions.
    Moment::from_nanos(u64::try_from(unsafe { sys::gethrtime() }).unwrap_or(0))
}

/// A NUL-terminated copy of `s` in a fixed buffer (truncated to fit), for the kernel's
/// C strings.
pub struct CStrBuf<const N: usize>([u8; N]);

impl<const N: usize> CStrBuf<N> {
    pub fn new(s: &str) -> Self {
        let mut b = [0u8; N];
        let n = s.len().min(N.saturating_sub(1));
        if let (Some(d), Some(src)) = (b.get_mut(..n), s.as_bytes().get(..n)) {
            d.copy_from_slice(src);
        }
        Self(b)
    }

    pub fn as_ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }
}

unsafe extern "C" fn xde_getinfo(
    dip: *mut sys::dev_info_t,
    cmd: c_int,
    arg: *mut c_void,
    result: *mut *mut c_void,
) -> c_int {
    // The control node is minor 0 of instance 0; everything else is the mac framework's.
    // SAFETY: the DDI's arguments, passed on.
    let minor = unsafe { sys::getminor(arg as sys::types::dev_t) };
    if minor >= unsafe { sys::mac_private_minor() } {
        return unsafe { sys::mac_getinfo(dip, cmd, arg, result) };
    }
    match (cmd, state()) {
        (sys::DDI_INFO_DEVT2DEVINFO, Some(s)) => {
            // SAFETY: `result` is the DDI's out pointer.
            unsafe { *result = s.dip.cast() };
            sys::DDI_SUCCESS
        }
        (sys::DDI_INFO_DEVT2INSTANCE, _) => {
            // SAFETY: as above.
            unsafe { *result = ptr::null_mut() };
            sys::DDI_SUCCESS
        }
        _ => sys::DDI_FAILURE,
    }
}

unsafe extern "C" fn xde_attach(dip: *mut sys::dev_info_t, cmd: c_int) -> c_int {
    if cmd != sys::DDI_ATTACH || !STATE.load(Ordering::Acquire).is_null() {
        return sys::DDI_FAILURE;
    }
    // SAFETY: the DDI's `dip`; the name and node type are NUL-terminated.
    let made = unsafe {
        sys::ddi_create_minor_node(
            dip,
            c"ctl".as_ptr(),
            sys::S_IFCHR,
            0,
            sys::DDI_PSEUDO.as_ptr(),
            0,
        )
    };
    if made != sys::DDI_SUCCESS {
        return sys::DDI_FAILURE;
    }
    let seed = u64::try_from(unsafe { sys::gethrtime() }).unwrap_or(0);
    let xde = Xde::new(IllumosHost::new(dip), seed);
    let s = Box::new(XdeState {
        xde,
        dip,
        periodic: ptr::null_mut(),
        kstats: opte::sync::Mutex::new(kstat::Kstats::default()),
    });
    s.kstats.lock().refresh(&s.xde.xde_stats(), &[]);
    let raw = Box::into_raw(s);
    STATE.store(raw, Ordering::Release);
    // SAFETY: the callback and its argument live until detach deletes the periodic first.
    let p = unsafe { sys::ddi_periodic_add(xde_tick, raw.cast(), 1_000_000_000, sys::DDI_IPL_0) };
    // SAFETY: `raw` is the state just made; nothing else writes it yet.
    unsafe { (*raw).periodic = p };
    sys::DDI_SUCCESS
}

unsafe extern "C" fn xde_tick(arg: *mut c_void) {
    // SAFETY: the state, alive until detach has deleted this periodic.
    let s: &XdeState = unsafe { &*arg.cast::<XdeState>() };
    s.xde.tick(now());
    let layers: alloc::vec::Vec<_> = s
        .xde
        .ports()
        .iter()
        .flat_map(|p| kstat::layer_sets(p.name(), &p.with_vpc(|v| v.port().list_layers())))
        .collect();
    s.kstats.lock().refresh(&s.xde.xde_stats(), &layers);
}

unsafe extern "C" fn xde_detach(dip: *mut sys::dev_info_t, cmd: c_int) -> c_int {
    if cmd != sys::DDI_DETACH {
        return sys::DDI_FAILURE;
    }
    let Some(s) = state() else {
        return sys::DDI_FAILURE;
    };
    if !s.xde.ports().is_empty() || s.xde.host.underlay_attached() {
        return sys::DDI_FAILURE;
    }
    let raw = STATE.swap(ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: the state made by attach; the periodic is deleted (waiting out a running
    // tick) before the state it uses is freed.
    unsafe {
        let s = Box::from_raw(raw);
        sys::ddi_periodic_delete(s.periodic);
        sys::ddi_remove_minor_node(dip, ptr::null());
        // The kstats go with the state.
        drop(s);
    }
    sys::DDI_SUCCESS
}

unsafe extern "C" fn xde_open(
    devp: *mut sys::types::dev_t,
    flag: c_int,
    otyp: c_int,
    cred: *mut sys::cred_t,
) -> c_int {
    if otyp != sys::OTYP_CHR {
        return EINVAL;
    }
    // SAFETY: the DDI's device number.
    if unsafe { sys::getminor(*devp) } != 0 {
        return ENXIO;
    }
    // SAFETY: the caller's credentials.
    let e = unsafe { sys::secpolicy_dl_config(cred) };
    if e != 0 {
        return e;
    }
    if flag & (sys::FEXCL | sys::FNDELAY | sys::FNONBLOCK) != 0 {
        return EINVAL;
    }
    0
}

unsafe extern "C" fn xde_close(
    _dev: sys::types::dev_t,
    _flag: c_int,
    _otyp: c_int,
    _cred: *mut sys::cred_t,
) -> c_int {
    0
}

unsafe extern "C" fn xde_ioctl(
    _dev: sys::types::dev_t,
    cmd: c_int,
    arg: isize,
    mode: c_int,
    _cred: *mut sys::cred_t,
    _rval: *mut c_int,
) -> c_int {
    if cmd != XDE_IOC_OPTE_CMD {
        return ENOTTY;
    }
    // SAFETY: `arg` is the caller's address of its envelope; copied in and out with the
    // DDI's checks.
    unsafe { xde_ioc_opte_cmd(arg as *mut c_void, mode) }
}

/// One control command: the envelope at user address `karg`.
///
/// # Safety
///
/// `karg` and `mode` as the ioctl entry point received them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xde_ioc_opte_cmd(karg: *mut c_void, mode: c_int) -> c_int {
    let Some(s) = state() else {
        return ENXIO;
    };
    let mut ioc = core::mem::MaybeUninit::<OpteCmdIoctl>::zeroed();
    let sz = core::mem::size_of::<OpteCmdIoctl>();
    // SAFETY: copyin checks the user address; `ioc` has room for the envelope.
    if unsafe { sys::ddi_copyin(karg, ioc.as_mut_ptr().cast(), sz, mode) } != 0 {
        return EFAULT;
    }
    // SAFETY: all zeroes is a valid envelope (null pointers, zero lengths), and copyin
    // filled it with the caller's bytes: plain integers and addresses.
    let mut ioc = unsafe { ioc.assume_init() };
    if ioc.req_len > REQ_MAX {
        return ENOBUFS;
    }
    let mut req = alloc::vec![0u8; ioc.req_len];
    if ioc.req_len > 0 {
        // SAFETY: as above, into a buffer of exactly `req_len` bytes.
        let e = unsafe {
            sys::ddi_copyin(
                ioc.req_bytes.cast(),
                req.as_mut_ptr().cast(),
                ioc.req_len,
                mode,
            )
        };
        if e != 0 {
            return EFAULT;
        }
    }
    let reply = s
        .xde
        .dispatch_ioctl(ioc.api_version, ioc.cmd, &req, ioc.resp_len, Os::Illumos);
    ioc.flags = reply.flags;
    ioc.resp_len_actual = reply.resp_len_actual;
    if !reply.body.is_empty() && reply.body.len() <= ioc.resp_len {
        // SAFETY: copyout checks the user address; the body fits the caller's buffer.
        let e = unsafe {
            sys::ddi_copyout(
                reply.body.as_ptr().cast(),
                ioc.resp_bytes.cast(),
                reply.body.len(),
                mode,
            )
        };
        if e != 0 {
            return EFAULT;
        }
    }
    // SAFETY: the envelope back to where it came from.
    if unsafe { sys::ddi_copyout((&raw const ioc).cast(), karg, sz, mode) } != 0 && reply.errno == 0
    {
        return EFAULT;
    }
    reply.errno
}

unsafe extern "C" fn xde_nodev_int() -> c_int {
    // SAFETY: nodev has no arguments.
    unsafe { sys::nodev() }
}

unsafe extern "C" fn xde_nodev_strategy(_: *mut c_void) -> c_int {
    ENXIO
}

unsafe extern "C" fn xde_nodev_print(_: sys::types::dev_t, _: *mut c_char) -> c_int {
    ENXIO
}

unsafe extern "C" fn xde_nodev_dump(
    _: sys::types::dev_t,
    _: sys::types::caddr_t,
    _: c_int,
    _: c_int,
) -> c_int {
    ENXIO
}

unsafe extern "C" fn xde_nodev_rw(
    _: sys::types::dev_t,
    _: *mut c_void,
    _: *mut sys::cred_t,
) -> c_int {
    ENXIO
}

unsafe extern "C" fn xde_nulldev_dip(_: *mut sys::dev_info_t) -> c_int {
    0
}

unsafe extern "C" fn xde_reset(_: *mut sys::dev_info_t, _: c_int) -> c_int {
    ENXIO
}

unsafe extern "C" fn xde_power(_: *mut sys::dev_info_t, _: c_int, _: c_int) -> c_int {
    ENXIO
}

unsafe extern "C" fn xde_quiesce(dip: *mut sys::dev_info_t) -> c_int {
    // SAFETY: the DDI's `dip`.
    unsafe { sys::ddi_quiesce_not_needed(dip) }
}

static XDE_CB_OPS: sys::cb_ops = sys::cb_ops {
    cb_open: xde_open,
    cb_close: xde_close,
    cb_strategy: xde_nodev_strategy,
    cb_print: xde_nodev_print,
    cb_dump: xde_nodev_dump,
    cb_read: xde_nodev_rw,
    cb_write: xde_nodev_rw,
    cb_ioctl: xde_ioctl,
    cb_devmap: xde_nodev_int,
    cb_mmap: xde_nodev_int,
    cb_segmap: xde_nodev_int,
    cb_chpoll: xde_nodev_int,
    cb_prop_op: xde_nodev_int,
    cb_str: ptr::null_mut(),
    cb_flag: sys::D_MP,
    cb_rev: sys::CB_REV,
    cb_aread: xde_nodev_int,
    cb_awrite: xde_nodev_int,
};

/// The driver's operations: `mac_init_ops` writes into them (it installs the mac
/// framework's own entry points for the ports' minors), hence a `static mut` behind a
/// raw pointer, touched only by `_init` and `_fini`.
static mut XDE_DEVOPS: sys::dev_ops = sys::dev_ops {
    devo_rev: sys::DEVO_REV,
    devo_refcnt: 0,
    devo_getinfo: xde_getinfo,
    devo_identify: xde_nulldev_dip,
    devo_probe: xde_nulldev_dip,
    devo_attach: xde_attach,
    devo_detach: xde_detach,
    devo_reset: xde_reset,
    devo_cb_ops: &XDE_CB_OPS,
    devo_bus_ops: ptr::null(),
    devo_power: xde_power,
    devo_quiesce: xde_quiesce,
};

/// `modldrv` and `modlinkage`, built when the module loads (they point at each other and
/// at the kernel's `mod_driverops`).
static mut MODLDRV: sys::modldrv = sys::modldrv {
    drv_modops: ptr::null(),
    drv_linkinfo: c"xde: the Oxide Packet Transformation Engine".as_ptr(),
    drv_dev_ops: ptr::null(),
};

static mut MODLINKAGE: sys::modlinkage = sys::modlinkage {
    ml_rev: sys::MODREV_1,
    ml_linkage: [ptr::null(); 7],
};

/// Load the module.
///
/// # Safety
///
/// Called by the kernel's module loader, once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _init() -> c_int {
    // SAFETY: the loader runs `_init` alone; the statics are initialised here before the
    // kernel sees them.
    unsafe {
        let ops = &raw mut XDE_DEVOPS;
        let drv = &raw mut MODLDRV;
        let link = &raw mut MODLINKAGE;
        (*drv).drv_modops = (&raw const sys::mod_driverops).cast();
        (*drv).drv_dev_ops = ops;
        (*link).ml_linkage[0] = drv.cast();
        sys::mac_init_ops(ops, c"xde".as_ptr());
        let e = sys::mod_install(link);
        if e != 0 {
            sys::mac_fini_ops(ops);
        }
        e
    }
}

/// Report the module.
///
/// # Safety
///
/// Called by the kernel with its `modinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _info(mi: *mut sys::modinfo) -> c_int {
    // SAFETY: the linkage set up by `_init`.
    unsafe { sys::mod_info(&raw const MODLINKAGE, mi) }
}

/// Unload the module (refused while attached: detach first).
///
/// # Safety
///
/// Called by the kernel's module loader.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _fini() -> c_int {
    if state().is_some() {
        return EBUSY;
    }
    // SAFETY: as `_init`.
    unsafe {
        let e = sys::mod_remove(&raw const MODLINKAGE);
        if e == 0 {
            sys::mac_fini_ops(&raw mut XDE_DEVOPS);
        }
        e
    }
}
