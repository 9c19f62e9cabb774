//! The switch as the control plane sees it: interfaces (each a DPDK port), cross-connects,
//! the workers' forwarding plan built from them, and the desired state saved after every
//! change.
//!
//! Thread safety: one `Switch` exists, behind the service's mutex; every operation runs
//! with that lock held, so operations are serialised. Each operation is a transaction (see
//! `txn`): its changes are validated and staged one after the other, some of them on the
//! ports themselves (new ports opened, MTU and link set), and a failing change undoes
//! everything staged before it, so a failed call leaves the switch as it was.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use dpdk::{Eal, Mempool, Port, PortConfig};
use vswitch_dataplane::l2::bridge::L2Shared;
use vswitch_dataplane::l2::learn::Learner;
use vswitch_dataplane::plan::{place_queues, Output};
use vswitch_dataplane::{DropReason, Engine, ForwardingPlan, PortTotals, RxAssignment, WorkerPlan};
use vswitch_proto::v1 as pb;

use crate::error::{ApiError, ApiResult};
use crate::events::Events;
use crate::iface_spec::{IfaceSpec, Kind};
use crate::names::{format_mac, parse_mtu};
use crate::state::{self, IfaceState, State, Store, XconnectState};

mod bridge;
mod restore;
mod txn;

pub use txn::{change_name, TxnOutcome};

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
fn link_up(i: &Iface) -> bool {
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
        None => i.port.link().up,
    }
}

/// One interface and the port that implements it.
struct Iface {
    spec: IfaceSpec,
    port: Port,
    devargs: String,
    admin_up: bool,
    xconnect: Option<String>,
    /// The bridge it is a member of.
    bridge: Option<String>,
    /// The worker polling each rx queue (index = queue).
    rx_workers: Vec<usize>,
    /// Dataplane counts of this port id from before this interface had it (ids are reused).
    base: PortTotals,
    /// Link state last reported to watchers.
    link_seen: bool,
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

/// The running switch.
pub struct Switch {
    // Field order is drop order: ports go before the pool, the pool before the EAL.
    ifaces: BTreeMap<String, Iface>,
    bridges: BTreeMap<String, bridge::Bridge>,
    /// Static MAC entries (the desired state; the MAC table follows it).
    statics: BTreeMap<bridge::StaticKey, String>,
    l2: L2,
    engine: Engine,
    pool: Arc<Mempool>,
    eal: Option<Eal>,
    paths: Paths,
    queue_load: Vec<usize>,
    next_index: u32,
    /// The state file and its journal (None: not persisted).
    store: Option<Store>,
    /// Journals each change (off while restoring: one snapshot at the end).
    persist: bool,
    /// The transaction being staged.
    txn: Option<txn::Txn>,
    events: Arc<Events>,
    started: Instant,
}

impl Switch {
    /// A switch with no interfaces, over a started engine.
    pub fn new(
        eal: Eal,
        pool: Arc<Mempool>,
        engine: Engine,
        l2: L2,
        paths: Paths,
        store: Option<Store>,
        events: Arc<Events>,
    ) -> Switch {
        let workers = engine.workers();
        Switch {
            ifaces: BTreeMap::new(),
            bridges: BTreeMap::new(),
            statics: BTreeMap::new(),
            l2,
            engine,
            pool,
            eal: Some(eal),
            paths,
            queue_load: vec![0; workers],
            next_index: 0,
            store,
            persist: true,
            txn: None,
            events,
            started: Instant::now(),
        }
    }

    fn eal(&self) -> ApiResult<&Eal> {
        self.eal
            .as_ref()
            .ok_or_else(|| ApiError::internal("the switch is shutting down"))
    }

    fn iface(&self, name: &str) -> ApiResult<&Iface> {
        self.ifaces
            .get(name)
            .ok_or_else(|| ApiError::not_found(format!("interface {name:?} not found")))
    }

