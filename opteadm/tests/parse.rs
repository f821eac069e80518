//! Every subcommand's command line: the names and arguments of SPEC §5, what each parses
//! to, and the lines clap must refuse.

use clap::Parser;
use opte_api::Direction;
use opteadm::Cli;
use opteadm::cli::{CidrArgs, Command as C, RouteArgs, V2bArgs, V2pArgs};
use oxide_vpc::api::{Address, FirewallAction, Ports, ProtoFilter, Replication, RouterClass};

fn parse(line: &str) -> Cli {
    Cli::try_parse_from(std::iter::once("opteadm").chain(line.split_whitespace()))
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn cmd(line: &str) -> C {
    parse(line).cmd
}

fn refused(line: &str) -> String {
    match Cli::try_parse_from(std::iter::once("opteadm").chain(line.split_whitespace())) {
        Ok(cli) => panic!("{line} parsed: {cli:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn port_and_table_commands() {
    assert!(matches!(cmd("list-ports"), C::ListPorts));
    assert!(matches!(cmd("list-layers -p opte0"), C::ListLayers { port } if port == "opte0"));
    assert!(matches!(
        cmd("dump-layer -p opte0 firewall"),
        C::DumpLayer { port, name } if port == "opte0" && name == "firewall"
    ));
    assert!(matches!(cmd("clear-uft -p opte1"), C::ClearUft { port } if port == "opte1"));
    assert!(matches!(
        cmd("clear-lft -p opte1 nat"),
        C::ClearLft { port, layer } if port == "opte1" && layer == "nat"
    ));
    assert!(matches!(
        cmd("dump-uft -p opte0"),
        C::DumpUft { port, page_size: None } if port == "opte0"
    ));
    assert!(matches!(
        cmd("dump-tcp-flows -p opte0"),
        C::DumpTcpFlows {
            page_size: None,
            ..
        }
    ));
    assert!(matches!(cmd("delete-xde opte3"), C::DeleteXde { name } if name == "opte3"));
    assert!(matches!(
        cmd("set-xde-underlay igb0 igb1"),
        C::SetXdeUnderlay { u1, u2 } if u1 == "igb0" && u2 == "igb1"
    ));
    assert!(matches!(cmd("clear-xde-underlay"), C::ClearXdeUnderlay));
    assert!(matches!(cmd("dump-xde-stats"), C::DumpXdeStats));

    assert!(refused("list-layers").contains("-p <PORT>"));
    assert!(refused("dump-layer -p opte0").contains("<NAME>"));
    assert!(refused("set-xde-underlay igb0").contains("<U2>"));
    assert!(refused("dump-everything").contains("unrecognized subcommand"));
}

#[test]
fn firewall_commands() {
    let C::AddFwRule {
        port,
        direction,
        hosts,
        protocol,
        ports,
        action,
        priority,
    } = cmd(
        "add-fw-rule -p opte0 --dir in --hosts ip=10.0.0.1 --protocol tcp --ports 22,80 \
         --action allow --priority 10",
    )
    else {
        panic!()
    };
    assert_eq!(port, "opte0");
    assert_eq!(direction, Direction::In);
    assert_eq!(hosts, Address::Ip("10.0.0.1".parse().unwrap()));
    assert_eq!(protocol, ProtoFilter::Tcp);
    assert_eq!(ports, Ports::PortList(vec![22, 80]));
    assert_eq!(action, FirewallAction::Allow);
    assert_eq!(priority, 10);
    // All of them are required.
    let full = "add-fw-rule -p opte0 --dir in --hosts any --protocol any --ports any \
                --action deny --priority 1";
    assert!(matches!(cmd(full), C::AddFwRule { .. }));
    for opt in [
        "--dir in",
        "--hosts any",
        "--protocol any",
        "--ports any",
        "--action deny",
    ] {
        let e = refused(&full.replace(opt, ""));
        assert!(e.contains("required"), "without {opt}: {e}");
    }
    assert!(refused(&full.replace("--priority 1", "--priority 70000")).contains("--priority"));
    assert!(refused(&full.replace("--action deny", "--action maybe")).contains("allow or deny"));
    assert!(refused(&full.replace("--dir in", "--dir sideways")).contains("--dir"));
    assert!(refused(&full.replace("--ports any", "--ports 0")).contains("port 0"));

    assert!(matches!(
        cmd("rm-fw-rule -p opte0 --dir out 7"),
        C::RmFwRule { port, direction: Direction::Out, id: 7 } if port == "opte0"
    ));
    assert!(refused("rm-fw-rule -p opte0 7").contains("--dir"));
    assert!(matches!(cmd("set-fw-rules -p opte0"), C::SetFwRules { port } if port == "opte0"));
}

#[test]
fn create_xde_arguments() {
    let line = "create-xde opte0 --guest-mac a8:40:25:fa:fa:37 --private-ip 172.30.0.5 \
                --vpc-subnet 172.30.0.0/22 --gateway-mac a8:40:25:ff:77:77 \
                --gateway-ip 172.30.0.1 --vpc-vni 1287581 --src-underlay-addr fd00::1";
    let C::CreateXde(a) = cmd(line) else { panic!() };
    assert_eq!(a.name, "opte0");
    assert_eq!(a.guest_mac.to_string(), "A8:40:25:FA:FA:37");
    assert_eq!(a.vpc_vni.as_u32(), 1287581);
    assert_eq!(a.mtu, None);
    assert!(!a.vmm, "a container's NIC unless --vmm");
    assert!(a.dns_servers.is_empty() && a.external.floating_ip.is_empty());
    let C::CreateXde(a) = cmd(&format!("{line} --vmm")) else {
        panic!()
    };
    assert!(a.vmm);

    let C::CreateXde(a) = cmd(&format!(
        "{line} --mtu 1400 --snat-ip 10.0.0.9 --snat-start 1024 --snat-end 2047 \
         --ephemeral-ip 10.0.0.10 --floating-ip 10.0.0.11,10.0.0.12 --floating-ip 10.0.0.13 \
         --hostname h --host-domain d.test --dns-servers 1.1.1.1,fd00::53 \
         --domain-search-list a.test,b.test"
    )) else {
        panic!()
    };
    assert_eq!(a.mtu, Some(1400));
    assert_eq!(a.external.snat_start, Some(1024));
    assert_eq!(a.external.floating_ip.len(), 3);
    assert_eq!(a.dns_servers.len(), 2);
    assert_eq!(a.domain_search_list.len(), 2);

    // Each of the seven addresses is required.
    for opt in [
        "--guest-mac",
        "--private-ip",
        "--vpc-subnet",
        "--gateway-mac",
        "--gateway-ip",
        "--vpc-vni",
        "--src-underlay-addr",
    ] {
        let words: Vec<&str> = line.split_whitespace().collect();
        let i = words.iter().position(|w| *w == opt).unwrap();
        let without: Vec<&str> = words[..i].iter().chain(&words[i + 2..]).copied().collect();
        let e = refused(&without.join(" "));
        assert!(e.contains("required") && e.contains(opt), "{opt}: {e}");
    }
    // SNAT comes whole; dual stack needs its subnet and gateway.
    assert!(refused(&format!("{line} --snat-ip 10.0.0.9")).contains("--snat-start"));
    assert!(refused(&format!("{line} --snat-start 1")).contains("--snat-ip"));
    assert!(refused(&format!("{line} --private-ipv6 fd00::5")).contains("--vpc-ipv6-subnet"));
    assert!(refused(&format!("{line} --vpc-vni 16777216")).contains("VNI"));
    assert!(refused(&format!("{line} --hostname .bad")).contains("domain name"));
}

#[test]
fn mapping_commands() {
    for (line, set) in [
        ("set-v2p 10.0.0.1 a8:40:25:00:00:01 fd00::1 99", true),
        ("clear-v2p 10.0.0.1 a8:40:25:00:00:01 fd00::1 99", false),
    ] {
        let a: V2pArgs = match (cmd(line), set) {
            (C::SetV2p(a), true) | (C::ClearV2p(a), false) => a,
            (other, _) => panic!("{other:?}"),
        };
        assert_eq!(a.vpc_ip.to_string(), "10.0.0.1");
        assert_eq!(a.underlay_ip.to_string(), "fd00::1");
        assert_eq!(a.vni.as_u32(), 99);
    }
    assert!(refused("set-v2p 10.0.0.1 a8:40:25:00:00:01 10.0.0.2 99").contains("<UNDERLAY_IP>"));

    for (line, set) in [
        ("set-v2b 0.0.0.0/0 fd00::1 fd00::2", true),
        ("clear-v2b 0.0.0.0/0 fd00::1 fd00::2", false),
    ] {
        let a: V2bArgs = match (cmd(line), set) {
            (C::SetV2b(a), true) | (C::ClearV2b(a), false) => a,
            (other, _) => panic!("{other:?}"),
        };
        assert_eq!(a.prefix.to_string(), "0.0.0.0/0");
        assert_eq!(a.tunnel_endpoint.len(), 2);
    }
    assert!(refused("set-v2b 0.0.0.0/0").contains("<TUNNEL_ENDPOINT>"));
    assert!(matches!(cmd("dump-v2p"), C::DumpV2p));
    assert!(matches!(cmd("dump-v2b"), C::DumpV2b));
}

#[test]
fn multicast_commands() {
    let C::SetM2p(a) = cmd("set-m2p 239.1.1.1 ff04::1") else {
        panic!()
    };
    assert_eq!(
        (a.group.to_string(), a.underlay.to_string()),
        ("239.1.1.1".into(), "ff04::1".into())
    );
    assert!(matches!(cmd("clear-m2p 239.1.1.1 ff04::1"), C::ClearM2p(_)));
    // The underlay group must be admin-local.
    assert!(refused("set-m2p 239.1.1.1 ff0e::1").contains("<UNDERLAY>"));
    assert!(matches!(cmd("dump-m2p"), C::DumpM2p));

    assert!(matches!(
        cmd("set-mcast-fwd ff04::1 fd00::9 both"),
        C::SetMcastFwd {
            replication: Replication::Both,
            ..
        }
    ));
    assert!(matches!(
        cmd("set-mcast-fwd ff04::1 fd00::9 External"),
        C::SetMcastFwd {
            replication: Replication::External,
            ..
        }
    ));
    assert!(refused("set-mcast-fwd ff04::1 fd00::9 sometimes").contains("<REPLICATION>"));
    assert!(matches!(
        cmd("clear-mcast-fwd ff04::1"),
        C::ClearMcastFwd { .. }
    ));
    assert!(matches!(cmd("dump-mcast-fwd"), C::DumpMcastFwd));
    assert!(matches!(cmd("dump-mcast-subs"), C::DumpMcastSubs));
    assert!(matches!(
        cmd("mcast-subscribe -p opte0 239.1.1.1"),
        C::McastSubscribe { port, .. } if port == "opte0"
    ));
    assert!(matches!(
        cmd("mcast-unsubscribe -p opte0 ff0e::1"),
        C::McastUnsubscribe { .. }
    ));
    assert!(matches!(
        cmd("mcast-unsubscribe-all 239.1.1.1"),
        C::McastUnsubscribeAll { .. }
    ));
    assert!(refused("mcast-subscribe 239.1.1.1").contains("-p <PORT>"));
}

#[test]
fn router_nat_transit_and_subnet_commands() {
    for (line, add) in [
        (
            "add-router-entry -p opte0 10.0.0.0/8 ip4=172.30.0.9 custom",
            true,
        ),
        (
            "del-router-entry -p opte0 10.0.0.0/8 ip4=172.30.0.9 custom",
            false,
        ),
    ] {
        let r: RouteArgs = match (cmd(line), add) {
            (C::AddRouterEntry(r), true) | (C::DelRouterEntry(r), false) => r,
            (other, _) => panic!("{other:?}"),
        };
        assert_eq!(r.port, "opte0");
        assert_eq!(r.target.to_string(), "ip4=172.30.0.9");
        assert_eq!(r.class, RouterClass::Custom);
    }
    assert!(refused("add-router-entry -p opte0 10.0.0.0/8 elsewhere custom").contains("<TARGET>"));
    assert!(refused("add-router-entry -p opte0 10.0.0.0/8 ig").contains("<CLASS>"));

    let C::SetExternalIps { port, external } = cmd(
        "set-external-ips -p opte0 --snat-ip 10.0.0.9 --snat-start 1 --snat-end 9 \
         --ephemeral-ip 10.0.0.10 --floating-ip 10.0.0.11",
    ) else {
        panic!()
    };
    assert_eq!(port, "opte0");
    assert_eq!(external.snat_end, Some(9));
    assert_eq!(external.floating_ip.len(), 1);
    assert!(matches!(
        cmd("set-external-ips -p opte0"),
        C::SetExternalIps { .. }
    ));

    for (line, dir) in [
        ("allow-cidr -p opte0 10.1.0.0/16", None),
        (
            "allow-cidr -p opte0 10.1.0.0/16 --dir in",
            Some(Direction::In),
        ),
        (
            "remove-cidr -p opte0 10.1.0.0/16 --dir out",
            Some(Direction::Out),
        ),
    ] {
        let a: CidrArgs = match cmd(line) {
            C::AllowCidr(a) | C::RemoveCidr(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(a.dir, dir, "{line}");
        assert_eq!(a.prefix.to_string(), "10.1.0.0/16");
    }

    assert!(matches!(
        cmd("attach-subnet -p opte0 10.2.0.0/24 -e"),
        C::AttachSubnet { external: true, .. }
    ));
    assert!(matches!(
        cmd("attach-subnet -p opte0 10.2.0.0/24 --external"),
        C::AttachSubnet { external: true, .. }
    ));
    assert!(matches!(
        cmd("attach-subnet -p opte0 10.2.0.0/24"),
        C::AttachSubnet {
            external: false,
            ..
        }
    ));
    assert!(matches!(
        cmd("detach-subnet -p opte0 10.2.0.0/24"),
        C::DetachSubnet { .. }
    ));
    assert!(refused("detach-subnet -p opte0 10.2.0.0/33").contains("<PREFIX>"));
}

#[test]
fn dumps_take_a_page_size_of_1_to_4096() {
    assert!(matches!(
        cmd("dump-uft -p opte0 --page-size 1"),
        C::DumpUft { port, page_size: Some(1) } if port == "opte0"
    ));
    assert!(matches!(
        cmd("dump-uft --page-size 4096 -p opte1"),
        C::DumpUft {
            page_size: Some(4096),
            ..
        }
    ));
    assert!(matches!(
        cmd("dump-tcp-flows -p opte0 --page-size 250"),
        C::DumpTcpFlows {
            page_size: Some(250),
            ..
        }
    ));
    assert!(parse("--json dump-tcp-flows -p opte0 --page-size 2").json);
    refused("dump-uft -p opte0 --page-size -1");
    for bad in ["0", "4097", "99999999999", "ten"] {
        for sub in ["dump-uft", "dump-tcp-flows"] {
            let e = refused(&format!("{sub} -p opte0 --page-size {bad}"));
            assert!(e.contains("--page-size <N>"), "{sub} {bad}: {e}");
        }
    }
    assert!(refused("dump-uft -p opte0 --page-size 0").contains("0 is not in 1..=4096"));
    assert!(refused("dump-uft -p opte0 --page-size").contains("--page-size <N>"));
    // Only the two flow-table dumps page.
    assert!(refused("dump-layer -p opte0 nat --page-size 1").contains("--page-size"));
    assert!(refused("dump-v2p --page-size 1").contains("--page-size"));
}

#[test]
fn global_options_go_anywhere() {
    let cli = parse("--json --socket /tmp/a.sock list-ports");
    assert!(cli.json);
    assert_eq!(
        cli.socket.as_deref(),
        Some(std::path::Path::new("/tmp/a.sock"))
    );
    let cli = parse("dump-v2p --socket /tmp/b.sock --json");
    assert!(cli.json);
    assert_eq!(
        cli.socket.as_deref(),
        Some(std::path::Path::new("/tmp/b.sock"))
    );
    let cli = parse("dump-v2p");
    assert!(!cli.json && cli.socket.is_none());
}

#[test]
fn every_subcommand_of_the_reference_is_here() {
    use clap::CommandFactory;
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for n in [
        "list-ports",
        "list-layers",
        "dump-layer",
        "clear-uft",
        "clear-lft",
        "dump-uft",
        "dump-tcp-flows",
        "dump-v2p",
        "dump-v2b",
        "add-fw-rule",
        "rm-fw-rule",
        "set-fw-rules",
        "create-xde",
        "delete-xde",
        "set-xde-underlay",
        "clear-xde-underlay",
        "set-v2p",
        "clear-v2p",
        "set-v2b",
        "clear-v2b",
        "set-m2p",
        "clear-m2p",
        "set-mcast-fwd",
        "clear-mcast-fwd",
        "dump-mcast-fwd",
        "dump-mcast-subs",
        "dump-m2p",
        "mcast-subscribe",
        "mcast-unsubscribe",
        "mcast-unsubscribe-all",
        "add-router-entry",
        "del-router-entry",
        "set-external-ips",
        "allow-cidr",
        "remove-cidr",
        "attach-subnet",
        "detach-subnet",
        "dump-xde-stats",
        // Ours: Kata's DAN file for a port, and moving a port's flow state.
        "kata-dan",
        "export-port",
        "import-port",
        "resume-port",
    ] {
        assert!(names.iter().any(|m| m == n), "missing {n}");
    }
    assert_eq!(names.len(), 42, "{names:?}");
    Cli::command().debug_assert();
}
