use super::*;
use crate::build::Headers;
use crate::build::samples::{GUEST_IP4, GUEST_MAC, GW_IP4, GW_MAC};
use crate::engine::hairpin::test_util::{Garbage, assert_checksums_valid, parse, reply, sample};
use crate::packet::parse::L3Info;
use crate::wire::ip4::Ipv4Hdr;
use crate::wire::udp::UdpHdr;
use alloc::vec;
use opte_api::{DomainName, Ipv4Cidr};

fn name(s: &str) -> DomainName {
    s.parse().unwrap()
}

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().unwrap()
}

/// The hairpin port of BENCH.md §3.2, configured as the VPC gateway configures it: a /32
/// mask, the gateway reachable on-link and the default route through it.
fn bench_cfg() -> Dhcp4Config {
    Dhcp4Config {
        client_mac: GUEST_MAC,
        client_ip: GUEST_IP4,
        gw_mac: GW_MAC,
        gw_ip: GW_IP4,
        prefix_len: Ipv4PrefixLen::NETMASK_ALL,
        routes: vec![
            SubnetRouterPair::new(cidr("172.30.0.1/32"), Ipv4Addr::ANY_ADDR),
            SubnetRouterPair::new(cidr("0.0.0.0/0"), GW_IP4),
        ],
        cfg: DhcpCfg {
            hostname: Some(name("testbox")),
            host_domain: Some(name("test.oxide.computer")),
            domain_search_list: vec![name("oxide.computer")],
            dns4_servers: vec![[8, 8, 8, 8].into(), [1, 1, 1, 1].into()],
            dns6_servers: vec![],
        },
    }
}

fn bare_cfg() -> Dhcp4Config {
    Dhcp4Config {
        routes: vec![],
        cfg: DhcpCfg::default(),
        ..bench_cfg()
    }
}

/// The options of an Ack built for `cfg`, after the four that every Ack has.
fn config_options(cfg: &Dhcp4Config) -> Vec<u8> {
    let mut out = Vec::new();
    put_config_options(&mut out, cfg);
    out
}

/// A client message carrying `body` as a UDP payload, broadcast from the guest.
fn request_frame(body: &[u8]) -> Vec<u8> {
    let mut ip = Ipv4Repr::new(Ipv4Addr::ANY_ADDR, Ipv4Addr::LOCAL_BCAST, proto::UDP);
    ip.ttl = 64;
    Headers::new(
        EtherRepr {
            dst: MacAddr::BROADCAST,
            src: GUEST_MAC,
            ether_type: ETHER_TYPE_IPV4,
            vlan: None,
        },
        L3Repr::Ipv4(ip),
        UlpRepr::Udp(UdpRepr::new(CLIENT_PORT, SERVER_PORT)),
    )
    .build(body)
    .unwrap()
}

/// The DHCP payload of the bench Discover sample, to edit.
fn discover_body() -> Vec<u8> {
    let f = crate::build::samples::hairpin("Hairpin-DHCPv4", "Discover")
        .unwrap()
        .frame();
    f[42..].to_vec()
}

fn answer(body: &[u8], cfg: &Dhcp4Config) -> Result<HairpinReply, GenErr> {
    let (pkt, meta) = parse(&request_frame(body));
    gen_dhcp4_reply(&pkt, &meta, cfg)
}

/// The reply's DHCP message, after checking the frame's addressing and checksums.
fn reply_message_of(frame: &[u8], eth_dst: MacAddr, ip_dst: Ipv4Addr) -> Vec<u8> {
    let (pkt, meta) = parse(frame);
    assert_eq!(meta.eth.src, GW_MAC);
    assert_eq!(meta.eth.dst, eth_dst);
    let Some(L3Info::Ipv4(i)) = meta.l3 else {
        panic!("not IPv4")
    };
    let ip = pkt.view::<Ipv4Hdr>(i.loc).unwrap();
    assert_eq!((ip.src, ip.dst), (GW_IP4.bytes(), ip_dst.bytes()));
    assert_eq!(ip.ttl, REPLY_TTL);
    let udp = pkt.view::<UdpHdr>(meta.ulp.unwrap().loc).unwrap();
    assert_eq!((udp.src_port.get(), udp.dst_port.get()), (67, 68));
    assert_eq!(usize::from(udp.len.get()), 8 + meta.body_len as usize);
    assert_checksums_valid(frame, &meta);
    frame[meta.body.off as usize..].to_vec()
}

