import CFileStatus
import Synchronization

/// The chunk files of the local cache node whose whole bytes this gateway hashed and found to be
/// the chunk, each remembered with the identity of the file it read (``FileIdentity``): a later
/// read of the same, unchanged file is served without hashing again.
///
/// "Unchanged" is the kernel's word: any write to a file, in place or through a mapping, and any
/// truncation, sets its change time (ctime), which no caller can set back; a file replaced by
/// another is another inode. A verification counts for `lifetime` (then the file is hashed
/// again, as the cache node re-verifies its own on a schedule), and only for a file whose ctime
/// lies at least `settled` in the past when it was hashed, so that a write in the same clock tick
/// as the file's last change cannot hide behind an equal ctime. Bounded: at most `capacity`
/// files; the one recorded longest ago is forgotten first.
final class VerifiedFiles: Sendable {
    /// What identifies one state of one file.
    struct FileIdentity: Equatable, Sendable {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let changedSeconds: Int
        let changedNanoseconds: Int

        init(_ status: icbd_file_status) {
            device = status.device
            inode = status.inode
            size = status.size
            changedSeconds = Int(status.changed_seconds)
            changedNanoseconds = Int(status.changed_nanoseconds)
        }

        /// The change time, in seconds since the epoch.
        var changed: Double { Double(changedSeconds) + Double(changedNanoseconds) / 1e9 }
    }

    private struct Entry {
        let file: FileIdentity
        let verifiedAt: ContinuousClock.Instant
    }

    private let entries: Mutex<InsertionOrderedCache<[UInt8], Entry>>
    let lifetime: Duration
    let settled: Double

    init(capacity: Int, lifetime: Duration, settled: Duration = .seconds(1)) {
        entries = Mutex(InsertionOrderedCache(capacity: capacity))
        self.lifetime = lifetime
        self.settled = Double(settled.components.seconds) + Double(settled.components.attoseconds) / 1e18
    }

    /// Whether `file` is the file whose bytes were verified to be `chunk`, within the lifetime.
    func isVerified(_ chunk: [UInt8], file: FileIdentity, now: ContinuousClock.Instant = .now) -> Bool {
        guard let entry = entries.withLock({ $0[chunk] }) else { return false }
        return entry.file == file && now - entry.verifiedAt < lifetime
    }

    /// Whether a verification of some file of `chunk` is remembered (the file may have changed
    /// since: ``isVerified(_:file:now:)`` tells).
    func remembers(_ chunk: [UInt8]) -> Bool {
        entries.withLock { $0[chunk] != nil }
    }

    /// Records that the bytes of `file` hash to `chunk` (read while its identity stayed `file`);
    /// ignored for a file changed less than `settled` before `wallClock` (seconds since the epoch).
    func record(_ chunk: [UInt8], file: FileIdentity, wallClock: Double, now: ContinuousClock.Instant = .now) {
        guard wallClock - file.changed >= settled else { return }
        entries.withLock { $0.insert(Entry(file: file, verifiedAt: now), for: chunk) }
    }

    /// Forgets `chunk` (its file was found not to be it).
    func forget(_ chunk: [UInt8]) {
        entries.withLock { $0.remove(chunk) }
    }
}
