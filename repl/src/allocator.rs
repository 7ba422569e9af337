//! Tunes glibc's allocator for a streaming engine's pattern: every read allocates and
//! frees the same few large buffers (decoded columns, update lists, record batches).
//!
//! By default glibc serves allocations above a moving threshold with fresh `mmap`s and
//! returns freed memory at the top of the heap to the kernel, so those buffers come back as
//! new pages on the next read: a windowed aggregation over 2 million records took ~80,000
//! page faults (~0.1 CPU-s of kernel time, 6% of the run). Fixed thresholds (32 MB before an
//! allocation gets its own mapping, 64 MB of free heap kept before trimming) bring that
//! to ~11,000 for a few MB more of peak memory (bench/RESULTS.md, session eight).

/// Sets the thresholds (a no-op off glibc).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        const TRIM_THRESHOLD: libc::c_int = 64 << 20;
        // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}
