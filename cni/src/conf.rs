//! What a runtime hands the plugin: the CNI_* environment and the network configuration on
//! stdin, validated whole before anything is changed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::error::{code, invalid, CniError, CniResult};
use crate::version::{self, Version};

/// Where vswitchd listens unless the config says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/vswitch/vswitchd.sock";
/// Where memif and vhost-user sockets are made unless the config says otherwise.
pub const DEFAULT_SOCKET_DIR: &str = "/run/vswitch/cni";

/// The CNI verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> CniResult<Command> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            "" => return Err(env_error("CNI_COMMAND is not set")),
            other => {
                return Err(env_error(format!(
                    "CNI_COMMAND {other:?} is not one of ADD, DEL, CHECK, STATUS, GC, VERSION"
                )))
            }
        })
    }
}

fn env_error(msg: impl Into<String>) -> CniError {
    CniError::new(code::INVALID_ENV, msg)
}

/// The CNI_* variables of one call (empty where unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: Vec<PathBuf>,
}

impl Env {
    /// Reads the variables through `get`, checking those `command` needs.
    pub fn read(command: Command, get: impl Fn(&str) -> Option<String>) -> CniResult<Env> {
        let env = Env {
            container_id: get("CNI_CONTAINERID").unwrap_or_default(),
            netns: get("CNI_NETNS").unwrap_or_default(),
            ifname: get("CNI_IFNAME").unwrap_or_default(),
            args: get("CNI_ARGS").unwrap_or_default(),
            path: get("CNI_PATH")
                .unwrap_or_default()
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
        };
        let needs: &[&str] = match command {
            Command::Add | Command::Check => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME"],
            Command::Status | Command::Gc | Command::Version => &[],
        };
        for var in needs {
            let value = match *var {
                "CNI_CONTAINERID" => &env.container_id,
                "CNI_NETNS" => &env.netns,
                _ => &env.ifname,
            };
            if value.is_empty() {
                return Err(env_error(format!("{var} is not set")));
            }
        }
        if !env.container_id.is_empty() && !is_cni_name(&env.container_id, 256) {
            return Err(env_error(format!(
                "CNI_CONTAINERID {:?} must be letters, digits, '_', '.' and '-', \
                 starting with a letter or digit",
                env.container_id
            )));
        }
        if !env.ifname.is_empty() && !is_ifname(&env.ifname) {
            return Err(env_error(format!(
                "CNI_IFNAME {:?} is not a Linux interface name (1-15 characters, no '/', \
                 ':' or white space)",
                env.ifname
            )));
        }
        if !env.netns.is_empty() && !env.netns.starts_with('/') {
            return Err(env_error(format!(
                "CNI_NETNS {:?} must be an absolute path",
                env.netns
            )));
        }
        if command != Command::Version && env.path.is_empty() {
            return Err(env_error("CNI_PATH is not set"));
        }
        Ok(env)
    }
}

impl Env {
    /// The value of `key` in CNI_ARGS (`K=V;K=V`), if given.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The MAC CNI_ARGS asks for (`MAC=`, as podman's `--mac-address` sends it).
    pub fn mac(&self) -> CniResult<Option<[u8; 6]>> {
        match self.arg("MAC") {
            None => Ok(None),
            Some(m) => parse_mac(m).map(Some).ok_or_else(|| {
                env_error(format!("CNI_ARGS MAC={m:?} is not a unicast MAC address"))
            }),
        }
    }
}

/// A CNI name (container id, network name): `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most `max`.
pub fn is_cni_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A Linux interface name (IFNAMSIZ - 1 bytes, none of '/', ':', ',', '=' or space).
pub fn is_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s
            .chars()
            .any(|c| matches!(c, '/' | ':' | ',' | '=') || c.is_whitespace() || c.is_control())
}

/// How a pod reaches the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A member of a bridge (optionally in a VLAN).
    Bridge,
    /// An L3 interface: a /32 (/128) route to the pod, proxy-ARP, gateway 169.254.1.1.
    Routed,
}

/// The pod's side of the attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfType {
    Veth,
    Tap,
    Memif,
    VhostUser,
}

