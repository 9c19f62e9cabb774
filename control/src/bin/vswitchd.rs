//! vswitchd: starts DPDK and the poll-mode workers, restores the saved configuration and
//! serves the gRPC API on a unix socket (and, optionally, on TCP with mutual TLS) until
//! SIGTERM or SIGINT, then stops cleanly.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use dpdk::{Eal, Mempool};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic_health::pb::health_server::HealthServer;
use vswitch_control::events::Events;
use vswitch_control::options::{online_cpus, Options};
use vswitch_control::service::Service;
use vswitch_control::slowpath::SlowPathThread;
use vswitch_control::state::{self, Store};
use vswitch_control::switch::{Dataplane, Paths, Switch, L2};
use vswitch_dataplane::l2::bridge::L2Shared;
use vswitch_dataplane::l2::fdb::Fdb;
use vswitch_dataplane::l2::learn::{Clock, LearnQueues, Learner};
use vswitch_dataplane::slowpath::{SlowPath, DEFAULT_INJECT_RING, DEFAULT_PUNT_RING};
use vswitch_dataplane::Engine;
use vswitch_proto::v1::vswitch_server::VswitchServer;

fn main() -> ExitCode {
    let opts = Options::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("vswitchd: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: Options) -> Result<(), String> {
    opts.validate()?;
    // Read the saved state before touching DPDK: a bad file stops us with nothing started.
    let (initial, (journal, seq)) = if opts.reset_state {
        (None, (Vec::new(), 0))
    } else {
        let snapshot = state::load(&opts.state_file)?;
        let after = snapshot.as_ref().map_or(0, |s| s.seq);
        (snapshot, state::load_journal(&opts.state_file, after)?)
    };
    let initial = match (initial, &opts.config) {
        (Some(s), _) => Some(s),
        (None, Some(cfg)) if journal.is_empty() => Some(
            state::load(cfg)?
                .ok_or_else(|| format!("config file {} does not exist", cfg.display()))?,
        ),
        (None, _) => None,
    };
    let tls = opts.listen.map(|_| tls_config(&opts)).transpose()?;
    let socket_gid = opts
        .socket_group
        .as_deref()
        .map(|g| vswitch_control::names::group_id("--socket-group", g))
        .transpose()?;
    claim_api_socket(&opts.socket)?;

    match kport::raise_fd_limit() {
        Ok(n) => tracing::debug!(open_files = n, "descriptor limit"),
        Err(e) => tracing::warn!("cannot raise the open-files limit: {e}"),
    }
    let layout = opts.cpu_layout(&online_cpus())?;
    // Held until run() returns (the kernel also drops it when the process exits).
    let _cpu_latency = opts
        .cpu_latency
        .map(|us| {
            let held = vswitch_control::cpu_latency::CpuLatency::hold(us)?;
            tracing::info!(us = held.us(), "holding a CPU idle-latency request");
            Ok::<_, String>(held)
        })
        .transpose()?;
    let eal = Eal::init(&opts.eal_args(&layout)).map_err(|e| {
        format!(
            "cannot initialise DPDK's EAL: {e} (check --lcores, --mem, hugepages or --no-huge, and that no \
             other DPDK process runs with --file-prefix {})",
            opts.file_prefix
        )
    })?;
    let pool = Mempool::new(&eal, "vs_mbufs", opts.mbufs, 256)
        .map_err(|e| format!("cannot create the mbuf pool: {e}"))?;
    let lcores = eal.worker_lcores();
    let fdb = Arc::new(Fdb::new(opts.fdb_size));
    let clock = Arc::new(Clock::default());
    let l2 = L2 {
        learner: Arc::new(Mutex::new(Learner::new(fdb.clone(), clock.clone()))),
        shared: L2Shared {
            fdb,
            learn: Arc::new(LearnQueues::new(lcores.len())),
            clock,
        },
    };
    let slow = Arc::new(SlowPath::new(
        lcores.len(),
        DEFAULT_PUNT_RING,
        DEFAULT_INJECT_RING,
    ));
    let engine = Engine::start(&eal, &lcores, opts.poll, l2.shared.clone(), slow.clone())
        .map_err(|e| e.to_string())?;
    let pool = Arc::new(pool);
    let events = Arc::new(Events::new());
    let mut router = vswitch_control::router::Router::new()
        .map_err(|e| format!("cannot make the router's tables: {e}"))?;
    router.set_events(events.clone());
    let router = Arc::new(std::sync::Mutex::new(router));
    // The router's ARP and ICMP (router_punts.rs) on the slow-path thread.
    let handler = vswitch_control::router_punts::RouterPunts::new(router.clone(), pool.clone());
    let slow_thread = SlowPathThread::start(slow.clone(), handler)
        .map_err(|e| format!("cannot start the slow-path thread: {e}"))?;
    let learner_stop = Arc::new(AtomicBool::new(false));
    let learner = vswitch_control::learner::spawn(l2.clone(), events.clone(), learner_stop.clone())
        .map_err(|e| format!("cannot start the learner thread: {e}"))?;
    tracing::info!(workers = lcores.len(), cpus = ?layout, poll = ?opts.poll, "dataplane started");
    let paths = Paths {
        run_dir: opts.run_dir.clone(),
    };
    let store = Store::new(&opts.state_file, seq);
    let mut switch = Switch::new(
        eal,
        pool,
        Dataplane {
            engine,
            slow,
            slow_thread,
            router,
        },
        l2,
        paths,
        Some(store),
        events.clone(),
    )
    .with_jumbo_mbufs(opts.jumbo_mbufs)
    .with_zc_mbufs(opts.zc_mbufs)
    .with_max_ifaces(opts.max_interfaces);
    let started = std::time::Instant::now();
    for e in switch.restore(initial.as_ref(), &journal) {
        tracing::error!("not restored: {e}");
    }
    if opts.reset_state {
        let _ = std::fs::remove_file(vswitch_control::session_file::path_of(&opts.state_file));
    } else {
        switch.restore_sessions();
    }
    if let Some(s) = &initial {
        tracing::info!(
            changes = s.changes.len(),
            journal_transactions = journal.len(),
            ms = started.elapsed().as_millis() as u64,
            "configuration restored"
        );
    }
    // The saved state as read is no longer needed: its memory goes back to the system.
    drop((initial, journal));
    vswitch_control::heap::release_free_memory();
    let switch = Arc::new(Mutex::new(Some(switch)));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let served = runtime.block_on(async {
        if let Some(addr) = opts.metrics {
            let listener = vswitch_control::metrics::bind(addr).await?;
            tracing::info!(%addr, "serving Prometheus metrics at /metrics");
            tokio::spawn(vswitch_control::metrics::serve(listener, switch.clone()));
        }
        tokio::spawn(watch_links(switch.clone()));
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            stop_signal().await;
            let _ = stop_tx.send(true);
        });
        let service = Service::new(switch.clone(), events.clone()).with_stop(stop_rx.clone());
        let tcp = match (opts.listen, tls) {
            (Some(addr), Some(tls)) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                tracing::info!(%addr, "serving gRPC over TCP (mutual TLS)");
                Some(tokio::spawn(serve_tcp(
                    listener,
                    tls,
                    service.clone(),
                    stop_rx.clone(),
                )))
            }
            _ => None,
        };
        let r = serve(&opts.socket, socket_gid, service, stop_rx).await;
        if let Some(t) = tcp {
            if let Ok(Err(e)) = t.await {
                tracing::error!("{e}");
            }
        }
        r
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));

    learner_stop.store(true, Ordering::Relaxed);
    let _ = learner.join();
    let taken = switch.lock().unwrap_or_else(|p| p.into_inner()).take();
    let eal = taken.and_then(Switch::shutdown);
    // Native ports close their sockets on threads of their own; all at once, not one by
    // one on the way out.
    vswitch_dataplane::native::wait_closed();
    if let Some(eal) = eal {
        eal.cleanup();
        // DPDK leaves its runtime directory (config, mp socket) behind; it is ours alone.
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&opts.file_prefix));
    }
    let _ = std::fs::remove_file(&opts.socket);
    tracing::info!("stopped");
    served
}

