//! The cost of staging one change does not grow with the state: the model's collections are
//! shared between the model and its staged copy, so a change copies only the path it edits.
//! Measured by what it allocates (a counting allocator: exact and repeatable, unlike a
//! clock), with 10 and with 1,000,000 static MAC entries in the model; the time it takes is
//! printed for the record (`cargo test --release -p vswitch-control --test model_cost --
//! --nocapture`), not asserted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use vswitch_control::model::{Limits, Model};
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

/// Counts the bytes this thread allocates while `COUNTING` is set.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counting beside it
// touches only thread-local cells (which do not allocate once initialised by the `const`
// initialisers above).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATED.with(|a| a.set(a.get() + layout.size()));
        }
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (every allocation does).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATED.with(|a| a.set(a.get() + new_size));
        }
        // SAFETY: as for `dealloc`; the new size is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn limits() -> Limits {
    Limits {
        run_dir: std::env::temp_dir(),
        fdb_capacity: 1 << 22,
    }
}

fn ch(c: C) -> pb::Change {
    pb::Change { change: Some(c) }
}

fn fdb(n: u32) -> pb::Change {
    let b = n.to_be_bytes();
    ch(C::AddFdb(pb::AddFdbRequest {
        bridge: "br0".into(),
        mac: format!("02:fd:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3]),
        iface: "a".into(),
        vlan: 0,
        remote: String::new(),
    }))
}

/// A model with an interface in a bridge and `n` static entries.
fn model(n: u32) -> Model {
    let mut m = Model::new();
    m.replay(
        &[
            ch(C::AddInterface(pb::AddInterfaceRequest {
                name: "a".into(),
                r#type: "null".into(),
                args: Default::default(),
                vrf: None,
                attachment: None,
            })),
            ch(C::AddBridge(pb::AddBridgeRequest {
                name: "br0".into(),
                ..Default::default()
            })),
            ch(C::AttachBridge(pb::AttachBridgeRequest {
                bridge: "br0".into(),
                iface: "a".into(),
                vlan: None,
                trunk: vec![],
            })),
        ],
        &limits(),
    )
    .unwrap();
    for start in (0..n).step_by(100_000) {
        let batch: Vec<pb::Change> = (start..n.min(start + 100_000)).map(fdb).collect();
        m.replay(&batch, &limits()).unwrap();
    }
    assert_eq!(m.statics_len(), n as usize);
    m
}

/// Bytes allocated and seconds taken (median of `runs`) to stage one new entry on `m`.
fn cost(m: &Model, runs: u32) -> (usize, f64) {
    let mut bytes = Vec::new();
    let mut secs = Vec::new();
    for i in 0..runs {
        let change = [fdb(3_000_000_000 + i)];
        ALLOCATED.with(|a| a.set(0));
        COUNTING.with(|c| c.set(true));
        let t0 = Instant::now();
        let staged = m.stage(&change, &limits());
        let dt = t0.elapsed().as_secs_f64();
        COUNTING.with(|c| c.set(false));
        let staged = staged.unwrap();
        assert_eq!(staged.model.statics_len(), m.statics_len() + 1);
        drop(staged);
        bytes.push(ALLOCATED.with(Cell::get));
        secs.push(dt);
    }
    bytes.sort_unstable();
    secs.sort_by(f64::total_cmp);
    (bytes[bytes.len() / 2], secs[secs.len() / 2])
}

#[test]
fn staging_one_change_costs_the_same_with_10_and_with_1m_entries() {
    let small = model(10);
    let big = model(1_000_000);
    let (b10, t10) = cost(&small, 101);
    let (b1m, t1m) = cost(&big, 101);
    println!(
        "COMMIT_COST model=10 bytes={b10} us={:.2}; model=1000000 bytes={b1m} us={:.2}",
        t10 * 1e6,
        t1m * 1e6
    );
    // A copy of the 1M entries would allocate tens of MB; a path of B-tree nodes from the
    // root to one leaf is a few KB per level (4 levels at 1M, 1 at 10).
    assert!(
        b1m <= 8 * b10.max(1024) && b1m < 64 * 1024,
        "staging one change allocated {b10} bytes with 10 entries, {b1m} with 1M"
    );
}
