//! Real virtual machines on OPTE ports: QEMU from Debian booting Debian's cloud kernel
//! (fetched as a package and unpacked, never installed) with an initramfs built here from
//! `busybox-static` and the kernel's own virtio modules. The guest's NIC is a
//! `virtio-net-pci` device on the port's TAP; the lab drives the guest through its serial
//! console, a shell on `ttyS0`.
//!
//! QEMU runs under TCG (software emulation): on the machines this project is tested on,
//! `/dev/kvm` exists but nested KVM does not boot a guest, and a guest that never boots
//! must not hang a test. `XDE_LAB_VM_ACCEL=kvm` asks for KVM where it is known to work.

use crate::{Netns, command, try_ok};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The metapackage that names Debian's current cloud kernel.
const KERNEL_META: &str = "linux-image-cloud-amd64";
/// The modules the guest loads (with what they depend on, found in the modules).
const GUEST_MODULES: [&str; 2] = ["virtio_pci", "virtio_net"];
/// Printed by the guest's init once its NIC is up and its shell is about to start.
pub const READY: &str = "xde-vm: ready";
/// The environment variable choosing QEMU's accelerator (`tcg`, the default, or `kvm`).
pub const ACCEL_ENV: &str = "XDE_LAB_VM_ACCEL";

/// A kernel to boot: its image and the directory of its modules.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub vmlinuz: PathBuf,
    /// `lib/modules/RELEASE` in the unpacked package.
    pub modules: PathBuf,
}

/// Debian's cloud kernel, downloaded (`apt-get download`) into `cache` and unpacked there
/// (`dpkg-deb -x`) the first time, found there afterwards. The package lists must be
/// current (`apt-get update`).
pub fn debian_kernel(cache: &Path) -> Result<Kernel, String> {
    let deps = try_ok("apt-cache", &["depends", KERNEL_META])?;
    let pkg = deps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .ok_or_else(|| {
            format!("apt-cache names no kernel for {KERNEL_META} (run apt-get update): {deps}")
        })?
        .to_string();
    let root = cache.join(&pkg);
    // One fetch at a time in this process (tests run in threads); another process's is
    // kept apart by its own partial directory and the rename.
    static FETCHING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = FETCHING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !root.join("boot").is_dir() {
        // Unpacked beside, then renamed into place: a concurrent fetch of the same
        // package, or one interrupted, never leaves a half-unpacked tree at `root`.
        let partial = cache.join(format!("{pkg}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        let fetched = fetch_and_unpack(&pkg, &partial);
        if fetched.is_ok() && std::fs::rename(partial.join("root"), &root).is_err() {
            // Another fetch won the race; its tree is as good as ours.
            if !root.join("boot").is_dir() {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(format!("cannot move the kernel into {}", root.display()));
            }
        }
        let _ = std::fs::remove_dir_all(&partial);
        fetched?;
    }
    let boot = root.join("boot");
    let vmlinuz = first_entry(&boot, "vmlinuz-")?;
    let release = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .ok_or("a kernel image without a release")?
        .to_string();
    let modules = root.join("lib/modules").join(release);
    if !modules.is_dir() {
        return Err(format!("{} has no modules", root.display()));
    }
    Ok(Kernel { vmlinuz, modules })
}

/// [`debian_kernel`] cached beside the running program's build, in `target/tmp/vm-kernel`
/// (where the tests keep theirs), for the lab's programs in `target/{debug,release}`.
pub fn debian_kernel_for_this_build() -> Result<Kernel, String> {
    let exe = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    let cache = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("where is target/")?
        .join("tmp/vm-kernel");
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    debian_kernel(&cache)
}

/// Make VM `g`'s port on its sled, its NIC on a `--vmm` TAP or (with `vhost_user`) on a
/// vhost-user socket in the lab's directory, and boot it from `kernel` and `initramfs`
/// with `memory_mib`. The VM and its port's configuration.
pub fn boot_on_port(
    lab: &mut crate::vpc::Lab,
    g: &crate::vpc::GuestSpec,
    vhost_user: bool,
    kernel: &Kernel,
    initramfs: &Path,
    memory_mib: u32,
) -> Result<(Vm, oxide_vpc::api::VpcCfg), String> {
    let (cfg, nic) = if vhost_user {
        let sock = lab.dir.join(format!("{}.vhost", g.name));
        (lab.add_vhost_user_port(g, &sock)?, Nic::VhostUser(sock))
    } else {
        (lab.add_vm_port(g)?, Nic::Tap(g.name.clone()))
    };
    let spec = VmSpec {
        kernel: kernel.clone(),
        initramfs: initramfs.to_path_buf(),
        nic,
        mac: cfg.guest_mac.to_string(),
        memory_mib,
    };
    let ns = &lab.sleds.get(g.sled).ok_or("no such sled")?.ns;
    Ok((Vm::boot(ns, &spec, Duration::from_secs(60))?, cfg))
}

fn fetch_and_unpack(pkg: &str, dir: &Path) -> Result<(), String> {
    let out = command("apt-get")
        .args(["download", "-q", pkg])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("apt-get download {pkg}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "apt-get download {pkg}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let deb = first_entry(dir, pkg)?;
    let root = dir.join("root");
    let deb = deb.to_str().ok_or("a package path that is not UTF-8")?;
    let root_s = root.to_str().ok_or("a path that is not UTF-8")?;
    try_ok("dpkg-deb", &["-x", deb, root_s])?;
    Ok(())
}

/// The first entry of `dir` whose name starts with `prefix`.
fn first_entry(dir: &Path, prefix: &str) -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .next()
        .ok_or_else(|| format!("nothing named {prefix}* in {}", dir.display()))
}

/// Every module file under `dir`, by module name (`-` written as `_`, as the kernel does).
fn module_index(dir: &Path, index: &mut BTreeMap<String, PathBuf>) -> Result<(), String> {
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = e.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            module_index(&path, index)?;
        } else if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ko"))
        {
            index.insert(name.replace('-', "_"), path);
        }
    }
    Ok(())
}

