//! Keeping the resident process small: Ferry sits in the tray all day.

/// Fewer malloc arenas: glibc makes up to 8 per core, each keeping freed
/// memory, for threads that here mostly sleep.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Gives freed heap back to the OS (after the window closed, big answers
/// such as queue pages are garbage).
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; callable any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
