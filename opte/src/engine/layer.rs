//! A layer: one stage of the pipeline (firewall, router, NAT, ...), with a rule table per
//! direction, default actions, and a layer flow table (LFT) per direction whose entries are
//! made in in/out pairs that share one lifetime.
//!
//! A layer decides; it does not commit. LFT pairs a packet would create are returned as
//! [`PendingLft`]s and only inserted by the port once every layer allowed the packet, so a
//! flow a later layer drops leaves no state behind (the reference keeps the firewall's entry
//! in that case, SPEC §13 quirk 10).

use super::action::{
    Action, ActionDesc, ActionMeta, AllowOrDeny, DefaultAction, DescState, GenDescError,
};
use super::flow_table::{FlowTable, Lifetime, Ttl};
use super::probe::Probes;
use super::rule::{Rule, RuleTable};
use super::stats::{DenyReason, LayerDirStats, LayerStats};
use super::time::Moment;
use super::transform::HdrTransform;
use super::view::PacketView;
use crate::packet::Packet;
use crate::packet::parse::InnerMeta;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::num::NonZeroU32;
use opte_api::{
    ActionDescEntryDump, Direction, DumpLayerResp, FLOW_ID_DEFAULT, InnerFlowId, LayerDesc, RuleId,
    RuleTableEntryDump,
};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// What an LFT entry remembers about its flow.
#[derive(Clone)]
pub enum LftAction {
    /// The flow passes unchanged (a stateful allow).
    NoOp,
    /// The descriptor regenerates the flow's transform.
    Desc(Arc<dyn ActionDesc>),
}

#[derive(Clone)]
pub struct LftEntry {
    pub action: LftAction,
    /// The key of the other direction's entry of the pair.
    pub partner: InnerFlowId,
}

impl LftEntry {
    fn summary(&self) -> String {
        match &self.action {
            LftAction::NoOp => "no-op".into(),
            LftAction::Desc(d) => d.name().into(),
        }
    }
}

/// One LFT pair as a migration carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LftPairState {
    pub in_key: InnerFlowId,
    pub out_key: InnerFlowId,
    /// The descriptor's state; `None` for a flow that passes unchanged (stateful allow).
    pub desc: Option<DescState>,
    /// Milliseconds between the pair's last hit and the export.
    pub idle_ms: u64,
}

/// An LFT pair the layer wants created if the packet makes it through.
pub struct PendingLft {
    pub layer: usize,
    /// Keys of the pair: (in-table key, out-table key).
    pub in_key: InnerFlowId,
    pub out_key: InnerFlowId,
    pub action: LftAction,
}

/// The lifetimes a new flow depends on, gathered during a walk: one per layer at most
/// (plus the LFTs committed at its end), so they stay inline.
pub type Parents = SmallVec<[Arc<Lifetime>; 8]>;

/// LFT pairs a walk asks for, committed only once every layer allowed the packet.
pub type Pending = SmallVec<[PendingLft; 6]>;

/// The actions and default actions a layer is built with.
pub struct LayerActions {
    pub actions: Vec<Action>,
    pub default_in: DefaultAction,
    pub default_out: DefaultAction,
}

/// The outcome of one layer for one packet.
pub enum LayerResult {
    Allow,
    Deny(DenyReason),
    Hairpin(Vec<u8>),
    HandlePkt,
    /// An action failed: drop, counted as such.
    ActionFailed,
    /// An action had no resource left to give the flow (SNAT ports): drop, counted apart.
    Exhausted,
}

/// Everything a layer reads and writes during a slow-path walk.
pub struct WalkCtx<'a, P: Probes> {
    pub port: &'a str,
    pub probes: &'a P,
    pub pkt: &'a Packet,
    pub meta: &'a InnerMeta,
    pub view: &'a mut PacketView,
    pub ameta: &'a mut ActionMeta,
    /// The merge of every transform so far.
    pub xform: &'a mut HdrTransform,
    /// The names of the transforms merged, for dumps.
    pub names: &'a mut smallvec::SmallVec<[&'static str; 6]>,
    /// Lifetimes of the LFT entries this packet hit: the parents of its UFT entry.
    pub parents: &'a mut Parents,
    pub pending: &'a mut Pending,
    pub now: Moment,
}

