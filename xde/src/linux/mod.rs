//! The Linux host of the core: the `xded` daemon's parts. Only this module (and the
//! binary) makes system calls.
//!
//! | module | what it is for |
//! |---|---|
//! | [`daemon`] | start, signals, clean shutdown |
//! | [`control`] | the control socket: peer credentials, framing, bounds, deadlines |
//! | [`host`] | [`host::LinuxHost`], the core's `Host`: TAP devices per port |
//! | [`tap`] | one TAP device with a virtio-net header |
//! | [`datapath`] | the workers: TAP queues and underlay sockets in, through the core, out where it says; offloads |
//! | [`nexthop`] | next hops from the kernel's route and neighbour tables over rtnetlink |
//! | [`underlay`] | one underlay link: AF_PACKET with a Geneve filter |
//! | [`boundary`] | boundary services for the demo and tests: Geneve ↔ an "internet" TUN |

pub mod allocs;
pub mod boundary;
pub mod control;
pub mod daemon;
pub mod datapath;
pub mod host;
pub mod nexthop;
pub mod ring;
pub mod state;
pub mod tap;
pub mod underlay;
pub mod vhost;

/// How the daemons write their log lines (on standard error).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain text.
    Text,
    /// A JSON object per line.
    Json,
}

/// Send `tracing`'s events at INFO and above to standard error, in `format`.
pub fn init_logging(format: LogFormat) {
    let logger = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO);
    match format {
        LogFormat::Text => logger.init(),
        LogFormat::Json => logger.json().init(),
    }
}
