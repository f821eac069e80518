//! The command line (SPEC §5): every subcommand with the reference's name and arguments,
//! plus `dump-xde-stats`, `--page-size` on `dump-uft` and `dump-tcp-flows`, the global
//! `--json` and `--socket`.
//!
//! Only parsing lives here; what each subcommand does is [`crate::run()`].

use clap::{Args, Parser, Subcommand};
use opte_api::{
    Direction, DomainName, IpAddr, IpCidr, Ipv6Addr, Ipv6Cidr, MAX_DUMP_PAGE, MacAddr,
    MulticastUnderlay, Vni,
};
use oxide_vpc::api::{Address, FirewallAction, Ports, ProtoFilter, Replication};
use oxide_vpc::api::{RouterClass, RouterTarget};
use std::path::PathBuf;

/// `MAJOR.API_VERSION.COMMITS`, set by the build script.
pub const VERSION: &str = env!("OPTEADM_VERSION");

/// Administer the Oxide Packet Transformation Engine (OPTE).
#[derive(Debug, Parser)]
#[command(name = "opteadm", version = VERSION)]
pub struct Cli {
    /// Print a read command's response as JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,

    /// The xde daemon's control socket [default: $OPTE_XDE_SOCKET, else /run/opte/xde.sock].
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub cmd: Command,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List all ports.
    ListPorts,

    /// Write the Kata Containers DAN file for a sandbox whose VM's NIC is this port: its
    /// TAP (a --vmm port) or vhost-user socket, guest MAC, address, the gateway on the
    /// link, the default route through it, and the gateway's MAC as a neighbour.
    KataDan(KataDanArgs),

    /// List the layers of a port.
    ListLayers {
        /// The port.
        #[arg(short)]
        port: String,
    },

    /// Dump a layer's flows and rules.
    DumpLayer {
        /// The port.
        #[arg(short)]
        port: String,
        /// The layer's name.
        name: String,
    },

    /// Clear a port's unified flow tables.
    ClearUft {
        /// The port.
        #[arg(short)]
        port: String,
    },

    /// Clear a layer's flow table.
    ClearLft {
        /// The port.
        #[arg(short)]
        port: String,
        /// The layer's name.
        layer: String,
    },

    /// Dump a port's unified flow tables.
    DumpUft {
        /// The port.
        #[arg(short)]
        port: String,
        /// Fetch each table N entries at a time (for tables too big for one response);
        /// the output is the same.
        #[arg(long, value_name = "N", value_parser = page_size())]
        page_size: Option<u32>,
    },

    /// Dump a port's TCP flows.
    DumpTcpFlows {
        /// The port.
        #[arg(short)]
        port: String,
        /// Fetch the table N entries at a time (for tables too big for one response); the
        /// output is the same.
        #[arg(long, value_name = "N", value_parser = page_size())]
        page_size: Option<u32>,
    },

    /// Dump the virtual-to-physical mappings.
    #[command(name = "dump-v2p")]
    DumpV2p,

    /// Dump the virtual-to-boundary mappings.
    #[command(name = "dump-v2b")]
    DumpV2b,

    /// Add a firewall rule.
    AddFwRule {
        /// The port.
        #[arg(short)]
        port: String,
        /// in or out.
        #[arg(long = "dir")]
        direction: Direction,
        /// The remote hosts: any, ip=ADDR, subnet=CIDR or vni=N.
        #[arg(long)]
        hosts: Address,
        /// any, arp, tcp, udp, icmp[:T[,C[-C]]], icmp6[:…] or a protocol number.
        #[arg(long)]
        protocol: ProtoFilter,
        /// Destination ports: any, or P[,P…].
        #[arg(long)]
        ports: Ports,
        /// allow or deny.
        #[arg(long, value_parser = parse_action)]
        action: FirewallAction,
        /// Lower is matched first.
        #[arg(long)]
        priority: u16,
    },

    /// Remove a firewall rule.
    RmFwRule {
        /// The port.
        #[arg(short)]
        port: String,
        /// in or out.
        #[arg(long = "dir")]
        direction: Direction,
        /// The rule's id.
        id: u64,
    },

