//! Transactions: every change to the switch goes through here, a single call being a
//! transaction of one change.
//!
//! A transaction runs in five steps:
//! 1. **stage** on a copy of the model (model/): each change validated and made in order,
//!    each seeing the ones before it. The result is the new model and its [`Diff`]. A
//!    failure drops the copy: nothing else has been touched.
//! 2. **ports**: the diff's port operations, in change order: new ports opened, MTU and
//!    link set (DPDK is the only judge of a device and of an MTU), removed ports taken out
//!    (kept open until the workers let go). The MACs that ports opened without `mac=` got
//!    are recorded in the new model, so that the journal and a replay have them. Learned
//!    MAC entries to delete are checked against the MAC table. Every step is recorded in
//!    an [`Undo`].
//! 3. **write ahead**: the changes are appended to the journal and fsync'd before any of
//!    them reaches the dataplane. A write that fails (a full disk) fails the transaction.
//! 4. **carry out**: the MAC table follows the diff (static entries first: the one step
//!    that can still fail, and that undoes itself when it does; the journal record is then
//!    taken back), the new model becomes the switch's, the ACLs whose rules changed are
//!    built again (their classifiers: only theirs), as are the services whose spec changed
//!    (their Maglev tables), the forwarding plan is published
//!    once, ports removed are closed after every worker has moved to the plan without
//!    them, and events are sent. Only then is the caller answered (and the journal
//!    compacted, if it has grown enough). The L3 part of the diff (VRFs, interface
//!    settings, addresses, routes with resolved next-hops, neighbours: see
//!    [`L3Diff`]) is handed to [`Switch::fib`], where the dataplane's FIB will take it.
//! 5. or **undo**, if step 2, 3 or 4 fails: ports opened are closed, ports removed are
//!    kept, MTU and link changes are undone, the copy of the model is dropped. The workers
//!    never saw any of it, and no event was sent.
//!
//! The cost of a transaction is that of its changes, not of the state: staging copies
//! nothing but the paths it edits, and the MAC table and learner are updated entry by
//! entry from the diff. Only a change to the plan (interfaces, bridges, members) rebuilds
//! the plan, whose size is that of the interfaces.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use dpdk::{Mempool, Port, PortConfig};
use kport::{AfPacketConfig, TapConfig};

/// The rings of a native af_packet port: 256 rx slots and 128 tx slots of 2 KiB (768 KiB
/// per port, half kport's default: a node's hundreds of pods pin this much each). Frames
/// longer than a slot (TSO super-frames) do not take ring slots (they are read from the
/// socket), so the slots carry a pod's small frames: 256 of them last 250 µs at 1 Mpps.
const NATIVE_RINGS: AfPacketConfig = AfPacketConfig {
    rx_frame_size: 2048,
    rx_frame_count: 256,
    rx_copy_queue_bytes: 4 << 20,
    tx_frame_size: 2048,
    tx_frame_count: 128,
    promisc: true,
};
use vswitch_dataplane::l2::fdb::{FdbKey, Remote, ALL_REMOTES, NO_REMOTE};
use vswitch_dataplane::memif_port::MemifPort;
use vswitch_dataplane::native::NativePort;
use vswitch_dataplane::plan::place_queues;
use vswitch_dataplane::vhost_port::VhostPort;
use vswitch_dataplane::IfIndex;
use vswitch_dataplane::{MemifRef, NativeRef, VhostRef};
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;
use vswitch_vhost::SocketRole;

use super::{Attached, Backend, Switch, TunnelIndex};
use crate::error::{ApiError, ApiResult};
use crate::iface_spec::IfaceSpec;
use crate::model::{self, in_change, Diff, L3Diff, Model, PortOp, StaticKey};
use crate::names::format_mac;

/// What steps 2-4 did, so that a failure can undo it.
#[derive(Default)]
struct Undo {
    /// Interfaces whose ports this transaction opened.
    opened: Vec<String>,
    /// Interfaces it removed: their ports stay open until the workers have let go.
    removed: Vec<(String, Attached)>,
    /// MTU and admin state changes made on ports: (interface, MTU before, admin before).
    port_changes: Vec<(String, u16, bool)>,
    /// Linux interfaces whose MTU ports opened here set: (interface, MTU before).
    kernel_mtus: Vec<(String, u16)>,
    queue_load: Vec<usize>,
    next_index: u32,
    /// The bridges' routed interfaces' indices as they were.
    bvis: BTreeMap<String, IfIndex>,
    /// Indices of routed interfaces of bridges this transaction removed (not reused by it:
    /// they stay in the plan until it is published).
    bvis_removed: Vec<(String, IfIndex)>,
    /// The tunnels' indices as they were.
    tunnels: BTreeMap<String, TunnelIndex>,
    /// Indices of tunnels this transaction removed (not reused by it, as bridges').
    tunnels_removed: Vec<(String, TunnelIndex)>,
    /// MACs that interfaces added without mac= got from their driver: (index of the
    /// AddInterface change, MAC), written into the journaled change.
    recorded_macs: Vec<(usize, String)>,
}

