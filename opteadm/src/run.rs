//! What each subcommand does: build the request, call [`OpteHdl`], print the answer (a
//! table from `oxide_vpc::print`, or with `--json` the response itself).

use crate::Error;
use crate::cli::{CidrArgs, Cli, Command, RouteArgs, V2bArgs, V2pArgs};
use crate::config::vpc_cfg;
use opte_api::{Direction, DumpTcpFlowsResp, DumpUftResp, FlowDumpPage, IpCidr, Vni};
use opte_ioctl::OpteHdl;
use oxide_vpc::api::cmd::XdeStats;
use oxide_vpc::api::{
    AddFwRuleReq, AddRouterEntryReq, AttachedSubnetConfig, ClearMcast2PhysReq,
    ClearMcastForwardingReq, ClearVirt2BoundaryReq, ClearVirt2PhysReq, DEFAULT_MULTICAST_VNI,
    DelRouterEntryReq, DelRouterEntryResp, DetachSubnetResp, Filters, FirewallRule,
    McastForwardingNextHop, McastSubscribeReq, McastUnsubscribeAllReq, McastUnsubscribeReq,
    NextHopV6, PhysNet, PortAttach, RemFwRuleReq, RemoveCidrResp, SetExternalIpsReq, SetFwRulesReq,
    SetMcast2PhysReq, SetMcastForwardingReq, SetVirt2BoundaryReq, SetVirt2PhysReq, SourceFilter,
    TunnelEndpoint,
};
use oxide_vpc::print;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

/// The VNI `set-v2b` gives boundary tunnel endpoints, as the reference's opteadm does.
pub const BOUNDARY_VNI: Vni = vni24(99);

/// The VNI of `set-mcast-fwd`'s next hop: the fleet's multicast VNI.
pub const MCAST_VNI: Vni = vni24(DEFAULT_MULTICAST_VNI);

/// Width of the rules under the stats titles, as the printers' tables.
const RULE_WIDTH: usize = 70;

