use super::options::tests::SNOOPED_SOLICIT;
use super::*;
use crate::build::Headers;
use crate::build::samples::{GUEST_IP6, GUEST_LL, GUEST_MAC, GW_LL, GW_MAC};
use crate::engine::hairpin::test_util::{Garbage, assert_checksums_valid, parse, reply, sample};
use crate::packet::parse::L3Info;
use crate::wire::udp::UdpHdr;
use alloc::vec;
use opte_api::LeasedAddress;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// The hairpin port of BENCH.md §3.2, as the VPC gateway configures its DHCPv6 server.
fn bench_cfg() -> Dhcp6Config {
    Dhcp6Config {
        client_mac: GUEST_MAC,
        server_mac: GW_MAC,
        addrs: AddressInfo {
            addrs: vec![LeasedAddress::infinite_lease(GUEST_IP6)],
            renew: u32::MAX,
        },
        cfg: DhcpCfg {
            hostname: "testbox".parse().ok(),
            host_domain: "test.oxide.computer".parse().ok(),
            domain_search_list: vec!["oxide.computer".parse().unwrap()],
            dns4_servers: vec![[8, 8, 8, 8].into(), [1, 1, 1, 1].into()],
            dns6_servers: vec![
                v6("2001:4860:4860::8888"),
                v6("2001:4860:4860::8844"),
                v6("2606:4700:4700::1111"),
                v6("2606:4700:4700::1001"),
            ],
        },
    }
}

fn opt(code: u16, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    put_raw(&mut v, code, data).unwrap();
    v
}

fn message(ty: u8, opts: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![ty, 0xab, 0xcd, 0xef];
    for o in opts {
        m.extend_from_slice(o);
    }
    m
}

fn client_id() -> Vec<u8> {
    opt(code::CLIENT_ID, &duid_ll(GUEST_MAC))
}

fn server_id(mac: MacAddr) -> Vec<u8> {
    opt(code::SERVER_ID, &duid_ll(mac))
}

fn elapsed() -> Vec<u8> {
    opt(code::ELAPSED_TIME, &[0, 0])
}

fn oro(codes: &[u16]) -> Vec<u8> {
    let b: Vec<u8> = codes.iter().flat_map(|c| c.to_be_bytes()).collect();
    opt(code::ORO, &b)
}

fn ia_addr(addr: Ipv6Addr) -> Vec<u8> {
    let mut b = Vec::new();
    put_ia_addr_body(&mut b, addr, 100, 200);
    opt(code::IA_ADDR, &b)
}

fn ia_na(iaid: u32, inner: &[Vec<u8>]) -> Vec<u8> {
    let mut b = iaid.to_be_bytes().to_vec();
    b.extend_from_slice(&[0; 8]);
    for o in inner {
        b.extend_from_slice(o);
    }
    opt(code::IA_NA, &b)
}

fn request_frame(body: &[u8]) -> Vec<u8> {
    let mut ip = Ipv6Repr::new(GUEST_LL, v6("ff02::1:2"), proto::UDP);
    ip.hop_limit = 1;
    Headers::new(
        EtherRepr {
            dst: MacAddr::from_const([0x33, 0x33, 0, 1, 0, 2]),
            src: GUEST_MAC,
            ether_type: ETHER_TYPE_IPV6,
            vlan: None,
        },
        L3Repr::Ipv6(ip),
        UlpRepr::Udp(UdpRepr::new(CLIENT_PORT, SERVER_PORT)),
    )
    .build(body)
    .unwrap()
}

fn answer(body: &[u8], cfg: &Dhcp6Config) -> Result<HairpinReply, GenErr> {
    let (pkt, meta) = parse(&request_frame(body));
    gen_dhcp6_reply(&pkt, &meta, cfg)
}

