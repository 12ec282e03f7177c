//! glibc's allocator, told to give memory back.
//!
//! A call's pipeline allocates and frees tens of megabytes from GStreamer's streaming threads.
//! glibc gives each thread that contends an arena of its own (up to eight per core) and keeps
//! freed memory in them, so without help the agent's RSS after a call stays near its peak and
//! creeps up over many calls. Two arenas are plenty for this workload, and after a call ends
//! the free memory is handed back to the system.
#![allow(unsafe_code)]

/// Caps glibc's malloc arenas (call once, early in `main`, before threads start).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap memory to the system (after a call's pipeline is gone).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim walks the allocator's own free lists under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