impl IfType {
    /// A socket the pod mounts, not an interface in its netns.
    pub fn is_socket(self) -> bool {
        matches!(self, IfType::Memif | IfType::VhostUser)
    }
}

/// The network configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub version: Version,
    /// The version as written (echoed in results and errors).
    pub version_text: String,
    pub name: String,
    pub mode: Mode,
    pub bridge: Option<String>,
    pub vlan: Option<u16>,
    pub mtu: Option<u32>,
    pub interface: IfType,
    pub socket_dir: PathBuf,
    pub socket: PathBuf,
    /// The IPAM plugin's type, if any.
    pub ipam: Option<String>,
    /// `runtimeConfig.CNIDeviceInfoFile`: where the runtime wants a device-info file.
    pub device_info_file: Option<PathBuf>,
    /// The pod interface's MAC the runtime asks for (`runtimeConfig.mac`; CNI_ARGS `MAC=`
    /// is read with the environment).
    pub mac: Option<[u8; 6]>,
    /// A Linux interface of the node (a tap of the switch in the host's namespace) through
    /// which the node reaches its pods: bridge mode gives it the pods' gateway address,
    /// routed mode a route to each pod.
    pub host_interface: Option<String>,
    /// GC: the attachments to keep, (container id, ifname).
    pub valid_attachments: Option<Vec<(String, String)>>,
    /// The whole config, as given (handed to the IPAM plugin).
    pub raw: Value,
}

/// The `cniVersion` of a config, for errors about it, before it is validated.
pub fn version_of(stdin: &[u8]) -> String {
    serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_owned))
        .filter(|v| version::SUPPORTED.contains(&v.as_str()))
        .unwrap_or_else(|| version::NEWEST.to_owned())
}

fn string<'a>(o: &'a serde_json::Map<String, Value>, key: &str) -> CniResult<Option<&'a str>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(format!("{key} must be a string, not {other}"))),
    }
}

fn number(
    o: &serde_json::Map<String, Value>,
    key: &str,
    range: (u64, u64),
) -> CniResult<Option<u64>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (range.0..=range.1).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(format!(
                "{key} must be a whole number from {} to {}, not {v}",
                range.0, range.1
            ))),
        },
    }
}

fn unsupported(key: &str, value: &str, known: &[&str]) -> CniError {
    CniError::new(
        code::UNSUPPORTED_FIELD,
        format!(
            "{key} {value:?} is not supported; {key} is one of {}",
            known.join(", ")
        ),
    )
}

