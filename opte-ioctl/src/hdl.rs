//! [`OpteHdl`]: one method per control command, all built on [`OpteHdl::run`].
//!
//! `run` is the only place that serialises a request, grows the response buffer and turns
//! the host's answer into a typed value or an [`Error`]; the methods only build the
//! request body. The command's types come from [`oxide_vpc::api::cmd`], the same typed
//! link the host dispatches through, so a method cannot send or expect the wrong type.

use crate::Error;
use crate::transport::Transport;
use opte_api::{
    API_VERSION, ClearLftReq, ClearUftReq, ControlRequest, ControlResponse, Direction,
    DumpLayerReq, DumpLayerResp, DumpTcpFlowsPageReq, DumpTcpFlowsPageResp, DumpTcpFlowsReq,
    DumpTcpFlowsResp, DumpUftPageReq, DumpUftPageResp, DumpUftReq, DumpUftResp, IpCidr,
    ListLayersReq, ListLayersResp, NoResp, OpteError, SetXdeUnderlayReq,
};
use oxide_vpc::api::cmd::{self, Command, XdeStats};
use oxide_vpc::api::{
    AddFwRuleReq, AddRouterEntryReq, AllowCidrReq, AttachSubnetReq, AttachedSubnetConfig,
    ClearMcast2PhysReq, ClearMcastForwardingReq, ClearVirt2BoundaryReq, ClearVirt2PhysReq,
    CreateXdeReq, DelRouterEntryReq, DelRouterEntryResp, DeleteXdeReq, DetachSubnetReq,
    DetachSubnetResp, DumpMcast2PhysResp, DumpMcastForwardingResp, DumpMcastSubscriptionsResp,
    DumpVirt2BoundaryResp, DumpVirt2PhysResp, ExportPortReq, ExportPortResp, ImportPortReq,
    ListPortsResp, McastSubscribeReq, McastUnsubscribeAllReq, McastUnsubscribeReq, PortAttach,
    RemFwRuleReq, RemoveCidrReq, RemoveCidrResp, ResumePortReq, SetExternalIpsReq, SetFwRulesReq,
    SetMcast2PhysReq, SetMcastForwardingReq, SetVirt2BoundaryReq, SetVirt2PhysReq, VpcCfg,
};

/// The response buffer offered first: 16 KiB, as the reference client does.
pub const INITIAL_RESP_CAP: u64 = 16 * 1024;

/// Room added to the length a too-large response needed, in case it grows before the
/// command runs again.
pub const RESP_CAP_SLACK: u64 = 4096;

/// Attempts at a command whose response keeps outgrowing the buffer.
pub const MAX_ATTEMPTS: u32 = 3;

/// A handle on a host's control interface.
pub struct OpteHdl {
    transport: Box<dyn Transport>,
}

impl std::fmt::Debug for OpteHdl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpteHdl")
            .field("peer", &self.transport.peer())
            .finish_non_exhaustive()
    }
}

impl OpteHdl {
    /// A handle that talks through `transport`.
    pub fn new(transport: impl Transport + 'static) -> Self {
        Self {
            transport: Box::new(transport),
        }
    }

    /// This system's host: the daemon's socket ([`crate::UnixTransport::from_env`]), or on
    /// illumos the driver's control device.
    pub fn open() -> Result<Self, Error> {
        #[cfg(target_os = "illumos")]
        {
            Ok(Self::new(crate::IoctlTransport::open()?))
        }
        #[cfg(not(target_os = "illumos"))]
        {
            Ok(Self::new(crate::UnixTransport::from_env()))
        }
    }

    /// Run command `C` with request `req`.
    ///
    /// The response buffer starts at [`INITIAL_RESP_CAP`]; when the host answers that the
    /// response needs more, the command is sent again with that much plus
    /// [`RESP_CAP_SLACK`], up to [`MAX_ATTEMPTS`] times in all. (The command runs again each
    /// time; only read commands have responses that can outgrow the buffer.)
    pub fn run<C: Command>(&self, req: &C::Req) -> Result<C::Resp, Error> {
        let cmd = C::CMD;
        let body = postcard::to_allocvec(req).map_err(|source| Error::ReqSer { cmd, source })?;
        let mut creq = ControlRequest::new(cmd, body, INITIAL_RESP_CAP);
        for _ in 0..MAX_ATTEMPTS {
            match self.transport.call(&creq)? {
                ControlResponse::Ok(bytes) => return decode_resp::<C>(&bytes),
                ControlResponse::Err(OpteError::RespTooLarge { needed, .. }) => {
                    creq.resp_cap = needed.saturating_add(RESP_CAP_SLACK);
                }
                ControlResponse::Err(OpteError::BadApiVersion { user, kernel }) => {
                    return Err(Error::BadApiVersion {
                        client: user,
                        server: kernel,
                        peer: self.transport.peer(),
                    });
                }
                ControlResponse::Err(e) => return Err(Error::CommandError(cmd, e)),
            }
        }
        Err(Error::MaxAttempts(cmd, MAX_ATTEMPTS))
    }

