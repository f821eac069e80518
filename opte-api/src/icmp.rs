//! Who an ICMP/ICMPv6 echo request to the gateway comes from and who answers it: the
//! parameters of the port's ping responder.
//!
//! Not the responder itself: that is the engine's hairpin code.

use crate::ip::{Ipv4Addr, Ipv6Addr};
use crate::mac::MacAddr;

/// Answer ICMPv4 echo requests from `echo_src_*` (the guest) to `echo_dst_*` (the gateway).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpEchoReply {
    /// The MAC the request comes from: the guest's.
    pub echo_src_mac: MacAddr,
    /// The address the request comes from: the guest's.
    pub echo_src_ip: Ipv4Addr,
    /// The MAC the request is sent to: the gateway's, which the reply comes from.
    pub echo_dst_mac: MacAddr,
    /// The address the request is sent to: the gateway's, which the reply comes from.
    pub echo_dst_ip: Ipv4Addr,
}

/// Answer ICMPv6 echo requests from `src_*` (the guest) to `dst_*` (the gateway).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icmpv6EchoReply {
    /// The MAC the request comes from: the guest's.
    pub src_mac: MacAddr,
    /// The address the request comes from: the guest's.
    pub src_ip: Ipv6Addr,
    /// The MAC the request is sent to: the gateway's, which the reply comes from.
    pub dst_mac: MacAddr,
    /// The address the request is sent to: the gateway's, which the reply comes from.
    pub dst_ip: Ipv6Addr,
}
