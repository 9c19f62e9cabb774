//! `vsctl stats [IFACE]`: interface counters. With `--json` the objects are `iface list`'s.

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
                Ok(counters_table(std::slice::from_ref(&one)))
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
}