    /// Health summary.
    pub fn health(&self) -> pb::HealthReply {
        pb::HealthReply {
            version: env!("CARGO_PKG_VERSION").to_string(),
            workers: self.engine.workers() as u32,
            interfaces: self.ifaces.len() as u32,
            uptime_seconds: self.started.elapsed().as_secs(),
        }
    }

    /// Adds an interface: validates it, opens its port, and gives its rx queues to workers.
    fn add_iface(
        &mut self,
        name: &str,
        type_name: &str,
        args: &BTreeMap<String, String>,
    ) -> ApiResult<()> {
        if self.ifaces.contains_key(name) {
            return Err(ApiError::exists(format!(
                "interface {name:?} exists already"
            )));
        }
        let mut spec = IfaceSpec::parse(name, type_name, args, &self.paths.run_dir)?;
        self.check_shared_resources(&spec)?;
        if let Some(sock) = spec.server_socket() {
            vswitch_vhost::prepare_socket_dir(sock).map_err(ApiError::invalid)?;
            vswitch_vhost::claim_server_socket(sock).map_err(ApiError::conflict)?;
        }
        let plan = spec.port_plan(self.next_index, self.engine.workers() as u16);
        self.next_index += 1;
        let config = PortConfig {
            rx_queues: plan.rx_queues,
            tx_queues: plan.tx_queues,
            mac: spec.port_mac(),
            mtu: spec.mtu,
            ..PortConfig::default()
        };
        let port =
            Port::open(self.eal()?, &plan.devargs, self.pool.clone(), config).map_err(|e| {
                ApiError::invalid(format!("interface {name:?}: DPDK refused the device: {e}"))
            })?;
        if let Some(sock) = spec.server_socket() {
            vswitch_vhost::restrict_socket(sock);
        }
        if spec.mac.is_none() && spec.driver_invents_mac() {
            // The driver made a MAC up: keep it, so that a restart restores this one.
            spec.record_mac(port.mac());
        }
        let rx_workers = place_queues(&mut self.queue_load, plan.rx_queues as usize);
        let base = self.engine.port_totals(port.id());
        tracing::info!(iface = name, devargs = %plan.devargs, port = port.id(), "interface added");
        let iface = Iface {
            spec,
            port,
            devargs: plan.devargs,
            admin_up: true,
            xconnect: None,
            bridge: None,
            rx_workers,
            base,
            link_seen: false,
        };
        self.ifaces.insert(name.to_string(), iface);
        self.iface_opened(name);
        Ok(())
    }

    /// Two interfaces may not drive one Linux interface or one socket.
    fn check_shared_resources(&self, spec: &IfaceSpec) -> ApiResult<()> {
        for (other, i) in &self.ifaces {
            let clash = match (&spec.kind, &i.spec.kind) {
                (
                    Kind::AfPacket { iface: a } | Kind::Tap { iface: a },
                    Kind::AfPacket { iface: b } | Kind::Tap { iface: b },
                ) => a == b,
                _ => spec.socket().is_some() && spec.socket() == i.spec.socket(),
            };
            if clash {
                return Err(ApiError::conflict(format!(
                    "interface {other:?} already uses {}",
                    match &spec.kind {
                        Kind::AfPacket { iface } | Kind::Tap { iface } =>
                            format!("Linux interface {iface}"),
                        _ => format!(
                            "socket {}",
                            spec.socket()
                                .map(|s| s.display().to_string())
                                .unwrap_or_default()
                        ),
                    }
                )));
            }
        }
        Ok(())
    }

