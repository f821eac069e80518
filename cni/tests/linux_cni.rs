//! The CNI plugin end to end, as root, invoked exactly as a runtime invokes it: the
//! `CNI_*` environment, the network configuration on standard input, run on its sled (in
//! the sled's namespace, where that sled's daemon and its TAPs are). Addresses come from
//! Debian's `host-local` IPAM plugin (`/usr/lib/cni`), one range per sled as a cluster
//! gives each node its pod range. "Pods" are namespaces the test makes.
//!
//! Two pods on two sleds ping each other (IPv4 and IPv6) and a lab guest, and move TCP
//! data; a pod of another VPC reaches none of them; CHECK sees what ADD did and notices
//! what was undone; a second ADD is refused; GC removes what the runtime no longer knows;
//! DEL (twice, and of what never was) leaves no port, TAP, V2P mapping, lease or state.
//! Kata mode leaves the TAP on the host and writes the sandbox's DAN file. Every malformed
//! configuration and environment gets its code.

#![cfg(target_os = "linux")]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use xde_lab::vpc::{Bins, GuestSpec, Lab};
use xde_lab::{Netns, root_or_skip, unique};

/// The daemon's programs, built beside this test's own.
fn bins() -> Bins {
    Bins::beside(Path::new(env!("CARGO_BIN_EXE_opte-cni"))).unwrap()
}

const CNI_PATH: &str = "/usr/lib/cni";

fn plugin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_opte-cni"))
}

/// Run the plugin on `sled` with `env` and `conf`: whether it succeeded, and what it
/// printed (parsed, or Null when nothing).
fn cni(sled: &Netns, env: &[(&str, &str)], conf: &Value) -> (bool, Value) {
    let mut cmd = sled.command(&plugin());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        i.write_all(conf.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (out.status.success(), v)
}

fn cmd_env<'a>(command: &'a str, container: &'a str, netns: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", container),
        ("CNI_NETNS", netns),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", CNI_PATH),
    ]
}

/// The network configuration of VPC `vni` (172.`net`.0.0/22, fd`net`::/64) on sled `i`.
fn conf(lab: &Lab, i: usize, name: &str, vni: u32, net: u8) -> Value {
    let sled = &lab.sleds[i];
    let peers: Vec<_> = lab
        .sleds
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, s)| s.daemon.sock())
        .collect();
    json!({
        "cniVersion": "1.1.0",
        "name": name,
        "type": "opte-cni",
        "vni": vni,
        "ipv4": {"subnet": format!("172.{net}.0.0/22"), "gateway": format!("172.{net}.0.1")},
        "ipv6": {"subnet": format!("fd{net}::/64"), "gateway": format!("fd{net}::1")},
        "underlayIp": sled.ip.to_string(),
        "mtu": 1500,
        "dns": {"nameservers": ["203.0.113.53"], "search": ["vpc.example"]},
        "socket": sled.daemon.sock(),
        "peers": peers,
        "dataDir": lab.dir.join(format!("cni-sled{i}")),
        "ipam": {
            "type": "host-local",
            "dataDir": lab.dir.join(format!("ipam-sled{i}")),
            "ranges": [
                [{"subnet": format!("172.{net}.0.0/22"),
                  "rangeStart": format!("172.{net}.{}.10", i + 1),
                  "rangeEnd": format!("172.{net}.{}.99", i + 1)}],
                [{"subnet": format!("fd{net}::/64"),
                  "rangeStart": format!("fd{net}::{}:10", i + 1),
                  "rangeEnd": format!("fd{net}::{}:99", i + 1)}]
            ]
        }
    })
}

/// The IPv4 and IPv6 addresses of an ADD result.
fn addrs(result: &Value) -> (String, String) {
    let ips: Vec<&str> = result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["address"].as_str().unwrap())
        .collect();
    let v4 = ips.iter().find(|a| a.ends_with("/32")).unwrap();
    let v6 = ips.iter().find(|a| a.ends_with("/128")).unwrap();
    (
        v4.trim_end_matches("/32").to_string(),
        v6.trim_end_matches("/128").to_string(),
    )
}