fn options_of(msg: &[u8]) -> Vec<(u8, Vec<u8>)> {
    Dhcp4Message::parse(msg)
        .unwrap()
        .options()
        .map(|o| o.map(|(c, d)| (c, d.to_vec())).unwrap())
        .collect()
}

#[test]
fn hostname_encode() {
    let cfg = Dhcp4Config {
        cfg: DhcpCfg {
            hostname: Some(name("testbox")),
            ..DhcpCfg::default()
        },
        ..bare_cfg()
    };
    assert_eq!(config_options(&cfg), b"\x0c\x07testbox");
    // A fully-qualified name loses its root dot: option 12 is text, not a DNS name.
    let fq = Dhcp4Config {
        cfg: DhcpCfg {
            hostname: Some(name("testbox.")),
            ..DhcpCfg::default()
        },
        ..bare_cfg()
    };
    assert_eq!(config_options(&fq), b"\x0c\x07testbox");
}

#[test]
fn domainname_encode() {
    let cfg = Dhcp4Config {
        cfg: DhcpCfg {
            host_domain: Some(name("test.oxide.computer")),
            ..DhcpCfg::default()
        },
        ..bare_cfg()
    };
    assert_eq!(config_options(&cfg), b"\x0f\x13test.oxide.computer");
}

#[test]
fn domain_search_option_encode() {
    let cfg = Dhcp4Config {
        cfg: DhcpCfg {
            domain_search_list: vec![name("eng.apple.com"), name("marketing.apple.com.")],
            ..DhcpCfg::default()
        },
        ..bare_cfg()
    };
    // RFC 3397 §2's example list, in wire form without compression.
    let mut want = vec![opt::DOMAIN_SEARCH, 36];
    want.extend_from_slice(b"\x03eng\x05apple\x03com\x00\x09marketing\x05apple\x03com\x00");
    assert_eq!(config_options(&cfg), want);
}

#[test]
fn offlink_encode() {
    // The VPC gateway's routes: the gateway itself is on-link (router 0.0.0.0) even under a
    // /32 mask, and everything else goes through it.
    let cfg = Dhcp4Config {
        cfg: DhcpCfg::default(),
        ..bench_cfg()
    };
    assert_eq!(
        config_options(&cfg),
        [121, 14, 32, 172, 30, 0, 1, 0, 0, 0, 0, 0, 172, 30, 0, 1]
    );
}

#[test]
fn rfc3442_encode() {
    // The destination encodings of RFC 3442 §1, each via router 10.0.0.1.
    let gw = Ipv4Addr::from_const([10, 0, 0, 1]);
    let cfg = Dhcp4Config {
        routes: ["0.0.0.0/0", "10.0.0.0/8", "10.17.0.0/16", "10.229.0.128/25"]
            .iter()
            .map(|c| SubnetRouterPair::new(cidr(c), gw))
            .collect(),
        ..bare_cfg()
    };
    assert_eq!(
        config_options(&cfg),
        [
            121, 27, 0, 10, 0, 0, 1, 8, 10, 10, 0, 0, 1, 16, 10, 17, 10, 0, 0, 1, 25, 10, 229, 0,
            128, 10, 0, 0, 1
        ]
    );
}

