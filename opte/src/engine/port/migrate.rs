//! Moving a port's flow state to another host (a live migration) or across a restart:
//! what [`Port::export_flows`] takes and [`Port::import_flows`] puts back.
//!
//! What moves: every layer's flow pairs (the firewall's admitted flows, NAT and SNAT
//! translations with their ports) and the TCP table. What does not: the UFTs, which are a
//! cache the first packet of each flow rebuilds through the layers, and fragment
//! reassembly state. Ages travel as "idle for so long", never as clock values, so the
//! importing host's clock need not agree with the exporting one's. A SNAT port comes out
//! of the importing port's pool, so a new flow there never gets it twice.
//!
//! The importing port must have the same configuration (the host checks its VPC
//! configuration; the rules that admit or translate each flow must be there too): a pair
//! that no action of its layer owns refuses the whole import, and the port is left with no
//! flows rather than some.

use super::{NetworkImpl, Port, PortState};
use crate::engine::flow_table::Lifetime;
use crate::engine::layer::LftPairState;
use crate::engine::probe::Probes;
use crate::engine::tcp::TcpFlowEntry;
use crate::engine::time::Moment;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use opte_api::{InnerFlowId, OpteError};
use serde::{Deserialize, Serialize};

/// One layer's flow pairs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerFlowState {
    pub layer: String,
    pub pairs: Vec<LftPairState>,
}

/// One tracked TCP connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpEntryState {
    pub key: InnerFlowId,
    pub entry: TcpFlowEntry,
    /// Milliseconds between the connection's last segment and the export.
    pub idle_ms: u64,
}

/// A port's movable flow state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortFlowState {
    pub layers: Vec<LayerFlowState>,
    pub tcp: Vec<TcpEntryState>,
    /// Flow pairs the export left behind: their descriptors cannot move.
    pub left_behind: u64,
}

impl PortFlowState {
    /// Flow pairs, across layers.
    pub fn num_pairs(&self) -> usize {
        self.layers.iter().map(|l| l.pairs.len()).sum()
    }
}

impl<N: NetworkImpl, P: Probes> Port<N, P> {
    /// Pause the port (packets reaching it from now on are dropped and counted as
    /// `PortNotRunning`) and take its flow state, ages relative to `now`. A port paused
    /// this way runs again with [`Port::start`] (an abandoned migration) or is deleted.
    pub fn export_flows(&mut self, now: Moment) -> Result<PortFlowState, OpteError> {
        self.require(&[PortState::Running, PortState::Paused])?;
        self.state = PortState::Paused;
        let mut st = PortFlowState::default();
        for l in &self.layers {
            let (pairs, left) = l.export_flows(now);
            st.left_behind += left as u64;
            st.layers.push(LayerFlowState {
                layer: l.name().into(),
                pairs,
            });
        }
        st.tcp = self
            .tcp
            .iter()
            .filter(|(_, e)| !e.is_dead())
            .map(|(k, e)| TcpEntryState {
                key: *k,
                entry: *e.state(),
                idle_ms: now.millis_since(e.last_hit()),
            })
            .collect();
        st.tcp.sort_by_key(|t| t.key);
        Ok(st)
    }

    /// Give a port that holds no flows yet `st` (another host's export) at `now`, then
    /// run it. A refused import leaves the port as it was: no flows, the same state.
    pub fn import_flows(&mut self, st: &PortFlowState, now: Moment) -> Result<(), OpteError> {
        self.require(&[
            PortState::Ready,
            PortState::Running,
            PortState::Paused,
            PortState::Restored,
        ])?;
        let held = self.uft_in.num_flows()
            + self.uft_out.num_flows()
            + self.tcp.num_flows()
            + self.layers.iter().map(|l| l.num_flows()).sum::<u32>();
        if held > 0 {
            return Err(OpteError::FlowStateRefused(format!(
                "port {} already holds {held} flows: flows are imported into a port \
                 that has none (a new one, or one whose flows were cleared)",
                self.name
            )));
        }
        if let Err(e) = self.import_all(st, now) {
            self.forget_flows();
            return Err(OpteError::FlowStateRefused(e));
        }
        self.state = PortState::Running;
        Ok(())
    }

    fn import_all(&mut self, st: &PortFlowState, now: Moment) -> Result<(), String> {
        // Each pair's lifetime under its two keys: a connection's entry depends on the
        // pairs of its guest-side key (every layer before NAT sees that one going out)
        // and of its key as it arrives (NAT's inbound side), as the walk would have made
        // it depend on them. A live child keeps its parents from expiring.
        let mut by_key: BTreeMap<InnerFlowId, Vec<Arc<Lifetime>>> = BTreeMap::new();
        for ls in &st.layers {
            let layer = self
                .layers
                .iter_mut()
                .find(|l| l.name() == ls.layer)
                .ok_or_else(|| format!("this port has no layer {}", ls.layer))?;
            for p in &ls.pairs {
                let lt = layer.import_pair(p, now)?;
                by_key.entry(p.out_key).or_default().push(lt.clone());
                if p.in_key != p.out_key {
                    by_key.entry(p.in_key).or_default().push(lt);
                }
            }
        }
        for t in &st.tcp {
            let then = Moment::from_nanos(
                now.as_nanos()
                    .saturating_sub(t.idle_ms.saturating_mul(1_000_000)),
            );
            let mut parents: Vec<Arc<Lifetime>> = Vec::new();
            for k in [t.entry.outbound_id, t.entry.inbound_id] {
                parents.extend(by_key.get(&k).into_iter().flatten().cloned());
            }
            if self.tcp.is_full() {
                return Err(format!(
                    "the TCP table (limit {}) cannot hold {} connections",
                    self.tcp.limit(),
                    st.tcp.len()
                ));
            }
            self.tcp
                .add_linked(t.key, t.entry, then, Lifetime::new(then), &parents)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Every flow, of every table, gone (the port's state stays).
    pub(super) fn forget_flows(&mut self) {
        for l in &mut self.layers {
            l.clear_flows();
        }
        self.uft_in.clear();
        self.uft_out.clear();
        self.tcp.clear();
        self.frags_in.clear();
        self.frags_out.clear();
    }
}
