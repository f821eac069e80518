//! The Docker network driver end to end, as root.
//!
//! `docker_containers_on_a_vpc` runs a real `dockerd` (Debian's docker.io, runc) started by
//! the test in sled 0's namespace, with its own data and run directories, and the driver
//! beside it: `docker network create -d opte-…`, two containers from an image imported
//! from a busybox-static root file system (nothing pulled) ping each other, the gateway
//! and a guest on the other sled; `docker rm` leaves no port and no V2P mapping behind.
//!
//! `protocol_answers_and_errors` drives the driver with the protocol's exact HTTP
//! requests on its socket: each call's answer, and `{"Err": ...}` for every malformed one.

#![cfg(target_os = "linux")]

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xde_lab::vpc::{Bins, GuestSpec, Lab};
use xde_lab::{Proc, root_or_skip, try_ok, unique};

/// The daemon's programs, built beside this test's own.
fn bins() -> Bins {
    Bins::beside(Path::new(env!("CARGO_BIN_EXE_opte-docker"))).unwrap()
}

/// The driver on sled 0 of `lab`, serving at `socket`, with its state in the lab's
/// directory; its socket is removed when it ends.
struct DriverProc {
    proc: Proc,
    socket: PathBuf,
}

impl DriverProc {
    fn start(lab: &Lab, socket: &Path) -> Self {
        let s0 = &lab.sleds[0];
        let mut cmd = s0.ns.command(Path::new(env!("CARGO_BIN_EXE_opte-docker")));
        cmd.arg("--socket")
            .arg(socket)
            .arg("--xde-socket")
            .arg(s0.daemon.sock())
            .arg("--underlay-ip")
            .arg(s0.ip.to_string())
            .arg("--state")
            .arg(lab.dir.join("docker-driver.json"));
        for s in &lab.sleds[1..] {
            cmd.arg("--peer").arg(s.daemon.sock());
        }
        cmd.stderr(std::fs::File::create(lab.dir.join("driver.log")).unwrap());
        let proc = Proc::spawn(&mut cmd).unwrap();
        let d = Self {
            proc,
            socket: socket.to_path_buf(),
        };
        let until = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(socket).is_err() {
            assert!(Instant::now() < until, "the driver never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

impl Drop for DriverProc {
    fn drop(&mut self) {
        self.proc.stop();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// One protocol call: POST `path` with `body`; the status and the JSON answer.
fn post(socket: &Path, path: &str, body: &str) -> (u16, Value) {
    raw(socket, "POST", path, body)
}

fn raw(socket: &Path, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status: u16 = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {out}"));
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/vnd.docker.plugins.v1.2+json"),
        "{head}"
    );
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn ports(lab: &Lab, i: usize) -> Vec<String> {
    let p = lab.sleds[i].daemon.hdl().list_ports().unwrap().ports;
    p.into_iter().map(|p| p.name).collect()
}

fn v2p_has(lab: &Lab, ip: &str) -> bool {
    lab.sleds.iter().any(|s| {
        let d = s.daemon.hdl().dump_v2p().unwrap();
        d.mappings
            .iter()
            .any(|m| m.ip4.iter().any(|(a, _)| a.to_string() == ip))
    })
}

fn err_of(v: &Value) -> &str {
    v["Err"].as_str().unwrap_or_else(|| panic!("no Err: {v}"))
}

#[test]
fn protocol_answers_and_errors() {
    if !root_or_skip() {
        return;
    }
    let id = unique("dkp");
    let lab = Lab::build(&bins(), &id, 2, &[]).unwrap();
    let sock = lab.dir.join("opte.sock");
    let _driver = DriverProc::start(&lab, &sock);

    let (st, v) = post(&sock, "/Plugin.Activate", "");
    assert_eq!((st, v), (200, json!({"Implements": ["NetworkDriver"]})));
    let (st, v) = post(&sock, "/NetworkDriver.GetCapabilities", "{}");
    assert_eq!(st, 200);
    assert_eq!(v["Scope"], "local");

    let net = |opts: Value, v4: Value, v6: Value| {
        json!({"NetworkID": "n1", "Options": {"com.docker.network.generic": opts},
               "IPv4Data": v4, "IPv6Data": v6})
        .to_string()
    };
    let pool = json!([{"AddressSpace": "LocalDefault", "Pool": "172.30.0.0/22", "Gateway": "172.30.0.1/22"}]);
    // Malformed: each a 500 with its reason.
    for (body, says) in [
        ("not json".to_string(), "not JSON"),
        (net(json!({}), pool.clone(), json!([])), "vni"),
        (net(json!({"vni": "x"}), pool.clone(), json!([])), "vni"),
        (
            net(json!({"vni": "16777216"}), pool.clone(), json!([])),
            "24 bits",
        ),
        (
            net(json!({"vni": "100", "mtu": "9"}), pool.clone(), json!([])),
            "MTU",
        ),
        (
            net(
                json!({"vni": "100", "gateway-mac": "zz"}),
                pool.clone(),
                json!([]),
            ),
            "gateway-mac",
        ),
        (
            net(json!({"vni": "100"}), json!([]), json!([])),
            "IPv4 pool",
        ),
        (
            net(
                json!({"vni": "100"}),
                pool.clone(),
                json!([{"Pool": "fd30::/64", "Gateway": "fd30::1/64"}]),
            ),
            "IPv6",
        ),
        (
            net(
                json!({"vni": "100"}),
                json!([{"Pool": "172.30.0.0/22", "Gateway": "10.0.0.1/8"}]),
                json!([]),
            ),
            "outside",
        ),
        (json!({"Options": {}}).to_string(), "NetworkID"),
    ] {
        let (st, v) = post(&sock, "/NetworkDriver.CreateNetwork", &body);
        assert_eq!(st, 500, "{body}: {v}");
        assert!(err_of(&v).contains(says), "{body}: {v}");
    }
    let good = net(
        json!({"vni": "100", "mtu": "1500"}),
        pool.clone(),
        json!([]),
    );
    assert_eq!(
        post(&sock, "/NetworkDriver.CreateNetwork", &good),
        (200, json!({}))
    );
    let (st, v) = post(&sock, "/NetworkDriver.CreateNetwork", &good);
    assert!(st == 500 && err_of(&v).contains("exists"), "{v}");

    let ep = |net: &str, addr: &str, mac: &str| {
        json!({"NetworkID": net, "EndpointID": "e1", "Options": {},
               "Interface": {"Address": addr, "AddressIPv6": "", "MacAddress": mac}})
        .to_string()
    };
    for (body, says) in [
        (ep("n9", "172.30.1.5/22", ""), "no network"),
        (ep("n1", "", ""), "IPv4 address"),
        (ep("n1", "172.30.1.5/22", "not-a-mac"), "MAC"),
        (ep("n1", "172.31.1.5/22", ""), "configuration"),
    ] {
        let (st, v) = post(&sock, "/NetworkDriver.CreateEndpoint", &body);
        assert_eq!(st, 500, "{body}: {v}");
        assert!(err_of(&v).contains(says), "{body}: {v}");
    }
    assert!(ports(&lab, 0).is_empty(), "a refused endpoint left a port");
    let (st, v) = post(
        &sock,
        "/NetworkDriver.CreateEndpoint",
        &ep("n1", "172.30.1.5/22", ""),
    );
    assert_eq!(st, 200, "{v}");
    let mac = v["Interface"]["MacAddress"].as_str().unwrap().to_string();
    assert!(mac.starts_with("a8:40:25:f"), "{mac}");
    assert_eq!(ports(&lab, 0).len(), 1);
    assert!(v2p_has(&lab, "172.30.1.5"));
    let ids = json!({"NetworkID": "n1", "EndpointID": "e1"}).to_string();
    let (st, v) = post(&sock, "/NetworkDriver.EndpointOperInfo", &ids);
    assert_eq!(st, 200);
    assert_eq!(v["Value"]["mac"], mac.as_str());
    let join = json!({"NetworkID": "n1", "EndpointID": "e1", "SandboxKey": "/var/run/docker/netns/x", "Options": {}});
    let (st, v) = post(&sock, "/NetworkDriver.Join", &join.to_string());
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["Gateway"], "172.30.0.1");
    assert_eq!(v["InterfaceName"]["DstPrefix"], "eth");
    let tap = v["InterfaceName"]["SrcName"].as_str().unwrap();
    assert_eq!(ports(&lab, 0), [tap]);
    lab.sleds[0].ns.exec(&["ip", "link", "show", tap]);
    let bad_join = json!({"NetworkID": "n1", "EndpointID": "e9", "SandboxKey": "x"});
    let (st, v) = post(&sock, "/NetworkDriver.Join", &bad_join.to_string());
    assert!(st == 500 && err_of(&v).contains("no endpoint"), "{v}");
    let (st, v) = post(
        &sock,
        "/NetworkDriver.DeleteNetwork",
        r#"{"NetworkID": "n1"}"#,
    );
    assert!(st == 500 && err_of(&v).contains("endpoints"), "{v}");
    for call in [
        "DiscoverNew",
        "DiscoverDelete",
        "ProgramExternalConnectivity",
        "RevokeExternalConnectivity",
    ] {
        let (st, v) = post(&sock, &format!("/NetworkDriver.{call}"), "{}");
        assert_eq!((st, v), (200, json!({})), "{call}");
    }
    let (st, v) = post(&sock, "/NetworkDriver.Fly", "{}");
    assert!(st == 500 && err_of(&v).contains("not a call"), "{v}");
    let (st, v) = raw(&sock, "GET", "/Plugin.Activate", "");
    assert!(st == 405 && err_of(&v).contains("POST"), "{v}");

    assert_eq!(post(&sock, "/NetworkDriver.Leave", &ids), (200, json!({})));
    assert_eq!(
        post(&sock, "/NetworkDriver.DeleteEndpoint", &ids),
        (200, json!({}))
    );
    assert!(ports(&lab, 0).is_empty());
    assert!(!v2p_has(&lab, "172.30.1.5"));
    let (st, v) = post(&sock, "/NetworkDriver.DeleteEndpoint", &ids);
    assert!(st == 500 && err_of(&v).contains("no endpoint"), "{v}");
    assert_eq!(
        post(
            &sock,
            "/NetworkDriver.DeleteNetwork",
            r#"{"NetworkID": "n1"}"#
        ),
        (200, json!({}))
    );
    let state: Value =
        serde_json::from_slice(&std::fs::read(lab.dir.join("docker-driver.json")).unwrap())
            .unwrap();
    assert_eq!(state, json!({"networks": {}, "endpoints": {}}));
}

/// A `dockerd` of the test's own, in a namespace, ended (with its containerd and shims,
/// by PID) when dropped.
struct Dockerd {
    proc: Option<Proc>,
    host: String,
    exec_root: PathBuf,
}

impl Dockerd {
    fn start(ns: &xde_lab::Netns, dir: &Path) -> Result<Self, String> {
        let exec_root = dir.join("dx");
        let sock = dir.join("docker.sock");
        // Only its network namespace is the sled's: `ip netns exec` would also give it a
        // fresh /sys, without the cgroup mounts dockerd needs.
        let mut cmd = xde_lab::command("nsenter");
        cmd.arg(format!("--net=/var/run/netns/{}", ns.name()))
            .arg("dockerd")
            .arg("--data-root")
            .arg(dir.join("docker"))
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--shutdown-timeout", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?);
        let d = Self {
            proc: Some(Proc::spawn(&mut cmd)?),
            host: format!("unix://{}", sock.display()),
            exec_root,
        };
        let until = Instant::now() + Duration::from_secs(60);
        while d.docker(&["version"]).is_err() {
            if Instant::now() > until {
                let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
                return Err(format!("dockerd did not start: {log}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(d)
    }

    fn docker(&self, args: &[&str]) -> Result<String, String> {
        let mut a = vec!["-H", &self.host];
        a.extend_from_slice(args);
        try_ok("docker", &a)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Ok(ids) = self.docker(&["ps", "-aq"]) {
            for c in ids.split_whitespace() {
                let _ = self.docker(&["rm", "-f", c]);
            }
        }
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
        // Mounts under its directories (its image layers, the containers' namespaces),
        // should dockerd have left any.
        let dir = self
            .exec_root
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| Path::new(m).starts_with(&dir))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = try_ok("umount", &["-l", m]);
        }
        // containerd and its shims, should any outlive dockerd: found by their run
        // directory on their command line, ended by PID.
        let root = self.exec_root.to_string_lossy().into_owned();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&root) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

#[test]
fn docker_containers_on_a_vpc() {
    if !root_or_skip() {
        return;
    }
    let id = unique("dk");
    let lab = Lab::build(&bins(), &id, 2, &[GuestSpec::new("b1", 100, 30, 6, 1)]).unwrap();
    let plugins = Path::new("/run/docker/plugins");
    std::fs::create_dir_all(plugins).unwrap();
    let driver_name = format!("opte-{id}");
    let _driver = DriverProc::start(&lab, &plugins.join(format!("{driver_name}.sock")));
    let d = Dockerd::start(&lab.sleds[0].ns, &lab.dir).unwrap();

    // An image from a busybox-static root file system.
    let root = lab.dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for c in ["sh", "ping", "sleep", "ip", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(c)).unwrap();
    }
    let image = format!("opte-bb:{id}");
    try_ok(
        "sh",
        &[
            "-c",
            &format!(
                "tar -C {} -c . | docker -H {} import - {image}",
                root.display(),
                d.host
            ),
        ],
    )
    .unwrap();

    let net = format!("n-{id}");
    d.docker(&[
        "network",
        "create",
        "-d",
        &driver_name,
        "--subnet",
        "172.30.0.0/22",
        "--gateway",
        "172.30.0.1",
        "--ip-range",
        "172.30.3.0/24",
        "-o",
        "vni=100",
        &net,
    ])
    .unwrap();
    let mut ips = Vec::new();
    for c in ["c1", "c2"] {
        let name = format!("{c}-{id}");
        d.docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &net,
            &image,
            "sleep",
            "600",
        ])
        .unwrap();
        let ip = d
            .docker(&[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &name,
            ])
            .unwrap()
            .trim()
            .to_string();
        assert!(ip.starts_with("172.30.3."), "{name}: {ip:?}");
        ips.push((name, ip));
    }
    assert_eq!(ports(&lab, 0).len(), 2);
    let ping = |from: &str, ip: &str| {
        (0..3).any(|_| {
            d.docker(&["exec", from, "ping", "-c", "1", "-W", "2", ip])
                .is_ok()
        })
    };
    let (c1, ip1) = &ips[0];
    let (c2, ip2) = &ips[1];
    assert!(ping(c1, ip2), "c1 cannot ping c2");
    assert!(ping(c2, ip1), "c2 cannot ping c1");
    assert!(ping(c1, "172.30.0.1"), "c1 cannot ping its gateway");
    assert!(
        ping(c1, &lab.guest("b1").ip4()),
        "c1 cannot ping the guest on sled 1"
    );
    assert!(v2p_has(&lab, ip1) && v2p_has(&lab, ip2));
    // The container's interface is the port's TAP, renamed.
    let link = d
        .docker(&["exec", c1, "ip", "link", "show", "eth0"])
        .unwrap();
    assert!(link.contains("a8:40:25:f"), "{link}");

    d.docker(&["rm", "-f", c1, c2]).unwrap();
    assert!(ports(&lab, 0).is_empty(), "docker rm left a port");
    assert!(!v2p_has(&lab, ip1) && !v2p_has(&lab, ip2));
    d.docker(&["network", "rm", &net]).unwrap();
    let state: Value =
        serde_json::from_slice(&std::fs::read(lab.dir.join("docker-driver.json")).unwrap())
            .unwrap();
    assert_eq!(state, json!({"networks": {}, "endpoints": {}}));
    d.docker(&["rmi", &image]).unwrap();
}
