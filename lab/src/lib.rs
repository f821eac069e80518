//! A VPC on one Linux machine: the pieces (network namespaces, veth wires, `xded` and
//! `xde-boundary` processes) as guards that remove what they made when dropped, also when
//! a test panics, and the demo's topology built from them ([`vpc::Lab`]).
//!
//! Every namespace is named uniquely (a prefix, this process's ID, a counter), so that a
//! test run and a demo never collide; interfaces live inside those namespaces and so may
//! have fixed names. Processes are ended by their PID.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod http;
pub mod kernel;
pub mod stream;
pub mod vm;
pub mod vpc;

/// Whether this process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For a test that needs root: true as root; otherwise it says it did not run and is
/// false, except under CI (which runs as root), where the missing root is a failure.
pub fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the end-to-end tests need root, and CI runs as root"
    );
    eprintln!("skipped: needs root");
    false
}

/// `len` bytes that no compression or pattern makes cheap to carry (an LCG's high bytes):
/// a file for a transfer test to send and compare.
pub fn blob(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

/// A name unique to this process and call: `prefix`, the PID, a counter.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A command for `program` whose process starts with no signal blocked, whatever the
/// calling thread blocks (the demo blocks SIGINT and SIGTERM to take them itself, and a
/// child inherits the mask across exec: a dhclient or web server that could not be
/// ended by SIGTERM would outlive the lab).
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    // SAFETY: between fork and exec the closure calls only pthread_sigmask, which is
    // async-signal-safe, and allocates nothing.
    unsafe {
        c.pre_exec(|| {
            nix::sys::signal::SigSet::empty()
                .thread_set_mask()
                .map_err(std::io::Error::from)
        });
    }
    c
}

