//! The command line, as clap parses it: `vsctl [--socket PATH] [--json] NOUN VERB [ARGS]`.
//!
//! Only the shape of the command is checked here. KEY=VALUE lists and `iface set` words are
//! parsed by their nouns (so the error is one `vsctl:` line); names, types and keys are
//! validated by vswitchd, so gRPC users get the same checks.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use clap_complete::Shell;
use vswitch_control::client::DEFAULT_SOCKET;

/// vsctl: configure and inspect a running vswitchd.
#[derive(Debug, Parser)]
#[command(name = "vsctl", version)]
pub struct Cli {
    /// vswitchd's gRPC unix socket.
    #[arg(
        long,
        value_name = "PATH",
        env = "VSWITCH_SOCKET",
        default_value = DEFAULT_SOCKET,
        global = true
    )]
    pub socket: PathBuf,

    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    pub json: bool,

    /// Give up when vswitchd has not answered within this many seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that vswitchd answers; print its version, workers, interfaces and uptime.
    Health,
    /// Interfaces: every port that carries packets.
    #[command(subcommand)]
    Iface(IfaceCommand),
    /// L2 cross-connects: everything received on one interface is sent out of the other.
    #[command(subcommand)]
    Xconnect(XconnectCommand),
    /// Packet and byte counters of every interface, or of one.
    Stats {
        /// Only this interface.
        #[arg(value_name = "IFACE")]
        iface: Option<String>,
    },
    /// Worker threads: lcore, rx queues polled, packets and cycles.
    Workers,
    /// Dropped packets by reason, summed over all workers.
    Drops,
    /// Packet buffer pools: capacity and use.
    Mempools,
    /// Print a shell completion script.
    Completion {
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum IfaceCommand {
    /// Create an interface: `iface add NAME TYPE [KEY=VALUE ...]`.
    Add {
        #[arg(value_name = "NAME")]
        name: String,
        /// af_packet, tap, vhost-user, memif, pcap, null, pci or dpdk.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// Type-specific arguments, plus mac=MAC and mtu=N.
        #[arg(value_name = "KEY=VALUE")]
        args: Vec<String>,
    },
    /// Delete an interface.
    Del {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List interfaces with their state and counters.
    List,
    /// Show one interface.
    Show {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Set an interface up or down and/or change its MTU: `iface set NAME up|down [mtu=N]`.
    Set {
        #[arg(value_name = "NAME")]
        name: String,
        /// `up`, `down` and/or `mtu=N`.
        #[arg(value_name = "up|down|mtu=N", required = true)]
        settings: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum XconnectCommand {
    /// Cross-connect two interfaces, both ways.
    Add {
        #[arg(value_name = "IFACE_A")]
        iface_a: String,
        #[arg(value_name = "IFACE_B")]
        iface_b: String,
    },
    /// Remove the cross-connect an interface belongs to (either side may be named).
    Del {
        #[arg(value_name = "IFACE_A")]
        iface_a: String,
    },
    /// List cross-connects.
    List,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_verb() {
        let cli = Cli::try_parse_from(["vsctl", "iface", "list", "--json", "--socket", "/s"])
            .expect("valid command line");
        assert!(cli.json);
        assert_eq!(cli.socket, PathBuf::from("/s"));
        assert!(matches!(cli.command, Command::Iface(IfaceCommand::List)));
    }

    #[test]
    fn iface_add_collects_key_values() {
        let cli = Cli::try_parse_from(["vsctl", "iface", "add", "p0", "pcap", "rx=a", "tx=b"])
            .expect("valid command line");
        match cli.command {
            Command::Iface(IfaceCommand::Add { name, kind, args }) => {
                assert_eq!(name, "p0");
                assert_eq!(kind, "pcap");
                assert_eq!(args, ["rx=a", "tx=b"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn iface_set_needs_a_setting() {
        assert!(Cli::try_parse_from(["vsctl", "iface", "set", "p0"]).is_err());
    }
}