/// The modules a module needs first: its `.modinfo` section's `depends=` entry.
fn module_depends(module: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"depends=";
    let Some(at) = module.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let rest = &module[at + KEY.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| d.replace('-', "_"))
        .collect()
}

/// `wanted` and everything it depends on, each after what it needs: the order to load them.
fn load_order(
    index: &BTreeMap<String, PathBuf>,
    wanted: &[&str],
) -> Result<Vec<(String, PathBuf)>, String> {
    fn visit(
        name: &str,
        index: &BTreeMap<String, PathBuf>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<(String, PathBuf)>,
    ) -> Result<(), String> {
        if !seen.insert(name.to_string()) {
            return Ok(());
        }
        let path = index
            .get(name)
            .ok_or_else(|| format!("the kernel has no module {name}"))?;
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for dep in module_depends(&bytes) {
            visit(&dep, index, seen, order)?;
        }
        order.push((name.to_string(), path.clone()));
        Ok(())
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for w in wanted {
        visit(w, index, &mut seen, &mut order)?;
    }
    Ok(order)
}

/// The guest's `/init`: mount the pseudo file systems, load the NIC's modules, bring the
/// NIC up, say so, and leave a shell on the console.
fn init_script(modules: &[(String, PathBuf)]) -> String {
    let names: Vec<&str> = modules.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in {mods}; do insmod /lib/modules/$m.ko || echo "xde-vm: insmod $m failed"; done
ip link set lo up
for d in /sys/class/net/eth*; do ip link set "${{d##*/}}" up; done
stty -echo 2>/dev/null
echo "{READY}"
exec sh
"#,
        mods = names.join(" ")
    )
}

/// What `udhcpc` runs on each event: configure the lease on the interface (address,
/// classless static routes or else the router), and say what it got on the console.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
# Classless static routes (option 121), when offered, replace the router option (RFC 3442).
case "$1" in
  deconfig) ip -4 addr flush dev "$interface" ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip -4 route flush dev "$interface"
    ip -4 addr add "$ip/${mask:-32}" dev "$interface"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then
          ip -4 route add "$1" dev "$interface"
        else
          ip -4 route add "$1" via "$2" dev "$interface"
        fi
        shift 2
      done
    else
      for r in $router; do ip -4 route add default via "$r" dev "$interface"; break; done
    fi
    echo "xde-vm: lease $ip/$mask router $router routes $staticroutes dns $dns" ;;
esac
exit 0
"#;

