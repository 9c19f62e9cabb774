//! `vsctl mempools`: packet buffer pools, their capacity and how much is in use.

use serde::Serialize;
use vswitch_proto::v1::{ListMempoolsRequest, Mempool};

use crate::output::{self, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(ctx: &Ctx) -> anyhow::Result<String> {
    let request = ListMempoolsRequest {};
    let mut pools = reply(ctx.client().await?.list_mempools(request).await)?.mempools;
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    if ctx.json {
        output::json(&pools.iter().map(MempoolJson::from).collect::<Vec<_>>())
    } else {
        Ok(table(&pools))
    }
}

/// One mempool in `--json` output.
#[derive(Debug, Serialize)]
struct MempoolJson<'a> {
    name: &'a str,
    capacity: u32,
    in_use: u32,
    available: u32,
}

impl<'a> From<&'a Mempool> for MempoolJson<'a> {
    fn from(m: &'a Mempool) -> Self {
        MempoolJson {
            name: &m.name,
            capacity: m.capacity,
            in_use: m.in_use,
            available: m.available,
        }
    }
}

fn table(pools: &[Mempool]) -> String {
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("CAPACITY", Align::Right),
        ("IN_USE", Align::Right),
        ("AVAILABLE", Align::Right),
    ]);
    for m in pools {
        table.row(vec![
            m.name.clone(),
            m.capacity.to_string(),
            m.in_use.to_string(),
            m.available.to_string(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Mempool {
        Mempool {
            name: "mbuf_pool_0".into(),
            capacity: 16383,
            in_use: 1024,
            available: 15359,
        }
    }

    #[test]
    fn json_shape() {
        let m = sample();
        let value = serde_json::to_value(MempoolJson::from(&m)).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({
                "name": "mbuf_pool_0", "capacity": 16383, "in_use": 1024, "available": 15359
            })
        );
    }

    #[test]
    fn table_rows() {
        assert_eq!(
            table(&[sample()]),
            "NAME         CAPACITY  IN_USE  AVAILABLE\nmbuf_pool_0     16383    1024      15359\n"
        );
    }
}
