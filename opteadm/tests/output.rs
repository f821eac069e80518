//! Every read command's table (golden text) and JSON (the response itself, read back)
//! against a host core populated through opteadm's own commands; the paged flow-table
//! dumps print exactly what the whole dumps print.

mod common;

use common::{Sled, create_xde_line, sled};
use opteadm::run::print_xde_stats;
use oxide_vpc::api::cmd::XdeStats;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// A sled with an underlay, two ports and something in every table, all set up through
/// the command line, and one connection attempt so the flow tables have an entry.
fn populated() -> Sled {
    let s = sled();
    s.run("set-xde-underlay u1 u2");
    s.run(&create_xde_line(
        "opte0",
        1,
        "--ephemeral-ip 10.60.0.5 --floating-ip 10.60.1.9,10.60.1.10",
    ));
    s.run(&create_xde_line(
        "opte1",
        2,
        "--snat-ip 10.77.77.13 --snat-start 1025 --snat-end 4096",
    ));
    s.run(
        "add-fw-rule -p opte0 --dir in --hosts any --protocol tcp --ports 22 --action allow \
         --priority 10",
    );
    s.run("add-router-entry -p opte0 172.30.0.0/22 sub4=172.30.0.0/22 system");
    s.run("set-v2p 172.30.0.99 a8:40:25:00:00:63 fd00:0:f7:102::1 1287581");
    s.run("set-v2p fd00::99 a8:40:25:00:00:63 fd00:0:f7:102::1 1287581");
    s.run("set-v2b 0.0.0.0/0 fd00:99::1 fd00:99::2");
    s.run("set-m2p 239.1.1.1 ff04::e001:101");
    s.run("set-mcast-fwd ff04::e001:101 fd00:0:f7:102::1 underlay");
    s.run("mcast-subscribe -p opte0 239.1.1.1");
    s.run("mcast-subscribe -p opte1 239.1.1.1");
    // A connection attempt to the mapped guest: flows in the UFT, the LFTs and the TCP
    // table (it is then dropped for want of an underlay route, which is counted).
    s.guest_syn("opte0", 1, 40000, "172.30.0.99", 443, 1);
    s
}

/// [`populated`], and more flows: opte0 opens five more connections to the mapped guest
/// and four to opte1 (on this sled; a rule lets them in), so opte0's outbound UFT and TCP
/// table hold ten flows and opte1's inbound UFT four.
fn busy() -> Sled {
    let s = populated();
    s.run(
        "add-fw-rule -p opte1 --dir in --hosts any --protocol tcp --ports 22 --action allow \
         --priority 10",
    );
    for i in 1..=5 {
        s.guest_syn("opte0", 1, 40000 + i, "172.30.0.99", 443, 2);
    }
    for i in 0..4 {
        s.guest_syn("opte0", 1, 41003 - i, "172.30.0.6", 22, 3);
    }
    s
}

fn assert_table(s: &Sled, line: &str, golden: &str) {
    let out = s.run(line);
    assert!(out == golden, "opteadm {line}:\n{out}\nexpected:\n{golden}");
}

#[test]
fn list_ports_table() {
    assert_table(&populated(), "list-ports", LIST_PORTS);
}

#[test]
fn list_layers_table() {
    assert_table(&populated(), "list-layers -p opte0", LIST_LAYERS);
}

#[test]
fn dump_layer_table() {
    assert_table(&populated(), "dump-layer -p opte0 firewall", DUMP_LAYER);
}

#[test]
fn dump_uft_table() {
    assert_table(&populated(), "dump-uft -p opte0", DUMP_UFT);
}

#[test]
fn dump_tcp_flows_table() {
    assert_table(&populated(), "dump-tcp-flows -p opte0", DUMP_TCP_FLOWS);
}

#[test]
fn paged_dump_tables() {
    assert_table(&populated(), "dump-uft -p opte0 --page-size 1", DUMP_UFT);
    assert_table(
        &populated(),
        "dump-tcp-flows -p opte0 --page-size 1",
        DUMP_TCP_FLOWS,
    );
    let s = busy();
    assert_table(&s, "dump-uft -p opte0", BUSY_UFT_OPTE0);
    assert_table(&s, "dump-uft -p opte0 --page-size 3", BUSY_UFT_OPTE0);
    assert_table(&s, "dump-uft -p opte1 --page-size 1", BUSY_UFT_OPTE1);
}

