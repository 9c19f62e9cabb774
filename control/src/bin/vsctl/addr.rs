//! `vsctl addr add|del|list`: interface addresses (CIDR, host bits kept). A bridge's routed
//! interface is written bvi:BR.

use serde::Serialize;
use vswitch_proto::v1::{Address, ListAddressesRequest};

use crate::args::{AddrCommand, Command};
use crate::output::{self, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: AddrCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        AddrCommand::List { iface } => {
            let request = ListAddressesRequest {
                iface: iface.unwrap_or_default(),
            };
            let addresses = reply(ctx.client().await?.list_addresses(request).await)?.addresses;
            if ctx.json {
                output::json(&addresses.iter().map(AddressJson::from).collect::<Vec<_>>())
            } else {
                Ok(table(&addresses))
            }
        }
        other => crate::change::run(Command::Addr(other), ctx).await,
    }
}

/// One address in `--json` output: `addr list` elements, and what `addr add` prints.
#[derive(Debug, Serialize)]
pub(crate) struct AddressJson<'a> {
    iface: &'a str,
    address: &'a str,
    vrf: u32,
}

impl<'a> From<&'a Address> for AddressJson<'a> {
    fn from(a: &'a Address) -> Self {
        AddressJson {
            iface: &a.iface,
            address: &a.address,
            vrf: a.vrf,
        }
    }
}

fn table(addresses: &[Address]) -> String {
    let mut table = Table::new(&[
        ("IFACE", Align::Left),
        ("VRF", Align::Right),
        ("ADDRESS", Align::Left),
    ]);
    for a in addresses {
        table.row(vec![a.iface.clone(), a.vrf.to_string(), a.address.clone()]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_table() {
        let a = Address {
            iface: "bvi:br0".into(),
            address: "2001:db8::1/64".into(),
            vrf: 5,
        };
        assert_eq!(
            serde_json::to_value(AddressJson::from(&a)).unwrap(),
            serde_json::json!({"iface": "bvi:br0", "address": "2001:db8::1/64", "vrf": 5})
        );
        assert_eq!(
            table(&[a]),
            "IFACE    VRF  ADDRESS\nbvi:br0    5  2001:db8::1/64\n"
        );
        assert_eq!(table(&[]), "IFACE  VRF  ADDRESS\n");
    }
}
