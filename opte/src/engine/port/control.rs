//! The control side of a port: state changes, rule changes (each bumps the epoch), flow
//! table clears, dumps and expiry, with the reference's matrix of which operation each
//! port state allows.
//!
//! Expiry and dumps come whole ([`Port::expire_flows`], [`Port::dump_uft`]) or in bounded
//! slices ([`Port::expire_some`], [`Port::dump_uft_page`], [`Port::dump_tcp_flows_page`]),
//! so a host never holds a port with a million flows for a whole-table walk.

use super::{NetworkImpl, Port, PortState, UftEntry};
use crate::engine::flow_table::{
    ExpiryPolicy, FlowEntry, FlowTable, SWEEP_BUCKETS_PER_ENTRY, Sweep,
};
use crate::engine::layer::Layer;
use crate::engine::probe::Probes;
use crate::engine::rule::Rule;
use crate::engine::stats::LayerStats;
use crate::engine::tcp::TcpFlowEntry;
use crate::engine::time::Moment;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use opte_api::{
    Direction, DumpLayerResp, DumpTcpFlowsResp, DumpUftResp, FlowDumpPage, InnerFlowId, LayerDesc,
    OpteError, RuleId, TcpFlowEntryDump, TcpFlowStateDump, TcpState, UftEntryDump,
};

/// Where the bounded expiry of a port stands: a table (in sweep order: the TCP table, the
/// inbound and outbound UFTs, then each layer's inbound and outbound LFTs, children before
/// parents) and a bucket in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ExpiryCursor {
    table: usize,
    bucket: usize,
}

/// What one [`Port::expire_some`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireProgress {
    /// Flow entries examined, across all tables: at most the call's budget.
    pub visited: usize,
    /// Entries removed.
    pub expired: usize,
    /// The call reached the end of the last table: every entry present since the round
    /// began has been examined, and the next call starts a new round at the first table.
    pub round_complete: bool,
}

impl<N: NetworkImpl, P: Probes> Port<N, P> {
    /// Start processing (from any state).
    pub fn start(&mut self) {
        self.state = PortState::Running;
    }

    pub fn pause(&mut self) -> Result<(), OpteError> {
        self.require(&[PortState::Running])?;
        self.state = PortState::Paused;
        Ok(())
    }

    /// Back to `Ready`, forgetting every flow.
    pub fn reset(&mut self) {
        self.state = PortState::Ready;
        self.forget_flows();
    }

    pub(super) fn require(&self, ok: &[PortState]) -> Result<(), OpteError> {
        if ok.contains(&self.state) {
            Ok(())
        } else {
            Err(OpteError::BadState(self.state.to_string()))
        }
    }

    fn layer_mut(&mut self, name: &str) -> Result<&mut Layer, OpteError> {
        self.layers
            .iter_mut()
            .find(|l| l.name() == name)
            .ok_or_else(|| OpteError::LayerNotFound(name.into()))
    }