fn ns_path(ns: &Netns) -> String {
    format!("/var/run/netns/{}", ns.name())
}

/// Ports on a sled's daemon.
fn ports(lab: &Lab, i: usize) -> Vec<String> {
    lab.sleds[i]
        .daemon
        .hdl()
        .list_ports()
        .unwrap()
        .ports
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// Whether any sled's V2P table maps `ip`.
fn v2p_has(lab: &Lab, ip: &str) -> bool {
    lab.sleds.iter().any(|s| {
        let d = s.daemon.hdl().dump_v2p().unwrap();
        d.mappings.iter().any(|m| {
            m.ip4.iter().any(|(a, _)| a.to_string() == ip)
                || m.ip6.iter().any(|(a, _)| a.to_string() == ip)
        })
    })
}

/// Lease files host-local holds in `dir` (it names them by address).
fn leases(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for net in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(net.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let n = f.file_name().to_string_lossy().into_owned();
            if n.parse::<std::net::IpAddr>().is_ok() {
                out.push(n);
            }
        }
    }
    out
}

/// Whether `ns` reaches `ip` with a ping (three tries: the first may wait out address
/// resolution on both ends).
fn pings(ns: &Netns, ip: &str) -> bool {
    (0..3).any(|_| ns.try_exec(&["ping", "-c", "1", "-W", "2", ip]).is_ok())
}

