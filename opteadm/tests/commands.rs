//! Each mutating subcommand against a host core in process: what it changes, checked
//! through the host's state or a dump, and the messages of the ways it can fail.

mod common;

use common::{Sled, create_xde_line, sled};
use opte_api::{Direction, IpCidr, OpteError};
use oxide_vpc::api::{FirewallAction, IpCfg, ProtoFilter};

/// An underlay and port `opte0` (guest 1, IPv4).
fn one_port() -> Sled {
    let s = sled();
    s.run("set-xde-underlay u1 u2");
    s.run(&create_xde_line("opte0", 1, ""));
    s
}

#[test]
fn create_xde_builds_a_single_stack_ipv4_port() {
    let s = one_port();
    s.run(&create_xde_line(
        "opte1",
        2,
        "--mtu 9000 --snat-ip 10.77.77.13 --snat-start 1025 --snat-end 4096 \
         --ephemeral-ip 10.60.0.6 --floating-ip 10.60.1.1 --floating-ip 10.60.1.2,10.60.1.3 \
         --hostname web --host-domain oxide.test --dns-servers 10.1.1.1,fd00::53,10.1.1.2 \
         --domain-search-list a.test,b.test",
    ));
    let p = s.xde.port("opte1").unwrap();
    assert_eq!(p.mtu(), 9000);
    let cfg = p.cfg();
    let IpCfg::Ipv4(v4) = &cfg.ip_cfg else {
        panic!("{:?}", cfg.ip_cfg)
    };
    assert_eq!(v4.private_ip.to_string(), "172.30.0.6");
    assert_eq!(v4.gateway_ip.to_string(), "172.30.0.1");
    let snat = v4.external_ips.snat.as_ref().unwrap();
    assert_eq!(snat.external_ip.to_string(), "10.77.77.13");
    assert_eq!(snat.ports, 1025..=4096);
    assert_eq!(
        v4.external_ips.ephemeral_ip.map(|a| a.to_string()),
        Some("10.60.0.6".into())
    );
    assert_eq!(v4.external_ips.floating_ips.len(), 3);
    assert_eq!(cfg.vni.as_u32(), 1287581);
    assert_eq!(cfg.phys_ip.to_string(), "fd00:0:f7:101::1");
    assert_eq!(cfg.dhcp.hostname.unwrap().to_string(), "web");
    assert_eq!(cfg.dhcp.host_domain.unwrap().to_string(), "oxide.test");
    assert_eq!(cfg.dhcp.dns4_servers.len(), 2);
    assert_eq!(cfg.dhcp.dns6_servers.len(), 1);
    assert_eq!(cfg.dhcp.domain_search_list.len(), 2);
}

#[test]
fn create_xde_builds_ipv6_and_dual_stack_ports() {
    let s = one_port();
    s.run(
        "create-xde opte6 --guest-mac a8:40:25:fa:fa:06 --private-ip fd00::6 \
         --vpc-subnet fd00::/64 --gateway-mac a8:40:25:ff:77:77 --gateway-ip fd00::1 \
         --vpc-vni 1287581 --src-underlay-addr fd00:0:f7:101::1 --ephemeral-ip fd77::6",
    );
    let cfg = s.xde.port("opte6").unwrap().cfg();
    assert!(cfg.ipv4().is_none());
    let v6 = cfg.ipv6().unwrap();
    assert_eq!(v6.private_ip.to_string(), "fd00::6");
    assert_eq!(v6.external_ips.ephemeral_ip.unwrap().to_string(), "fd77::6");

    s.run(&create_xde_line(
        "opte2",
        2,
        "--private-ipv6 fd00::7 --vpc-ipv6-subnet fd00::/64 --gateway-ipv6 fd00::1 \
         --ephemeral-ip 10.60.0.7 --floating-ip fd77::7",
    ));
    let cfg = s.xde.port("opte2").unwrap().cfg();
    let IpCfg::DualStack { ipv4, ipv6 } = &cfg.ip_cfg else {
        panic!("{:?}", cfg.ip_cfg)
    };
    assert_eq!(
        ipv4.external_ips.ephemeral_ip.unwrap().to_string(),
        "10.60.0.7"
    );
    assert_eq!(ipv6.private_ip.to_string(), "fd00::7");
    assert_eq!(ipv6.external_ips.floating_ips[0].to_string(), "fd77::7");
}

