//! The Linux daemon's control socket: one connection per command, one frame each way.
//!
//! A frame is a 4-byte big-endian body length and a postcard body
//! ([`opte_api::control`]). The announced length of the answer is checked against the
//! protocol's limit before anything is allocated for it, and every read and write has a
//! timeout, so a daemon that stalls or hangs up is an error, never a hang.

use crate::Error;
use crate::transport::{Transport, checked_body_len, decode_response};
use opte_api::control::FRAME_HEADER_LEN;
use opte_api::{ControlRequest, ControlResponse};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The control socket of the xde daemon.
#[derive(Clone, Debug)]
pub struct UnixTransport {
    path: PathBuf,
    timeout: Duration,
}

impl UnixTransport {
    /// Where the daemon listens unless told otherwise.
    pub const DEFAULT_SOCKET: &'static str = opte_api::control::DEFAULT_SOCKET;

    /// The environment variable that names another socket.
    pub const SOCKET_ENV: &'static str = "OPTE_XDE_SOCKET";

    /// How long one read or write may wait. Generous, because a dump of a port with a
    /// million flows takes the daemon a while to build; it bounds a stall, not a command.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// The socket at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The socket named by `$OPTE_XDE_SOCKET`, else [`Self::DEFAULT_SOCKET`].
    pub fn from_env() -> Self {
        Self::new(Self::default_path())
    }

    /// The socket path [`Self::from_env`] uses.
    pub fn default_path() -> PathBuf {
        std::env::var_os(Self::SOCKET_ENV)
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(Self::DEFAULT_SOCKET), PathBuf::from)
    }

    /// The same socket with another read/write timeout (at least a millisecond).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<UnixStream, Error> {
        let stream = UnixStream::connect(&self.path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => Error::DaemonNotRunning {
                path: self.path.clone(),
            },
            _ => self.io(format!("connecting to {}", self.path.display()), e),
        })?;
        let set = |r: io::Result<()>| r.map_err(|e| self.io("setting the socket timeout", e));
        set(stream.set_read_timeout(Some(self.timeout)))?;
        set(stream.set_write_timeout(Some(self.timeout)))?;
        Ok(stream)
    }

    fn io(&self, context: impl Into<String>, source: io::Error) -> Error {
        let context = context.into();
        match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Io {
                context: format!(
                    "{context}: the daemon at {} did not answer within {:?}",
                    self.path.display(),
                    self.timeout
                ),
                source,
            },
            io::ErrorKind::UnexpectedEof => Error::Io {
                context: format!(
                    "{context}: the daemon at {} closed the connection without answering",
                    self.path.display()
                ),
                source,
            },
            _ => Error::Io { context, source },
        }
    }
}

impl Transport for UnixTransport {
    fn call(&self, req: &ControlRequest) -> Result<ControlResponse, Error> {
        let cmd = req.cmd;
        let frame = req
            .to_frame()
            .map_err(|source| Error::ReqSer { cmd, source })?;
        let mut stream = self.connect()?;
        stream
            .write_all(&frame)
            .map_err(|e| self.io(format!("sending the {cmd} request"), e))?;
        let reading = || format!("reading the {cmd} response");
        let mut header = [0u8; FRAME_HEADER_LEN];
        stream
            .read_exact(&mut header)
            .map_err(|e| self.io(reading(), e))?;
        let len = checked_body_len(cmd, header)?;
        let mut body = vec![0u8; len];
        stream
            .read_exact(&mut body)
            .map_err(|e| self.io(reading(), e))?;
        decode_response(cmd, &body)
    }
}