#[test]
fn paged_dumps_print_what_whole_dumps_print() {
    let s = busy();
    let uft = s.hdl.dump_uft("opte0").unwrap();
    assert_eq!((uft.in_flows.len(), uft.out_flows.len()), (0, 10));
    let uft = s.hdl.dump_uft("opte1").unwrap();
    assert_eq!((uft.in_flows.len(), uft.out_flows.len()), (4, 0));
    assert_eq!(s.hdl.dump_tcp_flows("opte0").unwrap().flows.len(), 10);
    assert_eq!(s.hdl.dump_tcp_flows("opte1").unwrap().flows.len(), 4);
    for port in ["opte0", "opte1"] {
        for cmd in ["dump-uft", "dump-tcp-flows"] {
            for json in ["", "--json "] {
                let line = format!("{json}{cmd} -p {port}");
                let whole = s.run(&line);
                for n in [1, 2, 3, 10, 4096] {
                    let paged = s.run(&format!("{line} --page-size {n}"));
                    assert!(
                        paged == whole,
                        "opteadm {line} --page-size {n}:\n{paged}\nwithout:\n{whole}"
                    );
                }
            }
        }
    }
    // The host's own errors, as without paging.
    assert_eq!(
        s.fail("dump-uft -p opte9 --page-size 2"),
        "DumpUftPage failed: port not found: opte9"
    );
    assert_eq!(
        s.fail("dump-tcp-flows -p opte9 --page-size 2"),
        "DumpTcpFlowsPage failed: port not found: opte9"
    );
}

#[test]
fn gathered_pages_are_sorted_once_each_and_must_move_forward() {
    use opte_api::{AddrPair, FlowDumpPage, InnerFlowId};
    use opteadm::run::gather_pages;
    let flow = |sport| {
        let addrs = AddrPair::V4 {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
        };
        InnerFlowId::with_ports(6, addrs, sport, 443)
    };
    let page = |flows: Vec<(InnerFlowId, &'static str)>, next| FlowDumpPage {
        limit: 64,
        num_flows: 3,
        flows,
        next,
    };
    // Out of order, and flow 3 twice (the table was rehashed between pages): its later
    // page wins.
    let mut pages = vec![
        page(vec![(flow(3), "old"), (flow(1), "a")], Some(5)),
        page(vec![(flow(2), "b"), (flow(3), "new")], Some(9)),
        page(vec![], None),
    ]
    .into_iter();
    let mut starts = Vec::new();
    let all = gather_pages(|start| {
        starts.push(start);
        Ok(pages.next().unwrap())
    })
    .unwrap();
    assert_eq!(starts, [0, 5, 9]);
    assert_eq!(
        all,
        page(vec![(flow(1), "a"), (flow(2), "b"), (flow(3), "new")], None)
    );
    // A host whose cursor stands still is not followed forever.
    let e = gather_pages(|start| Ok(page(vec![(flow(1), "a")], Some(start)))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "paged dump: the page at cursor 0 gave cursor 0, which does not move forward"
    );
}

#[test]
fn dump_v2p_table() {
    assert_table(&populated(), "dump-v2p", DUMP_V2P);
}

#[test]
fn dump_v2b_table() {
    assert_table(&populated(), "dump-v2b", DUMP_V2B);
}

#[test]
fn dump_m2p_table() {
    assert_table(&populated(), "dump-m2p", DUMP_M2P);
}

#[test]
fn dump_mcast_fwd_table() {
    assert_table(&populated(), "dump-mcast-fwd", DUMP_MCAST_FWD);
}

#[test]
fn dump_mcast_subs_table() {
    assert_table(&populated(), "dump-mcast-subs", DUMP_MCAST_SUBS);
}

#[test]
fn dump_xde_stats_table() {
    let s = populated();
    let out = s.run("dump-xde-stats");
    // The counters are the host's to define; the layout and the values are ours to check.
    let stats = s.hdl.dump_xde_stats().unwrap();
    let mut expected = Vec::new();
    print_xde_stats(&mut expected, &stats).unwrap();
    assert_eq!(out, String::from_utf8(expected).unwrap());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["XDE Counters", &"=".repeat(70)]);
    assert!(lines[2].starts_with("NAME ") && lines[2].ends_with("  VALUE"));
    let value = |section: &str, name: &str| -> u64 {
        let start = out.find(section).unwrap();
        let line = out[start..]
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert_eq!(value("XDE Counters", "tx_no_route"), 1);
    assert_eq!(value("Port opte0", "out_uft_miss"), 1);
    assert_eq!(value("Port opte0", "route_cache_error"), 1);
    assert_eq!(value("Port opte1", "out_uft_miss"), 0);
}

#[test]
fn stats_layout() {
    let stats = XdeStats {
        counters: vec![("tx_underlay".into(), 12), ("rx_no_port".into(), 3)],
        ports: vec![(
            "opte0".into(),
            vec![("in_drop".into(), 1), ("route_cache_hit".into(), 40)],
        )],
    };
    let mut out = Vec::new();
    print_xde_stats(&mut out, &stats).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), STATS);
}

