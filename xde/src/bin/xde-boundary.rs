//! `xde-boundary`: boundary services for a VPC run on one Linux machine (the demo and the
//! end-to-end tests): Geneve from sleds to the internet through a TUN device, and return
//! traffic encapsulated to the sled that owns its external IP.
//!
//! `xde-boundary --underlay L1 --underlay L2 --addr IPV6 --tun NAME --nat ENTRY...`, in
//! the foreground, as root, in the network namespace that plays the rack switch's
//! boundary role.

use clap::Parser;
use std::process::ExitCode;
use xde::linux::boundary::{self, NatEntry, Options};
use xde::linux::{LogFormat, init_logging};

/// Boundary services: decapsulates sleds' internet traffic into a TUN device, and
/// encapsulates the answers to the sled that owns each external IP.
#[derive(Debug, Parser)]
#[command(name = "xde-boundary", version)]
struct Args {
    /// An underlay link (twice: the two links, as a sled has).
    #[arg(long, value_name = "LINK", num_args = 1, required = true)]
    underlay: Vec<String>,
    /// The boundary's underlay IPv6 address, owned by this host's kernel (the sleds' V2B
    /// entries point to it).
    #[arg(long, value_name = "IPV6")]
    addr: opte_api::Ipv6Addr,
    /// The TUN device to create toward the internet; routes to the external IPs through it
    /// are the caller's to add.
    #[arg(long, value_name = "NAME")]
    tun: String,
    /// Who owns an external IP: EXTERNAL[@FIRST-LAST]=SLED,VNI,MAC (repeatable), e.g.
    /// 198.51.100.13@1025-4096=fd00:a::1,77,a8:40:25:f0:00:05.
    #[arg(long, value_name = "ENTRY")]
    nat: Vec<NatEntry>,
    /// A file of more entries, one a line (`#` comments), read again whenever it changes:
    /// how a control plane moves an external IP to another sled.
    #[arg(long, value_name = "PATH")]
    nat_file: Option<std::path::PathBuf>,
    /// Log lines as plain text or as JSON objects, on standard error.
    #[arg(long, value_enum, default_value = "text")]
    log: LogFormat,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log);
    let [u1, u2] = <[String; 2]>::try_from(args.underlay).unwrap_or_else(|u| {
        eprintln!(
            "xde-boundary: --underlay is given twice (two links), not {} times",
            u.len()
        );
        std::process::exit(2)
    });
    let opts = Options {
        underlay: [u1, u2],
        addr: args.addr,
        tun: args.tun,
        nat: args.nat,
        nat_file: args.nat_file,
    };
    match boundary::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("xde-boundary: {e}");
            ExitCode::FAILURE
        }
    }
}
