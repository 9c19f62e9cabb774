//! CNI results: read from an IPAM plugin (0.4.0 or 1.x), written in the version the runtime
//! asked for (0.4.0: each IP carries its `version`; 1.1.0: interfaces may carry `mtu` and
//! `socketPath`).

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::error::{code, CniError, CniResult};
use crate::version::Version;

/// An address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, l) = s.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let len: u8 = l.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Cidr { addr, len })
    }

    /// The host route to this address: /32 or /128.
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            len: if addr.is_ipv4() { 32 } else { 128 },
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One interface of a result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: String,
    pub mtu: Option<u32>,
    /// The netns path, for interfaces inside the container.
    pub sandbox: String,
    /// memif / vhost-user: the socket the pod mounts (1.1.0).
    pub socket_path: String,
}

/// One address of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip {
    pub address: Cidr,
    pub gateway: Option<IpAddr>,
    /// Index into the interfaces.
    pub interface: Option<usize>,
}

/// One route of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: Cidr,
    pub gw: Option<IpAddr>,
}

/// A result, version-free.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CniOutput {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<Ip>,
    pub routes: Vec<Route>,
    /// Passed on as the IPAM plugin gave it.
    pub dns: Option<Value>,
}

fn bad(msg: String) -> CniError {
    CniError::new(code::DECODE, "the IPAM plugin's result cannot be read").with_details(msg)
}

fn opt_ip(o: &Map<String, Value>, key: &str) -> CniResult<Option<IpAddr>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("{key} {s:?} is not an IP address"))),
        Some(v) => Err(bad(format!("{key} must be a string, not {v}"))),
    }
}

fn cidr(o: &Map<String, Value>, key: &str) -> CniResult<Cidr> {
    o.get(key)
        .and_then(Value::as_str)
        .and_then(Cidr::parse)
        .ok_or_else(|| bad(format!("{key} must be an address with a prefix length")))
}

fn list<'a>(o: &'a Map<String, Value>, key: &str) -> CniResult<&'a [Value]> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(bad(format!("{key} must be a list, not {v}"))),
    }
}

fn object<'a>(v: &'a Value, what: &str) -> CniResult<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| bad(format!("{what} must be an object, not {v}")))
}

