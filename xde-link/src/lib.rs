//! `SUNW_xde_link.so`: the devfsadm link module of the xde driver (SPEC §7.1). devfsadm
//! loads it from `/usr/lib/devfsadm/linkmod` and reads its two registration tables: create
//! `/dev/xde` for the minor named `ctl` of driver `xde` (class `pseudo`, node type
//! `ddi_pseudo`), and remove links matching `^xde$` when the node goes.
//!
//! The structures are those of illumos's `devfsadm.h` (version 0 of the interface); like the
//! module's, they cannot be checked on Linux. `cargo xtask build xde-link` builds it and
//! checks that it pulls in no panic machinery (`nm`: no `panicking` symbol).
#![no_std]
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_uint, c_void};

/// `di_minor_t`, `di_node_t` (libdevinfo): opaque handles.
pub type DiMinor = *mut c_void;
pub type DiNode = *mut c_void;

/// `devfsadm_create_t`.
#[repr(C)]
pub struct DevfsadmCreate {
    pub device_class: *const c_char,
    pub node_type: *const c_char,
    pub drv_name: *const c_char,
    pub flags: c_int,
    pub interpose_lvl: c_int,
    pub callback_fcn: unsafe extern "C" fn(DiMinor, DiNode) -> c_int,
}

/// `devfsadm_remove_t`.
#[repr(C)]
pub struct DevfsadmRemove {
    pub device_class: *const c_char,
    pub dev_dirs_re: *const c_char,
    pub flags: c_int,
    pub interpose_lvl: c_int,
    pub callback_fcn: unsafe extern "C" fn(*mut c_char),
}

/// `_devfsadm_create_reg_t`.
#[repr(C)]
pub struct CreateReg {
    pub version: c_uint,
    pub count: c_uint,
    pub tblp: *const DevfsadmCreate,
}

/// `_devfsadm_remove_reg_t`.
#[repr(C)]
pub struct RemoveReg {
    pub version: c_uint,
    pub count: c_uint,
    pub tblp: *const DevfsadmRemove,
}

// SAFETY: read-only tables devfsadm reads.
unsafe impl Sync for DevfsadmCreate {}
// SAFETY: as above.
unsafe impl Sync for DevfsadmRemove {}
// SAFETY: as above.
unsafe impl Sync for CreateReg {}
// SAFETY: as above.
unsafe impl Sync for RemoveReg {}

const DEVFSADM_V0: c_uint = 0;
const TYPE_EXACT: c_int = 0x01;
const DRV_EXACT: c_int = 0x10;
const RM_HOT: c_int = 0x01;
const RM_PRE: c_int = 0x02;
const RM_ALWAYS: c_int = 0x08;
const ILEVEL_0: c_int = 0;
const DEVFSADM_CONTINUE: c_int = 0;

unsafe extern "C" {
    fn di_minor_name(minor: DiMinor) -> *const c_char;
    fn devfsadm_mklink(link: *const c_char, node: DiNode, minor: DiMinor, flags: c_int) -> c_int;
    fn devfsadm_rm_all(file: *mut c_char);
}

/// Whether C string `s` is `want` (no libc: compared byte by byte).
///
/// # Safety
///
/// `s` must be null or a NUL-terminated string.
unsafe fn c_eq(s: *const c_char, want: &[u8]) -> bool {
    if s.is_null() {
        return false;
    }
    for (i, &w) in want.iter().enumerate() {
        // SAFETY: within the string: it has not ended before index i.
        if unsafe { *s.add(i) } as u8 != w {
            return false;
        }
    }
    // SAFETY: as above, the byte after the last compared.
    unsafe { *s.add(want.len()) == 0 }
}

unsafe extern "C" fn xde_create_link(minor: DiMinor, node: DiNode) -> c_int {
    // SAFETY: devfsadm's handles; the minor's name is a C string owned by libdevinfo.
    unsafe {
        if c_eq(di_minor_name(minor), b"ctl") {
            devfsadm_mklink(c"xde".as_ptr(), node, minor, 0);
        }
    }
    DEVFSADM_CONTINUE
}

unsafe extern "C" fn xde_remove_link(file: *mut c_char) {
    // SAFETY: devfsadm's argument, passed on.
    unsafe { devfsadm_rm_all(file) }
}

static CREATE: [DevfsadmCreate; 1] = [DevfsadmCreate {
    device_class: c"pseudo".as_ptr(),
    node_type: c"ddi_pseudo".as_ptr(),
    drv_name: c"xde".as_ptr(),
    flags: TYPE_EXACT | DRV_EXACT,
    interpose_lvl: ILEVEL_0,
    callback_fcn: xde_create_link,
}];

static REMOVE: [DevfsadmRemove; 1] = [DevfsadmRemove {
    device_class: c"pseudo".as_ptr(),
    dev_dirs_re: c"^xde$".as_ptr(),
    flags: RM_ALWAYS | RM_PRE | RM_HOT,
    interpose_lvl: ILEVEL_0,
    callback_fcn: xde_remove_link,
}];

/// What devfsadm looks up to create links.
#[unsafe(no_mangle)]
pub static _devfsadm_create_reg: CreateReg = CreateReg {
    version: DEVFSADM_V0,
    count: 1,
    tblp: CREATE.as_ptr(),
};

/// What devfsadm looks up to remove links.
#[unsafe(no_mangle)]
pub static _devfsadm_remove_reg: RemoveReg = RemoveReg {
    version: DEVFSADM_V0,
    count: 1,
    tblp: REMOVE.as_ptr(),
};

unsafe extern "C" {
    /// libc's, in devfsadm's process.
    fn abort() -> !;
}

/// A panic cannot happen here (nothing indexes, divides or unwraps); were one to, devfsadm
/// aborts rather than unwinding through C.
#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { abort() }
}
