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
/// back: an all-in-one holding 10,000 servers (`bench/compute.sh`, fake
/// driver) sat at 205 MiB idle with the default, 152 MiB with two arenas.
/// The allocator's lock is no bottleneck for a control plane on a few cores.
const ARENA_MAX: i32 = 2;

/// Cap the allocator's arenas at [`ARENA_MAX`]; call before any thread
/// starts. `MALLOC_ARENA_MAX` in the environment, when set, wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only sets the allocator's tunable; no thread but
    // this one exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}

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
