//! `xded`: the OPTE host daemon for Linux. It hosts the `xde` core: a TAP device per port,
//! the control socket `opteadm` talks to, the datapath, the once-a-second flow expiry.
//!
//! `xded [--socket PATH] [--log text|json] [--workers N] [--spin-us US] [--no-rx-rings]
//! [--flow-limit N] [--state-dir DIR | --no-state]`,
//! in the foreground, as root.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use xde::linux::daemon::{self, Options};
use xde::linux::{LogFormat, init_logging};

/// The system allocator, counting what the datapath's workers allocate (`worker_allocs`).
#[global_allocator]
static ALLOC: xde::linux::allocs::Counting = xde::linux::allocs::Counting;

/// The OPTE host daemon: ports as TAP devices, configured by opteadm over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "xded", version)]
struct Args {
    /// The control socket [default: $OPTE_XDE_SOCKET, else /run/opte/xde.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Log lines as plain text or as JSON objects, on standard error.
    #[arg(long, value_enum, default_value = "text")]
    log: LogFormat,
    /// Datapath workers (threads) [default: one per CPU]. Each port belongs to one of them
    /// (by a hash of its VNI and MAC): the worker reads the port's TAP, and the kernel
    /// steers what arrives on the underlay for the port to that worker's socket.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: Option<u16>,
    /// How long, in microseconds, a worker keeps looking for frames without sleeping after
    /// it last found some: less latency while traffic flows, for some CPU (0: none).
    #[arg(long, value_name = "US", default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    spin_us: u32,
    /// Read the underlay links with recvmmsg rather than through PACKET_MMAP receive
    /// rings (which are used where the kernel makes them).
    #[arg(long)]
    no_rx_rings: bool,
    /// The most entries each of a port's UFTs, its TCP table and its firewall may hold
    /// [default: enough for every SNAT port, at least 524288]: what a flood of new flows
    /// may cost a port is bounded by it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(16..))]
    flow_limit: Option<u32>,
    /// Keep the configuration here, written after every change, and the flows at a stop
    /// (SIGTERM): the next start restores both, and opens the guests' TAPs again where
    /// they are. TAPs are persistent: they outlive the daemon.
    #[arg(long, value_name = "DIR", default_value = xde::linux::state::DEFAULT_DIR)]
    state_dir: PathBuf,
    /// Keep nothing across a restart: a stop removes every TAP.
    #[arg(long, conflicts_with = "state_dir")]
    no_state: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log);
    if let Err(e) = xde::probes::register() {
        tracing::warn!(error = %e, "registering the USDT probes");
    }
    let socket = args
        .socket
        .or_else(|| std::env::var_os("OPTE_XDE_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(opte_api::control::DEFAULT_SOCKET));
    let workers = args.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get().min(64)),
        usize::from,
    );
    let spin = std::time::Duration::from_micros(u64::from(args.spin_us));
    match daemon::run(&Options {
        socket,
        workers,
        spin,
        rx_rings: !args.no_rx_rings,
        flow_limit: args.flow_limit,
        state_dir: (!args.no_state).then_some(args.state_dir),
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("xded: {e}");
            ExitCode::FAILURE
        }
    }
}
