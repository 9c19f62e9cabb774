//! `vsctl stats [IFACE]`: interface counters; for one interface also its port's own
//! counters that are not zero, its peer and its last error. With `--json` the objects are
//! `iface list`'s.

use vswitch_proto::v1::Interface;

use crate::iface::{self, InterfaceJson};
use crate::output::{self, Align, Table};
use crate::rpc::Ctx;

pub async fn run(iface: Option<String>, ctx: &Ctx) -> anyhow::Result<String> {
    match iface {
        None => {
            let ifaces = iface::list(ctx).await?;
            if ctx.json {
                output::json(&ifaces.iter().map(InterfaceJson::from).collect::<Vec<_>>())
            } else {
                Ok(counters_table(&ifaces))
            }
        }
        Some(name) => {
            let one = iface::get(ctx, name).await?;
            if ctx.json {
                output::json(&InterfaceJson::from(&one))
            } else {
                Ok(counters_table(std::slice::from_ref(&one)) + &port_details(&one))
            }
        }
    }
}

fn counters_table(ifaces: &[Interface]) -> String {
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("RX_PACKETS", Align::Right),
        ("TX_PACKETS", Align::Right),
        ("RX_BYTES", Align::Right),
        ("TX_BYTES", Align::Right),
        ("DROPS", Align::Right),
    ]);
    for i in ifaces {
        table.row(vec![
            i.name.clone(),
            i.rx_packets.to_string(),
            i.tx_packets.to_string(),
            i.rx_bytes.to_string(),
            i.tx_bytes.to_string(),
            i.drops.to_string(),
        ]);
    }
    table.render()
}

/// After one interface's table: a blank line and `key: value` lines for its peer and last
/// error (when set) and its port's counters that are not zero, by name; nothing if there
/// is none of them.
fn port_details(i: &Interface) -> String {
    let mut pairs = Vec::new();
    if !i.peer.is_empty() {
        pairs.push(("peer", i.peer.clone()));
    }
    if !i.last_error.is_empty() {
        pairs.push(("last_error", i.last_error.clone()));
    }
    let mut counters: Vec<(&String, &u64)> =
        i.port_counters.iter().filter(|(_, n)| **n != 0).collect();
    counters.sort();
    pairs.extend(
        counters
            .into_iter()
            .map(|(k, n)| (k.as_str(), n.to_string())),
    );
    if pairs.is_empty() {
        return String::new();
    }
    format!("\n{}", output::key_values(&pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_table_rows() {
        let iface = Interface {
            name: "p0".into(),
            rx_packets: 1,
            tx_packets: 22,
            rx_bytes: 333,
            tx_bytes: 4444,
            drops: 0,
            ..Default::default()
        };
        assert_eq!(
            counters_table(&[iface]),
            "NAME  RX_PACKETS  TX_PACKETS  RX_BYTES  TX_BYTES  DROPS\n\
             p0             1          22       333      4444      0\n"
        );
    }

    #[test]
    fn one_interface_shows_its_port_counters_peer_and_last_error() {
        let iface = Interface {
            name: "m1".into(),
            port_counters: [
                ("refused_bad_region".to_owned(), 2),
                ("socket_closed".to_owned(), 1),
                ("tx_busy".to_owned(), 0),
            ]
            .into(),
            peer: "cnf0 (testpmd)".into(),
            last_error: "peer closed the connection".into(),
            ..Default::default()
        };
        assert_eq!(
            port_details(&iface),
            "\npeer:               cnf0 (testpmd)\n\
             last_error:         peer closed the connection\n\
             refused_bad_region: 2\n\
             socket_closed:      1\n"
        );
        // Nothing set, nothing counted: the table alone.
        let quiet = Interface {
            port_counters: [("tx_busy".to_owned(), 0)].into(),
            ..Default::default()
        };
        assert_eq!(port_details(&quiet), "");
    }
}
