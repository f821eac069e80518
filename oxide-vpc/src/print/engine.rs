//! Tables of the engine's generic dumps: a port's layers, one layer's flows and rules, the
//! unified flow tables and the TCP flow table.

use super::table::Table;
use super::{write_hr, write_hrb};
use opte_api::{
    ActionDescEntryDump, DumpLayerResp, DumpTcpFlowsResp, DumpUftResp, InnerFlowId, ListLayersResp,
    Protocol, RuleTableEntryDump, UftEntryDump,
};
use std::format;
use std::io::{self, Write};
use std::string::{String, ToString};

const FLOW_HEADER_LFT: &str = "PROTO\tSRC IP\tSPORT/TY\tDST IP\tDPORT\tHITS\tACTION";
const FLOW_HEADER_UFT: &str = "PROTO\tSRC IP\tSPORT/TY\tDST IP\tDPORT\tHITS\tXFORMS";
const RULE_HEADER: &str = "ID\tPRI\tHITS\tPREDICATES\tACTION";

/// `list-layers`: one row per layer, in processing order.
pub fn print_layers<W: Write + ?Sized>(w: &mut W, resp: &ListLayersResp) -> io::Result<()> {
    let mut t = Table::new();
    t.header("NAME\tRULES IN\tRULES OUT\tDEF IN\tDEF OUT\tFLOWS");
    for l in &resp.layers {
        t.row(&[
            &l.name,
            &l.rules_in,
            &l.rules_out,
            &l.default_in,
            &l.default_out,
            &l.flows,
        ]);
    }
    t.write(w)
}

/// `dump-layer`: the layer's inbound and outbound flow tables, then its inbound and
/// outbound rules, each closed by the default action's row.
pub fn print_layer<W: Write + ?Sized>(
    w: &mut W,
    port: &str,
    resp: &DumpLayerResp,
) -> io::Result<()> {
    writeln!(w, "Port {port} - Layer {}", resp.name)?;
    write_hrb(w)?;
    writeln!(w, "Inbound Flows")?;
    write_hr(w)?;
    lft_table(&resp.ft_in).write(w)?;
    writeln!(w, "\nOutbound Flows")?;
    write_hr(w)?;
    lft_table(&resp.ft_out).write(w)?;
    writeln!(w, "\nInbound Rules")?;
    write_hr(w)?;
    rule_table(&resp.rules_in, resp.default_in_hits, &resp.default_in).write(w)?;
    writeln!(w, "\nOutbound Rules")?;
    write_hr(w)?;
    rule_table(&resp.rules_out, resp.default_out_hits, &resp.default_out).write(w)?;
    writeln!(w)
}

/// `dump-uft`: the inbound then the outbound unified flow table, each titled with its
/// occupancy.
pub fn print_uft<W: Write + ?Sized>(w: &mut W, resp: &DumpUftResp) -> io::Result<()> {
    writeln!(w, "UFT Inbound: {}/{}", resp.in_num_flows, resp.in_limit)?;
    write_hr(w)?;
    uft_table(&resp.in_flows).write(w)?;
    writeln!(w)?;
    writeln!(w, "UFT Outbound: {}/{}", resp.out_num_flows, resp.out_limit)?;
    write_hr(w)?;
    uft_table(&resp.out_flows).write(w)
}

/// `dump-tcp-flows`: one row per tracked connection, keyed by its outbound flow.
pub fn print_tcp_flows<W: Write + ?Sized>(w: &mut W, resp: &DumpTcpFlowsResp) -> io::Result<()> {
    let mut t = Table::new();
    t.header("FLOW\tSTATE\tHITS\tSEGS IN\tSEGS OUT\tBYTES IN\tBYTES OUT");
    for (flow, e) in &resp.flows {
        t.row(&[
            flow,
            &e.tcp_state.tcp_state,
            &e.hits,
            &e.segs_in,
            &e.segs_out,
            &e.bytes_in,
            &e.bytes_out,
        ]);
    }
    t.write(w)
}

