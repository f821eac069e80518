use super::*;
use alloc::vec;
use opte_api::DomainName;

/// A Solicit in the shape ISC dhclient sends it (hand-assembled, not captured here): client
/// id DUID-LLT (hardware type 1, time 0x2c9e5a13, MAC a8:40:25:fa:fa:37), an option request
/// for DNS servers, domain list, FQDN and SNTP, elapsed time 0, an IA_NA whose IAID is the
/// MAC's low four bytes with no lifetimes or addresses, and a partial client FQDN.
pub(crate) const SNOOPED_SOLICIT: &[u8] = &[
    0x01, 0xd8, 0x1e, 0x2f, // Solicit, xid
    0x00, 0x01, 0x00, 0x0e, 0x00, 0x01, 0x00, 0x01, 0x2c, 0x9e, 0x5a, 0x13, 0xa8, 0x40, 0x25, 0xfa,
    0xfa, 0x37, // client id
    0x00, 0x06, 0x00, 0x08, 0x00, 0x17, 0x00, 0x18, 0x00, 0x27, 0x00, 0x1f, // ORO
    0x00, 0x08, 0x00, 0x02, 0x00, 0x00, // elapsed time
    0x00, 0x03, 0x00, 0x0c, 0x25, 0xfa, 0xfa, 0x37, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, // IA_NA
    0x00, 0x27, 0x00, 0x09, 0x01, 0x07, b't', b'e', b's', b't', b'b', b'o', b'x', // FQDN
];

fn opt(code: u16, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    put_raw(&mut v, code, data).unwrap();
    v
}

/// Parse one option that must fill `bytes`, and check it re-emits to the same bytes.
fn round_trip(bytes: &[u8]) -> Dhcp6Option<'_> {
    let (o, rest) = Dhcp6Option::from_bytes(bytes).unwrap();
    assert!(rest.is_empty());
    let mut out = Vec::new();
    o.emit(&mut out).unwrap();
    assert_eq!(out, bytes);
    o
}

fn snooped_options() -> Options<'static> {
    Options::parse(&SNOOPED_SOLICIT[4..]).unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn test_duid_from_mac() {
    let mac = MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]);
    let d = duid_ll(mac);
    assert_eq!(d, [0, 3, 0, 1, 0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]);
    let duid = Duid::new(&d, code::SERVER_ID).unwrap();
    assert_eq!(duid.duid_type(), DUID_TYPE_LL);
}

#[test]
fn test_iana() {
    let mut addr = v6("fd00::5").bytes().to_vec();
    addr.extend_from_slice(&3600u32.to_be_bytes());
    addr.extend_from_slice(&7200u32.to_be_bytes());
    let mut body = vec![0, 0, 0x0f, 0xf7, 0, 0, 0x0e, 0x10, 0, 0, 0x18, 0x38];
    body.extend_from_slice(&opt(code::IA_ADDR, &addr));
    let bytes = opt(code::IA_NA, &body);
    let Dhcp6Option::IaNa(ia) = round_trip(&bytes) else {
        panic!("not an IA_NA")
    };
    assert_eq!((ia.iaid, ia.t1, ia.t2), (0xff7, 3600, 6200));
    let inner: Vec<_> = ia.options.iter().collect();
    assert_eq!(inner.len(), 1);
    let Dhcp6Option::IaAddr(a) = inner[0] else {
        panic!("not an IAAddr")
    };
    assert_eq!((a.addr, a.preferred, a.valid), (v6("fd00::5"), 3600, 7200));
    assert!(a.options.is_empty());
    // The fixed fields are required.
    assert_eq!(
        Dhcp6Option::from_bytes(&opt(code::IA_NA, &[0; 11])),
        Err(Dhcp6Error::BadLength {
            code: code::IA_NA,
            len: 11,
            expected: "at least 12"
        })
    );
    assert!(Dhcp6Option::from_bytes(&opt(code::IA_ADDR, &[0; 23])).is_err());
    // A nested option that overruns the IA_NA is refused, even though the outer bytes
    // continue.
    let mut short = vec![0; 12];
    short.extend_from_slice(&[0, 5, 0, 24, 0, 0]);
    let mut bytes = opt(code::IA_NA, &short);
    bytes.extend_from_slice(&[0; 30]);
    assert_eq!(
        Dhcp6Option::from_bytes(&bytes),
        Err(Dhcp6Error::Truncated {
            code: code::IA_ADDR,
            need: 28,
            have: 6
        })
    );
}