/// What a finished transaction reports.
#[derive(Debug, Default)]
pub struct TxnOutcome {
    /// Learned entries removed, per FlushFdb change (by index).
    pub flushed: BTreeMap<usize, u32>,
    /// Sessions removed, per FlushSessions change (by index).
    pub sessions_flushed: BTreeMap<usize, u32>,
}

/// How long each step of a transaction took, wall-clock and on the CPU of the thread
/// running it, for the log line of a large one.
struct Phases {
    last: (std::time::Instant, std::time::Duration),
    laps: Vec<(&'static str, std::time::Duration, std::time::Duration)>,
}

/// CPU time of the calling thread.
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the pointer it is given, a local here.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Phases {
    fn start() -> Phases {
        Phases {
            last: (std::time::Instant::now(), thread_cpu()),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, name: &'static str) {
        let now = (std::time::Instant::now(), thread_cpu());
        self.laps
            .push((name, now.0 - self.last.0, now.1.saturating_sub(self.last.1)));
        self.last = now;
    }
}

/// `stage=812ms(cpu 790) journal=...`
impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, wall, cpu)) in self.laps.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(
                f,
                "{sep}{name}={}ms(cpu {})",
                wall.as_millis(),
                cpu.as_millis()
            )?;
        }
        Ok(())
    }
}

/// The VTEP the dataplane's entry for static entry `k` on interface `iface` carries: none
/// unless `iface` is a tunnel that carries Ethernet (vxlan, geneve, gre teb); then the
/// IPv4 VTEP the entry names, else every remote of the tunnel (head-end replication; a gre
/// tunnel's one remote).
fn static_vtep(m: &Model, k: &StaticKey, iface: &str) -> Remote {
    let Some((_, t)) = model::tunnel::get(m, iface) else {
        return NO_REMOTE;
    };
    if !t.encap.carries_ethernet() {
        return NO_REMOTE;
    }
    match m.static_remote(k) {
        Some(IpAddr::V4(a)) => u32::from(a),
        _ => ALL_REMOTES,
    }
}

fn fdb_key(k: &StaticKey) -> FdbKey {
    FdbKey {
        bridge: k.0,
        vlan: k.1,
        mac: k.2,
    }
}

impl Switch {
    /// Applies `changes` all or nothing. On error nothing has changed, and the error says
    /// which change failed (for batches of more than one).
    pub fn transaction(&mut self, changes: &[pb::Change]) -> ApiResult<TxnOutcome> {
        if self.eal.is_none() {
            return Err(ApiError::unavailable("vswitchd is shutting down"));
        }
        let mut clock = Phases::start();
        let staged = self.model.stage(changes, &self.limits)?;
        clock.lap("stage");
        let (mut next, diff) = (staged.model, staged.diff);
        let at = |(i, e): (usize, ApiError)| {
            in_change(
                e,
                i,
                changes.len(),
                changes.get(i).and_then(|c| c.change.as_ref()),
            )
        };
        let mut undo = Undo {
            queue_load: self.queue_load.clone(),
            next_index: self.next_index,
            bvis: self.bvis.clone(),
            tunnels: self.tunnels.clone(),
            ..Undo::default()
        };
        let prepared = self
            .ports(&mut next, &diff, &mut undo)
            .and_then(|()| self.bvis(&next, changes, &mut undo))
            .and_then(|()| self.tunnels(&next, changes, &mut undo))
            .and_then(|()| self.check_learned(&diff));
        if let Err(e) = prepared {
            self.undo(undo);
            return Err(at(e));
        }
        clock.lap("ports");
        let journaled = match self.write_ahead(changes, &diff, &mut undo) {
            Ok(j) => j,
            Err(e) => {
                self.undo(undo);
                return Err(e);
            }
        };
        clock.lap("journal");
        let outcome = match self.mac_table(&next, &diff) {
            Ok(o) => o,
            Err(e) => {
                if journaled {
                    self.retract();
                }
                self.undo(undo);
                return Err(at(e));
            }
        };
        let mut outcome = outcome;
        let Diff {
            l3,
            events,
            acls,
            sessions,
            session_flushes,
            services,
            ..
        } = diff;
        // VRFs come and go in the plan; an interface is routed while it has addresses, or
        // static routes through it (an unnumbered link, a pod's).
        let l3_plan = !l3.vrfs.added.is_empty()
            || !l3.vrfs.removed.is_empty()
            || !l3.addresses.added.is_empty()
            || !l3.addresses.removed.is_empty()
            || !l3.ifaces.is_empty()
            || routed_by_routes_changed(&self.model, &next, &l3);
        clock.lap("mac_table");
        self.fib(l3, &undo);
        clock.lap("fib");
        // FIB groups retired by this or earlier changes are reused once every worker has
        // finished a poll begun after now: after a publish that returns true.
        let grace = self
            .router
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .begin_grace();
        self.model = next;
        if sessions {
            self.sessions
                .configure(&self.model.session_config.dataplane());
        }
        for (index, iface) in session_flushes {
            let n = match iface.as_deref() {
                None => self.sessions.flush(None),
                // An interface deleted by the same transaction has none left (below).
                Some(name) => self
                    .l3_index(name)
                    .map_or(0, |i| self.sessions.flush(Some(i))),
            };
            *outcome.sessions_flushed.entry(index).or_default() += n as u32;
        }
        self.build_acls(&acls);
        self.build_services(&services);
        if diff.plan || l3_plan || grace.is_some() {
            let quiet = self.publish();
            if let (true, Some(g)) = (quiet, grace) {
                self.router
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .end_grace(g);
            }
            if !quiet {
                tracing::warn!("a dataplane worker took over 2 s to pick up the new configuration");
            }
            // Sessions of interfaces that went go with them (their indices are reused).
            let gone = undo.removed.iter().map(|(_, a)| a.ifindex);
            let gone = gone.chain(undo.tunnels_removed.iter().map(|(_, t)| t.ifindex));
            for i in gone.chain(undo.bvis_removed.iter().map(|(_, i)| *i)) {
                self.sessions.flush(Some(i));
            }
            for (name, a) in undo.removed {
                close_removed(&name, a, quiet);
            }
            self.update_names();
        }
        clock.lap("publish");
        // Logged change by change for small transactions; a large one (a bulk load of MAC
        // entries, say) is one line.
        let each = events.len() <= 16;
        let n = events.len();
        for (change, object) in events {
            if each {
                tracing::info!(change, object = %object, "applied");
            }
            self.events.config(change, &object);
        }
        clock.lap("events");
        self.compact();
        clock.lap("compact");
        if !each {
            tracing::info!(changes = n, phases = %clock, "transaction applied");
        }
        Ok(outcome)
    }