/// Run `cli`'s subcommand on `hdl`: `set-fw-rules` reads its rules from `stdin`; read
/// commands print to `stdout`. Mutating commands print nothing on success.
pub fn run(
    cli: Cli,
    hdl: &OpteHdl,
    stdin: &mut impl BufRead,
    stdout: &mut impl Write,
) -> Result<(), Error> {
    let json = cli.json;
    let out = stdout;
    match cli.cmd {
        Command::ListPorts => show(out, json, &hdl.list_ports()?, print::print_ports),
        Command::KataDan(a) => {
            let path = kata_dan(hdl, &a)?;
            writeln!(out, "{}", path.display())?;
            Ok(())
        }
        Command::ListLayers { port } => {
            show(out, json, &hdl.list_layers(&port)?, print::print_layers)
        }
        Command::DumpLayer { port, name } => {
            let resp = hdl.dump_layer(&port, &name)?;
            show(out, json, &resp, |w, r| print::print_layer(w, &port, r))
        }
        Command::ClearUft { port } => done(hdl.clear_uft(&port)),
        Command::ClearLft { port, layer } => done(hdl.clear_lft(&port, &layer)),
        Command::DumpUft { port, page_size } => {
            let resp = match page_size {
                None => hdl.dump_uft(&port)?,
                Some(n) => dump_uft_paged(hdl, &port, n)?,
            };
            show(out, json, &resp, print::print_uft)
        }
        Command::DumpTcpFlows { port, page_size } => {
            let resp = match page_size {
                None => hdl.dump_tcp_flows(&port)?,
                Some(n) => dump_tcp_flows_paged(hdl, &port, n)?,
            };
            show(out, json, &resp, print::print_tcp_flows)
        }
        Command::DumpV2p => show(out, json, &hdl.dump_v2p()?, print::print_v2p),
        Command::DumpV2b => show(out, json, &hdl.dump_v2b()?, print::print_v2b),
        Command::AddFwRule {
            port,
            direction,
            hosts,
            protocol,
            ports,
            action,
            priority,
        } => done(hdl.add_firewall_rule(&AddFwRuleReq {
            port_name: port,
            rule: FirewallRule {
                direction,
                filters: Filters {
                    hosts,
                    protocol,
                    ports,
                },
                action,
                priority,
            },
        })),
        Command::RmFwRule {
            port,
            direction,
            id,
        } => done(hdl.remove_firewall_rule(&RemFwRuleReq {
            port_name: port,
            dir: direction,
            id,
        })),
        Command::SetFwRules { port } => done(hdl.set_firewall_rules(&SetFwRulesReq {
            port_name: port,
            rules: read_rules(stdin)?,
        })),
        Command::CreateXde(a) => {
            let attach = match (&a.vhost_user, a.vmm) {
                // The daemon resolves a path in its own directory: give it ours.
                (Some(p), _) => PortAttach::VhostUser(
                    std::path::absolute(p)
                        .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?
                        .to_str()
                        .ok_or_else(|| Error::Usage(format!("{} is not UTF-8", p.display())))?
                        .to_string(),
                ),
                (None, true) => PortAttach::Vmm,
                (None, false) => PortAttach::Netdev,
            };
            done(hdl.create_xde_attached(&a.name, vpc_cfg(&a)?, a.mtu, attach))
        }
        Command::DeleteXde { name } => done(hdl.delete_xde(&name)),
        Command::ExportPort { name, file } => {
            let r = hdl.export_port(&name)?;
            write_whole(&file, &r.state)?;
            writeln!(
                out,
                "port {name} paused; {} flow pairs and {} TCP connections written to {}{}",
                r.pairs,
                r.tcp,
                file.display(),
                if r.left_behind > 0 {
                    format!(" ({} pairs cannot move)", r.left_behind)
                } else {
                    String::new()
                }
            )?;
            Ok(())
        }
        Command::ImportPort { name, file } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
            done(hdl.import_port(&name, bytes))
        }
        Command::ResumePort { name } => done(hdl.resume_port(&name)),
        Command::SetXdeUnderlay { u1, u2 } => done(hdl.set_xde_underlay(&u1, &u2)),
        Command::ClearXdeUnderlay => done(hdl.clear_xde_underlay()),
        Command::SetV2p(a) => {
            let (vip, phys) = v2p(a);
            done(hdl.set_v2p(&SetVirt2PhysReq { vip, phys }))
        }
        Command::ClearV2p(a) => {
            let (vip, phys) = v2p(a);
            done(hdl.clear_v2p(&ClearVirt2PhysReq { vip, phys }))
        }
        Command::SetV2b(a) => {
            let (vip, tep) = v2b(a);
            done(hdl.set_v2b(&SetVirt2BoundaryReq { vip, tep }))
        }
        Command::ClearV2b(a) => {
            let (vip, tep) = v2b(a);
            done(hdl.clear_v2b(&ClearVirt2BoundaryReq { vip, tep }))
        }
        Command::SetM2p(a) => done(hdl.set_m2p(&SetMcast2PhysReq {
            group: a.group,
            underlay: a.underlay,
        })),
        Command::ClearM2p(a) => done(hdl.clear_m2p(&ClearMcast2PhysReq {
            group: a.group,
            underlay: a.underlay,
        })),
        Command::DumpM2p => show(out, json, &hdl.dump_m2p()?, print::print_m2p),
        Command::SetMcastFwd {
            underlay,
            next_hop,
            replication,
        } => done(hdl.set_mcast_fwd(&SetMcastForwardingReq {
            underlay,
            next_hops: vec![McastForwardingNextHop {
                next_hop: NextHopV6 {
                    addr: next_hop,
                    vni: MCAST_VNI,
                },
                replication,
                source_filter: SourceFilter::default(),
            }],
        })),
        Command::ClearMcastFwd { underlay } => {
            done(hdl.clear_mcast_fwd(&ClearMcastForwardingReq { underlay }))
        }
        Command::DumpMcastFwd => show(out, json, &hdl.dump_mcast_fwd()?, print::print_mcast_fwd),
        Command::DumpMcastSubs => show(out, json, &hdl.dump_mcast_subs()?, print::print_mcast_subs),
        Command::McastSubscribe { port, group } => done(hdl.mcast_subscribe(&McastSubscribeReq {
            port_name: port,
            group,
            filter: SourceFilter::default(),
        })),
        Command::McastUnsubscribe { port, group } => {
            done(hdl.mcast_unsubscribe(&McastUnsubscribeReq {
                port_name: port,
                group,
            }))
        }
        Command::McastUnsubscribeAll { group } => {
            done(hdl.mcast_unsubscribe_all(&McastUnsubscribeAllReq { group }))
        }
        Command::AddRouterEntry(r) => done(hdl.add_router_entry(&AddRouterEntryReq {
            port_name: r.port,
            dest: r.dest,
            target: r.target,
            class: r.class,
        })),
        Command::DelRouterEntry(r) => del_router_entry(hdl, r),
        Command::SetExternalIps { port, external } => {
            let ext = external.split();
            done(hdl.set_external_ips(&SetExternalIpsReq {
                port_name: port,
                external_ips_v4: ext.v4,
                external_ips_v6: ext.v6,
                inet_gw_map: None,
            }))
        }
        Command::AllowCidr(a) => allow_cidr(hdl, a),
        Command::RemoveCidr(a) => remove_cidr(hdl, a),
        Command::AttachSubnet {
            port,
            prefix,
            external,
        } => done(hdl.attach_subnet(
            &port,
            prefix,
            AttachedSubnetConfig {
                is_external: external,
            },
        )),
        Command::DetachSubnet { port, prefix } => match hdl.detach_subnet(&port, prefix)? {
            DetachSubnetResp::Ok(_) => Ok(()),
            DetachSubnetResp::NotFound => Err(Error::Usage(format!(
                "subnet {prefix} is not attached to port {port}"
            ))),
        },
        Command::DumpXdeStats => show(out, json, &hdl.dump_xde_stats()?, print_xde_stats),
    }
}

