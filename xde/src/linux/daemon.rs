//! The daemon's life: it takes the control socket (refusing to start beside a live daemon),
//! starts the control server, the datapath workers and the once-a-second tick, waits for
//! SIGTERM or SIGINT and shuts down cleanly: the socket file is removed, every TAP closed
//! (which removes the devices) and the underlay sockets closed.

// A no_std crate: the daemon brings std's prelude in itself.
use super::control;
use super::datapath;
use super::host::LinuxHost;
use crate::Xde;
use nix::sys::signal::{SigSet, Signal};
use opte::engine::time::Moment;
use std::format;
use std::path::PathBuf;
use std::prelude::rust_2024::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// What the daemon is started with.
#[derive(Clone, Debug)]
pub struct Options {
    /// The control socket's path.
    pub socket: PathBuf,
    /// Datapath workers (threads), each serving the ports it owns, with its own socket on
    /// each underlay link.
    pub workers: usize,
    /// How long a worker keeps looking for frames without sleeping after it last found
    /// some (zero: it sleeps at once).
    pub spin: Duration,
    /// PACKET_MMAP receive rings on the underlay sockets, where the kernel makes them.
    pub rx_rings: bool,
    /// The most entries each of a port's UFTs, TCP table and firewall may hold.
    pub flow_limit: Option<u32>,
}

/// Run the daemon until SIGTERM or SIGINT. An error is why it could not start.
pub fn run(opts: &Options) -> Result<(), String> {
    // Block the signals before any thread starts, so every thread inherits the mask and
    // the main thread alone takes them, with sigwait.
    let signals = block_stop_signals()?;

    let listener = control::bind(&opts.socket).map_err(|e| e.to_string())?;
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let xde = Arc::new(Xde::new(
        LinuxHost::new(opts.workers).with_rx_rings(opts.rx_rings),
        seed,
    ));
    if let Some(n) = opts.flow_limit {
        xde.set_flow_limit(n);
    }
    let epoch = xde.host().epoch();
    let stop = Arc::new(AtomicBool::new(false));

    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(|e| format!("starting thread {name}: {e}"))
    };
    {
        let xde = xde.clone();
        spawn(
            "xded-accept",
            Box::new(move || control::serve(listener, xde)),
        )?;
    }
    let workers = (0..xde.host().workers())
        .map(|w| {
            let (xde, stop, spin) = (xde.clone(), stop.clone(), opts.spin);
            spawn(
                &format!("xded-w{w}"),
                Box::new(move || datapath::run_worker(xde, w, epoch, spin, stop)),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    {
        let (xde, stop) = (xde.clone(), stop.clone());
        spawn(
            "xded-tick",
            Box::new(move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_secs(1));
                    xde.tick(Moment::from_nanos(epoch.elapsed().as_nanos() as u64));
                }
            }),
        )?;
    }
    tracing::info!(
        socket = %opts.socket.display(),
        pid = std::process::id(),
        workers = xde.host().workers(),
        "xded ready"
    );

    let sig = signals
        .wait()
        .map_err(|e| format!("waiting for a signal: {e}"))?;
    tracing::info!(signal = %sig, "shutting down");
    if let Err(e) = std::fs::remove_file(&opts.socket) {
        tracing::warn!(error = %e, "removing the control socket");
    }
    stop.store(true, Ordering::Release);
    for w in workers {
        let _ = w.join();
    }
    xde.host().close_all();
    tracing::info!("xded stopped");
    Ok(())
}

/// Block SIGTERM and SIGINT in this thread (and the threads it starts), to be taken with
/// the returned set's `wait`.
pub(super) fn block_stop_signals() -> Result<SigSet, String> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals
        .thread_block()
        .map_err(|e| format!("blocking SIGTERM and SIGINT: {e}"))?;
    Ok(signals)
}
