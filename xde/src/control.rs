//! Control: one entry point for every command of SPEC §3 (and our `DumpXdeStats`,
//! `DumpUftPage` and `DumpTcpFlowsPage`), in the two shapes the hosts need:
//! [`Xde::dispatch_ioctl`], the illumos ioctl's (errno, flags, body, needed length), and
//! [`Xde::dispatch`], the control socket's ([`ControlResponse`]).
//!
//! Both check the API version first, decode the request through the typed link of
//! [`oxide_vpc::api::cmd`] (so a handler cannot be written against the wrong types),
//! and run the command with control commands serialised. Every mutating command validates
//! completely before it changes anything, so a rejected command changes nothing.

use crate::core::{Underlay, Xde};
use crate::host::Host;
use crate::port::{VniMac, XdePort};
use crate::probes::HostProbes;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_int;
use opte::engine::stats::{DirStats, PortStats};
use opte_api::control::decode_body;
use opte_api::error::Os;
use opte_api::error::errno::{EBUSY, EEXIST, EINVAL, ENOENT};
use opte_api::{
    ControlRequest, ControlResponse, ListLayersResp, NoResp, OPTE_CMD_RESP_COPY_OUT, OpteCmd,
    OpteError, check_api_version,
};
use oxide_vpc::api::cmd::{self, Command, XdeStats};
use oxide_vpc::api::{CreateXdeReq, ExportPortResp, ListPortsResp};
use oxide_vpc::engine::{PortLimits, VpcPort};

/// The longest port name: a Linux interface name (IFNAMSIZ − 1) and an illumos link name
/// both fit.
pub const PORT_NAME_MAX: usize = 15;

/// The MTUs a port may have.
pub const MTU_RANGE: core::ops::RangeInclusive<u32> = 576..=9216;

/// The smallest response buffer a command runs with. Every mutating command's response
/// fits in it, so a command that changed state can always report so: with less room it is
/// refused before it runs (a read command's larger response is refused after it ran,
/// which changed nothing, and the client retries with the size it was told).
pub const RESP_CAP_MIN: usize = 64;

/// What the ioctl path copies out (SPEC §7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoctlReply {
    /// 0, or the errno the ioctl returns.
    pub errno: i32,
    /// [`OPTE_CMD_RESP_COPY_OUT`] when `body` is a serialised `OpteError`.
    pub flags: u64,
    /// What to copy into the caller's response buffer (never more than its capacity).
    pub body: Vec<u8>,
    /// `resp_len_actual`: the body's length, or with `ENOBUFS` the length needed.
    pub resp_len_actual: usize,
}

