//! The engine's probe points ([`opte::engine::probe::Probes`]) as the host fires them, the
//! same names on both systems:
//!
//! - in the Linux daemon (feature `usdt`), as USDT probes of provider `opte` (SystemTap
//!   v3 notes, `readelf -n xded`), each argument a string or an integer: `bpftrace -e
//!   'usdt:/usr/sbin/xded:opte:port__process__return { ... }'`, scripts in
//!   `dtrace/bpftrace/`. A probe nobody traces costs a test of its semaphore; its
//!   arguments (flow keys formatted as text) are made only while it is traced. The four
//!   probes every packet passes share one test
//!   ([`opte::engine::probe::Probes::packet_probes_on`]): with none of them traced, the
//!   port runs its probe-free copy of the packet path.
//! - in the illumos module (feature `kernel`), as SDT probes `sdt:xde::NAME` (`-` for
//!   `__`), the flow keys passed as [`FlowIdSdtArg`], strings NUL-terminated: the D
//!   scripts in `dtrace/` read them with `lib/common.d`. The kernel's runtime linker turns
//!   each `__dtrace_probe_*` call into no-ops until DTrace enables it.
//!
//! Elsewhere (the core's own tests, the simulated rack) every probe is an empty inline
//! function.

use opte::engine::probe::Probes;
use opte_api::{Direction, InnerFlowId};

/// A flow key as the SDT probes pass it (`flow_id_sdt_arg_t` in `dtrace/lib/common.d`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowIdSdtArg {
    pub proto: u8,
    /// 2 for IPv4, 26 for IPv6 (illumos's `AF_INET`/`AF_INET6`).
    pub af: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// IPv4 addresses take the first 4 bytes.
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

impl From<&InnerFlowId> for FlowIdSdtArg {
    fn from(f: &InnerFlowId) -> Self {
        let mut a = Self {
            proto: f.proto,
            src_port: f.src_port(),
            dst_port: f.dst_port(),
            ..Self::default()
        };
        match f.addrs {
            opte_api::AddrPair::V4 { src, dst } => {
                a.af = 2;
                a.src[..4].copy_from_slice(&src.bytes());
                a.dst[..4].copy_from_slice(&dst.bytes());
            }
            opte_api::AddrPair::V6 { src, dst } => {
                a.af = 26;
                a.src = src.bytes();
                a.dst = dst.bytes();
            }
        }
        a
    }
}

/// The probes' numeric direction: 1 in, 2 out (`DIR_STR` in `dtrace/common.h`).
pub fn dir_num(d: Direction) -> u8 {
    match d {
        Direction::In => 1,
        Direction::Out => 2,
    }
}

/// The host's probes.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostProbes;

#[cfg(all(feature = "usdt", target_os = "linux"))]
#[usdt::provider(provider = "opte")]
mod opte_usdt {
    fn port__process__entry(port: &str, dir: &str, flow: &str, epoch: u64) {}
    fn port__process__return(port: &str, dir: &str, before: &str, after: &str, path: u8) {}
    fn port__drop(port: &str, dir: &str, flow: &str, reason: &str) {}
    fn uft__hit(port: &str, dir: &str, flow: &str, epoch: u64) {}
    fn uft__invalidate(port: &str, dir: &str, flow: &str, epoch: u64) {}
    fn uft__tcp__closed(port: &str, dir: &str, flow: &str) {}
    fn layer__process__entry(port: &str, layer: &str, dir: &str, flow: &str) {}
    fn layer__process__return(port: &str, layer: &str, dir: &str, before: &str, after: &str) {}
    fn rule__match(port: &str, layer: &str, dir: &str, flow: &str, action: &str) {}
    fn rule__no__match(port: &str, layer: &str, dir: &str, flow: &str) {}
    fn rule__deny(port: &str, layer: &str, dir: &str, flow: &str) {}
    fn ht__run(port: &str, loc: &str, dir: &str, before: &str, after: &str) {}
    fn gen__desc__fail(port: &str, layer: &str, dir: &str, flow: &str, msg: &str) {}
    fn gen__ht__fail(port: &str, layer: &str, dir: &str, flow: &str, msg: &str) {}
    fn flow__expired(port: &str, table: &str, flow: &str) {}
    fn tcp__flow__state(port: &str, flow: &str, old: &str, new: &str) {}
    fn tcp__err(port: &str, dir: &str, flow: &str, msg: &str) {}
    fn bad__packet(port: &str, dir: &str, msg: &str, len: u64) {}
    fn guest__loopback(flow: &str, src: &str, dst: &str) {}
    fn next__hop(dst: &str, link: &str, src_mac: &str, dst_mac: &str, msg: &str) {}
    fn mcast(event: &str, group: &str, port: &str) {}
}

