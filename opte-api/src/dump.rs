//! Requests and responses of the engine's introspection commands: dumps of layers, flow
//! tables and TCP state, and the table-clearing commands.
//!
//! Generic over the flow key type (`Flow`, by default [`InnerFlowId`]), so the engine can
//! name its own key while clients use the default.

use crate::cmd::CmdOk;
use crate::direction::Direction;
use crate::error::OpteError;
use crate::flow::InnerFlowId;
use crate::tcp::TcpState;
use alloc::format;
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

/// The most entries one page of a paged flow-table dump ([`DumpUftPageReq`],
/// [`DumpTcpFlowsPageReq`]) may ask for. A page of this many entries stays well under a
/// megabyte of response; a request for more (or for none) is refused.
pub const MAX_DUMP_PAGE: u32 = 4096;

/// Check the page size of a paged dump: 1 to [`MAX_DUMP_PAGE`] entries, else a
/// [`OpteError::BadState`] (`EINVAL`) that names the limit.
pub fn check_dump_page(max: u32) -> Result<(), OpteError> {
    if (1..=MAX_DUMP_PAGE).contains(&max) {
        Ok(())
    } else {
        Err(OpteError::BadState(format!(
            "page size {max} is outside 1..={MAX_DUMP_PAGE}"
        )))
    }
}

/// One page of a unified flow table of a port (`DumpUftPage`): at most `max` entries of
/// the `dir` table from cursor `start`. See [`FlowDumpPage`] for how a dump proceeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpUftPageReq {
    /// The port.
    pub port_name: String,
    /// Which of the two tables.
    pub dir: Direction,
    /// The cursor: 0 to begin, then the previous page's `next`.
    pub start: u64,
    /// The most entries to return: 1 to [`MAX_DUMP_PAGE`].
    pub max: u32,
}

impl DumpUftPageReq {
    /// Refuse a page size outside 1..=[`MAX_DUMP_PAGE`] ([`check_dump_page`]).
    pub fn validate(&self) -> Result<(), OpteError> {
        check_dump_page(self.max)
    }
}

/// One page of the TCP flow table of a port (`DumpTcpFlowsPage`): at most `max` entries
/// from cursor `start`. See [`FlowDumpPage`] for how a dump proceeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpTcpFlowsPageReq {
    /// The port.
    pub port_name: String,
    /// The cursor: 0 to begin, then the previous page's `next`.
    pub start: u64,
    /// The most entries to return: 1 to [`MAX_DUMP_PAGE`].
    pub max: u32,
}

impl DumpTcpFlowsPageReq {
    /// Refuse a page size outside 1..=[`MAX_DUMP_PAGE`] ([`check_dump_page`]).
    pub fn validate(&self) -> Result<(), OpteError> {
        check_dump_page(self.max)
    }
}

/// The response of `DumpUftPage`: one page of a unified flow table.
pub type DumpUftPageResp<Flow = InnerFlowId> = FlowDumpPage<UftEntryDump, Flow>;

/// The response of `DumpTcpFlowsPage`: one page of the TCP flow table.
pub type DumpTcpFlowsPageResp<Flow = InnerFlowId> = FlowDumpPage<TcpFlowEntryDump<Flow>, Flow>;

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
    use alloc::string::ToString;

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
    fn page_requests_round_trip_and_check_their_size() {
        let uft = DumpUftPageReq {
            port_name: "opte0".into(),
            dir: Direction::Out,
            start: 300,
            max: 2,
        };
        let bytes = postcard::to_allocvec(&uft).unwrap();
        // Name, direction (variant index 1), start (varint 300), max.
        assert_eq!(bytes, b"\x05opte0\x01\xac\x02\x02");
        assert_eq!(
            postcard::from_bytes::<DumpUftPageReq>(&bytes),
            Ok(uft.clone())
        );
        let tcp = DumpTcpFlowsPageReq {
            port_name: "opte0".into(),
            start: 0,
            max: MAX_DUMP_PAGE,
        };
        let bytes = postcard::to_allocvec(&tcp).unwrap();
        assert_eq!(
            postcard::from_bytes::<DumpTcpFlowsPageReq>(&bytes),
            Ok(tcp.clone())
        );

        assert_eq!(uft.validate(), Ok(()));
        assert_eq!(tcp.validate(), Ok(()));
        assert_eq!(check_dump_page(1), Ok(()));
        for bad in [0, MAX_DUMP_PAGE + 1, u32::MAX] {
            let e = check_dump_page(bad).unwrap_err();
            assert_eq!(
                e,
                OpteError::BadState(alloc::format!("page size {bad} is outside 1..=4096"))
            );
            assert_eq!(e.to_errno(), crate::error::errno::EINVAL);
            assert!(e.to_string().contains("1..=4096"), "{e}");
            assert_eq!(
                DumpTcpFlowsPageReq {
                    max: bad,
                    ..tcp.clone()
                }
                .validate(),
                Err(e)
            );
        }
        assert!(DumpUftPageReq { max: 0, ..uft }.validate().is_err());
    }

    #[test]
    fn pages_round_trip() {
        let page: DumpUftPageResp = FlowDumpPage {
            limit: 8192,
            num_flows: 3,
            flows: alloc::vec![(
                flow(4),
                UftEntryDump {
                    hits: 2,
                    summary: "hdr: encap, body: ".into(),
                }
            )],
            next: Some(17),
        };
        let bytes = postcard::to_allocvec(&page).unwrap();
        assert_eq!(postcard::from_bytes::<DumpUftPageResp>(&bytes), Ok(page));
        let last: DumpTcpFlowsPageResp = FlowDumpPage {
            limit: 8192,
            num_flows: 0,
            flows: alloc::vec![],
            next: None,
        };
        let bytes = postcard::to_allocvec(&last).unwrap();
        assert_eq!(
            postcard::from_bytes::<DumpTcpFlowsPageResp>(&bytes),
            Ok(last)
        );
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