#[test]
fn test_iata() {
    let mut body = 0xdead_beefu32.to_be_bytes().to_vec();
    body.extend_from_slice(&opt(code::STATUS_CODE, &[0, 2]));
    let bytes = opt(code::IA_TA, &body);
    let Dhcp6Option::IaTa(ia) = round_trip(&bytes) else {
        panic!("not an IA_TA")
    };
    assert_eq!(ia.iaid, 0xdead_beef);
    assert_eq!(
        ia.options.find(code::STATUS_CODE),
        Some(Dhcp6Option::StatusCode(StatusCode {
            code: status::NO_ADDRS_AVAIL,
            message: &[]
        }))
    );
    assert!(Dhcp6Option::from_bytes(&opt(code::IA_TA, &[1, 2, 3])).is_err());
}

#[test]
fn test_raw_option_from_bytes() {
    // Preference (7) is not interpreted: it stays raw, and re-emits byte for byte.
    let bytes = opt(7, &[255]);
    assert_eq!(
        round_trip(&bytes),
        Dhcp6Option::Other {
            code: 7,
            data: &[255]
        }
    );
    let (o, rest) = Dhcp6Option::from_bytes(&[0xab, 0xcd, 0, 0, 9, 9]).unwrap();
    assert_eq!(
        o,
        Dhcp6Option::Other {
            code: 0xabcd,
            data: &[]
        }
    );
    assert_eq!(rest, &[9, 9]);
    assert_eq!(
        Dhcp6Option::from_bytes(&[0, 7, 0, 2, 1]),
        Err(Dhcp6Error::Truncated {
            code: 7,
            need: 6,
            have: 5
        })
    );
    assert_eq!(
        Dhcp6Option::from_bytes(&[0]),
        Err(Dhcp6Error::Truncated {
            code: 0,
            need: 4,
            have: 1
        })
    );
}

#[test]
fn test_client_id() {
    let duid = duid_ll(MacAddr::from_const([0xa8, 0x40, 0x25, 0xfa, 0xfa, 0x37]));
    let bytes = opt(code::CLIENT_ID, &duid);
    let o = round_trip(&bytes);
    assert_eq!(o, Dhcp6Option::ClientId(Duid(&duid)));
    // A DUID has a type and at least one byte of identifier, and at most 128.
    assert!(Dhcp6Option::from_bytes(&opt(code::CLIENT_ID, &[0, 3])).is_err());
    assert!(Dhcp6Option::from_bytes(&opt(code::CLIENT_ID, &[0; 131])).is_err());
    assert!(Dhcp6Option::from_bytes(&opt(code::CLIENT_ID, &[0; 130])).is_ok());
}

#[test]
fn test_server_id() {
    let duid = duid_ll(MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]));
    let bytes = opt(code::SERVER_ID, &duid);
    let Dhcp6Option::ServerId(d) = round_trip(&bytes) else {
        panic!("not a server id")
    };
    assert_eq!(d.as_bytes(), &duid);
    assert_eq!(d.duid_type(), 3);
    assert!(Dhcp6Option::from_bytes(&opt(code::SERVER_ID, &[])).is_err());
}