    /// Removes an interface (and its cross-connect and bridge membership). Its port is
    /// closed when the transaction finishes, after every worker has stopped using it.
    fn del_iface(&mut self, name: &str) -> ApiResult<()> {
        if let Some(br) = self.iface(name)?.bridge.clone() {
            self.remove_member(&br, name);
        }
        let Some(iface) = self.ifaces.remove(name) else {
            return Err(ApiError::not_found(format!("interface {name:?} not found")));
        };
        if let Some(peer) = iface.xconnect.as_ref().and_then(|p| self.ifaces.get_mut(p)) {
            peer.xconnect = None;
        }
        for &w in &iface.rx_workers {
            if let Some(n) = self.queue_load.get_mut(w) {
                *n = n.saturating_sub(1);
            }
        }
        tracing::info!(iface = name, "interface deleted");
        self.iface_removed(name, iface);
        Ok(())
    }

    /// Changes admin state and/or MTU.
    fn set_iface(&mut self, name: &str, admin_up: Option<bool>, mtu: Option<u32>) -> ApiResult<()> {
        let iface = self.iface(name)?;
        let mtu = match mtu.filter(|m| *m != 0) {
            Some(m) => Some(parse_mtu("mtu", &m.to_string()).map_err(ApiError::invalid)?),
            None => None,
        };
        let (mtu_before, admin_before) = (iface.port.mtu(), iface.admin_up);
        if let Some(m) = mtu {
            iface
                .port
                .set_mtu(m)
                .map_err(|e| ApiError::invalid(format!("interface {name:?}: {e}")))?;
        }
        if let Some(up) = admin_up {
            if let Err(e) = iface.port.set_link(up) {
                tracing::warn!(iface = name, "link change not supported by the device: {e}");
            }
        }
        if let Some(iface) = self.ifaces.get_mut(name) {
            if let Some(m) = mtu {
                iface.spec.mtu = Some(m);
                iface.spec.args.insert("mtu".into(), m.to_string());
            }
            if let Some(up) = admin_up {
                iface.admin_up = up;
            }
        }
        self.port_changed(name, mtu_before, admin_before);
        self.plan_changed();
        Ok(())
    }

    /// Cross-connects two interfaces, both ways.
    fn add_xconnect(&mut self, a: &str, b: &str) -> ApiResult<()> {
        let (ia, ib) = (self.iface(a)?, self.iface(b)?);
        if a == b {
            return Err(ApiError::invalid(format!(
                "cannot cross-connect {a:?} to itself"
            )));
        }
        for (n, i) in [(a, ia), (b, ib)] {
            if let Some(br) = &i.bridge {
                return Err(ApiError::conflict(format!(
                    "interface {n:?} is a member of bridge {br:?}"
                )));
            }
            if let Some(p) = &i.xconnect {
                return Err(ApiError::conflict(format!(
                    "interface {n:?} is already cross-connected to {p:?}"
                )));
            }
        }
        for (n, peer) in [(a, b), (b, a)] {
            if let Some(i) = self.ifaces.get_mut(n) {
                i.xconnect = Some(peer.to_string());
            }
        }
        self.plan_changed();
        tracing::info!(a, b, "cross-connect added");
        Ok(())
    }

    /// Removes the cross-connect `name` belongs to.
    fn del_xconnect(&mut self, name: &str) -> ApiResult<()> {
        let peer = self.iface(name)?.xconnect.clone().ok_or_else(|| {
            ApiError::not_found(format!("interface {name:?} is not cross-connected"))
        })?;
        for n in [name, peer.as_str()] {
            if let Some(i) = self.ifaces.get_mut(n) {
                i.xconnect = None;
            }
        }
        self.plan_changed();
        tracing::info!(a = name, b = %peer, "cross-connect deleted");
        Ok(())
    }

    /// The cross-connect `name` belongs to, `name` first.
    pub fn get_xconnect(&self, name: &str) -> ApiResult<pb::Xconnect> {
        let peer = self.iface(name)?.xconnect.clone().ok_or_else(|| {
            ApiError::not_found(format!("interface {name:?} is not cross-connected"))
        })?;
        Ok(pb::Xconnect {
            iface_a: name.to_string(),
            iface_b: peer,
        })
    }

