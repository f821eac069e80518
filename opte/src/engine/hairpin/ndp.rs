//! IPv6 Neighbor Discovery for the gateway (RFC 4861): a Router Advertisement in answer to
//! a Router Solicitation, and a Neighbor Advertisement in answer to a Neighbor Solicitation
//! for the gateway's link-local address.
//!
//! Requests are validated as §6.1.1 and §7.1.1 require before anything is answered; an
//! invalid one is a [`GenErr::Malformed`] naming the rule it broke. The advertisements
//! carry no prefix information: guests get their addresses from DHCPv6 (the M flag).

use super::{GenErr, HairpinReply, ReplyFrame, body, ipv6_info};
use crate::build::{L3Repr, UlpRepr};
use crate::packet::Packet;
use crate::packet::parse::{InnerMeta, UlpKind};
use crate::wire::csum::pseudo_v6;
use crate::wire::ether::{ETHER_TYPE_IPV6, EtherRepr};
use crate::wire::icmp::{
    IcmpHdr, IcmpRepr, NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, NA_FLAG_SOLICITED, NdpOptions,
    RA_FLAG_MANAGED, emit_lla_option, emit_mtu_option, ndp_opt, v6_type,
};
use crate::wire::ip6::{Ipv6Hdr, Ipv6Repr};
use crate::wire::proto;
use alloc::borrow::Cow;
use opte_api::{Ipv6Addr, MacAddr, NeighborAdvertisement, RouterAdvertisement};
use zerocopy::IntoBytes;

/// The hop limit of every NDP message, sent and accepted: proof it was not forwarded.
pub const NDP_HOP_LIMIT: u8 = 255;
/// The Cur Hop Limit advertised to guests.
pub const RA_CUR_HOP_LIMIT: u8 = 255;
/// The router lifetime advertised, in seconds: the most RFC 4861 §6.2.1 allows.
pub const ROUTER_LIFETIME_SECS: u16 = 9000;
/// Bytes of a Neighbor Solicitation's target address, after the ICMPv6 header.
const TARGET_LEN: usize = 16;
const LLA_OPTION_LEN: usize = 8;
const MTU_OPTION_LEN: usize = 8;

/// A validated NDP request: addresses, ICMPv6 header and the bytes after it.
struct NdpRequest<'a> {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    body: Cow<'a, [u8]>,
}

/// Take an NDP message of type `ty` and check the rules every NDP message shares: hop
/// limit 255, code 0, a valid checksum.
fn ndp_request<'a>(
    pkt: &'a Packet,
    meta: &InnerMeta,
    ty: u8,
    wrong_type: &'static str,
) -> Result<NdpRequest<'a>, GenErr> {
    let info = ipv6_info(meta)?;
    let ulp = meta.ulp.ok_or(GenErr::MissingMeta("an ICMPv6 header"))?;
    if ulp.kind != UlpKind::Icmpv6 {
        return Err(GenErr::MissingMeta("an ICMPv6 header"));
    }
    let hdr = *pkt.view::<IcmpHdr>(ulp.loc).ok_or(GenErr::Unexpected(
        "the parsed ICMPv6 header cannot be viewed",
    ))?;
    if hdr.ty != ty {
        return Err(GenErr::Unexpected(wrong_type));
    }
    let ip = pkt.view::<Ipv6Hdr>(info.loc).ok_or(GenErr::Unexpected(
        "the parsed IPv6 header cannot be viewed",
    ))?;
    if ip.hop_limit != NDP_HOP_LIMIT {
        return Err(GenErr::Malformed("NDP message hop limit is not 255"));
    }
    if hdr.code != 0 {
        return Err(GenErr::Malformed("NDP message code is not 0"));
    }
    if meta.frag.is_some() {
        return Err(GenErr::Malformed("NDP message is fragmented"));
    }
    let (src, dst) = (Ipv6Addr::from_const(ip.src), Ipv6Addr::from_const(ip.dst));
    let body = body(pkt, meta)?;
    let len = u32::try_from(IcmpHdr::LEN + body.len())
        .map_err(|_| GenErr::Malformed("NDP message too long"))?;
    let mut sum = pseudo_v6(ip.src, ip.dst, proto::ICMPV6, len);
    sum.add_bytes(hdr.as_bytes());
    sum.add_bytes(&body);
    if sum.fold() != 0xffff {
        return Err(GenErr::Malformed("ICMPv6 checksum is wrong"));
    }
    Ok(NdpRequest { src, dst, body })
}

/// Walk an NDP option list (§4.6: no option may have length 0 or overrun the message) and
/// return the Source Link-Layer Address option's address, if there is one.
fn source_lla(options: &[u8]) -> Result<Option<[u8; 6]>, GenErr> {
    let mut slla = None;
    for o in NdpOptions::new(options) {
        let o =
            o.map_err(|_| GenErr::Malformed("NDP option has length 0 or overruns the message"))?;
        if o.ty == ndp_opt::SOURCE_LLA {
            slla = o.lla();
        }
    }
    Ok(slla)
}

/// Where an answer goes: back to the soliciting address and MAC, or to all nodes when the
/// solicitation came from the unspecified address.
fn reply_dst(req: &NdpRequest<'_>, meta: &InnerMeta) -> (Ipv6Addr, MacAddr) {
    if req.src.is_unspecified() {
        (
            Ipv6Addr::ALL_NODES,
            MacAddr::from_const([0x33, 0x33, 0, 0, 0, 1]),
        )
    } else {
        (req.src, meta.eth.src)
    }
}

