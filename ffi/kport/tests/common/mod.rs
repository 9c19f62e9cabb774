//! Test topology (network namespaces, veth pairs) and hand-built frames.
//!
//! Every name carries the test's tag and the process id, and every object is removed by
//! name when its guard drops, also when the test fails.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kport::{AfPacket, VnetHdr};

/// Root, else print why the test does nothing.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("{test}: skipped (needs root for namespaces and veth pairs)");
    }
    root
}

/// Runs a command line with `sh -c`; returns success and output.
pub fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run sh");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

/// Runs a command line that must succeed.
pub fn must(cmd: &str) -> String {
    let (ok, out) = sh(cmd);
    assert!(ok, "`{cmd}` failed: {out}");
    out
}

/// Starts a command line in the background, its stdout piped.
pub fn spawn(cmd: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh")
}

/// Waits for `child` up to `limit`; kills it (by its own id) if it is still running.
pub fn wait_output(mut child: Child, limit: Duration) -> (bool, String) {
    let start = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().expect("try_wait") {
            let out = child.wait_with_output().expect("output");
            let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&out.stderr));
            return (out.status.success(), s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&out.stderr));
            return (false, format!("timed out: {s}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes, on drop, the namespaces and links it names.
#[derive(Default)]
pub struct Cleanup {
    pub netns: Vec<String>,
    pub links: Vec<String>,
    pub taps: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for t in &self.taps {
            for ns in &self.netns {
                sh(&format!(
                    "ip netns exec {ns} ip tuntap del dev {t} mode tap 2>/dev/null"
                ));
            }
            sh(&format!("ip tuntap del dev {t} mode tap 2>/dev/null"));
        }
        for ns in &self.netns {
            sh(&format!("ip netns del {ns} 2>/dev/null"));
        }
        for l in &self.links {
            sh(&format!("ip link del {l} 2>/dev/null"));
        }
    }
}

/// A veth pair: `host` in our namespace (up, no address), `inner` in namespace `ns` with
/// address `ip`/24, both up, IPv6 off (no stray router solicitations).
pub struct Veth {
    pub host: String,
    pub inner: String,
    pub ns: String,
    pub ip: String,
    pub mac: [u8; 6],
}

pub fn veth(cleanup: &mut Cleanup, tag: &str, ip: &str) -> Veth {
    let pid = std::process::id();
    let host = format!("kh{tag}{pid}");
    let inner = format!("kn{tag}{pid}");
    let ns = format!("kport-{tag}-{pid}");
    cleanup.netns.push(ns.clone());
    cleanup.links.push(host.clone());
    must(&format!("ip netns add {ns}"));
    must(&format!(
        "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
    ));
    must(&format!(
        "ip netns exec {ns} sysctl -qw net.ipv6.conf.default.disable_ipv6=1"
    ));
    must(&format!("ip link add {host} type veth peer name {inner}"));
    must(&format!("sysctl -qw net.ipv6.conf.{host}.disable_ipv6=1"));
    must(&format!("ip link set {inner} netns {ns}"));
    must(&format!("ip -n {ns} addr add {ip}/24 dev {inner}"));
    must(&format!("ip -n {ns} link set lo up"));
    must(&format!("ip -n {ns} link set {inner} up"));
    must(&format!("ip link set {host} up"));
    let mac = ns_mac(&ns, &inner);
    Veth {
        host,
        inner,
        ns,
        ip: ip.to_string(),
        mac,
    }
}

/// The MAC address of `dev` in namespace `ns`.
pub fn ns_mac(ns: &str, dev: &str) -> [u8; 6] {
    let s = must(&format!(
        "ip netns exec {ns} cat /sys/class/net/{dev}/address"
    ));
    parse_mac(s.trim())
}

pub fn parse_mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (o, p) in m.iter_mut().zip(s.split(':')) {
        *o = u8::from_str_radix(p, 16).expect("mac");
    }
    m
}

pub fn ip4(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>().expect("ipv4").octets()
}

/// The Internet checksum (RFC 1071) of `data`, folded, not complemented.
pub fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        acc += w as u32;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

pub fn csum(data: &[u8]) -> u16 {
    !(sum16(data, 0) as u16)
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// An ARP frame (RFC 826): op 1 request, 2 reply.
pub fn arp(
    op: u16,
    dst: [u8; 6],
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
) -> Vec<u8> {
    let mut f = eth(dst, sha, 0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa);
    f.resize(60, 0);
    f
}

/// An IPv4 header (RFC 791, no options) with its checksum.
pub fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload_len: usize) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload_len) as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// Collects frames from `port` for up to `limit` or until `done` says so.
pub fn rx_until(
    port: &mut AfPacket,
    limit: Duration,
    mut done: impl FnMut(&VnetHdr, &[u8]) -> bool,
) -> bool {
    let start = Instant::now();
    let mut found = false;
    while start.elapsed() < limit && !found {
        let n = port.rx_burst(32, |h, d| {
            if !found && done(&h, d) {
                found = true;
            }
        });
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    found
}

pub const PY: &str = "/usr/bin/python3";

/// Either port kind, as the switch loop of the tests drives it.
pub trait Port: Send {
    fn rx(&mut self, f: &mut dyn FnMut(VnetHdr, &[u8])) -> usize;
    fn tx(&mut self, h: &VnetHdr, d: &[u8]) -> bool;
    fn flush(&mut self);
}

impl Port for AfPacket {
    fn rx(&mut self, f: &mut dyn FnMut(VnetHdr, &[u8])) -> usize {
        self.rx_burst(32, f)
    }
    fn tx(&mut self, h: &VnetHdr, d: &[u8]) -> bool {
        self.tx_queue(h, &[d])
    }
    fn flush(&mut self) {
        self.tx_flush().expect("tx_flush");
    }
}

impl Port for kport::Tap {
    fn rx(&mut self, f: &mut dyn FnMut(VnetHdr, &[u8])) -> usize {
        self.rx_burst(32, f)
    }
    fn tx(&mut self, h: &VnetHdr, d: &[u8]) -> bool {
        kport::Tap::tx(self, h, &[d])
    }
    fn flush(&mut self) {}
}

/// What crossed the switch in one direction.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub frames: u64,
    pub needs_csum: u64,
    pub gso_tcpv4: u64,
    /// GSO TCPV4 frames longer than a default rx slot holds (1972 bytes): those the copy
    /// path reads (a super-frame of one short segment fits a slot).
    pub gso_tcpv4_long: u64,
    pub gso_sizes: std::collections::BTreeSet<u16>,
    pub max_len: usize,
    pub refused: u64,
}

