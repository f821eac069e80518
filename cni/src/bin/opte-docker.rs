//! `opte-docker`: the Docker network driver for OPTE. It serves Docker's remote network
//! driver protocol on a Unix socket (by default `/run/docker/plugins/opte.sock`, which
//! makes the driver `opte`: `docker network create -d opte -o vni=N --subnet ...`) and
//! makes an OPTE port per endpoint through this sled's xde daemon. SIGINT or SIGTERM
//! ends it; its socket goes with it.

use clap::Parser;
use opte_cni::docker::{Driver, serve};
use opte_ioctl::{OpteHdl, UnixTransport};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Parser)]
#[command(version, about = "The Docker network driver for OPTE")]
struct Args {
    /// Where to serve the protocol; the file's stem is the driver's name.
    #[arg(long, default_value = "/run/docker/plugins/opte.sock")]
    socket: PathBuf,
    /// This sled's xde daemon (default: $OPTE_XDE_SOCKET, else the daemon's default).
    #[arg(long)]
    xde_socket: Option<PathBuf>,
    /// Another sled's xde daemon, told where containers live (repeatable).
    #[arg(long = "peer")]
    peers: Vec<PathBuf>,
    /// This sled's underlay address.
    #[arg(long)]
    underlay_ip: opte_api::Ipv6Addr,
    /// Where the driver keeps its networks and endpoints.
    #[arg(long, default_value = "/var/lib/opte-docker/state.json")]
    state: PathBuf,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("opte-docker: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let xde = args.xde_socket.unwrap_or_else(UnixTransport::default_path);
    let driver = Driver::new(
        OpteHdl::new(UnixTransport::new(xde)),
        args.peers,
        args.underlay_ip,
        args.state,
    )
    .map_err(|e| e.0)?;
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(s, &act) }.map_err(|e| format!("sigaction: {e}"))?;
    }
    if let Some(d) = args.socket.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    // A socket left by a driver that did not end cleanly.
    let _ = std::fs::remove_file(&args.socket);
    let server = tiny_http::Server::http_unix(&args.socket)
        .map_err(|e| format!("{}: {e}", args.socket.display()))?;
    eprintln!("opte-docker: serving on {}", args.socket.display());
    serve(&driver, &server, &STOP);
    drop(server);
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}
