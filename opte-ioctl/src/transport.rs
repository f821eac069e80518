//! How a [`ControlRequest`] reaches a host and its [`ControlResponse`] comes back.
//!
//! A transport carries one exchange and nothing else: it does not retry, check versions
//! or decode the command's response; [`crate::OpteHdl`] does those once for every
//! transport. Transports here: [`crate::UnixTransport`] (the Linux daemon's socket),
//! `IoctlTransport` (`/dev/xde`, illumos only) and [`InProcess`] (a host in the same
//! process, for tests).

use crate::Error;
use opte_api::control::{FRAME_HEADER_LEN, frame_body_len};
use opte_api::{ControlRequest, ControlResponse, OpteError};

/// One request out, one response back.
pub trait Transport {
    /// Send `req` and wait for the host's answer. `Err` only when there is no answer (the
    /// host cannot be reached, or the exchange broke); a command the host refused is
    /// `Ok(ControlResponse::Err(..))`.
    fn call(&self, req: &ControlRequest) -> Result<ControlResponse, Error>;

    /// Who answers, as a message names it: "the daemon", "the xde driver".
    fn peer(&self) -> &'static str {
        "the daemon"
    }
}

/// A host in this process: `F` is its dispatch (e.g. a closure onto `xde::Xde::dispatch`).
///
/// Both messages go through their frame encoding and back, so what works here works on the
/// socket, byte for byte.
pub struct InProcess<F> {
    dispatch: F,
}

impl<F: Fn(&ControlRequest) -> ControlResponse> InProcess<F> {
    /// A transport that hands each request to `dispatch`.
    pub fn new(dispatch: F) -> Self {
        Self { dispatch }
    }
}

impl<F: Fn(&ControlRequest) -> ControlResponse> Transport for InProcess<F> {
    fn call(&self, req: &ControlRequest) -> Result<ControlResponse, Error> {
        let cmd = req.cmd;
        let frame = req
            .to_frame()
            .map_err(|source| Error::ReqSer { cmd, source })?;
        let req = match ControlRequest::from_frame_body(frame_body(&frame)) {
            Ok(req) => req,
            // What the daemon answers a request it cannot read.
            Err(e) => return Ok(ControlResponse::Err(e)),
        };
        let frame = (self.dispatch)(&req)
            .to_frame()
            .map_err(|e| Error::RespDeser {
                cmd,
                msg: e.to_string(),
            })?;
        decode_response(cmd, frame_body(&frame))
    }
}

/// The body of a frame this crate just encoded.
fn frame_body(frame: &[u8]) -> &[u8] {
    frame.get(FRAME_HEADER_LEN..).unwrap_or_default()
}

/// The announced body length of a frame header, refused (as the response to `cmd`) if it
/// exceeds the protocol's limit.
pub(crate) fn checked_body_len(
    cmd: opte_api::OpteCmd,
    header: [u8; FRAME_HEADER_LEN],
) -> Result<usize, Error> {
    frame_body_len(header).map_err(|e| Error::RespDeser {
        cmd,
        msg: e.to_string(),
    })
}

/// A response body as a [`ControlResponse`], or why it is not one.
pub(crate) fn decode_response(
    cmd: opte_api::OpteCmd,
    body: &[u8],
) -> Result<ControlResponse, Error> {
    ControlResponse::from_frame_body(body).map_err(|e| Error::RespDeser {
        cmd,
        msg: match e {
            OpteError::DeserCmdErr(m) => m,
            other => other.to_string(),
        },
    })
}
