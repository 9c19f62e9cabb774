//! The running switch: the model of the desired state (model/) and what carries it out:
//! a port per interface, the workers' forwarding plan, the MAC table's learner, the state
//! file and the events. Every change is a transaction (txn.rs) staged on the model and then
//! carried out here; reads answer from the model and the dataplane's counters.
//!
//! Thread safety: one `Switch` exists, behind the service's mutex; every operation runs
//! with that lock held, so operations are serialised.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use dpdk::{Eal, Mempool, Port};
use vswitch_dataplane::l2::bridge::L2Shared;
use vswitch_dataplane::l2::fdb::{Fdb, FdbKey, ALL_REMOTES, NO_REMOTE};
use vswitch_dataplane::l2::learn::Learner;
use vswitch_dataplane::memif_port::ZcPool;
use vswitch_dataplane::plan::L3Port;
use vswitch_dataplane::slowpath::SlowPath;
use vswitch_dataplane::{
    DropReason, Engine, ForwardingPlan, IfIndex, IfacePlan, Input, MemifRef, NativeRef, PortTotals,
    Rx, RxQueue, Stage, Tx, VhostRef, WorkerPlan, MAX_IFACES,
};
use vswitch_proto::v1 as pb;

use crate::buffers::BufferClass;
use crate::error::{ApiError, ApiResult};
use crate::events::Events;
use crate::model::{self, Iface, Limits, Model};
use crate::names::{format_mac, parse_mac};
use crate::router::{IfaceInfo, Router};
use crate::slowpath::SlowPathThread;
use crate::state::{Snapshot, Store};

mod restore;
mod sessions;
mod txn;

/// Mbufs of the jumbo pool by default: 8192 * ~10 KiB = ~80 MiB of DPDK memory, beside the
/// standard pool's ~75 MiB (32767 * ~2.3 KiB), within the default --mem 512.
pub const DEFAULT_JUMBO_MBUFS: u32 = 8192;

/// Mbufs of the zero-copy memif pool unless --zc-mbufs says otherwise (35.6 MB of shared
/// memory): a zero-copy client holds a ring of them (1024) at its server to receive into
/// and up to a ring lent on tx, so this serves about six such ports.
pub const DEFAULT_ZC_MBUFS: u32 = 16384;
/// The jumbo pool's name (`vsctl mempools`).
const JUMBO_POOL: &str = "vs_jumbo";
/// Its per-lcore cache: smaller than the standard pool's 256, as each mbuf is 4.5x larger.
const JUMBO_CACHE: u32 = 128;

pub use txn::TxnOutcome;

/// Latency quantiles in nanoseconds from a histogram in TSC cycles.
fn latency(l: &vswitch_dataplane::latency::LatencySnapshot) -> pb::Latency {
    let ns_per_cycle = 1e9 / dpdk::tsc_hz().max(1) as f64;
    let ns = |q: f64| l.quantile(q) as f64 * ns_per_cycle;
    pb::Latency {
        samples: l.samples(),
        p50_ns: ns(0.5),
        p99_ns: ns(0.99),
        p999_ns: ns(0.999),
        max_ns: ns(1.0),
    }
}

/// Whether an interface's link is up: the kernel's view for af_packet (its operational
/// state), the driver's for the rest.
fn link_up(i: &Iface, a: &Attached) -> bool {
    match i.spec.kernel_link() {
        Some(ifname) => {
            let state = std::fs::read_to_string(format!("/sys/class/net/{ifname}/operstate"))
                .unwrap_or_default();
            match state.trim() {
                "up" => true,
                // Interfaces without operstate support: carrier decides.
                "unknown" => std::fs::read_to_string(format!("/sys/class/net/{ifname}/carrier"))
                    .is_ok_and(|c| c.trim() == "1"),
                _ => false,
            }
        }
        None => a.port.link().up,
    }
}

