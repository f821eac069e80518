//! The properties the fuzz targets check, shared with the stable-toolchain replay of the
//! corpora (`tests/replay.rs`).
//!
//! For any input: parsing never panics, and an error renders as text. When a parse succeeds,
//! the headers it found re-emit verbatim and parse again to the same headers, flow key and
//! payload length; and the same bytes cut into three segments (at points taken from the
//! input) parse to the same result, whichever header the cuts split. The one-pass fast path
//! and the general parser agree on every input.

use opte::build::Headers;
use opte::packet::Packet;
use opte::packet::parse::{
    InnerMeta, parse_guest, parse_guest_general, parse_network, parse_network_general,
};
use opte_api::InnerFlowId;

pub mod port;
pub use port::check_port;

/// What a parse found, independent of where in the chain it found it.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    headers: Headers,
    flow: InnerFlowId,
    body_len: u32,
    hdr_len: usize,
}

fn summarise(pkt: &Packet, inner: &InnerMeta, headers: Option<Headers>) -> Summary {
    let headers = headers.expect("a successful parse must yield readable headers");
    let hdr_len = headers.emitted_len();
    assert!(hdr_len <= pkt.len(), "headers longer than the packet");
    Summary {
        headers,
        flow: inner.flow,
        body_len: inner.body_len,
        hdr_len,
    }
}

