//! The daemon's control socket: a Unix stream socket that carries one request frame and
//! one response frame per connection (the envelope of `opte_api::control`), handed to the
//! core's `dispatch`.
//!
//! Nothing a client sends can stop the daemon or hold it up: only root may configure the
//! host (the peer's credentials are checked, as `secpolicy_dl_config` does on illumos); a
//! frame announcing more than `CONTROL_FRAME_MAX` bytes is refused before it is read; a
//! client gets [`CLIENT_DEADLINE`] for its whole request, however it trickles it in; at most
//! [`MAX_CLIENTS`] are served at once, each on its own thread, and the next is told to try
//! again. The datapath never waits for any of this.

// A no_std crate: the daemon brings std's prelude in itself.
use crate::Xde;
use crate::host::Host;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use opte_api::control::{FRAME_HEADER_LEN, frame_body_len};
use opte_api::{ControlRequest, ControlResponse, OpteError};
use std::format;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::prelude::rust_2024::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use std::vec;

/// How long a client has to send its whole request, and the daemon to write the response.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(5);

/// Clients served at once; the next one is answered "try again" at once.
pub const MAX_CLIENTS: usize = 32;

/// `EAGAIN` and `EPERM` in Linux's numbering (the errno a `System` error carries).
const EAGAIN: i32 = 11;
const EPERM: i32 = 1;

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another xde daemon is already serving {}", .0.display())]
    AlreadyRunning(PathBuf),
    #[error("{what} {}: {err}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        err: io::Error,
    },
}

/// Open the control socket at `path`, mode 0600, creating its directory. A socket file that
/// nobody accepts on is a dead daemon's and is replaced; one that answers is a live daemon's,
/// and this one refuses to start.
pub fn bind(path: &Path) -> Result<UnixListener, BindError> {
    let io = |what, err| BindError::Io {
        what,
        path: path.to_path_buf(),
        err,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    }
    match UnixStream::connect(path) {
        Ok(_) => return Err(BindError::AlreadyRunning(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing the socket of a daemon that is gone");
            std::fs::remove_file(path).map_err(|e| io("removing the stale socket", e))?;
        }
        Err(_) => {}
    }
    let l = UnixListener::bind(path).map_err(|e| io("binding", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("setting the mode of", e))?;
    Ok(l)
}

/// Accept and serve clients until the listener fails (it is closed at shutdown).
pub fn serve<H: Host + 'static>(listener: UnixListener, xde: Arc<Xde<H>>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket: accept failed");
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            busy.fetch_sub(1, Ordering::AcqRel);
            let e = OpteError::System {
                errno: EAGAIN,
                msg: format!("the daemon is serving {MAX_CLIENTS} clients; try again"),
            };
            let _ = stream.set_write_timeout(Some(CLIENT_DEADLINE));
            let _ = write_response(&mut stream, &ControlResponse::Err(e));
            continue;
        }
        let (xde, busy) = (xde.clone(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("xded-control".into())
            .spawn(move || {
                serve_one(stream, &xde);
                busy.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "control socket: no thread for a client");
        }
    }
}

/// One client: its credentials, its request, the core's answer.
fn serve_one<H: Host>(mut s: UnixStream, xde: &Xde<H>) {
    let deadline = Instant::now() + CLIENT_DEADLINE;
    let uid = match getsockopt(&s, PeerCredentials) {
        Ok(c) => c.uid(),
        Err(e) => {
            tracing::warn!(error = %e, "control socket: no peer credentials");
            return;
        }
    };
    let resp = match read_request(&mut s, deadline) {
        Ok(Ok(req)) if uid == 0 => {
            let resp = xde.dispatch(&req);
            match &resp {
                ControlResponse::Ok(_) => tracing::debug!(cmd = ?req.cmd, "control: done"),
                ControlResponse::Err(e) => {
                    tracing::info!(cmd = ?req.cmd, error = %e, "control: refused")
                }
            }
            resp
        }
        Ok(Ok(req)) => {
            tracing::warn!(uid, cmd = ?req.cmd, "control: refused a client that is not root");
            ControlResponse::Err(OpteError::System {
                errno: EPERM,
                msg: format!("only root may configure the host (the client is uid {uid})"),
            })
        }
        Ok(Err(e)) => {
            tracing::info!(uid, error = %e, "control: a malformed request");
            ControlResponse::Err(e)
        }
        Err(e) => {
            // Nothing to answer: the client went away, or stalled past its deadline.
            tracing::info!(uid, error = %e, "control: client dropped");
            return;
        }
    };
    let _ = s.set_write_timeout(Some(CLIENT_DEADLINE));
    if let Err(e) = write_response(&mut s, &resp) {
        tracing::info!(error = %e, "control: the response could not be written");
    }
}

/// The request frame: `Ok(Err(..))` for one the client sent whole but that cannot be
/// served (too large, malformed), `Err` when there is no one to answer.
fn read_request(
    s: &mut UnixStream,
    deadline: Instant,
) -> io::Result<Result<ControlRequest, OpteError>> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    read_by(s, &mut header, deadline)?;
    let len = match frame_body_len(header) {
        Ok(len) => len,
        Err(e) => return Ok(Err(OpteError::DeserCmdReq(format!("{e}")))),
    };
    let mut body = vec![0u8; len];
    read_by(s, &mut body, deadline)?;
    Ok(ControlRequest::from_frame_body(&body))
}

/// Fill `buf`, or fail at `deadline`.
fn read_by(s: &mut UnixStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request deadline passed",
            ));
        }
        s.set_read_timeout(Some(left))?;
        match s.read(buf.get_mut(got..).unwrap_or(&mut [])) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("request ended after {got} of {} bytes", buf.len()),
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_response(s: &mut UnixStream, resp: &ControlResponse) -> io::Result<()> {
    let frame = resp
        .to_frame()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    s.write_all(&frame)
}