/// The MTU of a Linux interface (None if it cannot be read).
fn kernel_mtu(ifname: &str) -> Option<u16> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sets the MTU of a Linux interface (what DPDK's af_packet driver does with SIOCSIFMTU).
fn set_kernel_mtu(ifname: &str, mtu: u16) -> Result<(), String> {
    std::fs::write(format!("/sys/class/net/{ifname}/mtu"), mtu.to_string())
        .map_err(|e| format!("cannot set MTU {mtu} on Linux interface {ifname}: {e}"))
}

/// A routed interface as the router's slow path needs it.
fn iface_info(p: &L3Port, mtu: u16, addrs: &[model::ip::Cidr], proxy_arp: bool) -> IfaceInfo {
    IfaceInfo {
        vrf: p.vrf,
        mac: p.mac,
        mtu,
        v4: addrs
            .iter()
            .filter_map(|c| match c.addr() {
                std::net::IpAddr::V4(a) => Some((a, c.length())),
                std::net::IpAddr::V6(_) => None,
            })
            .collect(),
        v6: addrs
            .iter()
            .filter_map(|c| match c.addr() {
                std::net::IpAddr::V6(a) => Some((a, c.length())),
                std::net::IpAddr::V4(_) => None,
            })
            .collect(),
        proxy_arp,
        l3_tunnel: false,
    }
}

/// What carries an interface's frames.
#[derive(Debug)]
enum Backend {
    /// A DPDK ethdev port.
    Dpdk(Port),
    /// A native kernel-interface port (`driver=native`; no ethdev port).
    Native(NativeRef),
    /// A vhost-user port through librte_vhost's API (`driver=native`; no ethdev port), and
    /// the MAC the switch reports for it.
    Vhost(VhostRef, [u8; 6]),
    /// A native memif port (`driver=native`; no ethdev port), its MAC and its MTU.
    Memif(MemifRef, [u8; 6], std::sync::atomic::AtomicU16),
}

/// The MAC of a Linux interface (zero if it cannot be read).
fn kernel_mac(ifname: &str) -> [u8; 6] {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/address"))
        .ok()
        .and_then(|s| parse_mac("address", s.trim()).ok())
        .unwrap_or_default()
}

impl Backend {
    /// The link as the driver reports it (a native port's is its Linux interface's, read
    /// through `link_up`).
    fn link(&self) -> dpdk::LinkStatus {
        match self {
            Backend::Dpdk(p) => p.link(),
            Backend::Native(_) => dpdk::LinkStatus {
                up: true,
                speed_mbps: 0,
            },
            Backend::Vhost(v, _) => dpdk::LinkStatus {
                up: v.is_up(),
                speed_mbps: 0,
            },
            Backend::Memif(m, ..) => dpdk::LinkStatus {
                up: m.is_up(),
                speed_mbps: 0,
            },
        }
    }

    fn mtu(&self) -> u16 {
        match self {
            Backend::Dpdk(p) => p.mtu(),
            Backend::Native(n) => kernel_mtu(n.ifname()).unwrap_or_default(),
            Backend::Vhost(v, _) => v.mtu(),
            Backend::Memif(_, _, mtu) => mtu.load(Relaxed),
        }
    }

    fn set_mtu(&self, mtu: u16) -> Result<(), String> {
        match self {
            Backend::Dpdk(p) => p.set_mtu(mtu).map_err(|e| e.to_string()),
            Backend::Native(n) => set_kernel_mtu(n.ifname(), mtu),
            Backend::Vhost(v, _) => {
                v.set_mtu(mtu);
                Ok(())
            }
            Backend::Memif(_, _, m) => {
                m.store(mtu, Relaxed);
                Ok(())
            }
        }
    }

    /// Losses inside the device (the dataplane counts packets and bytes).
    fn stats(&self) -> dpdk::PortStats {
        match self {
            Backend::Dpdk(p) => p.stats(),
            Backend::Native(n) => {
                let s = n.stats();
                dpdk::PortStats {
                    rx_missed: n.kernel_drops_total(),
                    rx_errors: s.rx_bad_offload.load(Relaxed),
                    rx_nombuf: s.rx_nombuf.load(Relaxed),
                    ..dpdk::PortStats::default()
                }
            }
            Backend::Vhost(..) => dpdk::PortStats::default(),
            Backend::Memif(m, ..) => {
                let t = m.totals();
                dpdk::PortStats {
                    rx_errors: t.bad_desc + t.too_long,
                    rx_nombuf: t.rx_nombuf,
                    ..dpdk::PortStats::default()
                }
            }
        }
    }

    /// The port's own counters by name (`Interface.port_counters`): every one it keeps,
    /// zeros included, so the keys of a port do not come and go.
    fn counters(&self) -> Vec<(String, u64)> {
        let named = |v: &[(&str, u64)]| v.iter().map(|&(k, n)| (k.to_string(), n)).collect();
        match self {
            Backend::Dpdk(p) => {
                let s = p.stats();
                named(&[
                    ("rx_missed", s.rx_missed),
                    ("rx_errors", s.rx_errors),
                    ("tx_errors", s.tx_errors),
                    ("rx_nombuf", s.rx_nombuf),
                ])
            }
            Backend::Native(n) => {
                let s = n.stats();
                named(&[
                    ("kernel_drops", n.kernel_drops_total()),
                    ("rx_nombuf", s.rx_nombuf.load(Relaxed)),
                    ("rx_bad_offload", s.rx_bad_offload.load(Relaxed)),
                ])
            }
            Backend::Vhost(v, _) => named(&v.counters()),
            Backend::Memif(m, ..) => memif_counters(m),
        }
    }

    /// The connected peer's name and the last refusal or disconnect reason (each empty if
    /// none).
    fn peer(&self) -> (String, String) {
        match self {
            Backend::Dpdk(_) | Backend::Native(_) => Default::default(),
            // vhost-user frontends give no name.
            Backend::Vhost(v, _) => (String::new(), v.last_refusal()),
            Backend::Memif(m, ..) => (m.interface().peer(), m.interface().last_error()),
        }
    }

    /// (rx queues, tx paths).
    fn queues(&self) -> (u16, u16) {
        match self {
            Backend::Dpdk(p) => p.queues(),
            Backend::Native(n) => (1, n.tx_paths() as u16),
            Backend::Vhost(v, _) => (v.queues(), v.tx_paths() as u16),
            Backend::Memif(m, ..) => (m.queues() as u16, m.tx_paths() as u16),
        }
    }

    fn mac(&self) -> [u8; 6] {
        match self {
            Backend::Dpdk(p) => p.mac(),
            Backend::Native(n) => kernel_mac(n.ifname()),
            Backend::Vhost(_, mac) | Backend::Memif(_, mac, _) => *mac,
        }
    }

    /// The DPDK port id (none for a native port).
    fn id(&self) -> Option<u16> {
        match self {
            Backend::Dpdk(p) => Some(p.id()),
            Backend::Native(_) | Backend::Vhost(..) | Backend::Memif(..) => None,
        }
    }

    /// Administrative link change: DPDK's drivers take it to the device; a native port
    /// leaves its Linux interface as it is (the plan stops its frames both ways).
    fn set_link(&self, up: bool) -> Result<(), String> {
        match self {
            Backend::Dpdk(p) => p.set_link(up).map_err(|e| e.to_string()),
            Backend::Native(_) | Backend::Vhost(..) | Backend::Memif(..) => Ok(()),
        }
    }

    fn close(self) {
        match self {
            Backend::Dpdk(p) => p.close(),
            // Closed when the last plan naming it is dropped.
            Backend::Native(n) => drop(n),
            Backend::Vhost(v, _) => drop(v),
            Backend::Memif(m, ..) => drop(m),
        }
    }

    /// Worker `w`'s tx path.
    fn tx(&self, w: usize) -> Option<Tx> {
        match self {
            Backend::Dpdk(p) => p.tx_queue(w as u16).map(Tx::Dpdk),
            Backend::Native(n) => (w < n.tx_paths()).then(|| Tx::Native(n.clone())),
            Backend::Vhost(v, _) => (w < v.tx_paths()).then(|| Tx::Vhost(v.clone())),
            Backend::Memif(m, ..) => (w < m.tx_paths()).then(|| Tx::Memif(m.clone())),
        }
    }

    /// Rx queue `q`.
    fn rx(&self, q: usize) -> Option<Rx> {
        match self {
            Backend::Dpdk(p) => p.rx_queue(q as u16).map(Rx::Dpdk),
            Backend::Native(n) => (q == 0).then(|| Rx::Native(n.clone())),
            Backend::Vhost(v, _) => {
                (q < usize::from(v.queues())).then(|| Rx::Vhost(v.clone(), q as u16))
            }
            Backend::Memif(m, ..) => (q < m.queues()).then(|| Rx::Memif(m.clone(), q as u16)),
        }
    }
}

/// A memif port's counters by name: its ring counters summed over the queues (every
/// field of [`MemifTotals`]), its link changes, and its refused peers and dropped links by
/// reason (`refused_` and the reason; a peer's DISCONNECT and a closed socket as
/// `peer_disconnects` and `socket_closed`).
fn memif_counters(m: &vswitch_dataplane::memif_port::MemifPort) -> Vec<(String, u64)> {
    use vswitch_dataplane::memif_port::MemifTotals;
    // Named field by field: a field added to MemifTotals does not build until named here.
    let MemifTotals {
        rx_frames,
        rx_bytes,
        tx_frames,
        tx_bytes,
        tx_no_room,
        tx_busy,
        rx_nombuf,
        bad_desc,
        too_long,
        ring_broken,
        rx_kicks,
    } = m.totals();
    let totals = [
        ("rx_frames", rx_frames),
        ("rx_bytes", rx_bytes),
        ("tx_frames", tx_frames),
        ("tx_bytes", tx_bytes),
        ("tx_no_room", tx_no_room),
        ("tx_busy", tx_busy),
        ("rx_nombuf", rx_nombuf),
        ("bad_desc", bad_desc),
        ("too_long", too_long),
        ("ring_broken", ring_broken),
        ("rx_kicks", rx_kicks),
        ("link_events", m.link_events()),
    ];
    let reasons = m.interface().errors().all().into_iter().map(|(k, n)| {
        let key = match k {
            "peer_disconnects" | "socket_closed" => k.to_string(),
            reason => format!("refused_{reason}"),
        };
        (key, n)
    });
    totals
        .iter()
        .map(|&(k, n)| (k.to_string(), n))
        .chain(reasons)
        .collect()
}

/// The port that implements an interface, and its place in the dataplane.
struct Attached {
    /// The interface's logical index (plan, MAC table, counters, outputs).
    ifindex: IfIndex,
    port: Backend,
    /// The Linux interface whose MTU is the port's (af_packet: see IfaceSpec::kernel_mtu).
    kernel_mtu: Option<String>,
    /// The socket file the switch created for it (server role), removed when it closes.
    server_socket: Option<PathBuf>,
    devargs: String,
    /// The worker polling each rx queue (index = queue).
    rx_workers: Vec<usize>,
    /// Dataplane counts of this index from before this interface had it (indices are
    /// reused).
    base: PortTotals,
    /// Link state last reported to watchers.
    link_seen: bool,
}

impl Attached {
    /// The port's MTU: its Linux interface's, else the driver's (0 if neither says).
    fn mtu(&self) -> u16 {
        match &self.kernel_mtu {
            Some(ifname) => kernel_mtu(ifname).unwrap_or_default(),
            None => self.port.mtu(),
        }
    }

    /// Sets the port's MTU, on its Linux interface or through the driver.
    fn set_mtu(&self, mtu: u16) -> Result<(), String> {
        match &self.kernel_mtu {
            Some(ifname) => set_kernel_mtu(ifname, mtu),
            None => self.port.set_mtu(mtu).map_err(|e| e.to_string()),
        }
    }
}

/// A tunnel's place in the dataplane.
#[derive(Debug, Clone, Copy)]
struct TunnelIndex {
    ifindex: IfIndex,
    /// Dataplane counts of this index from before the tunnel had it.
    base: PortTotals,
}

/// Where the switch keeps files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Directory for relative vhost-user / memif socket names.
    pub run_dir: PathBuf,
}