/// The reply's DHCPv6 message, after checking its addressing and checksum.
fn reply_body(frame: &[u8]) -> Vec<u8> {
    let (pkt, meta) = parse(frame);
    assert_eq!((meta.eth.src, meta.eth.dst), (GW_MAC, GUEST_MAC));
    let Some(L3Info::Ipv6(i)) = meta.l3 else {
        panic!("not IPv6")
    };
    let ip = pkt.view::<Ipv6Hdr>(i.loc).unwrap();
    // From the gateway's EUI-64 link-local address to the client's source.
    assert_eq!(ip.src, GW_LL.bytes());
    assert_eq!(ip.dst, GUEST_LL.bytes());
    assert_eq!(ip.hop_limit, REPLY_HOP_LIMIT);
    let udp = pkt.view::<UdpHdr>(meta.ulp.unwrap().loc).unwrap();
    assert_eq!((udp.src_port.get(), udp.dst_port.get()), (547, 546));
    assert_checksums_valid(frame, &meta);
    frame[meta.body.off as usize..].to_vec()
}

fn answered(body: &[u8], cfg: &Dhcp6Config) -> Vec<u8> {
    reply_body(&reply(answer(body, cfg).unwrap()))
}

fn codes(msg: &Message<'_>) -> Vec<u16> {
    msg.options.iter().map(|o| o.code()).collect()
}

fn status_of(opts: Options<'_>) -> Option<u16> {
    match opts.find(code::STATUS_CODE)? {
        Dhcp6Option::StatusCode(s) => Some(s.code),
        _ => None,
    }
}

/// An IA_NA of a reply: IAID, T1, T2, its addresses (address, preferred, valid) and status.
type IaSummary = (u32, u32, u32, Vec<(Ipv6Addr, u32, u32)>, Option<u16>);

/// The IA_NA options of a reply, in order.
fn ia_nas_of(body: &[u8]) -> Vec<IaSummary> {
    let m = Message::parse(body).unwrap();
    m.ia_nas()
        .map(|ia| {
            let addrs = ia
                .options
                .iter()
                .filter_map(|o| match o {
                    Dhcp6Option::IaAddr(a) => Some((a.addr, a.preferred, a.valid)),
                    _ => None,
                })
                .collect();
            (ia.iaid, ia.t1, ia.t2, addrs, status_of(ia.options))
        })
        .collect()
}

#[test]
fn solicit_sample_gets_a_226_byte_advertise() {
    let (pkt, meta) = sample("Hairpin-DHCPv6", "Solicit");
    let frame = reply(gen_dhcp6_reply(&pkt, &meta, &bench_cfg()).unwrap());
    assert_eq!(frame.len(), 226);
    let body = reply_body(&frame);
    assert_eq!(&body[..4], &[msg_type::ADVERTISE, 0, 1, 2]);
    // Server id: DUID-LL of the gateway MAC; then the client id, echoed.
    assert_eq!(
        &body[4..18],
        &[0, 2, 0, 10, 0, 3, 0, 1, 0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]
    );
    assert_eq!(
        &body[18..32],
        &[0, 1, 0, 10, 0, 3, 0, 1, 0xa8, 0x40, 0x25, 0xfa, 0xfa, 0x37]
    );
    let m = Message::parse(&body).unwrap();
    assert_eq!(codes(&m), [2, 1, 23, 3, 24]);
    let Some(Dhcp6Option::DnsServers(dns)) = m.options.find(code::DNS_SERVERS) else {
        panic!("no DNS servers")
    };
    assert_eq!(
        dns.addrs().collect::<Vec<_>>(),
        bench_cfg().cfg.dns6_servers
    );
    assert_eq!(
        ia_nas_of(&body),
        [(
            0xff7,
            u32::MAX,
            u32::MAX,
            vec![(GUEST_IP6, u32::MAX, u32::MAX)],
            None
        )]
    );
    assert_eq!(
        m.options.find(code::DOMAIN_LIST),
        Dhcp6Option::from_bytes(&opt(24, b"\x05oxide\x08computer\x00"))
            .ok()
            .map(|(o, _)| o)
    );
}

#[test]
fn request_sample_gets_a_226_byte_reply() {
    let (pkt, meta) = sample("Hairpin-DHCPv6", "Request");
    let frame = reply(gen_dhcp6_reply(&pkt, &meta, &bench_cfg()).unwrap());
    assert_eq!(frame.len(), 226);
    let body = reply_body(&frame);
    let m = Message::parse(&body).unwrap();
    assert_eq!((m.msg_type, m.xid), (msg_type::REPLY, [0, 1, 2]));
    assert_eq!(codes(&m), [2, 1, 23, 3, 24]);
}