#[test]
fn test_status() {
    let mut out = Vec::new();
    put_status(&mut out, status::NOT_ON_LINK, "not on link").unwrap();
    let o = round_trip(&out);
    assert_eq!(
        o,
        Dhcp6Option::StatusCode(StatusCode {
            code: 4,
            message: b"not on link"
        })
    );
    assert_eq!(&out[..6], &[0, 13, 0, 13, 0, 4]);
    assert!(Dhcp6Option::from_bytes(&opt(code::STATUS_CODE, &[0])).is_err());
}

#[test]
fn test_elapsed_time() {
    let bytes = opt(code::ELAPSED_TIME, &[0x01, 0x02]);
    assert_eq!(round_trip(&bytes), Dhcp6Option::ElapsedTime(0x0102));
    for bad in [&[][..], &[1], &[1, 2, 3]] {
        assert!(matches!(
            Dhcp6Option::from_bytes(&opt(code::ELAPSED_TIME, bad)),
            Err(Dhcp6Error::BadLength { expected: "2", .. })
        ));
    }
}

#[test]
fn test_rapid_commit() {
    assert_eq!(round_trip(&[0, 14, 0, 0]), Dhcp6Option::RapidCommit);
    assert!(Dhcp6Option::from_bytes(&opt(code::RAPID_COMMIT, &[0])).is_err());
}

#[test]
fn test_ip_list_bad_length_fails() {
    for c in [code::DNS_SERVERS, code::SNTP_SERVERS] {
        for n in [1, 15, 17, 31] {
            assert_eq!(
                Dhcp6Option::from_bytes(&opt(c, &vec![0; n])),
                Err(Dhcp6Error::BadLength {
                    code: c,
                    len: n,
                    expected: "a multiple of 16"
                })
            );
        }
    }
}

fn ip_list_bytes(addrs: &[Ipv6Addr]) -> Vec<u8> {
    addrs.iter().flat_map(|a| a.bytes()).collect()
}

#[test]
fn test_dns_servers() {
    let addrs = [v6("2001:4860:4860::8888"), v6("2606:4700:4700::1111")];
    let bytes = opt(code::DNS_SERVERS, &ip_list_bytes(&addrs));
    let Dhcp6Option::DnsServers(l) = round_trip(&bytes) else {
        panic!("not DNS servers")
    };
    assert_eq!(l.addrs().collect::<Vec<_>>(), addrs);
    // An empty list is well formed.
    assert_eq!(
        round_trip(&[0, 23, 0, 0]),
        Dhcp6Option::DnsServers(IpList(&[]))
    );
}

#[test]
fn test_sntp_servers() {
    let addrs = [v6("fd00::123")];
    let bytes = opt(code::SNTP_SERVERS, &ip_list_bytes(&addrs));
    let Dhcp6Option::SntpServers(l) = round_trip(&bytes) else {
        panic!("not SNTP servers")
    };
    assert_eq!(l.addrs().collect::<Vec<_>>(), addrs);
}

#[test]
fn test_option_request() {
    let bytes = opt(code::ORO, &[0, 23, 0, 24, 0, 39]);
    let Dhcp6Option::OptionRequest(r) = round_trip(&bytes) else {
        panic!("not an ORO")
    };
    assert_eq!(r.codes().collect::<Vec<_>>(), [23, 24, 39]);
    assert!(r.contains(code::FQDN) && !r.contains(code::SNTP_SERVERS));
    assert!(Dhcp6Option::from_bytes(&opt(code::ORO, &[0, 23, 0])).is_err());
}

#[test]
fn test_parse_snooped_iana() {
    let Some(Dhcp6Option::IaNa(ia)) = snooped_options().find(code::IA_NA) else {
        panic!("no IA_NA")
    };
    assert_eq!((ia.iaid, ia.t1, ia.t2), (0x25fa_fa37, 0, 0));
    assert!(ia.options.is_empty());
}

#[test]
fn test_parse_snooped_option_request() {
    let Some(Dhcp6Option::OptionRequest(r)) = snooped_options().find(code::ORO) else {
        panic!("no ORO")
    };
    assert_eq!(r.codes().collect::<Vec<_>>(), [23, 24, 39, 31]);
}