impl NetConf {
    /// Parses and validates the config of `command` (VERSION needs only `cniVersion`).
    pub fn parse(stdin: &[u8], command: Command) -> CniResult<NetConf> {
        let raw: Value = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(code::DECODE, "the network configuration is not valid JSON")
                .with_details(e.to_string())
        })?;
        let o = raw.as_object().ok_or_else(|| {
            CniError::new(
                code::DECODE,
                "the network configuration is not a JSON object",
            )
        })?;
        let version_text = string(o, "cniVersion")?
            .ok_or_else(|| invalid("cniVersion is missing"))?
            .to_owned();
        let version = version::check(&version_text)?;
        let name = string(o, "name")?.unwrap_or_default().to_owned();
        if command != Command::Version && !is_cni_name(&name, 256) {
            return Err(invalid(format!(
                "name {name:?} must be letters, digits, '_', '.' and '-', starting with a \
                 letter or digit"
            )));
        }
        if let Some(t) = string(o, "type")? {
            if t != "vswitch-cni" {
                return Err(invalid(format!("type is {t:?}, not \"vswitch-cni\"")));
            }
        }
        let mode = match string(o, "mode")?.unwrap_or("bridge") {
            "bridge" => Mode::Bridge,
            "routed" => Mode::Routed,
            m => return Err(unsupported("mode", m, &["bridge", "routed"])),
        };
        let interface = match string(o, "interface")?.unwrap_or("veth") {
            "veth" => IfType::Veth,
            "tap" => IfType::Tap,
            "memif" => IfType::Memif,
            "vhost-user" => IfType::VhostUser,
            t => {
                return Err(unsupported(
                    "interface",
                    t,
                    &["veth", "tap", "memif", "vhost-user"],
                ))
            }
        };
        let bridge = string(o, "bridge")?.map(str::to_owned);
        if let Some(b) = &bridge {
            if !is_cni_name(b, 31) {
                return Err(invalid(format!(
                    "bridge {b:?} must be 1-31 characters of A-Z a-z 0-9 _ . -"
                )));
            }
        }
        let needs_bridge = matches!(command, Command::Add | Command::Check);
        if mode == Mode::Bridge && bridge.is_none() && needs_bridge {
            return Err(invalid(
                "bridge is missing: mode bridge needs the switch's bridge",
            ));
        }
        let vlan = number(o, "vlan", (1, 4094))?.map(|v| v as u16);
        if mode == Mode::Routed && vlan.is_some() {
            return Err(invalid("vlan is for mode bridge only"));
        }
        let mtu = number(o, "mtu", (68, 65535))?.map(|v| v as u32);
        let path = |key: &str, default: &str| -> CniResult<PathBuf> {
            let p = string(o, key)?.unwrap_or(default);
            if !p.starts_with('/') {
                return Err(invalid(format!("{key} {p:?} must be an absolute path")));
            }
            Ok(PathBuf::from(p))
        };
        let socket_dir = path("socketDir", DEFAULT_SOCKET_DIR)?;
        let socket = path("socket", DEFAULT_SOCKET)?;
        let ipam = match o.get("ipam") {
            None | Some(Value::Null) => None,
            Some(Value::Object(i)) => match string(i, "type")? {
                Some(t) if is_plugin_name(t) => Some(t.to_owned()),
                Some(t) => return Err(invalid(format!("ipam.type {t:?} is not a plugin name"))),
                None => return Err(invalid("ipam has no type")),
            },
            Some(other) => return Err(invalid(format!("ipam must be an object, not {other}"))),
        };
        let (device_info_file, mac) = match o.get("runtimeConfig") {
            Some(Value::Object(rc)) => (
                string(rc, "CNIDeviceInfoFile")?.map(PathBuf::from),
                match string(rc, "mac")? {
                    Some(m) => Some(parse_mac(m).ok_or_else(|| {
                        invalid(format!(
                            "runtimeConfig.mac {m:?} is not a unicast MAC address"
                        ))
                    })?),
                    None => None,
                },
            ),
            _ => (None, None),
        };
        let host_interface = string(o, "hostInterface")?.map(str::to_owned);
        if let Some(h) = &host_interface {
            if !is_ifname(h) {
                return Err(invalid(format!(
                    "hostInterface {h:?} is not a Linux interface name"
                )));
            }
        }
        let valid_attachments = if command == Command::Gc {
            Some(gc_attachments(o)?)
        } else {
            None
        };
        Ok(NetConf {
            version,
            version_text,
            name,
            mode,
            bridge,
            vlan,
            mtu,
            interface,
            socket_dir,
            socket,
            ipam,
            device_info_file,
            mac,
            host_interface,
            valid_attachments,
            raw,
        })
    }
}

/// A unicast MAC address `aa:bb:cc:dd:ee:ff` (not all zeros).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    (parts.next().is_none() && mac[0] & 1 == 0 && mac != [0; 6]).then_some(mac)
}

/// A plugin's file name: no path separators, not `.` or `..`.
fn is_plugin_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