    /// Every cross-connect, each once.
    pub fn xconnects(&self) -> Vec<pb::Xconnect> {
        self.ifaces
            .iter()
            .filter_map(|(n, i)| {
                i.xconnect
                    .as_ref()
                    .filter(|p| n.as_str() < p.as_str())
                    .map(|p| (n, p))
            })
            .map(|(a, b)| pb::Xconnect {
                iface_a: a.clone(),
                iface_b: b.clone(),
            })
            .collect()
    }

    /// One interface's configuration and counters.
    pub fn get_iface(&self, name: &str) -> ApiResult<pb::Interface> {
        Ok(self.describe(name, self.iface(name)?))
    }

    /// Every interface.
    pub fn list_ifaces(&self) -> Vec<pb::Interface> {
        self.ifaces
            .iter()
            .map(|(n, i)| self.describe(n, i))
            .collect()
    }

    fn describe(&self, name: &str, i: &Iface) -> pb::Interface {
        // Packets and bytes as the dataplane counted them (every driver alike); losses
        // inside the device (missed, errors, no mbuf) from the driver.
        let s = i.port.stats();
        let t = self.engine.port_totals(i.port.id()).since(i.base);
        let (rxq, txq) = i.port.queues();
        pb::Interface {
            name: name.to_string(),
            r#type: i.spec.type_name.clone(),
            args: i.spec.args.clone().into_iter().collect(),
            admin_up: i.admin_up,
            link_up: i.admin_up && link_up(i),
            mac: format_mac(i.spec.mac.unwrap_or_else(|| i.port.mac())),
            mtu: u32::from(i.port.mtu()),
            rx_packets: t.rx_packets,
            tx_packets: t.tx_packets,
            rx_bytes: t.rx_bytes,
            tx_bytes: t.tx_bytes,
            drops: s.rx_missed + s.rx_errors + s.tx_errors + s.rx_nombuf + t.drops,
            port_id: u32::from(i.port.id()),
            devargs: i.devargs.clone(),
            rx_queues: u32::from(rxq),
            tx_queues: u32::from(txq),
            xconnect: i.xconnect.clone().unwrap_or_default(),
        }
    }