/// The MAC-learning side of the switch: the learner (behind its own lock, shared with the
/// learner thread) and what workers share with it.
#[derive(Clone)]
pub struct L2 {
    pub learner: Arc<Mutex<Learner>>,
    pub shared: L2Shared,
}

/// The dataplane a switch drives: the workers, and the slow path's rings and thread.
pub struct Dataplane {
    pub engine: Engine,
    pub slow: Arc<SlowPath>,
    pub slow_thread: SlowPathThread,
    /// The router's FIBs and next hops (shared with the slow path's handlers).
    pub router: Arc<Mutex<Router>>,
}

/// The running switch.
pub struct Switch {
    // Field order is drop order: ports go before the pool, the pool before the EAL.
    /// Each interface's port, by interface name (every interface of the model has one).
    ports: BTreeMap<String, Attached>,
    /// The desired state.
    model: Model,
    limits: Limits,
    /// The most interfaces held at once (vswitchd --max-interfaces).
    max_ifaces: usize,
    l2: L2,
    /// The thread handling punted packets (stopped before the rings go).
    slow_thread: Option<SlowPathThread>,
    engine: Engine,
    /// The rings between workers and the slow-path thread (holding mbufs: before the pool).
    slow: Arc<SlowPath>,
    /// The standard buffers: every port's tx, and rx of ports of the standard class.
    pool: Arc<Mempool>,
    /// The jumbo buffers, made the first time a port needs them (see buffers.rs), then kept.
    jumbo: Option<Arc<Mempool>>,
    /// Mbufs the jumbo pool is made with.
    jumbo_mbufs: u32,
    /// The buffers every zero-copy memif client shares with its peer, made with the first
    /// (see memif_port.rs), then kept: one pool for all, so that a frame received on one is
    /// sent on another by lending the same buffer.
    zc: Option<Arc<ZcPool>>,
    /// Mbufs the zero-copy pool is made with.
    zc_mbufs: u32,
    eal: Option<Eal>,
    queue_load: Vec<usize>,
    next_index: u32,
    /// The logical index of each bridge's routed interface `bvi:BR`, by bridge name (given
    /// when the bridge is added, from the same indices as ports; no port behind it).
    bvis: BTreeMap<String, IfIndex>,
    /// Each tunnel's logical index, by name (given when the tunnel is added, from the same
    /// indices; no port behind it).
    tunnels: BTreeMap<String, TunnelIndex>,
    /// Every ACL of the model, built for the dataplane (classifier and hit counters), by
    /// name: built again only when a transaction sets its rules (txn.rs), so its counters
    /// live as long as its rules; shared with the workers through the plan.
    acls: BTreeMap<String, Arc<vswitch_dataplane::acl::Acl>>,
    /// Every service of the model, built for the dataplane (Maglev table and per-backend
    /// counters), by name: built again only when a transaction changes its spec (txn.rs),
    /// so publishing a plan never rebuilds the tables of services it did not touch; shared
    /// with the workers through the plan's [`NatPlan`](vswitch_dataplane::nat::NatPlan).
    services: BTreeMap<String, Arc<vswitch_dataplane::nat::Service>>,
    /// The session table of stateful ACLs (permit-reflect), shared with the workers
    /// through every plan, and its reaper (expiry).
    sessions: Arc<vswitch_dataplane::acl::Sessions>,
    session_reaper: Option<crate::sessions::Reaper>,
    /// The state file and its journal (None: not persisted).
    store: Option<Store>,
    /// Journals each change (off while restoring: one snapshot at the end).
    persist: bool,
    events: Arc<Events>,
    started: Instant,
    /// The router's FIBs and next hops.
    router: Arc<Mutex<Router>>,
}