fn system(errno: i32, msg: impl Into<String>) -> OpteError {
    OpteError::System {
        errno,
        msg: msg.into(),
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, OpteError> {
    postcard::to_allocvec(v).map_err(|e| OpteError::SerCmdResp(format!("{e}")))
}

/// Decode `C`'s request, run `f`, encode its response.
fn call<C: Command>(
    req: &[u8],
    f: impl FnOnce(C::Req) -> Result<C::Resp, OpteError>,
) -> Result<Vec<u8>, OpteError> {
    let r: C::Req = decode_body(C::CMD, req)?;
    encode(&f(r)?)
}

const OK: NoResp = NoResp { unused: 0 };

/// A validated page size (at most `MAX_DUMP_PAGE`) as the engine's `usize`.
fn page_len(max: u32) -> usize {
    usize::try_from(max).unwrap_or(usize::MAX)
}

fn check_port_name(name: &str) -> Result<(), OpteError> {
    let ok = !name.is_empty()
        && name.len() <= PORT_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if ok {
        Ok(())
    } else {
        Err(OpteError::PortCreate(format!(
            "port name {name:?} must be 1 to {PORT_NAME_MAX} letters, digits, '_', '-' or \
             '.', starting with a letter"
        )))
    }
}

impl<H: Host> Xde<H> {
    /// The ioctl shape (see [`RESP_CAP_MIN`] for buffers too small to run a command with):
    /// `api_version` and `cmd` straight from the caller's envelope,
    /// `req` the copied-in request, `resp_cap` the caller's buffer size, `os` the errno
    /// numbering to answer in.
    pub fn dispatch_ioctl(
        &self,
        api_version: u64,
        cmd: c_int,
        req: &[u8],
        resp_cap: usize,
        os: Os,
    ) -> IoctlReply {
        let err = |e: OpteError| {
            let errno = e.errno_for(os);
            let body = encode(&e).unwrap_or_default();
            let n = body.len();
            if n > resp_cap {
                // Not even the error fits: say how much room it needs.
                return IoctlReply {
                    errno,
                    flags: 0,
                    body: Vec::new(),
                    resp_len_actual: n,
                };
            }
            IoctlReply {
                errno,
                flags: OPTE_CMD_RESP_COPY_OUT,
                body,
                resp_len_actual: n,
            }
        };
        if let Err(e) = check_api_version(api_version) {
            return err(e);
        }
        let Ok(cmd) = OpteCmd::try_from(cmd) else {
            return err(OpteError::BadState(format!("unknown command code {cmd}")));
        };
        if resp_cap < RESP_CAP_MIN {
            let e = OpteError::RespTooLarge {
                needed: RESP_CAP_MIN as u64,
                given: resp_cap as u64,
            };
            return IoctlReply {
                resp_len_actual: RESP_CAP_MIN,
                ..err(e)
            };
        }
        match self.execute(cmd, req) {
            Ok(body) if body.len() > resp_cap => {
                let e = OpteError::RespTooLarge {
                    needed: body.len() as u64,
                    given: resp_cap as u64,
                };
                IoctlReply {
                    resp_len_actual: body.len(),
                    ..err(e)
                }
            }
            Ok(body) => IoctlReply {
                errno: 0,
                flags: 0,
                resp_len_actual: body.len(),
                body,
            },
            Err(e) => err(e),
        }
    }

    /// The control socket's shape.
    pub fn dispatch(&self, req: &ControlRequest) -> ControlResponse {
        if let Err(e) = req.check_version() {
            return ControlResponse::Err(e);
        }
        if req.resp_cap < RESP_CAP_MIN as u64 {
            return ControlResponse::Err(OpteError::RespTooLarge {
                needed: RESP_CAP_MIN as u64,
                given: req.resp_cap,
            });
        }
        match self.execute(req.cmd, &req.req) {
            Ok(body) if body.len() as u64 > req.resp_cap => {
                ControlResponse::Err(OpteError::RespTooLarge {
                    needed: body.len() as u64,
                    given: req.resp_cap,
                })
            }
            Ok(body) => ControlResponse::Ok(body),
            Err(e) => ControlResponse::Err(e),
        }
    }

    /// Run one command on its serialised request; its serialised response. A command that
    /// changed the configuration is noted in the configuration log, which the host keeps
    /// ([`Host::save_config`]).
    pub fn execute(&self, command: OpteCmd, req: &[u8]) -> Result<Vec<u8>, OpteError> {
        let _serial = self.mgmt.lock();
        let out = self.run(command, req);
        if out.is_ok() && crate::persist::is_config(command) {
            let mut log = self.config.lock();
            log.record(command, req);
            if !self.restoring.load(core::sync::atomic::Ordering::Relaxed) {
                self.save_config(&log);
            }
        }
        out
    }

    /// Hand the configuration log to the host to keep; a failure is counted
    /// (`config_save_failed`), and the next change saves the whole log again.
    pub(crate) fn save_config(&self, log: &crate::persist::ConfigLog) {
        if self.host.save_config(&log.encode()).is_err() {
            crate::stats::bump(&self.stats.config_save_failed);
        }
    }

    fn run(&self, command: OpteCmd, req: &[u8]) -> Result<Vec<u8>, OpteError> {
        let t = &self.tables;
        match command {
            OpteCmd::ListPorts => call::<cmd::ListPorts>(req, |()| {
                Ok(ListPortsResp {
                    ports: self.ports().iter().map(|p| p.info()).collect(),
                })
            }),
            OpteCmd::AddFwRule => call::<cmd::AddFwRule>(req, |r| {
                self.with_port(&r.port_name, |v| v.add_fw_rule(&r.rule).map(|_| OK))
            }),
            OpteCmd::RemFwRule => call::<cmd::RemFwRule>(req, |r| {
                self.with_port(&r.port_name, |v| v.rem_fw_rule(r.dir, r.id).map(|_| OK))
            }),
            OpteCmd::SetFwRules => call::<cmd::SetFwRules>(req, |r| {
                self.with_port(&r.port_name, |v| v.set_fw_rules(&r.rules).map(|_| OK))
            }),
            OpteCmd::DumpTcpFlows => call::<cmd::DumpTcpFlows>(req, |r| {
                self.with_port(&r.port_name, |v| v.port().dump_tcp_flows())
            }),
            OpteCmd::DumpLayer => call::<cmd::DumpLayer>(req, |r| {
                self.with_port(&r.port_name, |v| v.port().dump_layer(&r.name))
            }),
            OpteCmd::DumpUft => call::<cmd::DumpUft>(req, |r| {
                self.with_port(&r.port_name, |v| v.port().dump_uft())
            }),
            OpteCmd::DumpUftPage => call::<cmd::DumpUftPage>(req, |r| {
                // The page size first: a bad request is refused whatever port it names.
                r.validate()?;
                self.with_port(&r.port_name, |v| {
                    v.port().dump_uft_page(r.dir, r.start, page_len(r.max))
                })
            }),
            OpteCmd::DumpTcpFlowsPage => call::<cmd::DumpTcpFlowsPage>(req, |r| {
                r.validate()?;
                self.with_port(&r.port_name, |v| {
                    v.port().dump_tcp_flows_page(r.start, page_len(r.max))
                })
            }),
            OpteCmd::ListLayers => call::<cmd::ListLayers>(req, |r| {
                self.with_port(&r.port_name, |v| {
                    Ok(ListLayersResp {
                        layers: v.port().list_layers(),
                    })
                })
            }),
            OpteCmd::ClearUft => call::<cmd::ClearUft>(req, |r| {
                self.with_port(&r.port_name, |v| v.port_mut().clear_uft().map(|_| OK))
            }),
            OpteCmd::ClearLft => call::<cmd::ClearLft>(req, |r| {
                self.with_port(&r.port_name, |v| {
                    v.port_mut().clear_lft(&r.layer_name).map(|_| OK)
                })
            }),
            OpteCmd::SetVirt2Phys => {
                call::<cmd::SetVirt2Phys>(req, |r| t.v2p.add(r.vip, r.phys).map(|_| OK))
            }
            OpteCmd::DumpVirt2Phys => call::<cmd::DumpVirt2Phys>(req, |()| Ok(t.v2p.dump())),
            OpteCmd::SetVirt2Boundary => {
                call::<cmd::SetVirt2Boundary>(req, |r| t.v2b.set(r.vip, &r.tep).map(|_| OK))
            }
            OpteCmd::ClearVirt2Boundary => {
                call::<cmd::ClearVirt2Boundary>(req, |r| t.v2b.remove(r.vip, &r.tep).map(|_| OK))
            }
            OpteCmd::DumpVirt2Boundary => {
                call::<cmd::DumpVirt2Boundary>(req, |()| Ok(t.v2b.dump()))
            }
            OpteCmd::ClearVirt2Phys => {
                call::<cmd::ClearVirt2Phys>(req, |r| t.v2p.del(r.vip, r.phys).map(|_| OK))
            }
            OpteCmd::AddRouterEntry => call::<cmd::AddRouterEntry>(req, |r| {
                self.with_port(&r.port_name, |v| {
                    v.add_router_entry(r.dest, r.target, r.class).map(|_| OK)
                })
            }),
            OpteCmd::DelRouterEntry => call::<cmd::DelRouterEntry>(req, |r| {
                self.with_port(&r.port_name, |v| {
                    v.del_router_entry(r.dest, r.target, r.class)
                })
            }),
            OpteCmd::CreateXde => call::<cmd::CreateXde>(req, |r| self.create_port(r)),
            OpteCmd::DeleteXde => call::<cmd::DeleteXde>(req, |r| self.delete_port(&r.xde_devname)),
            OpteCmd::SetXdeUnderlay => {
                call::<cmd::SetXdeUnderlay>(req, |r| self.set_underlay(r.u1, r.u2))
            }
            OpteCmd::ClearXdeUnderlay => {
                call::<cmd::ClearXdeUnderlay>(req, |()| self.clear_underlay())
            }
            OpteCmd::SetExternalIps => call::<cmd::SetExternalIps>(req, |r| {
                self.with_port(&r.port_name, |v| v.set_external_ips(&r).map(|_| OK))
            }),
            OpteCmd::AllowCidr => call::<cmd::AllowCidr>(req, |r| {
                self.with_port(&r.port_name, |v| v.allow_cidr(r.cidr, r.dir).map(|_| OK))
            }),
            OpteCmd::RemoveCidr => call::<cmd::RemoveCidr>(req, |r| {
                self.with_port(&r.port_name, |v| v.remove_cidr(r.cidr, r.dir))
            }),
            OpteCmd::AttachSubnet => call::<cmd::AttachSubnet>(req, |r| {
                self.with_port(&r.port_name, |v| v.attach_subnet(r.cidr, r.cfg).map(|_| OK))
            }),
            OpteCmd::DetachSubnet => call::<cmd::DetachSubnet>(req, |r| {
                self.with_port(&r.port_name, |v| v.detach_subnet(r.cidr))
            }),
            OpteCmd::SetMcastForwarding => call::<cmd::SetMcastForwarding>(req, |r| {
                t.mcast_fwd.set(r.underlay, &r.next_hops).map(|_| OK)
            }),
            OpteCmd::ClearMcastForwarding => call::<cmd::ClearMcastForwarding>(req, |r| {
                t.mcast_fwd.clear(r.underlay);
                Ok(OK)
            }),
            OpteCmd::DumpMcastForwarding => {
                call::<cmd::DumpMcastForwarding>(req, |()| Ok(t.mcast_fwd.dump()))
            }
            OpteCmd::McastSubscribe => call::<cmd::McastSubscribe>(req, |r| {
                self.require_port(&r.port_name)?;
                t.mcast_subs
                    .subscribe(&t.m2p, &r.port_name, r.group, r.filter)
                    .map(|_| OK)
            }),
            OpteCmd::McastUnsubscribe => call::<cmd::McastUnsubscribe>(req, |r| {
                self.require_port(&r.port_name)?;
                t.mcast_subs
                    .unsubscribe(&t.m2p, &r.port_name, r.group)
                    .map(|_| OK)
            }),
            OpteCmd::SetMcast2Phys => {
                call::<cmd::SetMcast2Phys>(req, |r| t.m2p.set(r.group, r.underlay).map(|_| OK))
            }
            OpteCmd::ClearMcast2Phys => {
                call::<cmd::ClearMcast2Phys>(req, |r| t.m2p.clear(r.group, r.underlay).map(|_| OK))
            }
            OpteCmd::DumpMcastSubscriptions => {
                call::<cmd::DumpMcastSubscriptions>(req, |()| Ok(t.mcast_subs.dump()))
            }
            OpteCmd::McastUnsubscribeAll => call::<cmd::McastUnsubscribeAll>(req, |r| {
                t.mcast_subs.unsubscribe_all(&t.m2p, r.group).map(|_| OK)
            }),
            OpteCmd::DumpMcast2Phys => call::<cmd::DumpMcast2Phys>(req, |()| Ok(t.m2p.dump())),
            OpteCmd::DumpXdeStats => call::<cmd::DumpXdeStats>(req, |()| Ok(self.xde_stats())),
            OpteCmd::ExportPort => call::<cmd::ExportPort>(req, |r| self.export_port(&r.port_name)),
            OpteCmd::ImportPort => {
                call::<cmd::ImportPort>(req, |r| self.import_port(&r.port_name, &r.state))
            }
            OpteCmd::ResumePort => call::<cmd::ResumePort>(req, |r| {
                self.with_port(&r.port_name, |v| {
                    let p = v.port_mut();
                    if p.state() != opte::engine::port::PortState::Paused {
                        return Err(OpteError::BadState(p.state().to_string()));
                    }
                    p.start();
                    Ok(OK)
                })
            }),
        }
    }

    /// `ExportPort` for the host itself (a daemon that stops to restart keeps each
    /// port's flows): pause port `name`, and its flow-state file.
    pub fn export_flows(&self, name: &str) -> Result<ExportPortResp, OpteError> {
        let _serial = self.mgmt.lock();
        self.export_port(name)
    }

    /// `ImportPort` for the host itself (a restarted daemon takes its flows back).
    pub fn import_flows(&self, name: &str, file: &[u8]) -> Result<(), OpteError> {
        let _serial = self.mgmt.lock();
        self.import_port(name, file).map(|_| ())
    }

    /// Pause port `name` and take its flow state as a flow-state file
    /// ([`crate::migrate`]).
    fn export_port(&self, name: &str) -> Result<ExportPortResp, OpteError> {
        let now = self.host().now();
        self.with_port(name, |v| {
            let state = v.port_mut().export_flows(now)?;
            let (pairs, tcp, left_behind) = (
                state.num_pairs() as u64,
                state.tcp.len() as u64,
                state.left_behind,
            );
            let body = crate::migrate::FlowStateBody {
                port: name.into(),
                cfg: v.cfg().clone(),
                state,
            };
            Ok(ExportPortResp {
                state: crate::migrate::encode(&body)?,
                pairs,
                tcp,
                left_behind,
            })
        })
    }

    /// Give port `name` the flows of a flow-state file exported by a port of the same
    /// configuration, and run it.
    fn import_port(&self, name: &str, file: &[u8]) -> Result<NoResp, OpteError> {
        let body = crate::migrate::decode(file)?;
        let now = self.host().now();
        self.with_port(name, |v| {
            if let Some(what) = crate::migrate::cfg_mismatch(&body.cfg, v.cfg()) {
                return Err(OpteError::FlowStateRefused(format!(
                    "port {} was exported with another {what} than port {name} has",
                    body.port
                )));
            }
            v.port_mut().import_flows(&body.state, now)?;
            Ok(OK)
        })
    }

    fn require_port(&self, name: &str) -> Result<Arc<XdePort>, OpteError> {
        self.port(name)
            .ok_or_else(|| OpteError::PortNotFound(name.to_string()))
    }

    fn with_port<R>(
        &self,
        name: &str,
        f: impl FnOnce(&mut VpcPort<HostProbes>) -> Result<R, OpteError>,
    ) -> Result<R, OpteError> {
        self.require_port(name)?.with_vpc(f)
    }

    fn create_port(&self, r: CreateXdeReq) -> Result<NoResp, OpteError> {
        if self.underlay.read().is_none() {
            return Err(system(EINVAL, "underlay not initialized"));
        }
        let name = r.xde_devname;
        check_port_name(&name)?;
        r.cfg.validate()?;
        let mtu = r.mtu.unwrap_or(1500);
        if !MTU_RANGE.contains(&mtu) {
            return Err(OpteError::PortCreate(format!(
                "MTU {mtu} outside {}..={}",
                MTU_RANGE.start(),
                MTU_RANGE.end()
            )));
        }
        let key = VniMac {
            vni: r.cfg.vni,
            mac: r.cfg.guest_mac,
        };
        {
            let m = self.ports.read();
            if m.by_name.contains_key(&name) {
                return Err(OpteError::PortExists(name));
            }
            if let Some(other) = m.by_key.get(&key) {
                return Err(OpteError::MacExists {
                    port: other.name().to_string(),
                    vni: key.vni,
                    mac: key.mac,
                });
            }
        }
        let mut limits = PortLimits::for_host(&r.cfg);
        if let Some(cap) = self.flow_limit() {
            for t in [&mut limits.uft, &mut limits.tcp, &mut limits.firewall] {
                *t = (*t).min(cap);
            }
        }
        let seed = self.next_seed();
        // Builds the layers and registers the guest's addresses in V2P; dropped (which
        // unregisters them) if the OS cannot make the port's device.
        let mut vpc = VpcPort::with_probes(
            name.clone(),
            r.cfg,
            mtu,
            self.tables.clone(),
            limits,
            seed,
            HostProbes,
        )?;
        self.host
            .create_port(&name, key.mac, mtu, &r.attach, r.linkid)?;
        vpc.port_mut().start();
        let port = Arc::new(XdePort::new(vpc, r.linkid));
        self.edit_ports(|m| {
            m.by_key.insert(key, port.clone());
            m.by_name.insert(name, port);
            Ok(OK)
        })
    }

    fn delete_port(&self, name: &str) -> Result<NoResp, OpteError> {
        let port = self.edit_ports(|m| {
            let port = m
                .by_name
                .remove(name)
                .ok_or_else(|| OpteError::PortNotFound(name.to_string()))?;
            m.by_key.remove(&port.key());
            Ok(port)
        })?;
        self.tables.mcast_subs.unsubscribe_port(name);
        self.host.delete_port(name);
        // The VPC port goes (and takes its V2P entries) with the last reference.
        drop(port);
        Ok(OK)
    }

    fn set_underlay(&self, u1: String, u2: String) -> Result<NoResp, OpteError> {
        if let Some(u) = self.underlay.read().as_ref() {
            return Err(system(
                EEXIST,
                format!("underlay already set to {} and {}", u.u1, u.u2),
            ));
        }
        if u1.is_empty() || u2.is_empty() || u1 == u2 {
            return Err(OpteError::BadState(format!(
                "underlay needs two different links, got {u1:?} and {u2:?}"
            )));
        }
        self.host.attach_underlay(&u1, &u2)?;
        *self.underlay.write() = Some(Underlay { u1, u2 });
        Ok(OK)
    }

    fn clear_underlay(&self) -> Result<NoResp, OpteError> {
        if self.underlay.read().is_none() {
            return Err(system(ENOENT, "underlay not set"));
        }
        let n = self.ports.read().by_name.len();
        if n > 0 {
            return Err(system(
                EBUSY,
                format!("{n} ports still use the underlay; delete them first"),
            ));
        }
        self.tables.mcast_fwd.clear_all();
        self.host.detach_underlay();
        *self.underlay.write() = None;
        Ok(OK)
    }

    /// The host's counters and each port's, for `DumpXdeStats`.
    pub fn xde_stats(&self) -> XdeStats {
        let mut counters = self.stats.snapshot();
        counters.extend(self.host.counters());
        XdeStats {
            counters,
            ports: self
                .ports()
                .iter()
                .map(|p| {
                    let st = p.with_vpc(|v| v.port().stats());
                    let rc = p.routes.lock().stats();
                    let mut c = port_counters(&st);
                    c.extend([
                        ("route_cache_hit".to_string(), rc.hit),
                        ("route_cache_miss".to_string(), rc.miss),
                        ("route_cache_refresh".to_string(), rc.refresh),
                        ("route_cache_table_full".to_string(), rc.table_full),
                        ("route_cache_error".to_string(), rc.error),
                        ("route_cache_purged".to_string(), rc.purged),
                    ]);
                    (p.name().to_string(), c)
                })
                .collect(),
        }
    }
}

macro_rules! dir_fields {
    ($d:expr, $prefix:expr, $out:ident, $($f:ident),*) => {
        $($out.push((format!("{}_{}", $prefix, stringify!($f)), $d.$f));)*
    };
}

fn dir_counters(d: &DirStats, prefix: &'static str, out: &mut Vec<(String, u64)>) {
    dir_fields!(
        d,
        prefix,
        out,
        modified,
        hairpin,
        drop,
        drop_layer,
        drop_handle_pkt,
        drop_tcp_err,
        drop_uft_full,
        drop_tcp_full,
        drop_lft_full,
        drop_action_failed,
        drop_exhausted,
        drop_transform_failed,
        drop_not_running,
        drop_vlan_tagged,
        drop_unknown_fragment,
        frag_evictions,
        uft_hit,
        uft_miss,
        uft_evictions
    );
}

/// A port's counters as `(name, value)`: `in_*`, `out_*`, then the TCP table's.
pub fn port_counters(s: &PortStats) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    dir_counters(&s.r#in, "in", &mut out);
    dir_counters(&s.out, "out", &mut out);
    out.push(("tcp_evictions".to_string(), s.tcp_evictions));
    out
}