#[test]
fn create_xde_refuses_mixed_families() {
    let s = one_port();
    let base = "create-xde opte9 --guest-mac a8:40:25:fa:fa:09 --gateway-mac a8:40:25:ff:77:77 \
                --vpc-vni 1287581 --src-underlay-addr fd00:0:f7:101::1";
    assert_eq!(
        s.fail(&format!(
            "{base} --private-ip 172.30.0.9 --vpc-subnet fd00::/64 --gateway-ip 172.30.0.1"
        )),
        "mixed IP families: --private-ip 172.30.0.9 is IPv4, --vpc-subnet fd00::/64 is not"
    );
    assert_eq!(
        s.fail(&format!(
            "{base} --private-ip fd00::9 --vpc-subnet fd00::/64 --gateway-ip 172.30.0.1"
        )),
        "mixed IP families: --private-ip fd00::9 is IPv6, --gateway-ip 172.30.0.1 is not"
    );
    assert_eq!(
        s.fail(&format!(
            "{base} --private-ip 172.30.0.9 --vpc-subnet 172.30.0.0/22 --gateway-ip 172.30.0.1 \
             --floating-ip fd77::9"
        )),
        "IPv6 external addresses need an IPv6 port (--private-ipv6)"
    );
    assert_eq!(
        s.fail(&format!(
            "{base} --private-ip fd00::9 --vpc-subnet fd00::/64 --gateway-ip fd00::1 \
             --ephemeral-ip 10.60.0.9"
        )),
        "IPv4 external addresses need an IPv4 port (--private-ip)"
    );
    // Nothing was created.
    assert_eq!(s.hdl.list_ports().unwrap().ports.len(), 1);
    // The host's refusal comes through as the host says it.
    assert_eq!(
        s.fail(&create_xde_line("opte0", 3, "")),
        "CreateXde failed: port exists: opte0"
    );
}

#[test]
fn ports_and_the_underlay_are_deleted() {
    let s = one_port();
    assert!(
        s.fail("clear-xde-underlay")
            .starts_with("ClearXdeUnderlay failed: system error")
    );
    assert_eq!(s.run("delete-xde opte0"), "");
    assert!(s.xde.port("opte0").is_none());
    assert_eq!(
        s.fail("delete-xde opte0"),
        "DeleteXde failed: port not found: opte0"
    );
    s.run("clear-xde-underlay");
    assert_eq!(s.xde.underlay(), None);
}

#[test]
fn firewall_rules_are_added_removed_and_replaced_from_stdin() {
    let s = one_port();
    s.run(
        "add-fw-rule -p opte0 --dir in --hosts subnet=10.0.0.0/8 --protocol udp --ports 53,853 \
         --action deny --priority 20",
    );
    let fw = s.hdl.dump_layer("opte0", "firewall").unwrap();
    let added = &fw.rules_in[0];
    assert_eq!(added.rule.priority, 20);
    assert!(
        added.rule.action.to_lowercase().contains("deny"),
        "{added:?}"
    );
    s.run(&format!("rm-fw-rule -p opte0 --dir in {}", added.id));
    assert!(
        s.hdl
            .dump_layer("opte0", "firewall")
            .unwrap()
            .rules_in
            .is_empty()
    );
    assert_eq!(
        s.fail(&format!("rm-fw-rule -p opte0 --dir in {}", added.id)),
        format!("RemFwRule failed: rule not found: {}", added.id)
    );

    let rules = "\
# ssh and ping from anywhere
dir=in action=allow priority=10 protocol=tcp port=22

   dir=in action=allow priority=20 protocol=icmp
# no talking to the metadata range
dir=out action=deny priority=5 hosts=subnet=169.254.0.0/16
";
    assert_eq!(s.run_with("set-fw-rules -p opte0", rules).unwrap(), "");
    let fw = s.hdl.dump_layer("opte0", "firewall").unwrap();
    let pri: Vec<u16> = fw.rules_in.iter().map(|r| r.rule.priority).collect();
    assert_eq!(pri, [10, 20]);
    assert_eq!(fw.rules_out.len(), 1);

    // A bad line names itself and changes nothing.
    let e = s
        .run_with(
            "set-fw-rules -p opte0",
            "\ndir=in action=allow priority=1\ndir=up\n",
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "stdin line 3: bad word \"dir=up\" in firewall rule: expected dir=in or dir=out"
    );
    assert_eq!(
        s.hdl
            .dump_layer("opte0", "firewall")
            .unwrap()
            .rules_in
            .len(),
        2
    );
    // An empty input clears the rules.
    s.run_with("set-fw-rules -p opte0", "# nothing\n").unwrap();
    let fw = s.hdl.dump_layer("opte0", "firewall").unwrap();
    assert!(fw.rules_in.is_empty() && fw.rules_out.is_empty());
}