    /// Step 2: the diff's port operations, in order. On error: the failing change's index.
    fn ports(
        &mut self,
        next: &mut Model,
        diff: &Diff,
        undo: &mut Undo,
    ) -> Result<(), (usize, ApiError)> {
        for op in &diff.ports {
            match op {
                PortOp::Open { index, name, spec } => {
                    self.open(next, *index, name, spec, undo)
                        .map_err(|e| (*index, e))?;
                }
                PortOp::Close { name } => {
                    if let Some(a) = self.ports.remove(name) {
                        for &w in &a.rx_workers {
                            if let Some(n) = self.queue_load.get_mut(w) {
                                *n = n.saturating_sub(1);
                            }
                        }
                        undo.removed.push((name.clone(), a));
                    }
                }
                PortOp::Set {
                    index,
                    name,
                    mtu,
                    admin_up,
                } => {
                    let Some(a) = self.ports.get(name) else {
                        continue;
                    };
                    let admin_before = self.model.iface(name).map_or(true, |i| i.admin_up);
                    undo.port_changes
                        .push((name.clone(), a.mtu(), admin_before));
                    if let Some(m) = mtu {
                        a.set_mtu(*m).map_err(|e| {
                            (
                                *index,
                                ApiError::invalid(format!("interface {name:?}: {e}")),
                            )
                        })?;
                    }
                    if let Some(up) = admin_up {
                        if let Err(e) = a.port.set_link(*up) {
                            tracing::warn!(iface = %name, "link change not supported by the device: {e}");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens the port of interface `name` (added by change `index` as `spec`) and gives
    /// its rx queues to workers.
    fn open(
        &mut self,
        next: &mut Model,
        index: usize,
        name: &str,
        spec: &IfaceSpec,
        undo: &mut Undo,
    ) -> ApiResult<()> {
        let ifindex = self.free_ifindex(undo).ok_or_else(|| {
            ApiError::invalid(self.iface_limit_reached(&format!("interface {name:?}")))
        })?;
        if let Some(sock) = spec.server_socket() {
            vswitch_vhost::prepare_socket_dir(sock, spec.socket_group)
                .map_err(ApiError::invalid)?;
            vswitch_vhost::claim_server_socket(sock).map_err(ApiError::conflict)?;
        }
        let buffers = spec.buffers();
        let pool = self.pool_for(buffers)?;
        if let Some(ifname) = spec.native() {
            return self.open_native(name, ifname, spec, ifindex, pool, undo);
        }
        if let Some((socket, role, queues)) = spec.native_vhost() {
            let vhost = SocketPort {
                socket,
                client: role == SocketRole::Client,
                queues,
                group: spec.socket_group,
            };
            return self.open_vhost(next, index, name, spec, vhost, ifindex, pool, undo);
        }
        if let Some((socket, role, id, queues)) = spec.native_memif() {
            let memif = SocketPort {
                socket,
                client: role == SocketRole::Client,
                queues,
                group: spec.socket_group,
            };
            return self.open_memif(next, index, name, spec, memif, id, ifindex, pool, undo);
        }
        let plan = spec
            .port_plan(self.next_index, self.engine.workers() as u16)
            .ok_or_else(|| ApiError::internal(format!("interface {name:?} has no port to open")))?;
        self.next_index += 1;
        let kernel_mtu = spec.kernel_mtu().map(str::to_string);
        let config = PortConfig {
            rx_queues: plan.rx_queues,
            tx_queues: plan.tx_queues,
            mac: spec.port_mac(),
            // On the Linux interface instead, below, where it has one.
            mtu: spec.mtu.filter(|_| kernel_mtu.is_none()),
            ..PortConfig::default()
        };
        let port = Port::open(self.eal()?, &plan.devargs, pool, config).map_err(|e| {
            ApiError::invalid(format!("interface {name:?}: DPDK refused the device: {e}"))
        })?;
        if let (Some(ifname), Some(mtu)) = (&kernel_mtu, spec.mtu) {
            let before = super::kernel_mtu(ifname);
            // On error the port is dropped: closed and its device removed.
            super::set_kernel_mtu(ifname, mtu)
                .map_err(|e| ApiError::invalid(format!("interface {name:?}: {e}")))?;
            if let Some(b) = before.filter(|b| *b != mtu) {
                undo.kernel_mtus.push((ifname.clone(), b));
            }
        }
        if let Some(sock) = spec.server_socket() {
            // On error the port is dropped: closed, its device and socket removed.
            restrict_socket(name, sock, spec.socket_group)?;
        }
        if spec.mac.is_none() && spec.driver_invents_mac() {
            // The driver made a MAC up: keep it, so that a restart restores this one.
            next.record_mac(name, port.mac());
            undo.recorded_macs.push((index, format_mac(port.mac())));
        }
        let rx_workers = place_queues(&mut self.queue_load, plan.rx_queues as usize);
        let base = self.engine.iface_totals(ifindex);
        tracing::info!(iface = name, devargs = %plan.devargs, port = port.id(), ifindex,
            buffers = buffers.name(), "interface added");
        self.ports.insert(
            name.to_string(),
            Attached {
                ifindex,
                port: Backend::Dpdk(port),
                kernel_mtu,
                server_socket: spec.server_socket().map(PathBuf::from),
                devargs: plan.devargs,
                rx_workers,
                base,
                link_seen: false,
            },
        );
        undo.opened.push(name.to_string());
        Ok(())
    }

    /// Opens the native port of interface `name` on Linux interface `ifname` (an
    /// AF_PACKET socket with rings, no DPDK port), received by the least loaded worker.
    fn open_native(
        &mut self,
        name: &str,
        ifname: &str,
        spec: &IfaceSpec,
        ifindex: IfIndex,
        pool: Arc<Mempool>,
        undo: &mut Undo,
    ) -> ApiResult<()> {
        let rx_workers = place_queues(&mut self.queue_load, 1);
        let rx_worker = rx_workers.first().copied().unwrap_or(0);
        let workers = self.engine.workers();
        let port = if spec.native_tap() {
            let cfg = TapConfig {
                persist: true,
                netns: spec.netns.clone(),
                ..TapConfig::default()
            };
            NativePort::open_tap(ifname, &cfg, workers, rx_worker, pool)
        } else {
            NativePort::open(ifname, &NATIVE_RINGS, workers, rx_worker, pool)
        }
        .map_err(|e| ApiError::invalid(format!("interface {name:?}: {e}")))?;
        let port = Backend::Native(NativeRef(Arc::new(port)));
        // The MTU of a tap in another namespace is set there (IfaceSpec refuses mtu=).
        let kernel_mtu = spec.netns.is_none().then(|| ifname.to_string());
        if let (Some(mtu), Some(_)) = (spec.mtu, &kernel_mtu) {
            let before = super::kernel_mtu(ifname);
            // On error the port is dropped, and with it its sockets.
            super::set_kernel_mtu(ifname, mtu)
                .map_err(|e| ApiError::invalid(format!("interface {name:?}: {e}")))?;
            if let Some(b) = before.filter(|b| *b != mtu) {
                undo.kernel_mtus.push((ifname.to_string(), b));
            }
        }
        // What `iface show` says for devargs: the switch's own port and its rings.
        let devargs = if spec.native_tap() {
            match &spec.netns {
                Some(ns) => format!("native tap,iface={ifname},netns={}", ns.display()),
                None => format!("native tap,iface={ifname}"),
            }
        } else {
            format!(
                "native af_packet,iface={ifname},rx={}x{},tx={}x{}",
                NATIVE_RINGS.rx_frame_count,
                NATIVE_RINGS.rx_frame_size,
                NATIVE_RINGS.tx_frame_count,
                NATIVE_RINGS.tx_frame_size
            )
        };
        let base = self.engine.iface_totals(ifindex);
        tracing::info!(
            iface = name,
            ifname,
            driver = "native",
            rx_worker,
            ifindex,
            "interface added"
        );
        self.ports.insert(
            name.to_string(),
            Attached {
                ifindex,
                port,
                kernel_mtu,
                server_socket: None,
                devargs,
                rx_workers,
                base,
                link_seen: false,
            },
        );
        undo.opened.push(name.to_string());
        Ok(())
    }

    /// Opens the vhost-user port of interface `name` through librte_vhost's API (no ethdev
    /// port): its queue pairs are placed on the least loaded workers.
    #[allow(clippy::too_many_arguments)]
    fn open_vhost(
        &mut self,
        next: &mut Model,
        index: usize,
        name: &str,
        spec: &IfaceSpec,
        vhost: SocketPort,
        ifindex: IfIndex,
        pool: Arc<Mempool>,
        undo: &mut Undo,
    ) -> ApiResult<()> {
        let workers = self.engine.workers();
        let port = VhostPort::open(vhost.socket, vhost.client, vhost.queues, workers, pool)
            .map_err(|e| ApiError::invalid(format!("interface {name:?}: {e}")))?;
        if let Some(mtu) = spec.mtu {
            port.set_mtu(mtu);
        }
        let rx_workers = place_queues(&mut self.queue_load, usize::from(port.queues()));
        let devargs = format!(
            "native vhost-user,socket={},client={},queues={}",
            vhost.socket.display(),
            u8::from(vhost.client),
            port.queues()
        );
        let mac = self.socket_port_mac(next, index, name, spec, undo);
        let port = Backend::Vhost(VhostRef(Arc::new(port)), mac);
        self.insert_socket_port(name, vhost, port, devargs, rx_workers, ifindex, undo)
    }

    /// Opens the native memif port of interface `name` (the switch's own memif, no ethdev
    /// port), received by the least loaded worker.
    #[allow(clippy::too_many_arguments)]
    fn open_memif(
        &mut self,
        next: &mut Model,
        index: usize,
        name: &str,
        spec: &IfaceSpec,
        memif: SocketPort,
        id: u32,
        ifindex: IfIndex,
        pool: Arc<Mempool>,
        undo: &mut Undo,
    ) -> ApiResult<()> {
        let role = if memif.client {
            memif::Role::Client
        } else {
            memif::Role::Server
        };
        let mut cfg = memif::Config::new(role, memif.socket, id);
        cfg.if_name = name.to_string();
        cfg.app_name = "vswitch".to_string();
        cfg.queues = memif.queues;
        let ctx = memif::Context::global_with_logger(|s| tracing::info!(target: "memif", "{s}"))
            .map_err(|e| ApiError::internal(format!("interface {name:?}: memif: {e}")))?;
        let workers = self.engine.workers();
        let port = if spec.zero_copy() {
            MemifPort::open_zero_copy(ctx, cfg, workers, pool, self.zc_pool()?)
        } else {
            MemifPort::open_in(ctx, cfg, workers, pool)
        }
        .map_err(|e| ApiError::invalid(format!("interface {name:?}: memif: {e}")))?;
        let rx_workers = place_queues(&mut self.queue_load, usize::from(memif.queues));
        let devargs = format!(
            "native memif,socket={},role={},id={id},queues={}{}",
            memif.socket.display(),
            if memif.client { "client" } else { "server" },
            memif.queues,
            if spec.zero_copy() {
                ",zero-copy=on"
            } else {
                ""
            }
        );
        let mac = self.socket_port_mac(next, index, name, spec, undo);
        let mtu = std::sync::atomic::AtomicU16::new(spec.mtu.unwrap_or(1500));
        let port = Backend::Memif(MemifRef(Arc::new(port)), mac, mtu);
        self.insert_socket_port(name, memif, port, devargs, rx_workers, ifindex, undo)
    }

    /// The MAC of a socket port (vhost-user, memif; their drivers have none): the one
    /// given, else a random one, recorded so that a restart restores it.
    fn socket_port_mac(
        &mut self,
        next: &mut Model,
        index: usize,
        name: &str,
        spec: &IfaceSpec,
        undo: &mut Undo,
    ) -> [u8; 6] {
        spec.mac.unwrap_or_else(|| {
            let m = random_mac();
            next.record_mac(name, m);
            undo.recorded_macs.push((index, format_mac(m)));
            m
        })
    }

    /// Adds an opened socket port (its server socket set to mode 0660, and given to its
    /// group) to the switch. On error the port is dropped, which removes its socket.
    #[allow(clippy::too_many_arguments)]
    fn insert_socket_port(
        &mut self,
        name: &str,
        sock: SocketPort,
        port: Backend,
        devargs: String,
        rx_workers: Vec<usize>,
        ifindex: IfIndex,
        undo: &mut Undo,
    ) -> ApiResult<()> {
        if !sock.client {
            restrict_socket(name, sock.socket, sock.group)?;
        }
        let base = self.engine.iface_totals(ifindex);
        tracing::info!(iface = name, devargs = %devargs, driver = "native", ifindex,
            "interface added");
        self.ports.insert(
            name.to_string(),
            Attached {
                ifindex,
                port,
                kernel_mtu: None,
                server_socket: (!sock.client).then(|| sock.socket.to_path_buf()),
                devargs,
                rx_workers,
                base,
                link_seen: false,
            },
        );
        undo.opened.push(name.to_string());
        Ok(())
    }

    /// The one-line error for `what` when every interface index below the configured
    /// limit is taken.
    fn iface_limit_reached(&self, what: &str) -> String {
        format!(
            "{what}: the switch is at its limit of {} interfaces (vswitchd --max-interfaces); \
             nothing was changed",
            self.max_ifaces
        )
    }

    /// The lowest interface index (below the configured limit) neither in use (by a port or a bridge's routed
    /// interface) nor freed by this transaction (whose interfaces stay in the plan until it
    /// is published).
    fn free_ifindex(&self, undo: &Undo) -> Option<IfIndex> {
        let mut used = vec![false; self.max_ifaces];
        let ports = self
            .ports
            .values()
            .chain(undo.removed.iter().map(|(_, a)| a))
            .map(|a| a.ifindex);
        let bvis = self
            .bvis
            .values()
            .chain(undo.bvis_removed.iter().map(|(_, i)| i))
            .copied();
        let tunnels = self
            .tunnels
            .values()
            .chain(undo.tunnels_removed.iter().map(|(_, t)| t))
            .map(|t| t.ifindex);
        for i in ports.chain(bvis).chain(tunnels) {
            if let Some(u) = used.get_mut(usize::from(i)) {
                *u = true;
            }
        }
        used.iter().position(|u| !u).map(|i| i as IfIndex)
    }

    /// Step 2's part for bridges' routed interfaces: every bridge of `next` has the
    /// logical index of its `bvi:BR` (a new bridge takes the lowest free one; a bridge
    /// deleted and added again in one transaction keeps its index); removed bridges' go.
    fn bvis(
        &mut self,
        next: &Model,
        changes: &[pb::Change],
        undo: &mut Undo,
    ) -> Result<(), (usize, ApiError)> {
        let gone: Vec<String> = self
            .bvis
            .keys()
            .filter(|br| next.bridge(br).is_err())
            .cloned()
            .collect();
        for br in gone {
            if let Some(i) = self.bvis.remove(&br) {
                undo.bvis_removed.push((br, i));
            }
        }
        for (br, _) in next.bridges() {
            if self.bvis.contains_key(br) {
                continue;
            }
            let Some(i) = self.free_ifindex(undo) else {
                let index = changes
                    .iter()
                    .position(|c| matches!(&c.change, Some(C::AddBridge(r)) if r.name == *br))
                    .unwrap_or_default();
                return Err((
                    index,
                    ApiError::invalid(self.iface_limit_reached(&format!(
                        "bridge {br:?} (its routed interface is one)"
                    ))),
                ));
            };
            self.bvis.insert(br.clone(), i);
        }
        Ok(())
    }

    /// Step 2's part for tunnels, as [`Switch::bvis`] for bridges: every tunnel of `next`
    /// has its logical index (a tunnel deleted and added again in one transaction keeps
    /// its index); removed tunnels' go.
    fn tunnels(
        &mut self,
        next: &Model,
        changes: &[pb::Change],
        undo: &mut Undo,
    ) -> Result<(), (usize, ApiError)> {
        let gone: Vec<String> = self
            .tunnels
            .keys()
            .filter(|n| model::tunnel::get(next, n).is_none())
            .cloned()
            .collect();
        for n in gone {
            if let Some(t) = self.tunnels.remove(&n) {
                undo.tunnels_removed.push((n, t));
            }
        }
        for (name, _, _) in model::tunnel::all(next) {
            if self.tunnels.contains_key(name) {
                continue;
            }
            let Some(ifindex) = self.free_ifindex(undo) else {
                let index = changes
                    .iter()
                    .position(|c| matches!(&c.change, Some(C::AddTunnel(r)) if r.name == *name))
                    .unwrap_or_default();
                return Err((
                    index,
                    ApiError::invalid(self.iface_limit_reached(&format!("tunnel {name:?}"))),
                ));
            };
            let base = self.engine.iface_totals(ifindex);
            self.tunnels
                .insert(name.clone(), TunnelIndex { ifindex, base });
        }
        Ok(())
    }

    /// Learned entries to delete must be in the MAC table.
    fn check_learned(&self, diff: &Diff) -> Result<(), (usize, ApiError)> {
        if diff.learned_removes.is_empty() {
            return Ok(());
        }
        let learner = self.learner();
        let names: BTreeMap<u16, &str> = self
            .model
            .bridges()
            .map(|(n, b)| (b.id, n.as_str()))
            .collect();
        for (index, k) in &diff.learned_removes {
            let learned = learner
                .fdb()
                .lookup(&fdb_key(k))
                .is_some_and(|h| !h.entry.is_static);
            if !learned {
                return Err((
                    *index,
                    ApiError::not_found(format!(
                        "{} (VLAN {}) is not in bridge {:?}",
                        format_mac(k.2),
                        k.1,
                        names.get(&k.0).copied().unwrap_or_default()
                    )),
                ));
            }
        }
        Ok(())
    }

    /// Step 3: appends the transaction to the journal (fsync'd) if it changes the desired
    /// state. Returns whether a record was written. On error the journal is as it was.
    fn write_ahead(
        &mut self,
        changes: &[pb::Change],
        diff: &Diff,
        undo: &mut Undo,
    ) -> ApiResult<bool> {
        if !diff.persistent || !self.persist {
            return Ok(false);
        }
        let Some(store) = self.store.as_mut() else {
            return Ok(false);
        };
        let recorded = std::mem::take(&mut undo.recorded_macs);
        store
            .append(&with_recorded_macs(changes, recorded))
            .map_err(|e| {
                tracing::warn!("transaction refused: {e}");
                ApiError::unavailable(format!("{e}; nothing was applied"))
            })
    }

    /// Step 4's first part: the MAC table and the learner follow the diff. Fails (with the
    /// change to blame) only when the table has no room for a static entry, and then has
    /// changed nothing.
    fn mac_table(&mut self, next: &Model, diff: &Diff) -> Result<TxnOutcome, (usize, ApiError)> {
        let mut outcome = TxnOutcome::default();
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        for k in diff.statics.keys() {
            match next
                .static_entry(k)
                .and_then(|n| Some((n, self.ifindex_of(n)?)))
            {
                Some((name, port)) => adds.push((fdb_key(k), port, static_vtep(next, k, name))),
                None => removes.push(fdb_key(k)),
            }
        }
        let port_of = |n: &str| self.ifindex_of(n);
        let mut learner = self.l2.learner.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(key) = learner.add_statics_to(&adds) {
            let index = diff
                .statics
                .get(&(key.bridge, key.vlan, key.mac))
                .copied()
                .unwrap_or_default();
            return Err((
                index,
                ApiError::conflict(format!(
                    "the MAC table has no room for {} (VLAN {}); raise --fdb-size",
                    format_mac(key.mac),
                    key.vlan
                )),
            ));
        }
        for key in removes.iter() {
            learner.remove(key);
        }
        for (_, k) in &diff.learned_removes {
            learner.remove(&fdb_key(k));
        }
        for &id in &diff.bridges_removed {
            learner.remove_bridge(id);
        }
        for name in &diff.bridges {
            let Ok(b) = next.bridge(name) else {
                continue;
            };
            learner.set_policy(b.id, model::bridge::policy(b));
            let ports = model::bridge::member_ports(b, &port_of);
            if learner.members(b.id) != Some(ports.as_slice()) {
                learner.set_members(b.id, ports);
            }
        }
        for (index, bridge, iface) in &diff.flushes {
            let port = iface.as_deref().and_then(port_of);
            let n = learner.flush(*bridge, port, false) as u32;
            *outcome.flushed.entry(*index).or_default() += n;
        }
        Ok(outcome)
    }

    /// Step 4's L3 part: the router's FIBs and next hops follow the L3 diff (VRFs,
    /// addresses' connected and local routes, static routes with their next-hops resolved
    /// to interfaces, static neighbours), in place, while the workers keep forwarding.
    /// A table that cannot take a route (full) is logged; the model keeps the route.
    /// Interfaces and bridges this transaction removed are still named (their neighbours
    /// go from the router's tables).
    fn fib(&mut self, l3: L3Diff, undo: &Undo) {
        if l3.is_empty() {
            return;
        }
        let removed = |n: &str| match model::iface::bvi_bridge(n) {
            Some(br) => undo.bvis_removed.iter().find(|(b, _)| b == br).map(|x| x.1),
            None => undo
                .removed
                .iter()
                .find(|(p, _)| p == n)
                .map(|x| x.1.ifindex)
                .or_else(|| {
                    undo.tunnels_removed
                        .iter()
                        .find(|(t, _)| t == n)
                        .map(|x| x.1.ifindex)
                }),
        };
        let errors = {
            let mut router = self.router.lock().unwrap_or_else(|e| e.into_inner());
            router.apply(&l3, |n| self.l3_index(n).or_else(|| removed(n)))
        };
        for e in errors {
            tracing::error!("not installed in the FIB: {e}");
        }
    }

    /// Step 5: puts the ports back as they were before the transaction.
    fn undo(&mut self, undo: Undo) {
        if !undo.opened.is_empty() || !undo.removed.is_empty() || !undo.port_changes.is_empty() {
            tracing::info!("transaction failed; the port changes made for it were undone");
        }
        for (name, mtu, admin) in undo.port_changes.into_iter().rev() {
            if let Some(a) = self.ports.get(&name) {
                if a.mtu() != mtu {
                    let _ = a.set_mtu(mtu);
                }
                let _ = a.port.set_link(admin);
            }
        }
        for name in undo.opened.iter().rev() {
            if let Some(a) = self.ports.remove(name) {
                // Never published: no worker has seen the port.
                close_removed(name, a, true);
            }
        }
        for (ifname, mtu) in undo.kernel_mtus.into_iter().rev() {
            if let Err(e) = super::set_kernel_mtu(&ifname, mtu) {
                tracing::warn!("{e}");
            }
        }
        for (name, a) in undo.removed {
            self.ports.insert(name, a);
        }
        self.queue_load = undo.queue_load;
        self.next_index = undo.next_index;
        self.bvis = undo.bvis;
        self.tunnels = undo.tunnels;
    }
}

/// Where a native socket port's (vhost-user, memif) socket is and how it is used.
#[derive(Clone, Copy)]
struct SocketPort<'a> {
    socket: &'a std::path::Path,
    client: bool,
    queues: u16,
    /// The group its server socket is given to (`group=`).
    group: Option<u32>,
}

/// Sets the server socket of interface `name` to mode 0660 and gives it to `group`; logs a
/// warning when a directory above it keeps the group out (the switch changes only the
/// directories it creates).
fn restrict_socket(name: &str, socket: &std::path::Path, group: Option<u32>) -> ApiResult<()> {
    vswitch_vhost::restrict_socket(socket, group)
        .map_err(|e| ApiError::invalid(format!("interface {name:?}: {e}")))?;
    if let Some(gid) = group {
        if let Some(dir) = vswitch_vhost::unreachable_by_group(socket, gid) {
            tracing::warn!(iface = name, socket = %socket.display(), gid, dir = %dir.display(),
                "the socket's group cannot search a directory above it (chgrp it, or chmod \
                 o+x): its members cannot connect");
        }
    }
    Ok(())
}

/// A random locally administered unicast MAC, for a port whose driver has none.
fn random_mac() -> [u8; 6] {
    use std::io::Read;
    let mut m = [0u8; 6];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut m))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        m.copy_from_slice(&t.to_le_bytes()[..6]);
    }
    m[0] = (m[0] & 0xfe) | 0x02;
    m
}

/// Closes the port of an interface that left the plan (kept open, leaked, if a worker
/// might still use it) and removes its server socket.
fn close_removed(name: &str, a: Attached, quiet: bool) {
    // The interface is gone (removed, or its adding undone): so is a tap the switch keeps
    // across its own restarts.
    if let Backend::Native(n) = &a.port {
        n.delete_tap_on_close();
    }
    if quiet {
        a.port.close();
        if let Some(sock) = a.server_socket {
            let _ = std::fs::remove_file(sock);
        }
    } else {
        // A worker did not acknowledge the new plan; closing the port under it could
        // crash it. Keep the port open (leaked) rather than risk that.
        tracing::error!(
            iface = name,
            "a worker did not confirm the new plan; port left open"
        );
        std::mem::forget(a.port);
    }
}

/// The changes to journal: `changes` as applied, with the MACs that interfaces added
/// without mac= got from their driver written in, so that replaying the journal re-creates
/// them with the same MAC. Copies only when there is something to write in.
fn with_recorded_macs(
    changes: &[pb::Change],
    recorded: Vec<(usize, String)>,
) -> Cow<'_, [pb::Change]> {
    if recorded.is_empty() {
        return Cow::Borrowed(changes);
    }
    let mut out = changes.to_vec();
    for (index, mac) in recorded {
        if let Some(C::AddInterface(r)) = out.get_mut(index).and_then(|c| c.change.as_mut()) {
            r.args.insert("mac".to_string(), mac);
        }
    }
    Cow::Owned(out)
}

/// Whether the route changes of `l3` made an interface routed by routes alone (the first
/// static route through it) or took that away (the last one), model `before` to `after`.
/// The interfaces the changed routes name are gathered once each (a million routes through
/// one interface cost a million set lookups, no allocation).
fn routed_by_routes_changed(before: &Model, after: &Model, l3: &L3Diff) -> bool {
    let mut names: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut note = |r: &model::route::Route| {
        for h in &r.nexthops {
            if !names.contains(&*h.iface) {
                names.insert(h.iface.to_string());
            }
        }
    };
    for (&(vrf, _), d) in &l3.routes {
        for (_, r) in &d.added {
            note(r);
        }
        for (p, r) in &d.replaced {
            note(r);
            if let Some(old) = model::route::of(before, vrf, p) {
                note(&old);
            }
        }
        for p in &d.removed {
            if let Some(old) = model::route::of(before, vrf, p) {
                note(&old);
            }
        }
    }
    names.iter().any(|n| {
        model::route::first_through(before, n).is_some()
            != model::route::first_through(after, n).is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(name: &str) -> pb::Change {
        pb::Change {
            change: Some(C::AddInterface(pb::AddInterfaceRequest {
                name: name.into(),
                r#type: "null".into(),
                args: Default::default(),
                vrf: None,
                attachment: None,
            })),
        }
    }

    #[test]
    fn recorded_macs_are_written_into_the_journaled_changes() {
        let changes = vec![add("n1"), add("n2")];
        assert!(matches!(
            with_recorded_macs(&changes, vec![]),
            Cow::Borrowed(_)
        ));
        let out = with_recorded_macs(&changes, vec![(1, "02:00:00:00:00:09".into())]);
        let mac = |c: &pb::Change| match &c.change {
            Some(C::AddInterface(r)) => r.args.get("mac").cloned(),
            _ => None,
        };
        assert_eq!(mac(&out[0]), None);
        assert_eq!(mac(&out[1]).as_deref(), Some("02:00:00:00:00:09"));
        assert_eq!(
            mac(&changes[1]),
            None,
            "the caller's changes are left as they were"
        );
    }
}
