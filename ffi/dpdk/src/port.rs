//! Ethernet ports: probe a device from devargs, configure queues, start, stop, close.
//!
//! Thread safety: a [`Port`] is owned by the control thread, which alone configures, starts,
//! stops and closes it. Workers get [`PortQueue`] handles; each rx queue is polled by one
//! thread and each tx queue is used by one thread (the callers of the unsafe
//! [`Burst::rx`](crate::Burst::rx) / [`Burst::tx`](crate::Burst::tx) promise it; the
//! dataplane's assignment keeps the promise).

use std::ffi::{CStr, CString};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::mempool::Mempool;

/// How many ethdev ports DPDK can hold at once (RTE_MAX_ETHPORTS).
pub const MAX_PORTS: usize = dpdk_sys::RTE_MAX_ETHPORTS as usize;

/// A queue of a started port, as used by a worker.
///
/// Invariant: a handle comes only from [`Port::rx_queue`] / [`Port::tx_queue`], so its
/// queue exists on that port. A handle is only a name (`Copy`, like the port id it holds):
/// using it is [`Burst::rx`](crate::Burst::rx) / [`Burst::tx`](crate::Burst::tx), unsafe
/// fns whose callers promise that one thread at a time uses a queue and that the port is
/// still open. The dataplane keeps that promise by giving each rx queue to one worker for
/// the port's lifetime, each worker its own tx queue of every port, and by closing a port
/// only once every worker has passed a quiescent point with a plan without it (a port a
/// worker may still use is leaked instead: its id is then never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortQueue {
    pub(crate) port: u16,
    pub(crate) queue: u16,
}

impl PortQueue {
    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }
}

/// Queue and device settings for [`Port::open`].
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u16>,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mac: None,
            mtu: None,
        }
    }
}

/// Link state as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
}

/// Device counters (rte_eth_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_nombuf: u64,
}

/// A started ethdev port made from a device probed for it. Closing it (or dropping it)
/// stops the port, closes it and removes the device, so a probe never leaves a half-made
/// port behind.
#[derive(Debug)]
pub struct Port {
    id: u16,
    bus: String,
    device: String,
    config: PortConfig,
    _pool: Arc<Mempool>,
    open: bool,
}

/// How much of DPDK's log of a failed call is kept for the error message.
const LOG_BYTES: usize = 4096;

/// Runs `f` with DPDK's log captured: returns f's result and what DPDK logged meanwhile
/// (also written on to the usual log stream, as always). Captures take turns process-wide.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    /// An open capture; ended once, by `end` or when dropped (if `f` unwinds).
    struct Capture {
        buf: Vec<u8>,
        open: bool,
    }
    impl Capture {
        fn end(&mut self) {
            if std::mem::take(&mut self.open) {
                // SAFETY: paired with the begin in `logged`, on this thread (a Capture
                // never leaves the stack frame that began it); buf is writable for its
                // length.
                unsafe {
                    dpdk_sys::vs_log_capture_end(self.buf.as_mut_ptr().cast(), self.buf.len())
                };
            }
        }
    }
    impl Drop for Capture {
        fn drop(&mut self) {
            self.end();
        }
    }
    // SAFETY: no preconditions; the Capture below ends it on every path.
    unsafe { dpdk_sys::vs_log_capture_begin() };
    let mut capture = Capture {
        buf: vec![0u8; LOG_BYTES],
        open: true,
    };
    let out = f();
    capture.end();
    let text = CStr::from_bytes_until_nul(&capture.buf)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    (out, text)
}

/// The last lines (at most three) of DPDK's `log` that say why something failed: those
/// naming `device` (other threads may have logged meanwhile), or, if none does and
/// `any_line`, the last ones (drivers' queue set-up messages often name no device);
/// without DPDK's "EAL: " prefix.
fn reasons(log: &str, device: &str, any_line: bool) -> Vec<String> {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let naming: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(device))
        .collect();
    let pick = if naming.is_empty() && any_line {
        &lines
    } else {
        &naming
    };
    pick.iter()
        .rev()
        .take(3)
        .rev()
        .map(|l| l.strip_prefix("EAL: ").unwrap_or(l).to_string())
        .collect()
}