    /// Replace a port's firewall rules with rules read from stdin.
    ///
    /// One rule per line, in text form (`dir=in action=allow priority=10 protocol=tcp
    /// port=22`); blank lines and `#` comments are skipped.
    SetFwRules {
        /// The port.
        #[arg(short)]
        port: String,
    },

    /// Create a port.
    CreateXde(Box<CreateXdeArgs>),

    /// Delete a port.
    DeleteXde {
        /// The port.
        name: String,
    },

    /// Bind the two underlay links.
    SetXdeUnderlay {
        /// The first underlay link.
        u1: String,
        /// The second underlay link.
        u2: String,
    },

    /// Unbind the underlay links (no port may exist).
    ClearXdeUnderlay,

    /// Add a virtual-to-physical mapping.
    #[command(name = "set-v2p")]
    SetV2p(V2pArgs),

    /// Remove a virtual-to-physical mapping.
    #[command(name = "clear-v2p")]
    ClearV2p(V2pArgs),

    /// Add boundary tunnel endpoints for a prefix (VNI 99).
    #[command(name = "set-v2b")]
    SetV2b(V2bArgs),

    /// Remove boundary tunnel endpoints of a prefix.
    #[command(name = "clear-v2b")]
    ClearV2b(V2bArgs),

    /// Map an overlay multicast group to an underlay group.
    #[command(name = "set-m2p")]
    SetM2p(M2pArgs),

    /// Remove an overlay-to-underlay multicast mapping.
    #[command(name = "clear-m2p")]
    ClearM2p(M2pArgs),

    /// Dump the overlay-to-underlay multicast mappings.
    #[command(name = "dump-m2p")]
    DumpM2p,

    /// Add or update one next hop of an underlay group (VNI 77, any source).
    SetMcastFwd {
        /// The underlay group (ff04::/16).
        underlay: MulticastUnderlay,
        /// The next hop's underlay address.
        next_hop: Ipv6Addr,
        /// external, underlay or both.
        replication: Replication,
    },

    /// Remove an underlay group's forwarding entry.
    ClearMcastFwd {
        /// The underlay group (ff04::/16).
        underlay: MulticastUnderlay,
    },

    /// Dump the multicast forwarding table.
    DumpMcastFwd,

    /// Dump the multicast subscriptions.
    DumpMcastSubs,

    /// Subscribe a port to a multicast group (any source).
    McastSubscribe {
        /// The port.
        #[arg(short)]
        port: String,
        /// The overlay group.
        group: IpAddr,
    },

    /// Unsubscribe a port from a multicast group.
    McastUnsubscribe {
        /// The port.
        #[arg(short)]
        port: String,
        /// The overlay group.
        group: IpAddr,
    },

    /// Unsubscribe every port from a multicast group.
    McastUnsubscribeAll {
        /// The overlay group.
        group: IpAddr,
    },

    /// Add a router entry.
    AddRouterEntry(RouteArgs),

    /// Delete a router entry.
    DelRouterEntry(RouteArgs),

    /// Replace a port's external IPs.
    SetExternalIps {
        /// The port.
        #[arg(short)]
        port: String,
        /// The new external addresses (none given: the port has none).
        #[command(flatten)]
        external: ExternalNetArgs,
    },

    /// Let a port carry traffic for a prefix it does not own (a transit IP).
    AllowCidr(CidrArgs),

    /// Withdraw a transit IP.
    RemoveCidr(CidrArgs),

    /// Attach a subnet to a port.
    AttachSubnet {
        /// The port.
        #[arg(short)]
        port: String,
        /// The subnet.
        prefix: IpCidr,
        /// The subnet is reached from outside the rack.
        #[arg(short, long)]
        external: bool,
    },

    /// Detach a subnet from a port.
    DetachSubnet {
        /// The port.
        #[arg(short)]
        port: String,
        /// The subnet.
        prefix: IpCidr,
    },

    /// Dump the host's counters and each port's.
    DumpXdeStats,

    /// Pause a port and write its flow state (firewall, NAT and SNAT flows, TCP
    /// connections) to FILE, for `import-port` on another sled. Packets reaching the port
    /// from then on are dropped (and counted) until it is deleted or resumed.
    ExportPort {
        /// The port.
        name: String,
        /// Where to write the flow state (replaced whole, never left half-written).
        file: std::path::PathBuf,
    },

