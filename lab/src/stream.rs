//! Byte-exact TCP transfers between namespaces, for tests that must see every byte
//! arrive (a migration, a restart, a flood): a receiver that counts and hashes what it
//! reads, and a paced sender; an error on either side (a reset) is returned, not hidden.

use crate::in_netns;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// FNV-1a over a stream, byte by byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv {
    pub fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    pub fn add(&mut self, data: &[u8]) {
        for b in data {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The bytes the sender sends: `len` of them, a pattern no two chunks share.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 2_654_435_761) >> 13) as u8)
        .collect()
}

/// A server in namespace `ns` on `addr`: one connection, read to its end; the byte count
/// and hash, or the error that ended it.
pub fn receiver(ns: &str, addr: SocketAddr) -> std::thread::JoinHandle<Result<(u64, Fnv), String>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = in_netns(ns, move || {
        let l = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        ready_tx.send(()).map_err(|e| e.to_string())?;
        let (mut c, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let (mut n, mut h, mut buf) = (0u64, Fnv::new(), vec![0u8; 1 << 16]);
        loop {
            match c.read(&mut buf) {
                Ok(0) => return Ok((n, h)),
                Ok(k) => {
                    n += k as u64;
                    h.add(&buf[..k]);
                }
                Err(e) => return Err(format!("after {n} bytes: {e}")),
            }
        }
    });
    ready_rx.recv().expect("the receiver listens");
    h
}

/// A sender in namespace `ns` to `to`: `data` in 64 KiB writes, one every `gap`, then
/// the end of the stream. Any error (a reset) is returned.
pub fn sender(
    ns: &str,
    to: SocketAddr,
    data: Vec<u8>,
    gap: Duration,
) -> std::thread::JoinHandle<Result<(), String>> {
    in_netns(ns, move || {
        let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(10))
            .map_err(|e| format!("connect {to}: {e}"))?;
        c.set_write_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        for (i, chunk) in data.chunks(64 << 10).enumerate() {
            c.write_all(chunk)
                .map_err(|e| format!("write {i} to {to}: {e}"))?;
            std::thread::sleep(gap);
        }
        c.shutdown(std::net::Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
        // Wait for the receiver's end: every byte was read before the connection closed.
        let mut rest = Vec::new();
        c.read_to_end(&mut rest)
            .map_err(|e| format!("the end of the stream: {e}"))?;
        Ok(())
    })
}
