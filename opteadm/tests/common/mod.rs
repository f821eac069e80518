//! What the opteadm tests share: a host core on a host that accepts everything, and a way
//! to run one command line against it as the binary would.
#![allow(dead_code)] // each test binary uses its own part of this

use clap::Parser;
use opte::build::{Headers, L3Repr, UlpRepr};
use opte::engine::time::Moment;
use opte::packet::Packet;
use opte::wire::ether::{ETHER_TYPE_IPV4, EtherRepr};
use opte::wire::ip4::Ipv4Repr;
use opte::wire::tcp::TcpRepr;
use opte_api::ControlRequest;
use opte_ioctl::{InProcess, OpteHdl};
use opteadm::{Cli, Error};
use std::sync::Arc;
use xde::Xde;
use xde::host::NullHost;

/// A host core and a handle onto it.
pub struct Sled {
    pub xde: Arc<Xde<NullHost>>,
    pub hdl: OpteHdl,
}

pub fn sled() -> Sled {
    let xde = Arc::new(Xde::new(NullHost, 0x5eed));
    let x = xde.clone();
    let hdl = OpteHdl::new(InProcess::new(move |r: &ControlRequest| x.dispatch(r)));
    Sled { xde, hdl }
}

impl Sled {
    /// Run `opteadm <line>` (split on whitespace) with `stdin`; what it printed.
    pub fn run_with(&self, line: &str, stdin: &str) -> Result<String, Error> {
        let cli = Cli::try_parse_from(std::iter::once("opteadm").chain(line.split_whitespace()))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let mut out = Vec::new();
        opteadm::run(cli, &self.hdl, &mut stdin.as_bytes(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    /// Run `opteadm <line>`, which must succeed; what it printed.
    pub fn run(&self, line: &str) -> String {
        self.run_with(line, "")
            .unwrap_or_else(|e| panic!("opteadm {line}: {e}"))
    }

    /// Guest `n` of [`create_xde_line`], on port `port`, sends a TCP SYN from port `sport`
    /// to `dst`:`dport` at time `now_s`.
    pub fn guest_syn(&self, port: &str, n: u8, sport: u16, dst: &str, dport: u16, now_s: u64) {
        let mut ip = Ipv4Repr::new(
            format!("172.30.0.{}", 4 + u16::from(n)).parse().unwrap(),
            dst.parse().unwrap(),
            6,
        );
        ip.ttl = 64;
        let mut tcp = TcpRepr::new(sport, dport, 0x02);
        tcp.seq = 1000;
        tcp.window = 65000;
        let eth = EtherRepr {
            dst: "a8:40:25:ff:77:77".parse().unwrap(),
            src: format!("a8:40:25:fa:fa:{n:02x}").parse().unwrap(),
            ether_type: ETHER_TYPE_IPV4,
            vlan: None,
        };
        let frame = Headers::new(eth, L3Repr::Ipv4(ip), UlpRepr::Tcp(tcp))
            .build(&[])
            .unwrap();
        let p = self.xde.port(port).unwrap();
        let mut out = Vec::new();
        self.xde.tx(
            &p,
            Packet::copy_from(&frame),
            Moment::from_secs(now_s),
            &mut out,
        );
    }

    /// Run `opteadm <line>`, which must fail; its message.
    pub fn fail(&self, line: &str) -> String {
        match self.run_with(line, "") {
            Ok(out) => panic!("opteadm {line} succeeded: {out}"),
            Err(e) => e.to_string(),
        }
    }
}

/// `create-xde` for guest `n` of VPC 1287581 (IPv4 172.30.0.{4+n}, sled fd00:0:f7:101::1).
pub fn create_xde_line(name: &str, n: u8, extra: &str) -> String {
    format!(
        "create-xde {name} --guest-mac a8:40:25:fa:fa:{n:02x} --private-ip 172.30.0.{} \
         --vpc-subnet 172.30.0.0/22 --gateway-mac a8:40:25:ff:77:77 --gateway-ip 172.30.0.1 \
         --vpc-vni 1287581 --src-underlay-addr fd00:0:f7:101::1 {extra}",
        4 + u16::from(n)
    )
}
