//! A port: the virtual NIC of one guest, with its layers, its unified flow tables (UFT, one
//! per direction) and its TCP table; and `process`, where every packet goes.
//!
//! Processing has two tiers. A UFT hit of the current epoch replays the flow's compiled
//! transform (byte writes, checksum deltas, pre-serialised encapsulation): one hash lookup,
//! no rule walk, no allocation. Anything else walks the layers (outbound in order, inbound in
//! reverse), merges their transforms, commits the flow state they asked for and installs a
//! UFT entry. Every packet ends in exactly one result counter; nothing panics.
//!
//! A later IP fragment, which has no L4 header, is processed as the flow of its datagram's
//! first fragment, through a small table of recent datagrams ([`super::frag`]); one of a
//! datagram the port has not seen is dropped, counted.
//!
//! The control side (rule changes, state changes, dumps, expiry) is in [`control`].

mod control;
mod migrate;

pub use control::ExpireProgress;
pub use migrate::{LayerFlowState, PortFlowState, TcpEntryState};

use super::action::ActionMeta;
use super::flow_table::{FlowTable, Lifetime, Ttl};
use super::frag::{FRAG_TABLE_LIMIT, FRAG_TTL, FragKey, FragTable};
use super::layer::{Layer, LayerResult, Parents, Pending, PendingLft, WalkCtx};
use super::probe::{NoProbes, Probes};
use super::stats::{DirStats, DropReason, PortStats};
use super::tcp::{TcpExpiry, TcpFlowEntry, TcpFlowStateError};
use super::time::Moment;
use super::transform::{CompiledTransform, HdrTransform, is_icmp_error};
use super::view::{PacketView, Parsed, UlpView};
use crate::packet::Packet;
use crate::packet::parse::{FragInfo, InnerMeta, UlpKind};
use crate::wire::tcp::TcpHdr;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroU32;
use core::str::FromStr;
use opte_api::{Direction, FLOW_ID_DEFAULT, InnerFlowId, MacAddr, OpteError, TcpState};
use smallvec::SmallVec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    Ready,
    Running,
    Paused,
    Restored,
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ready => "ready",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restored => "restored",
        })
    }
}

impl FromStr for PortState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ready" => Ok(Self::Ready),
            "running" => Ok(Self::Running),
            "paused" => Ok(Self::Paused),
            "restored" => Ok(Self::Restored),
            _ => Err(alloc::format!(
                "bad port state {s:?}: expected ready, running, paused or restored"
            )),
        }
    }
}

/// Where a layer goes, in outbound order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pos {
    First,
    Last,
    Before(&'static str),
    After(&'static str),
}

/// What the network implementation decided for a `HandlePacket` rule.
pub enum HdlPktAction {
    Allow,
    Deny,
    Hairpin(Vec<u8>),
}

/// The network a port implements (the Oxide VPC, say): the engine calls it for packets a
/// rule hands over with `Action::HandlePacket`.
pub trait NetworkImpl: Send + Sync {
    fn handle_pkt(&self, dir: Direction, pkt: &Packet, meta: &InnerMeta) -> HdlPktAction;

    /// Whether guest frames may carry an 802.1Q tag. A network without VLANs (the VPC's
    /// NICs have none) has tagged frames dropped, counted, in both directions, rather than
    /// carried inside the overlay tag and all.
    fn allows_vlan_tags(&self) -> bool {
        false
    }

    /// The generation of state outside the port that compiled flows depend on (a host's
    /// shared V2P table, say). It only grows; when it moves, every UFT entry compiled
    /// before is stale and its next packet takes the slow path again, so a flow to a guest
    /// that moved follows it.
    #[inline]
    fn epoch(&self) -> u64 {
        0
    }
}

/// A network with nothing to handle: every handed-over packet is denied.
pub struct NoNetwork;

impl NetworkImpl for NoNetwork {
    fn handle_pkt(&self, _dir: Direction, _pkt: &Packet, _meta: &InnerMeta) -> HdlPktAction {
        HdlPktAction::Deny
    }
}

/// A packet's fate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessResult {
    /// Rewritten in place: send it on.
    Modified,
    /// Answered: send this frame back toward the sender, drop the packet.
    Hairpin(Vec<u8>),
    Drop(DropReason),
}