    /// The API version this client speaks.
    pub const fn api_version(&self) -> u64 {
        API_VERSION
    }

    // Ports.

    /// Every port of the host.
    pub fn list_ports(&self) -> Result<ListPortsResp, Error> {
        self.run::<cmd::ListPorts>(&())
    }

    /// Create port `name` with configuration `cfg` (MTU 1500 if `None`).
    ///
    /// The link id is 0: the Linux daemon has no datalink registry, and on illumos this
    /// client does not (yet) allocate one from dlmgmtd as the reference's does.
    pub fn create_xde(&self, name: &str, cfg: VpcCfg, mtu: Option<u32>) -> Result<NoResp, Error> {
        self.create_xde_attached(name, cfg, mtu, PortAttach::Netdev)
    }

    /// Create port `name`, its guest attaching as `attach` says (a container's NIC, or a
    /// VMM's TAP).
    pub fn create_xde_attached(
        &self,
        name: &str,
        cfg: VpcCfg,
        mtu: Option<u32>,
        attach: PortAttach,
    ) -> Result<NoResp, Error> {
        self.run::<cmd::CreateXde>(&CreateXdeReq {
            linkid: 0,
            xde_devname: name.into(),
            cfg,
            mtu,
            attach,
        })
    }

    /// Delete port `name`.
    pub fn delete_xde(&self, name: &str) -> Result<NoResp, Error> {
        self.run::<cmd::DeleteXde>(&DeleteXdeReq {
            xde_devname: name.into(),
        })
    }

    /// Bind the two underlay links.
    pub fn set_xde_underlay(&self, u1: &str, u2: &str) -> Result<NoResp, Error> {
        self.run::<cmd::SetXdeUnderlay>(&SetXdeUnderlayReq {
            u1: u1.into(),
            u2: u2.into(),
        })
    }

    /// Unbind the underlay links (no port may exist).
    pub fn clear_xde_underlay(&self) -> Result<NoResp, Error> {
        self.run::<cmd::ClearXdeUnderlay>(&())
    }

    /// The host's counters and each port's.
    pub fn dump_xde_stats(&self) -> Result<XdeStats, Error> {
        self.run::<cmd::DumpXdeStats>(&())
    }

    /// Pause `port` and take its flow state (a flow-state file's bytes, and what is in
    /// it).
    pub fn export_port(&self, port: &str) -> Result<ExportPortResp, Error> {
        self.run::<cmd::ExportPort>(&ExportPortReq {
            port_name: port.into(),
        })
    }

    /// Give `port` (which holds no flows yet) the flow state `file` another port of the
    /// same configuration exported, and run it.
    pub fn import_port(&self, port: &str, file: Vec<u8>) -> Result<NoResp, Error> {
        self.run::<cmd::ImportPort>(&ImportPortReq {
            port_name: port.into(),
            state: file,
        })
    }

    /// Run `port` again after an export (a migration that did not happen).
    pub fn resume_port(&self, port: &str) -> Result<NoResp, Error> {
        self.run::<cmd::ResumePort>(&ResumePortReq {
            port_name: port.into(),
        })
    }

    // Layers and flow tables.

    /// A summary of `port`'s layers.
    pub fn list_layers(&self, port: &str) -> Result<ListLayersResp, Error> {
        self.run::<cmd::ListLayers>(&ListLayersReq {
            port_name: port.into(),
        })
    }

    /// `port`'s layer `layer`: its rules, default actions and flow tables.
    pub fn dump_layer(&self, port: &str, layer: &str) -> Result<DumpLayerResp, Error> {
        self.run::<cmd::DumpLayer>(&DumpLayerReq {
            port_name: port.into(),
            name: layer.into(),
        })
    }

    /// `port`'s unified flow tables.
    pub fn dump_uft(&self, port: &str) -> Result<DumpUftResp, Error> {
        self.run::<cmd::DumpUft>(&DumpUftReq {
            port_name: port.into(),
        })
    }