/// Run `cmd`, its output captured.
pub fn run(cmd: &str, args: &[&str]) -> Result<std::process::Output, String> {
    command(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {cmd}: {e}"))
}

/// Run `cmd`; its standard output if it succeeds, else what it said.
pub fn try_ok(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = run(cmd, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Run `cmd`, which must succeed (a panic says why not).
pub fn ok(cmd: &str, args: &[&str]) -> String {
    try_ok(cmd, args).unwrap_or_else(|e| panic!("{e}"))
}

/// A network namespace, deleted on drop (after what still runs in it is ended).
#[derive(Debug)]
pub struct Netns {
    name: String,
    keep: bool,
}

impl Netns {
    /// A new namespace named uniquely from `prefix`, loopback up, no duplicate address
    /// detection to wait out (only the lab's own devices are in it).
    pub fn new(prefix: &str) -> Self {
        Self::named(&unique(prefix))
    }

    /// A new namespace named `name`.
    pub fn named(name: &str) -> Self {
        Self::try_named(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A new namespace named `name`, or why it could not be made.
    pub fn try_named(name: &str) -> Result<Self, String> {
        try_ok("ip", &["netns", "add", name])?;
        let ns = Self {
            name: name.to_string(),
            keep: false,
        };
        ns.try_exec(&["ip", "link", "set", "lo", "up"])?;
        for s in ["default", "all"] {
            ns.try_exec(&[
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv6.conf.{s}.accept_dad=0"),
            ])?;
        }
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run `args` in the namespace: its standard output, or an error saying what failed.
    pub fn try_exec(&self, args: &[&str]) -> Result<String, String> {
        let mut a = vec!["netns", "exec", &self.name];
        a.extend_from_slice(args);
        try_ok("ip", &a)
    }

    /// Run `args` in the namespace, which must succeed.
    pub fn exec(&self, args: &[&str]) -> String {
        self.try_exec(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A command that runs `program` in the namespace (`ip netns exec` execs it, so the
    /// child's PID is the program's).
    pub fn command(&self, program: &Path) -> Command {
        let mut c = command("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Lease an address for `dev` with `dhclient` (`family` "-4" or "-6"), its lease and
    /// PID files in `dir`; returns the lease file. The dhclient stays, renewing, until the
    /// namespace goes.
    pub fn dhclient(&self, family: &str, dev: &str, dir: &Path) -> Result<PathBuf, String> {
        let lease = dir.join(format!("{}-{dev}{family}.lease", self.name));
        let pid = dir.join(format!("{}-{dev}{family}.pid", self.name));
        self.try_exec(&[
            "timeout",
            "30",
            "dhclient",
            family,
            "-1",
            "-lf",
            path_str(&lease),
            "-pf",
            path_str(&pid),
            dev,
        ])?;
        Ok(lease)
    }

    /// Start server `program` with `args` in the namespace, its output discarded, and wait
    /// (up to 5 s) until it listens on TCP `listen` (`ADDR:PORT`).
    pub fn serve(&self, program: &str, args: &[&str], listen: &str) -> Result<Proc, String> {
        let mut server = Proc::spawn(
            self.command(Path::new(program))
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let until = Instant::now() + Duration::from_secs(5);
        while !self.try_exec(&["ss", "-ltn"])?.contains(listen) {
            if server.exited().is_some() || Instant::now() > until {
                return Err(format!("{program} never listened on {listen}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// Leave the namespace (and what runs in it) in place when this guard drops.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.keep {
            remove_netns(&self.name);
        }
    }
}

/// End what runs in namespace `name` (by PID) and delete it.
pub fn remove_netns(name: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

/// A wire between two namespaces: veth `a` in `na`, its peer `b` in `nb`, both up. It
/// lives as long as the namespaces do.
pub fn wire(na: &Netns, a: &str, nb: &Netns, b: &str, mtu: u32) -> Result<(), String> {
    let mtu = mtu.to_string();
    try_ok(
        "ip",
        &[
            "link", "add", a, "netns", &na.name, "mtu", &mtu, "type", "veth", "peer", "name", b,
            "netns", &nb.name, "mtu", &mtu,
        ],
    )?;
    na.try_exec(&["ip", "link", "set", a, "up"])?;
    nb.try_exec(&["ip", "link", "set", b, "up"])?;
    Ok(())
}

/// A veth pair in this namespace, deleted on drop (if its ends were not moved away into a
/// namespace that took it with it).
#[derive(Debug)]
pub struct Veth(pub String, pub String);

impl Veth {
    pub fn new() -> Self {
        let (a, b) = (unique("xu"), unique("xu"));
        ok(
            "ip",
            &["link", "add", &a, "type", "veth", "peer", "name", &b],
        );
        let v = Self(a, b);
        for end in [&v.0, &v.1] {
            ok("ip", &["link", "set", end, "up"]);
        }
        v
    }
}

impl Default for Veth {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// A child process, ended by its PID on drop: SIGTERM, then SIGKILL if it lingers.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    keep: bool,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Result<Self, String> {
        let child = cmd
            .stdin(Stdio::null())
            // Not in the caller's process group: a ^C to the demo is the demo's to handle.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {:?}: {e}", cmd.get_program()))?;
        Ok(Self { child, keep: false })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and its exit status (SIGKILL after 5 s).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                return self.child.wait().unwrap_or_default();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, and wait for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Leave it running when this guard drops.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.keep && self.exited().is_none() {
            self.stop();
        }
    }
}

/// More arguments for every `xded` a lab starts, separated by U+001F (`cargo kbench
/// --xded-arg`); tests never set it.
pub const XDED_ARGS_ENV: &str = "XDE_LAB_XDED_ARGS";

/// A running `xded` with its socket and log in a directory of its own (removed on drop,
/// after the daemon is ended).
#[derive(Debug)]
pub struct Daemon {
    pub proc: Proc,
    pub dir: PathBuf,
    keep: bool,
}

impl Daemon {
    /// Start `xded` (the binary at `bin`) in namespace `ns`, or in this one; wait for its
    /// socket.
    pub fn start(bin: &Path, ns: Option<&Netns>) -> Result<Self, String> {
        Self::start_with(bin, ns, &[])
    }

    /// [`Daemon::start`] with more arguments for `xded`.
    pub fn start_with(bin: &Path, ns: Option<&Netns>, args: &[&str]) -> Result<Self, String> {
        Self::start_in(
            bin,
            ns,
            std::env::temp_dir().join(unique("xded-lab-")),
            args,
        )
    }

    /// [`Daemon::start`], its socket and log in directory `dir` (made).
    pub fn start_at(bin: &Path, ns: Option<&Netns>, dir: PathBuf) -> Result<Self, String> {
        Self::start_in(bin, ns, dir, &[])
    }

    /// [`Daemon::start_at`] with more arguments for `xded`.
    pub fn start_at_with(
        bin: &Path,
        ns: Option<&Netns>,
        dir: PathBuf,
        args: &[&str],
    ) -> Result<Self, String> {
        Self::start_in(bin, ns, dir, args)
    }

    fn start_in(
        bin: &Path,
        ns: Option<&Netns>,
        dir: PathBuf,
        args: &[&str],
    ) -> Result<Self, String> {
        // A directory that was there (a daemon started again) stays if this start fails.
        let existed = dir.is_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let sock = dir.join("xde.sock");
        let mut cmd = match ns {
            Some(ns) => ns.command(bin),
            None => command(bin),
        };
        // Appended to: a daemon started again in the same directory (a restart) adds to
        // the log of the one before.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("xded.log"))
            .map_err(|e| e.to_string())?;
        // Two workers whatever the machine: both the parallel datapath and the steering
        // of each port to one worker are exercised.
        cmd.arg("--socket")
            .arg(&sock)
            .args(["--workers", "2"])
            .args(args);
        // A lab's daemon keeps nothing across a restart unless its test gives it a state
        // directory of its own (never the host's /var/lib/opte).
        if !args.contains(&"--state-dir") {
            cmd.arg("--no-state");
        }
        if let Some(more) = std::env::var_os(XDED_ARGS_ENV) {
            cmd.args(more.to_string_lossy().split('\x1f'));
        }
        cmd.stdout(Stdio::null()).stderr(log);
        let mut d = Self {
            proc: Proc::spawn(&mut cmd)?,
            dir,
            keep: false,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            let failed = if let Some(s) = d.proc.exited() {
                format!("xded exited ({s}): {}", d.log())
            } else if Instant::now() > until {
                d.proc.stop();
                format!("xded never opened {}", sock.display())
            } else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            d.keep = existed;
            return Err(failed);
        }
        Ok(d)
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.join("xde.sock")
    }

    pub fn hdl(&self) -> opte_ioctl::OpteHdl {
        opte_ioctl::OpteHdl::new(opte_ioctl::UnixTransport::new(self.sock()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("xded.log")).unwrap_or_default()
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.proc.stop()
    }

    /// A host-wide counter of the daemon.
    pub fn counter(&self, name: &str) -> u64 {
        let stats = self.hdl().dump_xde_stats().expect("xde stats");
        stats
            .counters
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no counter {name}"))
            .1
    }

    /// Leave it running, its directory in place, when this guard drops.
    pub fn keep(&mut self) {
        self.keep = true;
        self.proc.keep();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.keep {
            if self.proc.exited().is_none() {
                self.proc.stop();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `iperf3 -c` run in namespace `from` against an `iperf3 -s -1` started for it in
/// namespace `to` on address `to_ip`, with `args`; its JSON report.
pub fn iperf3(
    from: &Netns,
    to: &Netns,
    to_ip: &str,
    args: &[&str],
) -> Result<serde_json::Value, String> {
    let mut server = to.serve(
        "iperf3",
        &["-s", "-1", "-B", to_ip],
        &format!("{to_ip}:5201"),
    )?;
    let mut a = vec!["iperf3", "-c", to_ip, "-J"];
    a.extend_from_slice(args);
    let out = from.try_exec(&a);
    server.stop();
    let out = out?;
    serde_json::from_str(&out).map_err(|e| format!("iperf3's report: {e}: {out}"))
}

/// The throughput the receiver measured in an iperf3 TCP report, in bits per second.
pub fn iperf3_received_bps(report: &serde_json::Value) -> Result<f64, String> {
    let r = &report["end"]["sum_received"];
    match (r["bits_per_second"].as_f64(), r["bytes"].as_u64()) {
        (Some(bps), Some(bytes)) if bytes > 0 => Ok(bps),
        _ => Err(format!("iperf3 moved no data: {}", report["error"])),
    }
}

/// Read capture `pcap` with tshark, checksums validated (IPv4, UDP, TCP; a zero UDP
/// checksum over IPv6 is allowed, as RFC 6935 allows it for tunnels), with `args` (a
/// display filter, fields...); its output. TCP payloads are taken as plain data, segment
/// by segment: the headers are what is checked, and reassembling a bulk transfer's
/// stream, or guessing at its bytes with heuristic dissectors (iperf3's data looks like
/// Thrift now and then), only costs minutes and invents errors.
pub fn tshark(pcap: &Path, args: &[&str]) -> String {
    let mut a = vec![
        "-r",
        pcap.to_str().unwrap_or_default(),
        "-n",
        "-o",
        "tcp.desegment_tcp_streams:FALSE",
        "-d",
        "tcp.port==1-65535,data",
        "-o",
        "udp.ignore_ipv6_zero_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
    ];
    a.extend_from_slice(args);
    ok("tshark", &a)
}

/// The frames of `pcap` that tshark finds malformed or in error, or that match
/// `also_bad` (a display filter; empty for none): their numbers and tshark's messages.
pub fn tshark_problems(pcap: &Path, also_bad: &str) -> String {
    let mut filter = String::from("_ws.malformed || _ws.expert.severity == \"Error\"");
    if !also_bad.is_empty() {
        filter = format!("({also_bad}) || {filter}");
    }
    tshark(
        pcap,
        &[
            "-Y",
            &filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "_ws.expert.message",
        ],
    )
}

/// Run `f` on a thread inside network namespace `ns`.
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let nsf = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("the namespace exists");
    std::thread::spawn(move || {
        nix::sched::setns(&nsf, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// A raw socket on link `dev` of the calling thread's namespace, for tests that send
/// frames as another host on the wire would (forged, malformed, or many).
pub struct RawLink {
    fd: i32,
    sll: nix::libc::sockaddr_ll,
}

impl RawLink {
    pub fn open(dev: &str) -> Self {
        use nix::libc;
        let name = std::ffi::CString::new(dev).expect("a link name without NUL");
        // SAFETY: if_nametoindex(3) reads a NUL-terminated name; socket(2) makes a
        // descriptor this value alone owns (closed on drop); the address is plain data.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr());
            assert!(ifindex != 0, "{dev}: {}", std::io::Error::last_os_error());
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "{}", std::io::Error::last_os_error());
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = ifindex as i32;
            sll.sll_halen = 6;
            Self { fd, sll }
        }
    }

    /// Send `f`, waiting while the link's queue is full.
    pub fn send(&self, f: &[u8]) {
        use nix::libc;
        loop {
            // SAFETY: sendto(2) on our descriptor, with a buffer and an address that
            // outlive the call.
            let n = unsafe {
                libc::sendto(
                    self.fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    std::ptr::addr_of!(self.sll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if n == f.len() as isize {
                return;
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => {
                    std::thread::sleep(Duration::from_micros(50))
                }
                _ => panic!("sendto: {e}"),
            }
        }
    }
}

impl Drop for RawLink {
    fn drop(&mut self) {
        // SAFETY: our descriptor, closed once.
        unsafe { nix::libc::close(self.fd) };
    }
}