/// The SPORT/TY and DPORT cells of a flow: the ports for TCP and UDP, `0xTT/0xCC` and the
/// echo id for ICMP and ICMPv6, `N/A` for anything else.
fn l4_cells(flow: &InnerFlowId) -> (String, String) {
    match flow.protocol() {
        Protocol::TCP | Protocol::UDP => (flow.src_port().to_string(), flow.dst_port().to_string()),
        Protocol::ICMP | Protocol::ICMPv6 => (
            format!("{:#04x}/{:#04x}", flow.icmp_type(), flow.icmp_code()),
            flow.icmp_id().to_string(),
        ),
        _ => ("N/A".into(), "N/A".into()),
    }
}

fn flow_row(t: &mut Table, flow: &InnerFlowId, hits: u64, what: &str) {
    let (sport, dport) = l4_cells(flow);
    t.row(&[
        &flow.protocol(),
        &flow.src_ip(),
        &sport,
        &flow.dst_ip(),
        &dport,
        &hits,
        &what,
    ]);
}

fn lft_table(flows: &[(InnerFlowId, ActionDescEntryDump)]) -> Table {
    let mut t = Table::new();
    t.header(FLOW_HEADER_LFT);
    for (flow, e) in flows {
        flow_row(&mut t, flow, e.hits, &e.summary);
    }
    t
}

fn uft_table(flows: &[(InnerFlowId, UftEntryDump)]) -> Table {
    let mut t = Table::new();
    t.header(FLOW_HEADER_UFT);
    for (flow, e) in flows {
        flow_row(&mut t, flow, e.hits, &e.summary);
    }
    t
}

/// One row per rule with its first predicate (`*` when it has none); further predicates
/// (header, then data) on continuation rows, and a blank row after such a rule so the next
/// one stands apart. Actions are quoted, as the reference prints them.
fn rule_table(rules: &[RuleTableEntryDump], def_hits: u64, def_action: &str) -> Table {
    let mut t = Table::new();
    t.header(RULE_HEADER);
    for r in rules {
        let mut preds = r.rule.predicates.iter().chain(&r.rule.data_predicates);
        let first = preds.next().map_or("*", String::as_str);
        let action = format!("{:?}", r.rule.action);
        t.row(&[&r.id, &r.rule.priority, &r.hits, &first, &action]);
        let mut continued = false;
        for pred in preds {
            t.row(&[&"", &"", &"", pred, &""]);
            continued = true;
        }
        if continued {
            t.blank();
        }
    }
    let def_action = format!("{def_action:?}");
    t.row(&[&"DEF", &"--", &def_hits, &"--", &def_action]);
    t
}

#[cfg(test)]
mod tests {
    use super::super::{assert_json_round_trip, render};
    use super::*;
    use crate::api::{ExternalIpCfg, IpCfg, Ipv4Cfg, VpcCfg};
    use crate::engine::{PortLimits, VpcPort};
    use crate::tables::VpcTables;
    use alloc::collections::BTreeMap;
    use alloc::sync::Arc;
    use opte_api::{
        AddrPair, DhcpCfg, LayerDesc, RuleDump, TcpFlowEntryDump, TcpFlowStateDump, TcpState, Vni,
    };
    use std::vec;

    fn v4(src: [u8; 4], dst: [u8; 4]) -> AddrPair {
        AddrPair::V4 {
            src: src.into(),
            dst: dst.into(),
        }
    }

    fn port() -> VpcPort {
        let cfg = VpcCfg {
            ip_cfg: IpCfg::Ipv4(Ipv4Cfg {
                vpc_subnet: "172.30.0.0/22".parse().unwrap(),
                private_ip: "172.30.0.5".parse().unwrap(),
                gateway_ip: "172.30.0.1".parse().unwrap(),
                external_ips: ExternalIpCfg::default(),
                attached_subnets: BTreeMap::new(),
                transit_ips: BTreeMap::new(),
            }),
            guest_mac: "a8:40:25:fa:fa:37".parse().unwrap(),
            gateway_mac: "a8:40:25:ff:77:77".parse().unwrap(),
            vni: Vni::new(1_287_581u32).unwrap(),
            phys_ip: "fd00:1::1".parse().unwrap(),
            dhcp: DhcpCfg::default(),
        };
        let tables = Arc::new(VpcTables::default());
        VpcPort::new("opte0", cfg, 1500, tables, PortLimits::for_tests(), 7).unwrap()
    }

