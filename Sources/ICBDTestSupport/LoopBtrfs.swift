import Foundation
import LoopFileBtrfs

/// A BTRFS filesystem on a loop file, created and mounted for one test and always unmounted.
/// (Test support shared by the test targets; not part of the icbd binary.)
///
/// Needs root (CI runs as root): a test that uses it declares `.requiresLoopBtrfs`, so that a
/// run without root reports it as skipped.
public enum LoopBtrfs {
    /// Whether this process can loop-mount a filesystem: it runs as root.
    public static var canMount: Bool { getuid() == 0 }

    /// Runs `body` with the mount point of a fresh BTRFS filesystem of `size` (e.g. "512M").
    /// Throws without root: the calling test lacks its `.requiresLoopBtrfs` trait.
    public static func with<R>(size: String = "512M", _ body: (String) async throws -> R) async throws -> R {
        guard canMount else {
            throw LoopBtrfsError(
                "LoopBtrfs.with needs root to loop-mount BTRFS; mark the test or its suite `.requiresLoopBtrfs` so that it is skipped without root")
        }
        return try await LoopBtrfsMount.with(
            size: size, at: FileManager.default.temporaryDirectory.appendingPathComponent("icbd-btrfs-\(UUID())").path, body)
    }
}

/// ``LoopBtrfs`` called where it cannot run: a test without its `.requiresLoopBtrfs` trait.
struct LoopBtrfsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
