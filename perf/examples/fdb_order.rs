//! The MAC table's side of the l2-100k profile, without DPDK: the profile's 100k destination
//! MACs (static) and 65,536 of its source MACs (learned) in a 262,144-slot `Fdb`, then
//! lookups of each packet's source and destination in the pcap's order and shuffled. Prints
//! how many distinct 64-byte lines and 4 KiB pages of home slots each burst of 32 packets
//! touches (a property of the hash) and ns per packet (best of 5 passes of 10 x 100k
//! packets; noisy on a shared machine, so compare builds in one sitting, pinned:
//! `taskset -c 1 target/release/examples/fdb_order`). Written to tell whether a change of
//! the table's hash changes the l2-100k benchmark through the table itself.
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use perf::profile::l2::L2;
use perf::profile::{Params, Profile};
use vswitch_dataplane::l2::fdb::{Fdb, FdbEntry, FdbKey, FdbWriter};

fn main() {
    let macs = 100_000u64;
    let learned = 65_536u64;
    let fdb = Arc::new(Fdb::new(262_144));
    let mut w = FdbWriter::new(fdb.clone());
    // The profile's own address plan (vswitch-pktgen --profile l2 --macs 100000 --seed 1).
    let profile = L2::new(&Params {
        macs,
        seed: 1,
        ..Params::default()
    });
    let key = |m| FdbKey {
        bridge: 1,
        vlan: 0,
        mac: m,
    };
    for d in profile.dst_macs() {
        w.insert(
            &key(d),
            FdbEntry {
                port: 1,
                is_static: true,
            },
            0,
        )
        .unwrap();
    }
    let mut refused = 0;
    for j in 0..learned {
        if w.insert(
            &key(profile.src_mac(j)),
            FdbEntry {
                port: 0,
                is_static: false,
            },
            0,
        )
        .is_err()
        {
            refused += 1;
        }
    }
    // The pcap's packet order.
    let n = 100_000u64;
    let order: Vec<(FdbKey, FdbKey)> = (0..n)
        .map(|i| {
            let (s, d) = profile.macs_of(i);
            (key(s), key(d))
        })
        .collect();
    let mut shuffled = order.clone();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..shuffled.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        shuffled.swap(i, (x % (i as u64 + 1)) as usize);
    }
    // Locality: distinct 64-byte lines (4 slots of 16 bytes) and 4 KiB pages of the home
    // slots that each burst of 32 packets (64 lookups) touches.
    for (name, seq) in [("pcap order", &order), ("shuffled", &shuffled)] {
        let (mut lines, mut pages, mut bursts) = (0usize, 0usize, 0usize);
        for b in seq.chunks(32) {
            let mut l: Vec<usize> = b
                .iter()
                .flat_map(|(s, d)| [s, d])
                .map(|k| (k.hash() as usize & 262_143) / 4)
                .collect();
            let mut p: Vec<usize> = l.iter().map(|x| x / 64).collect();
            l.sort_unstable();
            l.dedup();
            p.sort_unstable();
            p.dedup();
            lines += l.len();
            pages += p.len();
            bursts += 1;
        }
        println!("{name:>10}: per burst of 32 packets (64 lookups): {:.1} distinct home lines, {:.1} distinct pages",
            lines as f64 / bursts as f64, pages as f64 / bursts as f64);
    }
    // FDB_ORDER_PASSES / FDB_ORDER_REPS: fewer for a run under valgrind.
    let env = |k: &str, d: u32| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (passes, reps) = (env("FDB_ORDER_PASSES", 5), env("FDB_ORDER_REPS", 10));
    for (name, seq) in [
        ("pcap order", &order),
        ("shuffled", &shuffled),
        ("pcap order", &order),
        ("shuffled", &shuffled),
    ] {
        let mut best = f64::MAX;
        for _ in 0..passes {
            let t0 = Instant::now();
            let mut hits = 0u64;
            for _ in 0..reps {
                for (s, d) in seq.iter() {
                    hits += fdb.lookup(black_box(s)).is_some() as u64;
                    hits += fdb.lookup(black_box(d)).is_some() as u64;
                }
            }
            black_box(hits);
            best = best.min(t0.elapsed().as_secs_f64() / (reps as f64 * n as f64));
        }
        println!(
            "{name:>10}: {:.1} ns per packet (2 lookups); refused {refused}",
            best * 1e9
        );
    }
}