    #[test]
    fn list_layers_of_a_new_port() {
        let p = port();
        let resp = ListLayersResp {
            layers: p.port().list_layers(),
        };
        assert_eq!(
            render(|w| print_layers(w, &resp)),
            "\
NAME      RULES IN  RULES OUT  DEF IN  DEF OUT         FLOWS
gateway   2         5          deny    deny            0
firewall  0         0          deny    stateful allow  0
router    0         1          allow   deny            0
nat       0         1          allow   allow           0
overlay   1         1          deny    deny            0
"
        );
    }

    #[test]
    fn dump_layer_of_a_new_port_has_empty_flow_tables_and_default_rows() {
        let p = port();
        let resp = p.port().dump_layer("router").unwrap();
        assert_eq!(
            render(|w| print_layer(w, "opte0", &resp)),
            "\
Port opte0 - Layer router
======================================================================
Inbound Flows
----------------------------------------------------------------------
PROTO  SRC IP  SPORT/TY  DST IP  DPORT  HITS  ACTION

Outbound Flows
----------------------------------------------------------------------
PROTO  SRC IP  SPORT/TY  DST IP  DPORT  HITS  ACTION

Inbound Rules
----------------------------------------------------------------------
ID   PRI  HITS  PREDICATES  ACTION
DEF  --   0     --          \"allow\"

Outbound Rules
----------------------------------------------------------------------
ID   PRI  HITS  PREDICATES                                            ACTION
0    0    0     any(inner.ip.dst=224.0.0.0/4,inner.ip6.dst=ff00::/8)  \"Allow\"
DEF  --   0     --                                                    \"deny\"

"
        );
    }

    fn rule(
        id: u64,
        hits: u64,
        priority: u16,
        preds: &[&str],
        data: &[&str],
    ) -> RuleTableEntryDump {
        RuleTableEntryDump {
            id,
            hits,
            rule: RuleDump {
                priority,
                predicates: preds.iter().map(|s| s.to_string()).collect(),
                data_predicates: data.iter().map(|s| s.to_string()).collect(),
                action: "Stateful Allow".into(),
            },
        }
    }

    fn entry(hits: u64, summary: &str) -> ActionDescEntryDump {
        ActionDescEntryDump {
            hits,
            summary: summary.into(),
        }
    }

    #[test]
    fn dump_layer_shows_ports_icmp_type_code_and_continuation_predicates() {
        let tcp = InnerFlowId::with_ports(6, v4([10, 0, 0, 5], [93, 184, 216, 34]), 49152, 443);
        let ping = InnerFlowId::with_icmp(1, v4([10, 0, 0, 5], [10, 0, 0, 1]), 8, 0, 7);
        let gre = InnerFlowId::with_ports(47, v4([10, 0, 0, 5], [10, 0, 0, 9]), 0, 0);
        let resp = DumpLayerResp {
            name: "firewall".into(),
            rules_in: vec![
                rule(
                    4,
                    12,
                    65534,
                    &["inner.ip.proto=TCP", "inner.ulp.dst=22"],
                    &[],
                ),
                rule(5, 0, 65534, &[], &[]),
                rule(6, 1, 100, &["inner.ip.proto=UDP"], &["dhcp.msg_type=1"]),
            ],
            rules_out: vec![],
            default_in: "deny".into(),
            default_in_hits: 3,
            default_out: "stateful allow".into(),
            default_out_hits: 41,
            ft_in: vec![(ping.mirror(), entry(2, "FW"))],
            ft_out: vec![
                (tcp, entry(17, "FW")),
                (ping, entry(2, "FW")),
                (gre, entry(1, "FW")),
            ],
        };
        assert_eq!(
            render(|w| print_layer(w, "opte3", &resp)),
            "\
Port opte3 - Layer firewall
======================================================================
Inbound Flows
----------------------------------------------------------------------
PROTO  SRC IP    SPORT/TY   DST IP    DPORT  HITS  ACTION
ICMP   10.0.0.1  0x00/0x00  10.0.0.5  7      2     FW

Outbound Flows
----------------------------------------------------------------------
PROTO  SRC IP    SPORT/TY   DST IP         DPORT  HITS  ACTION
TCP    10.0.0.5  49152      93.184.216.34  443    17    FW
ICMP   10.0.0.5  0x08/0x00  10.0.0.1       7      2     FW
47     10.0.0.5  N/A        10.0.0.9       N/A    1     FW

Inbound Rules
----------------------------------------------------------------------
ID   PRI    HITS  PREDICATES          ACTION
4    65534  12    inner.ip.proto=TCP  \"Stateful Allow\"
                  inner.ulp.dst=22

5    65534  0     *                   \"Stateful Allow\"
6    100    1     inner.ip.proto=UDP  \"Stateful Allow\"
                  dhcp.msg_type=1

DEF  --     3     --                  \"deny\"

Outbound Rules
----------------------------------------------------------------------
ID   PRI  HITS  PREDICATES  ACTION
DEF  --   41    --          \"stateful allow\"

"
        );
    }