/// A UFT entry: the compiled result of one flow's walk through the layers.
pub struct UftEntry {
    epoch: u64,
    xform: CompiledTransform,
    /// The other direction's UFT key of this flow, once known.
    pair: Option<InnerFlowId>,
    /// The flow key of this flow's packets once transformed (the probes' "after").
    after: InnerFlowId,
    /// The TCP table key, for TCP flows, with its hash in the TCP table (so the fast path
    /// hashes one key per packet, not two).
    tcp_key: Option<(InnerFlowId, u64)>,
    /// The names of the transforms merged into `xform`, for dumps.
    names: SmallVec<[&'static str; 6]>,
}

pub struct PortBuilder {
    name: String,
    mac: MacAddr,
    layers: Vec<Layer>,
}

impl PortBuilder {
    pub fn new(name: impl Into<String>, mac: MacAddr) -> Self {
        Self {
            name: name.into(),
            mac,
            layers: Vec::new(),
        }
    }

    pub fn add_layer(&mut self, layer: Layer, pos: Pos) -> Result<(), OpteError> {
        let at = |n: &str| self.layers.iter().position(|l| l.name() == n);
        let idx = match pos {
            Pos::First => Some(0),
            Pos::Last => Some(self.layers.len()),
            Pos::Before(n) => at(n),
            Pos::After(n) => at(n).map(|i| i + 1),
        }
        .ok_or_else(|| OpteError::BadLayerPos {
            layer: layer.name().into(),
            pos: alloc::format!("{pos:?}"),
        })?;
        self.layers.insert(idx, layer);
        Ok(())
    }

    /// The layer names in outbound order.
    pub fn layer_names(&self) -> Vec<&'static str> {
        self.layers.iter().map(Layer::name).collect()
    }

    pub fn create<N: NetworkImpl>(
        self,
        net: N,
        uft_limit: NonZeroU32,
        tcp_limit: NonZeroU32,
        seed: u64,
    ) -> Port<N> {
        self.create_with_probes(net, uft_limit, tcp_limit, seed, NoProbes)
    }

    pub fn create_with_probes<N: NetworkImpl, P: Probes>(
        self,
        net: N,
        uft_limit: NonZeroU32,
        tcp_limit: NonZeroU32,
        seed: u64,
        probes: P,
    ) -> Port<N, P> {
        let ttl = Ttl::from_secs(super::flow_table::FLOW_DEF_EXPIRE_SECS);
        Port {
            name: self.name,
            mac: self.mac,
            state: PortState::Ready,
            epoch: 1,
            layers: self.layers,
            uft_in: FlowTable::new("uft_in", uft_limit, ttl, seed),
            uft_out: FlowTable::new(
                "uft_out",
                uft_limit,
                ttl,
                seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ),
            tcp: FlowTable::new(
                "tcp_flows",
                tcp_limit,
                TcpExpiry,
                seed ^ 0xd6e8_feb8_6659_fd93,
            ),
            net,
            probes,
            stats: PortStats::default(),
            expiry_cursor: control::ExpiryCursor::default(),
            frags_in: FragTable::new(FRAG_TABLE_LIMIT, FRAG_TTL, seed ^ 0x2545_f491_4f6c_dd1d),
            frags_out: FragTable::new(FRAG_TABLE_LIMIT, FRAG_TTL, seed ^ 0x9e6c_63d0_676a_9a99),
        }
    }
}