    fn layer(&self, name: &str) -> Result<&Layer, OpteError> {
        self.layers
            .iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| OpteError::LayerNotFound(name.into()))
    }

    pub fn add_rule(
        &mut self,
        layer: &str,
        dir: Direction,
        rule: Rule,
    ) -> Result<RuleId, OpteError> {
        self.require(&[PortState::Ready, PortState::Running])?;
        let id = self.layer_mut(layer)?.add_rule(dir, rule);
        self.epoch += 1;
        Ok(id)
    }

    pub fn remove_rule(
        &mut self,
        layer: &str,
        dir: Direction,
        id: RuleId,
    ) -> Result<(), OpteError> {
        self.require(&[PortState::Ready, PortState::Running])?;
        self.layer_mut(layer)?
            .remove_rule(dir, id)
            .ok_or(OpteError::RuleNotFound(id))?;
        self.epoch += 1;
        Ok(())
    }

    /// Replace a layer's rules (both directions) and clear its flows: one epoch bump.
    pub fn set_rules(
        &mut self,
        layer: &str,
        rules_in: Vec<Rule>,
        rules_out: Vec<Rule>,
    ) -> Result<(), OpteError> {
        self.require(&[PortState::Ready, PortState::Running])?;
        self.layer_mut(layer)?.set_rules(rules_in, rules_out);
        self.epoch += 1;
        Ok(())
    }

    /// Replace a layer's rules, keeping flows whose descriptors stay valid.
    pub fn set_rules_soft(
        &mut self,
        layer: &str,
        rules_in: Vec<Rule>,
        rules_out: Vec<Rule>,
    ) -> Result<(), OpteError> {
        self.require(&[PortState::Ready, PortState::Running])?;
        self.layer_mut(layer)?.set_rules_soft(rules_in, rules_out);
        self.epoch += 1;
        Ok(())
    }

    pub fn find_rule(
        &self,
        layer: &str,
        dir: Direction,
        rule: &Rule,
    ) -> Result<Option<RuleId>, OpteError> {
        Ok(self.layer(layer)?.find_rule(dir, rule))
    }

    pub fn layer_action(&self, layer: &str, idx: usize) -> Option<crate::engine::action::Action> {
        self.layer(layer).ok()?.action(idx).cloned()
    }

    pub fn layer_stats(&self, layer: &str) -> Result<LayerStats, OpteError> {
        Ok(self.layer(layer)?.stats())
    }

    pub fn list_layers(&self) -> Vec<LayerDesc> {
        self.layers.iter().map(Layer::desc).collect()
    }

    pub fn dump_layer(&self, layer: &str) -> Result<DumpLayerResp, OpteError> {
        Ok(self.layer(layer)?.dump())
    }

    pub fn clear_uft(&mut self) -> Result<(), OpteError> {
        self.require(&[PortState::Running])?;
        self.uft_in.clear();
        self.uft_out.clear();
        Ok(())
    }

    /// Forget every tracked TCP connection (its state is rebuilt from the next segment
    /// seen, as for a flow the port never saw).
    pub fn clear_tcp_flows(&mut self) -> Result<(), OpteError> {
        self.require(&[PortState::Running])?;
        self.tcp.clear();
        Ok(())
    }

    pub fn clear_lft(&mut self, layer: &str) -> Result<(), OpteError> {
        self.require(&[PortState::Running])?;
        self.layer_mut(layer)?.clear_flows();
        Ok(())
    }

    /// Flows held: a layer's pairs, or `"uft"` for the UFT of `dir`.
    pub fn num_flows(&self, layer: &str, dir: Direction) -> Option<u32> {
        if layer == "uft" {
            return Some(match dir {
                Direction::In => self.uft_in.num_flows(),
                Direction::Out => self.uft_out.num_flows(),
            });
        }
        self.layer(layer).ok().map(Layer::num_flows)
    }

    pub fn num_rules(&self, layer: &str, dir: Direction) -> Option<usize> {
        self.layer(layer).ok().map(|l| l.rules(dir).len())
    }

    pub fn tcp_state(&self, key: &InnerFlowId) -> Option<TcpState> {
        self.tcp.get(key).map(|e| e.state().tcp_state())
    }

    pub fn num_tcp_flows(&self) -> u32 {
        self.tcp.num_flows()
    }

    pub fn dump_uft(&self) -> Result<DumpUftResp, OpteError> {
        self.require(&[PortState::Running, PortState::Paused, PortState::Restored])?;
        let flows = |t: &FlowTable<InnerFlowId, UftEntry>| {
            let mut v: Vec<_> = t.iter().map(|(k, e)| (*k, uft_dump(e))).collect();
            v.sort_by_key(|e| e.0);
            v
        };
        Ok(DumpUftResp {
            in_limit: self.uft_in.limit().get(),
            in_num_flows: self.uft_in.num_flows(),
            in_flows: flows(&self.uft_in),
            out_limit: self.uft_out.limit().get(),
            out_num_flows: self.uft_out.num_flows(),
            out_flows: flows(&self.uft_out),
        })
    }

    pub fn dump_tcp_flows(&self) -> Result<DumpTcpFlowsResp, OpteError> {
        self.require(&[PortState::Running, PortState::Paused, PortState::Restored])?;
        let mut flows: Vec<_> = self.tcp.iter().map(|(k, e)| (*k, tcp_dump(e))).collect();
        flows.sort_by_key(|e| e.0);
        Ok(DumpTcpFlowsResp { flows })
    }

    /// One page of the UFT of `dir`: at most `max` entries (at least one) from cursor
    /// `start` (0 begins a dump), and the cursor of the next page. See [`FlowDumpPage`].
    pub fn dump_uft_page(
        &self,
        dir: Direction,
        start: u64,
        max: usize,
    ) -> Result<FlowDumpPage<UftEntryDump>, OpteError> {
        self.require(&[PortState::Running, PortState::Paused, PortState::Restored])?;
        let t = match dir {
            Direction::In => &self.uft_in,
            Direction::Out => &self.uft_out,
        };
        Ok(page(t, start, max, uft_dump))
    }

    /// One page of the TCP flow table, like [`Self::dump_uft_page`].
    pub fn dump_tcp_flows_page(
        &self,
        start: u64,
        max: usize,
    ) -> Result<FlowDumpPage<TcpFlowEntryDump>, OpteError> {
        self.require(&[PortState::Running, PortState::Paused, PortState::Restored])?;
        Ok(page(&self.tcp, start, max, tcp_dump))
    }

    /// Remove every expired flow: one whole round of [`Self::expire_some`] with no budget,
    /// from the first table.
    pub fn expire_flows(&mut self, now: Moment) -> Result<(), OpteError> {
        self.require(&[PortState::Running])?;
        self.expiry_cursor = ExpiryCursor::default();
        while !self.expire_some(now, usize::MAX)?.round_complete {}
        Ok(())
    }

    /// Remove expired flows, examining at most `budget` entries (and walking at most
    /// `budget` × [`SWEEP_BUCKETS_PER_ENTRY`] hash buckets) across the TCP table, the UFTs
    /// and every layer's LFTs, resuming where the previous call stopped. Successive calls
    /// make rounds over every table; a host calls this from its timer with a budget that
    /// bounds the time it holds the port.
    ///
    /// Children are swept before parents (TCP, then UFTs, then LFTs), so an entry whose
    /// children leave in a round leaves in the same round when it has expired too. An entry
    /// kept by a live child is examined again next round.
    pub fn expire_some(&mut self, now: Moment, budget: usize) -> Result<ExpireProgress, OpteError> {
        self.require(&[PortState::Running])?;
        let tables = 3 + 2 * self.layers.len();
        let mut progress = ExpireProgress::default();
        let mut buckets = budget.saturating_mul(SWEEP_BUCKETS_PER_ENTRY);
        while progress.visited < budget && buckets > 0 {
            let c = self.expiry_cursor;
            let entries = budget - progress.visited;
            let s = self.sweep_table(c.table, now, c.bucket, entries, buckets);
            progress.visited += s.visited;
            progress.expired += s.removed;
            buckets = buckets.saturating_sub(s.buckets);
            self.expiry_cursor = match s.next {
                Some(bucket) => ExpiryCursor {
                    table: c.table,
                    bucket,
                },
                None => ExpiryCursor {
                    table: c.table + 1,
                    bucket: 0,
                },
            };
            if self.expiry_cursor.table >= tables {
                self.expiry_cursor = ExpiryCursor::default();
                progress.round_complete = true;
                break;
            }
        }
        Ok(progress)
    }

    /// One bounded sweep of table `idx` in sweep order (see [`ExpiryCursor`]).
    fn sweep_table(
        &mut self,
        idx: usize,
        now: Moment,
        from: usize,
        entries: usize,
        buckets: usize,
    ) -> Sweep {
        let (port, probes) = (self.name.as_str(), &self.probes);
        let sweep = |t: &mut dyn SweepTable, table: &str| {
            t.sweep(now, from, entries, buckets, &mut |k| {
                probes.flow_expired(port, table, &k);
            })
        };
        match idx {
            0 => sweep(&mut self.tcp, "tcp_flows"),
            1 => sweep(&mut self.uft_in, "uft_in"),
            2 => sweep(&mut self.uft_out, "uft_out"),
            _ => {
                let i = idx - 3;
                let Some(l) = self.layers.get_mut(i / 2) else {
                    return Sweep::default();
                };
                let name = l.name();
                if i.is_multiple_of(2) {
                    sweep(&mut l.ft_in, name)
                } else {
                    sweep(&mut l.ft_out, name)
                }
            }
        }
    }
}

