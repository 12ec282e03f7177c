//! glibc's allocator, told to give memory back.
//!
//! A call's pipeline allocates and frees tens of megabytes from GStreamer's streaming threads.
//! glibc gives threads that contend arenas of their own (up to eight per core) and keeps freed
//! memory in them. The agent caps the arenas at two, gives large blocks (video frames) pages of
//! their own that are unmapped when freed, and hands free heap memory back to the system after
//! a call ends. Measured with `cargo bench --bench media`: the mmap threshold alone took the
//! agent's idle RSS after five calls from 93 to 79 MiB and a two-way call's from 128 to 115.
#![allow(unsafe_code)]

/// Caps glibc's malloc arenas (call once, early in `main`, before threads start).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Video frames (a 720p I420 frame is 1.4 MB) get pages of their own that go back to
        // the system when freed. Left alone, glibc raises this threshold after the first
        // frames are freed and serves later ones from the heap, which it then keeps.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
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
