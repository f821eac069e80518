//! The daemon's life: it takes the control socket (refusing to start beside a live daemon),
//! starts the control server, the datapath workers and the once-a-second tick, waits for
//! SIGTERM or SIGINT and shuts down cleanly: the socket file is removed, every TAP closed
//! (which removes the devices) and the underlay sockets closed.

// A no_std crate: the daemon brings std's prelude in itself.
use super::control;
use super::datapath;
use super::host::LinuxHost;
use super::state::{Loaded, StateDir};
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
    /// Where the configuration (and, at a stop, the flows) are kept, to be restored by
    /// the next start ([`super::state`]); `None`: nothing is kept.
    pub state_dir: Option<PathBuf>,
}

/// Run the daemon until SIGTERM or SIGINT. An error is why it could not start.
pub fn run(opts: &Options) -> Result<(), String> {
    // Block the signals before any thread starts, so every thread inherits the mask and
    // the main thread alone takes them, with sigwait.
    let signals = block_stop_signals()?;

    let listener = control::bind(&opts.socket).map_err(|e| e.to_string())?;
    let state = opts.state_dir.as_deref().map(StateDir::open).transpose()?;
    let loaded = state.as_ref().map(StateDir::load_config).transpose()?;
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut host = LinuxHost::new(opts.workers).with_rx_rings(opts.rx_rings);
    if let Some(state) = state {
        host = host.with_state(state);
    }
    let xde = Arc::new(Xde::new(host, seed));
    if let Some(n) = opts.flow_limit {
        xde.set_flow_limit(n);
    }
    if let Some(loaded) = loaded {
        restore(&xde, loaded)?;
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
                    xde.host().record_taps();
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
    if let Some(state) = xde.host().state() {
        // The datapath has stopped: each port's flows are what they will be.
        for p in xde.ports() {
            let name = p.name();
            match xde.export_flows(name) {
                Ok(f) => match state.write_flows(name, &f.state) {
                    Ok(()) => {
                        tracing::info!(port = name, pairs = f.pairs, tcp = f.tcp, "flows saved")
                    }
                    Err(e) => tracing::error!(port = name, error = %e, "saving the flows"),
                },
                Err(e) => tracing::error!(port = name, error = %e, "exporting the flows"),
            }
        }
        // The guests' NICs stay where they are, for the next start.
        xde.host().keep_all();
    } else {
        xde.host().close_all();
    }
    tracing::info!("xded stopped");
    Ok(())
}

/// Bring the host back as the state directory has it: the configuration (its ports
/// opening their TAPs again where the last daemon left them), then the flows saved at the
/// last stop. A configuration that cannot be restored whole stops the start (the TAPs
/// found are left in place, and the state directory as it was).
fn restore(xde: &Xde<LinuxHost>, loaded: Loaded) -> Result<(), String> {
    let log = match loaded {
        Loaded::Nothing => return Ok(()),
        Loaded::Config(log) => log,
        Loaded::Previous {
            log,
            refused,
            aside,
        } => {
            tracing::error!(error = %refused, aside = %aside.display(),
                "the configuration was refused; restoring the previous one");
            log
        }
    };
    let done = xde.restore(&log);
    if let Some((cmd, e)) = done.failed.first() {
        xde.host().keep_devices();
        return Err(format!(
            "restoring the configuration: {} of {} commands refused, the first {cmd}: {e} \
             (the state directory keeps the configuration and where the TAPs are; fix the \
             cause and start again, or start with another --state-dir)",
            done.failed.len(),
            log.len()
        ));
    }
    xde.host().forget_unclaimed();
    tracing::info!(
        commands = done.applied,
        ports = xde.ports().len(),
        "configuration restored"
    );
    if let Some(state) = xde.host().state() {
        for (port, file) in state.take_flows() {
            match xde.import_flows(&port, &file) {
                Ok(()) => tracing::info!(port, "flows restored"),
                Err(e) => tracing::warn!(port, error = %e, "the saved flows were refused"),
            }
        }
    }
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