pub struct Port<N, P = NoProbes> {
    name: String,
    mac: MacAddr,
    state: PortState,
    epoch: u64,
    layers: Vec<Layer>,
    uft_in: FlowTable<InnerFlowId, UftEntry>,
    uft_out: FlowTable<InnerFlowId, UftEntry>,
    tcp: FlowTable<InnerFlowId, TcpFlowEntry, TcpExpiry>,
    net: N,
    probes: P,
    stats: PortStats,
    /// Where [`Port::expire_some`] resumes.
    expiry_cursor: control::ExpiryCursor,
    /// The datagrams of first fragments that passed, per direction (see [`super::frag`]).
    frags_in: FragTable,
    frags_out: FragTable,
}

enum Fast {
    /// The result, already counted and reported to the probes.
    Done(ProcessResult),
    Miss,
}

/// Count a packet's result `r` in its direction's `st` and fire the probes that end its
/// processing: `port-drop` for a drop, then `port-process-return` with the flow key as it
/// leaves (`after`) and the `path` it took (0 refused before any table, 1 the UFT, 3 the
/// layers). Both paths end here, each with the `after` it has at hand, so the fast path
/// carries no copy of its entry's key back to [`Port::process`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn account<P: Probes, const PROBES: bool>(
    st: &mut DirStats,
    probes: &P,
    name: &str,
    dir: Direction,
    before: &InnerFlowId,
    after: &InnerFlowId,
    path: u8,
    r: &ProcessResult,
) {
    match r {
        ProcessResult::Modified => st.modified += 1,
        ProcessResult::Hairpin(_) => st.hairpin += 1,
        ProcessResult::Drop(reason) => {
            st.count_drop(reason);
            if PROBES {
                probes.port_drop(name, dir, before, reason);
            }
        }
    }
    if PROBES {
        probes.port_process_return(name, dir, before, after, path);
    }
}

#[inline(always)]
fn tcp_fields(pkt: &Packet, m: &InnerMeta) -> Option<(u8, u32, u32)> {
    let u = m.ulp.filter(|u| u.kind == UlpKind::Tcp)?;
    let h = pkt.view::<TcpHdr>(u.loc)?;
    Some((h.flags, h.seq.get(), h.ack.get()))
}

impl<N: NetworkImpl, P: Probes> Port<N, P> {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    pub fn state(&self) -> PortState {
        self.state
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn stats(&self) -> PortStats {
        let mut s = self.stats;
        s.r#in.uft_evictions = self.uft_in.stats().evictions;
        s.out.uft_evictions = self.uft_out.stats().evictions;
        s.tcp_evictions = self.tcp.stats().evictions;
        s.r#in.frag_evictions = self.frags_in.stats().evicted;
        s.out.frag_evictions = self.frags_out.stats().evicted;
        s
    }

    pub fn network(&self) -> &N {
        &self.net
    }

    /// Process one packet (parsed as `parsed`) travelling in `dir` at `now`. A `Modified`
    /// packet has been rewritten in place.
    #[inline]
    pub fn process(
        &mut self,
        dir: Direction,
        pkt: &mut Packet,
        parsed: &Parsed,
        now: Moment,
    ) -> ProcessResult {
        if self.probes.packet_probes_on() {
            self.process_traced(dir, pkt, parsed, now)
        } else {
            self.process_untraced(dir, pkt, parsed, now)
        }
    }

    /// [`Self::process`] without the per-packet probes: a function of its own, so the
    /// test that picks it leaves its code as it would be with no probes at all.
    #[inline(never)]
    fn process_untraced(
        &mut self,
        dir: Direction,
        pkt: &mut Packet,
        parsed: &Parsed,
        now: Moment,
    ) -> ProcessResult {
        self.process_as::<false>(dir, pkt, parsed, now)
    }

    /// [`Self::process`] firing the per-packet probes, out of line.
    #[inline(never)]
    fn process_traced(
        &mut self,
        dir: Direction,
        pkt: &mut Packet,
        parsed: &Parsed,
        now: Moment,
    ) -> ProcessResult {
        self.process_as::<true>(dir, pkt, parsed, now)
    }

