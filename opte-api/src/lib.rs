//! The shared vocabulary of OPTE.
//!
//! Everything that crosses a boundary (engine ↔ network implementation ↔ host ↔ client) is
//! named here: addresses and prefixes, the VNI, the flow key, the command codes, the error
//! enum and the control envelopes. This crate holds no policy and does no I/O.
//!
//! Modules, bottom to top (each imports only from its own row and those above):
//!
//! | module | what |
//! |---|---|
//! | [`text`] | the `FromStr` error type and serde glue |
//! | [`mac`], [`ip`], [`cidr`], [`encap`] | addresses, prefixes, protocol numbers, VNI |
//! | [`direction`], [`ulp`], [`tcp`], [`flow`] | direction, ports, TCP states, the flow key |
//! | [`dns`], [`dhcp`], [`dhcpv6`], [`ndp`], [`icmp`] | what the gateway answers with |
//! | [`error`], [`cmd`], [`dump`], [`control`] | errors, commands, dumps, envelopes |
//!
//! Every text-bearing type parses with `FromStr` and prints with `Display`, and the two
//! round-trip. Wire types serialise with postcard.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// No panics outside tests: this crate runs inside the kernel module and the daemon.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

// Layered as in the table above; within a layer, alphabetical.
pub mod text;

pub mod cidr;
pub mod encap;
pub mod ip;
pub mod mac;

pub mod direction;
pub mod flow;
pub mod tcp;
pub mod ulp;

pub mod dhcp;
pub mod dhcpv6;
pub mod dns;
pub mod icmp;
pub mod ndp;

pub mod cmd;
pub mod control;
pub mod dump;
pub mod error;

#[cfg(test)]
mod round_trip;

pub use cidr::{IpCidr, Ipv4Cidr, Ipv6Cidr};
pub use cmd::{
    API_VERSION, CmdOk, MAJOR_VERSION, NoResp, OPTE_CMD_RESP_COPY_OUT, OpteCmd, OpteCmdIoctl,
    SetXdeUnderlayReq, UnknownCmd, check_api_version,
};
pub use control::{CONTROL_FRAME_MAX, ControlRequest, ControlResponse};
pub use dhcp::{DhcpCfg, DhcpReplyType, SubnetRouterPair};
pub use dhcpv6::{AddressInfo, LeasedAddress};
pub use direction::Direction;
pub use dns::DomainName;
pub use dump::{
    ActionDescEntryDump, ClearLftReq, ClearUftReq, DumpLayerReq, DumpLayerResp,
    DumpTcpFlowsPageReq, DumpTcpFlowsPageResp, DumpTcpFlowsReq, DumpTcpFlowsResp, DumpUftPageReq,
    DumpUftPageResp, DumpUftReq, DumpUftResp, FlowDumpPage, LayerDesc, ListLayersReq,
    ListLayersResp, MAX_DUMP_PAGE, RuleDump, RuleId, RuleTableEntryDump, TcpFlowEntryDump,
    TcpFlowStateDump, UftEntryDump, check_dump_page,
};
pub use encap::Vni;
pub use error::OpteError;
pub use flow::{AddrPair, FLOW_ID_DEFAULT, InnerFlowId};
pub use icmp::{IcmpEchoReply, Icmpv6EchoReply};
pub use ip::{
    IpAddr, Ipv4Addr, Ipv4PrefixLen, Ipv6Addr, Ipv6PrefixLen, MulticastUnderlay, Protocol,
};
pub use mac::MacAddr;
pub use ndp::{NeighborAdvertisement, RouterAdvertisement};
pub use tcp::TcpState;
pub use text::{ParseError, ParseReason};
pub use ulp::DYNAMIC_PORT;