/// `--json <line>` prints the response `expected`, pretty, and nothing else.
fn assert_json<T: DeserializeOwned + PartialEq + Debug>(s: &Sled, line: &str, expected: T) {
    let out = s.run(&format!("--json {line}"));
    assert!(out.starts_with("{\n  \""), "{out}");
    assert!(out.ends_with("}\n"), "{out}");
    let back: T = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{line}: {e}\n{out}"));
    assert_eq!(back, expected, "{line}");
}

#[test]
fn every_read_command_prints_its_response_as_json() {
    let s = populated();
    let h = &s.hdl;
    assert_json(&s, "list-ports", h.list_ports().unwrap());
    assert_json(&s, "list-layers -p opte0", h.list_layers("opte0").unwrap());
    assert_json(
        &s,
        "dump-layer -p opte0 firewall",
        h.dump_layer("opte0", "firewall").unwrap(),
    );
    assert_json(&s, "dump-uft -p opte0", h.dump_uft("opte0").unwrap());
    assert_json(
        &s,
        "dump-tcp-flows -p opte0",
        h.dump_tcp_flows("opte0").unwrap(),
    );
    assert_json(&s, "dump-v2p", h.dump_v2p().unwrap());
    assert_json(&s, "dump-v2b", h.dump_v2b().unwrap());
    assert_json(&s, "dump-m2p", h.dump_m2p().unwrap());
    assert_json(&s, "dump-mcast-fwd", h.dump_mcast_fwd().unwrap());
    assert_json(&s, "dump-mcast-subs", h.dump_mcast_subs().unwrap());
    assert_json(&s, "dump-xde-stats", h.dump_xde_stats().unwrap());
}

