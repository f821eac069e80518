use super::*;
use crate::build::Headers;
use crate::build::samples::{GUEST_LL, GUEST_MAC, GW_LL, GW_MAC};
use crate::engine::hairpin::test_util::{assert_checksums_valid, parse, reply, sample};
use crate::wire::icmp::NdpOption;
use alloc::vec;
use alloc::vec::Vec;

fn ra_cfg() -> RouterAdvertisement {
    RouterAdvertisement::new(GUEST_MAC, GW_MAC, true, Some(1500))
}

fn na_cfg() -> NeighborAdvertisement {
    NeighborAdvertisement::new(GUEST_MAC, GW_MAC, true, true)
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// An NDP message from the guest MAC; `rest` is the ICMPv6 header's last 4 bytes.
struct Ndp {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    eth_dst: MacAddr,
    hop_limit: u8,
    ty: u8,
    code: u8,
    body: Vec<u8>,
}

impl Ndp {
    fn frame(&self) -> Vec<u8> {
        let mut ip = Ipv6Repr::new(self.src, self.dst, proto::ICMPV6);
        ip.hop_limit = self.hop_limit;
        Headers::new(
            EtherRepr {
                dst: self.eth_dst,
                src: GUEST_MAC,
                ether_type: ETHER_TYPE_IPV6,
                vlan: None,
            },
            L3Repr::Ipv6(ip),
            UlpRepr::Icmpv6(IcmpRepr {
                ty: self.ty,
                code: self.code,
                csum: 0,
                rest: [0; 4],
            }),
        )
        .build(&self.body)
        .unwrap()
    }
}

fn slla(mac: MacAddr) -> Vec<u8> {
    let mut o = vec![0u8; 8];
    emit_lla_option(&mut o, ndp_opt::SOURCE_LLA, mac.bytes()).unwrap();
    o
}

fn rs(src: Ipv6Addr, options: Vec<u8>) -> Ndp {
    Ndp {
        src,
        dst: Ipv6Addr::ALL_ROUTERS,
        eth_dst: MacAddr::from_const([0x33, 0x33, 0, 0, 0, 2]),
        hop_limit: 255,
        ty: v6_type::ROUTER_SOLICIT,
        code: 0,
        body: options,
    }
}

fn ns(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr, options: Vec<u8>) -> Ndp {
    let mut body = target.bytes().to_vec();
    body.extend_from_slice(&options);
    Ndp {
        src,
        dst,
        eth_dst: GW_MAC,
        hop_limit: 255,
        ty: v6_type::NEIGHBOR_SOLICIT,
        code: 0,
        body,
    }
}

fn answer_rs(m: &Ndp, cfg: &RouterAdvertisement) -> Result<HairpinReply, GenErr> {
    let (pkt, meta) = parse(&m.frame());
    gen_router_advert(&pkt, &meta, cfg)
}

fn answer_ns(m: &Ndp, cfg: &NeighborAdvertisement) -> Result<HairpinReply, GenErr> {
    let (pkt, meta) = parse(&m.frame());
    gen_neighbor_advert(&pkt, &meta, cfg)
}

/// The reply's ICMPv6 message (header and body) after checking addressing and checksum.
fn icmp_of(frame: &[u8], eth_dst: MacAddr, ip_dst: Ipv6Addr) -> Vec<u8> {
    let (pkt, meta) = parse(frame);
    assert_eq!((meta.eth.src, meta.eth.dst), (GW_MAC, eth_dst));
    let ip = pkt.view::<Ipv6Hdr>(meta.l3.unwrap().loc()).unwrap();
    assert_eq!((ip.src, ip.dst), (GW_LL.bytes(), ip_dst.bytes()));
    assert_eq!(ip.hop_limit, 255);
    assert_checksums_valid(frame, &meta);
    frame[meta.ulp.unwrap().loc.off as usize..].to_vec()
}

fn options(bytes: &[u8]) -> Vec<NdpOption<'_>> {
    NdpOptions::new(bytes).map(Result::unwrap).collect()
}

