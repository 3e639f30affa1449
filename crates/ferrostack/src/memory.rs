//! Giving freed heap memory back to the system.
//!
//! glibc's allocator keeps what a burst freed (a list of 10,000 ports
//! builds and drops tens of MiB) in its arenas — one per thread that
//! allocated, up to eight per core — and returns little of it by itself:
//! measured with `malloc_stats` on an idle all-in-one holding 10,000 ports,
//! 107 MB of heap held for 23 MB in use, RSS 134 MiB; one `malloc_trim(0)`
//! brought it to 63 MiB. A server that stays up for months should hold
//! what it uses, so the process trims its heap every few seconds (a walk
//! over the arenas' free lists: milliseconds, off the async runtime).

use std::time::Duration;

/// Most glibc malloc arenas the process keeps. Each thread that allocates
/// takes an arena of its own up to eight per core, and what a burst frees
/// stays scattered over all of them in partly used pages no trim can give
/// back: an all-in-one holding 10,000 servers had 580 MB of heap mapped
/// over 16 arenas for 80 MB in use. The allocator's lock is no bottleneck
/// for a control plane on a few cores.
const ARENA_MAX: i32 = 2;

/// Blocks from this size up get their own mapping, returned to the system
/// when freed. glibc raises this threshold (to 32 MiB) each time such a
/// block is freed, after which a list's large response buffers come from
/// the heap and leave it in pieces; a fixed threshold stops that.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Set [`ARENA_MAX`] and [`MMAP_THRESHOLD`]; call before any thread
/// starts. With 10,000 servers (`bench/compute.sh`, fake driver) idle RSS
/// went from 205 MiB with glibc's defaults to 146 MiB. Either variable
/// set in the environment (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`)
/// wins over its setting here.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_allocator() {
    // SAFETY: mallopt only sets the allocator's tunables; no thread but
    // this one exists yet.
    unsafe {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}

/// How often the heap is trimmed.
const TRIM_INTERVAL: Duration = Duration::from_secs(5);

/// Trim the heap every [`TRIM_INTERVAL`] for the life of the process.
pub fn trim_heap_periodically() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks and releases the allocator's own free
    // memory; it takes the arenas' locks itself and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