#[test]
fn json_is_the_responses_own_field_names_and_text_forms() {
    let s = populated();
    let ports = s.run("list-ports --json");
    assert!(
        ports.contains(r#""mac_addr": "A8:40:25:FA:FA:01""#),
        "{ports}"
    );
    assert!(
        ports.contains(r#""ephemeral_ip4_addr": "10.60.0.5""#),
        "{ports}"
    );
    let tcp = s.run("dump-tcp-flows -p opte0 --json");
    assert!(tcp.contains(r#""tcp_state": "SynSent""#), "{tcp}");
    assert!(tcp.contains(r#""bytes_out": 54"#), "{tcp}");
}

const LIST_PORTS: &str = r#"LINK   MAC ADDRESS        IPv4 ADDRESS  EPHEMERAL IPv4  FLOATING IPv4  IPv6 ADDRESS  EXTERNAL IPv6  FLOATING IPv6  STATE
opte0  A8:40:25:FA:FA:01  172.30.0.5    10.60.0.5       10.60.1.9      None          None           None           running
                                                        10.60.1.10

opte1  A8:40:25:FA:FA:02  172.30.0.6    None            None           None          None           None           running
"#;
const LIST_LAYERS: &str = r#"NAME      RULES IN  RULES OUT  DEF IN  DEF OUT         FLOWS
gateway   2         5          deny    deny            0
firewall  1         0          deny    stateful allow  1
router    0         2          allow   deny            0
nat       2         3          allow   allow           0
overlay   1         1          deny    deny            0
"#;
const DUMP_LAYER: &str = r#"Port opte0 - Layer firewall
======================================================================
Inbound Flows
----------------------------------------------------------------------
PROTO  SRC IP       SPORT/TY  DST IP      DPORT  HITS  ACTION
TCP    172.30.0.99  443       172.30.0.5  40000  0     no-op

Outbound Flows
----------------------------------------------------------------------
PROTO  SRC IP      SPORT/TY  DST IP       DPORT  HITS  ACTION
TCP    172.30.0.5  40000     172.30.0.99  443    0     no-op

Inbound Rules
----------------------------------------------------------------------
ID   PRI  HITS  PREDICATES          ACTION
0    10   0     inner.ip.proto=TCP  "Stateful Allow"
                inner.ulp.dst=22

DEF  --   0     --                  "deny"

Outbound Rules
----------------------------------------------------------------------
ID   PRI  HITS  PREDICATES  ACTION
DEF  --   1     --          "stateful allow"

"#;
const DUMP_UFT: &str = r#"UFT Inbound: 0/524288
----------------------------------------------------------------------
PROTO  SRC IP  SPORT/TY  DST IP  DPORT  HITS  XFORMS

UFT Outbound: 1/524288
----------------------------------------------------------------------
PROTO  SRC IP      SPORT/TY  DST IP       DPORT  HITS  XFORMS
TCP    172.30.0.5  40000     172.30.0.99  443    0     hdr: encap
"#;
const DUMP_TCP_FLOWS: &str = r#"FLOW                                  STATE     HITS  SEGS IN  SEGS OUT  BYTES IN  BYTES OUT
TCP:172.30.0.5:40000:172.30.0.99:443  SYN_SENT  0     0        1         0         54
"#;
const BUSY_UFT_OPTE0: &str = r#"UFT Inbound: 0/524288
----------------------------------------------------------------------
PROTO  SRC IP  SPORT/TY  DST IP  DPORT  HITS  XFORMS

UFT Outbound: 10/524288
----------------------------------------------------------------------
PROTO  SRC IP      SPORT/TY  DST IP       DPORT  HITS  XFORMS
TCP    172.30.0.5  41000     172.30.0.6   22     0     hdr: encap
TCP    172.30.0.5  41001     172.30.0.6   22     0     hdr: encap
TCP    172.30.0.5  41002     172.30.0.6   22     0     hdr: encap
TCP    172.30.0.5  41003     172.30.0.6   22     0     hdr: encap
TCP    172.30.0.5  40000     172.30.0.99  443    0     hdr: encap
TCP    172.30.0.5  40001     172.30.0.99  443    0     hdr: encap
TCP    172.30.0.5  40002     172.30.0.99  443    0     hdr: encap
TCP    172.30.0.5  40003     172.30.0.99  443    0     hdr: encap
TCP    172.30.0.5  40004     172.30.0.99  443    0     hdr: encap
TCP    172.30.0.5  40005     172.30.0.99  443    0     hdr: encap
"#;
const BUSY_UFT_OPTE1: &str = r#"UFT Inbound: 4/524288
----------------------------------------------------------------------
PROTO  SRC IP      SPORT/TY  DST IP      DPORT  HITS  XFORMS
TCP    172.30.0.5  41000     172.30.0.6  22     0     hdr: decap, rewrite_src_mac
TCP    172.30.0.5  41001     172.30.0.6  22     0     hdr: decap, rewrite_src_mac
TCP    172.30.0.5  41002     172.30.0.6  22     0     hdr: decap, rewrite_src_mac
TCP    172.30.0.5  41003     172.30.0.6  22     0     hdr: decap, rewrite_src_mac

UFT Outbound: 0/524288
----------------------------------------------------------------------
PROTO  SRC IP  SPORT/TY  DST IP  DPORT  HITS  XFORMS
"#;
const DUMP_V2P: &str = r#"Virtual to Physical Mappings
======================================================================

VPC 1287581
----------------------------------------------------------------------

IPv4 mappings
----------------------------------------------------------------------
VPC_IP       VPC MAC ADDR       UNDERLAY IP
172.30.0.5   A8:40:25:FA:FA:01  fd00:0:f7:101::1
172.30.0.6   A8:40:25:FA:FA:02  fd00:0:f7:101::1
172.30.0.99  A8:40:25:00:00:63  fd00:0:f7:102::1

IPv6 mappings
----------------------------------------------------------------------
VPC_IP    VPC MAC ADDR       UNDERLAY IP
fd00::99  A8:40:25:00:00:63  fd00:0:f7:102::1
"#;
const DUMP_V2B: &str = r#"Virtual to Boundary Mappings
======================================================================

IPv4 mappings
----------------------------------------------------------------------
TUNNELED PREFIX  BOUNDARY IP  VNI
0.0.0.0/0        fd00:99::1   99
0.0.0.0/0        fd00:99::2   99

IPv6 mappings
----------------------------------------------------------------------
TUNNELED PREFIX  BOUNDARY IP  VNI

"#;
const DUMP_M2P: &str = r#"Multicast to Physical Mappings (M2P)
======================================================================

IPv4 groups
----------------------------------------------------------------------
OVERLAY GROUP  UNDERLAY MCAST
239.1.1.1      ff04::e001:101

IPv6 groups
----------------------------------------------------------------------
OVERLAY GROUP  UNDERLAY MCAST

"#;
const DUMP_MCAST_FWD: &str = r#"Multicast Forwarding Table
======================================================================

UNDERLAY GROUP  NEXT HOP          VNI  REPLICATION  FILTER
----------------------------------------------------------------------
ff04::e001:101  fd00:0:f7:102::1  77   underlay     EXCLUDE() (any)

"#;
const DUMP_MCAST_SUBS: &str = r#"Multicast Subscriptions
======================================================================

UNDERLAY GROUP  PORT   FILTER
----------------------------------------------------------------------
ff04::e001:101  opte0  EXCLUDE() (any)
ff04::e001:101  opte1  EXCLUDE() (any)

"#;

const STATS: &str = r#"XDE Counters
======================================================================
NAME         VALUE
tx_underlay  12
rx_no_port   3

Port opte0
----------------------------------------------------------------------
NAME             VALUE
in_drop          1
route_cache_hit  40
"#;
