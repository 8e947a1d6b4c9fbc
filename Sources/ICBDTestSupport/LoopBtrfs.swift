import Foundation
import LoopFileBtrfs

/// A BTRFS filesystem on a loop file, created and mounted for one test and always unmounted.
/// (Test support shared by the test targets; not part of the icbd binary.)
///
/// Needs root (CI runs as root); elsewhere the test prints why it did not run.
public enum LoopBtrfs {
    /// Runs `body` with the mount point of a fresh BTRFS filesystem of `size` (e.g. "512M");
    /// returns nil, having printed the reason, where the machine cannot do it.
    public static func with<R>(size: String = "512M", _ body: (String) async throws -> R) async throws -> R? {
        guard getuid() == 0 else {
            print("skipping BTRFS test: it needs root to mount a loop device (CI runs as root)")
            return nil
        }
        return try await LoopBtrfsMount.with(
            size: size, at: FileManager.default.temporaryDirectory.appendingPathComponent("icbd-btrfs-\(UUID())").path, body)
    }
}
