//! Requests and responses of the engine's introspection commands: dumps of layers, flow
//! tables and TCP state, and the table-clearing commands.
//!
//! Generic over the flow key type (`Flow`, by default [`InnerFlowId`]), so the engine can
//! name its own key while clients use the default.

use crate::cmd::CmdOk;
use crate::flow::InnerFlowId;
use crate::tcp::TcpState;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Debug;
use serde::{Deserialize, Serialize};

/// The id of a rule within a layer.
pub type RuleId = u64;

/// Dump one layer of a port (`DumpLayer`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpLayerReq {
    /// The port.
    pub port_name: String,
    /// The layer.
    pub name: String,
}

/// A layer's rules, default actions and flow tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpLayerResp<Flow = InnerFlowId> {
    /// The layer.
    pub name: String,
    /// Inbound rules, in evaluation order.
    pub rules_in: Vec<RuleTableEntryDump>,
    /// Outbound rules, in evaluation order.
    pub rules_out: Vec<RuleTableEntryDump>,
    /// The inbound default action.
    pub default_in: String,
    /// Packets that fell to the inbound default action.
    pub default_in_hits: u64,
    /// The outbound default action.
    pub default_out: String,
    /// Packets that fell to the outbound default action.
    pub default_out_hits: u64,
    /// The inbound layer flow table.
    pub ft_in: Vec<(Flow, ActionDescEntryDump)>,
    /// The outbound layer flow table.
    pub ft_out: Vec<(Flow, ActionDescEntryDump)>,
}

impl<Flow: Debug + Serialize> CmdOk for DumpLayerResp<Flow> {}

/// One rule of a rule table and how often it matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTableEntryDump {
    /// The rule's id.
    pub id: RuleId,
    /// Packets it matched.
    pub hits: u64,
    /// The rule.
    pub rule: RuleDump,
}

/// A rule in text: priority, predicates and action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleDump {
    /// Lower runs first.
    pub priority: u16,
    /// Header predicates, each as text.
    pub predicates: Vec<String>,
    /// Data (body) predicates, each as text.
    pub data_predicates: Vec<String>,
    /// The action, as text.
    pub action: String,
}

/// A layer flow-table entry: its action's summary and its hit count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionDescEntryDump {
    /// Packets that hit the entry.
    pub hits: u64,
    /// What the entry does, as text.
    pub summary: String,
}

/// Summarise a port's layers (`ListLayers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListLayersReq {
    /// The port.
    pub port_name: String,
}

/// A port's layers, in outbound processing order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListLayersResp {
    /// The layers.
    pub layers: Vec<LayerDesc>,
}

impl CmdOk for ListLayersResp {}

/// One layer in a [`ListLayersResp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDesc {
    /// The layer.
    pub name: String,
    /// Number of inbound rules.
    pub rules_in: u64,
    /// Number of outbound rules.
    pub rules_out: u64,
    /// The inbound default action.
    pub default_in: String,
    /// The outbound default action.
    pub default_out: String,
    /// Number of flows in the layer flow table.
    pub flows: u64,
}

/// Clear both unified flow tables of a port (`ClearUft`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearUftReq {
    /// The port.
    pub port_name: String,
}

/// Clear one layer's flow table (`ClearLft`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearLftReq {
    /// The port.
    pub port_name: String,
    /// The layer.
    pub layer_name: String,
}

/// Dump the unified flow tables of a port (`DumpUft`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpUftReq {
    /// The port.
    pub port_name: String,
}

/// Both unified flow tables, with their limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpUftResp<Flow = InnerFlowId> {
    /// Capacity of the inbound table.
    pub in_limit: u32,
    /// Entries in the inbound table.
    pub in_num_flows: u32,
    /// The inbound entries.
    pub in_flows: Vec<(Flow, UftEntryDump)>,
    /// Capacity of the outbound table.
    pub out_limit: u32,
    /// Entries in the outbound table.
    pub out_num_flows: u32,
    /// The outbound entries.
    pub out_flows: Vec<(Flow, UftEntryDump)>,
}

impl<Flow: Debug + Serialize> CmdOk for DumpUftResp<Flow> {}

/// A unified flow-table entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UftEntryDump {
    /// Packets that hit the entry.
    pub hits: u64,
    /// Its transforms: `hdr: <header transforms>, body: <body transforms>`.
    pub summary: String,
}

/// Dump the TCP flow table of a port (`DumpTcpFlows`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpTcpFlowsReq {
    /// The port.
    pub port_name: String,
}

/// The tracked TCP connections, keyed by their outbound (guest-side) flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpTcpFlowsResp<Flow = InnerFlowId> {
    /// The entries.
    pub flows: Vec<(Flow, TcpFlowEntryDump<Flow>)>,
}

impl<Flow: Debug + Serialize> CmdOk for DumpTcpFlowsResp<Flow> {}

/// One tracked TCP connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpFlowEntryDump<Flow = InnerFlowId> {
    /// Packets that hit the entry.
    pub hits: u64,
    /// The inbound flow as seen on the wire (before NAT), once known.
    pub inbound_ufid: Option<Flow>,
    /// The connection state.
    pub tcp_state: TcpFlowStateDump,
    /// Segments received (network → guest).
    pub segs_in: u64,
    /// Segments sent (guest → network).
    pub segs_out: u64,
    /// Bytes received, whole packets.
    pub bytes_in: u64,
    /// Bytes sent, whole packets.
    pub bytes_out: u64,
}

