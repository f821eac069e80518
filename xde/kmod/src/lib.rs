//! The `xde` kernel module as a static library (`libxde_kmod.a`), which `cargo xtask
//! build xde` links with `ld -r -ztype=kmod` on illumos. It brings the core and its glue
//! (`xde::illumos`, whose `_init`, `_info`, `_fini` are the module's entry points) and
//! the two things only the final artifact may define: the global allocator, on
//! `kmem_alloc`/`kmem_free`, and the panic handler, which logs the panic with `cmn_err`
//! and panics the kernel (there is no unwinding in a kernel).
//!
//! Built for the host's target with the kernel's code generation (kernel code model,
//! static relocations, no red zone, `panic = "abort"`) where no illumos target is
//! installed; `cargo xtask test` then checks its symbols with `nm`.
#![no_std]
#![allow(unsafe_code)]

extern crate alloc;

// The entry points, kept by the linker.
pub use xde::illumos::datapath::{xde_mc_tx, xde_rx};
pub use xde::illumos::{_fini, _info, _init, xde_ioc_opte_cmd};

/// What only the module itself defines (feature `module`).
#[cfg(feature = "module")]
mod module {
    use core::alloc::{GlobalAlloc, Layout};
    use core::ffi::c_void;
    use illumos_sys_hdrs as sys;

    /// `kmem_alloc` aligns to 8 bytes; a larger alignment is had by over-allocating and
    /// keeping the kernel's pointer just before the one returned.
    struct KmemAlloc;

    const KMEM_ALIGN: usize = 8;

    // SAFETY: every block comes from kmem_alloc with the size kmem_free is later given
    // (recomputed from the same layout), aligned as asked.
    unsafe impl GlobalAlloc for KmemAlloc {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            if l.align() <= KMEM_ALIGN {
                // SAFETY: KM_SLEEP waits for memory instead of failing.
                return unsafe { sys::kmem_alloc(l.size(), sys::KM_SLEEP).cast() };
            }
            let total = l.size() + l.align() + core::mem::size_of::<usize>();
            // SAFETY: as above; the header and the aligned block lie inside the allocation.
            unsafe {
                let raw = sys::kmem_alloc(total, sys::KM_SLEEP).cast::<u8>();
                if raw.is_null() {
                    return raw;
                }
                let start = raw as usize + core::mem::size_of::<usize>();
                let aligned = (start + l.align() - 1) & !(l.align() - 1);
                let p = aligned as *mut u8;
                p.cast::<usize>().sub(1).write_unaligned(raw as usize);
                p
            }
        }

        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            if l.align() <= KMEM_ALIGN {
                // SAFETY: a block of `l.size()` bytes from `alloc`.
                unsafe { sys::kmem_free(p.cast::<c_void>(), l.size()) };
                return;
            }
            let total = l.size() + l.align() + core::mem::size_of::<usize>();
            // SAFETY: the kernel's pointer was stored just before `p` by `alloc`.
            unsafe {
                let raw = p.cast::<usize>().sub(1).read_unaligned() as *mut c_void;
                sys::kmem_free(raw, total);
            }
        }
    }

    #[global_allocator]
    static ALLOC: KmemAlloc = KmemAlloc;

    /// A panic's message in a fixed buffer (truncated), NUL-terminated for `cmn_err`.
    struct Msg {
        buf: [u8; 256],
        len: usize,
    }

    impl core::fmt::Write for Msg {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for &b in s.as_bytes() {
                if self.len + 1 >= self.buf.len() {
                    break;
                }
                if let Some(slot) = self.buf.get_mut(self.len) {
                    *slot = if b == 0 { b'?' } else { b };
                    self.len += 1;
                }
            }
            Ok(())
        }
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let mut m = Msg {
            buf: [0; 256],
            len: 0,
        };
        let _ = core::fmt::write(&mut m, format_args!("{info}"));
        // SAFETY: "%s" and a NUL-terminated message; the kernel's panic does not return.
        unsafe {
            sys::cmn_err(sys::CE_WARN, c"xde: %s".as_ptr(), m.buf.as_ptr());
            sys::panic(c"xde: %s".as_ptr(), m.buf.as_ptr())
        }
    }

    // On stable Rust the prebuilt `core` and `alloc` are compiled to unwind, so their code
    // keeps landing pads naming these two symbols even though nothing here ever unwinds (every
    // crate of the module is built with `panic = "abort"`: a panic goes straight to the handler
    // above, which panics the kernel). They are defined so the module's only undefined symbols
    // are the kernel's; neither can be reached.

    /// Never called: nothing unwinds.
    ///
    /// # Safety
    ///
    /// None needed; it only panics the kernel.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn _Unwind_Resume(_: *mut c_void) -> ! {
        // SAFETY: a NUL-terminated message; the kernel's panic does not return.
        unsafe { sys::panic(c"xde: _Unwind_Resume reached with panic=abort".as_ptr()) }
    }

    /// Never called: nothing unwinds.
    ///
    /// # Safety
    ///
    /// None needed; it only panics the kernel.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn rust_eh_personality() -> ! {
        // SAFETY: as above.
        unsafe { sys::panic(c"xde: rust_eh_personality reached with panic=abort".as_ptr()) }
    }
}
