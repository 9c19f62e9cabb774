//! `vsctl drops`: dropped packets by reason, summed over all workers.

use std::collections::BTreeMap;

use vswitch_proto::v1::GetDropsRequest;

use crate::output::{self, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(ctx: &Ctx) -> anyhow::Result<String> {
    let request = GetDropsRequest {};
    let drops = reply(ctx.client().await?.get_drops(request).await)?.drops;
    // Sorted by reason, so output is stable; JSON is the object {reason: count}.
    let drops: BTreeMap<String, u64> = drops.into_iter().collect();
    if ctx.json {
        output::json(&drops)
    } else {
        Ok(table(&drops))
    }
}

fn table(drops: &BTreeMap<String, u64>) -> String {
    let mut table = Table::new(&[("REASON", Align::Left), ("PACKETS", Align::Right)]);
    for (reason, count) in drops {
        table.row(vec![reason.clone(), count.to_string()]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<String, u64> {
        BTreeMap::from([("tx_full".to_owned(), 12), ("no_xconnect".to_owned(), 3)])
    }

    #[test]
    fn json_is_an_object_of_counts() {
        let value = serde_json::to_value(sample()).expect("serializes");
        assert_eq!(value, serde_json::json!({"no_xconnect": 3, "tx_full": 12}));
    }

    #[test]
    fn table_rows() {
        assert_eq!(
            table(&sample()),
            "REASON       PACKETS\nno_xconnect        3\ntx_full           12\n"
        );
    }
}