    /// `port`'s TCP flow table.
    pub fn dump_tcp_flows(&self, port: &str) -> Result<DumpTcpFlowsResp, Error> {
        self.run::<cmd::DumpTcpFlows>(&DumpTcpFlowsReq {
            port_name: port.into(),
        })
    }

    /// One page of `port`'s unified flow table of direction `dir`: at most `max` entries
    /// (1 to [`opte_api::MAX_DUMP_PAGE`]) from cursor `start`. A dump starts at 0 and
    /// passes each page's `next` until it is `None`; entries come in table order.
    pub fn dump_uft_page(
        &self,
        port: &str,
        dir: Direction,
        start: u64,
        max: u32,
    ) -> Result<DumpUftPageResp, Error> {
        self.run::<cmd::DumpUftPage>(&DumpUftPageReq {
            port_name: port.into(),
            dir,
            start,
            max,
        })
    }

    /// One page of `port`'s TCP flow table, like [`Self::dump_uft_page`].
    pub fn dump_tcp_flows_page(
        &self,
        port: &str,
        start: u64,
        max: u32,
    ) -> Result<DumpTcpFlowsPageResp, Error> {
        self.run::<cmd::DumpTcpFlowsPage>(&DumpTcpFlowsPageReq {
            port_name: port.into(),
            start,
            max,
        })
    }

    /// Clear both of `port`'s unified flow tables.
    pub fn clear_uft(&self, port: &str) -> Result<NoResp, Error> {
        self.run::<cmd::ClearUft>(&ClearUftReq {
            port_name: port.into(),
        })
    }

    /// Clear the flow table of `port`'s layer `layer`.
    pub fn clear_lft(&self, port: &str, layer: &str) -> Result<NoResp, Error> {
        self.run::<cmd::ClearLft>(&ClearLftReq {
            port_name: port.into(),
            layer_name: layer.into(),
        })
    }

    // Firewall.

    /// Add one firewall rule.
    pub fn add_firewall_rule(&self, req: &AddFwRuleReq) -> Result<NoResp, Error> {
        self.run::<cmd::AddFwRule>(req)
    }

    /// Remove a firewall rule by direction and id.
    pub fn remove_firewall_rule(&self, req: &RemFwRuleReq) -> Result<NoResp, Error> {
        self.run::<cmd::RemFwRule>(req)
    }

    /// Replace all of a port's firewall rules, both directions.
    pub fn set_firewall_rules(&self, req: &SetFwRulesReq) -> Result<NoResp, Error> {
        self.run::<cmd::SetFwRules>(req)
    }

    // Router.

    /// Add a router entry.
    pub fn add_router_entry(&self, req: &AddRouterEntryReq) -> Result<NoResp, Error> {
        self.run::<cmd::AddRouterEntry>(req)
    }

    /// Delete a router entry; `NotFound` if the port has no such entry.
    pub fn del_router_entry(&self, req: &DelRouterEntryReq) -> Result<DelRouterEntryResp, Error> {
        self.run::<cmd::DelRouterEntry>(req)
    }

    // NAT, transit IPs and attached subnets.

    /// Replace a port's external IP configuration.
    pub fn set_external_ips(&self, req: &SetExternalIpsReq) -> Result<NoResp, Error> {
        self.run::<cmd::SetExternalIps>(req)
    }

    /// Let `port` carry traffic for `cidr` in direction `dir` (a transit IP).
    pub fn allow_cidr(&self, port: &str, cidr: IpCidr, dir: Direction) -> Result<NoResp, Error> {
        self.run::<cmd::AllowCidr>(&AllowCidrReq {
            port_name: port.into(),
            cidr,
            dir,
        })
    }

    /// Withdraw a transit IP; `NotFound` if `port` had none for `cidr` in `dir`.
    pub fn remove_cidr(
        &self,
        port: &str,
        cidr: IpCidr,
        dir: Direction,
    ) -> Result<RemoveCidrResp, Error> {
        self.run::<cmd::RemoveCidr>(&RemoveCidrReq {
            port_name: port.into(),
            cidr,
            dir,
        })
    }

    /// Attach subnet `cidr` to `port`.
    pub fn attach_subnet(
        &self,
        port: &str,
        cidr: IpCidr,
        cfg: AttachedSubnetConfig,
    ) -> Result<NoResp, Error> {
        self.run::<cmd::AttachSubnet>(&AttachSubnetReq {
            port_name: port.into(),
            cidr,
            cfg,
        })
    }

