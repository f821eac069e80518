//! Echo replies from the gateway: ICMPv4 (RFC 792) and ICMPv6 (RFC 4443 §4.2).
//!
//! The reply swaps the request's MACs and addresses and keeps its identifier, sequence
//! number and data. Only the type changes in the ICMP message, and swapping addresses does
//! not change the ICMPv6 pseudo-header sum, so the checksum is updated incrementally from
//! the request's (RFC 1624) instead of being summed over the data again.

use super::{GenErr, HairpinReply, ReplyFrame, body, ipv4_info, ipv6_info};
use crate::build::{L3Repr, UlpRepr};
use crate::packet::Packet;
use crate::packet::parse::{InnerMeta, UlpKind};
use crate::wire::csum::{Checksum, pseudo_v6, update_u16};
use crate::wire::ether::{ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, EtherRepr};
use crate::wire::icmp::{IcmpHdr, IcmpRepr, v4_type, v6_type};
use crate::wire::ip4::{Ipv4Hdr, Ipv4Repr};
use crate::wire::ip6::{Ipv6Hdr, Ipv6Repr};
use crate::wire::{HeaderKind, proto};
use opte_api::{IcmpEchoReply, Icmpv6EchoReply, Ipv4Addr, Ipv6Addr, MacAddr};

/// The TTL of an ICMPv4 echo reply.
pub const ECHO_REPLY_TTL: u8 = 128;
/// The hop limit of an ICMPv6 echo reply. The gateway answers from a link-local address
/// most of the time, and 255 lets a guest see the reply cannot have been forwarded, as NDP
/// does.
pub const ECHO_REPLY_HOP_LIMIT: u8 = 255;

/// The request's ICMP header, if it is an echo request of the expected version.
fn echo_request(
    pkt: &Packet,
    meta: &InnerMeta,
    kind: UlpKind,
    request_type: u8,
) -> Result<IcmpHdr, GenErr> {
    let ulp = meta.ulp.ok_or(GenErr::MissingMeta("an ICMP header"))?;
    if ulp.kind != kind {
        return Err(GenErr::MissingMeta("an ICMP header"));
    }
    let h = *pkt.view::<IcmpHdr>(ulp.loc).ok_or(GenErr::Unexpected(
        "the parsed ICMP header cannot be viewed",
    ))?;
    if h.ty != request_type {
        return Err(GenErr::Unexpected("ICMP message is not an echo request"));
    }
    if meta.frag.is_some() {
        return Err(GenErr::Malformed(
            "a fragmented echo request cannot be answered",
        ));
    }
    Ok(h)
}

/// The reply's checksum: the request's, updated for the new type and code word; or, when
/// the request's was zero (not filled in), summed afresh over `base` (any pseudo-header),
/// the reply header and the data.
fn reply_csum(req: &IcmpHdr, reply: &IcmpRepr, data: &[u8], mut base: Checksum) -> u16 {
    let old = u16::from_be_bytes(req.csum);
    if old != 0 {
        let word = |ty: u8, code: u8| u16::from_be_bytes([ty, code]);
        return update_u16(old, word(req.ty, req.code), word(reply.ty, reply.code));
    }
    let mut hdr = [0u8; IcmpHdr::LEN];
    // `emit` cannot fail on an 8-byte buffer; the checksum field is left zero.
    let _ = IcmpRepr { csum: 0, ..*reply }.emit(&mut hdr, HeaderKind::Icmpv4);
    base.add_bytes(&hdr);
    base.add_bytes(data);
    base.finalize()
}

fn ether(meta: &InnerMeta, src: MacAddr, dst: MacAddr, ether_type: u16) -> EtherRepr {
    EtherRepr {
        dst,
        src,
        ether_type,
        vlan: meta.eth.vlan,
    }
}