/// Build an initramfs (an uncompressed `newc` cpio archive, made by `cpio`) at `out`:
/// the static busybox, the init script, the NIC's modules and `udhcpc`'s script.
pub fn initramfs(kernel: &Kernel, out: &Path) -> Result<(), String> {
    let busybox = Path::new("/bin/busybox");
    if !std::fs::read(busybox).is_ok_and(|b| is_static_elf(&b)) {
        return Err("/bin/busybox is missing or not static: install busybox-static".into());
    }
    let mut index = BTreeMap::new();
    module_index(&kernel.modules.join("kernel"), &mut index)?;
    let modules = load_order(&index, &GUEST_MODULES)?;
    let stage = out.with_extension("d");
    let _ = std::fs::remove_dir_all(&stage);
    let built = stage_tree(&stage, busybox, &modules).and_then(|()| {
        let out = out.to_str().ok_or("a path that is not UTF-8")?;
        let stage = stage.to_str().ok_or("a path that is not UTF-8")?;
        try_ok(
            "sh",
            &[
                "-c",
                "cd \"$1\" && find . | cpio --quiet -o -H newc -R 0:0 > \"$2\"",
                "sh",
                stage,
                out,
            ],
        )
        .map(drop)
    });
    let _ = std::fs::remove_dir_all(&stage);
    built
}

/// Whether `elf` is a 64-bit little-endian ELF executable that needs no program
/// interpreter (no `PT_INTERP` program header): it runs in an initramfs with no libraries.
fn is_static_elf(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if !elf.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..phnum).all(|i| u32_at(phoff + i * phentsize).is_some_and(|t| t != PT_INTERP))
}

fn stage_tree(stage: &Path, busybox: &Path, modules: &[(String, PathBuf)]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let e = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    for d in ["bin", "proc", "sys", "dev", "lib/modules", "etc/udhcpc"] {
        let p = stage.join(d);
        std::fs::create_dir_all(&p).map_err(|er| e(&p, er))?;
    }
    let files = [
        (
            stage.join("bin/busybox"),
            std::fs::read(busybox).map_err(|er| e(busybox, er))?,
        ),
        (stage.join("init"), init_script(modules).into_bytes()),
        (
            stage.join("etc/udhcpc/default.script"),
            UDHCPC_SCRIPT.as_bytes().to_vec(),
        ),
    ];
    for (p, bytes) in files {
        std::fs::write(&p, bytes).map_err(|er| e(&p, er))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|er| e(&p, er))?;
    }
    for (name, path) in modules {
        let to = stage.join("lib/modules").join(format!("{name}.ko"));
        std::fs::copy(path, &to).map_err(|er| e(&to, er))?;
    }
    Ok(())
}

/// How the VM's NIC reaches its port.
#[derive(Clone, Debug)]
pub enum Nic {
    /// The port's TAP, opened by name (`create-xde --vmm`).
    Tap(String),
    /// The port's vhost-user socket (`create-xde --vhost-user PATH`); the guest's memory
    /// is shared with the daemon (a memfd).
    VhostUser(PathBuf),
}

/// A VM to boot.
#[derive(Clone, Debug)]
pub struct VmSpec {
    pub kernel: Kernel,
    pub initramfs: PathBuf,
    pub nic: Nic,
    pub mac: String,
    pub memory_mib: u32,
}

/// A running VM and its console. Killed (by PID) when dropped.
#[derive(Debug)]
pub struct Vm {
    child: Child,
    stdin: ChildStdin,
    /// Everything the console printed so far.
    console: Arc<Mutex<String>>,
    /// How much of `console` earlier waits have consumed.
    seen: usize,
    keep: bool,
}

impl Vm {
    /// Boot `spec` in namespace `ns` (where its TAP is) and wait for the guest's init to
    /// say it is ready.
    pub fn boot(ns: &Netns, spec: &VmSpec, timeout: Duration) -> Result<Self, String> {
        let accel = std::env::var(ACCEL_ENV).unwrap_or_else(|_| "tcg".into());
        let mem = format!("{}M", spec.memory_mib);
        let mut cmd = ns.command(Path::new("qemu-system-x86_64"));
        match &spec.nic {
            Nic::Tap(name) => {
                cmd.args([
                    "-netdev",
                    &format!("tap,id=n0,ifname={name},script=no,downscript=no"),
                ]);
            }
            Nic::VhostUser(path) => {
                let path = path.to_str().ok_or("a socket path that is not UTF-8")?;
                cmd.args([
                    "-object",
                    &format!("memory-backend-memfd,id=mem0,size={mem},share=on"),
                    "-machine",
                    "memory-backend=mem0",
                    "-chardev",
                    &format!("socket,id=c0,path={path}"),
                    "-netdev",
                    "vhost-user,id=n0,chardev=c0",
                ]);
            }
        }
        // QEMU 7.2 under TCG crashes starting a vhost backend on a device with MSI-X
        // (msix_set_vector_notifiers, an irqfd path only KVM has): a vhost-user NIC
        // interrupts by INTx there.
        let vectors = match (&spec.nic, accel.as_str()) {
            (Nic::VhostUser(_), "tcg") => ",vectors=0",
            _ => "",
        };
        cmd.args(["-accel", &accel, "-m", &mem])
            .args(["-smp", "1", "-nodefaults", "-no-user-config", "-no-reboot"])
            .args(["-display", "none", "-serial", "stdio"])
            .arg("-kernel")
            .arg(&spec.kernel.vmlinuz)
            .arg("-initrd")
            .arg(&spec.initramfs)
            .args(["-append", "console=ttyS0 panic=-1 quiet"])
            .args([
                "-device",
                &format!("virtio-net-pci,netdev=n0,mac={}{vectors}", spec.mac),
            ]);
        Self::spawn(cmd, timeout)
    }