/// GC's attachments to keep: `cni.dev/valid-attachments` (libcni's key) or
/// `cni.dev/attachments` (the spec 1.1.0 text), `[{"containerID": ..., "ifname": ...}]`.
fn gc_attachments(o: &serde_json::Map<String, Value>) -> CniResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
        let list = match o.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(other) => return Err(invalid(format!("{key} must be a list, not {other}"))),
        };
        for item in list {
            let field = |f: &str| {
                item.get(f)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("{key}: every entry needs a string {f}")))
            };
            let pair = (field("containerID")?, field("ifname")?);
            if seen.insert(pair.clone(), ()).is_none() {
                out.push(pair);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const FULL: [(&str, &str); 5] = [
        ("CNI_CONTAINERID", "c0ffee"),
        ("CNI_NETNS", "/run/netns/p"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
        ("CNI_ARGS", "K8S_POD_NAME=x"),
    ];

    #[test]
    fn the_environment_is_checked_per_command() {
        let e = Env::read(Command::Add, env(&FULL)).unwrap();
        assert_eq!(
            e.path,
            [PathBuf::from("/opt/cni/bin"), "/usr/lib/cni".into()]
        );
        for (missing, cmd) in [
            ("CNI_NETNS", Command::Add),
            ("CNI_IFNAME", Command::Del),
            ("CNI_CONTAINERID", Command::Check),
            ("CNI_PATH", Command::Gc),
        ] {
            let vars: Vec<_> = FULL
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = Env::read(cmd, env(&vars)).unwrap_err();
            assert_eq!(err.code, code::INVALID_ENV);
            assert!(err.msg.contains(missing), "{err}");
        }
        // DEL without a netns (the container is gone) is fine.
        let vars: Vec<_> = FULL
            .iter()
            .copied()
            .filter(|(k, _)| *k != "CNI_NETNS")
            .collect();
        Env::read(Command::Del, env(&vars)).unwrap();
        Env::read(Command::Version, env(&[])).unwrap();
        for (k, v) in [
            ("CNI_IFNAME", "eth0/1"),
            ("CNI_IFNAME", "abcdefghijklmnop"),
            ("CNI_CONTAINERID", "-x"),
            ("CNI_NETNS", "run/netns/p"),
        ] {
            let mut vars = FULL.to_vec();
            vars.retain(|(n, _)| *n != k);
            vars.push((k, v));
            assert_eq!(
                Env::read(Command::Add, env(&vars)).unwrap_err().code,
                code::INVALID_ENV
            );
        }
        assert_eq!(Command::parse("FOO").unwrap_err().code, code::INVALID_ENV);
    }

    fn conf(json: &str) -> CniResult<NetConf> {
        NetConf::parse(json.as_bytes(), Command::Add)
    }

    #[test]
    fn a_config_is_read_with_its_defaults() {
        let c = conf(
            r#"{"cniVersion":"1.0.0","name":"pods","type":"vswitch-cni","bridge":"br0",
                "ipam":{"type":"host-local","subnet":"10.1.0.0/24"},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(c.version, Version(1, 0, 0));
        assert_eq!((c.mode, c.interface), (Mode::Bridge, IfType::Veth));
        assert_eq!(c.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(c.ipam.as_deref(), Some("host-local"));
        assert_eq!((c.vlan, c.mtu), (None, None));
        let c = conf(
            r#"{"cniVersion":"1.1.0","name":"dpdk","mode":"bridge","bridge":"br0","vlan":10,
                "mtu":9000,"interface":"memif","socketDir":"/run/x",
                "runtimeConfig":{"CNIDeviceInfoFile":"/var/run/k8s.cni.cncf.io/d.json"}}"#,
        )
        .unwrap();
        assert_eq!(
            (c.vlan, c.mtu, c.interface),
            (Some(10), Some(9000), IfType::Memif)
        );
        assert_eq!(c.socket_dir, PathBuf::from("/run/x"));
        assert!(c.device_info_file.is_some());
    }

    #[test]
    fn bad_configs_get_the_spec_codes() {
        for (json, want, text) in [
            ("{", code::DECODE, "not valid JSON"),
            ("[1]", code::DECODE, "not a JSON object"),
            (
                r#"{"name":"n","bridge":"b"}"#,
                code::INVALID_CONFIG,
                "cniVersion",
            ),
            (
                r#"{"cniVersion":"0.3.1","name":"n","bridge":"b"}"#,
                1,
                "0.3.1",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n"}"#,
                7,
                "bridge is missing",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","mode":"l3"}"#,
                2,
                "mode \"l3\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","interface":"macvlan"}"#,
                2,
                "interface \"macvlan\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","vlan":4095}"#,
                7,
                "vlan",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","mtu":"x"}"#,
                7,
                "mtu",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"","bridge":"b"}"#,
                7,
                "name",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","ipam":{}}"#,
                7,
                "ipam",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","ipam":{"type":"../x"}}"#,
                7,
                "ipam.type",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","socket":"x"}"#,
                7,
                "socket",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","mode":"routed","vlan":3}"#,
                7,
                "vlan",
            ),
        ] {
            let e = conf(json).unwrap_err();
            assert_eq!(e.code, want, "{json}: {e}");
            assert!(e.msg.contains(text), "{json}: {e}");
        }
    }

    #[test]
    fn a_mac_comes_from_runtime_config_or_cni_args() {
        let c = conf(
            r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","hostInterface":"vs-host",
                "runtimeConfig":{"mac":"02:00:00:00:00:0a"}}"#,
        )
        .unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(c.host_interface.as_deref(), Some("vs-host"));
        for bad in [
            r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","runtimeConfig":{"mac":"01:00:00:00:00:01"}}"#,
            r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","runtimeConfig":{"mac":"zz"}}"#,
            r#"{"cniVersion":"1.0.0","name":"n","bridge":"b","hostInterface":"a/b"}"#,
        ] {
            assert_eq!(conf(bad).unwrap_err().code, code::INVALID_CONFIG, "{bad}");
        }
        let mut vars = FULL.to_vec();
        vars.retain(|(k, _)| *k != "CNI_ARGS");
        vars.push((
            "CNI_ARGS",
            "IgnoreUnknown=1;MAC=02:aa:bb:cc:dd:ee;K8S_POD_NAME=x",
        ));
        let e = Env::read(Command::Add, env(&vars)).unwrap();
        assert_eq!(e.mac().unwrap(), Some([2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]));
        assert_eq!(e.arg("K8S_POD_NAME"), Some("x"));
        vars.pop();
        vars.push(("CNI_ARGS", "MAC=ff:ff:ff:ff:ff:ff"));
        let e = Env::read(Command::Add, env(&vars)).unwrap();
        assert_eq!(e.mac().unwrap_err().code, code::INVALID_ENV);
        for bad in [
            "",
            "00:00:00:00:00:00",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:0:0:0:0:0",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn gc_reads_both_attachment_keys() {
        let c = NetConf::parse(
            br#"{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":
                [{"containerID":"a","ifname":"eth0"}],
                "cni.dev/attachments":[{"containerID":"b","ifname":"net1"},
                {"containerID":"a","ifname":"eth0"}]}"#,
            Command::Gc,
        )
        .unwrap();
        assert_eq!(
            c.valid_attachments.unwrap(),
            [("a".into(), "eth0".into()), ("b".into(), "net1".into())]
        );
        let e = NetConf::parse(
            br#"{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"ifname":"x"}]}"#,
            Command::Gc,
        )
        .unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
    }

    proptest! {
        /// Any bytes, or any prefix of a valid config: an answer (a config or a coded
        /// error), never a panic.
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..400) {
            let _ = NetConf::parse(&bytes, Command::Add);
            let good = br#"{"cniVersion":"1.0.0","name":"pods","bridge":"br0","vlan":7,"ipam":{"type":"host-local"},"runtimeConfig":{"CNIDeviceInfoFile":"/x"}}"#;
            let r = NetConf::parse(&good[..cut.min(good.len())], Command::Add);
            if cut < good.len() {
                prop_assert_eq!(r.unwrap_err().code, code::DECODE);
            } else {
                prop_assert!(r.is_ok());
            }
        }

        #[test]
        fn parse_mac_never_panics(s in ".{0,25}") {
            if let Some(m) = parse_mac(&s) {
                prop_assert_eq!(m[0] & 1, 0);
            }
        }

        #[test]
        fn env_read_never_panics(id in ".{0,70}", ifname in ".{0,20}", netns in ".{0,30}") {
            let vars = [("CNI_CONTAINERID", id.as_str()), ("CNI_IFNAME", ifname.as_str()),
                        ("CNI_NETNS", netns.as_str()), ("CNI_PATH", "/x")];
            if let Ok(e) = Env::read(Command::Add, env(&vars)) {
                prop_assert!(is_ifname(&e.ifname) && is_cni_name(&e.container_id, 256));
            }
        }
    }
}
