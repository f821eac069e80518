//! What can go wrong between a client and the host: reaching it, the exchange itself, and
//! the command's own refusal. Messages are meant to be printed as they are (`opteadm:
//! <message>`), so each says what happened in plain words.

use opte_api::{OpteCmd, OpteError};
use std::io;
use std::path::PathBuf;

/// Why a command did not give a response.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing listens on the control socket: it does not exist, or no one accepts on it.
    #[error("the xde daemon is not running (no socket at {})", path.display())]
    DaemonNotRunning {
        /// The socket path tried.
        path: PathBuf,
    },

    /// The xde control device does not exist (illumos: the driver is not attached).
    #[error("the xde driver is not attached (no {})", path.display())]
    DriverNotAttached {
        /// The device path tried.
        path: PathBuf,
    },

    /// A system call on the way to the host or back failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "reading the ListPorts response from /run/opte/xde.sock".
        context: String,
        /// The OS's error.
        #[source]
        source: io::Error,
    },

    /// The request could not be serialised.
    #[error("failed to serialise the {cmd} request: {source}")]
    ReqSer {
        /// The command.
        cmd: OpteCmd,
        /// Postcard's error.
        #[source]
        source: postcard::Error,
    },

    /// The host's answer could not be understood.
    #[error("failed to deserialise the {cmd} response: {msg}")]
    RespDeser {
        /// The command.
        cmd: OpteCmd,
        /// What was wrong with it.
        msg: String,
    },

    /// The response outgrew the buffer on every attempt (it kept growing between attempts).
    #[error("{0}: the response did not fit after {1} attempts with larger buffers")]
    MaxAttempts(OpteCmd, u32),

    /// The host ran the command and refused it.
    #[error("{0} failed: {1}")]
    CommandError(OpteCmd, OpteError),

    /// Client and host were built for different API versions; neither can trust the other's
    /// encoding, so nothing was done.
    #[error("API version mismatch: opteadm speaks {client}, {peer} speaks {server}")]
    BadApiVersion {
        /// This client's `API_VERSION`.
        client: u64,
        /// The host's.
        server: u64,
        /// Who the host is ("the daemon", "the xde driver").
        peer: &'static str,
    },
}

impl Error {
    /// The host's error, if the host refused the command.
    pub fn opte_error(&self) -> Option<&OpteError> {
        match self {
            Self::CommandError(_, e) => Some(e),
            _ => None,
        }
    }
}
