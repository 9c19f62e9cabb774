//! Interface specifications: `TYPE KEY=VALUE...` from the API, validated whole, and turned
//! into the DPDK devargs and queue layout of the port that implements it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vswitch_vhost::{self as vhost, SocketRole};

use crate::buffers::{self, BufferClass};
use crate::error::{ApiError, ApiResult};
use crate::names::{check_ifname, check_name, check_pci_addr, parse_mac, parse_mtu};

/// Every interface type, as named in the API.
pub const TYPES: [&str; 8] = [
    "af_packet",
    "tap",
    "vhost-user",
    "memif",
    "pcap",
    "null",
    "pci",
    "dpdk",
];

/// What implements an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Linux interface read and written through AF_PACKET sockets.
    AfPacket { iface: String },
    /// A tap device the switch creates.
    Tap { iface: String },
    /// A vhost-user socket for a VM (or virtio-user).
    VhostUser {
        socket: PathBuf,
        role: SocketRole,
        queues: u16,
    },
    /// A memif socket for a container.
    Memif {
        socket: PathBuf,
        role: SocketRole,
        id: u32,
        /// Queue pairs offered (server) or asked for (client).
        queues: u16,
        /// Zero-copy (`zero-copy=on`; a native client only): the port's buffers are
        /// shared with the peer.
        zero_copy: bool,
    },
    /// Packets from a pcap file (optionally looped), sent to a pcap file or dropped.
    Pcap {
        rx: PathBuf,
        tx: Option<PathBuf>,
        looped: bool,
    },
    /// A sink that drops everything sent to it and receives nothing.
    Null,
    /// A PCI NIC bound to a DPDK-compatible driver.
    Pci { dev: String },
    /// Any DPDK device string.
    Dpdk { devargs: String },
    /// A tunnel (model/tunnel.rs): no port; added with `tunnel add`, not `iface add`.
    Tunnel(Box<crate::model::tunnel::Tunnel>),
}

/// Which implementation carries an interface that has two (`driver=`): DPDK's driver, an
/// ethdev port (`net_af_packet`), or the switch's own ([`vswitch_dataplane::native`]),
/// which takes no ethdev port and carries offloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Dpdk,
    Native,
}

impl Driver {
    /// The types that have both, and their default: the faster, as measured (README,
    /// "Kernel interfaces").
    pub fn default_for(type_name: &str) -> Option<Driver> {
        match type_name {
            "af_packet" | "tap" | "vhost-user" | "memif" => Some(Driver::Native),
            _ => None,
        }
    }

    /// The name used in `driver=`.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Dpdk => "dpdk",
            Driver::Native => "native",
        }
    }
}

/// A validated interface request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceSpec {
    pub name: String,
    pub type_name: String,
    /// The arguments as given (for persistence and display).
    pub args: BTreeMap<String, String>,
    pub kind: Kind,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u16>,
    /// The implementation, for types that have two (None for the others).
    pub driver: Option<Driver>,
    /// The network namespace a native tap is made (or found again) in: a file such as
    /// /run/netns/NAME (`netns=`; None: the switch's own).
    pub netns: Option<PathBuf>,
    /// The group a server socket (vhost-user, memif) is given to, by id (`group=NAME|GID`;
    /// None: the switch's own).
    pub socket_group: Option<u32>,
}

/// A port's devargs and queue layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPlan {
    pub devargs: String,
    pub rx_queues: u16,
    pub tx_queues: u16,
}

fn keys_for(type_name: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    // (required, optional) keys beside the common mac= and mtu=.
    Some(match type_name {
        "af_packet" => (&["iface"], &[]),
        "tap" => (&["iface"], &["netns"]),
        "vhost-user" => (&["socket", "mode"], &["queues", "group"]),
        "memif" => (&["socket", "role"], &["id", "queues", "group", "zero-copy"]),
        "pcap" => (&["rx"], &["tx", "loop"]),
        "null" => (&[], &[]),
        "pci" => (&["dev"], &[]),
        "dpdk" => (&["devargs"], &[]),
        _ => return None,
    })
}

