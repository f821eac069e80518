//! Request and response bodies of the VPC commands (SPEC §3 command table). The host decodes
//! these from the control envelope and calls the matching operation in
//! [`crate::engine::control`].

use super::{
    AttachedSubnetConfig, ExternalIpCfg, FirewallRule, GuestPhysAddr, InternetGatewayMap,
    McastForwardingNextHop, PhysNet, RouterClass, RouterTarget, SourceFilter, TunnelEndpoint,
    VpcCfg,
};
use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use opte_api::{
    Direction, IpAddr, IpCidr, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr, MacAddr, MulticastUnderlay,
    RuleId, Vni,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateXdeReq {
    pub linkid: u32,
    pub xde_devname: String,
    pub cfg: VpcCfg,
    pub mtu: Option<u32>,
    /// How the guest attaches to the port's device, where the host offers a choice.
    pub attach: PortAttach,
}

/// How a guest attaches to its port on a host that offers a choice: the Linux daemon,
/// whose port is a TAP device. (On illumos a port is always a MAC client's link, and
/// this is ignored.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortAttach {
    /// The host holds the TAP's file descriptor and the network device is the guest's
    /// NIC, with the guest's MAC: a container's, moved into its network namespace.
    #[default]
    Netdev,
    /// The TAP is left for a virtual machine monitor to open by name (QEMU
    /// `-netdev tap,ifname=NAME`); the host sends and receives on the network device.
    Vmm,
    /// No device: the host serves the vhost-user protocol on a Unix socket at this path,
    /// as the backend of a VM's virtio-net device (QEMU `-chardev socket,path=PATH
    /// -netdev vhost-user,chardev=...`), sharing the guest's memory.
    VhostUser(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteXdeReq {
    pub xde_devname: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    pub name: String,
    pub mac_addr: MacAddr,
    pub ip4_addr: Option<Ipv4Addr>,
    pub ephemeral_ip4_addr: Option<Ipv4Addr>,
    pub floating_ip4_addrs: Option<Vec<Ipv4Addr>>,
    pub ip6_addr: Option<Ipv6Addr>,
    pub ephemeral_ip6_addr: Option<Ipv6Addr>,
    pub floating_ip6_addrs: Option<Vec<Ipv6Addr>>,
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPortsResp {
    pub ports: Vec<PortInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetVirt2PhysReq {
    pub vip: IpAddr,
    pub phys: PhysNet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearVirt2PhysReq {
    pub vip: IpAddr,
    pub phys: PhysNet,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcMapResp {
    pub vni: Vni,
    pub ip4: Vec<(Ipv4Addr, GuestPhysAddr)>,
    pub ip6: Vec<(Ipv6Addr, GuestPhysAddr)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpVirt2PhysResp {
    pub mappings: Vec<VpcMapResp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetVirt2BoundaryReq {
    pub vip: IpCidr,
    pub tep: Vec<TunnelEndpoint>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearVirt2BoundaryReq {
    pub vip: IpCidr,
    pub tep: Vec<TunnelEndpoint>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2bMapResp {
    pub ip4: Vec<(Ipv4Cidr, BTreeSet<TunnelEndpoint>)>,
    pub ip6: Vec<(Ipv6Cidr, BTreeSet<TunnelEndpoint>)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpVirt2BoundaryResp {
    pub mappings: V2bMapResp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMcast2PhysReq {
    pub group: IpAddr,
    pub underlay: MulticastUnderlay,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearMcast2PhysReq {
    pub group: IpAddr,
    pub underlay: MulticastUnderlay,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpMcast2PhysResp {
    pub ip4: Vec<(Ipv4Addr, MulticastUnderlay)>,
    pub ip6: Vec<(Ipv6Addr, MulticastUnderlay)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddRouterEntryReq {
    pub port_name: String,
    pub dest: IpCidr,
    pub target: RouterTarget,
    pub class: RouterClass,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelRouterEntryReq {
    pub port_name: String,
    pub dest: IpCidr,
    pub target: RouterTarget,
    pub class: RouterClass,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DelRouterEntryResp {
    Ok,
    NotFound,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMcastForwardingReq {
    pub underlay: MulticastUnderlay,
    pub next_hops: Vec<McastForwardingNextHop>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearMcastForwardingReq {
    pub underlay: MulticastUnderlay,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McastForwardingEntry {
    pub underlay: MulticastUnderlay,
    pub next_hops: Vec<McastForwardingNextHop>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpMcastForwardingResp {
    pub entries: Vec<McastForwardingEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McastSubscribeReq {
    pub port_name: String,
    pub group: IpAddr,
    #[serde(default)]
    pub filter: SourceFilter,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McastUnsubscribeReq {
    pub port_name: String,
    pub group: IpAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McastUnsubscribeAllReq {
    pub group: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McastSubscriberEntry {
    pub port: String,
    pub filter: SourceFilter,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McastSubscriptionEntry {
    pub underlay: MulticastUnderlay,
    pub subscribers: Vec<McastSubscriberEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpMcastSubscriptionsResp {
    pub entries: Vec<McastSubscriptionEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetExternalIpsReq {
    pub port_name: String,
    pub external_ips_v4: Option<ExternalIpCfg<Ipv4Addr>>,
    pub external_ips_v6: Option<ExternalIpCfg<Ipv6Addr>>,
    pub inet_gw_map: Option<InternetGatewayMap>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddFwRuleReq {
    pub port_name: String,
    pub rule: FirewallRule,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetFwRulesReq {
    pub port_name: String,
    pub rules: Vec<FirewallRule>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemFwRuleReq {
    pub port_name: String,
    pub dir: Direction,
    pub id: RuleId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowCidrReq {
    pub port_name: String,
    pub cidr: IpCidr,
    pub dir: Direction,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveCidrReq {
    pub port_name: String,
    pub cidr: IpCidr,
    pub dir: Direction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoveCidrResp {
    Ok(IpCidr),
    NotFound,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachSubnetReq {
    pub port_name: String,
    pub cidr: IpCidr,
    pub cfg: AttachedSubnetConfig,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachSubnetReq {
    pub port_name: String,
    pub cidr: IpCidr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DetachSubnetResp {
    Ok(IpCidr),
    NotFound,
}

impl opte_api::CmdOk for ListPortsResp {}
impl opte_api::CmdOk for DumpVirt2PhysResp {}
impl opte_api::CmdOk for DumpVirt2BoundaryResp {}
impl opte_api::CmdOk for DumpMcast2PhysResp {}
impl opte_api::CmdOk for DelRouterEntryResp {}
impl opte_api::CmdOk for DumpMcastForwardingResp {}
impl opte_api::CmdOk for DumpMcastSubscriptionsResp {}
impl opte_api::CmdOk for RemoveCidrResp {}
impl opte_api::CmdOk for DetachSubnetResp {}
impl opte_api::CmdOk for ExportPortResp {}

/// Pause port `port_name` and take its flow state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPortReq {
    pub port_name: String,
}

/// A port's flow state, as a file holds it (a versioned header, then postcard; see
/// `xde::migrate`), and what is in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPortResp {
    pub state: Vec<u8>,
    /// Flow pairs across the port's layers.
    pub pairs: u64,
    /// Tracked TCP connections.
    pub tcp: u64,
    /// Flow pairs that cannot move (they start again on the new sled).
    pub left_behind: u64,
}

/// Replace port `port_name`'s flows with `state` (an [`ExportPortResp::state`] of a port
/// of the same configuration), and run it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportPortReq {
    pub port_name: String,
    pub state: Vec<u8>,
}

/// Run paused port `port_name` again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePortReq {
    pub port_name: String,
}