    /// Give a port that holds no flows yet the flow state in FILE, exported by a port of
    /// the same configuration (on this sled or another), and run it.
    ImportPort {
        /// The port.
        name: String,
        /// The flow state `export-port` wrote.
        file: std::path::PathBuf,
    },

    /// Run a port paused by `export-port` again (the migration did not happen).
    ResumePort {
        /// The port.
        name: String,
    },
}

/// `kata-dan`: which port, for which sandbox, and what the port's configuration does not
/// tell (the gateway's addresses).
#[derive(Debug, Args)]
pub struct KataDanArgs {
    /// The port.
    pub port: String,
    /// The sandbox: the file is DAN-DIR/SANDBOX-ID.json.
    #[arg(long)]
    pub sandbox_id: String,
    /// Kata's `dan_conf` directory.
    #[arg(long, default_value = opte_ioctl::kata::DEFAULT_DAN_DIR)]
    pub dan_dir: PathBuf,
    /// The sandbox's network namespace (a path).
    #[arg(long, default_value = "")]
    pub netns: String,
    /// The gateway's IPv4 address.
    #[arg(long)]
    pub gateway_ip: Option<opte_api::Ipv4Addr>,
    /// The gateway's IPv6 address.
    #[arg(long)]
    pub gateway_ipv6: Option<Ipv6Addr>,
    /// The gateway's MAC address.
    #[arg(long, default_value = "a8:40:25:ff:77:77")]
    pub gateway_mac: MacAddr,
    /// The link's MTU.
    #[arg(long, default_value_t = 1500)]
    pub mtu: u32,
    /// The NIC's name in the guest.
    #[arg(long, default_value = "eth0")]
    pub guest_ifname: String,
    /// The port's vhost-user socket (the port was made with --vhost-user); without it
    /// the device is the port's TAP.
    #[arg(long, value_name = "PATH")]
    pub vhost_user: Option<PathBuf>,
    /// The vhost-user queue size.
    #[arg(long, default_value_t = 1024, requires = "vhost_user")]
    pub queue_size: u32,
}

/// `create-xde`: the port's name, addresses and options.
///
/// The port is single-stack, of `--private-ip`'s family; `--private-ipv6` (with
/// `--vpc-ipv6-subnet` and `--gateway-ipv6`) adds IPv6 to an IPv4 port.
#[derive(Debug, Args)]
pub struct CreateXdeArgs {
    /// The port's name.
    pub name: String,
    /// The guest's MAC address.
    #[arg(long)]
    pub guest_mac: MacAddr,
    /// The guest's private address.
    #[arg(long)]
    pub private_ip: IpAddr,
    /// The VPC subnet the private address is in.
    #[arg(long)]
    pub vpc_subnet: IpCidr,
    /// The gateway's MAC address.
    #[arg(long)]
    pub gateway_mac: MacAddr,
    /// The gateway's address in the VPC subnet.
    #[arg(long)]
    pub gateway_ip: IpAddr,
    /// The VPC's VNI.
    #[arg(long)]
    pub vpc_vni: Vni,
    /// This sled's underlay address.
    #[arg(long)]
    pub src_underlay_addr: Ipv6Addr,
    /// The guest link's MTU [default: 1500].
    #[arg(long)]
    pub mtu: Option<u32>,
    /// Leave the port's TAP for a VM monitor to open by name (QEMU `-netdev
    /// tap,ifname=NAME`), rather than keep it as a container's NIC (the Linux daemon).
    #[arg(long, conflicts_with = "vhost_user")]
    pub vmm: bool,
    /// Make no device: serve the vhost-user protocol on a Unix socket at PATH, as the
    /// backend of a VM's virtio-net device (QEMU `-chardev socket,id=c,path=PATH -netdev
    /// vhost-user,id=n,chardev=c`, guest memory shared: `memory-backend-memfd,share=on`).
    #[arg(long, value_name = "PATH")]
    pub vhost_user: Option<std::path::PathBuf>,
    /// A private IPv6 address as well (dual stack; --private-ip must be IPv4).
    #[arg(long, requires_all = ["vpc_ipv6_subnet", "gateway_ipv6"])]
    pub private_ipv6: Option<Ipv6Addr>,
    /// The VPC's IPv6 subnet (with --private-ipv6).
    #[arg(long, requires = "private_ipv6")]
    pub vpc_ipv6_subnet: Option<Ipv6Cidr>,
    /// The gateway's IPv6 address (with --private-ipv6).
    #[arg(long, requires = "private_ipv6")]
    pub gateway_ipv6: Option<Ipv6Addr>,
    /// The port's external addresses.
    #[command(flatten)]
    pub external: ExternalNetArgs,
    /// The guest's host name (DHCP).
    #[arg(long)]
    pub hostname: Option<DomainName>,
    /// The guest's domain (DHCP).
    #[arg(long)]
    pub host_domain: Option<DomainName>,
    /// DNS servers, comma separated, either family (DHCP).
    #[arg(long, value_delimiter = ',')]
    pub dns_servers: Vec<IpAddr>,
    /// Search domains, comma separated (DHCP).
    #[arg(long, value_delimiter = ',')]
    pub domain_search_list: Vec<DomainName>,
}