    /// Workers, their rx queues and cycle counts.
    pub fn workers(&self) -> Vec<pb::Worker> {
        (0..self.engine.workers())
            .filter_map(|w| self.engine.stats(w).map(|s| (w, s)))
            .map(|(w, s)| {
                let rx_queues = self
                    .ifaces
                    .iter()
                    .flat_map(|(n, i)| {
                        i.rx_workers
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
                }
            })
            .collect()
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

    /// The learner, locked (it is shared with the learner thread; held briefly).
    fn learner(&self) -> MutexGuard<'_, Learner> {
        self.l2.learner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Packet-buffer pools.
    pub fn mempools(&self) -> Vec<pb::Mempool> {
        vec![pb::Mempool {
            name: self.pool.name().to_string(),
            capacity: self.pool.capacity(),
            in_use: self.pool.in_use(),
            available: self.pool.available(),
        }]
    }

    /// The desired state as it is now.
    pub fn state(&self) -> State {
        State {
            version: state::STATE_VERSION,
            seq: 0,
            interfaces: self
                .ifaces
                .iter()
                .map(|(n, i)| IfaceState {
                    name: n.clone(),
                    type_name: i.spec.type_name.clone(),
                    args: i.spec.args.clone(),
                    admin_up: i.admin_up,
                })
                .collect(),
            xconnects: self
                .xconnects()
                .into_iter()
                .map(|x| XconnectState {
                    iface_a: x.iface_a,
                    iface_b: x.iface_b,
                })
                .collect(),
            bridges: self.bridge_states(),
        }
    }

    /// Folds the journal into a new snapshot when it has grown enough (after a transaction
    /// was applied). A compaction that fails keeps the old snapshot and journal.
    fn compact(&mut self) {
        if self.persist && self.store.as_ref().is_some_and(Store::wants_snapshot) {
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
            .ifaces
            .iter()
            .map(|(n, i)| (i.port.id(), n.clone()))
            .collect();
        let bridges = self
            .bridges
            .iter()
            .map(|(n, b)| (b.id, n.clone()))
            .collect();
        self.events.set_names(ports, bridges);
    }

    /// Reports interfaces whose link changed since the last call to watchers.
    pub fn poll_links(&mut self) {
        for (name, i) in self.ifaces.iter_mut() {
            let up = i.admin_up && link_up(i);
            if up != i.link_seen {
                i.link_seen = up;
                self.events.link(name, up);
            }
        }
    }

    /// Builds the forwarding plan from the interfaces and hands it to the workers.
    fn publish(&mut self) -> bool {
        let plan = self.build_plan();
        // SAFETY: build_plan keeps the plan's queue ownership rules: rx queue q of an
        // interface goes only to worker rx_workers[q], fixed by place_queues when the port
        // opened (a rollback restores the same placement); worker w gets only tx queue w of
        // each port (Output::Port and WorkerPlan::tx). Ports leave the plan before they are
        // closed, and are closed only after a publish that returned true (close_removed
        // leaks them otherwise; shutdown stops the workers first). No other thread of the
        // daemon calls rx/tx.
        unsafe { self.engine.publish(plan) }
    }

    fn build_plan(&self) -> ForwardingPlan {
        let mut workers = vec![WorkerPlan::default(); self.engine.workers()];
        for i in self.ifaces.values() {
            for (q, &w) in i.rx_workers.iter().enumerate() {
                let (Some(rxq), Some(plan)) = (i.port.rx_queue(q as u16), workers.get_mut(w))
                else {
                    continue;
                };
                let peer = i.xconnect.as_ref().and_then(|p| self.ifaces.get(p));
                let out = match peer {
                    _ if !i.admin_up => Output::Drop(DropReason::IfaceDown),
                    _ if i.bridge.is_some() => Output::Bridge,
                    None => Output::Drop(DropReason::Unconnected),
                    Some(p) if !p.admin_up => Output::Drop(DropReason::IfaceDown),
                    Some(p) => match p.port.tx_queue(w as u16) {
                        Some(txq) => Output::Port(txq),
                        None => Output::Drop(DropReason::NoTxQueue),
                    },
                };
                plan.rx.push(RxAssignment { rxq, out });
            }
        }
        // Every worker's own tx queue of every port, for bridged output.
        for (w, plan) in workers.iter_mut().enumerate() {
            plan.tx = vec![None; dpdk::MAX_PORTS];
            for i in self.ifaces.values() {
                if let Some(slot) = plan.tx.get_mut(usize::from(i.port.id())) {
                    *slot = i.port.tx_queue(w as u16);
                }
            }
        }
        let (ports, bridges) = self.l2_plan();
        ForwardingPlan {
            version: 0,
            workers,
            ports,
            bridges,
        }
    }

    /// Saves the state, stops the workers and closes every port (removing the sockets the
    /// switch created). Returns the EAL for the caller to clean up once the switch (and so
    /// its mempool) is gone.
    pub fn shutdown(mut self) -> Option<Eal> {
        self.snapshot();
        if let Some(eal) = &self.eal {
            self.engine.stop(eal);
        }
        let in_use = self.pool.in_use();
        for (name, i) in std::mem::take(&mut self.ifaces) {
            let sock = i.spec.server_socket().map(PathBuf::from);
            i.port.close();
            if let Some(s) = sock {
                let _ = std::fs::remove_file(s);
            }
            tracing::info!(iface = %name, "closed");
        }
        tracing::info!(
            mbufs_in_use_before_close = in_use,
            mbufs_in_use = self.pool.in_use(),
            "ports closed"
        );
        self.eal.take()
    }
}