/// Register the USDT probes with the system (a no-op where the notes suffice, as on
/// Linux; illumos's userland needs it). Call once at start.
pub fn register() -> Result<(), alloc::string::String> {
    #[cfg(all(feature = "usdt", target_os = "linux"))]
    usdt::register_probes().map_err(|e| alloc::format!("{e}"))?;
    Ok(())
}

/// The host's own probe points (SPEC §7.9), fired by the core's datapath: a packet the
/// parser refused, a packet between two ports of this host, an underlay next-hop lookup.
pub mod host {
    use crate::route::{Route, RouteError};
    use opte_api::{Direction, InnerFlowId, Ipv6Addr};

    /// `bad-packet`: `port` ("unknown" for the underlay), the direction, why, how long.
    #[inline(always)]
    pub fn bad_packet(port: &str, dir: Direction, msg: &dyn core::fmt::Display, len: usize) {
        super::backend::bad_packet(port, dir, msg, len);
    }

    /// `guest-loopback`: `flow` from port `src` to port `dst`, never on the wire.
    #[inline(always)]
    pub fn guest_loopback(flow: &InnerFlowId, src: &str, dst: &str) {
        super::backend::guest_loopback(flow, src, dst);
    }

    /// `next-hop`: the OS's answer for underlay address `dst`.
    #[inline(always)]
    pub fn next_hop(dst: Ipv6Addr, r: &Result<Route, RouteError>) {
        super::backend::next_hop(dst, r);
    }

    /// What happened to a multicast packet of underlay group `group` (SPEC §7.7).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mcast {
        /// A guest of `port` sent it.
        Tx,
        /// It arrived from the underlay.
        Rx,
        /// A copy went up subscriber `port`.
        LocalDelivery,
        /// A copy went to an underlay next hop (replication Underlay or Both).
        UnderlayFwd,
        /// A copy went to an external next hop (replication External or Both).
        ExternalFwd,
        /// The group has no forwarding entry.
        NoFwdEntry,
        /// A subscriber's or next hop's source filter refused it.
        SourceFiltered,
    }

    impl Mcast {
        /// The probe's name (`sdt:xde::NAME`; the USDT probe `mcast` carries it).
        pub const fn name(self) -> &'static str {
            match self {
                Self::Tx => "mcast-tx",
                Self::Rx => "mcast-rx",
                Self::LocalDelivery => "mcast-local-delivery",
                Self::UnderlayFwd => "mcast-underlay-fwd",
                Self::ExternalFwd => "mcast-external-fwd",
                Self::NoFwdEntry => "mcast-no-fwd-entry",
                Self::SourceFiltered => "mcast-source-filtered",
            }
        }
    }

    /// A multicast event `e` of `group` at `port` ("" where no port is concerned).
    #[inline(always)]
    pub fn mcast(e: Mcast, group: Ipv6Addr, port: &str) {
        super::backend::mcast(e, group, port);
    }
}

#[cfg(all(feature = "usdt", target_os = "linux", not(feature = "kernel")))]
mod fire {
    //! Each probe's semaphore (the usdt crate's: a weak, hidden `u16` that a tracer
    //! increments while it traces the probe) is tested inline; only a traced probe calls
    //! its cold, out-of-line half, which formats the arguments and reaches the probe's
    //! `nop`. So an untraced probe costs a load and a branch, and the arguments the engine
    //! hands it need not be kept for it. On x86-64 the semaphore is read PC-relative
    //! (inline asm naming the symbol), one instruction, where an extern static would go
    //! through the GOT.
    use super::opte_usdt as opte;
    use ::opte::engine::stats::DropReason;
    use alloc::string::{String, ToString};
    use opte_api::{Direction, InnerFlowId, TcpState};

    /// Whether the probe whose semaphore is `$sema` is traced.
    #[cfg(target_arch = "x86_64")]
    macro_rules! traced {
        ($sema:ident) => {{
            unsafe extern "C" {
                static $sema: u16;
            }
            let v: u32;
            // SAFETY: the symbol is the probe's semaphore, a u16 the usdt crate's note
            // defines (hidden, in this binary, so addressed PC-relative rather than
            // through the GOT a Rust extern static would take); tracers change it from
            // outside, so the read is asm the compiler cannot cache.
            unsafe {
                core::arch::asm!(
                    "movzx {v:e}, word ptr [rip + {s}]",
                    s = sym $sema,
                    v = out(reg) v,
                    options(nostack, readonly, preserves_flags),
                )
            };
            v != 0
        }};
    }
    #[cfg(not(target_arch = "x86_64"))]
    macro_rules! traced {
        ($sema:ident) => {{
            unsafe extern "C" {
                static $sema: u16;
            }
            // SAFETY: the symbol is the probe's semaphore, a u16 the usdt crate's note
            // defines; tracers change it from outside, hence the volatile read.
            unsafe { (&raw const $sema).read_volatile() != 0 }
        }};
    }

