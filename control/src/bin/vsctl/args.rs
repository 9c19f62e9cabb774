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
    /// Bridges: L2 switching domains with MAC learning and VLANs.
    #[command(subcommand)]
    Bridge(BridgeCommand),
    /// The MAC table (forwarding database) of a bridge.
    #[command(subcommand)]
    Fdb(FdbCommand),
    /// L2 cross-connects: everything received on one interface is sent out of the other.
    #[command(subcommand)]
    Xconnect(XconnectCommand),
    /// VRFs: routing tables of their own (VRF 0 always exists).
    #[command(subcommand)]
    Vrf(VrfCommand),
    /// Interface addresses (each adds a connected and a local route to the interface's
    /// VRF). A bridge's routed interface is bvi:BR.
    #[command(subcommand)]
    Addr(AddrCommand),
    /// Routes: static ones, and the connected and local routes of addresses.
    #[command(subcommand)]
    Route(RouteCommand),
    /// Static neighbours (ARP / ND entries) and the neighbour table's settings.
    #[command(subcommand)]
    Neigh(NeighCommand),
    /// Tunnels (vxlan, geneve, gre, ipip): interfaces to attach to a bridge or to address
    /// and route into; and the MAC -> VTEP entries of vxlan / geneve ones.
    #[command(subcommand)]
    Tunnel(TunnelCommand),
    /// ACLs: ordered rules (the first that matches decides; none: deny) bound to
    /// interfaces in or out. They see IP packets only (not ARP, IPv6 ND/RA).
    #[command(subcommand)]
    Acl(AclCommand),
    /// Services: a virtual IP and port (tcp or udp) spread over backends (Kubernetes'
    /// ClusterIP, NodePort).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// NAT: masquerade (source NAT to an interface's address on egress) and port mappings.
    #[command(subcommand)]
    Nat(NatCommand),
    /// The session table of stateful ACLs (permit-reflect): its settings and counters.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Sessions of stateful ACLs: `sessions [IFACE] [--max N]` lists them (of every
    /// interface or of one; at most N, default 10000); `sessions flush [IFACE]` removes them.
    Sessions {
        #[arg(value_name = "flush|IFACE", num_args = 0..=2)]
        words: Vec<String>,
        /// List at most this many sessions (a note on stderr says when there are more).
        #[arg(long, value_name = "N", default_value_t = 10_000,
              value_parser = clap::value_parser!(u32).range(1..))]
        max: u32,
    },
    /// Proxy-ARP on an L3 interface: `proxy-arp IFACE on|off`.
    ProxyArp {
        #[arg(value_name = "IFACE")]
        iface: String,
        #[arg(value_name = "on|off")]
        state: String,
    },
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
    /// The packet graph at work: per worker and stage, packets, cycles per packet and
    /// drops by reason; the slow path's rings.
    Runtime,
    /// Packet buffer pools: capacity and use.
    Mempools,
    /// Apply a file of vsctl commands (one per line, `-` for stdin) as one all-or-nothing
    /// transaction.
    Transaction {
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Print events as they happen: link up/down, MAC learned/moved/aged, configuration
    /// changes (KIND: link, fdb, neighbor, config; default all).
    Watch {
        #[arg(value_name = "KIND", value_parser = ["link", "fdb", "neighbor", "config"])]
        kinds: Vec<String>,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Print a shell completion script.
    Completion {
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum IfaceCommand {
    /// Create an interface: `iface add NAME TYPE [KEY=VALUE ...] [vrf=ID]`.
    Add {
        #[arg(value_name = "NAME")]
        name: String,
        /// af_packet, tap, vhost-user, memif, pcap, null, pci or dpdk.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// Type-specific arguments, plus mac=MAC, mtu=N and vrf=ID.
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
    /// Set an interface up or down, change its MTU and/or move it to another VRF: `iface
    /// set NAME [up|down] [mtu=N] [vrf=ID]` (bvi:BR takes vrf= only).
    Set {
        #[arg(value_name = "NAME")]
        name: String,
        /// `up`, `down`, `mtu=N` and/or `vrf=ID`.
        #[arg(value_name = "up|down|mtu=N|vrf=ID", required = true)]
        settings: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// Create a bridge: `bridge add BR [learn=on|off] [age=SECONDS] [learn-limit=N]
    /// [flood=on|off] [vrf=ID]` (vrf: of its routed interface bvi:BR).
    Add {
        #[arg(value_name = "BR")]
        name: String,
        /// learn=on|off, age=SECONDS, learn-limit=N, flood=on|off, vrf=ID.
        #[arg(value_name = "KEY=VALUE")]
        args: Vec<String>,
    },
    /// Delete a bridge (its members are detached).
    Del {
        #[arg(value_name = "BR")]
        name: String,
    },
    /// List bridges with their settings and members.
    List,
    /// Show one bridge and its members.
    Show {
        #[arg(value_name = "BR")]
        name: String,
    },
    /// Make an interface a member: `bridge attach BR IFACE [vlan=ID | trunk=ID,ID,...]`
    /// (neither: untagged member).
    Attach {
        #[arg(value_name = "BR")]
        bridge: String,
        #[arg(value_name = "IFACE")]
        iface: String,
        /// vlan=ID (access member of that VLAN) or trunk=ID,ID,... (tagged VLANs).
        #[arg(value_name = "vlan=ID|trunk=ID,...")]
        args: Vec<String>,
    },
    /// Remove an interface from a bridge.
    Detach {
        #[arg(value_name = "BR")]
        bridge: String,
        #[arg(value_name = "IFACE")]
        iface: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum FdbCommand {
    /// Show the MAC table of a bridge, learned and static entries.
    Show {
        #[arg(value_name = "BR")]
        bridge: String,
    },
    /// Add a static entry: `fdb add BR MAC IFACE [vlan=ID] [remote=IP]` (remote: the VTEP
    /// behind a vxlan or geneve tunnel member).
    Add {
        #[arg(value_name = "BR")]
        bridge: String,
        #[arg(value_name = "MAC")]
        mac: String,
        #[arg(value_name = "IFACE")]
        iface: String,
        /// vlan=ID: the bridge VLAN of the entry (default: untagged members' VLAN);
        /// remote=IP: the VTEP behind a tunnel.
        #[arg(value_name = "vlan=ID|remote=IP")]
        args: Vec<String>,
    },
    /// Show one entry: `fdb get BR MAC [vlan=ID]`.
    Get {
        #[arg(value_name = "BR")]
        bridge: String,
        #[arg(value_name = "MAC")]
        mac: String,
        /// vlan=ID: the bridge VLAN of the entry (default: untagged members' VLAN).
        #[arg(value_name = "vlan=ID")]
        args: Vec<String>,
    },
    /// Delete an entry: `fdb del BR MAC [vlan=ID]`.
    Del {
        #[arg(value_name = "BR")]
        bridge: String,
        #[arg(value_name = "MAC")]
        mac: String,
        /// vlan=ID: the bridge VLAN of the entry (default: untagged members' VLAN).
        #[arg(value_name = "vlan=ID")]
        args: Vec<String>,
    },
    /// Remove the learned entries of a bridge, or only those of one interface.
    Flush {
        #[arg(value_name = "BR")]
        bridge: String,
        #[arg(value_name = "IFACE")]
        iface: Option<String>,
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
    /// Show the cross-connect an interface belongs to.
    Show {
        #[arg(value_name = "IFACE")]
        iface: String,
    },
    /// List cross-connects.
    List,
}

#[derive(Debug, Subcommand)]
pub enum VrfCommand {
    /// Create a VRF: `vrf add ID` (1 to 4095).
    Add {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Delete a VRF (refused while an interface or a route is in it).
    Del {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// List VRFs with their interfaces and route counts.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AddrCommand {
    /// Add an address to an L3 interface: `addr add IFACE CIDR` (10.0.0.1/24, 2001:db8::1/64).
    Add {
        #[arg(value_name = "IFACE")]
        iface: String,
        #[arg(value_name = "CIDR")]
        cidr: String,
    },
    /// Delete an address (with its connected and local routes).
    Del {
        #[arg(value_name = "IFACE")]
        iface: String,
        #[arg(value_name = "CIDR")]
        cidr: String,
    },
    /// List addresses, of every interface or of one.
    List {
        #[arg(value_name = "IFACE")]
        iface: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Add a static route, or replace the one of the prefix: `route add PREFIX via
    /// NH[,NH...] [dev IFACE] [onlink] [vrf=ID]` or `route add PREFIX dev IFACE [vrf=ID]`.
    Add {
        #[arg(value_name = "PREFIX")]
        prefix: String,
        /// via NH[,NH...], dev IFACE, onlink, vrf=ID.
        #[arg(
            value_name = "via NH|dev IFACE|onlink|vrf=ID",
            allow_hyphen_values = true
        )]
        args: Vec<String>,
    },
    /// Delete a static route: `route del PREFIX [vrf=ID]`.
    Del {
        #[arg(value_name = "PREFIX")]
        prefix: String,
        #[arg(value_name = "vrf=ID")]
        args: Vec<String>,
    },
    /// Show the routes of every VRF, or of one: `route show [vrf=ID]`.
    #[command(visible_alias = "list")]
    Show {
        #[arg(value_name = "vrf=ID")]
        args: Vec<String>,
    },
    /// Look addresses up in a VRF's FIB, as the workers do: `route get ADDR[,ADDR...]
    /// [vrf=ID]` (the matched route of each).
    Get {
        #[arg(value_name = "ADDR[,ADDR...]")]
        addresses: String,
        #[arg(value_name = "vrf=ID")]
        args: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NeighCommand {
    /// Show static neighbours, of every interface or of one.
    Show {
        #[arg(value_name = "IFACE")]
        iface: Option<String>,
    },
    /// Add a static neighbour, or replace its MAC: `neigh add IFACE IP MAC`.
    Add {
        #[arg(value_name = "IFACE")]
        iface: String,
        #[arg(value_name = "IP")]
        ip: String,
        #[arg(value_name = "MAC")]
        mac: String,
    },
    /// Delete a static neighbour: `neigh del IFACE IP`.
    Del {
        #[arg(value_name = "IFACE")]
        iface: String,
        #[arg(value_name = "IP")]
        ip: String,
    },
    /// Set the neighbour table's limits: `neigh set [limit=N] [age=SECONDS]`.
    Set {
        #[arg(value_name = "limit=N|age=SECONDS")]
        args: Vec<String>,
    },
    /// Show the neighbour table's settings.
    Config,
}

#[derive(Debug, Subcommand)]
pub enum TunnelCommand {
    /// Create a tunnel: `tunnel add NAME vxlan|geneve vni=N local=IP [remote=IP,...]
    /// [port=N]`, `tunnel add NAME gre local=IP remote=IP [key=N] [mode=l3|teb]`, `tunnel
    /// add NAME ipip local=IP [remote=IP]`; all take [vrf=ID] (the underlay's), [ttl=N]
    /// (0: inherit; default 64), [df=on|off], [mtu=N], and the Ethernet kinds [mac=MAC].
    Add {
        #[arg(value_name = "NAME")]
        name: String,
        /// vxlan, geneve, gre or ipip.
        #[arg(value_name = "KIND")]
        kind: String,
        #[arg(value_name = "KEY=VALUE")]
        args: Vec<String>,
    },
    /// Delete a tunnel (refused while a route goes through it; its addresses, bridge
    /// membership and MAC -> VTEP entries go with it).
    Del {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List tunnels.
    List,
    /// Show one tunnel.
    Show {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Static MAC -> VTEP entries of a vxlan or geneve tunnel that is an L3 interface.
    #[command(subcommand)]
    Fdb(TunnelFdbCommand),
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Create an ACL: `acl add NAME RULE [RULE ...]`, each RULE one argument, `"ACTION
    /// [proto=tcp|udp|icmp|icmp6|N] [src=CIDR] [dst=CIDR] [sport=A[-B]] [dport=A[-B]]
    /// [icmp-type=N [icmp-code=N]]"`, ACTION permit, deny or permit-reflect.
    Add {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "RULE", required = true)]
        rules: Vec<String>,
    },
    /// Replace an ACL's rules (its bindings stay; its hit counters start at 0).
    Set {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "RULE", required = true)]
        rules: Vec<String>,
    },
    /// Delete an ACL (refused while it is bound).
    Del {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List ACLs: rules and bindings.
    List,
    /// Show an ACL's rules with their hits (since its rules were set), the default deny's
    /// hits, and where it is bound.
    Show {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Bind an ACL to an interface: `acl bind IFACE NAME in|out` (one per direction).
    Bind {
        #[arg(value_name = "IFACE")]
        iface: String,
        #[arg(value_name = "NAME")]
        acl: String,
        #[arg(value_name = "in|out")]
        direction: String,
    },
    /// Unbind an interface's ACL: `acl unbind IFACE in|out`.
    Unbind {
        #[arg(value_name = "IFACE")]
        iface: String,
        #[arg(value_name = "in|out")]
        direction: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a service: `service add NAME IP:PORT proto=tcp|udp
    /// backends=IP:PORT[*WEIGHT],... [nodeport=N] [affinity=client-ip] [vrf=ID]` (IPv6:
    /// [ADDR]:PORT; weight default 1, 0 drains a backend).
    Add {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "IP:PORT")]
        vip: String,
        #[arg(value_name = "KEY=VALUE")]
        args: Vec<String>,
    },
    /// Replace a service's backends: `service set NAME backends=...` (established flows
    /// stay on theirs).
    Set {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "KEY=VALUE", required = true)]
        args: Vec<String>,
    },
    /// Delete a service.
    Del {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List services.
    List,
    /// Show a service with its backends' new flows and packets.
    Show {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NatCommand {
    /// Masquerade traffic leaving IFACE (source NAT to its address): `nat masquerade IFACE
    /// on|off`.
    Masquerade {
        #[arg(value_name = "IFACE")]
        iface: String,
        #[arg(value_name = "on|off")]
        state: String,
    },
    /// Port mappings (Docker's -p): `nat portmap add IFACE tcp|udp PORT IP:PORT`, `nat
    /// portmap del IFACE tcp|udp PORT`.
    #[command(subcommand)]
    Portmap(PortmapCommand),
    /// Show masquerading interfaces (with the addresses they translate to) and port
    /// mappings.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum PortmapCommand {
    /// Map PORT of IFACE's addresses to IP:PORT.
    Add {
        #[arg(value_name = "IFACE")]
        iface: String,
        #[arg(value_name = "tcp|udp")]
        proto: String,
        #[arg(value_name = "PORT")]
        port: String,
        #[arg(value_name = "IP:PORT")]
        to: String,
    },
    /// Remove a port mapping.
    Del {
        #[arg(value_name = "IFACE")]
        iface: String,
        #[arg(value_name = "tcp|udp")]
        proto: String,
        #[arg(value_name = "PORT")]
        port: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Set the session table's settings: `session set [limit=N] [iface-limit=N]
    /// [timeout-tcp=S] [timeout-tcp-transitory=S] [timeout-udp=S] [timeout-icmp=S]`.
    Set {
        #[arg(value_name = "KEY=VALUE")]
        args: Vec<String>,
    },
    /// Show the settings and the counters (live, created, evicted, refused, expired).
    Show,
}

#[derive(Debug, Subcommand)]
pub enum TunnelFdbCommand {
    /// Add an entry, or replace its remote: `tunnel fdb add TUNNEL MAC remote=IP`.
    Add {
        #[arg(value_name = "TUNNEL")]
        tunnel: String,
        #[arg(value_name = "MAC")]
        mac: String,
        #[arg(value_name = "remote=IP")]
        args: Vec<String>,
    },
    /// Delete an entry: `tunnel fdb del TUNNEL MAC`.
    Del {
        #[arg(value_name = "TUNNEL")]
        tunnel: String,
        #[arg(value_name = "MAC")]
        mac: String,
    },
    /// Show a tunnel's entries.
    Show {
        #[arg(value_name = "TUNNEL")]
        tunnel: String,
    },
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
    fn bridge_add_collects_key_values() {
        let cli = Cli::try_parse_from(["vsctl", "bridge", "add", "br0", "learn=off", "age=60"])
            .expect("valid command line");
        match cli.command {
            Command::Bridge(BridgeCommand::Add { name, args }) => {
                assert_eq!(name, "br0");
                assert_eq!(args, ["learn=off", "age=60"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bridge_attach_takes_bridge_iface_and_options() {
        let cli = Cli::try_parse_from(["vsctl", "bridge", "attach", "br0", "p0", "trunk=10,20"])
            .expect("valid command line");
        match cli.command {
            Command::Bridge(BridgeCommand::Attach {
                bridge,
                iface,
                args,
            }) => {
                assert_eq!(bridge, "br0");
                assert_eq!(iface, "p0");
                assert_eq!(args, ["trunk=10,20"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["vsctl", "bridge", "attach", "br0"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "bridge", "detach", "br0"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "bridge", "show"]).is_err());
    }

    #[test]
    fn fdb_forms() {
        let cli = Cli::try_parse_from([
            "vsctl",
            "fdb",
            "add",
            "br0",
            "02:00:00:00:00:01",
            "p0",
            "vlan=10",
        ])
        .expect("valid command line");
        match cli.command {
            Command::Fdb(FdbCommand::Add {
                bridge,
                mac,
                iface,
                args,
            }) => {
                assert_eq!(bridge, "br0");
                assert_eq!(mac, "02:00:00:00:00:01");
                assert_eq!(iface, "p0");
                assert_eq!(args, ["vlan=10"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = Cli::try_parse_from(["vsctl", "fdb", "flush", "br0"]).expect("valid");
        assert!(matches!(
            cli.command,
            Command::Fdb(FdbCommand::Flush { iface: None, .. })
        ));
        let cli = Cli::try_parse_from(["vsctl", "fdb", "flush", "br0", "p0"]).expect("valid");
        assert!(matches!(
            cli.command,
            Command::Fdb(FdbCommand::Flush { iface: Some(_), .. })
        ));
        assert!(Cli::try_parse_from(["vsctl", "fdb", "flush", "br0", "p0", "p1"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "fdb", "add", "br0", "02:00:00:00:00:01"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "fdb", "show"]).is_err());
    }

    #[test]
    fn tunnel_forms() {
        let cli = Cli::try_parse_from([
            "vsctl",
            "tunnel",
            "add",
            "vx0",
            "vxlan",
            "vni=1",
            "local=10.0.0.1",
        ])
        .expect("valid command line");
        match cli.command {
            Command::Tunnel(TunnelCommand::Add { name, kind, args }) => {
                assert_eq!((name.as_str(), kind.as_str()), ("vx0", "vxlan"));
                assert_eq!(args, ["vni=1", "local=10.0.0.1"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = Cli::try_parse_from([
            "vsctl",
            "tunnel",
            "fdb",
            "add",
            "vx0",
            "02:00:00:00:00:01",
            "remote=10.0.0.2",
        ])
        .expect("valid command line");
        assert!(matches!(
            cli.command,
            Command::Tunnel(TunnelCommand::Fdb(TunnelFdbCommand::Add { .. }))
        ));
        assert!(Cli::try_parse_from(["vsctl", "tunnel", "add", "vx0"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "tunnel", "del"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "tunnel", "fdb", "del", "vx0"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "--json", "tunnel", "list"]).is_ok());
    }

    #[test]
    fn acl_forms() {
        let cli = Cli::try_parse_from([
            "vsctl",
            "acl",
            "add",
            "web",
            "permit proto=tcp dport=80",
            "deny",
        ])
        .expect("valid command line");
        match cli.command {
            Command::Acl(AclCommand::Add { name, rules }) => {
                assert_eq!(name, "web");
                assert_eq!(rules, ["permit proto=tcp dport=80", "deny"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["vsctl", "acl", "add", "web"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "acl", "set", "web"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "acl", "bind", "a", "web"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "acl", "unbind", "a", "in"]).is_ok());
        assert!(Cli::try_parse_from(["vsctl", "--json", "acl", "show", "web"]).is_ok());
    }

    #[test]
    fn session_forms() {
        let cli = Cli::try_parse_from(["vsctl", "session", "set", "limit=5"]).expect("valid");
        assert!(matches!(
            cli.command,
            Command::Session(SessionCommand::Set { .. })
        ));
        assert!(Cli::try_parse_from(["vsctl", "--json", "session", "show"]).is_ok());
        let cli = Cli::try_parse_from(["vsctl", "sessions"]).expect("valid");
        assert!(
            matches!(cli.command, Command::Sessions { ref words, max: 10_000 } if words.is_empty())
        );
        let cli = Cli::try_parse_from(["vsctl", "sessions", "flush", "a"]).expect("valid");
        assert!(matches!(cli.command, Command::Sessions { ref words, .. } if words.len() == 2));
        assert!(Cli::try_parse_from(["vsctl", "sessions", "a", "--max", "5"]).is_ok());
        assert!(Cli::try_parse_from(["vsctl", "sessions", "--max", "0"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "sessions", "flush", "a", "b"]).is_err());
    }

    #[test]
    fn service_and_nat_forms() {
        let cli = Cli::try_parse_from([
            "vsctl",
            "service",
            "add",
            "web",
            "10.96.0.10:80",
            "proto=tcp",
            "backends=10.1.0.5:8080*2,10.1.0.6:8080",
        ])
        .expect("valid command line");
        match cli.command {
            Command::Service(ServiceCommand::Add { name, vip, args }) => {
                assert_eq!((name.as_str(), vip.as_str()), ("web", "10.96.0.10:80"));
                assert_eq!(args.len(), 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["vsctl", "service", "set", "web"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "service", "del", "web"]).is_ok());
        assert!(Cli::try_parse_from(["vsctl", "--json", "service", "show", "web"]).is_ok());
        assert!(Cli::try_parse_from(["vsctl", "nat", "masquerade", "up0", "on"]).is_ok());
        assert!(Cli::try_parse_from([
            "vsctl",
            "nat",
            "portmap",
            "add",
            "up0",
            "tcp",
            "8080",
            "10.1.0.5:80"
        ])
        .is_ok());
        assert!(Cli::try_parse_from(["vsctl", "nat", "portmap", "del", "up0", "tcp"]).is_err());
        assert!(Cli::try_parse_from(["vsctl", "--json", "nat", "show"]).is_ok());
    }

    #[test]
    fn iface_set_needs_a_setting() {
        assert!(Cli::try_parse_from(["vsctl", "iface", "set", "p0"]).is_err());
    }
}