#[test]
fn pods_on_two_sleds() {
    if !root_or_skip() {
        return;
    }
    let id = unique("cni");
    let lab = Lab::build(&bins(), &id, 2, &[GuestSpec::new("b1", 100, 30, 6, 1)]).unwrap();
    let pod_a = Netns::new(&format!("{id}-pa"));
    let pod_b = Netns::new(&format!("{id}-pb"));
    let pod_c = Netns::new(&format!("{id}-pc"));
    let (pa, pb, pc) = (ns_path(&pod_a), ns_path(&pod_b), ns_path(&pod_c));
    let s0 = &lab.sleds[0].ns;
    let s1 = &lab.sleds[1].ns;
    let conf0 = conf(&lab, 0, "vpc-a", 100, 30);
    let conf1 = conf(&lab, 1, "vpc-a", 100, 30);

    // VERSION.
    let (ok, v) = cni(
        s0,
        &[("CNI_COMMAND", "VERSION")],
        &json!({"cniVersion": "1.0.0"}),
    );
    assert!(ok);
    assert_eq!(
        v,
        json!({"cniVersion": "1.0.0", "supportedVersions": ["1.0.0", "1.1.0"]})
    );
    // STATUS: the daemon answers.
    let (ok, v) = cni(
        s0,
        &[("CNI_COMMAND", "STATUS"), ("CNI_PATH", CNI_PATH)],
        &conf0,
    );
    assert!(ok, "{v}");

    // ADD a pod on each sled.
    let (ok, ra) = cni(s0, &cmd_env("ADD", "pod-a", &pa), &conf0);
    assert!(ok, "{ra}");
    let (ok, rb) = cni(s1, &cmd_env("ADD", "pod-b", &pb), &conf1);
    assert!(ok, "{rb}");
    assert_eq!(ra["cniVersion"], "1.1.0");
    assert_eq!(ra["interfaces"][0]["name"], "eth0");
    assert_eq!(ra["interfaces"][0]["sandbox"], pa.as_str());
    assert_eq!(ra["interfaces"][0]["mtu"], 1500);
    assert_eq!(ra["dns"]["nameservers"], json!(["203.0.113.53"]));
    for ip in ra["ips"].as_array().unwrap() {
        assert_eq!(ip["interface"], 0);
    }
    let routes: Vec<&str> = ra["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dst"].as_str().unwrap())
        .collect();
    assert!(
        routes.contains(&"0.0.0.0/0") && routes.contains(&"::/0"),
        "{routes:?}"
    );
    let (a4, a6) = addrs(&ra);
    let (b4, b6) = addrs(&rb);
    assert!(
        a4.starts_with("172.30.1.") && b4.starts_with("172.30.2."),
        "{a4} {b4}"
    );
    // The interface in the pod is the port's: its MAC, its addresses.
    let link = pod_a.exec(&["ip", "-o", "link", "show", "eth0"]);
    let mac = ra["interfaces"][0]["mac"].as_str().unwrap();
    assert!(link.contains(mac), "{link}");
    assert!(
        pod_a
            .exec(&["ip", "-o", "addr", "show", "eth0"])
            .contains(&format!("{a4}/32"))
    );
    assert_eq!(ports(&lab, 0).len(), 1);

    // Across sleds, both families, and to the lab's guest.
    assert!(pings(&pod_a, &b4), "pod a cannot ping pod b");
    assert!(pings(&pod_a, &b6), "pod a cannot ping pod b over IPv6");
    assert!(pings(&pod_b, &a4));
    assert!(pings(&pod_a, &lab.guest("b1").ip4()));
    assert!(pings(&pod_a, "172.30.0.1"), "the gateway");
    // TCP: 4 MiB from pod b's web server to pod a, over each family, intact.
    let www = lab.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("blob"), xde_lab::blob(4 << 20)).unwrap();
    let want = xde_lab::ok("sha256sum", &[www.join("blob").to_str().unwrap()]);
    let want = want.split_whitespace().next().unwrap().to_string();
    let mut httpd = pod_b
        .serve(
            "busybox",
            &["httpd", "-f", "-p", "8080", "-h", www.to_str().unwrap()],
            ":8080",
        )
        .unwrap();
    for url in [
        format!("http://{b4}:8080/blob"),
        format!("http://[{b6}]:8080/blob"),
    ] {
        let got = pod_a.exec(&[
            "sh",
            "-c",
            &format!("curl -sfg --max-time 30 {url} | sha256sum"),
        ]);
        assert_eq!(got.split_whitespace().next(), Some(want.as_str()), "{url}");
    }
    httpd.stop();

    // CHECK sees what ADD did.
    let mut check0 = conf0.clone();
    check0["prevResult"] = ra.clone();
    let (ok, v) = cni(s0, &cmd_env("CHECK", "pod-a", &pa), &check0);
    assert!(ok, "{v}");
    // A second ADD of the same attachment is refused.
    let (ok, v) = cni(s0, &cmd_env("ADD", "pod-a", &pa), &conf0);
    assert!(!ok);
    assert_eq!(v["code"], 100, "{v}");

    // Another VPC: its pod reaches none of them.
    let confc = conf(&lab, 0, "vpc-b", 200, 31);
    let (ok, rc) = cni(s0, &cmd_env("ADD", "pod-c", &pc), &confc);
    assert!(ok, "{rc}");
    for ip in [&a4, &b4, &lab.guest("b1").ip4()] {
        assert!(!pings(&pod_c, ip), "VPC b reaches {ip}");
    }
    assert!(pings(&pod_c, "172.31.0.1"), "its own gateway");

    // CHECK notices a route taken away.
    pod_a.exec(&["ip", "route", "del", "default"]);
    let (ok, v) = cni(s0, &cmd_env("CHECK", "pod-a", &pa), &check0);
    assert!(!ok);
    assert_eq!(v["code"], 101, "{v}");
    // CHECK of an attachment that never was.
    let (ok, v) = cni(s0, &cmd_env("CHECK", "pod-x", &pa), &check0);
    assert!(!ok);
    assert_eq!(v["code"], 3, "{v}");

    // GC on sled 0 with only pod c valid in vpc-a's view: pod a goes.
    let mut gc = conf0.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "pod-c", "ifname": "eth0"}]);
    let (ok, v) = cni(s0, &[("CNI_COMMAND", "GC"), ("CNI_PATH", CNI_PATH)], &gc);
    assert!(ok, "{v}");
    assert!(!v2p_has(&lab, &a4) && !v2p_has(&lab, &a6));
    assert_eq!(ports(&lab, 0).len(), 1, "pod c's port stays");
    assert!(!leases(&lab.dir.join("ipam-sled0")).contains(&a4));
    assert!(pod_a.try_exec(&["ip", "link", "show", "eth0"]).is_err());

    // DEL: twice, and of what was never added; all succeed and leave nothing.
    for (ns, env_c, c) in [
        (s0, "pod-a", &conf0),
        (s1, "pod-b", &conf1),
        (s1, "pod-b", &conf1),
        (s0, "pod-c", &confc),
        (s0, "never", &conf0),
    ] {
        let (ok, v) = cni(ns, &cmd_env("DEL", env_c, &pa), c);
        assert!(ok, "DEL {env_c}: {v}");
    }
    assert!(ports(&lab, 0).is_empty());
    assert_eq!(ports(&lab, 1), ["b1"]);
    for ip in [&a4, &a6, &b4, &b6] {
        assert!(!v2p_has(&lab, ip), "{ip} is still mapped");
    }
    assert!(
        v2p_has(&lab, &lab.guest("b1").ip4()),
        "the lab guest's mapping stays"
    );
    for i in 0..2 {
        assert_eq!(
            leases(&lab.dir.join(format!("ipam-sled{i}"))),
            Vec::<String>::new()
        );
        let tap = lab.sleds[i].ns.exec(&["ip", "-o", "link"]);
        assert!(!tap.contains("opte"), "a TAP is left: {tap}");
        let state = lab.dir.join(format!("cni-sled{i}"));
        let left: Vec<_> = walk(&state)
            .into_iter()
            .filter(|p| !p.ends_with(".lock"))
            .collect();
        assert!(left.is_empty(), "state left: {left:?}");
    }
    assert!(pod_b.try_exec(&["ip", "link", "show", "eth0"]).is_err());
}