    fn spawn(mut cmd: std::process::Command, timeout: Duration) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting qemu-system-x86_64: {e}"))?;
        let console = Arc::new(Mutex::new(String::new()));
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("qemu's standard streams".into());
        };
        for mut r in [
            Box::new(stdout) as Box<dyn Read + Send>,
            Box::new(stderr) as Box<dyn Read + Send>,
        ] {
            let console = Arc::clone(&console);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = r.read(&mut buf) {
                    if let Ok(mut c) = console.lock() {
                        c.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        let mut vm = Self {
            child,
            stdin,
            console,
            seen: 0,
            keep: false,
        };
        vm.wait_for(READY, timeout)?;
        Ok(vm)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the console has printed.
    pub fn console(&self) -> String {
        self.console.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Wait until the console prints `text` (after what earlier waits consumed); returns
    /// what it printed up to and including it.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> Result<String, String> {
        let until = Instant::now() + timeout;
        loop {
            let console = self.console();
            if let Some(at) = console.get(self.seen..).and_then(|c| c.find(text)) {
                let end = self.seen + at + text.len();
                let out = console[self.seen..end].to_string();
                self.seen = end;
                return Ok(out);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the VM exited ({status}) before printing {text:?}; console:\n{}",
                    tail(&console)
                ));
            }
            if Instant::now() > until {
                return Err(format!(
                    "no {text:?} on the VM's console within {timeout:?}; console:\n{}",
                    tail(&console)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run shell command `cmd` in the guest; its output and exit status.
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> Result<(String, i32), String> {
        // The marker is printed by the shell with the status filled in: the command line
        // itself (were it echoed) holds `$?`, never digits after the marker.
        const MARK: &str = "@@xde-vm-rc=";
        self.seen = self.console().len();
        writeln!(self.stdin, "{cmd}; echo \"{MARK}$?@@\"")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("the VM's console: {e}"))?;
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let out = self.wait_for(MARK, left)?;
            let rest = self.wait_for("@@", left)?;
            if let Ok(rc) = rest.trim_end_matches("@@").parse::<i32>() {
                let out = out.trim_end_matches(MARK).to_string();
                return Ok((out, rc));
            }
        }
    }

    /// Run `cmd` in the guest, which must exit 0; its output.
    pub fn ok(&mut self, cmd: &str, timeout: Duration) -> Result<String, String> {
        match self.run(cmd, timeout)? {
            (out, 0) => Ok(out),
            (out, rc) => Err(format!("in the VM, {cmd:?} exited {rc}:\n{out}")),
        }
    }

    /// Lease an IPv4 address for `eth0` with `udhcpc` (its script configures the lease and
    /// prints it).
    pub fn udhcpc(&mut self, timeout: Duration) -> Result<Lease, String> {
        let out = self.ok("udhcpc -i eth0 -f -q -n -t 5 -T 2", timeout)?;
        Lease::parse(&out).ok_or_else(|| format!("udhcpc printed no lease:\n{out}"))
    }

    /// Fetch `url` with busybox `wget`; the SHA-256 of what arrived, in hex.
    pub fn wget_sha256(&mut self, url: &str, timeout: Duration) -> Result<String, String> {
        let out = self.ok(&format!("wget -q -O - {url} | sha256sum"), timeout)?;
        out.split_whitespace()
            .find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string)
            .ok_or_else(|| format!("no checksum from the VM:\n{out}"))
    }

    /// Ping `addr` three times; the summary line (`round-trip min/avg/max = ...`).
    pub fn ping(&mut self, addr: &str, timeout: Duration) -> Result<String, String> {
        let out = self.ok(&format!("ping -c 3 -W 5 {addr}"), timeout)?;
        Ok(out
            .lines()
            .rev()
            .find(|l| l.contains("min/avg/max"))
            .unwrap_or("")
            .trim()
            .to_string())
    }

    /// Leave the VM running when this guard drops.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

/// What the guest's `udhcpc` script reports of a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// `ADDRESS/PREFIX`.
    pub addr: String,
    pub router: String,
    /// The classless static routes, as udhcpc gives them: `DEST/LEN GATEWAY ...`.
    pub routes: String,
    pub dns: String,
}

impl Lease {
    /// From the script's line `xde-vm: lease A/P router R routes ... dns D`.
    fn parse(out: &str) -> Option<Self> {
        let line = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("xde-vm: lease "))?;
        let (addr, rest) = line.split_once(" router ")?;
        let (router, rest) = rest.split_once(" routes ")?;
        let (routes, dns) = rest.split_once(" dns ")?;
        Some(Self {
            addr: addr.into(),
            router: router.into(),
            routes: routes.into(),
            dns: dns.into(),
        })
    }
}

/// The last lines of a console, for an error message.
fn tail(console: &str) -> String {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Drop for Vm {
    fn drop(&mut self) {
        if !self.keep {
            // A VM has nothing to save: SIGKILL, by PID, and reap it.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_executables_are_told_from_dynamic_ones() {
        // A minimal ELF64 header with one program header of the given type.
        let elf = |p_type: u32| {
            let mut b = vec![0u8; 0x40 + 0x38];
            b[..6].copy_from_slice(b"\x7fELF\x02\x01");
            b[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
            b[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
            b[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
            b[0x40..0x44].copy_from_slice(&p_type.to_le_bytes());
            b
        };
        assert!(is_static_elf(&elf(1)));
        assert!(!is_static_elf(&elf(3)));
        assert!(!is_static_elf(&elf(1)[..0x41]));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        if let Ok(sh) = std::fs::read("/bin/sh") {
            assert!(!is_static_elf(&sh), "/bin/sh links dynamically on Debian");
        }
    }

    #[test]
    fn leases_are_read_from_the_script_line() {
        let out = "udhcpc: started\r\nxde-vm: lease 172.30.0.5/32 router 172.30.0.1 \
                   routes 172.30.0.1/32 0.0.0.0 0.0.0.0/0 172.30.0.1 dns 203.0.113.53\r\n/ # ";
        let l = Lease::parse(out).unwrap();
        assert_eq!(l.addr, "172.30.0.5/32");
        assert_eq!(l.router, "172.30.0.1");
        assert_eq!(l.routes, "172.30.0.1/32 0.0.0.0 0.0.0.0/0 172.30.0.1");
        assert_eq!(l.dns, "203.0.113.53");
        assert_eq!(Lease::parse("udhcpc: no lease, failing"), None);
    }

    #[test]
    fn depends_are_read_from_modinfo() {
        let ko = b"\x7fELF junk\0license=GPL\0depends=virtio_ring,net-failover\0vermagic=6.1\0";
        assert_eq!(module_depends(ko), ["virtio_ring", "net_failover"]);
        assert!(module_depends(b"\0depends=\0").is_empty());
        assert!(module_depends(b"no modinfo").is_empty());
    }

    #[test]
    fn modules_load_after_what_they_need() {
        let dir = std::env::temp_dir().join(crate::unique("xde-lab-mods"));
        let files: [(&str, &[u8]); 4] = [
            (
                "a/virtio_net.ko",
                b"depends=virtio_ring,virtio,net_failover\0",
            ),
            ("a/net_failover.ko", b"depends=failover\0"),
            ("b/failover.ko", b"depends=\0"),
            ("b/virtio.ko", b"depends=virtio_ring\0"),
        ];
        for (p, bytes) in files {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        std::fs::write(dir.join("b/virtio_ring.ko"), b"depends=\0").unwrap();
        let mut index = BTreeMap::new();
        module_index(&dir, &mut index).unwrap();
        let order = load_order(&index, &["virtio_net"]);
        let missing = load_order(&index, &["virtio_pci"]);
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<String> = order.unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "virtio_ring",
                "virtio",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
        assert!(missing.unwrap_err().contains("no module virtio_pci"));
    }
}
