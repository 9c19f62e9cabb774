//! xcpu-probe: how long a cache line takes to go from one CPU to another and back, sampled
//! through a benchmark run, to tell which of two machine states each measurement window
//! ran in.
//!
//! On this VM the host moves the two vCPUs between physical cores: a line's round trip
//! between CPU 0 and CPU 1 is about 60-65 ns for a while (the two on one core or one core
//! complex), then about 300-335 ns (further apart), flipping within seconds (the windows'
//! medians in perf/results/2026-12-04-memif-probe.md). Topology B's
//! profiles (a peer on CPU 0 and the switch on CPU 1 share rings and buffers) run about three
//! times slower in the far state, whichever system is measured, so a ratio of two systems
//! means something only when both ran in the same state.
//!
//! Each sample wakes two threads pinned to the two CPUs (SCHED_FIFO, so they run at once
//! even when pollers keep both CPUs busy), bounces one line between them `--trips` times in
//! five chunks and prints the best chunk's mean round trip: `UNIX_SECONDS NS` a line. It
//! costs up to a third of a millisecond of each CPU per sample (1,000 round trips of 55-320 ns). Runs until killed (or `--samples`).
//!
//! Example: `xcpu-probe --cpus 0,1 --interval-ms 250 >probe.txt`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Samples the cache-line round trip between two CPUs through a run")]
struct Args {
    /// The two CPUs (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    cpus: Vec<usize>,
    /// Time between samples.
    #[arg(long, default_value_t = 250)]
    interval_ms: u64,
    /// Round trips per sample (in five chunks).
    #[arg(long, default_value_t = 1000)]
    trips: u32,
    /// Stop after this many samples (0: run until killed).
    #[arg(long, default_value_t = 0)]
    samples: u64,
    /// Real-time priority of the two threads (SCHED_FIFO; 0: leave the policy alone).
    #[arg(long, default_value_t = 50)]
    rt_priority: i32,
}

const CHUNKS: u32 = 5;
/// A sample that has not ended by then is abandoned.
const GIVE_UP: Duration = Duration::from_millis(10);

/// The line bounced: the ping side writes odd numbers, the pong side answers each with the
/// next even one.
#[repr(align(64))]
struct Line(AtomicU64);

/// What the ping side tells the pong side, on a line of its own.
#[repr(align(64))]
struct Flags {
    /// This sample's bouncing is over.
    done: AtomicBool,
    /// No more samples.
    stop: AtomicBool,
}

/// Pins the calling thread to `cpu` and, if `prio` > 0, makes it SCHED_FIFO at `prio`.
fn place(cpu: usize, prio: i32) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity take a
    // pointer to it and its size, for the calling thread (0).
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if pinned != 0 {
        return Err(format!(
            "cannot pin to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        ));
    }
    if prio > 0 {
        let p = libc::sched_param {
            sched_priority: prio,
        };
        // SAFETY: sets the calling thread's (0) policy from a valid sched_param.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) } != 0 {
            return Err(format!(
                "cannot set SCHED_FIFO {prio}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// The pong side: answers every odd number on the line until the sample is over, sample
/// after sample, until told to stop.
fn pong(line: &Line, flags: &Flags, gate: &Barrier) {
    loop {
        gate.wait();
        if flags.stop.load(Ordering::Acquire) {
            return;
        }
        while !flags.done.load(Ordering::Acquire) {
            let v = line.0.load(Ordering::Acquire);
            if v % 2 == 1 {
                line.0.store(v + 1, Ordering::Release);
            }
            std::hint::spin_loop();
        }
        gate.wait();
    }
}

fn main() -> ExitCode {
    let a = Args::parse();
    if a.cpus.len() != 2
        || a.cpus[0] == a.cpus[1]
        || a.cpus.iter().any(|&c| c >= libc::CPU_SETSIZE as usize)
    {
        eprintln!(
            "xcpu-probe: --cpus takes two different CPUs (below {}), e.g. 0,1",
            libc::CPU_SETSIZE
        );
        return ExitCode::from(2);
    }
    if a.trips < CHUNKS || a.interval_ms == 0 || !(0..=99).contains(&a.rt_priority) {
        eprintln!("xcpu-probe: --trips >= {CHUNKS}, --interval-ms >= 1, --rt-priority 0..=99");
        return ExitCode::from(2);
    }
    let per_chunk = a.trips / CHUNKS;
    let line = Arc::new(Line(AtomicU64::new(0)));
    let flags = Arc::new(Flags {
        done: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let gate = Arc::new(Barrier::new(2));
    let (l2, f2, g2, cpu, prio) = (
        line.clone(),
        flags.clone(),
        gate.clone(),
        a.cpus[1],
        a.rt_priority,
    );
    // The pong side says whether it could be placed before it waits for the first sample:
    // unplaced, its figures would be of an unpinned, ordinary thread.
    let (placed_tx, placed_rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        let placed = place(cpu, prio);
        let ok = placed.is_ok();
        // The receiver outlives this send (main waits for it first).
        let _ = placed_tx.send(placed);
        if ok {
            pong(&l2, &f2, &g2);
        }
    });
    match placed_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("xcpu-probe: {e}");
            let _ = other.join();
            return ExitCode::FAILURE;
        }
        Err(_) => {
            eprintln!("xcpu-probe: the second thread ended before it was placed");
            return ExitCode::FAILURE;
        }
    }
    let stop = |code: ExitCode| {
        flags.stop.store(true, Ordering::Release);
        gate.wait();
        match other.join() {
            Ok(()) => code,
            Err(_) => ExitCode::FAILURE,
        }
    };
    if let Err(e) = place(a.cpus[0], a.rt_priority) {
        eprintln!("xcpu-probe: {e}");
        return stop(ExitCode::FAILURE);
    }
    let mut out = std::io::stdout().lock();
    let mut n = 0u64;
    let mut v = 1u64;
    loop {
        gate.wait();
        let mut best = f64::MAX;
        let started = Instant::now();
        let mut abandoned = false;
        'chunks: for _ in 0..CHUNKS {
            let t = Instant::now();
            for _ in 0..per_chunk {
                line.0.store(v, Ordering::Release);
                let mut spins = 0u32;
                while line.0.load(Ordering::Acquire) != v + 1 {
                    std::hint::spin_loop();
                    spins = spins.wrapping_add(1);
                    // The other CPU did not answer (its vCPU descheduled): give CPU 0 back
                    // to the run rather than spin at real-time priority.
                    if spins % 1024 == 0 && started.elapsed() > GIVE_UP {
                        abandoned = true;
                        break 'chunks;
                    }
                }
                v += 2;
            }
            best = best.min(t.elapsed().as_nanos() as f64 / f64::from(per_chunk));
        }
        // A late answer lands before the pong side reaches the gate, so the next sample
        // starts clean; its number is skipped.
        v += 2;
        flags.done.store(true, Ordering::Release);
        gate.wait();
        flags.done.store(false, Ordering::Release);
        if abandoned {
            eprintln!("xcpu-probe: a sample took over {GIVE_UP:?}: abandoned");
            std::thread::sleep(Duration::from_millis(a.interval_ms));
            continue;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if writeln!(out, "{now:.3} {best:.1}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
        n += 1;
        if a.samples != 0 && n >= a.samples {
            break;
        }
        std::thread::sleep(Duration::from_millis(a.interval_ms));
    }
    stop(ExitCode::SUCCESS)
}
