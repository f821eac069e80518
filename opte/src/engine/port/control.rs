//! The control side of a port: state changes, rule changes (each bumps the epoch), flow
//! table clears, dumps and expiry, with the reference's matrix of which operation each
//! port state allows.

use super::{NetworkImpl, Port, PortState, UftEntry};
use crate::engine::flow_table::FlowTable;
use crate::engine::layer::Layer;
use crate::engine::probe::Probes;
use crate::engine::rule::Rule;
use crate::engine::stats::LayerStats;
use crate::engine::time::Moment;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use opte_api::{
    Direction, DumpLayerResp, DumpTcpFlowsResp, DumpUftResp, InnerFlowId, LayerDesc, OpteError,
    RuleId, TcpFlowEntryDump, TcpFlowStateDump, TcpState, UftEntryDump,
};

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
        for l in &mut self.layers {
            l.clear_flows();
        }
        self.uft_in.clear();
        self.uft_out.clear();
        self.tcp.clear();
    }

    fn require(&self, ok: &[PortState]) -> Result<(), OpteError> {
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
            let mut v: Vec<_> = t
                .iter()
                .map(|(k, e)| {
                    (
                        *k,
                        UftEntryDump {
                            hits: e.hits(),
                            summary: summary(&e.state().names),
                        },
                    )
                })
                .collect();
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
        let mut flows: Vec<_> = self
            .tcp
            .iter()
            .map(|(k, e)| {
                let t = e.state();
                let s = &t.state;
                (
                    *k,
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
                    },
                )
            })
            .collect();
        flows.sort_by_key(|e| e.0);
        Ok(DumpTcpFlowsResp { flows })
    }

    /// Remove expired flows: the TCP table, then the UFTs, then the layers' LFTs (children
    /// before parents, so parents see their children gone in the same pass).
    pub fn expire_flows(&mut self, now: Moment) -> Result<(), OpteError> {
        self.require(&[PortState::Running])?;
        let (name, probes) = (self.name.as_str(), &self.probes);
        self.tcp
            .expire_flows(now, |k, _| probes.flow_expired(name, "tcp_flows", &k));
        self.uft_in
            .expire_flows(now, |k, _| probes.flow_expired(name, "uft_in", &k));
        self.uft_out
            .expire_flows(now, |k, _| probes.flow_expired(name, "uft_out", &k));
        for l in &mut self.layers {
            l.expire_flows(now, |t, k| probes.flow_expired(name, t, &k));
        }
        Ok(())
    }
}

fn summary(names: &[&str]) -> String {
    alloc::format!("hdr: {}", names.join(", "))
}