impl Seen {
    fn record(&mut self, h: &VnetHdr, d: &[u8]) {
        self.frames += 1;
        if h.needs_csum() {
            self.needs_csum += 1;
        }
        if h.gso_type & !kport::vnet::GSO_ECN == kport::vnet::GSO_TCPV4 {
            self.gso_tcpv4 += 1;
            if d.len() > 1972 {
                self.gso_tcpv4_long += 1;
            }
            self.gso_sizes.insert(h.gso_size);
        }
        self.max_len = self.max_len.max(d.len());
    }
}

/// Forwards every frame between `a` and `b` (a two-port switch) until `stop`.
pub fn switch(
    a: &mut dyn Port,
    b: &mut dyn Port,
    stop: &std::sync::atomic::AtomicBool,
) -> (Seen, Seen) {
    let (mut ab, mut ba) = (Seen::default(), Seen::default());
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let n = a.rx(&mut |h, d| {
            ab.record(&h, d);
            if !b.tx(&h, d) {
                ab.refused += 1;
            }
        });
        b.flush();
        let m = b.rx(&mut |h, d| {
            ba.record(&h, d);
            if !a.tx(&h, d) {
                ba.refused += 1;
            }
        });
        a.flush();
        if n + m == 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    (ab, ba)
}

/// A TCP transfer of `mib` MiB from namespace `from` to `to_ip` (listening in namespace
/// `to`), through whatever connects them; returns (sent, received) as "bytes sha256".
pub fn tcp_transfer(from: &str, to: &str, to_ip: &str, mib: usize) -> (String, String) {
    let server = format!(
        "ip netns exec {to} {PY} -c '
import socket,hashlib
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind((\"{to_ip}\",5201)); s.listen(1); s.settimeout(30)
c,_=s.accept(); c.settimeout(30); h=hashlib.sha256(); n=0
while True:
    b=c.recv(1<<20)
    if not b: break
    h.update(b); n+=len(b)
print(n,h.hexdigest())
'"
    );
    let client = format!(
        "ip netns exec {from} {PY} -c '
import socket,hashlib,time
data=hashlib.sha256(b\"kport\").digest()*({mib}<<15)
for i in range(100):
    try:
        s=socket.create_connection((\"{to_ip}\",5201),timeout=30); break
    except OSError: time.sleep(0.1)
s.sendall(data); s.close()
print(len(data),hashlib.sha256(data).hexdigest())
'"
    );
    let srv = spawn(&server);
    let cli = spawn(&client);
    let (cok, cout) = wait_output(cli, Duration::from_secs(60));
    let (sok, sout) = wait_output(srv, Duration::from_secs(10));
    assert!(cok, "client: {cout}");
    assert!(sok, "server: {sout}");
    (cout.trim().to_string(), sout.trim().to_string())
}

/// Runs `f` on a thread inside network namespace `ns` (setns(2) moves that thread only)
/// and returns what it returns.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("open netns");
            // SAFETY: a valid namespace descriptor; only this thread changes namespace.
            let r =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    })
}

/// Sends `frames` in order out of `dev` in namespace `ns` through a packet socket with vnet
/// headers (so the namespace's kernel transmits GSO frames whole); returns the time just
/// before the first send.
pub fn send_from(ns: &str, dev: &str, frames: &[(VnetHdr, Vec<u8>)]) -> Instant {
    in_netns(ns, || {
        let mut tx = kport::AfPacketTx::open(dev).expect("send socket in the namespace");
        let start = Instant::now();
        for (i, (h, f)) in frames.iter().enumerate() {
            assert!(tx.send(h, &[f]), "send {i}: {:?}", tx.stats());
        }
        start
    })
}

/// A broadcast test frame from `src` (EtherType 0x88b5, local experimental): with an
/// 802.1Q tag of TCI `tci` if given, `marker` at the start of its payload, `len` bytes in
/// all.
pub fn marked(src: [u8; 6], tci: Option<u16>, marker: &str, len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src);
    if let Some(tci) = tci {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(marker.as_bytes());
    let mut i = 0u8;
    while f.len() < len {
        f.push(i);
        i = i.wrapping_add(1);
    }
    f
}

/// Waits up to `ms` for `fd` to be readable (poll(2), POLLIN).
pub fn readable(fd: &impl std::os::fd::AsRawFd, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    r == 1 && pfd.revents & libc::POLLIN != 0
}
