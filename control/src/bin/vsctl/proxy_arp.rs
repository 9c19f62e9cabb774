//! `vsctl proxy-arp IFACE on|off`: the interface answers ARP requests for addresses it
//! routes through another interface (routed CNI pods, whose gateway is 169.254.1.1).

use anyhow::bail;
use serde::Serialize;
use vswitch_proto::v1::SetProxyArpReply;

/// `on` or `off`.
pub fn on_off(value: &str) -> anyhow::Result<bool> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => bail!("invalid argument {value:?}: proxy-arp is on or off"),
    }
}

/// What `proxy-arp IFACE on|off --json` prints.
#[derive(Debug, Serialize)]
pub(crate) struct ProxyArpJson<'a> {
    iface: &'a str,
    proxy_arp: bool,
}

impl<'a> From<&'a SetProxyArpReply> for ProxyArpJson<'a> {
    fn from(r: &'a SetProxyArpReply) -> Self {
        ProxyArpJson {
            iface: &r.iface,
            proxy_arp: r.on,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_or_off() {
        assert!(on_off("on").unwrap());
        assert!(!on_off("off").unwrap());
        assert_eq!(
            on_off("yes").unwrap_err().to_string(),
            r#"invalid argument "yes": proxy-arp is on or off"#
        );
        let r = SetProxyArpReply {
            iface: "p1".into(),
            on: true,
        };
        assert_eq!(
            serde_json::to_value(ProxyArpJson::from(&r)).unwrap(),
            serde_json::json!({"iface": "p1", "proxy_arp": true})
        );
    }
}