pub struct Layer {
    name: &'static str,
    actions: LayerActions,
    rules_in: RuleTable,
    rules_out: RuleTable,
    pub(crate) ft_in: FlowTable<InnerFlowId, LftEntry>,
    pub(crate) ft_out: FlowTable<InnerFlowId, LftEntry>,
    pub(crate) stats: LayerStats,
}

impl Layer {
    /// A layer whose flow table holds at most `ft_limit` pairs; `seed` keys its hash tables.
    pub fn new(name: &'static str, actions: LayerActions, ft_limit: NonZeroU32, seed: u64) -> Self {
        let ttl = Ttl::from_secs(super::flow_table::FLOW_DEF_EXPIRE_SECS);
        Self {
            name,
            actions,
            rules_in: RuleTable::new(),
            rules_out: RuleTable::new(),
            ft_in: FlowTable::new(name, ft_limit, ttl, seed),
            ft_out: FlowTable::new(name, ft_limit, ttl, seed.rotate_left(17) ^ 0x5bd1_e995),
            stats: LayerStats::default(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The action at `idx` of the layer's action list.
    pub fn action(&self, idx: usize) -> Option<&Action> {
        self.actions.actions.get(idx)
    }

    pub fn stats(&self) -> LayerStats {
        self.stats
    }

    fn rules_mut(&mut self, dir: Direction) -> &mut RuleTable {
        match dir {
            Direction::In => &mut self.rules_in,
            Direction::Out => &mut self.rules_out,
        }
    }

    pub fn rules(&self, dir: Direction) -> &RuleTable {
        match dir {
            Direction::In => &self.rules_in,
            Direction::Out => &self.rules_out,
        }
    }

    pub fn add_rule(&mut self, dir: Direction, rule: Rule) -> RuleId {
        self.stats.add_rule_called += 1;
        self.rules_mut(dir).add(rule)
    }

    pub fn remove_rule(&mut self, dir: Direction, id: RuleId) -> Option<Rule> {
        self.stats.remove_rule_called += 1;
        self.rules_mut(dir).remove(id)
    }

    /// Replace both directions' rules and forget every flow.
    pub fn set_rules(&mut self, rules_in: Vec<Rule>, rules_out: Vec<Rule>) {
        self.stats.set_rules_called += 1;
        self.rules_in.set(rules_in);
        self.rules_out.set(rules_out);
        self.clear_flows();
    }

    /// Replace both directions' rules; flows stay but must be revalidated on their next
    /// packet (a descriptor that says it is still valid survives).
    pub fn set_rules_soft(&mut self, rules_in: Vec<Rule>, rules_out: Vec<Rule>) {
        self.stats.set_rules_called += 1;
        self.rules_in.set(rules_in);
        self.rules_out.set(rules_out);
        self.ft_in.mark_dirty();
        self.ft_out.mark_dirty();
    }

    pub fn find_rule(&self, dir: Direction, rule: &Rule) -> Option<RuleId> {
        self.rules(dir).find(rule)
    }

    pub fn clear_flows(&mut self) {
        self.ft_in.clear();
        self.ft_out.clear();
    }

    /// Flow pairs held.
    pub fn num_flows(&self) -> u32 {
        self.ft_out.num_flows().max(self.ft_in.num_flows())
    }

    fn dir_stats(&mut self, dir: Direction) -> &mut LayerDirStats {
        match dir {
            Direction::In => &mut self.stats.r#in,
            Direction::Out => &mut self.stats.out,
        }
    }

    /// Run one packet through the layer (slow path).
    pub fn process<P: Probes>(
        &mut self,
        idx: usize,
        dir: Direction,
        cx: &mut WalkCtx<'_, P>,
    ) -> LayerResult {
        let flow = cx.view.flow();
        cx.probes
            .layer_process_entry(cx.port, self.name, dir, &flow);
        let r = self.process_inner(idx, dir, flow, cx);
        cx.probes
            .layer_process_return(cx.port, self.name, dir, &flow, &cx.view.flow());
        r
    }

    fn process_inner<P: Probes>(
        &mut self,
        idx: usize,
        dir: Direction,
        flow: InnerFlowId,
        cx: &mut WalkCtx<'_, P>,
    ) -> LayerResult {
        if flow != FLOW_ID_DEFAULT {
            match self.lft_lookup(dir, flow, cx) {
                Some(r) => return r,
                None => self.dir_stats(dir).lft_miss += 1,
            }
        }
        let matched = match dir {
            Direction::In => self.rules_in.find_match(cx.view, cx.ameta, cx.pkt, cx.meta),
            Direction::Out => self
                .rules_out
                .find_match(cx.view, cx.ameta, cx.pkt, cx.meta),
        }
        .map(|e| e.rule.action.clone());
        let action = match matched {
            Some(a) => {
                self.dir_stats(dir).rule_match += 1;
                cx.probes.rule_match(cx.port, self.name, dir, &flow, &a);
                a
            }
            None => {
                let st = self.dir_stats(dir);
                st.rule_nomatch += 1;
                st.default_hits += 1;
                cx.probes.rule_no_match(cx.port, self.name, dir, &flow);
                let default = match dir {
                    Direction::In => self.actions.default_in,
                    Direction::Out => self.actions.default_out,
                };
                match default {
                    DefaultAction::Allow => Action::Allow,
                    DefaultAction::StatefulAllow => Action::StatefulAllow,
                    DefaultAction::Deny => {
                        self.dir_stats(dir).deny += 1;
                        cx.probes.rule_deny(cx.port, self.name, dir, &flow);
                        return LayerResult::Deny(DenyReason::Default);
                    }
                }
            }
        };
        self.run_action(idx, dir, flow, &action, cx)
    }

    /// The LFT's verdict for a flow it knows; `None` to fall through to the rules.
    fn lft_lookup<P: Probes>(
        &mut self,
        dir: Direction,
        flow: InnerFlowId,
        cx: &mut WalkCtx<'_, P>,
    ) -> Option<LayerResult> {
        let (ft, other) = match dir {
            Direction::In => (&mut self.ft_in, &mut self.ft_out),
            Direction::Out => (&mut self.ft_out, &mut self.ft_in),
        };
        let e = ft.get(&flow)?;
        if e.is_dirty() {
            let keep = matches!(&e.state().action, LftAction::Desc(d) if d.is_valid());
            if !keep {
                let partner = e.state().partner;
                ft.remove(&flow);
                other.remove(&partner);
                return None;
            }
            e.clear_dirty();
        }
        e.hit(cx.now);
        cx.parents.push(e.lifetime().clone());
        let action = e.state().action.clone();
        self.dir_stats(dir).lft_hit += 1;
        if let LftAction::Desc(d) = action {
            let ht = d.gen_ht(dir, cx.ameta);
            if let Err(r) = apply(dir, &ht, cx) {
                return Some(r);
            }
        }
        Some(LayerResult::Allow)
    }

    fn run_action<P: Probes>(
        &mut self,
        idx: usize,
        dir: Direction,
        flow: InnerFlowId,
        action: &Action,
        cx: &mut WalkCtx<'_, P>,
    ) -> LayerResult {
        let deny = |this: &mut Self, cx: &mut WalkCtx<'_, P>, r| {
            this.dir_stats(dir).deny += 1;
            cx.probes.rule_deny(cx.port, this.name, dir, &flow);
            LayerResult::Deny(r)
        };
        match action {
            Action::Allow => LayerResult::Allow,
            Action::Deny => deny(self, cx, DenyReason::Rule),
            Action::HandlePacket => LayerResult::HandlePkt,
            Action::StatefulAllow => {
                if flow != FLOW_ID_DEFAULT {
                    self.pend(idx, dir, flow, flow, LftAction::NoOp, cx);
                }
                LayerResult::Allow
            }
            Action::Meta(a) => match a.mod_meta(&flow, cx.ameta) {
                Ok(AllowOrDeny::Allow(())) => LayerResult::Allow,
                Ok(AllowOrDeny::Deny) => deny(self, cx, DenyReason::Action),
                Err(_) => LayerResult::ActionFailed,
            },
            Action::Static(a) => match a.gen_ht(dir, cx.view, cx.ameta) {
                Ok(AllowOrDeny::Allow(ht)) => match apply(dir, &ht, cx) {
                    Ok(()) => LayerResult::Allow,
                    Err(r) => r,
                },
                Ok(AllowOrDeny::Deny) => deny(self, cx, DenyReason::Action),
                Err(e) => {
                    cx.probes.gen_ht_fail(cx.port, self.name, dir, &flow, &e);
                    LayerResult::ActionFailed
                }
            },
            Action::Stateful(a) => match a.gen_desc(&flow, cx.view, cx.ameta) {
                Ok(AllowOrDeny::Allow(desc)) => {
                    let ht = desc.gen_ht(dir, cx.ameta);
                    if let Err(r) = apply(dir, &ht, cx) {
                        return r;
                    }
                    let after = cx.view.flow();
                    self.pend(idx, dir, flow, after, LftAction::Desc(desc), cx);
                    LayerResult::Allow
                }
                Ok(AllowOrDeny::Deny) => deny(self, cx, DenyReason::Action),
                Err(e) => {
                    cx.probes.gen_desc_fail(cx.port, self.name, dir, &flow, &e);
                    match e {
                        GenDescError::ResourceExhausted { .. } => LayerResult::Exhausted,
                        _ => LayerResult::ActionFailed,
                    }
                }
            },
            Action::Hairpin(a) => match a.gen_packet(cx.pkt, cx.meta) {
                Ok(AllowOrDeny::Allow(reply)) => LayerResult::Hairpin(reply),
                Ok(AllowOrDeny::Deny) => deny(self, cx, DenyReason::Action),
                Err(_) => LayerResult::ActionFailed,
            },
        }
    }

    /// Queue an LFT pair: this direction keyed by the flow as it entered the layer, the
    /// other by the mirror of the flow as it leaves (what the reply will look like here).
    fn pend<P: Probes>(
        &self,
        idx: usize,
        dir: Direction,
        before: InnerFlowId,
        after: InnerFlowId,
        action: LftAction,
        cx: &mut WalkCtx<'_, P>,
    ) {
        let (in_key, out_key) = match dir {
            Direction::Out => (after.mirror(), before),
            Direction::In => (before, after.mirror()),
        };
        cx.pending.push(PendingLft {
            layer: idx,
            in_key,
            out_key,
            action,
        });
    }

    /// Insert a pair decided earlier; on failure nothing is left behind.
    pub(crate) fn commit(&mut self, p: &PendingLft, now: Moment) -> Result<Arc<Lifetime>, ()> {
        let lt = Lifetime::new(now);
        let out = LftEntry {
            action: p.action.clone(),
            partner: p.in_key,
        };
        let inn = LftEntry {
            action: p.action.clone(),
            partner: p.out_key,
        };
        let before = self.ft_out.stats().evictions;
        if self
            .ft_out
            .add_linked(p.out_key, out, now, lt.clone(), &[])
            .is_err()
        {
            self.dir_stats(Direction::Out).lft_full += 1;
            return Err(());
        }
        if self
            .ft_in
            .add_linked(p.in_key, inn, now, lt.clone(), &[])
            .is_err()
        {
            self.ft_out.remove(&p.out_key);
            self.dir_stats(Direction::In).lft_full += 1;
            return Err(());
        }
        self.stats.evictions += self.ft_out.stats().evictions - before;
        Ok(lt)
    }

    /// The layer's flow pairs, each once, as a migration carries them (ages relative to
    /// `now`), and how many pairs were left behind because their descriptor cannot move.
    pub(crate) fn export_flows(&self, now: Moment) -> (Vec<LftPairState>, usize) {
        let mut pairs = Vec::new();
        let mut left = 0;
        for (out_key, e) in self.ft_out.iter() {
            if e.is_dead() {
                continue;
            }
            let desc = match &e.state().action {
                LftAction::NoOp => None,
                LftAction::Desc(d) => match d.export() {
                    Some(s) => Some(s),
                    None => {
                        left += 1;
                        continue;
                    }
                },
            };
            pairs.push(LftPairState {
                in_key: e.state().partner,
                out_key: *out_key,
                desc,
                idle_ms: now.millis_since(e.last_hit()),
            });
        }
        pairs.sort_by_key(|p| p.out_key);
        (pairs, left)
    }

    /// Take in a pair another host exported: its descriptor is rebuilt by the first of
    /// this layer's stateful actions (its rules', then its own) that owns it, and it was last hit `idle_ms` before
    /// `now`.
    pub(crate) fn import_pair(
        &mut self,
        p: &LftPairState,
        now: Moment,
    ) -> Result<Arc<Lifetime>, String> {
        let action = match &p.desc {
            None => LftAction::NoOp,
            Some(s) => {
                // The rules' actions (both directions), then the layer's own.
                let desc = self
                    .rules_out
                    .iter()
                    .chain(self.rules_in.iter())
                    .map(|e| &e.rule.action)
                    .chain(self.actions.actions.iter())
                    .find_map(|a| match a {
                        Action::Stateful(a) => a.import_desc(s),
                        _ => None,
                    });
                LftAction::Desc(desc.ok_or_else(|| {
                    alloc::format!("no action of layer {} takes {s:?}", self.name)
                })?)
            }
        };
        let then = Moment::from_nanos(
            now.as_nanos()
                .saturating_sub(p.idle_ms.saturating_mul(1_000_000)),
        );
        let pending = PendingLft {
            layer: 0,
            in_key: p.in_key,
            out_key: p.out_key,
            action,
        };
        self.commit(&pending, then)
            .map_err(|()| alloc::format!("layer {}'s flow table is full", self.name))
    }

    pub fn desc(&self) -> LayerDesc {
        LayerDesc {
            name: self.name.into(),
            rules_in: self.rules_in.len() as u64,
            rules_out: self.rules_out.len() as u64,
            default_in: alloc::format!("{}", self.actions.default_in),
            default_out: alloc::format!("{}", self.actions.default_out),
            flows: u64::from(self.num_flows()),
        }
    }

    pub fn dump(&self) -> DumpLayerResp {
        let rules = |t: &RuleTable| {
            t.iter()
                .map(|e| RuleTableEntryDump {
                    id: e.id,
                    hits: e.hits,
                    rule: e.rule.dump(),
                })
                .collect()
        };
        let flows = |ft: &FlowTable<InnerFlowId, LftEntry>| {
            let mut v: Vec<_> = ft
                .iter()
                .map(|(k, e)| {
                    (
                        *k,
                        ActionDescEntryDump {
                            hits: e.hits(),
                            summary: e.state().summary(),
                        },
                    )
                })
                .collect();
            v.sort_by_key(|e| e.0);
            v
        };
        DumpLayerResp {
            name: self.name.into(),
            rules_in: rules(&self.rules_in),
            rules_out: rules(&self.rules_out),
            default_in: alloc::format!("{}", self.actions.default_in),
            default_in_hits: self.stats.r#in.default_hits,
            default_out: alloc::format!("{}", self.actions.default_out),
            default_out_hits: self.stats.out.default_hits,
            ft_in: flows(&self.ft_in),
            ft_out: flows(&self.ft_out),
        }
    }
}

/// Apply a layer's transform to the view and fold it into the packet's merged transform.
fn apply<P: Probes>(
    dir: Direction,
    ht: &HdrTransform,
    cx: &mut WalkCtx<'_, P>,
) -> Result<(), LayerResult> {
    let before = cx.view.flow();
    ht.apply_view(cx.view)
        .map_err(|_| LayerResult::ActionFailed)?;
    cx.xform.merge(ht);
    cx.names.push(ht.name);
    cx.probes
        .ht_run(cx.port, ht.name, dir, &before, &cx.view.flow());
    Ok(())
}
