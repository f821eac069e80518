//! The overlay layer: Geneve encapsulation toward the right sled or boundary-services
//! endpoint on the way out, decapsulation (with a VNI check) on the way in.
//!
//! Out: a multicast destination goes to its underlay group (M2P) on the multicast VNI; any
//! other needs the router's target: an internet gateway means boundary services (V2B,
//! longest prefix, one endpoint per flow), and only for traffic whose source NAT applied;
//! an instance or VPC subnet means a guest of this VPC (V2P), and never for traffic carrying
//! an external address. Anything unresolvable is denied.
//!
//! In: the VNI must be this port's (unicast) or the multicast VNI (multicast). The
//! reference shadows this check with its decap rule (SPEC §13 quirk 2); here the decap
//! action itself refuses a wrong VNI. Traffic from a guest (no External option) carries its
//! VNI as `vni` metadata for the firewall.

use super::meta::vni_meta;
use crate::api::{DEFAULT_MULTICAST_VNI, RouterTarget, TUNNEL_ENDPOINT_MAC};
use crate::tables::VpcTables;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use opte::engine::action::{Action, ActionMeta, AllowOrDeny, GenHtError, StaticAction, meta_keys};
use opte::engine::rule::Rule;
use opte::engine::transform::{EncapAction, EncapPush, HdrTransform};
use opte::engine::view::PacketView;
use opte::wire::geneve::{GeneveOpt, Replication};
use opte_api::{Direction, Ipv6Addr, MacAddr, Vni};

pub const NAME: &str = "overlay";

/// Hop limit of the outer IPv6 header.
const HOP_LIMIT: u8 = 128;

fn mcast_vni() -> Vni {
    Vni::new(DEFAULT_MULTICAST_VNI).unwrap_or_default()
}

/// Outbound: where the packet goes on the underlay.
pub struct Encap {
    pub phys_ip: Ipv6Addr,
    pub vni: Vni,
    pub tables: Arc<VpcTables>,
}

impl fmt::Display for Encap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "encap {} vni {}", self.phys_ip, self.vni.as_u32())
    }
}

struct Target {
    ip: Ipv6Addr,
    vni: Vni,
    outer_dst_mac: MacAddr,
    inner_dst_mac: MacAddr,
    internal: bool,
    options: Vec<GeneveOpt>,
}

impl StaticAction for Encap {
    fn gen_ht(
        &self,
        _dir: Direction,
        view: &PacketView,
        meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<HdrTransform>, GenHtError> {
        let dst = view
            .dst_ip()
            .ok_or_else(|| GenHtError::Unexpected("encap of a non-IP packet".into()))?;
        // The flow hash picks the boundary endpoint and is the underlay entropy.
        let flow_hash = view.flow().crc32();
        let t = if dst.is_multicast() {
            if view.is_tcp() {
                return Ok(AllowOrDeny::Deny);
            }
            let Some(u) = self.tables.m2p.get(dst) else {
                return Ok(AllowOrDeny::Deny);
            };
            let (Some(outer), Some(inner)) = (u.addr().multicast_mac(), dst.multicast_mac()) else {
                return Ok(AllowOrDeny::Deny);
            };
            Target {
                ip: u.addr(),
                vni: mcast_vni(),
                outer_dst_mac: outer,
                inner_dst_mac: inner,
                internal: true,
                options: vec![GeneveOpt::oxide_multicast(Replication::External)],
            }
        } else {
            let target: RouterTarget = meta
                .get(meta_keys::ROUTER_TARGET)
                .ok_or_else(|| GenHtError::Unexpected("no router-target metadata".into()))?
                .parse()
                .map_err(|e| GenHtError::Unexpected(format!("router-target: {e}")))?;
            let external = meta.get(meta_keys::EXTERNAL_IP_APPLIED).is_some();
            match target {
                RouterTarget::InternetGateway(_) => {
                    if !external {
                        return Ok(AllowOrDeny::Deny);
                    }
                    let Some(tep) = self.tables.v2b.select(dst, flow_hash) else {
                        return Ok(AllowOrDeny::Deny);
                    };
                    Target {
                        ip: tep.ip,
                        vni: tep.vni,
                        outer_dst_mac: MacAddr::ZERO,
                        inner_dst_mac: TUNNEL_ENDPOINT_MAC,
                        internal: false,
                        options: Vec::new(),
                    }
                }
                RouterTarget::Ip(_) | RouterTarget::VpcSubnet(_) => {
                    if external {
                        return Ok(AllowOrDeny::Deny);
                    }
                    let recipient = match target {
                        RouterTarget::Ip(ip) => ip,
                        _ => dst,
                    };
                    let Some(g) = self.tables.v2p.get(self.vni, recipient) else {
                        return Ok(AllowOrDeny::Deny);
                    };
                    // The MSS option is a slot for the host to fill when it offloads
                    // segmentation; its body starts zeroed.
                    let options = if view.is_tcp() {
                        vec![GeneveOpt::oxide_mss(0)]
                    } else {
                        Vec::new()
                    };
                    Target {
                        ip: g.ip,
                        vni: self.vni,
                        outer_dst_mac: MacAddr::ZERO,
                        inner_dst_mac: g.ether,
                        internal: true,
                        options,
                    }
                }
                RouterTarget::Drop => return Ok(AllowOrDeny::Deny),
            }
        };
        if t.internal {
            meta.insert(meta_keys::INTERNAL_TARGET, "1");
        }
        Ok(AllowOrDeny::Allow(HdrTransform {
            encap: EncapAction::Push(EncapPush {
                eth_src: MacAddr::ZERO,
                eth_dst: t.outer_dst_mac,
                ip6_src: self.phys_ip,
                ip6_dst: t.ip,
                hop_limit: HOP_LIMIT,
                entropy: (flow_hash & 0xffff) as u16,
                vni: t.vni,
                options: t.options,
                internal: t.internal,
            }),
            eth_dst: Some(t.inner_dst_mac),
            ..HdrTransform::identity("encap")
        }))
    }
}

/// Inbound: strip the encapsulation of traffic on the right VNI.
pub struct Decap {
    pub vni: Vni,
}

impl fmt::Display for Decap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decap vni {}", self.vni.as_u32())
    }
}

impl StaticAction for Decap {
    fn gen_ht(
        &self,
        _dir: Direction,
        view: &PacketView,
        meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<HdrTransform>, GenHtError> {
        let Some(vni) = view.vni else {
            return Ok(AllowOrDeny::Deny);
        };
        let multicast = view.dst_ip().is_some_and(|ip| ip.is_multicast());
        let want = if multicast { mcast_vni() } else { self.vni };
        if vni != want {
            return Ok(AllowOrDeny::Deny);
        }
        if !view.external {
            meta.insert(meta_keys::VNI, vni_meta(vni));
        }
        Ok(AllowOrDeny::Allow(HdrTransform {
            encap: EncapAction::Pop,
            ..HdrTransform::identity("decap")
        }))
    }
}

/// The overlay's rules: (inbound, outbound).
pub fn rules(phys_ip: Ipv6Addr, vni: Vni, tables: &Arc<VpcTables>) -> (Vec<Rule>, Vec<Rule>) {
    let encap = Action::Static(Arc::new(Encap {
        phys_ip,
        vni,
        tables: tables.clone(),
    }));
    let decap = Action::Static(Arc::new(Decap { vni }));
    (
        vec![Rule::match_any(1, decap)],
        vec![Rule::match_any(1, encap)],
    )
}