/// The port's tables, whatever their state type, as [`Port::expire_some`] walks them.
trait SweepTable {
    fn sweep(
        &mut self,
        now: Moment,
        from: usize,
        entries: usize,
        buckets: usize,
        on_removed: &mut dyn FnMut(InnerFlowId),
    ) -> Sweep;
}

impl<S, P: ExpiryPolicy<InnerFlowId, S>> SweepTable for FlowTable<InnerFlowId, S, P> {
    fn sweep(
        &mut self,
        now: Moment,
        from: usize,
        entries: usize,
        buckets: usize,
        on_removed: &mut dyn FnMut(InnerFlowId),
    ) -> Sweep {
        self.expire_some(now, from, entries, buckets, |k, _| on_removed(k))
    }
}

/// A page of `t` from bucket `start`: see [`FlowDumpPage`].
fn page<S, P: ExpiryPolicy<InnerFlowId, S>, E>(
    t: &FlowTable<InnerFlowId, S, P>,
    start: u64,
    max: usize,
    dump: impl Fn(&FlowEntry<S>) -> E,
) -> FlowDumpPage<E> {
    let max = max.max(1);
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let mut flows = Vec::new();
    let mut next = None;
    for (i, k, e) in t.iter_from(start) {
        if flows.len() == max {
            next = u64::try_from(i).ok();
            break;
        }
        flows.push((*k, dump(e)));
    }
    FlowDumpPage {
        limit: t.limit().get(),
        num_flows: t.num_flows(),
        flows,
        next,
    }
}

fn uft_dump(e: &FlowEntry<UftEntry>) -> UftEntryDump {
    UftEntryDump {
        hits: e.hits(),
        summary: summary(&e.state().names),
    }
}

fn tcp_dump(e: &FlowEntry<TcpFlowEntry>) -> TcpFlowEntryDump {
    let t = e.state();
    let s = &t.state;
    TcpFlowEntryDump {
        hits: e.hits(),
        inbound_ufid: Some(t.inbound_id),
        tcp_state: TcpFlowStateDump {
            tcp_state: s.tcp_state,
            guest_seq: s.guest_seq,
            guest_ack: s.guest_ack,
            remote_seq: s.remote_seq,
            remote_ack: s.remote_ack,
        },
        segs_in: t.segs_in,
        segs_out: t.segs_out,
        bytes_in: t.bytes_in,
        bytes_out: t.bytes_out,
    }
}

fn summary(names: &[&str]) -> String {
    alloc::format!("hdr: {}", names.join(", "))
}