/// Answer an ICMPv4 echo request from `cfg.echo_src_*` to `cfg.echo_dst_*`; a request
/// between other addresses gets no reply.
pub fn gen_icmp4_echo_reply(
    pkt: &Packet,
    meta: &InnerMeta,
    cfg: &IcmpEchoReply,
) -> Result<HairpinReply, GenErr> {
    let info = ipv4_info(meta)?;
    let req = echo_request(pkt, meta, UlpKind::Icmpv4, v4_type::ECHO_REQUEST)?;
    let ip = pkt.view::<Ipv4Hdr>(info.loc).ok_or(GenErr::Unexpected(
        "the parsed IPv4 header cannot be viewed",
    ))?;
    let (src, dst) = (Ipv4Addr::from_const(ip.src), Ipv4Addr::from_const(ip.dst));
    if (meta.eth.src, src, meta.eth.dst, dst)
        != (
            cfg.echo_src_mac,
            cfg.echo_src_ip,
            cfg.echo_dst_mac,
            cfg.echo_dst_ip,
        )
    {
        return Ok(HairpinReply::NoReply);
    }
    let data = body(pkt, meta)?;
    let mut icmp = IcmpRepr {
        ty: v4_type::ECHO_REPLY,
        code: 0,
        csum: 0,
        rest: req.rest,
    };
    icmp.csum = reply_csum(&req, &icmp, &data, Checksum::new());
    let mut l3 = Ipv4Repr::new(dst, src, proto::ICMP);
    l3.ttl = ECHO_REPLY_TTL;
    let mut frame = ReplyFrame::new(
        ether(meta, cfg.echo_dst_mac, cfg.echo_src_mac, ETHER_TYPE_IPV4),
        L3Repr::Ipv4(l3),
        UlpRepr::Icmpv4(icmp),
        data.len(),
    );
    frame.body().extend_from_slice(&data);
    Ok(HairpinReply::Reply(frame.finish_with_l4_csum()?))
}