#[test]
fn option_longer_than_255_bytes_is_split() {
    let names: Vec<DomainName> = (0..20)
        .map(|i| name(&alloc::format!("zone{i:02}.example.com")))
        .collect();
    let wire: Vec<u8> = names.iter().flat_map(|n| n.encode().to_vec()).collect();
    assert_eq!(wire.len(), 20 * 20);
    let cfg = Dhcp4Config {
        cfg: DhcpCfg {
            domain_search_list: names,
            ..DhcpCfg::default()
        },
        ..bare_cfg()
    };
    let out = config_options(&cfg);
    // One full option, then the rest under the same code, concatenating to the list.
    assert_eq!(&out[..2], &[opt::DOMAIN_SEARCH, 255]);
    assert_eq!(&out[257..259], &[opt::DOMAIN_SEARCH, 145]);
    assert_eq!(out.len(), 2 + 255 + 2 + 145);
    assert_eq!([&out[2..257], &out[259..]].concat(), wire);
}

#[test]
fn discover_sample_gets_a_384_byte_offer() {
    let (pkt, meta) = sample("Hairpin-DHCPv4", "Discover");
    let frame = reply(gen_dhcp4_reply(&pkt, &meta, &bench_cfg()).unwrap());
    assert_eq!(frame.len(), 384);
    // The sample asks for broadcast.
    let msg = reply_message_of(&frame, MacAddr::BROADCAST, Ipv4Addr::LOCAL_BCAST);
    let (h, _) = BootpHdr::ref_from_prefix(&msg[..]).unwrap();
    assert_eq!((h.op, h.htype, h.hlen, h.hops), (2, 1, 6, 0));
    assert_eq!(h.xid, 1234u32.to_be_bytes());
    assert_eq!((h.secs.get(), h.flags.get()), (0, 0x8000));
    assert_eq!(h.ciaddr, [0; 4]);
    assert_eq!(h.yiaddr, GUEST_IP4.bytes());
    assert_eq!(h.siaddr, GW_IP4.bytes());
    assert_eq!(h.giaddr, [0; 4]);
    assert_eq!(&h.chaddr[..6], &GUEST_MAC.bytes());
    assert_eq!(&h.chaddr[6..], &[0; 10]);
    assert_eq!(h.magic, [99, 130, 83, 99]);
    let want: Vec<(u8, Vec<u8>)> = vec![
        (53, vec![2]),
        (54, vec![172, 30, 0, 1]),
        (51, vec![0, 1, 0x51, 0x80]),
        (1, vec![255, 255, 255, 255]),
        (3, vec![172, 30, 0, 1]),
        (6, vec![8, 8, 8, 8, 1, 1, 1, 1]),
        (121, vec![32, 172, 30, 0, 1, 0, 0, 0, 0, 0, 172, 30, 0, 1]),
        (12, b"testbox".to_vec()),
        (15, b"test.oxide.computer".to_vec()),
        (119, b"\x05oxide\x08computer\x00".to_vec()),
    ];
    assert_eq!(options_of(&msg), want);
    // 240 fixed + 102 of options, End last: no padding needed above 300 bytes.
    assert_eq!(msg.len(), 342);
    assert_eq!(msg.last(), Some(&opt::END));
}

#[test]
fn request_sample_gets_a_384_byte_ack() {
    let (pkt, meta) = sample("Hairpin-DHCPv4", "Request");
    let frame = reply(gen_dhcp4_reply(&pkt, &meta, &bench_cfg()).unwrap());
    assert_eq!(frame.len(), 384);
    let msg = reply_message_of(&frame, MacAddr::BROADCAST, Ipv4Addr::LOCAL_BCAST);
    let opts = options_of(&msg);
    assert_eq!(opts[0], (53, vec![msg_type::ACK]));
    assert_eq!(opts.len(), 10);
}

#[test]
fn reply_without_broadcast_flag_is_unicast_to_the_client() {
    let mut body = discover_body();
    body[10..12].copy_from_slice(&[0, 0]);
    let frame = reply(answer(&body, &bench_cfg()).unwrap());
    let msg = reply_message_of(&frame, GUEST_MAC, GUEST_IP4);
    assert_eq!(&msg[10..12], &[0, 0]);
}