#[test]
fn request_to_another_server_gets_no_reply() {
    let other = MacAddr::from_const([2, 0, 0, 0, 0, 1]);
    let body = message(
        msg_type::REQUEST,
        &[client_id(), server_id(other), elapsed(), ia_na(1, &[])],
    );
    assert_eq!(answer(&body, &bench_cfg()), Ok(HairpinReply::NoReply));
    let body = message(msg_type::REQUEST, &[client_id(), elapsed(), ia_na(1, &[])]);
    assert_eq!(
        answer(&body, &bench_cfg()),
        Err(GenErr::Malformed(
            "DHCPv6 Request/Renew lacks a Server Identifier"
        ))
    );
}

#[test]
fn rapid_commit_solicit_gets_a_reply() {
    // Sent as an option, or asked for in the option request.
    for rc in [opt(code::RAPID_COMMIT, &[]), oro(&[code::RAPID_COMMIT])] {
        let body = message(
            msg_type::SOLICIT,
            &[client_id(), elapsed(), ia_na(7, &[]), rc],
        );
        let out = answered(&body, &bench_cfg());
        let m = Message::parse(&out).unwrap();
        assert_eq!(m.msg_type, msg_type::REPLY);
        // Nothing asked for DNS or names: only the ids, Rapid Commit and the lease.
        assert_eq!(codes(&m), [2, 1, 14, 3]);
        assert_eq!(ia_nas_of(&out)[0].0, 7);
    }
}

#[test]
fn fqdn_is_sent_when_asked_for() {
    let body = message(
        msg_type::SOLICIT,
        &[client_id(), elapsed(), oro(&[code::FQDN])],
    );
    let out = answered(&body, &bench_cfg());
    let m = Message::parse(&out).unwrap();
    assert_eq!(codes(&m), [2, 1, 39]);
    let mut want = vec![0, 39, 0, 30, FQDN_REPLY_FLAGS];
    want.extend_from_slice(b"\x07testbox\x04test\x05oxide\x08computer\x00");
    assert!(out.ends_with(&want));
    // No hostname, no FQDN.
    let mut cfg = bench_cfg();
    cfg.cfg.hostname = None;
    let m2 = answered(&body, &cfg);
    assert_eq!(codes(&Message::parse(&m2).unwrap()), [2, 1]);
}

#[test]
fn information_request_gets_configuration_without_addresses() {
    let body = message(
        msg_type::INFORMATION_REQUEST,
        &[client_id(), elapsed(), oro(&[23, 24])],
    );
    let out = answered(&body, &bench_cfg());
    let m = Message::parse(&out).unwrap();
    assert_eq!(m.msg_type, msg_type::REPLY);
    assert_eq!(codes(&m), [2, 1, 23, 24]);
    // Anonymous: no client id to echo.
    let body = message(msg_type::INFORMATION_REQUEST, &[elapsed(), oro(&[23])]);
    assert_eq!(
        codes(&Message::parse(&answered(&body, &bench_cfg())).unwrap()),
        [2, 23]
    );
    let with_ia = message(msg_type::INFORMATION_REQUEST, &[elapsed(), ia_na(1, &[])]);
    assert!(matches!(
        answer(&with_ia, &bench_cfg()),
        Err(GenErr::Malformed(_))
    ));
    let other = message(
        msg_type::INFORMATION_REQUEST,
        &[server_id(MacAddr::from_const([2, 0, 0, 0, 0, 1]))],
    );
    assert_eq!(answer(&other, &bench_cfg()), Ok(HairpinReply::NoReply));
}

fn confirm(ias: &[Vec<u8>]) -> Vec<u8> {
    let mut opts = vec![client_id(), elapsed()];
    opts.extend_from_slice(ias);
    message(msg_type::CONFIRM, &opts)
}

#[test]
fn confirm_of_the_leased_address_is_success() {
    // The ordinary shape: the address directly inside the IA_NA. (The reference looked for
    // it one IA_NA deeper, so it never answered this.)
    let out = answered(&confirm(&[ia_na(1, &[ia_addr(GUEST_IP6)])]), &bench_cfg());
    let m = Message::parse(&out).unwrap();
    assert_eq!(m.msg_type, msg_type::REPLY);
    assert_eq!(codes(&m), [2, 1, 13]);
    assert_eq!(status_of(m.options), Some(status::SUCCESS));
}