impl Switch {
    /// A switch with no interfaces, over a started dataplane.
    pub fn new(
        eal: Eal,
        pool: Arc<Mempool>,
        dataplane: Dataplane,
        l2: L2,
        paths: Paths,
        store: Option<Store>,
        events: Arc<Events>,
    ) -> Switch {
        let Dataplane {
            engine,
            slow,
            slow_thread,
            router,
        } = dataplane;
        let workers = engine.workers();
        let limits = Limits {
            run_dir: paths.run_dir,
            fdb_capacity: l2.shared.fdb.capacity() as u32,
        };
        let sessions = Arc::new(vswitch_dataplane::acl::Sessions::new(
            crate::sessions::SLOTS,
            workers,
            vswitch_dataplane::acl::SessionConfig {
                limit: crate::sessions::DEFAULT_LIMIT,
                iface_limit: crate::sessions::DEFAULT_LIMIT,
                timeouts: Default::default(),
            },
        ));
        let session_reaper = match crate::sessions::Reaper::spawn(sessions.clone()) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the session reaper: sessions never expire");
                None
            }
        };
        Switch {
            ports: BTreeMap::new(),
            model: Model::new(),
            limits,
            l2,
            slow_thread: Some(slow_thread),
            engine,
            slow,
            pool,
            jumbo: None,
            jumbo_mbufs: DEFAULT_JUMBO_MBUFS,
            zc: None,
            zc_mbufs: DEFAULT_ZC_MBUFS,
            max_ifaces: MAX_IFACES,
            eal: Some(eal),
            queue_load: vec![0; workers],
            next_index: 0,
            bvis: BTreeMap::new(),
            tunnels: BTreeMap::new(),
            acls: BTreeMap::new(),
            services: BTreeMap::new(),
            sessions,
            session_reaper,
            store,
            persist: true,
            events,
            started: Instant::now(),
            router,
        }
    }

    /// Sets how many mbufs the jumbo pool gets when it is made (vswitchd's --jumbo-mbufs).
    pub fn with_jumbo_mbufs(mut self, n: u32) -> Switch {
        self.jumbo_mbufs = n;
        self
    }

    /// Sets how many mbufs the zero-copy memif pool gets when it is made (--zc-mbufs).
    pub fn with_zc_mbufs(mut self, n: u32) -> Switch {
        self.zc_mbufs = n;
        self
    }

    /// The zero-copy memif pool, made on first use.
    fn zc_pool(&mut self) -> ApiResult<Arc<ZcPool>> {
        if let Some(p) = &self.zc {
            return Ok(p.clone());
        }
        let n = self.zc_mbufs;
        let pool = ZcPool::new(self.eal()?, "vs_zc", n).map_err(|e| {
            ApiError::unavailable(format!(
                "cannot make the zero-copy buffer pool ({n} mbufs): {e}; give DPDK more \
                 memory (--mem) or fewer zero-copy buffers (--zc-mbufs)"
            ))
        })?;
        tracing::info!(
            pool = "vs_zc",
            mbufs = n,
            hugepages = pool.on_hugepages(),
            "zero-copy memif buffer pool made"
        );
        let pool = Arc::new(pool);
        self.zc = Some(pool.clone());
        Ok(pool)
    }

    /// Sets the most interfaces (ports, bridges' routed interfaces, tunnels) the switch
    /// holds at once, at most [`MAX_IFACES`] (what the dataplane's tables are sized for).
    pub fn with_max_ifaces(mut self, n: usize) -> Switch {
        self.max_ifaces = n.clamp(1, MAX_IFACES);
        self
    }

    /// The pool that ports of `class` receive into; the jumbo pool is made on first use.
    /// It costs about 10 KiB per mbuf of DPDK memory (--mem), so a switch without jumbo
    /// ports does not pay for it.
    fn pool_for(&mut self, class: BufferClass) -> ApiResult<Arc<Mempool>> {
        if class == BufferClass::Standard {
            return Ok(self.pool.clone());
        }
        if let Some(p) = &self.jumbo {
            return Ok(p.clone());
        }
        let pool = Mempool::with_data_room(
            self.eal()?,
            JUMBO_POOL,
            self.jumbo_mbufs,
            JUMBO_CACHE,
            class.data_room(),
        )
        .map_err(|e| {
            ApiError::unavailable(format!(
                "cannot make the jumbo buffer pool ({} mbufs of {} bytes): {e}; give DPDK \
                 more memory (--mem) or fewer jumbo buffers (--jumbo-mbufs)",
                self.jumbo_mbufs,
                class.data_room()
            ))
        })?;
        tracing::info!(
            pool = JUMBO_POOL,
            mbufs = self.jumbo_mbufs,
            data_room = class.data_room(),
            "jumbo buffer pool made"
        );
        let pool = Arc::new(pool);
        self.jumbo = Some(pool.clone());
        Ok(pool)
    }

    fn eal(&self) -> ApiResult<&Eal> {
        self.eal
            .as_ref()
            .ok_or_else(|| ApiError::internal("the switch is shutting down"))
    }

    /// An interface and its port.
    fn iface(&self, name: &str) -> ApiResult<(&Iface, &Attached)> {
        let i = self.model.iface(name)?;
        let a = self
            .ports
            .get(name)
            .ok_or_else(|| ApiError::internal(format!("interface {name:?} has no port")))?;
        Ok((i, a))
    }

    /// The logical index of interface `name`.
    /// `route get`: each address looked up in VRF `r.vrf`'s FIB, the one the workers use.
    pub fn route_get(&self, r: &pb::GetRoutesRequest) -> ApiResult<Vec<pb::Route>> {
        const MAX: usize = 100_000;
        if r.addresses.is_empty() || r.addresses.len() > MAX {
            return Err(ApiError::invalid(format!(
                "addresses: 1 to {MAX} addresses, not {}",
                r.addresses.len()
            )));
        }
        let vrf = model::vrf::check_id(r.vrf)?;
        if !model::vrf::exists(&self.model, vrf) {
            return Err(ApiError::not_found(format!(
                "vrf {vrf} not found (vrf add {vrf} creates it)"
            )));
        }
        let names = self.names_by_index();
        let router = self.router();
        r.addresses
            .iter()
            .map(|a| {
                let ip = model::ip::parse_ip("address", a)?;
                let Some(l) = router.lookup(vrf, ip) else {
                    return Err(ApiError::not_found(format!(
                        "no route to {ip} in vrf {vrf}"
                    )));
                };
                let configured = model::route::of(&self.model, vrf, &l.prefix);
                Ok(pb::Route {
                    prefix: l.prefix.to_string(),
                    vrf: u32::from(vrf),
                    nexthops: l
                        .nexthops
                        .iter()
                        .map(|(via, i)| pb::NextHop {
                            via: via.map(|v| v.to_string()).unwrap_or_default(),
                            iface: i
                                .and_then(|i| names.get(&i))
                                .map(|n| n.to_string())
                                .unwrap_or_default(),
                        })
                        .collect(),
                    onlink: configured.as_ref().is_some_and(|c| c.onlink),
                    origin: match configured {
                        Some(c) => c.origin.name().to_string(),
                        None if l.local => "local".to_string(),
                        // A host route of a neighbour the slow path resolved.
                        None => "neighbor".to_string(),
                    },
                })
            })
            .collect()
    }

    /// Neighbours the router learned by ARP (of interface `iface`, or all): state
    /// "reachable", not static.
    pub fn learned_neighbors(&self, iface: Option<&str>) -> Vec<pb::Neighbor> {
        let names = self.names_by_index();
        let mut v: Vec<pb::Neighbor> = self
            .router()
            .neighbors()
            .into_iter()
            .filter(|n| !n.3)
            .filter_map(|(i, ip, mac, _)| {
                let name = names.get(&i)?;
                (iface.is_none() || iface == Some(name.as_str())).then(|| pb::Neighbor {
                    iface: name.to_string(),
                    ip: ip.to_string(),
                    mac: format_mac(mac),
                    state: "reachable".into(),
                    r#static: false,
                })
            })
            .collect();
        v.sort_by(|a, b| (&a.iface, &a.ip).cmp(&(&b.iface, &b.ip)));
        v
    }

    /// The router's tables (a poisoned lock is taken over: the tables are plain data).
    fn router(&self) -> std::sync::MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The logical index of interface `name` (a port's or a tunnel's).
    fn ifindex_of(&self, name: &str) -> Option<IfIndex> {
        match self.ports.get(name) {
            Some(a) => Some(a.ifindex),
            None => self.tunnels.get(name).map(|t| t.ifindex),
        }
    }

    /// The logical index of an L3 interface: an interface's, or a bridge's routed
    /// interface's (`bvi:BR`).
    fn l3_index(&self, name: &str) -> Option<IfIndex> {
        match model::iface::bvi_bridge(name) {
            Some(br) => self.bvis.get(br).copied(),
            None => self.ifindex_of(name),
        }
    }

    /// Interface names by logical index (routed interfaces of bridges as `bvi:BR`).
    fn names_by_index(&self) -> BTreeMap<IfIndex, String> {
        self.ports
            .iter()
            .map(|(n, a)| (a.ifindex, n.clone()))
            .chain(
                self.bvis
                    .iter()
                    .map(|(br, &i)| (i, format!("{}{br}", model::iface::BVI_PREFIX))),
            )
            .chain(self.tunnels.iter().map(|(n, t)| (t.ifindex, n.clone())))
            .collect()
    }

    /// The desired state (read-only): the L3 lists answer from it.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Health summary.
    pub fn health(&self) -> pb::HealthReply {
        pb::HealthReply {
            version: env!("CARGO_PKG_VERSION").to_string(),
            workers: self.engine.workers() as u32,
            interfaces: (self.ports.len() + self.tunnels.len()) as u32,
            uptime_seconds: self.started.elapsed().as_secs(),
            max_interfaces: self.max_ifaces as u32,
        }
    }

    /// The cross-connect `name` belongs to, `name` first.
    pub fn get_xconnect(&self, name: &str) -> ApiResult<pb::Xconnect> {
        Ok(pb::Xconnect {
            iface_a: name.to_string(),
            iface_b: model::iface::xconnect_peer(&self.model, name)?,
        })
    }

    /// Every cross-connect, each once.
    pub fn xconnects(&self) -> Vec<pb::Xconnect> {
        model::iface::xconnects(&self.model)
    }

    /// One interface's configuration and counters (a bridge's routed interface `bvi:BR`:
    /// its configuration).
    pub fn get_iface(&self, name: &str) -> ApiResult<pb::Interface> {
        if let Some(br) = model::iface::bvi_bridge(name) {
            return self.describe_bvi(br);
        }
        if let Some((i, _)) = model::tunnel::get(&self.model, name) {
            return Ok(self.describe_tunnel(name, i));
        }
        let (i, a) = self.iface(name)?;
        Ok(self.describe(name, i, a))
    }

    /// A tunnel's interface: its kind as type, its settings as args, admin state (its
    /// link is its admin state: there is no device), MAC, MTU, index, overlay VRF,
    /// addresses and the dataplane's counts of it (no port, no device counters).
    fn describe_tunnel(&self, name: &str, i: &Iface) -> pb::Interface {
        let t = self.tunnels.get(name);
        let totals = t
            .map(|t| self.engine.iface_totals(t.ifindex).since(t.base))
            .unwrap_or_default();
        pb::Interface {
            name: name.to_string(),
            r#type: i.spec.type_name.clone(),
            args: i.spec.args.clone().into_iter().collect(),
            admin_up: i.admin_up,
            link_up: i.admin_up,
            mac: i.spec.mac.map(format_mac).unwrap_or_default(),
            mtu: u32::from(i.spec.mtu.unwrap_or_default()),
            rx_packets: totals.rx_packets,
            tx_packets: totals.tx_packets,
            rx_bytes: totals.rx_bytes,
            tx_bytes: totals.tx_bytes,
            drops: totals.drops,
            index: t.map_or(0, |t| u32::from(t.ifindex)),
            vrf: u32::from(i.l3.vrf),
            proxy_arp: i.l3.proxy_arp,
            addresses: model::addr::of_iface(&self.model, name)
                .iter()
                .map(|c| c.to_string())
                .collect(),
            ..Default::default()
        }
    }

    /// One tunnel.
    pub fn get_tunnel(&self, name: &str) -> ApiResult<pb::Tunnel> {
        let (i, t) = model::tunnel::existing(&self.model, name)?;
        let index = self.tunnels.get(name).map_or(0, |t| u32::from(t.ifindex));
        Ok(model::tunnel::to_pb(&self.model, name, i, t, index))
    }

    /// Every tunnel, by name.
    pub fn list_tunnels(&self) -> Vec<pb::Tunnel> {
        model::tunnel::all(&self.model)
            .map(|(n, i, t)| {
                let index = self.tunnels.get(n).map_or(0, |t| u32::from(t.ifindex));
                model::tunnel::to_pb(&self.model, n, i, t, index)
            })
            .collect()
    }

    /// One ACL, with its hits.
    pub fn get_acl(&self, name: &str) -> ApiResult<pb::Acl> {
        model::acl::to_pb(&self.model, name, self.acls.get(name).map(|a| &**a))
    }

    /// Every ACL, by name, with its hits.
    pub fn list_acls(&self) -> Vec<pb::Acl> {
        model::acl::names(&self.model)
            .filter_map(|n| self.get_acl(n).ok())
            .collect()
    }

    /// Builds again the ACLs whose rules a transaction set (`changed`), and drops those it
    /// deleted. Runs before the plan that binds them is published.
    fn build_acls(&mut self, changed: &std::collections::BTreeSet<String>) {
        let workers = self.engine.workers();
        for name in changed {
            match model::acl::build(&self.model, name, workers, self.eal.as_ref()) {
                Some(a) => self.acls.insert(name.clone(), a),
                None => self.acls.remove(name),
            };
        }
    }

    /// One service, with its backends' counters.
    pub fn get_service(&self, name: &str) -> ApiResult<pb::Service> {
        let spec = model::service::existing(&self.model, name)?;
        Ok(model::service::to_pb(
            spec,
            self.services.get(name).map(|s| &**s),
        ))
    }

    /// Every service, by name, with its backends' counters.
    pub fn list_services(&self) -> Vec<pb::Service> {
        model::service::names(&self.model)
            .filter_map(|n| self.get_service(n).ok())
            .collect()
    }

    /// Masquerading interfaces and port mappings.
    pub fn get_nat(&self) -> pb::Nat {
        model::nat::to_pb(&self.model)
    }

    /// Builds again the services a transaction added or changed (`changed`) whose spec is
    /// not the one they were built from, and drops those it deleted. Runs before the plan
    /// that holds them is published.
    fn build_services(&mut self, changed: &std::collections::BTreeSet<String>) {
        let workers = self.engine.workers();
        for name in changed {
            match model::service::build(&self.model, name, workers, self.services.get(name)) {
                Some(s) => self.services.insert(name.clone(), s),
                None => self.services.remove(name),
            };
        }
    }

    /// The plan's NAT part: None when no service, masquerade or port mapping is set.
    fn plan_nat(&self) -> Option<Arc<vswitch_dataplane::nat::NatPlan>> {
        let services = model::service::plan(&self.model, &self.services);
        let (masquerade, portmaps) = model::nat::plan(&self.model, &|n| self.l3_index(n));
        if services.is_empty() && masquerade.is_empty() && portmaps.is_empty() {
            return None;
        }
        Some(Arc::new(vswitch_dataplane::nat::NatPlan::new(
            services, masquerade, portmaps,
        )))
    }

    /// Bridge `br`'s routed interface: type `bvi`, always up, its MAC, MTU, index, VRF,
    /// proxy-ARP and addresses (no port, no counters of its own).
    fn describe_bvi(&self, br: &str) -> ApiResult<pb::Interface> {
        let b = self.model.bridge(br)?;
        let name = format!("{}{br}", model::iface::BVI_PREFIX);
        Ok(pb::Interface {
            r#type: "bvi".into(),
            admin_up: true,
            link_up: true,
            mac: format_mac(model::bridge::bvi_mac(br)),
            mtu: u32::from(self.bvi_mtu(b)),
            index: self.bvis.get(br).map_or(0, |&i| u32::from(i)),
            vrf: u32::from(b.bvi.vrf),
            proxy_arp: b.bvi.proxy_arp,
            addresses: model::addr::of_iface(&self.model, &name)
                .iter()
                .map(|c| c.to_string())
                .collect(),
            name,
            ..Default::default()
        })
    }

    /// The MTU of bridge `b`'s routed interface: the smallest of its members' (1500
    /// without members), as a Linux bridge's.
    fn bvi_mtu(&self, b: &model::Bridge) -> u16 {
        b.members
            .keys()
            .filter_map(|m| self.model.iface(m).ok())
            .map(|i| i.spec.mtu.unwrap_or(1500))
            .min()
            .unwrap_or(1500)
    }

    /// Every interface (tunnels too).
    pub fn list_ifaces(&self) -> Vec<pb::Interface> {
        self.model
            .ifaces()
            .filter_map(|(n, i)| match self.ports.get(n) {
                Some(a) => Some(self.describe(n, i, a)),
                None => i.spec.tunnel().map(|_| self.describe_tunnel(n, i)),
            })
            .collect()
    }

    fn describe(&self, name: &str, i: &Iface, a: &Attached) -> pb::Interface {
        // Packets and bytes as the dataplane counted them (every driver alike); losses
        // inside the device (missed, errors, no mbuf) from the driver.
        let s = a.port.stats();
        let t = self.engine.iface_totals(a.ifindex).since(a.base);
        let (rxq, txq) = a.port.queues();
        let (peer, last_error) = a.port.peer();
        pb::Interface {
            name: name.to_string(),
            r#type: i.spec.type_name.clone(),
            args: i.spec.args.clone().into_iter().collect(),
            admin_up: i.admin_up,
            link_up: i.admin_up && link_up(i, a),
            mac: format_mac(i.spec.mac.unwrap_or_else(|| a.port.mac())),
            mtu: u32::from(a.mtu()),
            rx_packets: t.rx_packets,
            tx_packets: t.tx_packets,
            rx_bytes: t.rx_bytes,
            tx_bytes: t.tx_bytes,
            drops: s.rx_missed + s.rx_errors + s.tx_errors + s.rx_nombuf + t.drops,
            port_id: a.port.id().map_or(u32::MAX, u32::from),
            index: u32::from(a.ifindex),
            devargs: a.devargs.clone(),
            rx_queues: u32::from(rxq),
            tx_queues: u32::from(txq),
            xconnect: i.xconnect.clone().unwrap_or_default(),
            vrf: u32::from(i.l3.vrf),
            proxy_arp: i.l3.proxy_arp,
            addresses: model::addr::of_iface(&self.model, name)
                .iter()
                .map(|c| c.to_string())
                .collect(),
            attachment: i.attachment.as_ref().map(pb::Attachment::from),
            port_counters: a.port.counters().into_iter().collect(),
            peer,
            last_error,
        }
    }

    /// One bridge, with its count of learned MACs.
    pub fn get_bridge(&self, name: &str) -> ApiResult<pb::Bridge> {
        let b = self.model.bridge(name)?;
        let learned = self.learner().dynamic_len(b.id) as u32;
        Ok(model::bridge::to_pb(name, b, learned))
    }

    /// Every bridge.
    pub fn list_bridges(&self) -> Vec<pb::Bridge> {
        let learner = self.learner();
        self.model
            .bridges()
            .map(|(n, b)| model::bridge::to_pb(n, b, learner.dynamic_len(b.id) as u32))
            .collect()
    }

    /// A bridge's MAC table.
    pub fn fdb_list(&self, bridge: &str) -> ApiResult<Vec<pb::FdbEntry>> {
        let id = self.model.bridge(bridge)?.id;
        let names = self.names_by_index();
        let learner = self.learner();
        Ok(learner
            .entries(id)
            .into_iter()
            .map(|(k, e, age)| pb::FdbEntry {
                mac: format_mac(k.mac),
                vlan: u32::from(k.vlan),
                iface: names
                    .get(&e.port)
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                r#static: e.is_static,
                age_seconds: if e.is_static { 0 } else { age },
                remote: names
                    .get(&e.port)
                    .map(|n| self.entry_remote(&k, n, learner.fdb()))
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// One entry of a bridge's MAC table.
    pub fn fdb_get(&self, r: &pb::GetFdbRequest) -> ApiResult<pb::FdbEntry> {
        let id = self.model.bridge(&r.bridge)?.id;
        let mac = parse_mac("mac", &r.mac).map_err(ApiError::invalid)?;
        let vlan = model::fdb::entry_vlan(r.vlan)?;
        let key = FdbKey {
            bridge: id,
            vlan,
            mac,
        };
        let (entry, age) = self.learner().entry(&key).ok_or_else(|| {
            ApiError::not_found(format!(
                "{} (VLAN {vlan}) is not in bridge {:?}",
                r.mac, r.bridge
            ))
        })?;
        let iface = self
            .names_by_index()
            .get(&entry.port)
            .map(|n| n.to_string())
            .unwrap_or_default();
        Ok(pb::FdbEntry {
            mac: format_mac(mac),
            vlan: u32::from(vlan),
            r#static: entry.is_static,
            age_seconds: if entry.is_static { 0 } else { age },
            remote: self.entry_remote(&key, &iface, self.learner().fdb()),
            iface,
        })
    }

    /// The outer destination of a MAC entry on interface `iface` ("" unless it is a
    /// tunnel): the VTEP the dataplane's entry carries (learned from decapsulated frames,
    /// or set by a static entry), else the tunnel's remote when it has exactly one (gre);
    /// else "" (a static entry to every remote of a vxlan / geneve tunnel).
    fn entry_remote(&self, k: &FdbKey, iface: &str, fdb: &Fdb) -> String {
        let Some((_, t)) = model::tunnel::get(&self.model, iface) else {
            return String::new();
        };
        match fdb.lookup(k).map(|h| h.remote) {
            Some(NO_REMOTE | ALL_REMOTES) | None => {}
            Some(r) => return std::net::Ipv4Addr::from(r).to_string(),
        }
        let one = match t.remotes.as_slice() {
            [r] => Some(*r),
            _ => None,
        };
        self.model
            .static_remote(&(k.bridge, k.vlan, k.mac))
            .or(one)
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    /// Workers, their rx queues and cycle counts.
    pub fn workers(&self) -> Vec<pb::Worker> {
        (0..self.engine.workers())
            .filter_map(|w| self.engine.stats(w).map(|s| (w, s)))
            .map(|(w, s)| {
                let rx_queues = self
                    .ports
                    .iter()
                    .flat_map(|(n, a)| {
                        a.rx_workers
                            .iter()
                            .enumerate()
                            .filter(move |(_, ww)| **ww == w)
                            .map(move |(q, _)| pb::RxQueue {
                                iface: n.clone(),
                                queue: q as u32,
                            })
                    })
                    .collect();
                pb::Worker {
                    id: w as u32,
                    lcore: self.engine.lcores().get(w).copied().unwrap_or_default(),
                    rx_queues,
                    packets: s.rx_packets,
                    cycles_per_packet: s.cycles_per_packet(),
                    busy_pct: s.busy_pct(),
                    busy_cycles: s.busy_cycles,
                    total_cycles: s.total_cycles,
                    tx_packets: s.tx_packets,
                    latency: self.engine.latency(w).map(|l| latency(&l)),
                    sleeps: s.sleeps,
                    wakeups: s.wakeups,
                }
            })
            .collect()
    }

    /// Per worker and stage: calls, packets, cycles and drops; the slow path's rings.
    pub fn runtime(&self) -> pb::GetRuntimeReply {
        let workers = (0..self.engine.workers())
            .filter_map(|w| self.engine.stats(w).map(|s| (w, s)))
            .map(|(w, s)| pb::WorkerRuntime {
                worker: w as u32,
                stages: Stage::ALL
                    .iter()
                    .zip(s.stages.iter())
                    .map(|(stage, st)| pb::StageRuntime {
                        stage: stage.name().to_string(),
                        calls: st.calls,
                        packets: st.packets,
                        cycles: st.cycles,
                        timed_packets: st.timed_packets,
                        cycles_per_packet: st.cycles_per_packet(),
                        vector_size: st.vector_size(),
                        drops: DropReason::ALL
                            .iter()
                            .map(|r| (r.name().to_string(), st.drops[*r as usize]))
                            .filter(|(_, n)| *n > 0)
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        let t = self.slow.stats().total();
        pb::GetRuntimeReply {
            workers,
            slow_path: Some(pb::SlowPathRuntime {
                punted: t.punted_total(),
                received: t.received,
                injected: t.injected,
                inject_full: t.inject_full,
                drained: t.drained,
                punt_depth: t.punt_depth as u64,
                inject_depth: t.inject_depth as u64,
            }),
        }
    }

    /// Drops by reason over all workers (every reason, zero or not).
    pub fn drops(&self) -> BTreeMap<String, u64> {
        let stats: Vec<_> = (0..self.engine.workers())
            .filter_map(|w| self.engine.stats(w))
            .collect();
        let mut drops: BTreeMap<String, u64> = DropReason::ALL
            .iter()
            .map(|r| {
                (
                    r.name().to_string(),
                    stats.iter().map(|s| s.dropped(*r)).sum(),
                )
            })
            .collect();
        // Learning refused (the frames themselves were still forwarded).
        let l = self.learner().stats();
        drops.insert("fdb_limit".into(), l.limit_refused);
        drops.insert("fdb_full".into(), l.table_full);
        drops.insert("learn_queue_full".into(), self.l2.shared.learn.overflowed());
        drops
    }

    /// MAC learning counters since start: learned, moved, aged.
    pub fn learn_stats(&self) -> vswitch_dataplane::l2::learn::LearnStats {
        self.learner().stats()
    }

    /// The router's FIB sizes, neighbours and next hops.
    pub fn router_stats(&self) -> crate::router::RouterStats {
        self.router
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stats()
    }

    /// The learner, locked (it is shared with the learner thread; held briefly).
    fn learner(&self) -> MutexGuard<'_, Learner> {
        self.l2.learner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Packet-buffer pools (the jumbo and zero-copy pools once made).
    pub fn mempools(&self) -> Vec<pb::Mempool> {
        std::iter::once(&self.pool)
            .chain(self.jumbo.as_ref())
            .map(|p| &**p)
            .chain(self.zc.as_ref().map(|z| z.pool()))
            .map(|p| pb::Mempool {
                name: p.name().to_string(),
                capacity: p.capacity(),
                in_use: p.in_use(),
                available: p.available(),
            })
            .collect()
    }

    /// The desired state as it is now: the changes that re-create it.
    pub fn state(&self) -> Snapshot {
        Snapshot {
            seq: 0,
            changes: self.model.changes(),
        }
    }

    /// Folds the journal into a new snapshot when it has grown enough (after a transaction
    /// was applied). A compaction that fails keeps the old snapshot and journal.
    fn compact(&mut self) {
        let objects = self.model.objects();
        if self.persist
            && self
                .store
                .as_ref()
                .is_some_and(|s| s.wants_snapshot(objects))
        {
            self.snapshot();
        }
    }

    /// Takes the last transaction back out of the journal: it could not be applied.
    fn retract(&mut self) {
        if let Some(Err(e)) = self.store.as_mut().map(Store::retract_last) {
            tracing::error!("{e}");
        }
    }

    /// Writes the whole desired state and empties the journal. If that fails, the previous
    /// snapshot and journal are kept: they hold every change acknowledged.
    pub fn snapshot(&mut self) {
        let state = self.state();
        if let Some(store) = self.store.as_mut() {
            if let Err(e) = store.snapshot(state) {
                tracing::error!(
                    "{e}; kept the previous snapshot and its journal, which hold every \
                     change made"
                );
            }
        }
    }

    /// Tells the event hub the names of ports and bridges (events carry names).
    fn update_names(&self) {
        let ports = self
            .ports
            .iter()
            .map(|(n, a)| (a.ifindex, n.clone()))
            .chain(self.tunnels.iter().map(|(n, t)| (t.ifindex, n.clone())))
            .collect();
        let bridges = self
            .model
            .bridges()
            .map(|(n, b)| (b.id, n.clone()))
            .collect();
        self.events.set_names(ports, bridges);
    }

    /// Reports interfaces whose link changed since the last call to watchers.
    pub fn poll_links(&mut self) {
        for (name, a) in self.ports.iter_mut() {
            let Ok(i) = self.model.iface(name) else {
                continue;
            };
            let up = i.admin_up && link_up(i, a);
            if up != a.link_seen {
                a.link_seen = up;
                self.events.link(name, up);
            }
        }
    }

    /// Builds the forwarding plan from the model and hands it to the workers.
    fn publish(&mut self) -> bool {
        let plan = self.build_plan();
        // SAFETY: build_plan keeps the plan's queue ownership rules: rx queue q of an
        // interface goes only to worker rx_workers[q], fixed by place_queues when the port
        // opened (a rollback restores the same placement); worker w gets only tx queue w of
        // each port (WorkerPlan::tx). Ports leave the plan before they are
        // closed, and are closed only after a publish that returned true (close_removed
        // leaks them otherwise; shutdown stops the workers first). No other thread of the
        // daemon calls rx/tx.
        unsafe { self.engine.publish(plan) }
    }

    fn build_plan(&self) -> ForwardingPlan {
        let (members, mut bridges) =
            model::bridge::plan(&self.model, MAX_IFACES, &|n| self.ifindex_of(n));
        let mut ifaces = vec![None; MAX_IFACES];
        let mut routed = std::collections::HashMap::new();
        let mut workers = vec![WorkerPlan::default(); self.engine.workers()];
        for w in &mut workers {
            w.tx = vec![Tx::None; MAX_IFACES];
        }
        for (name, a) in &self.ports {
            let Ok(i) = self.model.iface(name) else {
                continue;
            };
            let x = usize::from(a.ifindex);
            let l2 = members.get(x).cloned().flatten();
            let peer = i
                .xconnect
                .as_ref()
                .and_then(|p| Some((self.model.iface(p).ok()?, self.ports.get(p)?)));
            let addrs = model::addr::of_iface(&self.model, name);
            // Routed: an interface outside bridges and cross-connects with addresses, with
            // proxy-ARP on, or that static routes go through (a Calico-style pod interface
            // has no address of its own: a /32 route and proxy-ARP).
            let routed_iface = l2.is_none()
                && i.xconnect.is_none()
                && (!addrs.is_empty()
                    || i.l3.proxy_arp
                    || model::route::first_through(&self.model, name).is_some());
            let l3 = routed_iface.then(|| L3Port {
                vrf: i.l3.vrf,
                mac: i.spec.mac.unwrap_or_else(|| a.port.mac()),
            });
            if let Some(p) = &l3 {
                let mtu = i.spec.mtu.unwrap_or(1500);
                routed.insert(a.ifindex, iface_info(p, mtu, &addrs, i.l3.proxy_arp));
            }
            let input = match peer {
                _ if l2.is_some() => Input::Bridge,
                _ if l3.is_some() => Input::Route,
                None => Input::Drop(DropReason::Unconnected),
                Some((p, _)) if !p.admin_up => Input::Drop(DropReason::IfaceDown),
                Some((_, pa)) => Input::Xconnect(pa.ifindex),
            };
            if let Some(slot) = ifaces.get_mut(x) {
                *slot = Some(IfacePlan {
                    up: i.admin_up,
                    input,
                    l2,
                    max_frame: IfacePlan::max_frame_of(i.spec.mtu.unwrap_or(1500)),
                    l3,
                });
            }
            // Each worker transmits on its own tx queue of the port.
            for (w, plan) in workers.iter_mut().enumerate() {
                if let (Some(slot), Some(tx)) = (plan.tx.get_mut(x), a.port.tx(w)) {
                    *slot = tx;
                }
            }
            for (q, &w) in a.rx_workers.iter().enumerate() {
                if let (Some(rxq), Some(plan)) = (a.port.rx(q), workers.get_mut(w)) {
                    plan.rx.push(RxQueue {
                        rxq,
                        iface: a.ifindex,
                    });
                }
            }
        }
        self.plan_bvis(&mut ifaces, &mut bridges, &mut routed);
        let tunnels = self.plan_tunnels(&members, &mut ifaces, &mut workers, &mut routed);
        ForwardingPlan {
            version: 0,
            workers,
            ifaces,
            bridges,
            tunnels,
            nat: self.plan_nat(),
            acls: model::acl::plan(
                &self.model,
                &|n| self.ifindex_of(n),
                &self.acls,
                &self.sessions,
            ),
            l3: {
                let mut router = self.router();
                router.set_ifaces(routed);
                router.plan()
            },
        }
    }

    /// The plan's part of bridges' routed interfaces (`bvi:BR`) that route (addresses,
    /// proxy-ARP, or routes through them, as for interfaces): each a logical interface in
    /// its bridge's VLAN 0 and in its VRF, with the MAC [`model::bridge::bvi_mac`] gives,
    /// always up, whose MTU is the smallest of the bridge's members' (1500 without
    /// members); its bridge's plan points to it.
    fn plan_bvis(
        &self,
        ifaces: &mut [Option<IfacePlan>],
        bridges: &mut [Option<vswitch_dataplane::plan::BridgePlan>],
        routed: &mut std::collections::HashMap<IfIndex, IfaceInfo>,
    ) {
        for (br, b) in self.model.bridges() {
            let Some(&x) = self.bvis.get(br) else {
                continue;
            };
            let name = format!("{}{br}", model::iface::BVI_PREFIX);
            let addrs = model::addr::of_iface(&self.model, &name);
            let routes = !addrs.is_empty()
                || b.bvi.proxy_arp
                || model::route::first_through(&self.model, &name).is_some();
            if !routes {
                continue;
            }
            let mac = model::bridge::bvi_mac(br);
            let mtu = self.bvi_mtu(b);
            let l3 = L3Port {
                vrf: b.bvi.vrf,
                mac,
            };
            if let Some(slot) = ifaces.get_mut(usize::from(x)) {
                *slot = Some(IfacePlan {
                    up: true,
                    input: Input::Route,
                    l2: Some(vswitch_dataplane::plan::L2Port {
                        bridge: b.id,
                        mode: vswitch_dataplane::plan::VlanMode::Untagged,
                        up: true,
                    }),
                    max_frame: IfacePlan::max_frame_of(mtu),
                    l3: Some(l3),
                });
            }
            if let Some(Some(bp)) = bridges.get_mut(usize::from(b.id)) {
                bp.bvi = Some(vswitch_dataplane::plan::BviPlan { iface: x, mac });
            }
            routed.insert(x, iface_info(&l3, mtu, &addrs, b.bvi.proxy_arp));
        }
    }

    /// The plan's part of tunnels: each a logical interface (`members`: bridge membership
    /// by index) that is a bridge member, or routes as a port does (addresses, proxy-ARP
    /// or routes through it), or neither (unconnected); every worker's tx path to it is
    /// [`Tx::Tunnel`]; and its [`TunnelPlan`](vswitch_dataplane::plan::TunnelPlan), by
    /// index.
    fn plan_tunnels(
        &self,
        members: &[Option<vswitch_dataplane::plan::L2Port>],
        ifaces: &mut [Option<IfacePlan>],
        workers: &mut [WorkerPlan],
        routed: &mut std::collections::HashMap<IfIndex, IfaceInfo>,
    ) -> Vec<vswitch_dataplane::plan::TunnelPlan> {
        let mut out = Vec::with_capacity(self.tunnels.len());
        for (name, ti) in &self.tunnels {
            let Some((i, t)) = model::tunnel::get(&self.model, name) else {
                continue;
            };
            let x = ti.ifindex;
            let l2 = members.get(usize::from(x)).cloned().flatten();
            let addrs = model::addr::of_iface(&self.model, name);
            let tp = model::tunnel::plan(&self.model, name, i, t, x);
            let routes = l2.is_none()
                && (!addrs.is_empty()
                    || i.l3.proxy_arp
                    || model::route::first_through(&self.model, name).is_some());
            let l3 = routes.then_some(L3Port {
                vrf: i.l3.vrf,
                mac: tp.mac,
            });
            if let Some(p) = &l3 {
                let info = IfaceInfo {
                    l3_tunnel: !tp.encap.carries_ethernet(),
                    ..iface_info(p, tp.mtu, &addrs, i.l3.proxy_arp)
                };
                routed.insert(x, info);
            }
            let input = match (&l2, &l3) {
                (Some(_), _) => Input::Bridge,
                (None, Some(_)) => Input::Route,
                (None, None) => Input::Drop(DropReason::Unconnected),
            };
            if let Some(slot) = ifaces.get_mut(usize::from(x)) {
                *slot = Some(IfacePlan {
                    up: i.admin_up,
                    input,
                    l2,
                    l3,
                    max_frame: IfacePlan::max_frame_of(tp.mtu),
                });
            }
            for w in workers.iter_mut() {
                if let Some(slot) = w.tx.get_mut(usize::from(x)) {
                    *slot = Tx::Tunnel;
                }
            }
            out.push(tp);
        }
        out.sort_by_key(|t| t.iface);
        out
    }

    /// Saves the state, stops the workers, saves the live sessions (session_file.rs) and
    /// closes every port (removing the sockets the
    /// switch created). Returns the EAL for the caller to clean up once the switch (and so
    /// its mempool) is gone.
    pub fn shutdown(mut self) -> Option<Eal> {
        self.snapshot();
        if let Some(eal) = &self.eal {
            self.engine.stop(eal);
        }
        // With the workers stopped, the sessions are as they will stay.
        self.save_sessions();
        if let Some(t) = self.slow_thread.take() {
            t.stop();
        }
        self.session_reaper.take();
        let in_use = self.pool.in_use();
        let jumbo_in_use = self.jumbo.as_ref().map(|p| p.in_use());
        for (name, a) in std::mem::take(&mut self.ports) {
            a.port.close();
            if let Some(s) = a.server_socket {
                let _ = std::fs::remove_file(s);
            }
            tracing::info!(iface = %name, "closed");
        }
        tracing::info!(
            mbufs_in_use_before_close = in_use,
            mbufs_in_use = self.pool.in_use(),
            jumbo_mbufs_in_use_before_close = jumbo_in_use,
            jumbo_mbufs_in_use = self.jumbo.as_ref().map(|p| p.in_use()),
            zc_mbufs_in_use = self.zc.as_ref().map(|p| p.pool().in_use()),
            "ports closed"
        );
        self.eal.take()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::atomic::AtomicU16;

    use memif::msg::{Init, Msg, Text, MODE_ETHERNET};
    use vswitch_dataplane::memif_port::MemifPort;

    use super::*;

    /// Connects to memif socket `path` as a peer (SOCK_SEQPACKET) and sends `msg`.
    fn send_as_peer(path: &Path, msg: &[u8]) -> OwnedFd {
        // SAFETY: socket has no preconditions; the descriptor is owned right below.
        let fd =
            unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-zero sockaddr_un is a valid (empty) address.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_bytes();
        assert!(bytes.len() < addr.sun_path.len());
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        // SAFETY: addr is a sockaddr_un of len bytes, alive for the call.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        // SAFETY: msg is readable for msg.len() bytes.
        let n = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        assert_eq!(
            n,
            msg.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
        fd
    }

    /// A memif port reports every counter it keeps, by name, zeros included (a server
    /// with no peer); a peer refused (INIT of another protocol version) shows as its
    /// reason's counter and as the last error.
    #[test]
    fn memif_ports_name_their_counters_and_last_error() {
        let Some(pool) = dpdk::test_eal::try_pool("ctl_memif_ctr", 256) else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("vsctlmemif{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("m.sock");
        let cfg = memif::Config::new(memif::Role::Server, &sock, 0);
        let port = MemifPort::open(cfg, 1, pool).unwrap();
        let port = Backend::Memif(
            MemifRef(Arc::new(port)),
            [2, 0, 0, 0, 0, 1],
            AtomicU16::new(1500),
        );
        let counters = |b: &Backend| b.counters().into_iter().collect::<BTreeMap<_, _>>();
        let c = counters(&port);
        let keys: Vec<&str> = c.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "bad_desc",
                "link_events",
                "peer_disconnects",
                "refused_bad_cookie",
                "refused_bad_log2",
                "refused_bad_message",
                "refused_bad_region",
                "refused_bad_ring",
                "refused_bad_secret",
                "refused_bad_version",
                "refused_local",
                "refused_ring_broken",
                "refused_timeout",
                "refused_too_many",
                "ring_broken",
                "rx_bytes",
                "rx_frames",
                "rx_kicks",
                "rx_nombuf",
                "socket_closed",
                "too_long",
                "tx_busy",
                "tx_bytes",
                "tx_frames",
                "tx_no_room",
            ]
        );
        assert!(c.values().all(|&n| n == 0), "{c:?}");
        assert_eq!(port.peer(), (String::new(), String::new()));

        let init = Msg::Init(Init {
            version: 1 << 8,
            id: 0,
            mode: MODE_ETHERNET,
            secret: Text::new(""),
            name: Text::new("bad-peer"),
        });
        let _peer = send_as_peer(&sock, &init.emit());
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while counters(&port)["refused_bad_version"] == 0 {
            assert!(
                Instant::now() < deadline,
                "no refusal: {:?}",
                counters(&port)
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let (peer, last_error) = port.peer();
        assert_eq!(peer, "");
        assert!(last_error.contains("version"), "{last_error}");
        drop(port);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