/// The `queues=` key of a socket port (vhost-user, memif): 1 when absent.
fn parse_queues(args: &BTreeMap<String, String>) -> ApiResult<u16> {
    match args.get("queues") {
        None => Ok(1),
        Some(q) => match q.parse::<u16>() {
            Ok(n) if (1..=16).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(format!(
                "queues must be a number from 1 to 16, not {q:?}"
            ))),
        },
    }
}

impl IfaceSpec {
    /// Validates a request as a whole; relative socket names resolve under `run_dir`.
    pub fn parse(
        name: &str,
        type_name: &str,
        args: &BTreeMap<String, String>,
        run_dir: &Path,
    ) -> ApiResult<IfaceSpec> {
        check_name("name", name).map_err(ApiError::invalid)?;
        let (required, optional) = keys_for(type_name).ok_or_else(|| {
            if crate::model::tunnel::KINDS.contains(&type_name) {
                return ApiError::invalid(format!(
                    "type {type_name} is a tunnel's: tunnel add {name} {type_name} ... \
                     creates it"
                ));
            }
            ApiError::invalid(format!(
                "type {type_name:?} is unknown; types: {}",
                TYPES.join(", ")
            ))
        })?;
        for k in args.keys() {
            if !required.contains(&k.as_str())
                && !optional.contains(&k.as_str())
                && k != "mac"
                && k != "mtu"
                && !(k == "driver" && Driver::default_for(type_name).is_some())
            {
                let mut known: Vec<&str> = required.iter().chain(optional).copied().collect();
                known.extend(["mac", "mtu"]);
                if Driver::default_for(type_name).is_some() {
                    known.push("driver");
                }
                return Err(ApiError::invalid(format!(
                    "key {k:?} is not known for type {type_name} (keys: {})",
                    known.join(", ")
                )));
            }
        }
        if let Some(k) = required.iter().find(|k| !args.contains_key(**k)) {
            return Err(ApiError::invalid(format!("type {type_name} needs {k}=...")));
        }
        let get = |k: &str| args.get(k).map(String::as_str).unwrap_or_default();
        let inv = ApiError::invalid;
        let kind = match type_name {
            "af_packet" | "tap" => {
                let iface = get("iface");
                check_ifname("iface", iface).map_err(inv)?;
                let exists = Path::new("/sys/class/net").join(iface).exists();
                if type_name == "af_packet" {
                    if !exists {
                        return Err(inv(format!("iface {iface:?}: no such network interface")));
                    }
                    Kind::AfPacket {
                        iface: iface.into(),
                    }
                } else {
                    // A native tap re-attaches to a persistent tap of that name (one a
                    // previous vswitchd left); anything else of that name is in the way.
                    // A tap made in another namespace (netns=) is looked for there, when
                    // it is opened: the switch's own interfaces do not stand in its way.
                    let native = args.get("driver").is_none_or(|d| d == "native");
                    let tap = Path::new("/sys/class/net").join(iface).join("tun_flags");
                    if exists && !args.contains_key("netns") && !(native && tap.exists()) {
                        return Err(inv(format!(
                            "iface {iface:?}: a network interface of that name exists already"
                        )));
                    }
                    Kind::Tap {
                        iface: iface.into(),
                    }
                }
            }
            "vhost-user" => {
                let socket = vhost::resolve_socket(run_dir, get("socket")).map_err(inv)?;
                let role = SocketRole::parse("mode", get("mode")).map_err(inv)?;
                let queues = parse_queues(args)?;
                Kind::VhostUser {
                    socket,
                    role,
                    queues,
                }
            }
            "memif" => {
                let socket = vhost::resolve_socket(run_dir, get("socket")).map_err(inv)?;
                let role = SocketRole::parse("role", get("role")).map_err(inv)?;
                let id = match args.get("id") {
                    None => 0,
                    Some(s) => s.parse::<u32>().map_err(|_| {
                        inv(format!(
                            "id must be a number from 0 to 4294967295, not {s:?}"
                        ))
                    })?,
                };
                let queues = parse_queues(args)?;
                let zero_copy = match args.get("zero-copy").map(String::as_str) {
                    None | Some("off") => false,
                    Some("on") => true,
                    Some(v) => return Err(inv(format!("zero-copy must be on or off, not {v:?}"))),
                };
                if zero_copy && role != SocketRole::Client {
                    return Err(inv(
                        "zero-copy=on needs role=client: the client owns the shared memory"
                            .to_string(),
                    ));
                }
                Kind::Memif {
                    socket,
                    role,
                    id,
                    queues,
                    zero_copy,
                }
            }
            "pcap" => {
                let rx = PathBuf::from(get("rx"));
                check_devarg_path("rx", &rx)?;
                if !rx.is_file() {
                    return Err(inv(format!(
                        "rx {:?}: no such file",
                        rx.display().to_string()
                    )));
                }
                let tx = args.get("tx").map(PathBuf::from);
                if let Some(tx) = &tx {
                    check_devarg_path("tx", tx)?;
                }
                let looped = match args.get("loop").map(String::as_str) {
                    None | Some("off") => false,
                    Some("on") => true,
                    Some(v) => return Err(inv(format!("loop must be on or off, not {v:?}"))),
                };
                Kind::Pcap { rx, tx, looped }
            }
            "null" => Kind::Null,
            "pci" => {
                check_pci_addr("dev", get("dev")).map_err(inv)?;
                Kind::Pci {
                    dev: get("dev").into(),
                }
            }
            "dpdk" => {
                let devargs = get("devargs");
                let dev = devargs.split(',').next().unwrap_or_default();
                if dev.is_empty() || devargs.chars().any(char::is_whitespace) {
                    return Err(inv(format!(
                        "devargs {devargs:?} must start with a device name and hold no spaces"
                    )));
                }
                Kind::Dpdk {
                    devargs: devargs.into(),
                }
            }
            other => {
                return Err(ApiError::internal(format!(
                    "type {other:?} has keys but no parser"
                )))
            }
        };
        let mac = args
            .get("mac")
            .map(|m| parse_mac("mac", m))
            .transpose()
            .map_err(inv)?;
        let mtu = args
            .get("mtu")
            .map(|m| parse_mtu("mtu", m))
            .transpose()
            .map_err(inv)?;
        let driver = match (Driver::default_for(type_name), args.get("driver")) {
            (None, _) => None,
            (Some(d), None) => Some(d),
            (Some(_), Some(v)) => Some(match v.as_str() {
                "native" => Driver::Native,
                "dpdk" => Driver::Dpdk,
                _ => return Err(inv(format!("driver must be native or dpdk, not {v:?}"))),
            }),
        };
        if matches!(
            kind,
            Kind::Memif {
                zero_copy: true,
                ..
            }
        ) && driver != Some(Driver::Native)
        {
            return Err(inv("zero-copy=on needs driver=native".to_string()));
        }
        let socket_group = match args.get("group") {
            None => None,
            Some(g) => Some(socket_group(type_name, &kind, g)?),
        };
        let netns = args.get("netns").map(PathBuf::from);
        if let Some(ns) = &netns {
            if driver != Some(Driver::Native) {
                return Err(inv("netns= needs driver=native".to_string()));
            }
            if mtu.is_some() {
                return Err(inv(
                    "mtu= cannot be set on a tap in another namespace (netns=): set it there"
                        .to_string(),
                ));
            }
            if !ns.is_absolute() || !ns.exists() {
                return Err(inv(format!(
                    "netns {:?}: no such network namespace file (e.g. /run/netns/NAME)",
                    ns.display().to_string()
                )));
            }
        }
        Ok(IfaceSpec {
            name: name.into(),
            type_name: type_name.into(),
            args: args.clone(),
            kind,
            mac,
            mtu,
            driver,
            netns,
            socket_group,
        })
    }