#[test]
fn confirm_of_a_foreign_address_is_not_on_link() {
    let ias = [
        ia_na(1, &[ia_addr(GUEST_IP6)]),
        ia_na(2, &[ia_addr(v6("2001:db8::9"))]),
    ];
    let out = answered(&confirm(&ias), &bench_cfg());
    let m = Message::parse(&out).unwrap();
    assert_eq!(status_of(m.options), Some(status::NOT_ON_LINK));
}

#[test]
fn confirm_without_addresses_gets_no_reply() {
    assert_eq!(
        answer(&confirm(&[]), &bench_cfg()),
        Ok(HairpinReply::NoReply)
    );
    assert_eq!(
        answer(&confirm(&[ia_na(1, &[])]), &bench_cfg()),
        Ok(HairpinReply::NoReply)
    );
    // An address nested in an IA_NA inside the IA_NA is not where RFC 8415 puts it.
    let deep = ia_na(1, &[ia_na(2, &[ia_addr(GUEST_IP6)])]);
    assert_eq!(
        answer(&confirm(&[deep]), &bench_cfg()),
        Ok(HairpinReply::NoReply)
    );
    let with_server = message(
        msg_type::CONFIRM,
        &[
            client_id(),
            server_id(GW_MAC),
            elapsed(),
            ia_na(1, &[ia_addr(GUEST_IP6)]),
        ],
    );
    assert!(matches!(
        answer(&with_server, &bench_cfg()),
        Err(GenErr::Malformed(_))
    ));
}

#[test]
fn renew_extends_the_lease_and_zeroes_stale_addresses() {
    let stale = v6("fd00::99");
    let body = message(
        msg_type::RENEW,
        &[
            client_id(),
            server_id(GW_MAC),
            elapsed(),
            ia_na(5, &[ia_addr(GUEST_IP6), ia_addr(stale)]),
            ia_na(6, &[]),
        ],
    );
    let out = answered(&body, &bench_cfg());
    assert_eq!(out[0], msg_type::REPLY);
    let m = u32::MAX;
    assert_eq!(
        ia_nas_of(&out),
        [
            (5, m, m, vec![(GUEST_IP6, m, m), (stale, 0, 0)], None),
            (6, m, m, vec![], Some(status::NO_BINDING)),
        ]
    );
    // Rebind is the same without a server id; with one it is invalid.
    let rebind = message(msg_type::REBIND, &[client_id(), elapsed(), ia_na(5, &[])]);
    let out = answered(&rebind, &bench_cfg());
    assert_eq!(ia_nas_of(&out)[0].3, vec![(GUEST_IP6, m, m)]);
    let bad = message(
        msg_type::REBIND,
        &[client_id(), server_id(GW_MAC), elapsed()],
    );
    assert!(matches!(
        answer(&bad, &bench_cfg()),
        Err(GenErr::Malformed(_))
    ));
}

#[test]
fn further_ia_nas_and_an_empty_lease_get_no_addresses() {
    let body = message(
        msg_type::SOLICIT,
        &[client_id(), elapsed(), ia_na(1, &[]), ia_na(2, &[])],
    );
    let out = answered(&body, &bench_cfg());
    let got = ia_nas_of(&out);
    assert_eq!(got[0].3.len(), 1);
    assert_eq!(
        (got[1].3.len(), got[1].4),
        (0, Some(status::NO_ADDRS_AVAIL))
    );
    let mut cfg = bench_cfg();
    cfg.addrs.addrs.clear();
    let got = ia_nas_of(&answered(&body, &cfg));
    assert_eq!(got[0].4, Some(status::NO_ADDRS_AVAIL));
}

#[test]
fn other_messages_get_no_reply() {
    for t in [
        msg_type::ADVERTISE,
        msg_type::REPLY,
        msg_type::RELEASE,
        msg_type::DECLINE,
        msg_type::RECONFIGURE,
        msg_type::RELAY_FORW,
        msg_type::RELAY_REPL,
        0,
        200,
    ] {
        let body = message(t, &[client_id(), server_id(GW_MAC), elapsed()]);
        assert_eq!(
            answer(&body, &bench_cfg()),
            Ok(HairpinReply::NoReply),
            "type {t}"
        );
    }
}