/// The files under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn kata_mode_writes_the_dan_file() {
    if !root_or_skip() {
        return;
    }
    let id = unique("cnik");
    let lab = Lab::build(&bins(), &id, 1, &[]).unwrap();
    let pod = Netns::new(&format!("{id}-pk"));
    let p = ns_path(&pod);
    let s0 = &lab.sleds[0].ns;
    let kata = lab.dir.join("dans");
    let mut c = conf(&lab, 0, "vpc-k", 100, 30);
    c["mode"] = "kata".into();
    c["kataDir"] = json!(kata);
    let (ok, r) = cni(s0, &cmd_env("ADD", "sandbox-1", &p), &c);
    assert!(ok, "{r}");
    let tap = r["interfaces"][0]["name"].as_str().unwrap().to_string();
    assert!(r["interfaces"][0].get("sandbox").is_none());
    // The TAP stays on the host (the sled), none in the sandbox's namespace.
    s0.exec(&["ip", "link", "show", &tap]);
    assert!(pod.try_exec(&["ip", "link", "show", "eth0"]).is_err());
    let dan: Value =
        serde_json::from_slice(&std::fs::read(kata.join("sandbox-1.json")).unwrap()).unwrap();
    assert_eq!(dan["netns"], p.as_str());
    assert_eq!(dan["devices"][0]["name"], "eth0");
    assert_eq!(dan["devices"][0]["device"]["type"], "host-tap");
    assert_eq!(dan["devices"][0]["device"]["tap_name"], tap.as_str());
    assert_eq!(dan["devices"][0]["guest_mac"], r["interfaces"][0]["mac"]);
    let (a4, _) = addrs(&r);
    let ips = dan["devices"][0]["network_info"]["interface"]["ip_addresses"].to_string();
    assert!(ips.contains(&format!("{a4}/32")), "{ips}");
    let mut check = c.clone();
    check["prevResult"] = r.clone();
    let (ok, v) = cni(s0, &cmd_env("CHECK", "sandbox-1", &p), &check);
    assert!(ok, "{v}");
    let (ok, v) = cni(s0, &cmd_env("DEL", "sandbox-1", &p), &c);
    assert!(ok, "{v}");
    assert!(!kata.join("sandbox-1.json").exists());
    assert!(s0.try_exec(&["ip", "link", "show", &tap]).is_err());
    assert!(ports(&lab, 0).is_empty());

    // With vhostUserDir, the device is a vhost-user socket the daemon serves.
    let vdir = lab.dir.join("vhost");
    std::fs::create_dir_all(&vdir).unwrap();
    c["vhostUserDir"] = json!(vdir);
    let (ok, r) = cni(s0, &cmd_env("ADD", "sandbox-2", &p), &c);
    assert!(ok, "{r}");
    let sock = r["interfaces"][0]["socketPath"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(Path::new(&sock).starts_with(&vdir), "{sock}");
    assert!(std::fs::metadata(&sock).is_ok(), "no socket at {sock}");
    let dan: Value =
        serde_json::from_slice(&std::fs::read(kata.join("sandbox-2.json")).unwrap()).unwrap();
    assert_eq!(dan["devices"][0]["device"]["type"], "vhost-user");
    assert_eq!(dan["devices"][0]["device"]["path"], sock.as_str());
    let (ok, v) = cni(s0, &cmd_env("DEL", "sandbox-2", &p), &c);
    assert!(ok, "{v}");
    assert!(std::fs::metadata(&sock).is_err(), "the socket outlived DEL");
    assert!(!kata.join("sandbox-2.json").exists());
    assert!(ports(&lab, 0).is_empty());
}

