//! The owned control envelope: what the Linux daemon and its clients exchange over the
//! control socket, in place of the illumos ioctl envelope ([`crate::cmd::OpteCmdIoctl`]).
//!
//! Each message is one frame: a 4-byte big-endian body length, then the postcard body.
//! Decoding never trusts the peer: a frame over [`CONTROL_FRAME_MAX`], a truncated or
//! malformed body, or bytes after the body are errors, never panics or huge allocations.

use crate::cmd::{API_VERSION, OpteCmd, check_api_version};
use crate::error::OpteError;
use alloc::format;
use alloc::vec::Vec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where the Linux daemon's control socket is unless told otherwise (`$OPTE_XDE_SOCKET`
/// overrides it for both the daemon and its clients).
pub const DEFAULT_SOCKET: &str = "/run/opte/xde.sock";

/// The largest frame body either side accepts: 16 MiB.
pub const CONTROL_FRAME_MAX: usize = 16 << 20;

/// The length of a frame's header.
pub const FRAME_HEADER_LEN: usize = 4;

/// A frame header announcing a body larger than [`CONTROL_FRAME_MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("control frame of {len} bytes exceeds the limit of {max}")]
pub struct FrameTooLarge {
    /// The announced length.
    pub len: u64,
    /// The limit.
    pub max: usize,
}

/// The body length a frame header announces, refused if over [`CONTROL_FRAME_MAX`].
pub fn frame_body_len(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, FrameTooLarge> {
    let len = u32::from_be_bytes(header);
    usize::try_from(len)
        .ok()
        .filter(|l| *l <= CONTROL_FRAME_MAX)
        .ok_or(FrameTooLarge {
            len: u64::from(len),
            max: CONTROL_FRAME_MAX,
        })
}

/// A command sent to the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// The client's `API_VERSION`. First, so the server can check it before anything else.
    pub api_version: u64,
    /// The command.
    pub cmd: OpteCmd,
    /// Flags; none are defined for requests.
    pub flags: u64,
    /// The serialised request body (empty for commands that take none).
    pub req: Vec<u8>,
    /// The most response bytes the client accepts; a larger response is refused with
    /// `RespTooLarge`, as the ioctl path does.
    pub resp_cap: u64,
}

impl ControlRequest {
    /// A request for `cmd` at this crate's API version with an already-serialised body.
    pub fn new(cmd: OpteCmd, req: Vec<u8>, resp_cap: u64) -> Self {
        Self {
            api_version: API_VERSION,
            cmd,
            flags: 0,
            req,
            resp_cap,
        }
    }

    /// A request for `cmd` whose body is `body`, serialised.
    pub fn with_body<T: Serialize>(
        cmd: OpteCmd,
        body: &T,
        resp_cap: u64,
    ) -> Result<Self, postcard::Error> {
        Ok(Self::new(cmd, postcard::to_allocvec(body)?, resp_cap))
    }

    /// Check the client's API version: exact equality.
    pub fn check_version(&self) -> Result<(), OpteError> {
        check_api_version(self.api_version)
    }

    /// The request body as `T`: `NoRequestBody` if there is none and `T` needs one,
    /// `DeserCmdReq` if it is malformed or has bytes left over.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, OpteError> {
        decode_body(self.cmd, &self.req)
    }

    /// The whole frame: header and body.
    pub fn to_frame(&self) -> Result<Vec<u8>, postcard::Error> {
        encode_frame(self)
    }

    /// Decode a frame body. A client of another API version gets `BadApiVersion` even when
    /// the rest of its request no longer parses; anything malformed is `DeserCmdReq`.
    pub fn from_frame_body(body: &[u8]) -> Result<Self, OpteError> {
        let deser = |e: DecodeError| OpteError::DeserCmdReq(format!("control request: {e}"));
        if body.len() > CONTROL_FRAME_MAX {
            return Err(deser(DecodeError::TooLarge(body.len())));
        }
        let (version, _) =
            postcard::take_from_bytes::<u64>(body).map_err(|e| deser(DecodeError::Postcard(e)))?;
        check_api_version(version)?;
        decode_exact(body).map_err(deser)
    }
}

/// A command's request body as `T`: `NoRequestBody` if there is none and `T` needs one,
/// `DeserCmdReq` if it is malformed or has bytes left over. The ioctl path and the socket
/// path both decode with this.
pub fn decode_body<T: DeserializeOwned>(cmd: OpteCmd, req: &[u8]) -> Result<T, OpteError> {
    decode_exact(req).map_err(|e| {
        if req.is_empty() {
            OpteError::NoRequestBody
        } else {
            OpteError::DeserCmdReq(format!("{cmd} body: {e}"))
        }
    })
}

/// The daemon's answer to a [`ControlRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlResponse {
    /// The command succeeded; its serialised response.
    Ok(Vec<u8>),
    /// The command failed.
    Err(OpteError),
}