    /// [`Self::process`], with the per-packet probes ([`Probes::packet_probes_on`]) or
    /// without.
    #[inline(always)]
    fn process_as<const PROBES: bool>(
        &mut self,
        dir: Direction,
        pkt: &mut Packet,
        parsed: &Parsed,
        now: Moment,
    ) -> ProcessResult {
        let frag = parsed.inner().frag;
        // A later fragment is processed as its datagram's flow, if the port knows it.
        let tail = frag.is_some_and(|f| !f.is_first());
        let later;
        let (parsed, known) = match frag {
            Some(f) if tail => match self.fragment_flow(dir, parsed, &f, now) {
                Some(key) => {
                    later = parsed.with_flow(key);
                    (&later, true)
                }
                None => (parsed, false),
            },
            _ => (parsed, true),
        };
        let flow = &parsed.inner().flow;
        if PROBES {
            self.probes
                .port_process_entry(&self.name, dir, flow, self.epoch);
        }
        let refused = if self.state != PortState::Running {
            Some(DropReason::PortNotRunning)
        } else if parsed.inner().eth.vlan.is_some() && !self.net.allows_vlan_tags() {
            Some(DropReason::VlanTagged)
        } else if !known {
            Some(DropReason::UnknownFragment)
        } else {
            None
        };
        let r = match refused {
            Some(reason) => self.finish::<PROBES>(dir, flow, flow, 0, ProcessResult::Drop(reason)),
            None => match self.fast_path::<PROBES>(dir, pkt, parsed, flow, now, tail) {
                Fast::Done(r) => r,
                Fast::Miss => {
                    let (r, after) = self.slow_path(dir, pkt, parsed, *flow, now, tail);
                    self.finish::<PROBES>(dir, flow, &after, 3, r)
                }
            },
        };
        if let Some(f) = frag
            && f.is_first()
            && r == ProcessResult::Modified
        {
            self.remember_fragment(dir, parsed, &f, now);
        }
        r
    }

    /// [`account`] for a packet the fast path did not finish.
    fn finish<const PROBES: bool>(
        &mut self,
        dir: Direction,
        before: &InnerFlowId,
        after: &InnerFlowId,
        path: u8,
        r: ProcessResult,
    ) -> ProcessResult {
        let st = match dir {
            Direction::In => &mut self.stats.r#in,
            Direction::Out => &mut self.stats.out,
        };
        account::<P, PROBES>(st, &self.probes, &self.name, dir, before, after, path, &r);
        r
    }

    /// The flow of the datagram a later fragment belongs to (see [`super::frag`]).
    #[cold]
    fn fragment_flow(
        &self,
        dir: Direction,
        parsed: &Parsed,
        f: &FragInfo,
        now: Moment,
    ) -> Option<InnerFlowId> {
        let frags = match dir {
            Direction::In => &self.frags_in,
            Direction::Out => &self.frags_out,
        };
        frags.get(&FragKey::new(&parsed.flow(), f), now)
    }

    /// A first fragment passed: its datagram's later fragments are of its flow. Not for an
    /// ICMP error, whose transform rewrites the packet it quotes, which only the first
    /// fragment holds.
    #[cold]
    fn remember_fragment(&mut self, dir: Direction, parsed: &Parsed, f: &FragInfo, now: Moment) {
        let m = parsed.inner();
        if m.ulp
            .is_some_and(|u| is_icmp_error(u.kind, m.flow.icmp_type()))
        {
            return;
        }
        let frags = match dir {
            Direction::In => &mut self.frags_in,
            Direction::Out => &mut self.frags_out,
        };
        frags.insert(FragKey::new(&m.flow, f), m.flow, now);
    }