#[test]
fn test_parse_snooped_client_id() {
    let Some(Dhcp6Option::ClientId(d)) = snooped_options().find(code::CLIENT_ID) else {
        panic!("no client id")
    };
    // DUID-LLT: type 1, hardware type 1, time, MAC.
    assert_eq!(d.duid_type(), 1);
    assert_eq!(d.as_bytes().len(), 14);
    assert_eq!(&d.as_bytes()[8..], &[0xa8, 0x40, 0x25, 0xfa, 0xfa, 0x37]);
    let codes: Vec<u16> = snooped_options().iter().map(|o| o.code()).collect();
    assert_eq!(codes, [1, 6, 8, 3, 39]);
    assert_eq!(
        snooped_options().find(code::FQDN),
        Some(Dhcp6Option::Fqdn(Fqdn {
            flags: 1,
            name: b"\x07testbox"
        }))
    );
}

#[test]
fn test_domain_list_from_slice() {
    let names: Vec<DomainName> = ["oxide.computer", "eng.oxide.computer", "example"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    let wire: Vec<u8> = names.iter().flat_map(|n| n.encode().to_vec()).collect();
    let bytes = opt(code::DOMAIN_LIST, &wire);
    let Dhcp6Option::DomainList(l) = round_trip(&bytes) else {
        panic!("not a domain list")
    };
    let back: Vec<DomainName> = l
        .wire_names()
        .map(|w| DomainName::try_from(w).unwrap())
        .collect();
    assert_eq!(back.len(), 3);
    for (b, n) in back.iter().zip(&names) {
        assert_eq!(b.encode(), n.encode());
    }
    // A name cut short, a compression pointer, or a label over 63 bytes is refused.
    for bad in [
        &b"\x05oxide\x08comp"[..],
        &b"\x05oxide\xc0\x0c"[..],
        &b"\x05oxide"[..],
    ] {
        assert!(Dhcp6Option::from_bytes(&opt(code::DOMAIN_LIST, bad)).is_err());
    }
}

/// `levels` IA_NAs, each inside the one before.
fn nested_ia_na(levels: usize) -> Vec<u8> {
    let mut inner = Vec::new();
    for _ in 0..levels {
        let mut body = vec![0u8; 12];
        body.extend_from_slice(&inner);
        inner = opt(code::IA_NA, &body);
    }
    inner
}

#[test]
fn fail_on_deeply_nested_options() {
    // Eight IA_NAs make eight lists with options in them (the message's list and seven
    // nested): the limit. One more is refused, wherever the walk starts.
    assert!(Options::parse(&nested_ia_na(8)).is_ok());
    assert_eq!(
        Options::parse(&nested_ia_na(9)),
        Err(Dhcp6Error::ExceededMaxDepth)
    );
    assert_eq!(
        Dhcp6Option::from_bytes(&nested_ia_na(9)),
        Err(Dhcp6Error::ExceededMaxDepth)
    );
    assert_eq!(
        Options::parse(&nested_ia_na(500)),
        Err(Dhcp6Error::ExceededMaxDepth)
    );
    // IAAddr options count too.
    let mut addr = vec![0u8; 24];
    addr.extend_from_slice(&nested_ia_na(7));
    let mut ia = vec![0u8; 12];
    ia.extend_from_slice(&opt(code::IA_ADDR, &addr));
    assert_eq!(
        Options::parse(&opt(code::IA_NA, &ia)),
        Err(Dhcp6Error::ExceededMaxDepth)
    );
}

#[test]
fn oversized_option_bodies_are_refused_on_emit() {
    let mut out = Vec::new();
    assert_eq!(
        put_raw(&mut out, code::DOMAIN_LIST, &vec![0; 70_000]),
        Err(Dhcp6Error::TooLong {
            code: 24,
            len: 70_000
        })
    );
}