    /// The socket file the switch creates for this interface, if any (server role).
    pub fn server_socket(&self) -> Option<&Path> {
        match &self.kind {
            Kind::VhostUser {
                socket,
                role: SocketRole::Server,
                ..
            }
            | Kind::Memif {
                socket,
                role: SocketRole::Server,
                ..
            } => Some(socket),
            _ => None,
        }
    }

    /// The socket file this interface uses in either role, if any.
    pub fn socket(&self) -> Option<&Path> {
        match &self.kind {
            Kind::VhostUser { socket, .. } | Kind::Memif { socket, .. } => Some(socket),
            _ => None,
        }
    }

    /// The MAC to set on the port once it is open: none for memif (given in its devargs)
    /// and vhost-user, whose driver has no MAC to set: there the MAC given is the switch's
    /// record of the port, the one it reports (and the one routing will use).
    pub fn port_mac(&self) -> Option<[u8; 6]> {
        match self.kind {
            Kind::VhostUser { .. } | Kind::Memif { .. } => None,
            _ => self.mac,
        }
    }

    /// Whether the port's driver makes a MAC up when none is given (null, tap, memif:
    /// random at every open; vhost-user: from the DPDK port id, which depends on the order
    /// of opening). Such an interface records the MAC it got (see [`IfaceSpec::record_mac`]),
    /// so that a restart restores the same MAC. Not af_packet, pcap and pci, whose MAC is
    /// the Linux interface's, fixed or the NIC's: pinning it would override the owner's;
    /// nor `dpdk devargs=`, whose driver is unknown (mac= pins it where it can be set).
    pub fn driver_invents_mac(&self) -> bool {
        match self.kind {
            Kind::Null | Kind::Memif { .. } | Kind::VhostUser { .. } => true,
            // A native tap keeps the MAC the kernel gave it for its life (it persists).
            Kind::Tap { .. } => self.driver == Some(Driver::Dpdk),
            _ => false,
        }
    }