/// External addresses: source NAT, an ephemeral IP, floating IPs. Split by family.
#[derive(Debug, Default, Args)]
pub struct ExternalNetArgs {
    /// The external address source NAT shares (with --snat-start and --snat-end).
    #[arg(long, requires_all = ["snat_start", "snat_end"])]
    pub snat_ip: Option<IpAddr>,
    /// The first source NAT port.
    #[arg(long, requires = "snat_ip")]
    pub snat_start: Option<u16>,
    /// The last source NAT port.
    #[arg(long, requires = "snat_ip")]
    pub snat_end: Option<u16>,
    /// An external address of this guest's own, outbound and inbound.
    #[arg(long)]
    pub ephemeral_ip: Option<IpAddr>,
    /// Floating addresses (repeat the option, or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub floating_ip: Vec<IpAddr>,
}

/// `set-v2p` / `clear-v2p`.
#[derive(Debug, Args)]
pub struct V2pArgs {
    /// The guest's VPC address.
    pub vpc_ip: IpAddr,
    /// The guest's MAC address.
    pub vpc_mac: MacAddr,
    /// The underlay address of the guest's sled.
    pub underlay_ip: Ipv6Addr,
    /// The VPC's VNI.
    pub vni: Vni,
}

/// `set-v2b` / `clear-v2b`.
#[derive(Debug, Args)]
pub struct V2bArgs {
    /// The prefix tunnelled to boundary services.
    pub prefix: IpCidr,
    /// The boundary tunnel endpoints' underlay addresses.
    #[arg(required = true)]
    pub tunnel_endpoint: Vec<Ipv6Addr>,
}

/// `set-m2p` / `clear-m2p`.
#[derive(Debug, Args)]
pub struct M2pArgs {
    /// The overlay group.
    pub group: IpAddr,
    /// The underlay group (ff04::/16).
    pub underlay: MulticastUnderlay,
}

/// `add-router-entry` / `del-router-entry`.
#[derive(Debug, Args)]
pub struct RouteArgs {
    /// The port.
    #[arg(short)]
    pub port: String,
    /// The destination prefix.
    pub dest: IpCidr,
    /// drop, ig, ig=UUID, ip4=ADDR, ip6=ADDR, sub4=CIDR or sub6=CIDR.
    pub target: RouterTarget,
    /// system or custom.
    pub class: RouterClass,
}

/// `allow-cidr` / `remove-cidr`.
#[derive(Debug, Args)]
pub struct CidrArgs {
    /// The port.
    #[arg(short)]
    pub port: String,
    /// The transit prefix.
    pub prefix: IpCidr,
    /// in or out [default: both].
    #[arg(long)]
    pub dir: Option<Direction>,
}

/// `--page-size`: 1 to [`MAX_DUMP_PAGE`] entries a page.
fn page_size() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_DUMP_PAGE))
}

fn parse_action(s: &str) -> Result<FirewallAction, String> {
    if s.eq_ignore_ascii_case("allow") {
        Ok(FirewallAction::Allow)
    } else if s.eq_ignore_ascii_case("deny") {
        Ok(FirewallAction::Deny)
    } else {
        Err(format!("expected allow or deny, got {s:?}"))
    }
}