/// `dump-uft --page-size N`: both of `port`'s unified flow tables fetched `n` entries at a
/// time (`DumpUftPage`) and gathered into the response `DumpUft` gives, so they print the
/// same: see [`gather_pages`].
pub fn dump_uft_paged(hdl: &OpteHdl, port: &str, n: u32) -> Result<DumpUftResp, Error> {
    let inbound = gather_pages(|start| hdl.dump_uft_page(port, Direction::In, start, n))?;
    let outbound = gather_pages(|start| hdl.dump_uft_page(port, Direction::Out, start, n))?;
    Ok(DumpUftResp {
        in_limit: inbound.limit,
        in_num_flows: inbound.num_flows,
        in_flows: inbound.flows,
        out_limit: outbound.limit,
        out_num_flows: outbound.num_flows,
        out_flows: outbound.flows,
    })
}

/// `dump-tcp-flows --page-size N`: `port`'s TCP flow table fetched `n` entries at a time
/// (`DumpTcpFlowsPage`) and gathered into the response `DumpTcpFlows` gives: see
/// [`gather_pages`].
pub fn dump_tcp_flows_paged(hdl: &OpteHdl, port: &str, n: u32) -> Result<DumpTcpFlowsResp, Error> {
    let table = gather_pages(|start| hdl.dump_tcp_flows_page(port, start, n))?;
    Ok(DumpTcpFlowsResp { flows: table.flows })
}

