//! The internet host's web server: HTTP/1.1, one short answer to every request, saying
//! the address and port the request came from, which is the point: what the internet sees
//! of a guest behind SNAT or an external IP. (Written here rather than installed: a few
//! lines, and its answer is what the demo and tests check.)

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The answer's body for a request from `peer`: `seen from ADDR port PORT`.
pub fn body_for(peer: std::net::SocketAddr) -> String {
    format!("seen from {} port {}\n", peer.ip(), peer.port())
}

/// Answer one connection: read the request head, answer, close.
fn answer(conn: TcpStream) -> std::io::Result<()> {
    let peer = conn.peer_addr()?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    // The request line, then headers up to the blank line.
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let body = body_for(peer);
    let mut conn = r.into_inner();
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// Serve on `listener` until `stop` is set (checked every 50 ms).
pub fn serve(listener: TcpListener, stop: &AtomicBool) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false)?;
                std::thread::spawn(move || answer(conn));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A server on a thread (in the namespace `ns`), stopped when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Listen on `addr` in namespace `ns`.
    pub fn start(ns: &str, addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = stop.clone();
        let thread = crate::in_netns(ns, move || {
            let l = TcpListener::bind(addr);
            let l = match l {
                Ok(l) => {
                    let _ = tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return Ok(());
                }
            };
            serve(l, &s)
        });
        rx.recv()
            .map_err(|_| std::io::Error::other("the server thread ended"))??;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