/// One page of a flow table dump, for tables too big for one response (a port can hold a
/// million flows). A dump starts at cursor 0 and passes each page's `next` to get the
/// following one until `next` is `None`. Entries come in table order, not sorted; an entry
/// present for the whole dump is listed exactly once unless the table grows (is rehashed)
/// meanwhile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowDumpPage<E, Flow = InnerFlowId> {
    /// Capacity of the table.
    pub limit: u32,
    /// Entries in the table.
    pub num_flows: u32,
    /// This page's entries.
    pub flows: Vec<(Flow, E)>,
    /// The cursor of the next page; `None` once the end of the table was reached.
    pub next: Option<u64>,
}

impl<E: Debug + Serialize, Flow: Debug + Serialize> CmdOk for FlowDumpPage<E, Flow> {}

/// The state of a tracked TCP connection and the last sequence numbers seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpFlowStateDump {
    /// The connection state.
    pub tcp_state: TcpState,
    /// The guest's last sequence number.
    pub guest_seq: Option<u32>,
    /// The guest's last acknowledgement number.
    pub guest_ack: Option<u32>,
    /// The remote's last sequence number.
    pub remote_seq: Option<u32>,
    /// The remote's last acknowledgement number.
    pub remote_ack: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::AddrPair;
    use crate::ip::Ipv4Addr;

    fn flow(sport: u16) -> InnerFlowId {
        let addrs = AddrPair::V4 {
            src: Ipv4Addr::from([10, 0, 0, 1]),
            dst: Ipv4Addr::from([10, 0, 0, 2]),
        };
        InnerFlowId::with_ports(6, addrs, sport, 443)
    }

    #[test]
    fn layer_dump_round_trips() {
        let resp: DumpLayerResp = DumpLayerResp {
            name: "firewall".into(),
            rules_in: alloc::vec![RuleTableEntryDump {
                id: 3,
                hits: 9,
                rule: RuleDump {
                    priority: 65535,
                    predicates: alloc::vec!["inner.ip.proto=TCP".into()],
                    data_predicates: alloc::vec![],
                    action: "Allow".into(),
                },
            }],
            rules_out: alloc::vec![],
            default_in: "Deny".into(),
            default_in_hits: 1,
            default_out: "Allow".into(),
            default_out_hits: 2,
            ft_in: alloc::vec![(
                flow(1),
                ActionDescEntryDump {
                    hits: 4,
                    summary: "x".into()
                }
            )],
            ft_out: alloc::vec![],
        };
        let bytes = postcard::to_allocvec(&resp).unwrap();
        assert_eq!(postcard::from_bytes::<DumpLayerResp>(&bytes), Ok(resp));
    }

    #[test]
    fn uft_and_tcp_dumps_round_trip() {
        let uft: DumpUftResp = DumpUftResp {
            in_limit: 8192,
            in_num_flows: 1,
            in_flows: alloc::vec![(
                flow(2),
                UftEntryDump {
                    hits: 1,
                    summary: "hdr: , body: ".into()
                }
            )],
            out_limit: 8192,
            out_num_flows: 0,
            out_flows: alloc::vec![],
        };
        let bytes = postcard::to_allocvec(&uft).unwrap();
        assert_eq!(postcard::from_bytes::<DumpUftResp>(&bytes), Ok(uft));

        let tcp: DumpTcpFlowsResp = DumpTcpFlowsResp {
            flows: alloc::vec![(
                flow(3),
                TcpFlowEntryDump {
                    hits: 5,
                    inbound_ufid: Some(flow(3).mirror()),
                    tcp_state: TcpFlowStateDump {
                        tcp_state: TcpState::Established,
                        guest_seq: Some(1),
                        guest_ack: None,
                        remote_seq: Some(u32::MAX),
                        remote_ack: Some(0),
                    },
                    segs_in: 2,
                    segs_out: 3,
                    bytes_in: 120,
                    bytes_out: 180,
                },
            )],
        };
        let bytes = postcard::to_allocvec(&tcp).unwrap();
        assert_eq!(postcard::from_bytes::<DumpTcpFlowsResp>(&bytes), Ok(tcp));
    }

    #[test]
    fn requests_round_trip() {
        let clear = ClearLftReq {
            port_name: "opte0".into(),
            layer_name: "nat".into(),
        };
        let bytes = postcard::to_allocvec(&clear).unwrap();
        assert_eq!(bytes, b"\x05opte0\x03nat");
        assert_eq!(postcard::from_bytes::<ClearLftReq>(&bytes), Ok(clear));
        let list = ListLayersResp {
            layers: alloc::vec![LayerDesc {
                name: "gateway".into(),
                rules_in: 4,
                rules_out: 5,
                default_in: "Deny".into(),
                default_out: "Deny".into(),
                flows: 0,
            }],
        };
        let bytes = postcard::to_allocvec(&list).unwrap();
        assert_eq!(postcard::from_bytes::<ListLayersResp>(&bytes), Ok(list));
    }
}
