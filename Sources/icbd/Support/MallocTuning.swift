import CMalloc

/// glibc malloc settings for a process that streams hundreds of MiB through buffers of about
/// 1 MiB (replication segments, RPC frames, chunks).
///
/// By default glibc gives blocks over its mmap threshold (128 KiB, raised as such blocks are
/// freed) their own mapping, and hands the top of a heap back to the system once 128 KiB of it
/// is free; so a new 1 MiB buffer is often fresh memory: a page fault and a zeroed page every
/// 4 KiB, then a copy into cold cache lines. A `bench replication` run counted 352,000 page
/// faults with the defaults and 185,000 with these thresholds (`perf stat -e page-faults`, its
/// `btrfs` children included). What is kept for reuse never exceeds what the process had in
/// use at its peak.
enum MallocTuning {
    /// Blocks up to 32 MiB (glibc's ceiling for the threshold) come from the heap; a heap keeps
    /// up to 64 MiB free at its top.
    static func apply() {
        _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 64 << 20)
    }
}
