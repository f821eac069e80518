//! Probe points: where the engine reports what it decided, for DTrace (SDT) on illumos and
//! USDT or logging on Linux. A host wires them by implementing [`Probes`]; the default
//! [`NoProbes`] has empty inline methods, so an unwired port compiles them away.

use super::stats::DropReason;
use opte_api::{Direction, InnerFlowId, TcpState};

/// Probe points of SPEC §2.21. Every method has an empty default.
pub trait Probes: Send + Sync {
    /// Whether the probes every packet passes (`port-process-entry`, `port-process-return`,
    /// `port-drop`, `uft-hit`) may fire now. [`super::port::Port::process`] asks once per
    /// packet and, on `false`, runs a copy of itself without those four: an untraced port
    /// pays one test per packet, not four, nor the registers their arguments would hold.
    /// A host whose probes cost nothing until enabled (illumos SDT) keeps the default.
    #[inline(always)]
    fn packet_probes_on(&self) -> bool {
        true
    }
    fn port_process_entry(&self, _port: &str, _dir: Direction, _flow: &InnerFlowId, _epoch: u64) {}
    /// `before` is the flow key the packet arrived with, `after` the key it leaves with
    /// (NAT rewrites it; for a drop or hairpin, as far as the walk got). `path`: 1 compiled
    /// fast path, 3 slow path (there is no uncompiled tier here), 0 dropped before either.
    fn port_process_return(
        &self,
        _port: &str,
        _dir: Direction,
        _before: &InnerFlowId,
        _after: &InnerFlowId,
        _path: u8,
    ) {
    }
    fn port_drop(&self, _port: &str, _dir: Direction, _flow: &InnerFlowId, _reason: &DropReason) {}
    fn uft_hit(&self, _port: &str, _dir: Direction, _flow: &InnerFlowId, _epoch: u64) {}
    fn uft_invalidate(&self, _port: &str, _dir: Direction, _flow: &InnerFlowId, _epoch: u64) {}
    fn uft_tcp_closed(&self, _port: &str, _dir: Direction, _flow: &InnerFlowId) {}
    fn layer_process_entry(&self, _port: &str, _layer: &str, _dir: Direction, _flow: &InnerFlowId) {
    }
    fn layer_process_return(
        &self,
        _port: &str,
        _layer: &str,
        _dir: Direction,
        _before: &InnerFlowId,
        _after: &InnerFlowId,
    ) {
    }
    /// `action` displays as the matched rule's action does (`Action`'s `Display`); it is
    /// formatted only by a probe that wants the text.
    fn rule_match(
        &self,
        _port: &str,
        _layer: &str,
        _dir: Direction,
        _flow: &InnerFlowId,
        _action: &dyn core::fmt::Display,
    ) {
    }
    fn rule_no_match(&self, _port: &str, _layer: &str, _dir: Direction, _flow: &InnerFlowId) {}
    fn rule_deny(&self, _port: &str, _layer: &str, _dir: Direction, _flow: &InnerFlowId) {}
    fn ht_run(
        &self,
        _port: &str,
        _loc: &str,
        _dir: Direction,
        _before: &InnerFlowId,
        _after: &InnerFlowId,
    ) {
    }
    fn gen_desc_fail(
        &self,
        _port: &str,
        _layer: &str,
        _dir: Direction,
        _flow: &InnerFlowId,
        _msg: &dyn core::fmt::Display,
    ) {
    }
    fn gen_ht_fail(
        &self,
        _port: &str,
        _layer: &str,
        _dir: Direction,
        _flow: &InnerFlowId,
        _msg: &dyn core::fmt::Display,
    ) {
    }
    fn flow_expired(&self, _port: &str, _table: &str, _flow: &InnerFlowId) {}
    fn tcp_flow_state(&self, _port: &str, _flow: &InnerFlowId, _old: TcpState, _new: TcpState) {}
    fn tcp_err(
        &self,
        _port: &str,
        _dir: Direction,
        _flow: &InnerFlowId,
        _msg: &dyn core::fmt::Display,
    ) {
    }
}

/// Probes wired to nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProbes;

impl Probes for NoProbes {
    #[inline(always)]
    fn packet_probes_on(&self) -> bool {
        false
    }
}