/// Cut `data` into up to three segments at points derived from its own bytes.
pub(crate) fn three_segments(data: &[u8]) -> Packet {
    let n = data.len();
    if n < 3 {
        return Packet::copy_from(data);
    }
    let seed = data
        .iter()
        .fold(0u32, |a, &b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    let a = 1 + (seed as usize % (n - 1));
    let b = a + (seed as usize / 7) % (n - a);
    Packet::from_segments(&[&data[..a], &data[a..b], &data[b..]])
}

fn check(data: &[u8], network: bool) {
    let parse = |pkt: &mut Packet| -> Result<Summary, opte::packet::ParseError> {
        if network {
            let m = parse_network(pkt)?;
            Ok(summarise(pkt, &m.inner, Headers::from_network(pkt, &m)))
        } else {
            let m = parse_guest(pkt)?;
            Ok(summarise(pkt, &m, Headers::from_guest(pkt, &m)))
        }
    };
    // The one-pass fast path must agree with the general parser, result for result.
    if network {
        let fast = parse_network(&mut Packet::copy_from(data));
        let general = parse_network_general(&mut Packet::copy_from(data));
        assert_eq!(fast, general, "fast and general network-side parses differ");
    } else {
        let fast = parse_guest(&mut Packet::copy_from(data));
        let general = parse_guest_general(&mut Packet::copy_from(data));
        assert_eq!(fast, general, "fast and general guest-side parses differ");
    }
    let mut pkt = Packet::copy_from(data);
    let first = parse(&mut pkt);
    let mut split = three_segments(data);
    let split_result = parse(&mut split);
    assert_eq!(first, split_result, "segmentation changed the parse");
    // Pulling headers up must not lose or reorder a byte.
    assert_eq!(split.to_vec(), data, "pullup corrupted the packet");

    let s = match first {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let body = &data[s.hdr_len..];
    let again = s
        .headers
        .to_bytes(body)
        .expect("parsed headers must re-emit");
    assert_eq!(again.len(), data.len(), "re-emit changed the length");
    let mut pkt2 = Packet::copy_from(&again);
    let second = parse(&mut pkt2).expect("re-emitted headers must parse");
    assert_eq!(s, second, "re-emitted packet parsed differently");
}

/// The `parse-in` property: Geneve-over-IPv6 from the underlay.
pub fn check_parse_in(data: &[u8]) {
    check(data, true);
}

/// The `parse-out` property: a frame from a guest.
pub fn check_parse_out(data: &[u8]) {
    check(data, false);
}

/// The control property: any envelope and request bytes, dispatched in either shape to a
/// host with ports and something in every table, never panic; and a request that is
/// refused leaves the host exactly as it was.
///
/// Input layout: byte 0 picks the API version (mostly ours), byte 1 the command (an index
/// into `OpteCmd::ALL`, or past it a raw code for the ioctl shape), bytes 2..4 the response
/// capacity, the rest is the request body.
///
/// Byte 1 is an index, not a code: a command added to `OpteCmd::ALL` (which is in code
/// order) moves every later one, and the corpus and regressions must then have byte 1
/// remapped so each input still names the command it was found with (as was done when
/// `DumpUftPage` and `DumpTcpFlowsPage` took indices 8 and 9).
pub fn check_control(data: &[u8]) {
    use opte_api::error::Os;
    use opte_api::{API_VERSION, ControlRequest, ControlResponse, OpteCmd};
    let (head, body) = data.split_at(data.len().min(4));
    let mut h = [0u8; 4];
    h[..head.len()].copy_from_slice(head);
    let version = if h[0] == 0xff {
        u64::from(h[3])
    } else {
        API_VERSION
    };
    let cap = usize::from(u16::from_be_bytes([h[2], h[3]])) * 16;
    let xde = control_fixture::host();
    let before = xde.state_text();
    match OpteCmd::ALL.get(usize::from(h[1])) {
        Some(&cmd) => {
            let mut req = ControlRequest::new(cmd, body.to_vec(), cap as u64);
            req.api_version = version;
            if let ControlResponse::Err(e) = xde.dispatch(&req) {
                let _ = e.to_string();
                assert_eq!(
                    xde.state_text(),
                    before,
                    "{cmd:?} was refused ({e}) but changed state"
                );
            }
        }
        None => {
            // Past the list: a raw code through the ioctl shape (some are commands too).
            let code = i32::from(h[1]);
            let r = xde.dispatch_ioctl(version, code, body, cap, Os::Illumos);
            if OpteCmd::try_from(code).is_err() {
                assert_ne!(r.errno, 0, "unknown code {code} succeeded");
            }
            if r.errno != 0 {
                assert_eq!(
                    xde.state_text(),
                    before,
                    "code {code} was refused but changed state"
                );
            }
        }
    }
}

/// The host the control property runs against.
pub mod control_fixture {
    use opte_api::{IpCidr, MulticastUnderlay, OpteCmd};
    use oxide_vpc::api::cmd::{self, Command};
    use oxide_vpc::api::*;
    use xde::Xde;
    use xde::host::NullHost;

    fn run<C: Command>(x: &Xde<NullHost>, req: &C::Req) {
        let bytes = postcard::to_allocvec(req).expect("fixture request encodes");
        x.execute(C::CMD, &bytes).expect("fixture command succeeds");
    }

    /// A dual-stack guest of VNI 100.
    fn p<T: core::str::FromStr>(s: &str) -> T
    where
        T::Err: core::fmt::Debug,
    {
        s.parse().expect("fixture value")
    }

    pub fn cfg(last: u8) -> VpcCfg {
        VpcCfg {
            ip_cfg: IpCfg::DualStack {
                ipv4: Ipv4Cfg {
                    vpc_subnet: p("172.30.0.0/22"),
                    private_ip: format!("172.30.0.{last}").parse().expect("ip"),
                    gateway_ip: p("172.30.0.1"),
                    external_ips: ExternalIpCfg {
                        snat: Some(SNatCfg {
                            external_ip: p("10.77.77.13"),
                            ports: 1025..=4096,
                        }),
                        ephemeral_ip: None,
                        floating_ips: vec![],
                    },
                    attached_subnets: Default::default(),
                    transit_ips: Default::default(),
                },
                ipv6: Ipv6Cfg {
                    vpc_subnet: p("fd00::/64"),
                    private_ip: format!("fd00::{last}").parse().expect("ip"),
                    gateway_ip: p("fd00::1"),
                    external_ips: ExternalIpCfg::default(),
                    attached_subnets: Default::default(),
                    transit_ips: Default::default(),
                },
            },
            guest_mac: opte_api::MacAddr::from_const([0xa8, 0x40, 0x25, 0xfa, 0, last]),
            gateway_mac: opte_api::MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]),
            vni: opte_api::Vni::new(100).expect("vni"),
            phys_ip: p("fd00:0:f7:101::1"),
            dhcp: Default::default(),
        }
    }

    /// The TCP connections opte0 opens to opte1 in the fixture.
    pub const FIXTURE_CONNECTIONS: u16 = 3;

    /// Guest opte0 opens `n` TCP connections to opte1 (a SYN each, delivered on this host),
    /// so opte0's outbound UFT, opte1's inbound UFT and both TCP tables have entries for
    /// the dumps (whole and paged) to show.
    fn connect(x: &Xde<NullHost>, n: u16) {
        use opte::build::{Headers, L3Repr, UlpRepr};
        use opte::engine::time::Moment;
        use opte::packet::Packet;
        use opte::wire::ether::{ETHER_TYPE_IPV4, EtherRepr};
        use opte::wire::ip4::Ipv4Repr;
        use opte::wire::tcp::TcpRepr;
        let port = x.port("opte0").expect("fixture port");
        let (from, to) = (cfg(5), cfg(6));
        let v4 = |c: &VpcCfg| c.ipv4().expect("fixture IPv4").private_ip;
        for i in 0..n {
            let mut ip = Ipv4Repr::new(v4(&from), v4(&to), 6);
            ip.ttl = 64;
            let mut tcp = TcpRepr::new(40000 + i, 22, 0x02);
            tcp.seq = 1000;
            tcp.window = 65000;
            let eth = EtherRepr {
                dst: from.gateway_mac,
                src: from.guest_mac,
                ether_type: ETHER_TYPE_IPV4,
                vlan: None,
            };
            let frame = Headers::new(eth, L3Repr::Ipv4(ip), UlpRepr::Tcp(tcp))
                .build(&[])
                .expect("fixture frame");
            let mut out = Vec::new();
            x.tx(
                &port,
                Packet::copy_from(&frame),
                Moment::from_secs(1),
                &mut out,
            );
        }
    }

    /// Two ports with rules and routes, entries in V2P, V2B, M2P and multicast, and
    /// [`FIXTURE_CONNECTIONS`] connections from opte0 to opte1 in the flow tables.
    pub fn host() -> Xde<NullHost> {
        let x = Xde::new(NullHost, 1);
        run::<cmd::SetXdeUnderlay>(
            &x,
            &opte_api::SetXdeUnderlayReq {
                u1: "u1".into(),
                u2: "u2".into(),
            },
        );
        for (name, last) in [("opte0", 5), ("opte1", 6)] {
            run::<cmd::CreateXde>(
                &x,
                &CreateXdeReq {
                    linkid: 0,
                    xde_devname: name.into(),
                    cfg: cfg(last),
                    mtu: None,
                    attach: PortAttach::Netdev,
                },
            );
            let sub: IpCidr = "172.30.0.0/22".parse().expect("cidr");
            run::<cmd::AddRouterEntry>(
                &x,
                &AddRouterEntryReq {
                    port_name: name.into(),
                    dest: sub,
                    target: RouterTarget::VpcSubnet(sub),
                    class: RouterClass::System,
                },
            );
            run::<cmd::AddFwRule>(
                &x,
                &AddFwRuleReq {
                    port_name: name.into(),
                    rule: "dir=in action=allow priority=10 protocol=tcp port=22"
                        .parse()
                        .expect("rule"),
                },
            );
        }
        let u = MulticastUnderlay::new("ff04::7".parse().expect("ip")).expect("underlay");
        run::<cmd::SetMcast2Phys>(
            &x,
            &SetMcast2PhysReq {
                group: "239.1.1.1".parse().expect("ip"),
                underlay: u,
            },
        );
        run::<cmd::McastSubscribe>(
            &x,
            &McastSubscribeReq {
                port_name: "opte0".into(),
                group: "239.1.1.1".parse().expect("ip"),
                filter: SourceFilter::default(),
            },
        );
        run::<cmd::SetVirt2Boundary>(
            &x,
            &SetVirt2BoundaryReq {
                vip: "0.0.0.0/0".parse().expect("cidr"),
                tep: vec![TunnelEndpoint {
                    ip: "fd00:99::1".parse().expect("ip"),
                    vni: opte_api::Vni::new(99).expect("vni"),
                }],
            },
        );
        connect(&x, FIXTURE_CONNECTIONS);
        x
    }

    /// Seed inputs: a valid request of each kind (first byte: our version; second: the
    /// command's index).
    pub fn seeds() -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut add = |name: &str, cmd: OpteCmd, body: Vec<u8>| {
            let idx = OpteCmd::ALL
                .iter()
                .position(|c| *c == cmd)
                .expect("a command") as u8;
            let mut d = vec![0, idx, 0x10, 0];
            d.extend(body);
            out.push((format!("control-{name}"), d));
        };
        let e = |v: &dyn erased::Enc| v.enc();
        add("list-ports", OpteCmd::ListPorts, vec![]);
        add("dump-v2p", OpteCmd::DumpVirt2Phys, vec![]);
        add(
            "add-fw-rule",
            OpteCmd::AddFwRule,
            e(&AddFwRuleReq {
                port_name: "opte0".into(),
                rule: "dir=in action=deny priority=1 protocol=udp"
                    .parse()
                    .expect("rule"),
            }),
        );
        add(
            "rem-fw-rule",
            OpteCmd::RemFwRule,
            e(&RemFwRuleReq {
                port_name: "opte0".into(),
                dir: opte_api::Direction::In,
                id: 1,
            }),
        );
        add(
            "create-xde",
            OpteCmd::CreateXde,
            e(&CreateXdeReq {
                linkid: 0,
                xde_devname: "opte2".into(),
                cfg: cfg(7),
                mtu: Some(1500),
                attach: PortAttach::Netdev,
            }),
        );
        add(
            "delete-xde",
            OpteCmd::DeleteXde,
            e(&DeleteXdeReq {
                xde_devname: "opte1".into(),
            }),
        );
        add(
            "set-v2p",
            OpteCmd::SetVirt2Phys,
            e(&SetVirt2PhysReq {
                vip: "172.30.0.9".parse().expect("ip"),
                phys: PhysNet {
                    ether: opte_api::MacAddr::from_const([2, 0, 0, 0, 0, 9]),
                    ip: "fd00::9".parse().expect("ip"),
                    vni: opte_api::Vni::new(100).expect("vni"),
                },
            }),
        );
        add(
            "dump-layer",
            OpteCmd::DumpLayer,
            e(&opte_api::DumpLayerReq {
                port_name: "opte0".into(),
                name: "firewall".into(),
            }),
        );
        add(
            "mcast-subscribe",
            OpteCmd::McastSubscribe,
            e(&McastSubscribeReq {
                port_name: "opte1".into(),
                group: "239.1.1.1".parse().expect("ip"),
                filter: SourceFilter::default(),
            }),
        );
        add(
            "set-external-ips",
            OpteCmd::SetExternalIps,
            e(&SetExternalIpsReq {
                port_name: "opte0".into(),
                external_ips_v4: Some(ExternalIpCfg {
                    snat: None,
                    ephemeral_ip: Some("10.60.0.1".parse().expect("ip")),
                    floating_ips: vec![],
                }),
                external_ips_v6: None,
                inet_gw_map: None,
            }),
        );
        add("clear-underlay", OpteCmd::ClearXdeUnderlay, vec![]);
        add(
            "dump-uft-page",
            OpteCmd::DumpUftPage,
            e(&opte_api::DumpUftPageReq {
                port_name: "opte0".into(),
                dir: opte_api::Direction::Out,
                start: 0,
                max: 2,
            }),
        );
        // A dump's second page: from the cursor the first page of one entry gives.
        let next = host()
            .port("opte1")
            .expect("fixture port")
            .with_vpc(|v| v.port().dump_tcp_flows_page(0, 1))
            .expect("fixture dump")
            .next
            .expect("a second page");
        add(
            "dump-tcp-flows-page",
            OpteCmd::DumpTcpFlowsPage,
            e(&opte_api::DumpTcpFlowsPageReq {
                port_name: "opte1".into(),
                start: next,
                max: 1,
            }),
        );
        add(
            "dump-uft-page-too-big",
            OpteCmd::DumpUftPage,
            e(&opte_api::DumpUftPageReq {
                port_name: "opte1".into(),
                dir: opte_api::Direction::In,
                start: 0,
                max: opte_api::MAX_DUMP_PAGE + 1,
            }),
        );
        out
    }

    mod erased {
        pub trait Enc {
            fn enc(&self) -> Vec<u8>;
        }
        impl<T: serde::Serialize> Enc for T {
            fn enc(&self) -> Vec<u8> {
                postcard::to_allocvec(self).expect("seed encodes")
            }
        }
    }
}