/// Makes sure nobody else serves on `socket`, removes a stale one, creates its directory.
fn claim_api_socket(socket: &Path) -> Result<(), String> {
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(format!(
            "another vswitchd is serving on {}",
            socket.display()
        ));
    }
    if socket.exists() {
        std::fs::remove_file(socket)
            .map_err(|e| format!("cannot remove stale socket {}: {e}", socket.display()))?;
    }
    vswitch_vhost::prepare_socket_dir(socket, None)
}

/// The services every listener offers: health, reflection and vswitch.v1.
fn router<H: tonic_health::pb::health_server::Health>(
    mut builder: tonic::transport::Server,
    health: HealthServer<H>,
    service: Service,
) -> Result<tonic::transport::server::Router, String> {
    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        b.register_encoded_file_descriptor_set(vswitch_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure())
        .build_v1()
        .map_err(|e| format!("reflection: {e}"))?;
    let reflection_v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .build_v1alpha()
        .map_err(|e| format!("reflection: {e}"))?;
    Ok(builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            VswitchServer::new(service)
                .max_decoding_message_size(vswitch_control::client::MAX_MESSAGE)
                .max_encoding_message_size(vswitch_control::client::MAX_MESSAGE),
        ))
}

/// How long calls in progress may take to finish after a stop signal; then their
/// connections are dropped (a client that never finishes a call cannot hold the stop).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs `server` (a gRPC listener's serve future, which stops taking connections at the
/// stop signal and then waits for the calls in progress) until it ends, or until
/// [`STOP_GRACE`] after the stop signal.
async fn with_grace(
    what: &str,
    server: impl std::future::Future<Output = Result<(), String>>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    tokio::select! {
        r = server => r,
        _ = async {
            stopped(stop).await;
            tokio::time::sleep(STOP_GRACE).await;
        } => {
            tracing::warn!(
                "{what}: calls still in progress {} s after the stop signal; their connections are closed",
                STOP_GRACE.as_secs()
            );
            Ok(())
        }
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn serve(
    socket: &Path,
    gid: Option<u32>,
    service: Service,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let listener = UnixListener::bind(socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("cannot set mode 0660 on {}: {e}", socket.display()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(socket, None, Some(gid))
            .map_err(|e| format!("cannot give {} to group {gid}: {e}", socket.display()))?;
    }
    tracing::info!(socket = %socket.display(), "serving gRPC");
    let (mut reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<VswitchServer<Service>>().await;
    let server = router(tonic::transport::Server::builder(), health, service)?
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stopped(stop.clone()));
    let server = async { server.await.map_err(|e| format!("gRPC server failed: {e}")) };
    with_grace("gRPC", server, stop).await
}

async fn serve_tcp(
    listener: TcpListener,
    tls: ServerTlsConfig,
    service: Service,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let builder = tonic::transport::Server::builder()
        .tls_config(tls)
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<VswitchServer<Service>>().await;
    let server = router(builder, health, service)?
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopped(stop.clone()));
    let server = async {
        server
            .await
            .map_err(|e| format!("gRPC (TCP) server failed: {e}"))
    };
    with_grace("gRPC (TCP)", server, stop).await
}

/// The TCP listener's TLS: our certificate and key, and the CA that every client's
/// certificate must chain to (a client without one is refused in the handshake).
fn tls_config(opts: &Options) -> Result<ServerTlsConfig, String> {
    let read = |flag: &str, p: &Option<std::path::PathBuf>| -> Result<Vec<u8>, String> {
        let p = p
            .as_ref()
            .ok_or_else(|| format!("{flag} is required with --listen"))?;
        let pem = std::fs::read(p).map_err(|e| format!("{flag} {}: {e}", p.display()))?;
        if !pem.windows(10).any(|w| w == b"-----BEGIN") {
            return Err(format!("{flag} {}: not a PEM file", p.display()));
        }
        Ok(pem)
    };
    let cert = read("--tls-cert", &opts.tls_cert)?;
    let key = read("--tls-key", &opts.tls_key)?;
    let ca = read("--tls-client-ca", &opts.tls_client_ca)?;
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(ca))
        .client_auth_optional(false))
}

/// Tells watchers when an interface's link changes (polled every 250 ms).
async fn watch_links(switch: Arc<Mutex<Option<Switch>>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sw = switch.clone();
        let alive = tokio::task::spawn_blocking(move || {
            let mut guard = sw.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_mut() {
                Some(s) => {
                    s.poll_links();
                    true
                }
                None => false,
            }
        })
        .await
        .unwrap_or(false);
        if !alive {
            return;
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
}