#[test]
fn add_fw_rule_arguments_make_the_rule() {
    let cli = <opteadm::Cli as clap::Parser>::try_parse_from([
        "opteadm",
        "add-fw-rule",
        "-p",
        "opte0",
        "--dir",
        "OUT",
        "--hosts",
        "vni=7",
        "--protocol",
        "icmp:8",
        "--ports",
        "any",
        "--action",
        "Deny",
        "--priority",
        "65535",
    ])
    .unwrap();
    let opteadm::cli::Command::AddFwRule {
        direction,
        protocol,
        action,
        priority,
        ..
    } = cli.cmd
    else {
        panic!("{:?}", cli.cmd)
    };
    assert_eq!(direction, Direction::Out);
    assert!(matches!(protocol, ProtoFilter::Icmp(Some(_))));
    assert_eq!(action, FirewallAction::Deny);
    assert_eq!(priority, 65535);
}

#[test]
fn router_entries_are_added_and_deleted() {
    let s = one_port();
    let routes = |s: &Sled| s.hdl.dump_layer("opte0", "router").unwrap().rules_out.len();
    let before = routes(&s);
    s.run("add-router-entry -p opte0 0.0.0.0/0 ig system");
    assert_eq!(routes(&s), before + 1);
    s.run("del-router-entry -p opte0 0.0.0.0/0 ig system");
    assert_eq!(routes(&s), before);
    assert_eq!(
        s.fail("del-router-entry -p opte0 0.0.0.0/0 ig system"),
        "no matching rule found"
    );
}

#[test]
fn external_ips_are_replaced() {
    let s = one_port();
    s.run("set-external-ips -p opte0 --ephemeral-ip 10.60.0.5 --floating-ip 10.60.1.9");
    let p = &s.hdl.list_ports().unwrap().ports[0];
    assert_eq!(p.ephemeral_ip4_addr.unwrap().to_string(), "10.60.0.5");
    s.run("set-external-ips -p opte0 --snat-ip 10.77.77.13 --snat-start 1025 --snat-end 2048");
    let cfg = s.xde.port("opte0").unwrap().cfg();
    let ext = &cfg.ipv4().unwrap().external_ips;
    assert!(ext.ephemeral_ip.is_none() && ext.floating_ips.is_empty());
    assert_eq!(ext.snat.as_ref().unwrap().ports, 1025..=2048);
    // IPv6 addresses for an IPv4 port are the host's to refuse.
    assert_eq!(
        s.fail("set-external-ips -p opte0 --ephemeral-ip fd77::1"),
        format!("SetExternalIps failed: {}", OpteError::InvalidIpCfg)
    );
    // None at all: the port has none.
    s.run("set-external-ips -p opte0");
    let cfg = s.xde.port("opte0").unwrap().cfg();
    assert!(cfg.ipv4().unwrap().external_ips.snat.is_none());
}

#[test]
fn transit_cidrs_are_allowed_and_removed_in_both_directions_by_default() {
    let s = one_port();
    let transit = |s: &Sled| {
        s.xde
            .port("opte0")
            .unwrap()
            .cfg()
            .ipv4()
            .unwrap()
            .transit_ips
            .clone()
    };
    let cidr: IpCidr = "192.168.0.0/24".parse().unwrap();
    s.run("allow-cidr -p opte0 192.168.0.0/24");
    let t = transit(&s)[&cidr];
    assert!(t.allow_in && t.allow_out);
    s.run("remove-cidr -p opte0 192.168.0.0/24 --dir out");
    let t = transit(&s)[&cidr];
    assert!(t.allow_in && !t.allow_out);
    s.run("remove-cidr -p opte0 192.168.0.0/24");
    assert!(transit(&s).is_empty());
    assert_eq!(
        s.fail("remove-cidr -p opte0 192.168.0.0/24"),
        "no transit IP 192.168.0.0/24 on port opte0"
    );
    assert_eq!(
        s.fail("remove-cidr -p opte0 192.168.0.0/24 --dir in"),
        "no transit IP 192.168.0.0/24 on port opte0 (IN)"
    );
    s.run("allow-cidr -p opte0 192.168.0.0/24 --dir in");
    let t = transit(&s)[&cidr];
    assert!(t.allow_in && !t.allow_out);
}

#[test]
fn subnets_are_attached_and_detached() {
    let s = one_port();
    let attached = |s: &Sled| {
        s.xde
            .port("opte0")
            .unwrap()
            .cfg()
            .ipv4()
            .unwrap()
            .attached_subnets
            .clone()
    };
    let cidr: IpCidr = "10.200.0.0/24".parse().unwrap();
    s.run("attach-subnet -p opte0 10.200.0.0/24 --external");
    assert!(attached(&s)[&cidr].is_external);
    s.run("attach-subnet -p opte0 10.200.0.0/24");
    assert!(!attached(&s)[&cidr].is_external);
    s.run("detach-subnet -p opte0 10.200.0.0/24");
    assert!(attached(&s).is_empty());
    assert_eq!(
        s.fail("detach-subnet -p opte0 10.200.0.0/24"),
        "subnet 10.200.0.0/24 is not attached to port opte0"
    );
}

