//! ARP replies for the gateway (RFC 826): the guest asks who has the gateway's IPv4 address,
//! and the port answers with the gateway's MAC.
//!
//! Only requests for the gateway address are answered; the guest's own probes and
//! announcements (RFC 5227) for other addresses get no reply.

use super::{GenErr, HairpinReply};
use crate::build::Headers;
use crate::packet::Packet;
use crate::packet::parse::InnerMeta;
use crate::wire::arp::{ARP_OP_REPLY, ARP_OP_REQUEST, ArpEthIpv4Hdr, ArpRepr};
use crate::wire::ether::{ETHER_TYPE_ARP, EtherRepr};
use opte_api::{Ipv4Addr, MacAddr};

/// Answer an ARP request for `gw_ip` with `gw_mac`: an op-2 reply from the gateway to the
/// requester's hardware and protocol addresses, on the request's VLAN.
pub fn gen_arp_reply(
    pkt: &Packet,
    meta: &InnerMeta,
    gw_mac: MacAddr,
    gw_ip: Ipv4Addr,
) -> Result<HairpinReply, GenErr> {
    gen_proxy_arp_reply(pkt, meta, gw_mac, |tpa, _| tpa == gw_ip)
}

/// Answer an ARP request whose target `answers(target, sender)` accepts with `gw_mac`:
/// the reply claims the target address for the gateway's MAC, so a guest that believes
/// an address is on its link sends to the gateway anyway (proxy ARP). Anything that is
/// not a request, or a target not accepted, gets no reply.
pub fn gen_proxy_arp_reply(
    pkt: &Packet,
    meta: &InnerMeta,
    gw_mac: MacAddr,
    answers: impl Fn(Ipv4Addr, Ipv4Addr) -> bool,
) -> Result<HairpinReply, GenErr> {
    let loc = meta.arp.ok_or(GenErr::MissingMeta("an ARP header"))?;
    let req = pkt
        .view::<ArpEthIpv4Hdr>(loc)
        .map(ArpRepr::from_hdr)
        .ok_or(GenErr::Unexpected("the parsed ARP header cannot be viewed"))?;
    if req.op != ARP_OP_REQUEST || !answers(req.tpa, req.spa) {
        return Ok(HairpinReply::NoReply);
    }
    let eth = EtherRepr {
        dst: req.sha,
        src: gw_mac,
        ether_type: ETHER_TYPE_ARP,
        vlan: meta.eth.vlan,
    };
    let arp = ArpRepr {
        op: ARP_OP_REPLY,
        sha: gw_mac,
        spa: req.tpa,
        tha: req.sha,
        tpa: req.spa,
    };
    let h = Headers {
        encap: None,
        eth,
        arp: Some(arp),
        l3: None,
        ulp: None,
    };
    Ok(HairpinReply::Reply(h.build(&[])?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::samples::{self, GUEST_IP4, GUEST_MAC, GW_IP4, GW_MAC};
    use crate::engine::hairpin::test_util::{parse, reply};

    fn request(tpa: Ipv4Addr, op: u16) -> (Packet, InnerMeta) {
        let h = Headers {
            encap: None,
            eth: EtherRepr {
                dst: MacAddr::BROADCAST,
                src: GUEST_MAC,
                ether_type: ETHER_TYPE_ARP,
                vlan: None,
            },
            arp: Some(ArpRepr {
                op,
                sha: GUEST_MAC,
                spa: GUEST_IP4,
                tha: MacAddr::ZERO,
                tpa,
            }),
            l3: None,
            ulp: None,
        };
        parse(&h.build(&[]).unwrap())
    }

    #[test]
    fn request_for_gateway_gets_reply_from_gateway() {
        let s = samples::all()
            .into_iter()
            .find(|s| s.name == "arp-request")
            .unwrap();
        let (pkt, meta) = parse(&s.frame());
        let frame = reply(gen_arp_reply(&pkt, &meta, GW_MAC, GW_IP4).unwrap());
        assert_eq!(frame.len(), 42);
        // Ethernet: to the requester, from the gateway, type ARP.
        assert_eq!(&frame[0..6], &GUEST_MAC.bytes());
        assert_eq!(&frame[6..12], &GW_MAC.bytes());
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
        // htype 1, ptype IPv4, hlen 6, plen 4, op 2.
        assert_eq!(&frame[14..22], &[0, 1, 8, 0, 6, 4, 0, 2]);
        assert_eq!(&frame[22..28], &GW_MAC.bytes());
        assert_eq!(&frame[28..32], &GW_IP4.bytes());
        assert_eq!(&frame[32..38], &GUEST_MAC.bytes());
        assert_eq!(&frame[38..42], &GUEST_IP4.bytes());
        let (rp, rm) = parse(&frame);
        let back = ArpRepr::from_hdr(rp.view::<ArpEthIpv4Hdr>(rm.arp.unwrap()).unwrap());
        assert_eq!(back.op, ARP_OP_REPLY);
        assert_eq!((back.sha, back.spa), (GW_MAC, GW_IP4));
    }

    #[test]
    fn other_targets_and_replies_are_not_answered() {
        let (pkt, meta) = request(Ipv4Addr::from_const([172, 30, 0, 9]), ARP_OP_REQUEST);
        assert_eq!(
            gen_arp_reply(&pkt, &meta, GW_MAC, GW_IP4),
            Ok(HairpinReply::NoReply)
        );
        let (pkt, meta) = request(GW_IP4, ARP_OP_REPLY);
        assert_eq!(
            gen_arp_reply(&pkt, &meta, GW_MAC, GW_IP4),
            Ok(HairpinReply::NoReply)
        );
    }

    #[test]
    fn proxy_reply_claims_the_target_for_the_gateway_mac() {
        let other = Ipv4Addr::from_const([172, 30, 0, 9]);
        let (pkt, meta) = request(other, ARP_OP_REQUEST);
        let frame = reply(
            gen_proxy_arp_reply(&pkt, &meta, GW_MAC, |t, s| t == other && s == GUEST_IP4).unwrap(),
        );
        let (rp, rm) = parse(&frame);
        let back = ArpRepr::from_hdr(rp.view::<ArpEthIpv4Hdr>(rm.arp.unwrap()).unwrap());
        assert_eq!(back.op, ARP_OP_REPLY);
        assert_eq!((back.sha, back.spa), (GW_MAC, other));
        assert_eq!((back.tha, back.tpa), (GUEST_MAC, GUEST_IP4));
        assert_eq!(
            gen_proxy_arp_reply(&pkt, &meta, GW_MAC, |t, _| t != other),
            Ok(HairpinReply::NoReply)
        );
    }

    #[test]
    fn non_arp_packet_is_missing_meta() {
        let (pkt, meta) =
            crate::engine::hairpin::test_util::sample("Hairpin-ICMPv4", "EchoRequest");
        assert_eq!(
            gen_arp_reply(&pkt, &meta, GW_MAC, GW_IP4),
            Err(GenErr::MissingMeta("an ARP header"))
        );
    }
}