    /// Records `mac` as if it had been given as mac=: in `mac` and in `args` (what is
    /// persisted), so the interface is re-created with it.
    pub fn record_mac(&mut self, mac: [u8; 6]) {
        self.mac = Some(mac);
        self.args
            .insert("mac".to_string(), crate::names::format_mac(mac));
    }

    /// The Linux interface whose link state is the port's (af_packet: DPDK's driver does
    /// not follow the kernel's link after start).
    pub fn kernel_link(&self) -> Option<&str> {
        match &self.kind {
            Kind::AfPacket { iface } => Some(iface),
            _ => None,
        }
    }

    /// The class of packet buffers the port receives into: the one its MTU needs (the
    /// model refuses MTUs that no class carries; standard then, as a fallback).
    pub fn buffers(&self) -> BufferClass {
        BufferClass::for_mtu(self.mtu).unwrap_or(BufferClass::Standard)
    }

    /// The Linux interface that carries the port's MTU, set there by the switch: af_packet,
    /// whose DPDK 22.11 driver reports a 1518-byte max frame, so that ethdev refuses any
    /// MTU over 1500 (rte_eth_dev_set_mtu); the driver's own mtu_set only sets the Linux
    /// interface's MTU (SIOCSIFMTU), which the switch does itself instead.
    pub fn kernel_mtu(&self) -> Option<&str> {
        match &self.kind {
            Kind::AfPacket { iface } => Some(iface),
            _ => None,
        }
    }

    /// The Linux interface a native port opens, if this interface is one
    /// (`driver=native`).
    pub fn native(&self) -> Option<&str> {
        match (&self.kind, self.driver) {
            (Kind::AfPacket { iface } | Kind::Tap { iface }, Some(Driver::Native)) => Some(iface),
            _ => None,
        }
    }

    /// The socket, role and queue pairs of a native vhost-user port (librte_vhost's API,
    /// no ethdev port), if this interface is one.
    pub fn native_vhost(&self) -> Option<(&Path, SocketRole, u16)> {
        match (&self.kind, self.driver) {
            (
                Kind::VhostUser {
                    socket,
                    role,
                    queues,
                },
                Some(Driver::Native),
            ) => Some((socket, *role, *queues)),
            _ => None,
        }
    }

    /// The socket, role, id and queue pairs of a native memif port (the switch's own
    /// memif, no ethdev port), if this interface is one.
    pub fn native_memif(&self) -> Option<(&Path, SocketRole, u32, u16)> {
        match (&self.kind, self.driver) {
            (
                Kind::Memif {
                    socket,
                    role,
                    id,
                    queues,
                    ..
                },
                Some(Driver::Native),
            ) => Some((socket, *role, *id, *queues)),
            _ => None,
        }
    }