impl ControlResponse {
    /// A success carrying `resp`, or the error the ioctl path would give: `RespTooLarge`
    /// if it exceeds the client's `resp_cap`, `SerCmdResp` if it cannot be serialised.
    pub fn ok<T: Serialize>(resp: &T, resp_cap: u64) -> Self {
        let bytes = match postcard::to_allocvec(resp) {
            Ok(bytes) => bytes,
            Err(e) => return Self::Err(OpteError::SerCmdResp(format!("{e}"))),
        };
        let needed = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if needed > resp_cap {
            return Self::Err(OpteError::RespTooLarge {
                needed,
                given: resp_cap,
            });
        }
        Self::Ok(bytes)
    }

    /// The outcome as `T`. A success body that does not decode as `T` is reported as
    /// `DeserCmdErr` (the client could not make sense of what the server said).
    pub fn into_result<T: DeserializeOwned>(self) -> Result<T, OpteError> {
        match self {
            Self::Ok(bytes) => decode_exact(&bytes)
                .map_err(|e| OpteError::DeserCmdErr(format!("response body: {e}"))),
            Self::Err(e) => Err(e),
        }
    }

    /// The whole frame: header and body.
    pub fn to_frame(&self) -> Result<Vec<u8>, postcard::Error> {
        encode_frame(self)
    }

    /// Decode a frame body; anything malformed is `DeserCmdErr`.
    pub fn from_frame_body(body: &[u8]) -> Result<Self, OpteError> {
        if body.len() > CONTROL_FRAME_MAX {
            return Err(OpteError::DeserCmdErr(format!(
                "control response: {}",
                DecodeError::TooLarge(body.len())
            )));
        }
        decode_exact(body).map_err(|e| OpteError::DeserCmdErr(format!("control response: {e}")))
    }
}

/// Why a body did not decode.
#[derive(Debug, thiserror::Error)]
enum DecodeError {
    #[error("{0}")]
    Postcard(postcard::Error),
    #[error("{0} bytes left over after the message")]
    Trailing(usize),
    #[error("{0} bytes exceeds the limit of {CONTROL_FRAME_MAX}")]
    TooLarge(usize),
}

/// Decode exactly one `T` from all of `bytes`.
fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(DecodeError::Postcard)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::Trailing(rest.len()))
    }
}

