//! One EAL for this crate's unit tests (the EAL can be initialised once per process).

use std::sync::{Arc, OnceLock};

use crate::{Eal, Mempool};

static EAL: OnceLock<Eal> = OnceLock::new();

/// The test process's EAL: no hugepages, no PCI, its own file prefix.
pub fn eal() -> &'static Eal {
    EAL.get_or_init(|| {
        let args = crate::light_args("0", &format!("vsffi{}", std::process::id()));
        Eal::init(&args).expect("EAL init for tests (needs root)")
    })
}

/// A fresh pool with no per-lcore cache, so in_use() is exact from any thread.
pub fn pool(name: &str, n: u32) -> Arc<Mempool> {
    Arc::new(Mempool::new(eal(), name, n, 0).expect("test mempool"))
}