    /// Detach subnet `cidr` from `port`; `NotFound` if it was not attached.
    pub fn detach_subnet(&self, port: &str, cidr: IpCidr) -> Result<DetachSubnetResp, Error> {
        self.run::<cmd::DetachSubnet>(&DetachSubnetReq {
            port_name: port.into(),
            cidr,
        })
    }

    // Virtual-to-physical and virtual-to-boundary mappings.

    /// Add a V2P mapping.
    pub fn set_v2p(&self, req: &SetVirt2PhysReq) -> Result<NoResp, Error> {
        self.run::<cmd::SetVirt2Phys>(req)
    }

    /// Remove a V2P mapping.
    pub fn clear_v2p(&self, req: &ClearVirt2PhysReq) -> Result<NoResp, Error> {
        self.run::<cmd::ClearVirt2Phys>(req)
    }

    /// Every V2P mapping, by VPC.
    pub fn dump_v2p(&self) -> Result<DumpVirt2PhysResp, Error> {
        self.run::<cmd::DumpVirt2Phys>(&())
    }

    /// Add boundary tunnel endpoints for a prefix.
    pub fn set_v2b(&self, req: &SetVirt2BoundaryReq) -> Result<NoResp, Error> {
        self.run::<cmd::SetVirt2Boundary>(req)
    }

    /// Remove boundary tunnel endpoints of a prefix.
    pub fn clear_v2b(&self, req: &ClearVirt2BoundaryReq) -> Result<NoResp, Error> {
        self.run::<cmd::ClearVirt2Boundary>(req)
    }

    /// Every V2B mapping.
    pub fn dump_v2b(&self) -> Result<DumpVirt2BoundaryResp, Error> {
        self.run::<cmd::DumpVirt2Boundary>(&())
    }

    // Multicast.

    /// Map an overlay multicast group to an underlay group.
    pub fn set_m2p(&self, req: &SetMcast2PhysReq) -> Result<NoResp, Error> {
        self.run::<cmd::SetMcast2Phys>(req)
    }

    /// Remove an overlay-to-underlay multicast mapping.
    pub fn clear_m2p(&self, req: &ClearMcast2PhysReq) -> Result<NoResp, Error> {
        self.run::<cmd::ClearMcast2Phys>(req)
    }

    /// Every M2P mapping.
    pub fn dump_m2p(&self) -> Result<DumpMcast2PhysResp, Error> {
        self.run::<cmd::DumpMcast2Phys>(&())
    }

    /// Add or update next hops of an underlay group.
    pub fn set_mcast_fwd(&self, req: &SetMcastForwardingReq) -> Result<NoResp, Error> {
        self.run::<cmd::SetMcastForwarding>(req)
    }

    /// Remove an underlay group's forwarding entry.
    pub fn clear_mcast_fwd(&self, req: &ClearMcastForwardingReq) -> Result<NoResp, Error> {
        self.run::<cmd::ClearMcastForwarding>(req)
    }

    /// The multicast forwarding table.
    pub fn dump_mcast_fwd(&self) -> Result<DumpMcastForwardingResp, Error> {
        self.run::<cmd::DumpMcastForwarding>(&())
    }

    /// Every port's multicast subscriptions, by underlay group.
    pub fn dump_mcast_subs(&self) -> Result<DumpMcastSubscriptionsResp, Error> {
        self.run::<cmd::DumpMcastSubscriptions>(&())
    }

    /// Subscribe a port to a group.
    pub fn mcast_subscribe(&self, req: &McastSubscribeReq) -> Result<NoResp, Error> {
        self.run::<cmd::McastSubscribe>(req)
    }

    /// Unsubscribe a port from a group.
    pub fn mcast_unsubscribe(&self, req: &McastUnsubscribeReq) -> Result<NoResp, Error> {
        self.run::<cmd::McastUnsubscribe>(req)
    }

    /// Unsubscribe every port from a group.
    pub fn mcast_unsubscribe_all(&self, req: &McastUnsubscribeAllReq) -> Result<NoResp, Error> {
        self.run::<cmd::McastUnsubscribeAll>(req)
    }
}

/// Exactly one `C::Resp` from all of `bytes`.
fn decode_resp<C: Command>(bytes: &[u8]) -> Result<C::Resp, Error> {
    let deser = |msg: String| Error::RespDeser { cmd: C::CMD, msg };
    let (resp, rest) = postcard::take_from_bytes(bytes).map_err(|e| deser(e.to_string()))?;
    if rest.is_empty() {
        Ok(resp)
    } else {
        Err(deser(format!(
            "{} bytes left over after the response",
            rest.len()
        )))
    }
}