/// Header then postcard body; a body over [`CONTROL_FRAME_MAX`] is refused as
/// `SerializeBufferFull`, since the peer would refuse it anyway.
fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, postcard::Error> {
    let mut frame = postcard::to_extend(msg, alloc::vec![0u8; FRAME_HEADER_LEN])?;
    let body_len = frame.len() - FRAME_HEADER_LEN;
    let header = u32::try_from(body_len)
        .ok()
        .filter(|_| body_len <= CONTROL_FRAME_MAX)
        .ok_or(postcard::Error::SerializeBufferFull)?
        .to_be_bytes();
    for (slot, byte) in frame.iter_mut().zip(header) {
        *slot = byte;
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::NoResp;
    use crate::dump::ClearLftReq;
    use alloc::string::ToString;

    fn body_of(frame: &[u8]) -> &[u8] {
        let header: [u8; 4] = frame[..4].try_into().unwrap();
        let len = frame_body_len(header).unwrap();
        assert_eq!(len, frame.len() - 4);
        &frame[4..]
    }

    fn clear_lft() -> ClearLftReq {
        ClearLftReq {
            port_name: "opte0".into(),
            layer_name: "nat".into(),
        }
    }

    #[test]
    fn request_round_trips_through_a_frame() {
        let req = ControlRequest::with_body(OpteCmd::ClearLft, &clear_lft(), 1024).unwrap();
        assert_eq!(req.api_version, API_VERSION);
        let frame = req.to_frame().unwrap();
        let back = ControlRequest::from_frame_body(body_of(&frame)).unwrap();
        assert_eq!(back, req);
        assert_eq!(back.body::<ClearLftReq>(), Ok(clear_lft()));
    }

    #[test]
    fn response_round_trips_and_respects_the_cap() {
        let ok = ControlResponse::ok(&NoResp::default(), 64);
        let frame = ok.to_frame().unwrap();
        let back = ControlResponse::from_frame_body(body_of(&frame)).unwrap();
        assert_eq!(back.into_result::<NoResp>(), Ok(NoResp::default()));

        let err = ControlResponse::Err(OpteError::PortNotFound("opte1".into()));
        let back = ControlResponse::from_frame_body(body_of(&err.to_frame().unwrap())).unwrap();
        assert_eq!(
            back.into_result::<NoResp>(),
            Err(OpteError::PortNotFound("opte1".into()))
        );

        let big = ControlResponse::ok(&"x".repeat(100), 10);
        assert_eq!(
            big,
            ControlResponse::Err(OpteError::RespTooLarge {
                needed: 101,
                given: 10
            })
        );
    }

    #[test]
    fn other_api_versions_are_refused_first() {
        let mut req = ControlRequest::new(OpteCmd::ListPorts, alloc::vec![], 0);
        req.api_version = API_VERSION + 1;
        let frame = req.to_frame().unwrap();
        assert_eq!(
            ControlRequest::from_frame_body(body_of(&frame)),
            Err(OpteError::BadApiVersion {
                user: API_VERSION + 1,
                kernel: API_VERSION
            })
        );
        // Even when the rest is garbage to this version.
        let mut body = postcard::to_allocvec(&(API_VERSION - 1)).unwrap();
        body.extend_from_slice(&[0xff; 9]);
        assert!(matches!(
            ControlRequest::from_frame_body(&body),
            Err(OpteError::BadApiVersion { .. })
        ));
    }

    #[test]
    fn malformed_requests_are_errors() {
        let frame = ControlRequest::with_body(OpteCmd::ClearLft, &clear_lft(), 9)
            .unwrap()
            .to_frame()
            .unwrap();
        let body = body_of(&frame);
        // Every truncation fails cleanly.
        for cut in 0..body.len() {
            assert!(
                matches!(
                    ControlRequest::from_frame_body(&body[..cut]),
                    Err(OpteError::DeserCmdReq(_))
                ),
                "cut at {cut}"
            );
        }
        // Trailing bytes.
        let mut long = body.to_vec();
        long.push(0);
        let e = ControlRequest::from_frame_body(&long).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to deserialise the request: control request: 1 bytes left over after the message"
        );
        // An unknown command code.
        let mut bad_cmd = postcard::to_allocvec(&API_VERSION).unwrap();
        bad_cmd.extend_from_slice(&postcard::to_allocvec(&94i32).unwrap());
        bad_cmd.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            ControlRequest::from_frame_body(&bad_cmd),
            Err(OpteError::DeserCmdReq(_))
        ));
        // A body length claiming far more bytes than exist.
        let mut huge_vec = postcard::to_allocvec(&API_VERSION).unwrap();
        huge_vec.extend_from_slice(&[2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            ControlRequest::from_frame_body(&huge_vec),
            Err(OpteError::DeserCmdReq(_))
        ));
    }

    #[test]
    fn request_bodies_are_checked() {
        let empty = ControlRequest::new(OpteCmd::ClearLft, alloc::vec![], 0);
        assert_eq!(empty.body::<ClearLftReq>(), Err(OpteError::NoRequestBody));
        // A body type that encodes to nothing is fine without bytes.
        assert_eq!(empty.body::<()>(), Ok(()));
        let garbage = ControlRequest::new(OpteCmd::ClearLft, alloc::vec![0x05, b'o'], 0);
        assert!(matches!(
            garbage.body::<ClearLftReq>(),
            Err(OpteError::DeserCmdReq(_))
        ));
        let mut extra = postcard::to_allocvec(&clear_lft()).unwrap();
        extra.push(1);
        let trailing = ControlRequest::new(OpteCmd::ClearLft, extra, 0);
        assert!(matches!(
            trailing.body::<ClearLftReq>(),
            Err(OpteError::DeserCmdReq(_))
        ));
    }

    #[test]
    fn malformed_responses_are_errors() {
        assert!(matches!(
            ControlResponse::from_frame_body(&[]),
            Err(OpteError::DeserCmdErr(_))
        ));
        assert!(matches!(
            ControlResponse::from_frame_body(&[7]),
            Err(OpteError::DeserCmdErr(_))
        ));
        assert!(matches!(
            ControlResponse::from_frame_body(&[1, 200]),
            Err(OpteError::DeserCmdErr(_))
        ));
        // A success whose body is not the expected type.
        let wrong = ControlResponse::Ok(alloc::vec![0xff]);
        assert!(matches!(
            wrong.into_result::<NoResp>(),
            Err(OpteError::DeserCmdErr(_))
        ));
    }

    #[test]
    fn frame_limits() {
        assert_eq!(frame_body_len([0, 0, 1, 0]), Ok(256));
        assert_eq!(frame_body_len([0x01, 0, 0, 0]), Ok(CONTROL_FRAME_MAX));
        assert_eq!(
            frame_body_len([0x01, 0, 0, 1]),
            Err(FrameTooLarge {
                len: (16 << 20) + 1,
                max: CONTROL_FRAME_MAX
            })
        );
        assert!(frame_body_len([0xff; 4]).is_err());
        let too_big = ControlRequest::new(OpteCmd::ClearUft, alloc::vec![0; CONTROL_FRAME_MAX], 0);
        assert!(too_big.to_frame().is_err());
        let oversized_body = alloc::vec![0u8; CONTROL_FRAME_MAX + 1];
        assert!(matches!(
            ControlRequest::from_frame_body(&oversized_body),
            Err(OpteError::DeserCmdReq(_))
        ));
    }
}