/// Every page of one table, from cursor 0 until a page has no `next`, as one page: the
/// entries sorted by flow (as the host sorts a whole dump), an entry that came twice (the
/// table was rehashed during the dump) once with what its later page said, and the limit
/// and count of the last page. A cursor that does not move forward is the host's error.
pub fn gather_pages<E>(
    mut page: impl FnMut(u64) -> Result<FlowDumpPage<E>, opte_ioctl::Error>,
) -> Result<FlowDumpPage<E>, Error> {
    let mut flows = BTreeMap::new();
    let mut start = 0;
    loop {
        let p = page(start)?;
        flows.extend(p.flows);
        match p.next {
            None => {
                return Ok(FlowDumpPage {
                    limit: p.limit,
                    num_flows: p.num_flows,
                    flows: flows.into_iter().collect(),
                    next: None,
                });
            }
            Some(next) if next > start => start = next,
            Some(next) => {
                return Err(Error::Host(format!(
                    "paged dump: the page at cursor {start} gave cursor {next}, which does \
                     not move forward"
                )));
            }
        }
    }
}

/// Write `bytes` to `path` whole: a temporary file beside it, synced, renamed over it.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    let usage = |e: io::Error| Error::Usage(format!("{}: {e}", path.display()));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(usage(e));
    }
    Ok(())
}

/// A mutating command's outcome: its response says nothing but success.
fn done<T>(r: Result<T, opte_ioctl::Error>) -> Result<(), Error> {
    r.map(drop).map_err(Error::from)
}

/// A read command's response: as pretty JSON, or as its table.
fn show<W: Write, T: Serialize>(
    out: &mut W,
    json: bool,
    resp: &T,
    table: impl FnOnce(&mut W, &T) -> io::Result<()>,
) -> Result<(), Error> {
    if json {
        serde_json::to_writer_pretty(&mut *out, resp)?;
        writeln!(out)?;
    } else {
        table(out, resp)?;
    }
    out.flush()?;
    Ok(())
}

/// The VNI of the low 24 bits of `v` (for constants, which are all below 2^24).
const fn vni24(v: u32) -> Vni {
    let [_, a, b, c] = v.to_be_bytes();
    Vni::from_be_bytes([a, b, c])
}

fn v2p(a: V2pArgs) -> (opte_api::IpAddr, PhysNet) {
    (
        a.vpc_ip,
        PhysNet {
            ether: a.vpc_mac,
            ip: a.underlay_ip,
            vni: a.vni,
        },
    )
}

fn v2b(a: V2bArgs) -> (IpCidr, Vec<TunnelEndpoint>) {
    let tep = a
        .tunnel_endpoint
        .into_iter()
        .map(|ip| TunnelEndpoint {
            ip,
            vni: BOUNDARY_VNI,
        })
        .collect();
    (a.prefix, tep)
}

/// `set-fw-rules`' input: one rule per line in text form; blank lines and lines starting
/// with `#` are skipped. A bad line is reported with its number.
pub fn read_rules(input: &mut impl BufRead) -> Result<Vec<FirewallRule>, Error> {
    let mut rules = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let rule = text
            .parse()
            .map_err(|e| Error::Usage(format!("stdin line {}: {e}", i + 1)))?;
        rules.push(rule);
    }
    Ok(rules)
}

fn del_router_entry(hdl: &OpteHdl, r: RouteArgs) -> Result<(), Error> {
    let resp = hdl.del_router_entry(&DelRouterEntryReq {
        port_name: r.port,
        dest: r.dest,
        target: r.target,
        class: r.class,
    })?;
    match resp {
        DelRouterEntryResp::Ok => Ok(()),
        DelRouterEntryResp::NotFound => Err(Error::Usage("no matching rule found".into())),
    }
}

/// Without `--dir`: inbound, then outbound; if outbound fails, inbound is withdrawn again
/// so the port is left as it was.
fn allow_cidr(hdl: &OpteHdl, a: CidrArgs) -> Result<(), Error> {
    if let Some(dir) = a.dir {
        return done(hdl.allow_cidr(&a.port, a.prefix, dir));
    }
    hdl.allow_cidr(&a.port, a.prefix, Direction::In)?;
    if let Err(e) = hdl.allow_cidr(&a.port, a.prefix, Direction::Out) {
        // Best effort: the error worth reporting is the one that stopped us.
        let _ = hdl.remove_cidr(&a.port, a.prefix, Direction::In);
        return Err(e.into());
    }
    Ok(())
}