    /// Whether it is a zero-copy memif client (`zero-copy=on`).
    pub fn zero_copy(&self) -> bool {
        matches!(
            self.kind,
            Kind::Memif {
                zero_copy: true,
                ..
            }
        )
    }

    /// Whether it is a native tap.
    pub fn native_tap(&self) -> bool {
        matches!(
            (&self.kind, self.driver),
            (Kind::Tap { .. }, Some(Driver::Native))
        )
    }

    /// The tunnel this interface is, if it is one.
    pub fn tunnel(&self) -> Option<&crate::model::tunnel::Tunnel> {
        match &self.kind {
            Kind::Tunnel(t) => Some(t),
            _ => None,
        }
    }

    /// The port's devargs and queues (None for a tunnel, which has no port). `index` makes
    /// the DPDK device name unique; `workers` is the number of workers (each needs its own
    /// tx queue).
    pub fn port_plan(&self, index: u32, workers: u16) -> Option<PortPlan> {
        let w = workers.max(1);
        let one = |devargs: String| PortPlan {
            devargs,
            rx_queues: 1,
            tx_queues: w,
        };
        Some(match &self.kind {
            Kind::AfPacket { iface } => {
                // Every AF_PACKET queue pair is a socket in one fanout group: all must be polled.
                // Jumbo ports get ring frames that hold their frames and fit their buffers.
                PortPlan {
                    devargs: format!(
                        "net_af_packet{index},iface={iface},qpairs={w}{}",
                        buffers::af_packet_devargs(self.buffers())
                    ),
                    rx_queues: w,
                    tx_queues: w,
                }
            }
            // net_tap makes one tap queue per queue pair and wants as many rx queues as tx
            // queues (it refuses the port otherwise); the kernel spreads the host's frames
            // over the queues by flow, so every rx queue is polled (the workers share them).
            Kind::Tap { iface } => PortPlan {
                devargs: format!("net_tap{index},iface={iface}"),
                rx_queues: w,
                tx_queues: w,
            },
            Kind::VhostUser {
                socket,
                role,
                queues,
            } => PortPlan {
                devargs: vhost::vhost_user_devargs(
                    &format!("net_vhost{index}"),
                    socket,
                    *role,
                    (*queues).max(w),
                ),
                rx_queues: *queues,
                tx_queues: w,
            },
            Kind::Memif {
                socket,
                role,
                id,
                queues,
                ..
            } => {
                let mut d = vhost::memif_devargs(&format!("net_memif{index}"), socket, *role, *id);
                // net_memif takes its MAC as a device argument (it cannot be set later).
                if let Some(mac) = self.mac {
                    d.push_str(&format!(",mac={}", crate::names::format_mac(mac)));
                }
                // net_memif makes one ring per ethdev queue: as many rx rings as queue
                // pairs asked for, a tx ring per worker.
                PortPlan {
                    devargs: d,
                    rx_queues: *queues,
                    tx_queues: w,
                }
            }
            Kind::Pcap { rx, tx, looped } => {
                let mut d = format!("net_pcap{index},rx_pcap={}", rx.display());
                // Without tx_pcap the driver drops what is sent to it.
                if let Some(tx) = tx {
                    d.push_str(&format!(",tx_pcap={}", tx.display()));
                }
                if *looped {
                    d.push_str(",infinite_rx=1");
                }
                PortPlan {
                    devargs: d,
                    rx_queues: 1,
                    tx_queues: 1,
                }
            }
            Kind::Null => one(format!("net_null{index},no-rx=1")),
            Kind::Pci { dev } => one(dev.clone()),
            Kind::Dpdk { devargs } => one(devargs.clone()),
            Kind::Tunnel(_) => return None,
        })
    }
}

/// The `group=` of a vhost-user or memif interface of `kind`: the id of the group its
/// server socket is given to. A client's socket is the peer's: refused there.
fn socket_group(type_name: &str, kind: &Kind, group: &str) -> ApiResult<u32> {
    let server = matches!(
        kind,
        Kind::VhostUser {
            role: SocketRole::Server,
            ..
        } | Kind::Memif {
            role: SocketRole::Server,
            ..
        }
    );
    if !server {
        let role = if type_name == "memif" { "role" } else { "mode" };
        return Err(ApiError::invalid(format!(
            "group= needs {role}=server: it sets the group of the socket the switch creates, \
             and a client's socket is the peer's"
        )));
    }
    crate::names::group_id("group", group).map_err(ApiError::invalid)
}