#[test]
fn renewing_request_is_acked_to_its_ciaddr() {
    let mut body = discover_body();
    body[242] = msg_type::REQUEST;
    body[10..12].copy_from_slice(&[0, 0]);
    body[12..16].copy_from_slice(&GUEST_IP4.bytes());
    let frame = reply(answer(&body, &bench_cfg()).unwrap());
    let msg = reply_message_of(&frame, GUEST_MAC, GUEST_IP4);
    let (h, _) = BootpHdr::ref_from_prefix(&msg[..]).unwrap();
    assert_eq!(h.ciaddr, GUEST_IP4.bytes());
    assert_eq!(options_of(&msg)[0], (53, vec![msg_type::ACK]));
}

/// The Discover sample turned into a Request with extra options before End.
fn request_with(extra: &[u8]) -> Vec<u8> {
    let mut body = discover_body();
    body.truncate(240);
    body.extend_from_slice(&[53, 1, msg_type::REQUEST]);
    body.extend_from_slice(extra);
    body.push(opt::END);
    body
}

#[test]
fn request_for_our_server_and_address_is_acked() {
    let body = request_with(&[54, 4, 172, 30, 0, 1, 50, 4, 172, 30, 0, 5]);
    let frame = reply(answer(&body, &bench_cfg()).unwrap());
    let msg = reply_message_of(&frame, MacAddr::BROADCAST, Ipv4Addr::LOCAL_BCAST);
    assert_eq!(options_of(&msg)[0], (53, vec![msg_type::ACK]));
}

#[test]
fn request_selecting_another_server_gets_no_reply() {
    let body = request_with(&[54, 4, 172, 30, 0, 99]);
    assert_eq!(answer(&body, &bench_cfg()), Ok(HairpinReply::NoReply));
}

#[test]
fn request_for_another_address_gets_a_broadcast_nak() {
    let body = request_with(&[50, 4, 10, 0, 0, 7]);
    let frame = reply(answer(&body, &bench_cfg()).unwrap());
    let msg = reply_message_of(&frame, MacAddr::BROADCAST, Ipv4Addr::LOCAL_BCAST);
    let (h, _) = BootpHdr::ref_from_prefix(&msg[..]).unwrap();
    assert_eq!((h.yiaddr, h.siaddr, h.ciaddr), ([0; 4], [0; 4], [0; 4]));
    assert_eq!(
        options_of(&msg),
        vec![(53, vec![msg_type::NAK]), (54, vec![172, 30, 0, 1])]
    );
    assert_eq!(msg.len(), MIN_MESSAGE_LEN);
}

#[test]
fn other_messages_get_no_reply() {
    for t in [
        msg_type::RELEASE,
        msg_type::DECLINE,
        msg_type::INFORM,
        msg_type::OFFER,
        42,
    ] {
        let mut body = discover_body();
        body[242] = t;
        assert_eq!(
            answer(&body, &bench_cfg()),
            Ok(HairpinReply::NoReply),
            "type {t}"
        );
    }
    // Plain BOOTP: no message type option.
    let mut body = discover_body();
    body.truncate(240);
    body.push(opt::END);
    assert_eq!(answer(&body, &bench_cfg()), Ok(HairpinReply::NoReply));
    // On behalf of another hardware address.
    let mut body = discover_body();
    body[33] ^= 1;
    assert_eq!(answer(&body, &bench_cfg()), Ok(HairpinReply::NoReply));
}

#[test]
fn bad_bootp_headers_are_malformed() {
    let mut body = discover_body();
    body[0] = BOOTREPLY;
    assert_eq!(
        answer(&body, &bench_cfg()),
        Err(GenErr::Malformed("BOOTP op is not BOOTREQUEST (1)"))
    );
    let mut body = discover_body();
    body[2] = 8;
    assert!(matches!(
        answer(&body, &bench_cfg()),
        Err(GenErr::Malformed(_))
    ));
    let mut body = discover_body();
    body[236] = 0;
    assert_eq!(
        answer(&body, &bench_cfg()),
        Err(GenErr::Malformed("DHCP magic cookie is not 99.130.83.99"))
    );
}