/// Without `--dir`: inbound, then outbound, re-allowing inbound if outbound fails. Not
/// finding the prefix (in the one direction asked, or in either) is an error.
fn remove_cidr(hdl: &OpteHdl, a: CidrArgs) -> Result<(), Error> {
    let not_found = || {
        Error::Usage(format!(
            "no transit IP {} on port {}{}",
            a.prefix,
            a.port,
            a.dir.map_or(String::new(), |d| format!(" ({d})"))
        ))
    };
    let found = |r: RemoveCidrResp| matches!(r, RemoveCidrResp::Ok(_));
    if let Some(dir) = a.dir {
        return match found(hdl.remove_cidr(&a.port, a.prefix, dir)?) {
            true => Ok(()),
            false => Err(not_found()),
        };
    }
    let inbound = found(hdl.remove_cidr(&a.port, a.prefix, Direction::In)?);
    let outbound = match hdl.remove_cidr(&a.port, a.prefix, Direction::Out) {
        Ok(r) => found(r),
        Err(e) => {
            if inbound {
                let _ = hdl.allow_cidr(&a.port, a.prefix, Direction::In);
            }
            return Err(e.into());
        }
    };
    if inbound || outbound {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// `dump-xde-stats`: the host's counters, then each port's, as NAME/VALUE tables.
pub fn print_xde_stats<W: Write + ?Sized>(w: &mut W, stats: &XdeStats) -> io::Result<()> {
    writeln!(w, "XDE Counters")?;
    writeln!(w, "{}", "=".repeat(RULE_WIDTH))?;
    counter_table(w, &stats.counters)?;
    for (port, counters) in &stats.ports {
        writeln!(w, "\nPort {port}")?;
        writeln!(w, "{}", "-".repeat(RULE_WIDTH))?;
        counter_table(w, counters)?;
    }
    Ok(())
}

/// Two columns, the first padded to its widest cell plus two spaces (the printers' layout).
fn counter_table<W: Write + ?Sized>(w: &mut W, counters: &[(String, u64)]) -> io::Result<()> {
    let width = counters
        .iter()
        .map(|(n, _)| n.len())
        .chain(["NAME".len()])
        .max()
        .unwrap_or(0)
        + 2;
    writeln!(w, "{:width$}VALUE", "NAME")?;
    for (name, value) in counters {
        writeln!(w, "{name:width$}{value}")?;
    }
    Ok(())
}

/// Write the Kata DAN file of `a.port`; its path.
fn kata_dan(hdl: &OpteHdl, a: &crate::cli::KataDanArgs) -> Result<std::path::PathBuf, Error> {
    use opte_ioctl::kata::{DanConfig, DanDevice, Device, Gateway};
    if a.gateway_ip.is_none() && a.gateway_ipv6.is_none() {
        return Err(Error::Usage(
            "kata-dan needs the gateway's address: --gateway-ip and/or --gateway-ipv6".into(),
        ));
    }
    let ports = hdl.list_ports()?;
    let port = ports
        .ports
        .iter()
        .find(|p| p.name == a.port)
        .ok_or_else(|| Error::Usage(format!("no port {}", a.port)))?;
    let device = match &a.vhost_user {
        Some(p) => Device::VhostUser {
            path: std::path::absolute(p)?.to_string_lossy().into_owned(),
            queue_num: 1,
            queue_size: a.queue_size,
        },
        None => Device::HostTap {
            tap_name: a.port.clone(),
        },
    };
    let gw = Gateway {
        mac: a.gateway_mac,
        ip4: a.gateway_ip,
        ip6: a.gateway_ipv6,
    };
    let cfg = DanConfig {
        netns: a.netns.clone(),
        devices: vec![DanDevice::for_port(
            port,
            &a.guest_ifname,
            device,
            &gw,
            a.mtu,
        )],
    };
    Ok(opte_ioctl::kata::write(&a.dan_dir, &a.sandbox_id, &cfg)?)
}