    fn uft() -> DumpUftResp {
        let out = InnerFlowId::with_ports(17, v4([10, 0, 0, 5], [8, 8, 8, 8]), 5353, 53);
        DumpUftResp {
            in_limit: 8192,
            in_num_flows: 1,
            in_flows: vec![(
                out.mirror(),
                UftEntryDump {
                    hits: 3,
                    summary: "hdr: decap, body: ".into(),
                },
            )],
            out_limit: 8192,
            out_num_flows: 1,
            out_flows: vec![(
                out,
                UftEntryDump {
                    hits: 4,
                    summary: "hdr: encap, body: ".into(),
                },
            )],
        }
    }

    #[test]
    fn dump_uft_titles_each_table_with_its_occupancy() {
        assert_eq!(
            render(|w| print_uft(w, &uft())),
            "\
UFT Inbound: 1/8192
----------------------------------------------------------------------
PROTO  SRC IP   SPORT/TY  DST IP    DPORT  HITS  XFORMS
UDP    8.8.8.8  53        10.0.0.5  5353   3     hdr: decap, body:

UFT Outbound: 1/8192
----------------------------------------------------------------------
PROTO  SRC IP    SPORT/TY  DST IP   DPORT  HITS  XFORMS
UDP    10.0.0.5  5353      8.8.8.8  53     4     hdr: encap, body:
"
        );
    }

    fn tcp_flows() -> DumpTcpFlowsResp {
        let flow = InnerFlowId::with_ports(6, v4([10, 0, 0, 5], [93, 184, 216, 34]), 49152, 443);
        DumpTcpFlowsResp {
            flows: vec![(
                flow,
                TcpFlowEntryDump {
                    hits: 9,
                    inbound_ufid: Some(flow.mirror()),
                    tcp_state: TcpFlowStateDump {
                        tcp_state: TcpState::Established,
                        guest_seq: Some(1000),
                        guest_ack: Some(2000),
                        remote_seq: Some(2000),
                        remote_ack: Some(1000),
                    },
                    segs_in: 4,
                    segs_out: 5,
                    bytes_in: 1234,
                    bytes_out: 567,
                },
            )],
        }
    }

    #[test]
    fn dump_tcp_flows_shows_state_hits_segments_and_bytes() {
        assert_eq!(
            render(|w| print_tcp_flows(w, &tcp_flows())),
            "\
FLOW                                  STATE        HITS  SEGS IN  SEGS OUT  BYTES IN  BYTES OUT
TCP:10.0.0.5:49152:93.184.216.34:443  ESTABLISHED  9     4        5         1234      567
"
        );
    }

    #[test]
    fn list_layers_aligns_hand_built_rows() {
        let resp = ListLayersResp {
            layers: vec![LayerDesc {
                name: "nat".into(),
                rules_in: 2,
                rules_out: 10,
                default_in: "allow".into(),
                default_out: "allow".into(),
                flows: 1024,
            }],
        };
        assert_eq!(
            render(|w| print_layers(w, &resp)),
            "NAME  RULES IN  RULES OUT  DEF IN  DEF OUT  FLOWS\n\
             nat   2         10         allow   allow    1024\n"
        );
    }

    #[test]
    fn engine_read_responses_round_trip_through_json() {
        let p = port();
        assert_json_round_trip(&ListLayersResp {
            layers: p.port().list_layers(),
        });
        for layer in ["gateway", "firewall", "router", "nat", "overlay"] {
            assert_json_round_trip(&p.port().dump_layer(layer).unwrap());
        }
        assert_json_round_trip(&uft());
        assert_json_round_trip(&tcp_flows());
    }
}
