//! table-reach: what a random read of a shared table costs as the table grows, with the
//! same number of distinct lines read, on 4 KiB pages, transparent huge pages (THP, what
//! `dataplane/src/huge.rs` and `l3/table.rs` ask for) and hugetlbfs pages (DPDK's memory).
//!
//! The fast path's tables (MAC table, FIB, session table) are read at random lines, a
//! vector at a time: every lookup address is prefetched first, then read, as the stages do.
//! When only the cache mattered, a table of 72 MiB whose lookups touch 16,384 lines would cost
//! what an 8 MiB one does; the difference is address translation (TLB reach, and in a VM a
//! nested page walk per miss). The figure is TSC ticks per read over `--reads` reads, in
//! batches of 32 (prefetch the batch, then read it), after one untimed pass.
//!
//! Example: `table-reach --sizes 1,8,72,256 --lines 16384,65536`. hugetlbfs rows need
//! free 2 MiB hugepages (else they say so).

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Random-read cost of a table by its size and page kind (TLB reach)")]
struct Args {
    /// Table sizes in MiB (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,72,256")]
    sizes: Vec<usize>,
    /// Distinct 64-byte lines read in each table (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "16384,65536")]
    lines: Vec<usize>,
    /// Reads timed per row.
    #[arg(long, default_value_t = 1 << 22)]
    reads: usize,
}

const BATCH: usize = 32;
const MIB: usize = 1 << 20;

#[derive(Clone, Copy, Debug)]
enum Pages {
    Small,
    Thp,
    Hugetlb,
}

impl Pages {
    fn name(self) -> &'static str {
        match self {
            Pages::Small => "4 KiB",
            Pages::Thp => "THP",
            Pages::Hugetlb => "hugetlbfs",
        }
    }
}

/// An anonymous mapping of `bytes` on `pages`, every byte written once.
struct Table {
    ptr: *mut u8,
    bytes: usize,
}

impl Table {
    fn new(bytes: usize, pages: Pages) -> Result<Table, String> {
        let huge = match pages {
            Pages::Hugetlb => libc::MAP_HUGETLB,
            _ => 0,
        };
        // SAFETY: a new private anonymous mapping; no existing memory is touched.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | huge,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(format!(
                "cannot map {} MiB on {} pages: {}",
                bytes / MIB,
                pages.name(),
                std::io::Error::last_os_error()
            ));
        }
        let advice = match pages {
            Pages::Small => libc::MADV_NOHUGEPAGE,
            Pages::Thp => libc::MADV_HUGEPAGE,
            Pages::Hugetlb => libc::MADV_NORMAL,
        };
        // SAFETY: advice on the mapping just made, before its first touch.
        unsafe { libc::madvise(raw, bytes, advice) };
        // SAFETY: the mapping is `bytes` long and writable.
        unsafe { std::ptr::write_bytes(raw.cast::<u8>(), 1, bytes) };
        Ok(Table {
            ptr: raw.cast(),
            bytes,
        })
    }

    /// Reads the byte at each offset of `seq`, a batch at a time (prefetched first); TSC
    /// ticks per read.
    fn time(&self, seq: &[usize]) -> f64 {
        let mut sum = 0u64;
        let start = tsc();
        for batch in seq.chunks(BATCH) {
            for &o in batch {
                debug_assert!(o < self.bytes);
                prefetch(self.ptr.wrapping_add(o));
            }
            for &o in batch {
                // SAFETY: every offset is below `bytes` (made so by `offsets`).
                sum = sum.wrapping_add(u64::from(unsafe { self.ptr.add(o).read_volatile() }));
            }
        }
        let ticks = tsc() - start;
        std::hint::black_box(sum);
        ticks as f64 / seq.len() as f64
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, with its length.
        unsafe { libc::munmap(self.ptr.cast(), self.bytes) };
    }
}

#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc has no preconditions.
    return unsafe { std::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    return std::time::Instant::now().elapsed().as_nanos() as u64;
}

/// `reads` offsets drawn from `lines` distinct random lines of a `bytes`-byte table.
fn offsets(bytes: usize, lines: usize, reads: usize, seed: u64) -> Vec<usize> {
    let mut rng = perf::rng::SplitMix64::new(seed);
    let n = bytes / 64;
    let set: Vec<usize> = (0..lines.min(n))
        .map(|_| (rng.next_u64() as usize % n) * 64)
        .collect();
    (0..reads)
        .map(|_| set[rng.next_u64() as usize % set.len()])
        .collect()
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.sizes.contains(&0) || args.lines.contains(&0) || args.reads == 0 {
        eprintln!("table-reach: sizes, lines and reads must be above 0");
        return ExitCode::from(2);
    }
    println!("| table MiB | lines read | 4 KiB pages | THP | hugetlbfs |");
    println!("|---|---|---|---|---|");
    for &mib in &args.sizes {
        let mut done = Vec::new();
        for &lines in &args.lines {
            // A table smaller than the lines asked for is read whole: one row for it.
            let lines = lines.min(mib * MIB / 64);
            if done.contains(&lines) {
                continue;
            }
            done.push(lines);
            let seq = offsets(mib * MIB, lines, args.reads, 0x5eed ^ mib as u64);
            let cells: Vec<String> = [Pages::Small, Pages::Thp, Pages::Hugetlb]
                .iter()
                .map(|&pages| match Table::new(mib * MIB, pages) {
                    Ok(t) => {
                        t.time(&seq);
                        format!("{:.1}", t.time(&seq))
                    }
                    Err(e) => e,
                })
                .collect();
            println!("| {mib} | {lines} | {} |", cells.join(" | "));
        }
    }
    println!("(TSC ticks per read: batches of {BATCH}, prefetched then read)");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_stay_in_the_table_and_on_the_lines_drawn() {
        let seq = offsets(MIB, 100, 10_000, 7);
        assert_eq!(seq.len(), 10_000);
        assert!(seq.iter().all(|&o| o < MIB && o % 64 == 0));
        let distinct: std::collections::HashSet<_> = seq.iter().collect();
        assert!(
            distinct.len() <= 100 && distinct.len() > 90,
            "{}",
            distinct.len()
        );
        // A table smaller than the lines asked for: every read still inside it.
        assert!(offsets(4096, 1000, 500, 7).iter().all(|&o| o < 4096));
    }

    #[test]
    fn a_table_is_readable_on_small_pages() {
        let t = Table::new(2 * MIB, Pages::Small).unwrap();
        let seq = offsets(2 * MIB, 64, 1024, 1);
        assert!(t.time(&seq) > 0.0);
    }
}
