//! The Unix-socket transport against small servers in this process: one that serves the
//! real host core, and ones that misbehave (stall, hang up, announce a huge frame). Each
//! socket lives in its own temporary directory, removed at the end.

mod common;

use common::{cfg, xde};
use opte_api::control::{FRAME_HEADER_LEN, frame_body_len};
use opte_api::{ControlRequest, ControlResponse};
use opte_ioctl::{Error, OpteHdl, UnixTransport};
use oxide_vpc::api::{PhysNet, SetVirt2PhysReq};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A fresh directory for one test's socket, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "opte-ioctl-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn sock(&self) -> PathBuf {
        self.0.join("xde.sock")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Read one request frame, as the daemon does.
fn read_request(s: &mut UnixStream) -> Result<ControlRequest, opte_api::OpteError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    s.read_exact(&mut header).unwrap();
    let len = frame_body_len(header).unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    ControlRequest::from_frame_body(&body)
}

/// Serves each connection's one request with `serve` until dropped.
struct Server {
    dir: TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(serve: impl Fn(UnixStream) + Send + 'static) -> Self {
        let dir = TempDir::new();
        let listener = UnixListener::bind(dir.sock()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    break;
                }
                serve(conn.unwrap());
            }
        });
        Self {
            dir,
            stop,
            thread: Some(thread),
        }
    }

    /// A server onto the real host core.
    fn xde(x: common::TestXde) -> Self {
        Self::start(move |mut s| {
            let resp = match read_request(&mut s) {
                Ok(req) => x.dispatch(&req),
                Err(e) => ControlResponse::Err(e),
            };
            s.write_all(&resp.to_frame().unwrap()).unwrap();
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.sock()
    }

    fn hdl(&self, timeout: Duration) -> OpteHdl {
        OpteHdl::new(UnixTransport::new(self.path()).with_timeout(timeout))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(self.path());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn commands_run_over_the_socket() {
    let server = Server::xde(xde());
    let h = server.hdl(UnixTransport::DEFAULT_TIMEOUT);
    h.set_xde_underlay("u1", "u2").unwrap();
    h.create_xde("opte0", cfg(1), None).unwrap();
    let ports = h.list_ports().unwrap().ports;
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].name, "opte0");
    // A refusal crosses the socket as the host's error.
    let e = h.delete_xde("opte7").unwrap_err();
    assert_eq!(e.to_string(), "DeleteXde failed: port not found: opte7");
    assert_eq!(h.list_layers("opte0").unwrap().layers.len(), 5);
}

#[test]
fn a_large_dump_over_the_socket_is_fetched_with_a_larger_buffer() {
    let x = xde();
    for i in 0..1000u16 {
        let [hi, lo] = i.to_be_bytes();
        x.tables()
            .v2p
            .add(
                format!("10.1.{hi}.{lo}").parse().unwrap(),
                PhysNet {
                    ether: format!("a8:40:25:01:{hi:02x}:{lo:02x}").parse().unwrap(),
                    ip: format!("fd00:1:f7:{i:x}::1").parse().unwrap(),
                    vni: "8".parse().unwrap(),
                },
            )
            .unwrap();
    }
    let caps = Arc::new(Mutex::new(Vec::new()));
    let seen = caps.clone();
    let server = Server::start(move |mut s| {
        let req = read_request(&mut s).unwrap();
        seen.lock().unwrap().push(req.resp_cap);
        s.write_all(&x.dispatch(&req).to_frame().unwrap()).unwrap();
    });
    let h = server.hdl(UnixTransport::DEFAULT_TIMEOUT);
    assert_eq!(h.dump_v2p().unwrap().mappings[0].ip4.len(), 1000);
    assert_eq!(caps.lock().unwrap().len(), 2);

    // And a mapping set through the socket is in the next dump.
    h.set_v2p(&SetVirt2PhysReq {
        vip: "10.1.200.1".parse().unwrap(),
        phys: PhysNet {
            ether: "a8:40:25:02:00:01".parse().unwrap(),
            ip: "fd00:2::1".parse().unwrap(),
            vni: "8".parse().unwrap(),
        },
    })
    .unwrap();
    assert_eq!(h.dump_v2p().unwrap().mappings[0].ip4.len(), 1001);
}

#[test]
fn no_socket_means_the_daemon_is_not_running() {
    let dir = TempDir::new();
    let path = dir.sock();
    let h = OpteHdl::new(UnixTransport::new(&path));
    let e = h.list_ports().unwrap_err();
    assert!(matches!(&e, Error::DaemonNotRunning { path: p } if p == &path));
    assert_eq!(
        e.to_string(),
        format!(
            "the xde daemon is not running (no socket at {})",
            path.display()
        )
    );

    // A socket left behind by a daemon that exited: nothing accepts on it.
    drop(UnixListener::bind(&path).unwrap());
    assert!(Path::new(&path).exists());
    assert!(matches!(
        h.list_ports().unwrap_err(),
        Error::DaemonNotRunning { .. }
    ));
}

#[test]
fn a_stalled_daemon_is_a_timeout_not_a_hang() {
    let (release, held) = mpsc::channel::<()>();
    let held = Mutex::new(held);
    let server = Server::start(move |mut s| {
        let _ = read_request(&mut s);
        // Hold the connection open, unanswered, until the test is done.
        let _ = held.lock().unwrap().recv();
    });
    // Dropped before the server, even on a failed assertion, so its thread can finish.
    let _release = release;
    let h = server.hdl(Duration::from_millis(200));
    let e = h.list_ports().unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Io { .. }), "{msg}");
    assert!(
        msg.starts_with("reading the ListPorts response: the daemon at")
            && msg.contains("did not answer within 200ms"),
        "{msg}"
    );
}

#[test]
fn a_daemon_that_hangs_up_is_an_error() {
    let server = Server::start(|mut s| {
        let _ = read_request(&mut s);
    });
    let h = server.hdl(Duration::from_secs(5));
    let msg = h.dump_v2b().unwrap_err().to_string();
    assert!(
        msg.starts_with("reading the DumpVirt2Boundary response: the daemon at")
            && msg.contains("closed the connection without answering"),
        "{msg}"
    );
}

#[test]
fn an_oversized_frame_is_refused_before_it_is_read() {
    let server = Server::start(|mut s| {
        let _ = read_request(&mut s);
        let _ = s.write_all(&u32::MAX.to_be_bytes());
    });
    let h = server.hdl(Duration::from_secs(5));
    let e = h.list_ports().unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to deserialise the ListPorts response: control frame of 4294967295 bytes \
         exceeds the limit of 16777216"
    );
}

#[test]
fn a_garbled_frame_is_refused() {
    let server = Server::start(|mut s| {
        let _ = read_request(&mut s);
        let _ = s.write_all(&[0, 0, 0, 2, 0xff, 0xff]);
    });
    let h = server.hdl(Duration::from_secs(5));
    let e = h.list_ports().unwrap_err();
    assert!(matches!(e, Error::RespDeser { .. }), "{e}");
}

#[test]
fn the_socket_path_defaults_to_the_daemons() {
    // Only when the environment does not name another (as it may, where tests run).
    if std::env::var_os(UnixTransport::SOCKET_ENV).is_none() {
        assert_eq!(
            UnixTransport::default_path(),
            Path::new("/run/opte/xde.sock")
        );
    }
    let t = UnixTransport::new("/tmp/x.sock");
    assert_eq!(t.path(), Path::new("/tmp/x.sock"));
}