#[test]
fn v2p_and_v2b_mappings_are_set_and_cleared() {
    let s = one_port();
    let v4 = |s: &Sled| s.hdl.dump_v2p().unwrap().mappings[0].ip4.len();
    s.run("set-v2p 172.30.0.99 a8:40:25:00:00:63 fd00:0:f7:102::1 1287581");
    assert_eq!(v4(&s), 2);
    s.run("clear-v2p 172.30.0.99 a8:40:25:00:00:63 fd00:0:f7:102::1 1287581");
    assert_eq!(v4(&s), 1);

    s.run("set-v2b fd00:1::/64 fd00:99::1 fd00:99::2");
    let v2b = s.hdl.dump_v2b().unwrap().mappings;
    let teps = &v2b.ip6[0].1;
    assert_eq!(teps.len(), 2);
    assert!(teps.iter().all(|t| t.vni.as_u32() == 99));
    s.run("clear-v2b fd00:1::/64 fd00:99::1 fd00:99::2");
    assert!(s.hdl.dump_v2b().unwrap().mappings.ip6.is_empty());
}

#[test]
fn multicast_mappings_forwarding_and_subscriptions() {
    let s = one_port();
    s.run(&create_xde_line("opte1", 2, ""));
    s.run("set-m2p ff0e::1:3 ff04::e001:3");
    assert_eq!(s.hdl.dump_m2p().unwrap().ip6.len(), 1);

    s.run("set-mcast-fwd ff04::e001:3 fd00:0:f7:102::1 both");
    s.run("set-mcast-fwd ff04::e001:3 fd00:0:f7:103::1 external");
    let fwd = s.hdl.dump_mcast_fwd().unwrap().entries;
    assert_eq!(fwd[0].next_hops.len(), 2);
    assert!(
        fwd[0]
            .next_hops
            .iter()
            .all(|h| h.next_hop.vni.as_u32() == 77 && h.source_filter.accepts_any())
    );
    s.run("clear-mcast-fwd ff04::e001:3");
    assert!(s.hdl.dump_mcast_fwd().unwrap().entries.is_empty());

    s.run("mcast-subscribe -p opte0 ff0e::1:3");
    s.run("mcast-subscribe -p opte1 ff0e::1:3");
    let subs = |s: &Sled| {
        s.hdl
            .dump_mcast_subs()
            .unwrap()
            .entries
            .iter()
            .map(|e| e.subscribers.len())
            .sum::<usize>()
    };
    assert_eq!(subs(&s), 2);
    s.run("mcast-unsubscribe -p opte0 ff0e::1:3");
    assert_eq!(subs(&s), 1);
    s.run("mcast-unsubscribe-all ff0e::1:3");
    assert_eq!(subs(&s), 0);

    s.run("clear-m2p ff0e::1:3 ff04::e001:3");
    assert!(s.hdl.dump_m2p().unwrap().ip6.is_empty());
}

#[test]
fn flow_tables_are_cleared() {
    let s = one_port();
    s.run("add-router-entry -p opte0 172.30.0.0/22 sub4=172.30.0.0/22 system");
    s.run("set-v2p 172.30.0.99 a8:40:25:00:00:63 fd00:0:f7:102::1 1287581");
    s.guest_syn("opte0", 1, 40000, "172.30.0.99", 443, 1);
    assert_eq!(s.hdl.dump_uft("opte0").unwrap().out_num_flows, 1);
    s.run("clear-uft -p opte0");
    assert_eq!(s.hdl.dump_uft("opte0").unwrap().out_num_flows, 0);
    let lft = |s: &Sled| s.hdl.dump_layer("opte0", "firewall").unwrap().ft_out.len();
    assert_eq!(lft(&s), 1);
    s.run("clear-lft -p opte0 firewall");
    assert_eq!(lft(&s), 0);
    assert_eq!(
        s.fail("clear-lft -p opte0 nope"),
        "ClearLft failed: layer not found: nope"
    );
}