#[test]
fn truncated_requests_are_malformed() {
    let body = discover_body();
    for n in 0..240 {
        assert_eq!(
            answer(&body[..n], &bench_cfg()),
            Err(GenErr::Malformed(
                "DHCP message shorter than its 240-byte header"
            )),
            "{n} bytes"
        );
    }
    // An option whose length runs past the end, or with no length byte at all.
    for tail in [&[53u8, 5, 1][..], &[53], &[12, 200, b'x']] {
        let mut b = body[..240].to_vec();
        b.extend_from_slice(tail);
        assert_eq!(
            answer(&b, &bench_cfg()),
            Err(GenErr::Malformed(
                "DHCP option runs past the end of the message"
            ))
        );
        assert_eq!(dhcp4_message_type(&b), None);
    }
}

#[test]
fn garbage_requests_never_panic() {
    let mut g = Garbage(0x5eed_d4c9);
    let cfg = bench_cfg();
    for i in 0..2000 {
        let n = (g.next_u64() % 400) as usize;
        let mut body = g.bytes(n);
        if i % 2 == 0 && body.len() >= 244 {
            // Keep the header plausible so that the option walk is exercised.
            body[0] = 1;
            body[1] = 1;
            body[2] = 6;
            body[28..34].copy_from_slice(&GUEST_MAC.bytes());
            body[236..240].copy_from_slice(&MAGIC_COOKIE);
        }
        match answer(&body, &cfg) {
            Ok(HairpinReply::Reply(f)) => {
                let (_, meta) = parse(&f);
                assert_checksums_valid(&f, &meta);
            }
            Ok(HairpinReply::NoReply) | Err(GenErr::Malformed(_)) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
        let _ = dhcp4_message_type(&body);
    }
}

#[test]
fn message_type_for_the_data_predicate() {
    let body = discover_body();
    assert_eq!(dhcp4_message_type(&body), Some(msg_type::DISCOVER));
    let req = request_with(&[]);
    assert_eq!(dhcp4_message_type(&req), Some(msg_type::REQUEST));
    assert_eq!(dhcp4_message_type(&body[..239]), None);
    assert_eq!(dhcp4_message_type(b"not dhcp"), None);
    // Option 53 with a two-byte body is not a message type.
    let mut odd = body[..240].to_vec();
    odd.extend_from_slice(&[53, 2, 1, 1, 255]);
    assert_eq!(dhcp4_message_type(&odd), None);
    // Pads before the option are skipped; options after End are not options.
    let mut padded = body[..240].to_vec();
    padded.extend_from_slice(&[0, 0, 53, 1, 3, 255]);
    assert_eq!(dhcp4_message_type(&padded), Some(msg_type::REQUEST));
    let mut ended = body[..240].to_vec();
    ended.extend_from_slice(&[255, 53, 1, 3]);
    assert_eq!(dhcp4_message_type(&ended), None);
}

#[test]
fn non_dhcp_packets_are_refused() {
    let (pkt, meta) = sample("Hairpin-ICMPv4", "EchoRequest");
    assert_eq!(
        gen_dhcp4_reply(&pkt, &meta, &bench_cfg()),
        Err(GenErr::MissingMeta("a UDP header"))
    );
    let (pkt, meta) = sample("Hairpin-DHCPv6", "Solicit");
    assert_eq!(
        gen_dhcp4_reply(&pkt, &meta, &bench_cfg()),
        Err(GenErr::MissingMeta("an IPv4 header"))
    );
    let mut f = request_frame(&discover_body());
    // Destination port 68 instead of 67 (the UDP checksum is not checked here).
    f[37] = 68;
    let (pkt, meta) = parse(&f);
    assert!(matches!(
        gen_dhcp4_reply(&pkt, &meta, &bench_cfg()),
        Err(GenErr::Unexpected(_))
    ));
}