fn check_devarg_path(key: &str, p: &Path) -> ApiResult<()> {
    let s = p.to_string_lossy();
    if !p.is_absolute() {
        return Err(ApiError::invalid(format!(
            "{key} {s:?} must be an absolute path (the daemon's working directory is not yours)"
        )));
    }
    if s.is_empty() || s.contains([',', '=', ' ', '\n', '\t']) {
        return Err(ApiError::invalid(format!(
            "{key} {s:?} must be a file path without ',', '=' or spaces"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(ty: &str, kv: &[(&str, &str)]) -> ApiResult<IfaceSpec> {
        IfaceSpec::parse("p0", ty, &args(kv), Path::new("/run/vswitch"))
    }

    #[test]
    fn af_packet_on_loopback() {
        let s = parse("af_packet", &[("iface", "lo"), ("mtu", "1500")]).unwrap();
        assert_eq!(s.kind, Kind::AfPacket { iface: "lo".into() });
        assert_eq!(s.mtu, Some(1500));
        let p = s.port_plan(3, 2).unwrap();
        assert_eq!(p.devargs, "net_af_packet3,iface=lo,qpairs=2");
        assert_eq!((p.rx_queues, p.tx_queues), (2, 2));
        assert_eq!(s.buffers(), BufferClass::Standard);
        assert_eq!(s.kernel_mtu(), Some("lo"));
    }

    /// A jumbo MTU: jumbo buffers, and af_packet ring frames that carry it.
    #[test]
    fn af_packet_with_a_jumbo_mtu_gets_jumbo_ring_frames() {
        let s = parse("af_packet", &[("iface", "lo"), ("mtu", "9000")]).unwrap();
        assert_eq!(s.buffers(), BufferClass::Jumbo);
        assert_eq!(
            s.port_plan(3, 2).unwrap().devargs,
            "net_af_packet3,iface=lo,qpairs=2,framesz=9728,blocksz=77824,framecnt=512"
        );
        let n = parse("null", &[("mtu", "9000")]).unwrap();
        assert_eq!(n.buffers(), BufferClass::Jumbo);
        assert_eq!(n.kernel_mtu(), None);
        assert_eq!(n.port_plan(5, 1).unwrap().devargs, "net_null5,no-rx=1");
        let e = parse("af_packet", &[("iface", "lo"), ("mtu", "9601")]).unwrap_err();
        assert!(e.message.contains("from 68 to 9600"), "{e}");
    }

    /// A MAC the driver made up is recorded as mac=: re-parsing what is persisted gives
    /// the same interface, with that MAC set on the port (memif: in its devargs).
    #[test]
    fn a_made_up_mac_is_recorded_as_if_given() {
        let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        for (ty, kv) in [
            ("null", &[][..]),
            ("memif", &[("socket", "m.sock"), ("role", "server")][..]),
            (
                "vhost-user",
                &[("socket", "v.sock"), ("mode", "server")][..],
            ),
        ] {
            let mut s = parse(ty, kv).unwrap();
            assert!(s.driver_invents_mac(), "{ty}");
            s.record_mac(mac);
            assert_eq!(
                s.args.get("mac").map(String::as_str),
                Some("02:11:22:33:44:55")
            );
            let again = IfaceSpec::parse("p0", ty, &s.args, Path::new("/run/vswitch")).unwrap();
            assert_eq!(again, s, "{ty}");
            assert_eq!(again.mac, Some(mac));
        }
        let null = parse("null", &[("mac", "02:11:22:33:44:55")]).unwrap();
        assert_eq!(null.port_mac(), Some(mac));
        let mut memif = parse("memif", &[("socket", "m.sock"), ("role", "server")]).unwrap();
        memif.record_mac(mac);
        assert!(memif
            .port_plan(0, 1)
            .unwrap()
            .devargs
            .ends_with(",mac=02:11:22:33:44:55"));
        // A Linux interface's MAC is its owner's: not pinned.
        assert!(!parse("af_packet", &[("iface", "lo")])
            .unwrap()
            .driver_invents_mac());
    }

    #[test]
    fn errors_name_the_problem() {
        let e = |ty: &str, kv: &[(&str, &str)]| parse(ty, kv).unwrap_err().message;
        assert!(e("vxlan0", &[]).contains("type \"vxlan0\" is unknown"));
        assert!(e("vxlan", &[]).contains("type vxlan is a tunnel's: tunnel add p0 vxlan"));
        assert!(e("af_packet", &[]).contains("needs iface="));
        assert!(e("af_packet", &[("iface", "nonexistent9")]).contains("no such network interface"));
        assert!(e("af_packet", &[("iface", "lo"), ("colour", "red")]).contains("key \"colour\""));
        assert!(e(
            "af_packet",
            &[("iface", "lo"), ("mac", "zz:00:00:00:00:01")]
        )
        .contains("not a MAC"));
        assert!(e("tap", &[("iface", "lo")]).contains("exists already"));
        assert!(e("vhost-user", &[("socket", "a.sock"), ("mode", "both")]).contains("mode must be"));
        assert!(e(
            "vhost-user",
            &[("socket", "a.sock"), ("mode", "server"), ("queues", "0")]
        )
        .contains("queues"));
        assert!(e(
            "memif",
            &[("socket", "m.sock"), ("role", "server"), ("id", "-1")]
        )
        .contains("id must be"));
        assert!(e("pcap", &[("rx", "/nonexistent/x.pcap")]).contains("no such file"));
        assert!(e("pcap", &[("rx", "x.pcap")]).contains("absolute path"));
        assert!(e("pcap", &[("rx", "/etc/hostname"), ("loop", "yes")]).contains("loop must be"));
        assert!(e("pci", &[("dev", "00:04")]).contains("not a PCI address"));
        assert!(e("dpdk", &[("devargs", "")]).contains("device name"));
        let long =
            IfaceSpec::parse(&"x".repeat(32), "null", &args(&[]), Path::new("/run")).unwrap_err();
        assert!(long.message.contains("31"));
    }

    #[test]
    fn vhost_and_memif_sockets() {
        let v = parse(
            "vhost-user",
            &[("socket", "vm1.sock"), ("mode", "server"), ("queues", "2")],
        )
        .unwrap();
        assert_eq!(v.server_socket(), Some(Path::new("/run/vswitch/vm1.sock")));
        let p = v.port_plan(0, 1).unwrap();
        assert_eq!(
            p.devargs,
            "net_vhost0,iface=/run/vswitch/vm1.sock,queues=2,client=0"
        );
        assert_eq!((p.rx_queues, p.tx_queues), (2, 1));
        let m = parse(
            "memif",
            &[("socket", "/tmp/m.sock"), ("role", "client"), ("id", "4")],
        )
        .unwrap();
        assert_eq!(m.server_socket(), None);
        assert_eq!(m.socket(), Some(Path::new("/tmp/m.sock")));
        assert_eq!(
            m.port_plan(1, 1).unwrap().devargs,
            "net_memif1,role=client,id=4,socket=/tmp/m.sock,socket-abstract=no"
        );
        assert_eq!(m.native_memif().map(|m| m.3), Some(1));
        let m = parse(
            "memif",
            &[("socket", "m.sock"), ("role", "server"), ("queues", "4")],
        )
        .unwrap();
        assert_eq!(
            m.native_memif(),
            Some((Path::new("/run/vswitch/m.sock"), SocketRole::Server, 0, 4))
        );
        let p = m.port_plan(0, 2).unwrap();
        assert_eq!((p.rx_queues, p.tx_queues), (4, 2));
        for bad in ["0", "17", "two", ""] {
            let e = parse(
                "memif",
                &[("socket", "m.sock"), ("role", "server"), ("queues", bad)],
            )
            .unwrap_err()
            .message;
            assert!(e.contains("queues must be a number from 1 to 16"), "{e}");
        }
    }

    /// zero-copy= is on or off, for a native memif client only: the client owns the
    /// shared memory, and DPDK's net_memif is not the switch's to share it through.
    #[test]
    fn zero_copy_is_for_native_memif_clients() {
        let base = [("socket", "/tmp/z.sock"), ("role", "client")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut kv = base.to_vec();
            kv.extend_from_slice(extra);
            parse("memif", &kv)
        };
        assert!(with(&[("zero-copy", "on")]).unwrap().zero_copy());
        assert!(!with(&[("zero-copy", "off")]).unwrap().zero_copy());
        assert!(!with(&[]).unwrap().zero_copy());
        for (extra, want) in [
            (&[("zero-copy", "yes")][..], "zero-copy must be on or off"),
            (
                &[("zero-copy", "on"), ("driver", "dpdk")][..],
                "needs driver=native",
            ),
        ] {
            let e = with(extra).unwrap_err().message;
            assert!(e.contains(want), "{e}");
        }
        let e = parse(
            "memif",
            &[
                ("socket", "/tmp/z.sock"),
                ("role", "server"),
                ("zero-copy", "on"),
            ],
        )
        .unwrap_err()
        .message;
        assert!(e.contains("zero-copy=on needs role=client"), "{e}");
        let e = parse(
            "vhost-user",
            &[
                ("socket", "/tmp/v.sock"),
                ("mode", "client"),
                ("zero-copy", "on"),
            ],
        )
        .unwrap_err()
        .message;
        assert!(e.contains("key \"zero-copy\" is not known"), "{e}");
    }

    /// group= gives a server socket to a group (by name or number); a client's socket is
    /// not the switch's to give, and an unknown group is named.
    #[test]
    fn server_sockets_take_a_group() {
        let v = parse(
            "vhost-user",
            &[
                ("socket", "vm1.sock"),
                ("mode", "server"),
                ("group", "root"),
            ],
        )
        .unwrap();
        assert_eq!(v.socket_group, Some(0));
        assert_eq!(v.args.get("group").map(String::as_str), Some("root"));
        let m = parse(
            "memif",
            &[("socket", "m.sock"), ("role", "server"), ("group", "1234")],
        )
        .unwrap();
        assert_eq!(m.socket_group, Some(1234));
        assert_eq!(
            parse("memif", &[("socket", "m.sock"), ("role", "server")])
                .unwrap()
                .socket_group,
            None
        );
        let e = |ty: &str, kv: &[(&str, &str)]| parse(ty, kv).unwrap_err().message;
        assert_eq!(
            e(
                "vhost-user",
                &[
                    ("socket", "vm1.sock"),
                    ("mode", "client"),
                    ("group", "root")
                ]
            ),
            "group= needs mode=server: it sets the group of the socket the switch creates, \
             and a client's socket is the peer's"
        );
        assert!(e(
            "memif",
            &[("socket", "m.sock"), ("role", "client"), ("group", "root")]
        )
        .starts_with("group= needs role=server"));
        assert_eq!(
            e(
                "memif",
                &[
                    ("socket", "m.sock"),
                    ("role", "server"),
                    ("group", "no-such-grp7")
                ]
            ),
            "group: no group named \"no-such-grp7\""
        );
        assert!(e("null", &[("group", "root")]).contains("key \"group\" is not known"));
        assert!(e("af_packet", &[("iface", "lo"), ("group", "root")]).contains("not known"));
    }

    #[test]
    fn pcap_null_pci_dpdk() {
        let p = parse("pcap", &[("rx", "/etc/hostname"), ("loop", "on")])
            .unwrap()
            .port_plan(2, 4)
            .unwrap();
        assert_eq!(p.devargs, "net_pcap2,rx_pcap=/etc/hostname,infinite_rx=1");
        assert_eq!(p.tx_queues, 1);
        assert_eq!(
            parse("null", &[]).unwrap().port_plan(5, 1).unwrap().devargs,
            "net_null5,no-rx=1"
        );
        assert_eq!(
            parse("pci", &[("dev", "0000:00:04.0")])
                .unwrap()
                .port_plan(0, 1)
                .unwrap()
                .devargs,
            "0000:00:04.0"
        );
        assert_eq!(
            parse("dpdk", &[("devargs", "net_ring0")])
                .unwrap()
                .port_plan(0, 1)
                .unwrap()
                .devargs,
            "net_ring0"
        );
    }
}
