//! Cross-type checks: every text-bearing type prints what it parses and parses what it
//! prints, and every wire type survives postcard and JSON.

use crate::*;
use alloc::string::ToString;
use core::fmt::{Debug, Display};
use core::str::FromStr;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Each sample is canonical: parsing then printing gives it back unchanged, and the parsed
/// value survives both serde formats.
fn round_trip<T>(samples: &[&str])
where
    T: FromStr + Display + Debug + PartialEq + Serialize + DeserializeOwned,
    T::Err: Debug,
{
    for s in samples {
        let v: T = s.parse().unwrap();
        assert_eq!(v.to_string(), *s);
        assert_eq!(v.to_string().parse::<T>().unwrap(), v);
        let bytes = postcard::to_allocvec(&v).unwrap();
        assert_eq!(postcard::from_bytes::<T>(&bytes).unwrap(), v, "{s}");
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v, "{s}: {json}");
    }
}

#[test]
fn text_and_wire_round_trips() {
    round_trip::<MacAddr>(&[
        "A8:40:25:FF:00:01",
        "FF:FF:FF:FF:FF:FF",
        "00:00:00:00:00:00",
    ]);
    round_trip::<Ipv4Addr>(&["10.0.0.1", "0.0.0.0", "255.255.255.255"]);
    round_trip::<Ipv6Addr>(&["fd00::1", "::", "ff04::1:2", "2001:db8:1:2:3:4:5:6"]);
    round_trip::<IpAddr>(&["192.168.1.1", "fe80::1"]);
    round_trip::<Ipv4PrefixLen>(&["0", "24", "32"]);
    round_trip::<Ipv6PrefixLen>(&["0", "64", "128"]);
    round_trip::<Ipv4Cidr>(&["10.0.0.0/8", "0.0.0.0/0", "192.168.2.7/32"]);
    round_trip::<Ipv6Cidr>(&["fd00::/64", "::/0", "ff04::/16"]);
    round_trip::<IpCidr>(&["172.16.0.0/12", "fd00:1122::/32"]);
    round_trip::<MulticastUnderlay>(&["ff04::1", "ff04:abcd::9"]);
    round_trip::<Protocol>(&["ICMP", "IGMP", "TCP", "UDP", "ICMPv6", "47"]);
    round_trip::<Vni>(&["0", "7777", "16777215"]);
    round_trip::<Direction>(&["IN", "OUT"]);
    round_trip::<TcpState>(&["ESTABLISHED", "SYN_SENT", "TIME_WAIT"]);
    round_trip::<DomainName>(&["oxide.computer", "foo.bar.com.", "x"]);
    round_trip::<DhcpReplyType>(&["OFFER", "ACK"]);
    round_trip::<OpteCmd>(&[
        "ListPorts",
        "AttachSubnet",
        "DetachSubnet",
        "DumpMcast2Phys",
        "DumpUftPage",
        "DumpTcpFlowsPage",
    ]);
}

#[test]
fn flow_key_survives_both_formats() {
    let flow = InnerFlowId::with_icmp(
        58,
        AddrPair::V6 {
            src: "fd00::1".parse().unwrap(),
            dst: "fd00::2".parse().unwrap(),
        },
        128,
        0,
        42,
    );
    let bytes = postcard::to_allocvec(&flow).unwrap();
    assert_eq!(postcard::from_bytes::<InnerFlowId>(&bytes), Ok(flow));
    let json = serde_json::to_string(&flow).unwrap();
    assert_eq!(
        json,
        r#"{"proto":58,"addrs":{"V6":{"src":"fd00::1","dst":"fd00::2"}},"proto_info":[32768,42]}"#
    );
    assert_eq!(serde_json::from_str::<InnerFlowId>(&json).unwrap(), flow);
}

#[test]
fn errors_survive_json() {
    let e = OpteError::MacExists {
        port: "opte0".into(),
        vni: Vni::new(99).unwrap(),
        mac: MacAddr::from([2, 8, 32, 0, 0, 1]),
    };
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(serde_json::from_str::<OpteError>(&json).unwrap(), e);
}