#[test]
fn router_solicit_sample_gets_an_86_byte_ra() {
    let (pkt, meta) = sample("Hairpin-ICMPv6", "RouterSolicit");
    let frame = reply(gen_router_advert(&pkt, &meta, &ra_cfg()).unwrap());
    assert_eq!(frame.len(), 86);
    let m = icmp_of(&frame, GUEST_MAC, GUEST_LL);
    assert_eq!((m[0], m[1]), (v6_type::ROUTER_ADVERT, 0));
    // Cur hop limit 255, M flag only, lifetime 9000 s, reachable and retransmit 0.
    assert_eq!(&m[4..16], &[255, 0x80, 0x23, 0x28, 0, 0, 0, 0, 0, 0, 0, 0]);
    let opts = options(&m[16..]);
    assert_eq!(opts.len(), 2);
    assert_eq!(
        (opts[0].ty, opts[0].lla()),
        (ndp_opt::SOURCE_LLA, Some(GW_MAC.bytes()))
    );
    assert_eq!(opts[1].mtu(), Some(1500));
}

#[test]
fn unmanaged_ra_without_mtu() {
    let cfg = RouterAdvertisement::new(GUEST_MAC, GW_MAC, false, None);
    let frame = reply(answer_rs(&rs(GUEST_LL, slla(GUEST_MAC)), &cfg).unwrap());
    assert_eq!(frame.len(), 78);
    let m = icmp_of(&frame, GUEST_MAC, GUEST_LL);
    assert_eq!(m[5], 0);
    assert_eq!(options(&m[16..]).len(), 1);
}

#[test]
fn rs_from_unspecified_address_gets_a_multicast_ra() {
    let frame = reply(answer_rs(&rs(Ipv6Addr::ANY_ADDR, vec![]), &ra_cfg()).unwrap());
    icmp_of(
        &frame,
        MacAddr::from_const([0x33, 0x33, 0, 0, 0, 1]),
        Ipv6Addr::ALL_NODES,
    );
    assert_eq!(
        answer_rs(&rs(Ipv6Addr::ANY_ADDR, slla(GUEST_MAC)), &ra_cfg()),
        Err(GenErr::Malformed(
            "RS from the unspecified address carries a Source Link-Layer Address"
        ))
    );
}

#[test]
fn invalid_router_solicits_are_malformed() {
    let mut m = rs(GUEST_LL, slla(GUEST_MAC));
    m.hop_limit = 254;
    assert_eq!(
        answer_rs(&m, &ra_cfg()),
        Err(GenErr::Malformed("NDP message hop limit is not 255"))
    );
    let mut m = rs(GUEST_LL, slla(GUEST_MAC));
    m.code = 1;
    assert_eq!(
        answer_rs(&m, &ra_cfg()),
        Err(GenErr::Malformed("NDP message code is not 0"))
    );
    let mut zero_len = slla(GUEST_MAC);
    zero_len[1] = 0;
    assert!(matches!(
        answer_rs(&rs(GUEST_LL, zero_len), &ra_cfg()),
        Err(GenErr::Malformed(_))
    ));
    // A corrupted checksum.
    let mut f = rs(GUEST_LL, slla(GUEST_MAC)).frame();
    f[56] ^= 0x40;
    let (pkt, meta) = parse(&f);
    assert_eq!(
        gen_router_advert(&pkt, &meta, &ra_cfg()),
        Err(GenErr::Malformed("ICMPv6 checksum is wrong"))
    );
}

#[test]
fn rs_from_another_mac_gets_no_reply() {
    let cfg = RouterAdvertisement::new(MacAddr::from_const([2, 0, 0, 0, 0, 9]), GW_MAC, true, None);
    assert_eq!(
        answer_rs(&rs(GUEST_LL, slla(GUEST_MAC)), &cfg),
        Ok(HairpinReply::NoReply)
    );
}

#[test]
fn neighbor_solicit_sample_gets_an_86_byte_na() {
    let (pkt, meta) = sample("Hairpin-ICMPv6", "NeighborSolicit");
    let frame = reply(gen_neighbor_advert(&pkt, &meta, &na_cfg()).unwrap());
    assert_eq!(frame.len(), 86);
    let m = icmp_of(&frame, GUEST_MAC, GUEST_LL);
    assert_eq!((m[0], m[1]), (v6_type::NEIGHBOR_ADVERT, 0));
    // R, S and O.
    assert_eq!(&m[4..8], &[0xe0, 0, 0, 0]);
    assert_eq!(&m[8..24], &GW_LL.bytes());
    let opts = options(&m[24..]);
    assert_eq!(opts.len(), 1);
    assert_eq!(
        (opts[0].ty, opts[0].lla()),
        (ndp_opt::TARGET_LLA, Some(GW_MAC.bytes()))
    );
}

