//! vswitchd: starts DPDK and the poll-mode workers, restores the saved configuration and
//! serves the gRPC API on a unix socket until SIGTERM or SIGINT, then stops cleanly.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use clap::Parser;
use dpdk::{Eal, Mempool};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use vswitch_control::options::{online_cpus, Options};
use vswitch_control::service::Service;
use vswitch_control::state;
use vswitch_control::switch::{Paths, Switch, L2};
use vswitch_dataplane::l2::bridge::L2Shared;
use vswitch_dataplane::l2::fdb::Fdb;
use vswitch_dataplane::l2::learn::{Clock, LearnQueues, Learner};
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
    let initial = if opts.reset_state {
        None
    } else {
        state::load(&opts.state_file)?
    };
    let initial = match (initial, &opts.config) {
        (Some(s), _) => Some(s),
        (None, Some(cfg)) => Some(
            state::load(cfg)?
                .ok_or_else(|| format!("config file {} does not exist", cfg.display()))?,
        ),
        (None, None) => None,
    };
    claim_api_socket(&opts.socket)?;

    let layout = opts.cpu_layout(&online_cpus())?;
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
    let engine =
        Engine::start(&eal, &lcores, opts.poll, l2.shared.clone()).map_err(|e| e.to_string())?;
    let learner_stop = Arc::new(AtomicBool::new(false));
    let learner = vswitch_control::learner::spawn(l2.clone(), learner_stop.clone())
        .map_err(|e| format!("cannot start the learner thread: {e}"))?;
    tracing::info!(workers = lcores.len(), cpus = ?layout, poll = ?opts.poll, "dataplane started");
    let paths = Paths {
        run_dir: opts.run_dir.clone(),
        state_file: Some(opts.state_file.clone()),
    };
    let mut switch = Switch::new(eal, Arc::new(pool), engine, l2, paths);
    if let Some(s) = &initial {
        for e in switch.restore(s) {
            tracing::error!("not restored: {e}");
        }
        tracing::info!(
            interfaces = s.interfaces.len(),
            xconnects = s.xconnects.len(),
            "configuration restored"
        );
    }
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
        serve(&opts.socket, Service::new(switch.clone())).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));

    learner_stop.store(true, Ordering::Relaxed);
    let _ = learner.join();
    let taken = switch.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(eal) = taken.and_then(Switch::shutdown) {
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
    vswitch_vhost::prepare_socket_dir(socket)
}

async fn serve(socket: &Path, service: Service) -> Result<(), String> {
    let listener = UnixListener::bind(socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("cannot set mode 0660 on {}: {e}", socket.display()))?;

    let (mut health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<VswitchServer<Service>>().await;
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

    tracing::info!(socket = %socket.display(), "serving gRPC");
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(VswitchServer::new(service))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stop_signal())
        .await
        .map_err(|e| format!("gRPC server failed: {e}"))
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