    /// `tail`: the packet is a later fragment (no L4 header), processed as its datagram's
    /// flow; it leaves the flow's TCP state alone. A packet with no flow key (ARP) needs no
    /// test of its own: the slow path never compiles an entry for it, so it misses.
    #[inline]
    fn fast_path<const PROBES: bool>(
        &mut self,
        dir: Direction,
        pkt: &mut Packet,
        parsed: &Parsed,
        flow: &InnerFlowId,
        now: Moment,
        tail: bool,
    ) -> Fast {
        let Self {
            uft_in,
            uft_out,
            tcp,
            stats,
            probes,
            name,
            epoch,
            net,
            ..
        } = self;
        let epoch = &epoch.wrapping_add(net.epoch());
        let (uft, other, st) = match dir {
            Direction::In => (uft_in, uft_out, &mut stats.r#in),
            Direction::Out => (uft_out, uft_in, &mut stats.out),
        };
        let Some(e) = uft.get(flow) else {
            st.uft_miss += 1;
            return Fast::Miss;
        };
        let entry = e.state();
        if entry.epoch != *epoch {
            let pair = entry.pair;
            probes.uft_invalidate(name, dir, flow, *epoch);
            uft.remove(flow);
            if let Some(p) = pair {
                other.remove(&p);
            }
            st.uft_miss += 1;
            return Fast::Miss;
        }
        let mut closed = false;
        if let Some((key, hash)) = entry.tcp_key.filter(|_| !tail) {
            let Some(te) = tcp.get_mut_hashed(hash, &key) else {
                // The connection's state expired or was evicted: rebuild it on the slow path.
                st.uft_miss += 1;
                return Fast::Miss;
            };
            let Some((flags, seq, ack)) = tcp_fields(pkt, parsed.inner()) else {
                st.uft_miss += 1;
                return Fast::Miss;
            };
            let old = te.state().tcp_state();
            match te.state_mut().process(dir, flags, seq, ack, pkt.len()) {
                Ok(s) => {
                    te.hit(now);
                    if s != old {
                        probes.tcp_flow_state(name, &key, old, s);
                    }
                    if let Some(until) = TcpExpiry::protected_until(s, now) {
                        te.protect_parents_until(until);
                    }
                    closed = s == TcpState::Closed;
                }
                Err(TcpFlowStateError::NewFlow { .. }) => {
                    // The 4-tuple is reused by a new connection: forget the old one.
                    let pair = entry.pair;
                    tcp.remove(&key);
                    uft.remove(flow);
                    if let Some(p) = pair {
                        other.remove(&p);
                    }
                    st.uft_miss += 1;
                    return Fast::Miss;
                }
                Err(e) => probes.tcp_err(name, dir, flow, &e),
            }
        }
        e.hit(now);
        st.uft_hit += 1;
        if PROBES {
            probes.uft_hit(name, dir, flow, *epoch);
        }
        let r = match entry.xform.apply(pkt, parsed) {
            Ok(()) => ProcessResult::Modified,
            Err(_) => ProcessResult::Drop(DropReason::TransformFailed),
        };
        account::<P, PROBES>(st, probes, name, dir, flow, &entry.after, 1, &r);
        if closed {
            probes.uft_tcp_closed(name, dir, flow);
            let (pair, key) = (entry.pair, entry.tcp_key);
            uft.remove(flow);
            if let Some(p) = pair {
                other.remove(&p);
            }
            if let Some((k, _)) = key {
                tcp.remove(&k);
            }
        }
        Fast::Done(r)
    }

    /// Out of line: the fast path stays a small function. Returns the result and the flow
    /// key of the packet as the walk left it. A later fragment (`tail`) walks the layers as
    /// its datagram's flow but neither tracks TCP nor compiles a UFT entry: with no L4
    /// header it cannot stand for the flow's other packets.
    #[inline(never)]
    fn slow_path(
        &mut self,
        dir: Direction,
        pkt: &mut Packet,
        parsed: &Parsed,
        flow: InnerFlowId,
        now: Moment,
        tail: bool,
    ) -> (ProcessResult, InnerFlowId) {
        // Read before the walk: a table change during it leaves the entry stale.
        let flow_epoch = self.epoch.wrapping_add(self.net.epoch());
        let meta = parsed.inner();
        let view0 = PacketView::new(pkt, parsed);
        let mut view = view0;
        let mut ameta = ActionMeta::new();
        let mut xform = HdrTransform::identity("uft");
        let mut parents = Parents::new();
        let mut pending = Pending::new();
        let mut names: SmallVec<[&'static str; 6]> = SmallVec::new();
        let n = self.layers.len();
        for step in 0..n {
            let idx = match dir {
                Direction::Out => step,
                Direction::In => n - 1 - step,
            };
            let Some(layer) = self.layers.get_mut(idx) else {
                continue;
            };
            let lname = layer.name();
            let mut cx = WalkCtx {
                port: &self.name,
                probes: &self.probes,
                pkt,
                meta,
                view: &mut view,
                ameta: &mut ameta,
                xform: &mut xform,
                names: &mut names,
                parents: &mut parents,
                pending: &mut pending,
                now,
            };
            let r = match layer.process(idx, dir, &mut cx) {
                LayerResult::Allow => continue,
                LayerResult::Deny(reason) => ProcessResult::Drop(DropReason::Layer {
                    layer: lname,
                    reason,
                }),
                LayerResult::Hairpin(reply) => ProcessResult::Hairpin(reply),
                LayerResult::ActionFailed => {
                    ProcessResult::Drop(DropReason::ActionFailed { layer: lname })
                }
                LayerResult::Exhausted => {
                    ProcessResult::Drop(DropReason::Exhausted { layer: lname })
                }
                LayerResult::HandlePkt => match self.net.handle_pkt(dir, pkt, meta) {
                    HdlPktAction::Allow => continue,
                    HdlPktAction::Deny => ProcessResult::Drop(DropReason::HandlePkt),
                    HdlPktAction::Hairpin(reply) => ProcessResult::Hairpin(reply),
                },
            };
            return (r, view.flow());
        }

        let after = view.flow();
        // Everything below ends in `r`; the probes want `after` whatever it is.
        let r = 'commit: {
            let Ok(compiled) = CompiledTransform::compile(&xform, &view0) else {
                break 'commit ProcessResult::Drop(DropReason::TransformFailed);
            };
            if compiled.apply(pkt, parsed).is_err() {
                break 'commit ProcessResult::Drop(DropReason::TransformFailed);
            }
            if flow == FLOW_ID_DEFAULT {
                // Non-IP traffic (ARP) keeps no flow state.
                break 'commit ProcessResult::Modified;
            }

            // Commit the flow state the layers asked for; undo it all if any table is full.
            // The pairs are committed in order: `pending[..committed]` are in their tables.
            let mut committed = 0;
            for p in &pending {
                let Some(layer) = self.layers.get_mut(p.layer) else {
                    committed += 1;
                    continue;
                };
                match layer.commit(p, now) {
                    Ok(lt) => {
                        parents.push(lt);
                        committed += 1;
                    }
                    Err(()) => {
                        let layer = layer.name();
                        self.undo_lfts(pending.get(..committed).unwrap_or(&[]));
                        break 'commit ProcessResult::Drop(DropReason::LftFull { layer });
                    }
                }
            }
            let committed = pending.get(..committed).unwrap_or(&[]);

            let mut tcp_key = None;
            let mut tcp_closed = false;
            if let Some(u) = view0.ulp.filter(|u| u.kind == UlpKind::Tcp && !tail) {
                let (key, inbound) = match dir {
                    Direction::Out => (flow, after.mirror()),
                    Direction::In => (after.mirror(), flow),
                };
                match self.tcp_track(dir, key, inbound, &u, view0.pkt_len, now, &parents) {
                    Ok(s) => {
                        tcp_closed = s == TcpState::Closed;
                        tcp_key = (!tcp_closed).then(|| (key, self.tcp.hash_key(&key)));
                    }
                    Err(reason) => {
                        self.undo_lfts(committed);
                        break 'commit ProcessResult::Drop(reason);
                    }
                }
            }

            if !tcp_closed && !tail {
                // The other direction's packets of this flow arrive looking like the mirror of
                // what this one leaves as; that is their UFT key, whether or not they came yet.
                let pair = Some(after.mirror());
                let entry = UftEntry {
                    epoch: flow_epoch,
                    xform: compiled,
                    pair,
                    after,
                    tcp_key,
                    names,
                };
                let (uft, other) = match dir {
                    Direction::In => (&mut self.uft_in, &mut self.uft_out),
                    Direction::Out => (&mut self.uft_out, &mut self.uft_in),
                };
                if uft
                    .add_linked(flow, entry, now, Lifetime::new(now), &parents)
                    .is_err()
                {
                    if let Some((k, _)) = tcp_key {
                        self.tcp.remove(&k);
                    }
                    self.undo_lfts(committed);
                    break 'commit ProcessResult::Drop(DropReason::UftFull);
                }
                if let Some(p) = pair
                    && let Some(o) = other.get_mut(&p)
                {
                    o.state_mut().pair = Some(flow);
                }
            }
            ProcessResult::Modified
        };
        (r, after)
    }

    fn undo_lfts(&mut self, committed: &[PendingLft]) {
        for p in committed {
            if let Some(l) = self.layers.get_mut(p.layer) {
                l.ft_in.remove(&p.in_key);
                l.ft_out.remove(&p.out_key);
            }
        }
    }

    /// Track a TCP segment of a flow the layers allowed; creates the connection's entry if
    /// it is new. A segment that cannot start a connection is refused.
    #[allow(clippy::too_many_arguments)]
    fn tcp_track(
        &mut self,
        dir: Direction,
        key: InnerFlowId,
        inbound: InnerFlowId,
        u: &UlpView,
        pkt_len: usize,
        now: Moment,
        parents: &[Arc<Lifetime>],
    ) -> Result<TcpState, DropReason> {
        if let Some(e) = self.tcp.get_mut(&key) {
            let old = e.state().tcp_state();
            match e
                .state_mut()
                .process(dir, u.tcp_flags, u.tcp_seq, u.tcp_ack, pkt_len)
            {
                Ok(s) => {
                    e.hit(now);
                    if let Some(until) = TcpExpiry::protected_until(s, now) {
                        e.protect_parents_until(until);
                    }
                    if s != old {
                        self.probes.tcp_flow_state(&self.name, &key, old, s);
                    }
                    return Ok(s);
                }
                Err(TcpFlowStateError::NewFlow { .. }) => {
                    self.tcp.remove(&key);
                }
                Err(err) => {
                    // An odd segment on a known connection passes; the state stays.
                    self.probes.tcp_err(&self.name, dir, &key, &err);
                    return Ok(old);
                }
            }
        }
        let mut te = TcpFlowEntry::new(key, inbound);
        let s = match te.process(dir, u.tcp_flags, u.tcp_seq, u.tcp_ack, pkt_len) {
            Ok(s) => s,
            Err(err) => {
                self.probes.tcp_err(&self.name, dir, &key, &err);
                return Err(DropReason::TcpErr);
            }
        };
        if s == TcpState::Closed {
            return Ok(s);
        }
        self.tcp
            .add_linked(key, te, now, Lifetime::new(now), parents)
            .map_err(|_| DropReason::TcpFull)?;
        // An opening connection shields the flow state it runs through for a while, as an
        // established one does for longer.
        if let (Some(until), Some(e)) = (TcpExpiry::protected_until(s, now), self.tcp.get(&key)) {
            e.protect_parents_until(until);
        }
        self.probes
            .tcp_flow_state(&self.name, &key, TcpState::Closed, s);
        Ok(s)
    }
}
