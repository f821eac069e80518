//! The typed link between each command code and its request and response types.
//!
//! Every command is a zero-sized type implementing [`Command`]; the host's dispatch and the
//! client's methods are both written against it, so a request or response of the wrong type
//! for a code is a compile error on either side, never a decode error at run time.
//! Commands that take no request use `()`, which encodes to nothing (the envelope then
//! carries no body, as the ioctl path's absent request does).

use super::*;
use opte_api::{
    ClearLftReq, ClearUftReq, DumpLayerReq, DumpLayerResp, DumpTcpFlowsPageReq,
    DumpTcpFlowsPageResp, DumpTcpFlowsReq, DumpTcpFlowsResp, DumpUftPageReq, DumpUftPageResp,
    DumpUftReq, DumpUftResp, ListLayersReq, ListLayersResp, NoResp, OpteCmd, SetXdeUnderlayReq,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One control command: its code, what it takes and what it answers.
pub trait Command {
    const CMD: OpteCmd;
    type Req: Serialize + DeserializeOwned + core::fmt::Debug;
    type Resp: Serialize + DeserializeOwned + core::fmt::Debug;
}

macro_rules! commands {
    ($($(#[$doc:meta])* $name:ident: $req:ty => $resp:ty;)*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug)]
            pub struct $name;
            impl Command for $name {
                const CMD: OpteCmd = OpteCmd::$name;
                type Req = $req;
                type Resp = $resp;
            }
        )*
    };
}

commands! {
    ListPorts: () => ListPortsResp;
    AddFwRule: AddFwRuleReq => NoResp;
    RemFwRule: RemFwRuleReq => NoResp;
    SetFwRules: SetFwRulesReq => NoResp;
    DumpTcpFlows: DumpTcpFlowsReq => DumpTcpFlowsResp;
    DumpLayer: DumpLayerReq => DumpLayerResp;
    DumpUft: DumpUftReq => DumpUftResp;
    ListLayers: ListLayersReq => ListLayersResp;
    /// One page of a unified flow table (this project's addition: tables too big for one
    /// `DumpUft` response are dumped a page at a time).
    DumpUftPage: DumpUftPageReq => DumpUftPageResp;
    /// One page of the TCP flow table (this project's addition, like `DumpUftPage`).
    DumpTcpFlowsPage: DumpTcpFlowsPageReq => DumpTcpFlowsPageResp;
    ClearUft: ClearUftReq => NoResp;
    ClearLft: ClearLftReq => NoResp;
    SetVirt2Phys: SetVirt2PhysReq => NoResp;
    DumpVirt2Phys: () => DumpVirt2PhysResp;
    SetVirt2Boundary: SetVirt2BoundaryReq => NoResp;
    ClearVirt2Boundary: ClearVirt2BoundaryReq => NoResp;
    DumpVirt2Boundary: () => DumpVirt2BoundaryResp;
    ClearVirt2Phys: ClearVirt2PhysReq => NoResp;
    AddRouterEntry: AddRouterEntryReq => NoResp;
    DelRouterEntry: DelRouterEntryReq => DelRouterEntryResp;
    CreateXde: CreateXdeReq => NoResp;
    DeleteXde: DeleteXdeReq => NoResp;
    SetXdeUnderlay: SetXdeUnderlayReq => NoResp;
    ClearXdeUnderlay: () => NoResp;
    SetExternalIps: SetExternalIpsReq => NoResp;
    AllowCidr: AllowCidrReq => NoResp;
    RemoveCidr: RemoveCidrReq => RemoveCidrResp;
    AttachSubnet: AttachSubnetReq => NoResp;
    DetachSubnet: DetachSubnetReq => DetachSubnetResp;
    SetMcastForwarding: SetMcastForwardingReq => NoResp;
    ClearMcastForwarding: ClearMcastForwardingReq => NoResp;
    DumpMcastForwarding: () => DumpMcastForwardingResp;
    McastSubscribe: McastSubscribeReq => NoResp;
    McastUnsubscribe: McastUnsubscribeReq => NoResp;
    SetMcast2Phys: SetMcast2PhysReq => NoResp;
    ClearMcast2Phys: ClearMcast2PhysReq => NoResp;
    DumpMcastSubscriptions: () => DumpMcastSubscriptionsResp;
    McastUnsubscribeAll: McastUnsubscribeAllReq => NoResp;
    DumpMcast2Phys: () => DumpMcast2PhysResp;
    /// The host's counters (this project's addition to the command set).
    DumpXdeStats: () => XdeStats;
    ExportPort: ExportPortReq => ExportPortResp;
    ImportPort: ImportPortReq => NoResp;
    ResumePort: ResumePortReq => NoResp;
}

/// The host's counters: parse failures per reason and direction, the datapath's outcomes,
/// multicast, and the route cache (SPEC §7.9 and §7.6), plus each port's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XdeStats {
    /// `(name, value)` pairs of the host-wide counters, in a stable order.
    pub counters: Vec<(String, u64)>,
    /// Each port's counters, by port name: `(name, value)` pairs.
    pub ports: Vec<(String, Vec<(String, u64)>)>,
}

impl opte_api::CmdOk for XdeStats {}
