//! AF_PACKET ports against real kernels in network namespaces (root only).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use kport::{vnet, AfPacket, AfPacketConfig, AfPacketTx, Error, VnetHdr};

const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0x77, 0, 1];

#[test]
fn open_names_a_missing_interface() {
    let e = AfPacket::open("kport-nope0", &AfPacketConfig::default()).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)));
    assert_eq!(e.to_string(), "interface kport-nope0 not found");
}

/// A ping from the namespace to an address only we answer: we see its ARP request with the
/// expected bytes, answer it and the echo requests with hand-built frames, and ping
/// succeeds, so the namespace's kernel took our tx.
#[test]
fn ping_answered_through_the_rings() {
    if root_or_skip("ping_answered_through_the_rings") {
        ping_answered("p", "10.77.1.2", false);
    }
}

/// The same, with the answers sent through a send-only socket ([`AfPacketTx`], how a
/// worker that does not own the port's rings sends on it) while the rings receive.
#[test]
fn ping_answered_through_a_send_socket() {
    if root_or_skip("ping_answered_through_a_send_socket") {
        ping_answered("q", "10.77.9.2", true);
    }
}

fn ping_answered(tag: &str, addr: &str, send_socket: bool) {
    let mut c = Cleanup::default();
    let v = veth(&mut c, tag, addr);
    let mut port = AfPacket::open(&v.host, &AfPacketConfig::default()).unwrap();
    let mut send = send_socket.then(|| AfPacketTx::open(&v.host).unwrap());
    let me_s = format!("{}.1", addr.rsplit_once('.').unwrap().0);
    let ping = spawn(&format!(
        "ip netns exec {} ping -c 3 -i 0.2 -W 2 {me_s}",
        v.ns
    ));
    let (me, peer) = (ip4(&me_s), ip4(addr));
    let mut saw_arp = false;
    let mut echoes = 0;
    let start = std::time::Instant::now();
    while echoes < 3 && start.elapsed() < Duration::from_secs(10) {
        let mut out: Vec<Vec<u8>> = Vec::new();
        port.rx_burst(32, |h, d| {
            assert!(!h.is_gso());
            if d.len() >= 42 && d[12..14] == [8, 6] && d[20..22] == [0, 1] && d[38..42] == me {
                // Broadcast ARP request from the namespace's MAC and address (RFC 826).
                assert_eq!(&d[0..6], &[0xff; 6]);
                assert_eq!(&d[6..12], &v.mac);
                assert_eq!(&d[14..20], &[0, 1, 8, 0, 6, 4]);
                assert_eq!(&d[22..28], &v.mac);
                assert_eq!(&d[28..32], &peer);
                saw_arp = true;
                out.push(arp(2, v.mac, OUR_MAC, me, v.mac, peer));
            } else if d.len() >= 42 && d[12..14] == [8, 0] && d[23] == 1 && d[30..34] == me {
                // ICMP echo request (RFC 792): answer with type 0.
                assert_eq!(&d[0..6], &OUR_MAC);
                let icmp_at = 14 + ((d[14] & 0xf) as usize) * 4;
                let mut icmp = d[icmp_at..].to_vec();
                assert_eq!(icmp[0], 8);
                icmp[0] = 0;
                icmp[2..4].copy_from_slice(&[0, 0]);
                let cs = csum(&icmp);
                icmp[2..4].copy_from_slice(&cs.to_be_bytes());
                let mut f = eth(v.mac, OUR_MAC, 0x0800);
                f.extend(ipv4(1, me, peer, icmp.len()));
                f.extend(icmp);
                out.push(f);
                echoes += 1;
            }
        });
        for f in &out {
            let parts = [&f[..14], &f[14..]];
            match &mut send {
                Some(tx) => assert!(tx.send(&VnetHdr::default(), &parts)),
                None => assert!(port.tx_queue(&VnetHdr::default(), &parts)),
            }
        }
        port.tx_flush().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let (ok, out) = wait_output(ping, Duration::from_secs(10));
    assert!(saw_arp, "no ARP request seen");
    assert!(ok, "ping failed: {out}");
    assert!(out.contains("3 received"), "{out}");
    let st = port.stats().unwrap();
    eprintln!("ping: {st:?}");
    assert!(st.rx_packets >= 4);
    assert_eq!((st.rx_truncated, st.rx_malformed, st.tx_full), (0, 0, 0));
    match &send {
        Some(tx) => {
            let t = tx.stats();
            eprintln!("ping (send socket): {t:?}");
            assert!(t.tx_packets >= 4 && t.tx_full == 0 && t.tx_errors == 0);
            assert_eq!(st.tx_packets, 0, "the rings sent nothing");
        }
        None => assert!(st.tx_packets >= 4),
    }
}

/// A UDP datagram with only the pseudo-header sum in its checksum field and NEEDS_CSUM
/// set, as a pod with checksum offload sends it, is taken by the namespace's kernel.
#[test]
fn tx_of_a_partial_checksum_is_accepted() {
    if !root_or_skip("tx_of_a_partial_checksum_is_accepted") {
        return;
    }
    let mut c = Cleanup::default();
    let v = veth(&mut c, "u", "10.77.3.2");
    let mut port = AfPacket::open(&v.host, &AfPacketConfig::default()).unwrap();
    let listener = spawn(&format!(
        "ip netns exec {} {PY} -c '
import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind((\"10.77.3.2\",9999)); s.settimeout(5)
print(\"ready\",flush=True)
d,a=s.recvfrom(2048); print(d.decode(),a[0],a[1])
'",
        v.ns
    ));
    std::thread::sleep(Duration::from_millis(500));
    let (src, dst) = (ip4("10.77.3.1"), ip4("10.77.3.2"));
    let payload = b"kport partial checksum";
    let ulen = 8 + payload.len();
    let mut udp = Vec::new();
    udp.extend_from_slice(&4242u16.to_be_bytes());
    udp.extend_from_slice(&9999u16.to_be_bytes());
    udp.extend_from_slice(&(ulen as u16).to_be_bytes());
    // Pseudo-header sum (RFC 768), not complemented: what CHECKSUM_PARTIAL leaves.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(ulen as u16).to_be_bytes());
    udp.extend_from_slice(&(sum16(&pseudo, 0) as u16).to_be_bytes());
    udp.extend_from_slice(payload);
    let mut f = eth(v.mac, OUR_MAC, 0x0800);
    f.extend(ipv4(17, src, dst, udp.len()));
    f.extend(udp);
    let h = VnetHdr {
        flags: vnet::F_NEEDS_CSUM,
        csum_start: 34,
        csum_offset: 6,
        ..VnetHdr::default()
    };
    for _ in 0..3 {
        assert!(port.tx_queue(&h, &[&f]));
        port.tx_flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, out) = wait_output(listener, Duration::from_secs(10));
    assert!(ok, "listener: {out}");
    assert!(
        out.contains("kport partial checksum 10.77.3.1 4242"),
        "{out}"
    );
}

/// Frames sent from the namespace, every other one with an 802.1Q tag (which the kernel
/// takes out on receive): poll(2) on the port's descriptor wakes, and rx_burst, called with
/// a burst of 3 so that the ring is read across calls, yields all of them in order, the
/// tagged ones with their tag back in place, byte for byte.
#[test]
fn vlan_tags_put_back_across_bursts() {
    if !root_or_skip("vlan_tags_put_back_across_bursts") {
        return;
    }
    let mut c = Cleanup::default();
    let v = veth(&mut c, "v", "10.77.4.2");
    let mut port = AfPacket::open(&v.host, &AfPacketConfig::default()).unwrap();
    const N: usize = 20;
    must(&format!(
        "ip netns exec {} {PY} -c '
import socket
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind((\"{}\",0))
src=bytes.fromhex(open(\"/sys/class/net/{}/address\").read().strip().replace(\":\",\"\"))
for i in range({N}):
    tag=b\"\\x81\\x00\\x20\\x64\" if i%2==0 else b\"\"
    s.send(b\"\\xff\"*6+src+tag+b\"\\x88\\xb5\"+(b\"kport-vlan-%02d\" % i).ljust(46,b\"\\x00\"))
'",
        v.ns, v.inner, v.inner
    ));
    let want = |i: usize| {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&v.mac);
        if i % 2 == 0 {
            f.extend_from_slice(&[0x81, 0x00, 0x20, 0x64]);
        }
        f.extend_from_slice(&[0x88, 0xb5]);
        let mut p = format!("kport-vlan-{i:02}").into_bytes();
        p.resize(46, 0);
        f.extend_from_slice(&p);
        f
    };
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&port),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, 2000) };
    assert_eq!(r, 1, "poll did not wake");
    let mut got: Vec<(VnetHdr, Vec<u8>)> = Vec::new();
    let mut calls = 0;
    let start = std::time::Instant::now();
    while got.len() < N && start.elapsed() < Duration::from_secs(5) {
        let n = port.rx_burst(3, |h, d| {
            if d.windows(11).any(|w| w == b"kport-vlan-") {
                got.push((h, d.to_vec()));
            }
        });
        assert!(n <= 3);
        calls += 1;
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(got.len(), N, "frames seen");
    for (i, (h, d)) in got.iter().enumerate() {
        assert_eq!(d, &want(i), "frame {i}");
        assert_eq!(*h, VnetHdr::default());
    }
    eprintln!("vlan: {N} frames in {calls} rx_burst(3) calls; tags PCP 1 VID 100 put back");
}

/// Two namespaces joined by a two-port switch made of two af_packet ports; a TCP transfer
/// with the pods' default offloads on. The switch must see partial checksums and TCPv4
/// GSO frames, pass them on as they are, and the bytes must arrive intact.
fn tcp_through_switch(tag: &str, subnet: u8, cfg: AfPacketConfig) -> (kport::AfPacketStats, u64) {
    let mut c = Cleanup::default();
    let a = veth(&mut c, &format!("{tag}a"), &format!("10.77.{subnet}.1"));
    let b = veth(&mut c, &format!("{tag}b"), &format!("10.77.{subnet}.2"));
    // Default offloads: nothing turned off. Show what they are.
    let feats = must(&format!(
        "ip netns exec {} ethtool -k {} | grep -E '^(tx-checksumming|tcp-segmentation-offload):'",
        a.ns, a.inner
    ));
    eprintln!("{tag}: sender offloads: {}", feats.replace('\n', "; "));
    let mut pa = AfPacket::open(&a.host, &cfg).unwrap();
    let mut pb = AfPacket::open(&b.host, &cfg).unwrap();
    let stop = AtomicBool::new(false);
    let ((ab, ba), (sent, got)) = std::thread::scope(|s| {
        let sw = s.spawn(|| switch(&mut pa, &mut pb, &stop));
        let r = tcp_transfer(&a.ns, &b.ns, &b.ip, 16);
        stop.store(true, Ordering::Relaxed);
        (sw.join().unwrap(), r)
    });
    eprintln!("{tag}: a->b {ab:?}\n{tag}: b->a {ba:?}");
    assert_eq!(sent, got, "bytes differ");
    assert!(ab.needs_csum > 0, "no NEEDS_CSUM frame seen");
    assert!(ab.gso_tcpv4 > 0, "no GSO TCPV4 frame seen");
    assert!(ab.gso_sizes.contains(&1448), "gso sizes {:?}", ab.gso_sizes);
    assert!(ab.max_len > 9000, "largest frame {}", ab.max_len);
    let st = pb.stats().unwrap();
    let sa = pa.stats().unwrap();
    eprintln!("{tag}: port a {sa:?}\n{tag}: port b {st:?}");
    assert_eq!(sa.rx_truncated + sa.rx_malformed + sa.rx_copy_errors, 0);
    // Every GSO frame from the sender was longer than a 2 KiB rx slot: read whole from the
    // socket.
    assert!(sa.rx_copied >= ab.gso_tcpv4_long, "{sa:?} {ab:?}");
    (st, ab.gso_tcpv4)
}

/// Default rings: GSO frames are larger than a 2 KiB tx slot and go through the side socket.
#[test]
fn tcp_gso_through_default_rings() {
    if !root_or_skip("tcp_gso_through_default_rings") {
        return;
    }
    let (st, gso) = tcp_through_switch("g", 5, AfPacketConfig::default());
    assert!(st.tx_oversize > 0 && st.tx_oversize <= gso, "{st:?}");
}

/// 64 KiB tx slots: every TSO frame goes through the tx ring, none through the side socket.
#[test]
fn tcp_gso_through_64k_tx_slots() {
    if !root_or_skip("tcp_gso_through_64k_tx_slots") {
        return;
    }
    let cfg = AfPacketConfig {
        tx_frame_size: 65536,
        tx_frame_count: 64,
        ..AfPacketConfig::default()
    };
    let (st, _) = tcp_through_switch("h", 6, cfg);
    assert_eq!(st.tx_oversize, 0, "{st:?}");
}

/// Reads every frame the port has now (no waiting), as (offload header, bytes).
fn drain(port: &mut AfPacket, burst: usize) -> Vec<(VnetHdr, Vec<u8>)> {
    let mut out = Vec::new();
    while port.rx_burst(burst, |h, d| out.push((h, d.to_vec()))) > 0 {}
    out
}

/// Waits (poll(2), up to 5 s a round) until the port has yielded every frame in `want`, and
/// returns what it yielded of them, in order of arrival (frames not in `want` are left out).
fn receive(port: &mut AfPacket, burst: usize, want: &[Vec<u8>]) -> Vec<(VnetHdr, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got: Vec<(VnetHdr, Vec<u8>)> = Vec::new();
    while got.len() < want.len() && Instant::now() < deadline {
        if !readable(&*port, 5000) {
            break;
        }
        got.extend(
            drain(port, burst)
                .into_iter()
                .filter(|(_, d)| want.contains(d)),
        );
    }
    got
}

/// A lone frame wakes poll(2) and is in the next rx_burst: the kernel hands a TPACKET_V2
/// slot over as soon as it wrote it (a V3 block waited for its retire timer). Twenty
/// rounds, sent by a thread that stays in the namespace with its socket open; the time from
/// send to rx is printed, not asserted.
#[test]
fn a_lone_frame_is_read_as_soon_as_it_arrives() {
    if !root_or_skip("a_lone_frame_is_read_as_soon_as_it_arrives") {
        return;
    }
    let mut c = Cleanup::default();
    let v = veth(&mut c, "l", "10.77.10.2");
    let mut port = AfPacket::open(&v.host, &AfPacketConfig::default()).unwrap();
    let (to_sender, frames) = std::sync::mpsc::channel::<Vec<u8>>();
    let (sent_at, sent) = std::sync::mpsc::channel::<Instant>();
    let mut waits = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            in_netns(&v.ns, move || {
                let mut tx = AfPacketTx::open(&v.inner).expect("send socket in the namespace");
                for f in frames {
                    let t = Instant::now();
                    assert!(tx.send(&VnetHdr::default(), &[&f]), "{:?}", tx.stats());
                    sent_at.send(t).expect("report send time");
                }
            })
        });
        for round in 0..20 {
            let f = marked(v.mac, None, &format!("kport-lone-{round:02}"), 60);
            to_sender.send(f.clone()).unwrap();
            assert!(readable(&port, 5000), "round {round}: poll did not wake");
            let mut got = None;
            let n = port.rx_burst(32, |h, d| {
                if d == &f[..] {
                    got = Some((h, Instant::now()));
                }
            });
            assert!(n >= 1, "round {round}: poll woke, rx_burst found nothing");
            let (h, at) = got.unwrap_or_else(|| panic!("round {round}: frame not in the burst"));
            assert_eq!(h, VnetHdr::default());
            let t = sent.recv().unwrap();
            waits.push(at.saturating_duration_since(t));
        }
        drop(to_sender);
    });
    waits.sort();
    eprintln!(
        "lone frame, send to rx (20 rounds): median {:?}, max {:?}",
        waits[10], waits[19]
    );
    let st = port.stats().unwrap();
    assert_eq!(
        st.rx_copied + st.rx_truncated + st.rx_kernel_drops,
        0,
        "{st:?}"
    );
}

/// A TCP/IPv4 GSO frame of 63,766 bytes (44 segments of 1448) with a partial checksum,
/// sent whole by the namespace's kernel (a packet socket with vnet headers there), between
/// two small frames: it comes through the copy path whole, with its offload header, in
/// order between them.
#[test]
fn a_gso_frame_is_copied_whole_in_order() {
    if !root_or_skip("a_gso_frame_is_copied_whole_in_order") {
        return;
    }
    let mut c = Cleanup::default();
    let v = veth(&mut c, "o", "10.77.11.2");
    let mut port = AfPacket::open(&v.host, &AfPacketConfig::default()).unwrap();
    let (src, dst) = (ip4("10.77.11.2"), ip4("10.77.11.1"));
    let payload: Vec<u8> = (0..1448 * 44).map(|i| (i * 7 % 251) as u8).collect();
    let tcp_len = 20 + payload.len();
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&40000u16.to_be_bytes());
    tcp.extend_from_slice(&5201u16.to_be_bytes());
    tcp.extend_from_slice(&1u32.to_be_bytes());
    tcp.extend_from_slice(&1u32.to_be_bytes());
    tcp.extend_from_slice(&[0x50, 0x18, 0xff, 0xff]);
    // Pseudo-header sum (RFC 793 §3.1), not complemented: what CHECKSUM_PARTIAL leaves.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
    tcp.extend_from_slice(&(sum16(&pseudo, 0) as u16).to_be_bytes());
    tcp.extend_from_slice(&[0, 0]);
    let mut gso = eth(OUR_MAC, v.mac, 0x0800);
    gso.extend(ipv4(6, src, dst, tcp_len));
    gso.extend(tcp);
    gso.extend(payload);
    let gso_hdr = VnetHdr {
        flags: vnet::F_NEEDS_CSUM,
        gso_type: vnet::GSO_TCPV4,
        hdr_len: 54,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
    };
    let before = marked(v.mac, None, "kport-before", 60);
    let after = marked(v.mac, None, "kport-after", 60);
    let want = [before.clone(), gso.clone(), after.clone()];
    send_from(
        &v.ns,
        &v.inner,
        &[
            (VnetHdr::default(), before.clone()),
            (gso_hdr, gso.clone()),
            (VnetHdr::default(), after.clone()),
        ],
    );
    let got = receive(&mut port, 32, &want);
    let lens: Vec<usize> = got.iter().map(|(_, d)| d.len()).collect();
    assert_eq!(lens, [60, gso.len(), 60], "frames in order of arrival");
    assert_eq!(got[0].1, before);
    assert!(got[1].1 == gso, "the GSO frame's bytes differ");
    assert_eq!(got[2].1, after);
    let h = got[1].0;
    eprintln!("gso frame: {} bytes, {h:?}", gso.len());
    assert!(h.needs_csum() && h.is_gso(), "{h:?}");
    assert_eq!(
        (h.gso_type, h.gso_size, h.csum_start, h.csum_offset),
        (vnet::GSO_TCPV4, 1448, 34, 16)
    );
    let st = port.stats().unwrap();
    eprintln!("gso: {st:?}");
    assert_eq!(
        (st.rx_copied, st.rx_truncated, st.rx_copy_errors),
        (1, 0, 0)
    );
}

/// Frames of 60 and 4000 bytes (MTU 9000), every other one with an 802.1Q tag: the small
/// ones come through ring slots, the large ones through the copy path (their tag from
/// PACKET_AUXDATA); all keep their tag and their order, read 3 at a time.
#[test]
fn vlan_tags_kept_through_ring_and_copy_path() {
    if !root_or_skip("vlan_tags_kept_through_ring_and_copy_path") {
        return;
    }
    let mut c = Cleanup::default();
    let v = veth(&mut c, "w", "10.77.12.2");
    must(&format!("ip link set {} mtu 9000", v.host));
    must(&format!("ip -n {} link set {} mtu 9000", v.ns, v.inner));
    let mut port = AfPacket::open(&v.host, &AfPacketConfig::default()).unwrap();
    let frames: Vec<Vec<u8>> = (0..12u16)
        .map(|i| {
            let tci = (i % 2 == 0).then_some(0x2000 | (100 + i));
            let len = if i % 3 == 0 { 4000 } else { 60 };
            marked(v.mac, tci, &format!("kport-tag-{i:02}"), len)
        })
        .collect();
    let out: Vec<(VnetHdr, Vec<u8>)> = frames
        .iter()
        .map(|f| (VnetHdr::default(), f.clone()))
        .collect();
    send_from(&v.ns, &v.inner, &out);
    let got = receive(&mut port, 3, &frames);
    assert_eq!(got.len(), frames.len(), "frames seen");
    for (i, ((h, d), f)) in got.iter().zip(&frames).enumerate() {
        assert!(d == f, "frame {i} ({} bytes) differs", f.len());
        assert_eq!(*h, VnetHdr::default(), "frame {i}");
    }
    let st = port.stats().unwrap();
    eprintln!("vlan ring + copy: {st:?}");
    assert_eq!(
        (st.rx_copied, st.rx_truncated, st.rx_copy_errors),
        (4, 0, 0)
    );
}

/// A ring of 32 slots, not read while 100 frames arrive: the kernel fills it and drops
/// the rest, and says so in kernel_drops (read from another thread); the ring then yields
/// the first 32 in order, and after that takes and yields new frames as before.
#[test]
fn a_full_ring_drops_counts_and_recovers() {
    if !root_or_skip("a_full_ring_drops_counts_and_recovers") {
        return;
    }
    let mut c = Cleanup::default();
    let v = veth(&mut c, "f", "10.77.13.2");
    let cfg = AfPacketConfig {
        rx_frame_count: 32,
        ..AfPacketConfig::default()
    };
    let mut port = AfPacket::open(&v.host, &cfg).unwrap();
    let batch = |name: &str, n: usize| -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| marked(v.mac, None, &format!("kport-{name}-{i:03}"), 60))
            .collect()
    };
    let with_hdr = |fs: &[Vec<u8>]| -> Vec<(VnetHdr, Vec<u8>)> {
        fs.iter().map(|f| (VnetHdr::default(), f.clone())).collect()
    };
    let first = batch("full", 100);
    send_from(&v.ns, &v.inner, &with_hdr(&first));

    // The drops as another thread sees them (the rx side is idle meanwhile).
    let mut drops = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while drops < 68 && Instant::now() < deadline {
        drops += std::thread::scope(|s| s.spawn(|| port.kernel_drops()).join().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let all = drain(&mut port, 32);
    let got: Vec<&Vec<u8>> = all
        .iter()
        .map(|(_, d)| d)
        .filter(|d| first.contains(d))
        .collect();
    drops += port.kernel_drops().unwrap();
    eprintln!(
        "full ring: {} frames read ({} of the batch), {drops} dropped",
        all.len(),
        got.len()
    );
    assert_eq!(all.len(), 32, "a full ring holds 32");
    assert!(drops >= 68, "kernel drops {drops}");
    assert_eq!(got.len() as u64 + drops, 100);
    for (i, d) in got.iter().enumerate() {
        assert!(**d == first[i], "frame {i} out of order");
    }

    // Not wedged: new frames come through.
    let again = batch("again", 10);
    send_from(&v.ns, &v.inner, &with_hdr(&again));
    let got = receive(&mut port, 4, &again);
    assert_eq!(got.len(), 10);
    for (i, (_, d)) in got.iter().enumerate() {
        assert!(*d == again[i], "frame {i} after the drops out of order");
    }
    assert_eq!(
        port.kernel_drops().unwrap(),
        0,
        "no drop since the last read"
    );
    let st = port.stats().unwrap();
    eprintln!("full ring: {st:?}");
    assert_eq!(st.rx_kernel_drops, drops);
    assert_eq!(st.rx_packets, 42);
}