#[test]
fn malformed_input_gets_its_error_code() {
    if !root_or_skip() {
        return;
    }
    let id = unique("cnie");
    let lab = Lab::build(&bins(), &id, 1, &[]).unwrap();
    let pod = Netns::new(&format!("{id}-pe"));
    let p = ns_path(&pod);
    let s0 = &lab.sleds[0].ns;
    let good = conf(&lab, 0, "vpc-e", 100, 30);
    let expect = |env: &[(&str, &str)], c: &Value, code: u64| {
        let (ok, v) = cni(s0, env, c);
        assert!(!ok, "succeeded: {env:?} {c}");
        assert_eq!(v["code"], code, "{env:?} {c}: {v}");
        assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    };
    let add = cmd_env("ADD", "pod-e", &p);
    // The environment (4).
    expect(&[("CNI_COMMAND", "ADD")], &good, 4);
    expect(&[("CNI_COMMAND", "JUMP")], &good, 4);
    let mut e = add.clone();
    e.retain(|(k, _)| *k != "CNI_IFNAME");
    expect(&e, &good, 4);
    let mut e = add.clone();
    e[3] = ("CNI_IFNAME", "much-too-long-name");
    expect(&e, &good, 4);
    let mut e = add.clone();
    e.retain(|(k, _)| *k != "CNI_PATH");
    expect(&e, &good, 4);
    // The configuration: not JSON (6), a version we do not speak (1), invalid (7).
    let (ok, v) = {
        let mut cmd = s0.command(&plugin());
        cmd.envs(add.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"{ nope").unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        )
    };
    assert!(!ok);
    assert_eq!(v["code"], 6);
    let mut c = good.clone();
    c["cniVersion"] = "0.3.1".into();
    expect(&add, &c, 1);
    for (k, bad) in [
        ("vni", json!(-1)),
        ("underlayIp", json!("not-an-address")),
        (
            "ipv4",
            json!({"subnet": "172.30.0.0/22", "gateway": "172.99.0.1"}),
        ),
        ("mtu", json!(70000)),
        ("addresses", json!(["172.30.0.9/22"])),
    ] {
        let mut c = good.clone();
        c[k] = bad;
        expect(&add, &c, 7);
    }
    // An IPAM plugin that is not there.
    let mut c = good.clone();
    c["ipam"]["type"] = "no-such-ipam".into();
    expect(&add, &c, 7);
    // Fixed addresses outside the VPC.
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("ipam");
    c["addresses"] = json!(["10.9.9.9/24"]);
    expect(&add, &c, 7);
    // The daemon not running: try again later (11); STATUS says not available (50).
    let mut c = good.clone();
    c["socket"] = json!(lab.dir.join("no-daemon.sock"));
    expect(&add, &c, 11);
    expect(&[("CNI_COMMAND", "STATUS"), ("CNI_PATH", CNI_PATH)], &c, 50);
    // Nothing was left by any of it.
    assert!(ports(&lab, 0).is_empty());
    assert!(leases(&lab.dir.join("ipam-sled0")).is_empty());
    assert!(pod.try_exec(&["ip", "link", "show", "eth0"]).is_err());
}