/// Why a probe failed, in words: what DPDK logged about `device` while probing it (drivers
/// mostly return a bare -1 and say why only in the log), else the status code.
fn probe_failure(ret: i32, device: &str, log: &str) -> String {
    if log
        .lines()
        .any(|l| l.contains(device) && l.contains("failed to parse device"))
    {
        return format!(
            "no DPDK driver takes a device named {device:?} (DPDK: failed to parse device)"
        );
    }
    let said = reasons(log, device, false);
    let status = if ret == -1 {
        "the driver refused the device".to_string()
    } else {
        crate::error::strerror(-ret)
    };
    if said.is_empty() {
        format!("{status} (DPDK logged no reason)")
    } else {
        format!("{status}: {}", said.join("; "))
    }
}

impl Port {
    /// Probes `devargs` (e.g. `net_af_packet0,iface=veth0` or a PCI address), configures
    /// its queues with mbufs from `pool`, sets MAC/MTU, turns promiscuous mode on and
    /// starts it. On any failure everything done so far is undone.
    pub fn open(
        _eal: &crate::Eal,
        devargs: &str,
        pool: Arc<Mempool>,
        config: PortConfig,
    ) -> Result<Port> {
        let device = devargs.split(',').next().unwrap_or_default().to_string();
        let bus = if device.starts_with("net_") || device.starts_with("eth_") {
            "vdev"
        } else {
            "pci"
        };
        let op = format!("probe {devargs:?}");
        let cargs =
            CString::new(devargs).map_err(|_| Error::msg(&op, "devargs contain a NUL byte"))?;
        let cdev = CString::new(device.as_str())
            .map_err(|_| Error::msg(&op, "name contains a NUL byte"))?;
        let mut existing: u16 = 0;
        // SAFETY: cdev is a valid C string; existing is a valid out pointer.
        if unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cdev.as_ptr(), &mut existing) } == 0 {
            return Err(Error::msg(
                &op,
                format!("device {device} already exists (port {existing})"),
            ));
        }
        // SAFETY: no preconditions.
        let used = usize::from(unsafe { dpdk_sys::rte_eth_dev_count_total() });
        if used >= MAX_PORTS {
            return Err(Error::msg(
                &op,
                format!(
                    "DPDK's port table is full: this DPDK build holds {MAX_PORTS} ethdev ports \
                     (RTE_MAX_ETHPORTS), all in use"
                ),
            ));
        }
        // SAFETY: cargs is a valid C string; probing is serialised by the caller (control
        // thread) and DPDK's hotplug lock.
        let (ret, log) = logged(|| unsafe { dpdk_sys::rte_dev_probe(cargs.as_ptr()) });
        if ret < 0 {
            return Err(Error::msg(&op, probe_failure(ret, &device, &log)));
        }
        let mut id: u16 = 0;
        // SAFETY: as above.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cdev.as_ptr(), &mut id) };
        let mut port = Port {
            id,
            bus: bus.into(),
            device,
            config: config.clone(),
            _pool: pool,
            open: true,
        };
        if ret != 0 {
            // The device exists but made no ethdev port by that name: remove it again.
            port.id = u16::MAX;
            port.remove_device();
            port.open = false;
            return Err(Error::msg(
                &op,
                "the device created no ethernet port of that name",
            ));
        }
        // On error `port` is dropped, which stops, closes and removes it. Drivers say why
        // a queue or the start failed only in the log (net_pcap: a looping pcap too big for
        // the pool is EINVAL, "At least N mbufs per queue is required" is in the log).
        let (res, log) = logged(|| port.setup());
        res.map_err(|mut e| {
            let said = reasons(&log, &port.device, true);
            if !said.is_empty() {
                e.reason = format!("{} (DPDK: {})", e.reason, said.join("; "));
            }
            e
        })?;
        Ok(port)
    }

    fn setup(&mut self) -> Result<()> {
        let id = self.id;
        let c = &self.config;
        // SAFETY: info is plain data that rte_eth_dev_info_get fills for a valid port id.
        let mut info: dpdk_sys::rte_eth_dev_info = unsafe { std::mem::zeroed() };
        // SAFETY: id is a valid port id (just looked up) and info a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut info) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_dev_info_get", ret));
        }
        if c.rx_queues > info.max_rx_queues || c.tx_queues > info.max_tx_queues {
            return Err(Error::msg(
                format!("configure {}", self.device),
                format!(
                    "needs {} rx and {} tx queues (one tx queue per worker), the device has at most {} and {}",
                    c.rx_queues, c.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        let conf: dpdk_sys::rte_eth_conf = Default::default();
        // SAFETY: valid port id, stopped; conf is a valid, zeroed (default) configuration.
        let ret = unsafe { dpdk_sys::rte_eth_dev_configure(id, c.rx_queues, c.tx_queues, &conf) };
        if ret != 0 {
            return Err(Error::from_ret(format!("configure {}", self.device), ret));
        }
        // SAFETY: valid port id.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { u32::MAX } else { socket as u32 }; // SOCKET_ID_ANY
        let rx_desc = clamp_desc(c.rx_desc, &info.rx_desc_lim);
        let tx_desc = clamp_desc(c.tx_desc, &info.tx_desc_lim);
        for q in 0..c.rx_queues {
            // SAFETY: valid port, configured with rx_queues queues; the pool outlives the
            // port (self holds an Arc of it); NULL conf means the driver's defaults.
            let ret = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    self._pool.as_ptr(),
                )
            };
            if ret != 0 {
                return Err(Error::from_ret(
                    format!("rx queue {q} of {}", self.device),
                    ret,
                ));
            }
        }
        for q in 0..c.tx_queues {
            // SAFETY: valid port configured with tx_queues queues; NULL conf = defaults.
            let ret = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(id, q, tx_desc, socket, std::ptr::null())
            };
            if ret != 0 {
                return Err(Error::from_ret(
                    format!("tx queue {q} of {}", self.device),
                    ret,
                ));
            }
        }
        if let Some(mac) = c.mac {
            let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac };
            // SAFETY: valid port; addr is a valid rte_ether_addr.
            let ret = unsafe { dpdk_sys::rte_eth_dev_default_mac_addr_set(id, &mut addr) };
            if ret != 0 {
                return Err(Error::from_ret(format!("set MAC of {}", self.device), ret));
            }
        }
        if let Some(mtu) = c.mtu {
            self.set_mtu(mtu)?;
        }
        // Promiscuous mode: a switch forwards frames for any MAC. Some virtual devices
        // (vhost, memif, pcap) have no such mode and report ENOTSUP, which is fine.
        // SAFETY: valid port id.
        unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
        // SAFETY: valid, configured port with all queues set up.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(id) };
        if ret != 0 {
            return Err(Error::from_ret(format!("start {}", self.device), ret));
        }
        Ok(())
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device name (the part of devargs before the first comma).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Number of rx and tx queues.
    pub fn queues(&self) -> (u16, u16) {
        (self.config.rx_queues, self.config.tx_queues)
    }

    /// A handle on rx queue `q`, None if the port has no such queue.
    pub fn rx_queue(&self, q: u16) -> Option<PortQueue> {
        (q < self.config.rx_queues).then_some(PortQueue {
            port: self.id,
            queue: q,
        })
    }

    /// A handle on tx queue `q`, None if the port has no such queue.
    pub fn tx_queue(&self, q: u16) -> Option<PortQueue> {
        (q < self.config.tx_queues).then_some(PortQueue {
            port: self.id,
            queue: q,
        })
    }

    /// The link as the driver reports it now (does not wait).
    pub fn link(&self) -> LinkStatus {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port id; link is a valid out pointer.
        if unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut link) } != 0 {
            return LinkStatus::default();
        }
        LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
        }
    }

    /// Sets the link administratively up or down.
    pub fn set_link(&self, up: bool) -> Result<()> {
        // SAFETY: valid, started port.
        let ret = unsafe {
            if up {
                dpdk_sys::rte_eth_dev_set_link_up(self.id)
            } else {
                dpdk_sys::rte_eth_dev_set_link_down(self.id)
            }
        };
        match ret {
            0 => Ok(()),
            r if r == -(libc::ENOTSUP) => Ok(()), // no link control: the dataplane gates it
            r => Err(Error::from_ret(format!("set link of {}", self.device), r)),
        }
    }

    /// Device counters.
    pub fn stats(&self) -> PortStats {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port id; s is a valid out pointer.
        if unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) } != 0 {
            return PortStats::default();
        }
        PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// The port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        let mut a = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port id; a is a valid out pointer.
        unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut a) };
        a.addr_bytes
    }

    /// The port's MTU (0 if the driver does not say).
    pub fn mtu(&self) -> u16 {
        let mut mtu = 0u16;
        // SAFETY: valid port id; mtu is a valid out pointer.
        unsafe { dpdk_sys::rte_eth_dev_get_mtu(self.id, &mut mtu) };
        mtu
    }

    /// Sets the MTU.
    pub fn set_mtu(&self, mtu: u16) -> Result<()> {
        // SAFETY: valid port id.
        let ret = unsafe { dpdk_sys::rte_eth_dev_set_mtu(self.id, mtu) };
        if ret != 0 {
            return Err(Error::from_ret(
                format!("set MTU {mtu} on {}", self.device),
                ret,
            ));
        }
        Ok(())
    }

    /// Stops and closes the port and removes its device.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if !self.open {
            return;
        }
        self.open = false;
        // SAFETY: valid port id owned by this Port; no thread uses its queues any more
        // (the contract of Burst::rx / tx: the port is open for the whole call). Stop and
        // close are no-ops on a port that never started.
        unsafe {
            dpdk_sys::rte_eth_dev_stop(self.id);
            dpdk_sys::rte_eth_dev_close(self.id);
        }
        self.remove_device();
    }

    fn remove_device(&self) {
        let (Ok(bus), Ok(dev)) = (
            CString::new(self.bus.as_str()),
            CString::new(self.device.as_str()),
        ) else {
            return;
        };
        // SAFETY: valid C strings; the device was probed by us and its port is closed.
        unsafe { dpdk_sys::rte_eal_hotplug_remove(bus.as_ptr(), dev.as_ptr()) };
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn clamp_desc(want: u16, lim: &dpdk_sys::rte_eth_desc_lim) -> u16 {
    let mut n = want;
    if lim.nb_max > 0 {
        n = n.min(lim.nb_max);
    }
    n.max(lim.nb_min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_eal::{eal, pool, require_eal};
    use crate::{Burst, Mbuf};

    #[test]
    fn probe_failure_says_what_dpdk_logged_about_the_device() {
        require_eal!();
        let log = "EAL: failed to parse device \"net_bogus0\"\nEAL: Unable to parse device 'net_bogus0'\n";
        assert_eq!(
            probe_failure(-22, "net_bogus0", log),
            "no DPDK driver takes a device named \"net_bogus0\" (DPDK: failed to parse device)"
        );
        let log = "VHOST_CONFIG: (/x.sock) unrelated line\n\
                   rte_pmd_init_internals(): net_af_packet9: ioctl failed (SIOCGIFINDEX):No such device\n\
                   EAL: Driver cannot attach the device (net_af_packet9)\n\
                   EAL: Failed to attach device on primary process\n";
        assert_eq!(
            probe_failure(-1, "net_af_packet9", log),
            "the driver refused the device: rte_pmd_init_internals(): net_af_packet9: ioctl \
             failed (SIOCGIFINDEX):No such device; Driver cannot attach the device (net_af_packet9)"
        );
        assert_eq!(
            probe_failure(-1, "net_null9", "EAL: something about another device\n"),
            "the driver refused the device (DPDK logged no reason)"
        );
    }

    #[test]
    fn unknown_driver_is_named_in_the_error() {
        require_eal!();
        let pool = pool("t_bogus", 256);
        let err = Port::open(eal(), "net_bogusdrv0", pool, PortConfig::default()).unwrap_err();
        assert!(
            err.reason
                .contains("no DPDK driver takes a device named \"net_bogusdrv0\""),
            "{err}"
        );
    }

    /// net_ring loops tx back to rx through one 1024-slot ring per queue, so a tx of more
    /// than the ring holds is partial: the unsent mbufs must stay owned by the burst.
    #[test]
    fn partial_tx_keeps_unsent_and_everything_comes_back() {
        require_eal!();
        let pool = pool("t_ring", 4096);
        let base = pool.in_use();
        let port = Port::open(eal(), "net_ring_t0", pool.clone(), PortConfig::default()).unwrap();
        let txq = port.tx_queue(0).unwrap();
        let rxq = port.rx_queue(0).unwrap();
        assert!(port.tx_queue(1).is_none());
        let mut sent = 0;
        let mut stuck = 0;
        for round in 0..8 {
            let mut b = Burst::new();
            for _ in 0..200 {
                b.push(Mbuf::from_bytes(&pool, &[round as u8; 64]).unwrap())
                    .unwrap();
            }
            // SAFETY: this test thread alone uses the port it opened, which stays open.
            sent += unsafe { b.tx(txq) };
            stuck += b.len();
            assert_eq!(pool.in_use(), base + (sent + b.len()) as u32);
        }
        assert!(stuck > 0, "the ring should have filled up");
        assert_eq!(pool.in_use(), base + sent as u32);
        let mut got = 0;
        loop {
            let mut b = Burst::new();
            // SAFETY: as for tx above.
            let n = unsafe { b.rx(rxq, 32) };
            if n == 0 {
                break;
            }
            got += n;
        }
        assert_eq!(got, sent);
        assert_eq!(pool.in_use(), base);
        port.close();
    }

    #[test]
    fn a_refused_vdev_leaves_no_port() {
        require_eal!();
        let pool = pool("t_bad", 64);
        let err = Port::open(
            eal(),
            "net_af_packet_t9,iface=vs-no-such-if",
            pool,
            PortConfig::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("probe"), "{err}");
        let name = CString::new("net_af_packet_t9").unwrap();
        let mut id = 0u16;
        // SAFETY: valid C string and out pointer.
        assert_ne!(
            unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(name.as_ptr(), &mut id) },
            0
        );
    }

    /// DPDK 22.11's af_packet cannot chain mbufs: its rx queue setup refuses a pool whose
    /// room (less headroom) is smaller than framesz - 32 (TPACKET2_HDRLEN - sizeof
    /// sockaddr_ll), and takes a room that large. (On `lo`, as root: AF_PACKET needs
    /// CAP_NET_RAW.)
    #[test]
    fn af_packet_frames_must_fit_the_pool_room() {
        require_eal!();
        if !crate::test_eal::is_root() {
            eprintln!("skipped: AF_PACKET sockets need root");
            return;
        }
        let jumbo_args = "iface=lo,qpairs=1,framesz=9728,blocksz=77824,framecnt=64";
        let small = pool("t_afp_std", 1024);
        let err = Port::open(
            eal(),
            &format!("net_af_packet_t20,{jumbo_args}"),
            small,
            PortConfig::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("rx queue 0"), "{err}");
        let jumbo = Arc::new(
            Mempool::with_data_room(eal(), "t_afp_jumbo", 256, 0, 9728 + crate::HEADROOM).unwrap(),
        );
        let port = Port::open(
            eal(),
            &format!("net_af_packet_t21,{jumbo_args}"),
            jumbo,
            PortConfig::default(),
        )
        .unwrap();
        port.close();
    }

    #[test]
    fn too_many_queues_is_refused_and_undone() {
        require_eal!();
        let pool = pool("t_q", 256);
        let cfg = PortConfig {
            tx_queues: 5000,
            ..PortConfig::default()
        };
        let err = Port::open(eal(), "net_null_t1", pool, cfg).unwrap_err();
        assert!(err.reason.contains("tx queues"), "{err}");
        let name = CString::new("net_null_t1").unwrap();
        let mut id = 0u16;
        // SAFETY: valid C string and out pointer.
        assert_ne!(
            unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(name.as_ptr(), &mut id) },
            0
        );
    }
}