fn ndp_reply(
    meta: &InnerMeta,
    from: (MacAddr, Ipv6Addr),
    to: (Ipv6Addr, MacAddr),
    icmp: IcmpRepr,
    body: &[u8],
) -> Result<HairpinReply, GenErr> {
    let mut ip = Ipv6Repr::new(from.1, to.0, proto::ICMPV6);
    ip.hop_limit = NDP_HOP_LIMIT;
    let mut frame = ReplyFrame::new(
        EtherRepr {
            dst: to.1,
            src: from.0,
            ether_type: ETHER_TYPE_IPV6,
            vlan: meta.eth.vlan,
        },
        L3Repr::Ipv6(ip),
        UlpRepr::Icmpv6(icmp),
        body.len(),
    );
    frame.body().extend_from_slice(body);
    Ok(HairpinReply::Reply(frame.finish()?))
}

/// Answer a Router Solicitation from `cfg.src_mac()` with the gateway's Router
/// Advertisement: from the gateway's link-local address, Cur Hop Limit 255, M flag if
/// `cfg.managed_cfg()`, router lifetime 9000 s, reachable time and retransmit timer
/// unspecified, the gateway's MAC as Source Link-Layer Address and an MTU option if
/// `cfg.mtu()` is set.
pub fn gen_router_advert(
    pkt: &Packet,
    meta: &InnerMeta,
    cfg: &RouterAdvertisement,
) -> Result<HairpinReply, GenErr> {
    let req = ndp_request(
        pkt,
        meta,
        v6_type::ROUTER_SOLICIT,
        "ICMPv6 message is not a Router Solicitation",
    )?;
    // §6.1.1: options follow the 4 reserved bytes, which are the ICMP header's last 4.
    let slla = source_lla(&req.body)?;
    if req.src.is_unspecified() && slla.is_some() {
        return Err(GenErr::Malformed(
            "RS from the unspecified address carries a Source Link-Layer Address",
        ));
    }
    if meta.eth.src != cfg.src_mac() {
        return Ok(HairpinReply::NoReply);
    }
    let lifetime = ROUTER_LIFETIME_SECS.to_be_bytes();
    let flags = if cfg.managed_cfg() {
        RA_FLAG_MANAGED
    } else {
        0
    };
    let icmp = IcmpRepr {
        ty: v6_type::ROUTER_ADVERT,
        code: 0,
        csum: 0,
        rest: [RA_CUR_HOP_LIMIT, flags, lifetime[0], lifetime[1]],
    };
    // Reachable time and retransmit timer (zero: unspecified), then the options.
    let mut body = [0u8; 8 + LLA_OPTION_LEN + MTU_OPTION_LEN];
    let mut n = 8;
    n += emit_lla_option(
        body.get_mut(n..).unwrap_or(&mut []),
        ndp_opt::SOURCE_LLA,
        cfg.mac().bytes(),
    )?;
    if let Some(mtu) = cfg.mtu() {
        n += emit_mtu_option(body.get_mut(n..).unwrap_or(&mut []), mtu)?;
    }
    let to = reply_dst(&req, meta);
    ndp_reply(
        meta,
        (cfg.mac(), cfg.ip()),
        to,
        icmp,
        body.get(..n).unwrap_or(&[]),
    )
}

/// Answer a Neighbor Solicitation from `cfg.src_mac()` for the gateway's link-local address
/// with a Neighbor Advertisement: Override set, Router if `cfg.is_router()`, Solicited
/// unless the solicitation came from `::` (then it goes to all nodes, and is answered only
/// if `cfg.allow_unspec()`), and the gateway's MAC as Target Link-Layer Address. A
/// solicitation for any other target gets no reply.
pub fn gen_neighbor_advert(
    pkt: &Packet,
    meta: &InnerMeta,
    cfg: &NeighborAdvertisement,
) -> Result<HairpinReply, GenErr> {
    let req = ndp_request(
        pkt,
        meta,
        v6_type::NEIGHBOR_SOLICIT,
        "ICMPv6 message is not a Neighbor Solicitation",
    )?;
    let (target, options) = req
        .body
        .split_at_checked(TARGET_LEN)
        .ok_or(GenErr::Malformed("NS shorter than 24 bytes"))?;
    let target: [u8; 16] = target
        .try_into()
        .map_err(|_| GenErr::Malformed("NS shorter than 24 bytes"))?;
    let target = Ipv6Addr::from_const(target);
    if target.is_multicast() {
        return Err(GenErr::Malformed("NS target is a multicast address"));
    }
    let slla = source_lla(options)?;
    let unspec = req.src.is_unspecified();
    if unspec && req.dst != target.solicited_node_multicast() {
        return Err(GenErr::Malformed(
            "NS from the unspecified address is not sent to the target's solicited-node group",
        ));
    }
    if unspec && slla.is_some() {
        return Err(GenErr::Malformed(
            "NS from the unspecified address carries a Source Link-Layer Address",
        ));
    }
    if meta.eth.src != cfg.src_mac() || target != cfg.ip() || (unspec && !cfg.allow_unspec()) {
        return Ok(HairpinReply::NoReply);
    }
    let mut flags = NA_FLAG_OVERRIDE;
    if cfg.is_router() {
        flags |= NA_FLAG_ROUTER;
    }
    if !unspec {
        flags |= NA_FLAG_SOLICITED;
    }
    let icmp = IcmpRepr {
        ty: v6_type::NEIGHBOR_ADVERT,
        code: 0,
        csum: 0,
        rest: [flags, 0, 0, 0],
    };
    let mut body = [0u8; TARGET_LEN + LLA_OPTION_LEN];
    let (t, opt) = body.split_at_mut(TARGET_LEN);
    t.copy_from_slice(&target.bytes());
    emit_lla_option(opt, ndp_opt::TARGET_LLA, cfg.mac().bytes())?;
    let to = reply_dst(&req, meta);
    ndp_reply(meta, (cfg.mac(), cfg.ip()), to, icmp, &body)
}

#[cfg(test)]
mod tests;