#[test]
fn na_from_a_non_router_lacks_the_r_flag() {
    let cfg = NeighborAdvertisement::new(GUEST_MAC, GW_MAC, false, false);
    let m = ns(GUEST_LL, GW_LL, GW_LL, slla(GUEST_MAC));
    let frame = reply(answer_ns(&m, &cfg).unwrap());
    assert_eq!(icmp_of(&frame, GUEST_MAC, GUEST_LL)[4], 0x60);
}

#[test]
fn ns_for_another_target_gets_no_reply() {
    let m = ns(GUEST_LL, GW_LL, v6("fe80::1"), slla(GUEST_MAC));
    assert_eq!(answer_ns(&m, &na_cfg()), Ok(HairpinReply::NoReply));
    // From another MAC.
    let cfg = NeighborAdvertisement::new(GW_MAC, GW_MAC, true, true);
    let m = ns(GUEST_LL, GW_LL, GW_LL, slla(GUEST_MAC));
    assert_eq!(answer_ns(&m, &cfg), Ok(HairpinReply::NoReply));
}

#[test]
fn dad_ns_from_unspecified_gets_unsolicited_na_to_all_nodes() {
    let sn = GW_LL.solicited_node_multicast();
    let m = ns(Ipv6Addr::ANY_ADDR, sn, GW_LL, vec![]);
    let frame = reply(answer_ns(&m, &na_cfg()).unwrap());
    let icmp = icmp_of(
        &frame,
        MacAddr::from_const([0x33, 0x33, 0, 0, 0, 1]),
        Ipv6Addr::ALL_NODES,
    );
    // R and O, not S.
    assert_eq!(icmp[4], 0xa0);
    let strict = NeighborAdvertisement::new(GUEST_MAC, GW_MAC, true, false);
    assert_eq!(answer_ns(&m, &strict), Ok(HairpinReply::NoReply));
}

#[test]
fn invalid_neighbor_solicits_are_malformed() {
    let sn = GW_LL.solicited_node_multicast();
    let cases = [
        (
            ns(GUEST_LL, GW_LL, v6("ff02::1"), slla(GUEST_MAC)),
            "NS target is a multicast address",
        ),
        (
            ns(Ipv6Addr::ANY_ADDR, GW_LL, GW_LL, vec![]),
            "NS from the unspecified address is not sent to the target's solicited-node group",
        ),
        (
            ns(Ipv6Addr::ANY_ADDR, sn, GW_LL, slla(GUEST_MAC)),
            "NS from the unspecified address carries a Source Link-Layer Address",
        ),
    ];
    for (m, why) in cases {
        assert_eq!(answer_ns(&m, &na_cfg()), Err(GenErr::Malformed(why)));
    }
    let mut m = ns(GUEST_LL, GW_LL, GW_LL, slla(GUEST_MAC));
    m.hop_limit = 64;
    assert_eq!(
        answer_ns(&m, &na_cfg()),
        Err(GenErr::Malformed("NDP message hop limit is not 255"))
    );
    let mut m = ns(GUEST_LL, GW_LL, GW_LL, vec![]);
    m.body.truncate(12);
    assert_eq!(
        answer_ns(&m, &na_cfg()),
        Err(GenErr::Malformed("NS shorter than 24 bytes"))
    );
    let mut overrun = slla(GUEST_MAC);
    overrun[1] = 2;
    assert!(matches!(
        answer_ns(&ns(GUEST_LL, GW_LL, GW_LL, overrun), &na_cfg()),
        Err(GenErr::Malformed(_))
    ));
}

#[test]
fn wrong_message_types_are_refused() {
    let (pkt, meta) = sample("Hairpin-ICMPv6", "NeighborSolicit");
    assert_eq!(
        gen_router_advert(&pkt, &meta, &ra_cfg()),
        Err(GenErr::Unexpected(
            "ICMPv6 message is not a Router Solicitation"
        ))
    );
    let (pkt, meta) = sample("Hairpin-ICMPv6", "RouterSolicit");
    assert_eq!(
        gen_neighbor_advert(&pkt, &meta, &na_cfg()),
        Err(GenErr::Unexpected(
            "ICMPv6 message is not a Neighbor Solicitation"
        ))
    );
    let (pkt, meta) = sample("Hairpin-ICMPv4", "EchoRequest");
    assert_eq!(
        gen_neighbor_advert(&pkt, &meta, &na_cfg()),
        Err(GenErr::MissingMeta("an IPv6 header"))
    );
}