#[test]
fn solicits_breaking_the_rules_are_malformed() {
    let cases = [
        (
            vec![elapsed()],
            "DHCPv6 client message lacks a Client Identifier",
        ),
        (
            vec![client_id()],
            "DHCPv6 client message lacks an Elapsed Time option",
        ),
        (
            vec![client_id(), elapsed(), server_id(GW_MAC)],
            "DHCPv6 Solicit/Confirm/Rebind carries a Server Identifier",
        ),
    ];
    for (opts, why) in cases {
        let body = message(msg_type::SOLICIT, &opts);
        assert_eq!(answer(&body, &bench_cfg()), Err(GenErr::Malformed(why)));
    }
}

#[test]
fn truncated_and_garbage_requests_are_errors() {
    let (pkt, meta) = sample("Hairpin-DHCPv6", "Request");
    let full = pkt.to_vec()[meta.body.off as usize..].to_vec();
    assert_eq!(full.len(), 124 - 62);
    for n in 0..full.len() {
        let r = answer(&full[..n], &bench_cfg());
        // Cut right after the elapsed time or the IA_NA, the message is still whole.
        if n == 38 || n == 54 {
            assert!(matches!(r, Ok(HairpinReply::Reply(_))), "{n} bytes: {r:?}");
        } else {
            assert!(matches!(r, Err(GenErr::Malformed(_))), "{n} bytes: {r:?}");
        }
    }
    let mut g = Garbage(0x0dc6_0006);
    for i in 0..3000 {
        let n = (g.next_u64() % 200) as usize;
        let mut body = g.bytes(n);
        if i % 2 == 0 && !body.is_empty() {
            body[0] = msg_type::SOLICIT + (i % 11) as u8;
        }
        match answer(&body, &bench_cfg()) {
            Ok(HairpinReply::Reply(f)) => {
                reply_body(&f);
            }
            Ok(HairpinReply::NoReply) | Err(GenErr::Malformed(_)) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

#[test]
fn test_parse_snooped_solicit_message() {
    let m = Message::parse(SNOOPED_SOLICIT).unwrap();
    assert_eq!((m.msg_type, m.xid), (msg_type::SOLICIT, [0xd8, 0x1e, 0x2f]));
    assert_eq!(m.client_id().map(|d| d.duid_type()), Some(1));
    assert!(m.server_id().is_none());
    assert!(m.requests(code::DNS_SERVERS) && m.requests(code::SNTP_SERVERS));
    assert!(!m.requests(code::RAPID_COMMIT));
    // Answered with everything it asked for; its FQDN option gets ours back.
    let out = answered(SNOOPED_SOLICIT, &bench_cfg());
    let r = Message::parse(&out).unwrap();
    assert_eq!((r.msg_type, r.xid), (msg_type::ADVERTISE, m.xid));
    assert_eq!(codes(&r), [2, 1, 23, 3, 24, 39]);
    assert_eq!(r.client_id(), m.client_id());
    assert_eq!(ia_nas_of(&out)[0].0, 0x25fa_fa37);
}

#[test]
fn test_predicates_match_snooped_solicit_message() {
    assert_eq!(dhcp6_message_type(SNOOPED_SOLICIT), Some(msg_type::SOLICIT));
    let (pkt, meta) = sample("Hairpin-DHCPv6", "Request");
    let body = pkt.bytes_at(meta.body, meta.body_len as usize).unwrap();
    assert_eq!(dhcp6_message_type(body), Some(msg_type::REQUEST));
    assert_eq!(dhcp6_message_type(&[]), None);
}

#[test]
fn non_dhcpv6_packets_are_refused() {
    let (pkt, meta) = sample("Hairpin-DHCPv4", "Discover");
    assert_eq!(
        gen_dhcp6_reply(&pkt, &meta, &bench_cfg()),
        Err(GenErr::MissingMeta("an IPv6 header"))
    );
    let (pkt, meta) = sample("Hairpin-ICMPv6", "RouterSolicit");
    assert_eq!(
        gen_dhcp6_reply(&pkt, &meta, &bench_cfg()),
        Err(GenErr::MissingMeta("a UDP header"))
    );
}
