//! `vsctl health`: succeeds when vswitchd answers; prints a summary of the running switch.

use serde::Serialize;
use vswitch_proto::v1::{HealthReply, HealthRequest};

use crate::output;
use crate::rpc::{reply, Ctx};

pub async fn run(ctx: &Ctx) -> anyhow::Result<String> {
    let health = reply(ctx.client().await?.health(HealthRequest {}).await)?;
    if ctx.json {
        output::json(&HealthJson::from(&health))
    } else {
        Ok(text(&health))
    }
}

/// `health` in `--json` output.
#[derive(Debug, Serialize)]
struct HealthJson<'a> {
    version: &'a str,
    workers: u32,
    interfaces: u32,
    max_interfaces: u32,
    uptime_seconds: u64,
}

impl<'a> From<&'a HealthReply> for HealthJson<'a> {
    fn from(h: &'a HealthReply) -> Self {
        HealthJson {
            version: &h.version,
            workers: h.workers,
            interfaces: h.interfaces,
            max_interfaces: h.max_interfaces,
            uptime_seconds: h.uptime_seconds,
        }
    }
}

fn text(h: &HealthReply) -> String {
    output::key_values(&[
        ("version", h.version.clone()),
        ("workers", h.workers.to_string()),
        ("interfaces", h.interfaces.to_string()),
        ("uptime", uptime(h.uptime_seconds)),
    ])
}

/// `1d2h3m4s`, leading zero units left out.
fn uptime(seconds: u64) -> String {
    let units = [
        (seconds / 86_400, "d"),
        (seconds / 3_600 % 24, "h"),
        (seconds / 60 % 60, "m"),
    ];
    let mut text: String = units
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    text.push_str(&format!("{}s", seconds % 60));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_formats() {
        assert_eq!(uptime(0), "0s");
        assert_eq!(uptime(59), "59s");
        assert_eq!(uptime(65), "1m5s");
        assert_eq!(uptime(3_600), "1h0m0s");
        assert_eq!(uptime(90_061), "1d1h1m1s");
    }

    #[test]
    fn json_and_text() {
        let h = HealthReply {
            version: "0.1.0".into(),
            workers: 2,
            interfaces: 3,
            uptime_seconds: 65,
            max_interfaces: 1024,
        };
        let value = serde_json::to_value(HealthJson::from(&h)).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({
                "version": "0.1.0", "workers": 2, "interfaces": 3, "max_interfaces": 1024,
                "uptime_seconds": 65
            })
        );
        assert_eq!(
            text(&h),
            "version:    0.1.0\nworkers:    2\ninterfaces: 3\nuptime:     1m5s\n"
        );
    }
}
