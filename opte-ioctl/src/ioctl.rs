//! The illumos transport: one `ioctl(2)` on `/dev/xde` per attempt, carrying the
//! [`OpteCmdIoctl`] envelope (SPEC §6).
//!
//! The driver answers in the envelope: 0 and the response in the buffer; `ENOBUFS` and
//! the length it needs in `resp_len_actual`; or another errno, with a serialised
//! [`OpteError`] in the buffer when `OPTE_CMD_RESP_COPY_OUT` is set. This maps those back
//! onto a [`ControlResponse`] so [`crate::OpteHdl`] treats both hosts alike.
//!
//! Built only for illumos; nothing here is compiled or tested on Linux.

use crate::Error;
use crate::transport::Transport;
use opte_api::{ControlRequest, ControlResponse, OpteCmdIoctl, OpteError};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The ioctl request code of every OPTE command: `('x' << 24) | ('d' << 16) | ('e' << 8) | 1`.
pub const XDE_IOC_OPTE_CMD: i32 =
    ((b'x' as i32) << 24) | ((b'd' as i32) << 16) | ((b'e' as i32) << 8) | 1;

/// An open xde control device.
#[derive(Debug)]
pub struct IoctlTransport {
    dev: File,
    path: PathBuf,
}

impl IoctlTransport {
    /// The control device of the xde driver.
    pub const XDE_CTL: &'static str = "/dev/xde";

    /// Open [`Self::XDE_CTL`].
    pub fn open() -> Result<Self, Error> {
        Self::open_on(Self::XDE_CTL)
    }

    /// Open the control device at `path`, read-write.
    pub fn open_on(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(dev) => Ok(Self { dev, path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::DriverNotAttached { path }),
            Err(source) => Err(Error::Io {
                context: format!("opening {}", path.display()),
                source,
            }),
        }
    }
}

impl Transport for IoctlTransport {
    fn call(&self, req: &ControlRequest) -> Result<ControlResponse, Error> {
        let cap = usize::try_from(req.resp_cap).unwrap_or(usize::MAX);
        let mut resp = vec![0u8; cap];
        let mut ioc = OpteCmdIoctl::new(req.cmd, &req.req, &mut resp);
        ioc.api_version = req.api_version;
        ioc.flags = req.flags;
        // SAFETY: `ioc` is a valid `repr(C)` envelope whose request and response pointers
        // and lengths describe `req.req` and `resp`, both alive and unmoved until the call
        // returns; the driver writes at most `resp_len` bytes into `resp`.
        let rc = unsafe {
            libc::ioctl(
                self.dev.as_raw_fd(),
                XDE_IOC_OPTE_CMD as _,
                &mut ioc as *mut OpteCmdIoctl,
            )
        };
        if rc == 0 {
            resp.truncate(ioc.resp_len_actual.min(cap));
            return Ok(ControlResponse::Ok(resp));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOBUFS) {
            // `resp_len_actual` is the length needed, not that of an error body.
            return Ok(ControlResponse::Err(OpteError::RespTooLarge {
                needed: ioc.resp_len_actual as u64,
                given: req.resp_cap,
            }));
        }
        if let Some(e) = ioc.err_resp(&resp) {
            return Ok(ControlResponse::Err(e));
        }
        Err(Error::Io {
            context: format!("{} ioctl on {}", req.cmd, self.path.display()),
            source: err,
        })
    }

    fn peer(&self) -> &'static str {
        "the xde driver"
    }
}