    fn d(dir: Direction) -> &'static str {
        match dir {
            Direction::In => "IN",
            Direction::Out => "OUT",
        }
    }

    fn f(flow: &InnerFlowId) -> String {
        flow.to_string()
    }

    pub(super) use self::backend as host_backend;

    mod cold {
        use super::{Direction, DropReason, InnerFlowId, TcpState, ToString, d, f, opte};

        #[cold]
        #[inline(never)]
        pub(super) fn port_process_entry(
            port: &str,
            dir: Direction,
            flow: &InnerFlowId,
            epoch: u64,
        ) {
            opte::port__process__entry!(|| (port, d(dir), f(flow), epoch));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn port_process_return(
            port: &str,
            dir: Direction,
            before: &InnerFlowId,
            after: &InnerFlowId,
            path: u8,
        ) {
            opte::port__process__return!(|| (port, d(dir), f(before), f(after), path));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn port_drop(
            port: &str,
            dir: Direction,
            flow: &InnerFlowId,
            reason: &DropReason,
        ) {
            opte::port__drop!(|| (port, d(dir), f(flow), alloc::format!("{reason:?}")));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn uft_hit(port: &str, dir: Direction, flow: &InnerFlowId, epoch: u64) {
            opte::uft__hit!(|| (port, d(dir), f(flow), epoch));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn uft_invalidate(port: &str, dir: Direction, flow: &InnerFlowId, epoch: u64) {
            opte::uft__invalidate!(|| (port, d(dir), f(flow), epoch));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn uft_tcp_closed(port: &str, dir: Direction, flow: &InnerFlowId) {
            opte::uft__tcp__closed!(|| (port, d(dir), f(flow)));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn layer_process_entry(
            port: &str,
            layer: &str,
            dir: Direction,
            flow: &InnerFlowId,
        ) {
            opte::layer__process__entry!(|| (port, layer, d(dir), f(flow)));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn layer_process_return(
            port: &str,
            layer: &str,
            dir: Direction,
            before: &InnerFlowId,
            after: &InnerFlowId,
        ) {
            opte::layer__process__return!(|| (port, layer, d(dir), f(before), f(after)));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn rule_match(
            port: &str,
            layer: &str,
            dir: Direction,
            flow: &InnerFlowId,
            action: &dyn core::fmt::Display,
        ) {
            opte::rule__match!(|| (port, layer, d(dir), f(flow), action.to_string()));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn rule_no_match(port: &str, layer: &str, dir: Direction, flow: &InnerFlowId) {
            opte::rule__no__match!(|| (port, layer, d(dir), f(flow)));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn rule_deny(port: &str, layer: &str, dir: Direction, flow: &InnerFlowId) {
            opte::rule__deny!(|| (port, layer, d(dir), f(flow)));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn ht_run(
            port: &str,
            loc: &str,
            dir: Direction,
            before: &InnerFlowId,
            after: &InnerFlowId,
        ) {
            opte::ht__run!(|| (port, loc, d(dir), f(before), f(after)));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn gen_desc_fail(
            port: &str,
            layer: &str,
            dir: Direction,
            flow: &InnerFlowId,
            msg: &dyn core::fmt::Display,
        ) {
            opte::gen__desc__fail!(|| (port, layer, d(dir), f(flow), msg.to_string()));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn gen_ht_fail(
            port: &str,
            layer: &str,
            dir: Direction,
            flow: &InnerFlowId,
            msg: &dyn core::fmt::Display,
        ) {
            opte::gen__ht__fail!(|| (port, layer, d(dir), f(flow), msg.to_string()));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn flow_expired(port: &str, table: &str, flow: &InnerFlowId) {
            opte::flow__expired!(|| (port, table, f(flow)));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn tcp_flow_state(port: &str, flow: &InnerFlowId, old: TcpState, new: TcpState) {
            opte::tcp__flow__state!(|| (port, f(flow), old.to_string(), new.to_string()));
        }

        #[cold]
        #[inline(never)]
        pub(super) fn tcp_err(
            port: &str,
            dir: Direction,
            flow: &InnerFlowId,
            msg: &dyn core::fmt::Display,
        ) {
            opte::tcp__err!(|| (port, d(dir), f(flow), msg.to_string()));
        }
    }

    /// The host's probes ([`super::host`]).
    pub(super) mod backend {
        use super::{d, f, opte};
        use crate::route::{Route, RouteError};
        use alloc::string::ToString;
        use opte_api::{Direction, InnerFlowId, Ipv6Addr};

        #[inline(always)]
        pub fn bad_packet(port: &str, dir: Direction, msg: &dyn core::fmt::Display, len: usize) {
            if traced!(__usdt_sema_opte_bad__packet) {
                cold_bad_packet(port, dir, msg, len);
            }
        }

        #[cold]
        #[inline(never)]
        fn cold_bad_packet(port: &str, dir: Direction, msg: &dyn core::fmt::Display, len: usize) {
            opte::bad__packet!(|| (port, d(dir), msg.to_string(), len as u64));
        }

        #[inline(always)]
        pub fn guest_loopback(flow: &InnerFlowId, src: &str, dst: &str) {
            if traced!(__usdt_sema_opte_guest__loopback) {
                cold_guest_loopback(flow, src, dst);
            }
        }

        #[cold]
        #[inline(never)]
        fn cold_guest_loopback(flow: &InnerFlowId, src: &str, dst: &str) {
            opte::guest__loopback!(|| (f(flow), src, dst));
        }

        #[inline(always)]
        pub fn next_hop(dst: Ipv6Addr, r: &Result<Route, RouteError>) {
            if traced!(__usdt_sema_opte_next__hop) {
                cold_next_hop(dst, r);
            }
        }

        #[cold]
        #[inline(never)]
        fn cold_next_hop(dst: Ipv6Addr, r: &Result<Route, RouteError>) {
            let (link, src, dmac, msg) = match r {
                Ok(r) => (
                    alloc::format!("{:?}", r.link),
                    r.src_mac.to_string(),
                    r.dst_mac.to_string(),
                    "ok".to_string(),
                ),
                Err(e) => (
                    "-".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                    alloc::format!("{e:?}"),
                ),
            };
            opte::next__hop!(|| (dst.to_string(), link, src, dmac, msg));
        }

        #[inline(always)]
        pub fn mcast(e: crate::probes::host::Mcast, group: Ipv6Addr, port: &str) {
            if traced!(__usdt_sema_opte_mcast) {
                cold_mcast(e, group, port);
            }
        }

        #[cold]
        #[inline(never)]
        fn cold_mcast(e: crate::probes::host::Mcast, group: Ipv6Addr, port: &str) {
            opte::mcast!(|| (e.name(), group.to_string(), port));
        }
    }

    impl super::Probes for super::HostProbes {
        /// One test for the four probes: the semaphores are read together, OR-ed, and
        /// branched on once.
        #[inline(always)]
        fn packet_probes_on(&self) -> bool {
            (traced!(__usdt_sema_opte_port__process__entry)
                | traced!(__usdt_sema_opte_port__process__return)
                | traced!(__usdt_sema_opte_port__drop)
                | traced!(__usdt_sema_opte_uft__hit))
        }
        #[inline(always)]
        fn port_process_entry(&self, port: &str, dir: Direction, flow: &InnerFlowId, epoch: u64) {
            if traced!(__usdt_sema_opte_port__process__entry) {
                cold::port_process_entry(port, dir, flow, epoch);
            }
        }
        #[inline(always)]
        fn port_process_return(
            &self,
            port: &str,
            dir: Direction,
            before: &InnerFlowId,
            after: &InnerFlowId,
            path: u8,
        ) {
            if traced!(__usdt_sema_opte_port__process__return) {
                cold::port_process_return(port, dir, before, after, path);
            }
        }
        #[inline(always)]
        fn port_drop(&self, port: &str, dir: Direction, flow: &InnerFlowId, reason: &DropReason) {
            if traced!(__usdt_sema_opte_port__drop) {
                cold::port_drop(port, dir, flow, reason);
            }
        }
        #[inline(always)]
        fn uft_hit(&self, port: &str, dir: Direction, flow: &InnerFlowId, epoch: u64) {
            if traced!(__usdt_sema_opte_uft__hit) {
                cold::uft_hit(port, dir, flow, epoch);
            }
        }
        #[inline(always)]
        fn uft_invalidate(&self, port: &str, dir: Direction, flow: &InnerFlowId, epoch: u64) {
            if traced!(__usdt_sema_opte_uft__invalidate) {
                cold::uft_invalidate(port, dir, flow, epoch);
            }
        }
        #[inline(always)]
        fn uft_tcp_closed(&self, port: &str, dir: Direction, flow: &InnerFlowId) {
            if traced!(__usdt_sema_opte_uft__tcp__closed) {
                cold::uft_tcp_closed(port, dir, flow);
            }
        }
        #[inline(always)]
        fn layer_process_entry(&self, port: &str, layer: &str, dir: Direction, flow: &InnerFlowId) {
            if traced!(__usdt_sema_opte_layer__process__entry) {
                cold::layer_process_entry(port, layer, dir, flow);
            }
        }
        #[inline(always)]
        fn layer_process_return(
            &self,
            port: &str,
            layer: &str,
            dir: Direction,
            before: &InnerFlowId,
            after: &InnerFlowId,
        ) {
            if traced!(__usdt_sema_opte_layer__process__return) {
                cold::layer_process_return(port, layer, dir, before, after);
            }
        }
        #[inline(always)]
        fn rule_match(
            &self,
            port: &str,
            layer: &str,
            dir: Direction,
            flow: &InnerFlowId,
            action: &dyn core::fmt::Display,
        ) {
            if traced!(__usdt_sema_opte_rule__match) {
                cold::rule_match(port, layer, dir, flow, action);
            }
        }
        #[inline(always)]
        fn rule_no_match(&self, port: &str, layer: &str, dir: Direction, flow: &InnerFlowId) {
            if traced!(__usdt_sema_opte_rule__no__match) {
                cold::rule_no_match(port, layer, dir, flow);
            }
        }
        #[inline(always)]
        fn rule_deny(&self, port: &str, layer: &str, dir: Direction, flow: &InnerFlowId) {
            if traced!(__usdt_sema_opte_rule__deny) {
                cold::rule_deny(port, layer, dir, flow);
            }
        }
        #[inline(always)]
        fn ht_run(
            &self,
            port: &str,
            loc: &str,
            dir: Direction,
            before: &InnerFlowId,
            after: &InnerFlowId,
        ) {
            if traced!(__usdt_sema_opte_ht__run) {
                cold::ht_run(port, loc, dir, before, after);
            }
        }
        #[inline(always)]
        fn gen_desc_fail(
            &self,
            port: &str,
            layer: &str,
            dir: Direction,
            flow: &InnerFlowId,
            msg: &dyn core::fmt::Display,
        ) {
            if traced!(__usdt_sema_opte_gen__desc__fail) {
                cold::gen_desc_fail(port, layer, dir, flow, msg);
            }
        }
        #[inline(always)]
        fn gen_ht_fail(
            &self,
            port: &str,
            layer: &str,
            dir: Direction,
            flow: &InnerFlowId,
            msg: &dyn core::fmt::Display,
        ) {
            if traced!(__usdt_sema_opte_gen__ht__fail) {
                cold::gen_ht_fail(port, layer, dir, flow, msg);
            }
        }
        #[inline(always)]
        fn flow_expired(&self, port: &str, table: &str, flow: &InnerFlowId) {
            if traced!(__usdt_sema_opte_flow__expired) {
                cold::flow_expired(port, table, flow);
            }
        }
        #[inline(always)]
        fn tcp_flow_state(&self, port: &str, flow: &InnerFlowId, old: TcpState, new: TcpState) {
            if traced!(__usdt_sema_opte_tcp__flow__state) {
                cold::tcp_flow_state(port, flow, old, new);
            }
        }
        #[inline(always)]
        fn tcp_err(
            &self,
            port: &str,
            dir: Direction,
            flow: &InnerFlowId,
            msg: &dyn core::fmt::Display,
        ) {
            if traced!(__usdt_sema_opte_tcp__err) {
                cold::tcp_err(port, dir, flow, msg);
            }
        }
    }
}

#[cfg(feature = "kernel")]
mod sdt {
    //! SDT probes: a call to an undefined `__dtrace_probe_NAME` that the kernel's runtime
    //! linker turns into no-ops when the module loads, and DTrace into a probe when
    //! enabled (`sdt:xde::NAME`, `__` read as `-`). Arguments as `dtrace/lib/common.d`
    //! lays them out: the direction as 1 (in) or 2 (out), strings NUL-terminated, flow
    //! keys as [`super::FlowIdSdtArg`].
    use super::{FlowIdSdtArg, dir_num};
    use crate::illumos::CStrBuf;
    use core::ffi::c_char;
    use opte::engine::stats::DropReason;
    use opte_api::{Direction, InnerFlowId, TcpState};

    type S = *const c_char;
    type F = *const FlowIdSdtArg;

    unsafe extern "C" {
        fn __dtrace_probe_port__process__entry(dir: u64, port: S, flow: F, epoch: u64);
        fn __dtrace_probe_port__process__return(dir: u64, port: S, before: F, after: F, path: u64);
        fn __dtrace_probe_port__drop(dir: u64, port: S, flow: F, reason: S);
        fn __dtrace_probe_uft__hit(dir: u64, port: S, flow: F, epoch: u64);
        fn __dtrace_probe_uft__invalidate(dir: u64, port: S, flow: F, epoch: u64);
        fn __dtrace_probe_uft__tcp__closed(dir: u64, port: S, flow: F);
        fn __dtrace_probe_layer__process__entry(dir: u64, port: S, layer: S, flow: F);
        fn __dtrace_probe_layer__process__return(dir: u64, port: S, layer: S, before: F, after: F);
        fn __dtrace_probe_rule__match(dir: u64, port: S, layer: S, flow: F, action: S);
        fn __dtrace_probe_rule__no__match(dir: u64, port: S, layer: S, flow: F);
        fn __dtrace_probe_rule__deny(dir: u64, port: S, layer: S, flow: F);
        fn __dtrace_probe_ht__run(dir: u64, port: S, loc: S, before: F, after: F);
        fn __dtrace_probe_gen__desc__fail(dir: u64, port: S, layer: S, flow: F, msg: S);
        fn __dtrace_probe_gen__ht__fail(dir: u64, port: S, layer: S, flow: F, msg: S);
        fn __dtrace_probe_flow__expired(port: S, table: S, flow: F);
        fn __dtrace_probe_tcp__flow__state(port: S, flow: F, old: u64, new: u64);
        fn __dtrace_probe_tcp__err(dir: u64, port: S, flow: F, msg: S);
        fn __dtrace_probe_bad__packet(port: S, dir: u64, mblk: u64, msg: S, len: u64);
        fn __dtrace_probe_guest__loopback(flow: F, src: S, dst: S);
        fn __dtrace_probe_next__hop(
            dst: *const u8,
            gw: *const u8,
            src: *const u8,
            dst_mac: *const u8,
            msg: S,
        );
        fn __dtrace_probe_mcast__tx(port: S, group: *const u8);
        fn __dtrace_probe_mcast__rx(port: S, group: *const u8);
        fn __dtrace_probe_mcast__local__delivery(port: S, group: *const u8);
        fn __dtrace_probe_mcast__underlay__fwd(port: S, group: *const u8);
        fn __dtrace_probe_mcast__external__fwd(port: S, group: *const u8);
        fn __dtrace_probe_mcast__no__fwd__entry(port: S, group: *const u8);
        fn __dtrace_probe_mcast__source__filtered(port: S, group: *const u8);
    }

    /// The host's probes ([`super::host`]).
    pub(super) mod backend {
        use super::*;
        use crate::route::{Route, RouteError};
        use opte_api::Ipv6Addr;

        pub fn bad_packet(port: &str, dir: Direction, msg: &dyn core::fmt::Display, len: usize) {
            let t = text(msg);
            // SAFETY: the probe only reads its arguments, alive for the call.
            unsafe {
                __dtrace_probe_bad__packet(
                    Name::new(port).as_ptr(),
                    d(dir),
                    0,
                    t.as_ptr(),
                    len as u64,
                )
            }
        }

        pub fn guest_loopback(flow: &InnerFlowId, src: &str, dst: &str) {
            let f = FlowIdSdtArg::from(flow);
            // SAFETY: as above.
            unsafe {
                __dtrace_probe_guest__loopback(&f, Name::new(src).as_ptr(), Name::new(dst).as_ptr())
            }
        }

        pub fn next_hop(dst: Ipv6Addr, r: &Result<Route, RouteError>) {
            let d = dst.bytes();
            // The core's route has no gateway: the D script shows `::` for it.
            let gw = [0u8; 16];
            let (src, dmac, msg) = match r {
                Ok(r) => (r.src_mac.bytes(), r.dst_mac.bytes(), Text::new("ok")),
                Err(e) => ([0; 6], [0; 6], text(&alloc::format!("{e:?}"))),
            };
            // SAFETY: as above.
            unsafe {
                __dtrace_probe_next__hop(
                    d.as_ptr(),
                    gw.as_ptr(),
                    src.as_ptr(),
                    dmac.as_ptr(),
                    msg.as_ptr(),
                )
            }
        }

        pub fn mcast(e: crate::probes::host::Mcast, group: Ipv6Addr, port: &str) {
            use crate::probes::host::Mcast;
            let (gb, pn) = (group.bytes(), Name::new(port));
            let (p, g) = (pn.as_ptr(), gb.as_ptr());
            // Each probe called directly: krtld rewrites calls, never taken addresses.
            // SAFETY: as above.
            unsafe {
                match e {
                    Mcast::Tx => __dtrace_probe_mcast__tx(p, g),
                    Mcast::Rx => __dtrace_probe_mcast__rx(p, g),
                    Mcast::LocalDelivery => __dtrace_probe_mcast__local__delivery(p, g),
                    Mcast::UnderlayFwd => __dtrace_probe_mcast__underlay__fwd(p, g),
                    Mcast::ExternalFwd => __dtrace_probe_mcast__external__fwd(p, g),
                    Mcast::NoFwdEntry => __dtrace_probe_mcast__no__fwd__entry(p, g),
                    Mcast::SourceFiltered => __dtrace_probe_mcast__source__filtered(p, g),
                }
            }
        }
    }

    /// A name as a C string.
    type Name = CStrBuf<32>;
    /// A message (an action, an error) as a C string.
    type Text = CStrBuf<128>;

    fn text(d: &dyn core::fmt::Display) -> Text {
        let mut s = Fmt([0; 128], 0);
        let _ = core::fmt::write(&mut s, format_args!("{d}"));
        Text::new(core::str::from_utf8(s.0.get(..s.1).unwrap_or(&[])).unwrap_or("?"))
    }

    struct Fmt([u8; 128], usize);

    impl core::fmt::Write for Fmt {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for &b in s.as_bytes() {
                if self.1 + 1 < self.0.len()
                    && let Some(slot) = self.0.get_mut(self.1)
                {
                    *slot = b;
                    self.1 += 1;
                }
            }
            Ok(())
        }
    }

    fn d(dir: Direction) -> u64 {
        u64::from(dir_num(dir))
    }

    // SAFETY (every call below): the probe functions only read their arguments, which
    // live on this stack frame for the call.
    impl super::Probes for super::HostProbes {
        fn port_process_entry(&self, port: &str, dir: Direction, flow: &InnerFlowId, epoch: u64) {
            let f = FlowIdSdtArg::from(flow);
            unsafe {
                __dtrace_probe_port__process__entry(d(dir), Name::new(port).as_ptr(), &f, epoch)
            }
        }
        fn port_process_return(
            &self,
            port: &str,
            dir: Direction,
            before: &InnerFlowId,
            after: &InnerFlowId,
            path: u8,
        ) {
            let (b, a) = (FlowIdSdtArg::from(before), FlowIdSdtArg::from(after));
            unsafe {
                __dtrace_probe_port__process__return(
                    d(dir),
                    Name::new(port).as_ptr(),
                    &b,
                    &a,
                    u64::from(path),
                )
            }
        }
        fn port_drop(&self, port: &str, dir: Direction, flow: &InnerFlowId, reason: &DropReason) {
            let f = FlowIdSdtArg::from(flow);
            let r = text(&alloc::format!("{reason:?}"));
            unsafe { __dtrace_probe_port__drop(d(dir), Name::new(port).as_ptr(), &f, r.as_ptr()) }
        }
        fn uft_hit(&self, port: &str, dir: Direction, flow: &InnerFlowId, epoch: u64) {
            let f = FlowIdSdtArg::from(flow);
            unsafe { __dtrace_probe_uft__hit(d(dir), Name::new(port).as_ptr(), &f, epoch) }
        }
        fn uft_invalidate(&self, port: &str, dir: Direction, flow: &InnerFlowId, epoch: u64) {
            let f = FlowIdSdtArg::from(flow);
            unsafe { __dtrace_probe_uft__invalidate(d(dir), Name::new(port).as_ptr(), &f, epoch) }
        }
        fn uft_tcp_closed(&self, port: &str, dir: Direction, flow: &InnerFlowId) {
            let f = FlowIdSdtArg::from(flow);
            unsafe { __dtrace_probe_uft__tcp__closed(d(dir), Name::new(port).as_ptr(), &f) }
        }
        fn layer_process_entry(&self, port: &str, layer: &str, dir: Direction, flow: &InnerFlowId) {
            let f = FlowIdSdtArg::from(flow);
            unsafe {
                __dtrace_probe_layer__process__entry(
                    d(dir),
                    Name::new(port).as_ptr(),
                    Name::new(layer).as_ptr(),
                    &f,
                )
            }
        }
        fn layer_process_return(
            &self,
            port: &str,
            layer: &str,
            dir: Direction,
            before: &InnerFlowId,
            after: &InnerFlowId,
        ) {
            let (b, a) = (FlowIdSdtArg::from(before), FlowIdSdtArg::from(after));
            unsafe {
                __dtrace_probe_layer__process__return(
                    d(dir),
                    Name::new(port).as_ptr(),
                    Name::new(layer).as_ptr(),
                    &b,
                    &a,
                )
            }
        }
        fn rule_match(
            &self,
            port: &str,
            layer: &str,
            dir: Direction,
            flow: &InnerFlowId,
            action: &dyn core::fmt::Display,
        ) {
            let f = FlowIdSdtArg::from(flow);
            let t = text(action);
            unsafe {
                __dtrace_probe_rule__match(
                    d(dir),
                    Name::new(port).as_ptr(),
                    Name::new(layer).as_ptr(),
                    &f,
                    t.as_ptr(),
                )
            }
        }
        fn rule_no_match(&self, port: &str, layer: &str, dir: Direction, flow: &InnerFlowId) {
            let f = FlowIdSdtArg::from(flow);
            unsafe {
                __dtrace_probe_rule__no__match(
                    d(dir),
                    Name::new(port).as_ptr(),
                    Name::new(layer).as_ptr(),
                    &f,
                )
            }
        }
        fn rule_deny(&self, port: &str, layer: &str, dir: Direction, flow: &InnerFlowId) {
            let f = FlowIdSdtArg::from(flow);
            unsafe {
                __dtrace_probe_rule__deny(
                    d(dir),
                    Name::new(port).as_ptr(),
                    Name::new(layer).as_ptr(),
                    &f,
                )
            }
        }
        fn ht_run(
            &self,
            port: &str,
            loc: &str,
            dir: Direction,
            before: &InnerFlowId,
            after: &InnerFlowId,
        ) {
            let (b, a) = (FlowIdSdtArg::from(before), FlowIdSdtArg::from(after));
            unsafe {
                __dtrace_probe_ht__run(
                    d(dir),
                    Name::new(port).as_ptr(),
                    Name::new(loc).as_ptr(),
                    &b,
                    &a,
                )
            }
        }
        fn gen_desc_fail(
            &self,
            port: &str,
            layer: &str,
            dir: Direction,
            flow: &InnerFlowId,
            msg: &dyn core::fmt::Display,
        ) {
            let f = FlowIdSdtArg::from(flow);
            let t = text(msg);
            unsafe {
                __dtrace_probe_gen__desc__fail(
                    d(dir),
                    Name::new(port).as_ptr(),
                    Name::new(layer).as_ptr(),
                    &f,
                    t.as_ptr(),
                )
            }
        }
        fn gen_ht_fail(
            &self,
            port: &str,
            layer: &str,
            dir: Direction,
            flow: &InnerFlowId,
            msg: &dyn core::fmt::Display,
        ) {
            let f = FlowIdSdtArg::from(flow);
            let t = text(msg);
            unsafe {
                __dtrace_probe_gen__ht__fail(
                    d(dir),
                    Name::new(port).as_ptr(),
                    Name::new(layer).as_ptr(),
                    &f,
                    t.as_ptr(),
                )
            }
        }
        fn flow_expired(&self, port: &str, table: &str, flow: &InnerFlowId) {
            let f = FlowIdSdtArg::from(flow);
            unsafe {
                __dtrace_probe_flow__expired(
                    Name::new(port).as_ptr(),
                    Name::new(table).as_ptr(),
                    &f,
                )
            }
        }
        fn tcp_flow_state(&self, port: &str, flow: &InnerFlowId, old: TcpState, new: TcpState) {
            let f = FlowIdSdtArg::from(flow);
            unsafe {
                __dtrace_probe_tcp__flow__state(
                    Name::new(port).as_ptr(),
                    &f,
                    old as u64,
                    new as u64,
                )
            }
        }
        fn tcp_err(
            &self,
            port: &str,
            dir: Direction,
            flow: &InnerFlowId,
            msg: &dyn core::fmt::Display,
        ) {
            let f = FlowIdSdtArg::from(flow);
            let t = text(msg);
            unsafe { __dtrace_probe_tcp__err(d(dir), Name::new(port).as_ptr(), &f, t.as_ptr()) }
        }
    }
}

#[cfg(not(any(feature = "kernel", all(feature = "usdt", target_os = "linux"))))]
impl Probes for HostProbes {
    #[inline(always)]
    fn packet_probes_on(&self) -> bool {
        false
    }
}

#[cfg(all(feature = "usdt", target_os = "linux", not(feature = "kernel")))]
use fire::host_backend as backend;
/// Where the host's probes go.
#[cfg(feature = "kernel")]
use sdt::backend;

/// No probes: every host probe is an empty function.
#[cfg(not(any(feature = "kernel", all(feature = "usdt", target_os = "linux"))))]
mod backend {
    use crate::route::{Route, RouteError};
    use opte_api::{Direction, InnerFlowId, Ipv6Addr};

    #[inline(always)]
    pub fn bad_packet(_: &str, _: Direction, _: &dyn core::fmt::Display, _: usize) {}
    #[inline(always)]
    pub fn guest_loopback(_: &InnerFlowId, _: &str, _: &str) {}
    #[inline(always)]
    pub fn next_hop(_: Ipv6Addr, _: &Result<Route, RouteError>) {}
    #[inline(always)]
    pub fn mcast(_: crate::probes::host::Mcast, _: Ipv6Addr, _: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdt_flow_keys_carry_both_families() {
        let v4 = opte_api::AddrPair::V4 {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
        };
        let f4 = InnerFlowId::with_ports(6, v4, 1234, 80);
        let a = FlowIdSdtArg::from(&f4);
        assert_eq!((a.proto, a.af, a.src_port, a.dst_port), (6, 2, 1234, 80));
        assert_eq!(&a.src[..4], &[10, 0, 0, 1]);
        assert_eq!(&a.dst[..5], &[10, 0, 0, 2, 0]);
        let v6 = opte_api::AddrPair::V6 {
            src: "fd00::1".parse().unwrap(),
            dst: "fd00::2".parse().unwrap(),
        };
        let f6 = InnerFlowId::with_ports(17, v6, 53, 5353);
        let a = FlowIdSdtArg::from(&f6);
        assert_eq!(a.af, 26);
        assert_eq!(a.dst[15], 2);
        assert_eq!(core::mem::size_of::<FlowIdSdtArg>(), 38);
        assert_eq!((dir_num(Direction::In), dir_num(Direction::Out)), (1, 2));
    }
}
