//! vsctl: the command-line client of vswitchd, a thin gRPC client.
//!
//! `vsctl [--socket PATH] [--json] NOUN VERB [ARGS]`. Each noun has its module; each returns
//! the text to print, which `main` writes. On error: exit 1 and one line, `vsctl: <message>`,
//! on stderr (clap's usage errors keep clap's behaviour, exit 2).

mod acl;
mod addr;
mod args;
mod bridge;
mod change;
mod completion;
mod drops;
mod fdb;
mod health;
mod iface;
mod kv;
mod mempools;
mod nat;
mod neigh;
mod output;
mod proxy_arp;
mod route;
mod rpc;
mod runtime;
mod service;
mod session;
mod stats;
mod transaction;
mod tunnel;
mod vrf;
mod watch;
mod workers;
mod xconnect;

use std::io::{ErrorKind, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::rpc::Ctx;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).and_then(write_stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, whatever the message holds.
            let message = format!("{err:#}").replace(['\n', '\r'], " ");
            eprintln!("vsctl: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command and returns what it prints.
fn run(cli: Cli) -> anyhow::Result<String> {
    let ctx = Ctx {
        socket: cli.socket,
        json: cli.json,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = Duration::from_secs(cli.timeout);
    if let Command::Watch { kinds, count } = cli.command {
        // A stream: runs until --count events, or until interrupted.
        return runtime.block_on(watch::run(kinds, count, &ctx));
    }
    runtime.block_on(async {
        tokio::time::timeout(timeout, dispatch(cli.command, &ctx))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no answer from vswitchd at {} within {}s",
                    ctx.socket.display(),
                    timeout.as_secs()
                )
            })?
    })
}

async fn dispatch(command: Command, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        Command::Health => health::run(ctx).await,
        Command::Iface(verb) => iface::run(verb, ctx).await,
        Command::Bridge(verb) => bridge::run(verb, ctx).await,
        Command::Fdb(verb) => fdb::run(verb, ctx).await,
        Command::Xconnect(verb) => xconnect::run(verb, ctx).await,
        Command::Vrf(verb) => vrf::run(verb, ctx).await,
        Command::Addr(verb) => addr::run(verb, ctx).await,
        Command::Route(verb) => route::run(verb, ctx).await,
        Command::Neigh(verb) => neigh::run(verb, ctx).await,
        Command::Tunnel(verb) => tunnel::run(verb, ctx).await,
        Command::Acl(verb) => acl::run(verb, ctx).await,
        Command::Service(verb) => service::run(verb, ctx).await,
        Command::Nat(verb) => nat::run(verb, ctx).await,
        Command::Session(verb) => session::run(verb, ctx).await,
        Command::Sessions { words, max } => session::sessions(words, max, ctx).await,
        c @ Command::ProxyArp { .. } => crate::change::run(c, ctx).await,
        Command::Stats { iface } => stats::run(iface, ctx).await,
        Command::Workers => workers::run(ctx).await,
        Command::Drops => drops::run(ctx).await,
        Command::Runtime => runtime::run(ctx).await,
        Command::Mempools => mempools::run(ctx).await,
        Command::Transaction { file } => transaction::run(&file, ctx).await,
        Command::Watch { kinds, count } => watch::run(kinds, count, ctx).await,
        // Needs no daemon.
        Command::Completion { shell } => completion::script(shell),
    }
}

/// Writes the output. A reader that went away (`vsctl ... | head`) is not an error.
fn write_stdout(text: String) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
