//! The built binary: its version, its exit status and message when the daemon is not
//! there, and a command through a real socket to a host core served in this process.

mod common;

use opte_api::control::{FRAME_HEADER_LEN, frame_body_len};
use opte_api::{ControlRequest, ControlResponse};
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn opteadm(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_opteadm"));
    c.args(args).stdin(Stdio::null());
    c
}

fn output(mut c: Command) -> (Output, String, String) {
    let out = c.output().unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    (out, stdout, stderr)
}

/// A fresh directory for one test's socket, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "opteadm-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn version_is_major_api_commits() {
    let (out, stdout, _) = output(opteadm(&["--version"]));
    assert!(out.status.success());
    let prefix = format!(
        "opteadm {}.{}.",
        opte_api::MAJOR_VERSION,
        opte_api::API_VERSION
    );
    let commits = stdout
        .trim()
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(commits.parse::<u64>().is_ok(), "{stdout}");
}

#[test]
fn no_daemon_is_said_plainly_with_a_failing_status() {
    let dir = TempDir::new();
    let sock = dir.0.join("absent.sock");
    let (out, stdout, stderr) =
        output(opteadm(&["--socket", sock.to_str().unwrap(), "list-ports"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "opteadm: the xde daemon is not running (no socket at {})\n",
            sock.display()
        )
    );

    // The environment names the socket when --socket does not.
    let mut c = opteadm(&["dump-v2p"]);
    c.env("OPTE_XDE_SOCKET", &sock);
    let (out, _, stderr) = output(c);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("no socket at {}", sock.display())),
        "{stderr}"
    );
}

#[test]
fn a_bad_command_line_is_a_usage_error() {
    let (out, _, stderr) = output(opteadm(&["list-layers"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("-p <PORT>"), "{stderr}");
}

#[test]
fn commands_reach_the_daemon_through_the_socket() {
    let dir = TempDir::new();
    let sock = dir.0.join("xde.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let s = common::sled();
    s.run("set-xde-underlay u1 u2");
    s.run(&common::create_xde_line("opte0", 1, ""));
    let xde = Arc::clone(&s.xde);
    const COMMANDS: usize = 3;
    let server = std::thread::spawn(move || {
        for conn in listener.incoming().take(COMMANDS) {
            let mut conn = conn.unwrap();
            let mut header = [0u8; FRAME_HEADER_LEN];
            conn.read_exact(&mut header).unwrap();
            let mut body = vec![0u8; frame_body_len(header).unwrap()];
            conn.read_exact(&mut body).unwrap();
            let resp = match ControlRequest::from_frame_body(&body) {
                Ok(req) => xde.dispatch(&req),
                Err(e) => ControlResponse::Err(e),
            };
            conn.write_all(&resp.to_frame().unwrap()).unwrap();
        }
    });
    let path = sock.to_str().unwrap();

    let (out, stdout, stderr) = output(opteadm(&["--socket", path, "list-ports"]));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("LINK "), "{stdout}");
    assert!(
        stdout.contains("opte0  A8:40:25:FA:FA:01  172.30.0.5"),
        "{stdout}"
    );

    // set-fw-rules reads the binary's stdin.
    let mut c = opteadm(&["--socket", path, "set-fw-rules", "-p", "opte0"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"# web\ndir=in action=allow priority=10 protocol=tcp port=80\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.hdl
            .dump_layer("opte0", "firewall")
            .unwrap()
            .rules_in
            .len(),
        1
    );

    // A refusal is the daemon's message, and a failure.
    let (out, _, stderr) = output(opteadm(&["--socket", path, "delete-xde", "opte9"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr, "opteadm: DeleteXde failed: port not found: opte9\n");
    server.join().unwrap();
}