#[test]
fn kata_dan_writes_the_ports_nic_for_kata_and_says_where() {
    let s = one_port();
    let dir = std::env::temp_dir().join(format!("opteadm-dan-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let out = s.run(&format!(
        "kata-dan opte0 --sandbox-id sb1 --dan-dir {d} --netns /var/run/netns/sb1 \
         --gateway-ip 172.30.0.1 --mtu 1450"
    ));
    let vu = s.run(&format!(
        "kata-dan opte0 --sandbox-id sb2 --dan-dir {d} --gateway-ip 172.30.0.1 \
         --vhost-user /run/opte0.sock --queue-size 256"
    ));
    let no_gw = s.fail(&format!("kata-dan opte0 --sandbox-id sb3 --dan-dir {d}"));
    let no_port = s.fail(&format!(
        "kata-dan nope --sandbox-id sb3 --dan-dir {d} --gateway-ip 172.30.0.1"
    ));
    let bad_id = s.fail(&format!(
        "kata-dan opte0 --sandbox-id ../x --dan-dir {d} --gateway-ip 172.30.0.1"
    ));
    let read = |id: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(format!("{id}.json"))).unwrap()).unwrap()
    };
    let (sb1, sb2) = (read("sb1"), read("sb2"));
    let left = std::fs::read_dir(&dir).unwrap().count();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.trim(), format!("{d}/sb1.json"));
    assert_eq!(vu.trim(), format!("{d}/sb2.json"));
    assert_eq!(left, 2);
    assert_eq!(sb1["netns"], "/var/run/netns/sb1");
    let dev = &sb1["devices"][0];
    assert_eq!(dev["name"], "eth0");
    assert_eq!(dev["guest_mac"], "a8:40:25:fa:fa:01");
    assert_eq!(
        dev["device"],
        serde_json::json!({"type": "host-tap", "tap_name": "opte0"})
    );
    let ni = &dev["network_info"];
    assert_eq!(
        ni["interface"]["ip_addresses"],
        serde_json::json!(["172.30.0.5/32"])
    );
    assert_eq!(ni["interface"]["mtu"], 1450);
    assert_eq!(ni["routes"][1]["gateway"], "172.30.0.1");
    assert_eq!(ni["neighbors"][0]["hardware_addr"], "a8:40:25:ff:77:77");
    assert_eq!(
        sb2["devices"][0]["device"],
        serde_json::json!({"type": "vhost-user", "path": "/run/opte0.sock",
            "queue_num": 1, "queue_size": 256})
    );
    assert!(no_gw.contains("--gateway-ip"), "{no_gw}");
    assert!(no_port.contains("no port nope"), "{no_port}");
    assert!(bad_id.contains("not a sandbox ID"), "{bad_id}");
}

#[test]
fn export_port_writes_the_flow_state_and_import_port_takes_it_elsewhere() {
    let a = one_port();
    a.run("add-router-entry -p opte0 172.30.0.0/22 sub4=172.30.0.0/22 system");
    a.run("set-v2p 172.30.0.99 a8:40:25:00:00:63 fd00:0:f7:102::1 1287581");
    a.guest_syn("opte0", 1, 40000, "172.30.0.99", 443, 1);
    let dir = std::env::temp_dir().join(format!("opteadm-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("opte0.flows");
    let out = a.run(&format!("export-port opte0 {}", file.display()));
    assert!(
        out.contains("port opte0 paused") && out.contains("1 TCP connections"),
        "{out}"
    );
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..8], b"OPTEFLOW");
    // Nothing but the file is left in the directory (the write went through a rename).
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let listed = a.run("list-ports");
    assert!(listed.contains("paused"), "{listed}");

    // Another sled: the same guest, another underlay address.
    let b = sled();
    b.run("set-xde-underlay u1 u2");
    b.run(&create_xde_line("opte0", 1, "").replace("fd00:0:f7:101::1", "fd00:0:f7:102::1"));
    b.run(&format!("import-port opte0 {}", file.display()));
    let tcp = b.run("dump-tcp-flows -p opte0");
    assert!(tcp.contains("172.30.0.99"), "{tcp}");
    // Into a port that now holds flows, or one of another guest: refused, and said why.
    let e = b.fail(&format!("import-port opte0 {}", file.display()));
    assert!(e.contains("already holds"), "{e}");
    b.run(&create_xde_line("opte1", 2, ""));
    let e = b.fail(&format!("import-port opte1 {}", file.display()));
    assert!(e.contains("another guest MAC"), "{e}");
    let e = b.fail("import-port opte1 /nonexistent/flows");
    assert!(e.contains("/nonexistent/flows"), "{e}");

    // The exporter resumes (the migration was abandoned).
    a.run("resume-port opte0");
    assert!(a.run("list-ports").contains("running"));
    let e = a.fail("resume-port opte0");
    assert!(e.contains("running"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