/// Answer an ICMPv6 echo request from `cfg.src_*` to `cfg.dst_*`; a request between other
/// addresses gets no reply.
pub fn gen_icmp6_echo_reply(
    pkt: &Packet,
    meta: &InnerMeta,
    cfg: &Icmpv6EchoReply,
) -> Result<HairpinReply, GenErr> {
    let info = ipv6_info(meta)?;
    let req = echo_request(pkt, meta, UlpKind::Icmpv6, v6_type::ECHO_REQUEST)?;
    let ip = pkt.view::<Ipv6Hdr>(info.loc).ok_or(GenErr::Unexpected(
        "the parsed IPv6 header cannot be viewed",
    ))?;
    let (src, dst) = (Ipv6Addr::from_const(ip.src), Ipv6Addr::from_const(ip.dst));
    if (meta.eth.src, src, meta.eth.dst, dst) != (cfg.src_mac, cfg.src_ip, cfg.dst_mac, cfg.dst_ip)
    {
        return Ok(HairpinReply::NoReply);
    }
    let data = body(pkt, meta)?;
    let icmp_len = IcmpHdr::LEN + data.len();
    let payload_len = u16::try_from(icmp_len)
        .map_err(|_| GenErr::Unexpected("echo reply longer than an IPv6 payload"))?;
    let mut icmp = IcmpRepr {
        ty: v6_type::ECHO_REPLY,
        code: 0,
        csum: 0,
        rest: req.rest,
    };
    let pseudo = pseudo_v6(
        dst.bytes(),
        src.bytes(),
        proto::ICMPV6,
        u32::from(payload_len),
    );
    icmp.csum = reply_csum(&req, &icmp, &data, pseudo);
    let mut l3 = Ipv6Repr::new(dst, src, proto::ICMPV6);
    l3.hop_limit = ECHO_REPLY_HOP_LIMIT;
    let mut frame = ReplyFrame::new(
        ether(meta, cfg.dst_mac, cfg.src_mac, ETHER_TYPE_IPV6),
        L3Repr::Ipv6(l3),
        UlpRepr::Icmpv6(icmp),
        data.len(),
    );
    frame.body().extend_from_slice(&data);
    Ok(HairpinReply::Reply(frame.finish_with_l4_csum()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::Headers;
    use crate::build::samples::{self, GUEST_IP4, GUEST_IP6, GUEST_MAC, GW_IP4, GW_LL, GW_MAC};
    use crate::engine::hairpin::test_util::{assert_checksums_valid, parse, reply, sample};
    use crate::packet::parse::L3Info;
    use alloc::vec::Vec;

    /// The sample's frame with its ICMP checksum zeroed (as a sender that did not fill it in).
    fn zero_csum(family: &str) -> Vec<u8> {
        let mut f = samples::hairpin(family, "EchoRequest").unwrap().frame();
        let at = parse(&f).1.ulp.unwrap().loc.off as usize + 2;
        f[at..at + 2].copy_from_slice(&[0, 0]);
        f
    }

    fn v4_cfg() -> IcmpEchoReply {
        IcmpEchoReply {
            echo_src_mac: GUEST_MAC,
            echo_src_ip: GUEST_IP4,
            echo_dst_mac: GW_MAC,
            echo_dst_ip: GW_IP4,
        }
    }

    fn v6_cfg() -> Icmpv6EchoReply {
        Icmpv6EchoReply {
            src_mac: GUEST_MAC,
            src_ip: GUEST_IP6,
            dst_mac: GW_MAC,
            dst_ip: GW_LL,
        }
    }

    /// Check an echo reply: swapped MACs, the given addresses and TTL/hop limit, type
    /// and code, id 7, seq 777, data `reunion\0`, valid checksums.
    fn check_reply(frame: &[u8], reply_type: u8) {
        let (pkt, meta) = parse(frame);
        assert_eq!((meta.eth.src, meta.eth.dst), (GW_MAC, GUEST_MAC));
        match meta.l3.unwrap() {
            L3Info::Ipv4(i) => {
                let ip = pkt.view::<Ipv4Hdr>(i.loc).unwrap();
                assert_eq!((ip.src, ip.dst), (GW_IP4.bytes(), GUEST_IP4.bytes()));
                assert_eq!((ip.ttl, ip.proto), (ECHO_REPLY_TTL, proto::ICMP));
            }
            L3Info::Ipv6(i) => {
                let ip = pkt.view::<Ipv6Hdr>(i.loc).unwrap();
                assert_eq!((ip.src, ip.dst), (GW_LL.bytes(), GUEST_IP6.bytes()));
                assert_eq!(ip.hop_limit, ECHO_REPLY_HOP_LIMIT);
            }
        }
        let h = pkt.view::<IcmpHdr>(meta.ulp.unwrap().loc).unwrap();
        assert_eq!(
            (h.ty, h.code, h.echo_id(), h.echo_seq()),
            (reply_type, 0, 7, 777)
        );
        assert_eq!(&frame[frame.len() - 8..], b"reunion\0");
        assert_checksums_valid(frame, &meta);
    }

    #[test]
    fn icmp4_echo_sample_gets_a_50_byte_reply() {
        let (pkt, meta) = sample("Hairpin-ICMPv4", "EchoRequest");
        let frame = reply(gen_icmp4_echo_reply(&pkt, &meta, &v4_cfg()).unwrap());
        assert_eq!(frame.len(), 50);
        check_reply(&frame, v4_type::ECHO_REPLY);
    }

    #[test]
    fn icmp6_echo_sample_in_three_segments_gets_a_70_byte_reply_in_one() {
        let (pkt, meta) = sample("Hairpin-ICMPv6", "EchoRequest");
        assert_eq!(pkt.seg_count(), 3);
        let frame = reply(gen_icmp6_echo_reply(&pkt, &meta, &v6_cfg()).unwrap());
        assert_eq!(frame.len(), 70);
        check_reply(&frame, v6_type::ECHO_REPLY);
    }

    #[test]
    fn data_split_across_segments_is_echoed_whole() {
        let f = samples::hairpin("Hairpin-ICMPv6", "EchoRequest")
            .unwrap()
            .frame();
        // The split falls inside the echo data.
        let mut pkt = crate::packet::Packet::from_segments(&[&f[..65], &f[65..67], &f[67..]]);
        let meta = crate::packet::parse::parse_guest(&mut pkt).unwrap();
        let frame = reply(gen_icmp6_echo_reply(&pkt, &meta, &v6_cfg()).unwrap());
        check_reply(&frame, v6_type::ECHO_REPLY);
    }

    #[test]
    fn zero_checksum_is_computed_from_scratch() {
        let (pkt, meta) = parse(&zero_csum("Hairpin-ICMPv4"));
        let frame = reply(gen_icmp4_echo_reply(&pkt, &meta, &v4_cfg()).unwrap());
        check_reply(&frame, v4_type::ECHO_REPLY);
        let (pkt, meta) = parse(&zero_csum("Hairpin-ICMPv6"));
        let frame = reply(gen_icmp6_echo_reply(&pkt, &meta, &v6_cfg()).unwrap());
        check_reply(&frame, v6_type::ECHO_REPLY);
    }

    #[test]
    fn incremental_checksum_matches_a_full_sum_for_many_payloads() {
        for n in 0..64usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let h = Headers::new(
                EtherRepr {
                    dst: GW_MAC,
                    src: GUEST_MAC,
                    ether_type: ETHER_TYPE_IPV4,
                    vlan: None,
                },
                L3Repr::Ipv4(Ipv4Repr::new(GUEST_IP4, GW_IP4, proto::ICMP)),
                UlpRepr::Icmpv4(IcmpRepr::echo(v4_type::ECHO_REQUEST, n as u16, 0xfff0)),
            );
            let (pkt, meta) = parse(&h.build(&data).unwrap());
            let frame = reply(gen_icmp4_echo_reply(&pkt, &meta, &v4_cfg()).unwrap());
            let (_, rm) = parse(&frame);
            assert_checksums_valid(&frame, &rm);
            assert_eq!(&frame[42..], &data[..]);
        }
    }

    #[test]
    fn requests_between_other_addresses_get_no_reply() {
        let (pkt, meta) = sample("Hairpin-ICMPv4", "EchoRequest");
        let other = IcmpEchoReply {
            echo_dst_ip: Ipv4Addr::from_const([172, 30, 0, 2]),
            ..v4_cfg()
        };
        assert_eq!(
            gen_icmp4_echo_reply(&pkt, &meta, &other),
            Ok(HairpinReply::NoReply)
        );
        let (pkt, meta) = sample("Hairpin-ICMPv6", "EchoRequest");
        let other = Icmpv6EchoReply {
            src_mac: GW_MAC,
            ..v6_cfg()
        };
        assert_eq!(
            gen_icmp6_echo_reply(&pkt, &meta, &other),
            Ok(HairpinReply::NoReply)
        );
    }

    #[test]
    fn non_echo_packets_are_refused() {
        let (pkt, meta) = sample("Hairpin-ICMPv6", "NeighborSolicit");
        assert_eq!(
            gen_icmp6_echo_reply(&pkt, &meta, &v6_cfg()),
            Err(GenErr::Unexpected("ICMP message is not an echo request"))
        );
        assert_eq!(
            gen_icmp4_echo_reply(&pkt, &meta, &v4_cfg()),
            Err(GenErr::MissingMeta("an IPv4 header"))
        );
        let (pkt, meta) = sample("Hairpin-DHCPv6", "Solicit");
        assert_eq!(
            gen_icmp6_echo_reply(&pkt, &meta, &v6_cfg()),
            Err(GenErr::MissingMeta("an ICMP header"))
        );
    }
}
