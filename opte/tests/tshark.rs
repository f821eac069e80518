//! Every kind of packet the builders make, written to a pcap and dissected by tshark with
//! checksum validation on: no malformed packet, no bad checksum, and the addresses, ports,
//! VNI and Geneve options tshark reads are the ones that were built.
//!
//! tshark must be installed (`cargo xtask test` installs it).

use opte::build::samples::{self, Side};
use opte::build::{Headers, L3Repr, UlpRepr};
use opte::packet::parse::{parse_guest, parse_network};
use opte::pcap::PcapWriter;
use std::process::Command;

/// The fields compared, in tshark's `-e` order.
const FIELDS: [&str; 14] = [
    "eth.src",
    "eth.dst",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "geneve.vni",
    "geneve.option.class",
    "arp.src.proto_ipv4",
    "arp.dst.proto_ipv4",
];

/// Checksum validation on, reassembly off (each fragment is judged as it is).
const PREFS: [&str; 16] = [
    // RFC 6935: a tunnel over IPv6 may send a zero UDP checksum, as Geneve does.
    "-o",
    "udp.ignore_ipv6_zero_checksum:TRUE",
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "tcp.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-o",
    "ip.defragment:FALSE",
    "-o",
    "ipv6.defragment:FALSE",
    "-o",
    "tcp.desegment_tcp_streams:FALSE",
    "-o",
    "tcp.analyze_sequence_numbers:FALSE",
];

fn mac(m: opte_api::MacAddr) -> String {
    m.bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn v6(a: opte_api::Ipv6Addr) -> String {
    std::net::Ipv6Addr::from(a.bytes()).to_string()
}

fn v4(a: opte_api::Ipv4Addr) -> String {
    std::net::Ipv4Addr::from(a.bytes()).to_string()
}

/// What tshark should print for each field, from the headers the builder wrote.
fn expected(h: &Headers) -> Vec<String> {
    let mut f: Vec<Vec<String>> = vec![Vec::new(); FIELDS.len()];
    if let Some(e) = &h.encap {
        f[0].push(mac(e.eth.src));
        f[1].push(mac(e.eth.dst));
        f[4].push(v6(e.ip6.src));
        f[5].push(v6(e.ip6.dst));
        f[8].push(e.udp.src_port.to_string());
        f[9].push(e.udp.dst_port.to_string());
        f[10].push(format!("{:#08x}", e.geneve.vni.as_u32()));
        for o in &e.geneve.options {
            f[11].push(format!("{:#06x}", o.class));
        }
    }
    f[0].push(mac(h.eth.src));
    f[1].push(mac(h.eth.dst));
    if let Some(a) = &h.arp {
        f[12].push(v4(a.spa));
        f[13].push(v4(a.tpa));
    }
    match &h.l3 {
        Some(L3Repr::Ipv4(r)) => {
            f[2].push(v4(r.src));
            f[3].push(v4(r.dst));
        }
        Some(L3Repr::Ipv6(r)) => {
            f[4].push(v6(r.src));
            f[5].push(v6(r.dst));
        }
        None => {}
    }
    match &h.ulp {
        Some(UlpRepr::Tcp(t)) => {
            f[6].push(t.src_port.to_string());
            f[7].push(t.dst_port.to_string());
        }
        Some(UlpRepr::Udp(u)) => {
            f[8].push(u.src_port.to_string());
            f[9].push(u.dst_port.to_string());
        }
        _ => {}
    }
    f.into_iter().map(|v| v.join(",")).collect()
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark ({e}); install it: cargo xtask test does"));
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn tshark_dissects_every_built_packet_cleanly() {
    let all = samples::all();
    let dir = std::env::temp_dir().join(format!("opte-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("samples.pcap");
    let mut expect = Vec::new();
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut w = PcapWriter::new(std::io::BufWriter::new(file)).unwrap();
        for (i, s) in all.iter().enumerate() {
            let mut pkt = s.packet();
            let h = match s.side {
                Side::Guest => Headers::from_guest(&pkt.clone(), &parse_guest(&mut pkt).unwrap()),
                Side::Network => {
                    Headers::from_network(&pkt.clone(), &parse_network(&mut pkt).unwrap())
                }
            }
            .unwrap();
            expect.push((s.name.clone(), expected(&h)));
            w.write_packet(i as u64 * 1000, &s.packet()).unwrap();
        }
        w.flush().unwrap();
    }
    let p = path.to_str().unwrap();

    let mut args = vec!["-r", p, "-n"];
    args.extend(PREFS);
    args.extend(["-Y", "_ws.malformed || _ws.expert.severity == \"Error\""]);
    args.extend([
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
    ]);
    let bad = tshark(&args);
    assert!(
        bad.trim().is_empty(),
        "tshark found malformed packets or bad checksums in {p} (kept for inspection):\n{bad}"
    );

    let mut args = vec!["-r", p, "-n"];
    args.extend(PREFS);
    args.extend([
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in FIELDS {
        args.extend(["-e", f]);
    }
    let out = tshark(&args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        all.len(),
        "tshark read a different number of frames"
    );
    for ((name, want), line) in expect.iter().zip(lines) {
        let got: Vec<&str> = line.split('|').collect();
        for (i, field) in FIELDS.iter().enumerate() {
            assert_eq!(
                got.get(i).copied().unwrap_or(""),
                want[i],
                "{name}: {field}"
            );
        }
    }
    // The Geneve option types too, for the packets that carry options.
    let mut args = vec![
        "-r",
        p,
        "-n",
        "-Y",
        "geneve",
        "-T",
        "fields",
        "-e",
        "geneve.option.type",
    ];
    args.extend(PREFS);
    let types = tshark(&args);
    let want: Vec<String> = all
        .iter()
        .filter(|s| s.side == Side::Network)
        .map(|s| {
            let mut pkt = s.packet();
            let m = parse_network(&mut pkt).unwrap();
            let h = Headers::from_network(&pkt, &m).unwrap();
            let e = h.encap.unwrap();
            e.geneve
                .options
                .iter()
                .map(|o| format!("{:#04x}", o.ty))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    assert_eq!(types.lines().collect::<Vec<_>>(), want);
    std::fs::remove_dir_all(&dir).unwrap();
}