impl CniOutput {
    /// Reads a result from bytes (tests; the plugin reads parsed JSON).
    #[cfg(test)]
    pub fn decode(bytes: &[u8]) -> CniResult<CniOutput> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        Self::from_value(&v)
    }

    /// Reads a result (an IPAM plugin's, or a prevResult) of any version this plugin
    /// speaks; unknown fields are ignored, as the spec asks.
    pub fn from_value(v: &Value) -> CniResult<CniOutput> {
        let o = object(v, "the result")?;
        let mut out = CniOutput::default();
        for i in list(o, "interfaces")? {
            let i = object(i, "an interface")?;
            let s = |k: &str| {
                i.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            out.interfaces.push(Interface {
                name: s("name"),
                mac: s("mac"),
                mtu: i.get("mtu").and_then(Value::as_u64).map(|m| m as u32),
                sandbox: s("sandbox"),
                socket_path: s("socketPath"),
            });
        }
        for ip in list(o, "ips")? {
            let ip = object(ip, "an IP")?;
            let address = cidr(ip, "address")?;
            out.ips.push(Ip {
                address,
                gateway: opt_ip(ip, "gateway")?,
                interface: ip
                    .get("interface")
                    .and_then(Value::as_u64)
                    .map(|i| i as usize)
                    .filter(|i| *i < out.interfaces.len().max(1) + 64),
            });
        }
        for r in list(o, "routes")? {
            let r = object(r, "a route")?;
            out.routes.push(Route {
                dst: cidr(r, "dst")?,
                gw: opt_ip(r, "gw")?,
            });
        }
        out.dns = o
            .get("dns")
            .filter(|d| d.as_object().is_some_and(|d| !d.is_empty()))
            .cloned();
        Ok(out)
    }

    /// The result as `version` writes it.
    pub fn encode(&self, version: &str) -> Value {
        let v = Version::parse(version).unwrap_or(Version(1, 1, 0));
        let mut o = Map::new();
        o.insert("cniVersion".into(), version.into());
        if !self.interfaces.is_empty() {
            let ifs: Vec<Value> = self
                .interfaces
                .iter()
                .map(|i| {
                    let mut m = Map::new();
                    m.insert("name".into(), i.name.clone().into());
                    if !i.mac.is_empty() {
                        m.insert("mac".into(), i.mac.clone().into());
                    }
                    if !i.sandbox.is_empty() {
                        m.insert("sandbox".into(), i.sandbox.clone().into());
                    }
                    if v.has_1_1() {
                        if let Some(mtu) = i.mtu {
                            m.insert("mtu".into(), mtu.into());
                        }
                        if !i.socket_path.is_empty() {
                            m.insert("socketPath".into(), i.socket_path.clone().into());
                        }
                    }
                    Value::Object(m)
                })
                .collect();
            o.insert("interfaces".into(), ifs.into());
        }
        if !self.ips.is_empty() {
            let ips: Vec<Value> = self
                .ips
                .iter()
                .map(|ip| {
                    let mut m = Map::new();
                    if v.is_pre_1() {
                        let family = if ip.address.addr.is_ipv4() { "4" } else { "6" };
                        m.insert("version".into(), family.into());
                    }
                    m.insert("address".into(), ip.address.to_string().into());
                    if let Some(g) = ip.gateway {
                        m.insert("gateway".into(), g.to_string().into());
                    }
                    if let Some(i) = ip.interface {
                        m.insert("interface".into(), i.into());
                    }
                    Value::Object(m)
                })
                .collect();
            o.insert("ips".into(), ips.into());
        }
        if !self.routes.is_empty() {
            let routes: Vec<Value> = self
                .routes
                .iter()
                .map(|r| match r.gw {
                    Some(gw) => json!({"dst": r.dst.to_string(), "gw": gw.to_string()}),
                    None => json!({"dst": r.dst.to_string()}),
                })
                .collect();
            o.insert("routes".into(), routes.into());
        }
        o.insert("dns".into(), self.dns.clone().unwrap_or_else(|| json!({})));
        Value::Object(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOST_LOCAL_100: &str = r#"{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.2/24",
        "gateway":"10.1.0.1"},{"address":"fd00::2/64"}],"routes":[{"dst":"0.0.0.0/0"}],
        "dns":{}}"#;

    #[test]
    fn an_ipam_result_is_read_and_written_in_each_version() {
        let mut r = CniOutput::decode(HOST_LOCAL_100.as_bytes()).unwrap();
        assert_eq!(r.ips.len(), 2);
        assert_eq!(r.ips[0].gateway, Some("10.1.0.1".parse().unwrap()));
        assert_eq!(r.routes[0].dst.len, 0);
        r.interfaces.push(Interface {
            name: "eth0".into(),
            mac: "02:00:00:00:00:01".into(),
            mtu: Some(1400),
            sandbox: "/run/netns/p".into(),
            socket_path: String::new(),
        });
        for ip in &mut r.ips {
            ip.interface = Some(0);
        }
        let v04 = r.encode("0.4.0");
        assert_eq!(v04["cniVersion"], "0.4.0");
        assert_eq!(v04["ips"][0]["version"], "4");
        assert_eq!(v04["ips"][1]["version"], "6");
        assert!(v04["interfaces"][0].get("mtu").is_none());
        let v10 = r.encode("1.0.0");
        assert!(v10["ips"][0].get("version").is_none());
        assert_eq!(v10["ips"][0]["interface"], 0);
        assert!(v10["interfaces"][0].get("mtu").is_none());
        let v11 = r.encode("1.1.0");
        assert_eq!(v11["interfaces"][0]["mtu"], 1400);
        assert_eq!(v11["interfaces"][0]["sandbox"], "/run/netns/p");
        assert_eq!(v11["routes"], json!([{"dst": "0.0.0.0/0"}]));
        // 0.4.0 results (with "version") read back the same.
        let back = CniOutput::from_value(&v04).unwrap();
        assert_eq!(back.ips, r.ips);
    }

    #[test]
    fn cidrs_are_checked() {
        assert_eq!(Cidr::parse("10.0.0.1/8").unwrap().len, 8);
        for bad in [
            "10.0.0.1",
            "10.0.0.1/33",
            "::1/129",
            "x/1",
            "10.0.0.1/",
            "10.0.0.1/+1",
        ] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
        assert!(CniOutput::decode(br#"{"ips":[{"address":"10.0.0.1"}]}"#).is_err());
        assert!(CniOutput::decode(br#"{"ips":{}}"#).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), cut in 0usize..300) {
            let _ = CniOutput::decode(&bytes);
            let good = HOST_LOCAL_100.as_bytes();
            let r = CniOutput::decode(&good[..cut.min(good.len())]);
            prop_assert_eq!(r.is_ok(), cut >= good.len());
        }

        #[test]
        fn cidr_parse_round_trips(s in ".{0,45}") {
            if let Some(c) = Cidr::parse(&s) {
                prop_assert!(c.len <= 128);
                prop_assert_eq!(Cidr::parse(&c.to_string()), Some(c));
            }
        }
    }
}
