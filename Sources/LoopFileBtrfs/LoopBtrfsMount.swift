import Foundation
import Glibc
import ICBDProcess

/// A BTRFS filesystem on a loop file, made and mounted for a benchmark, a test or a local
/// deployment (`icbd up`); ``unmount(keep:)`` removes it again. Needs root. (Not part of any
/// service: the replicator is given a BTRFS directory.)
public final class LoopBtrfsMount: Sendable {
    /// The mount point.
    public let path: String
    /// The loop file holding the filesystem.
    public let image: String

    /// Creates a `size` (e.g. "4G", or bytes) loop file beside `path`, makes BTRFS on it and
    /// mounts it at `path` (created if missing). With `reuse`, a loop file kept from an earlier
    /// run is mounted as it is.
    public init(size: String, at path: String, reuse: Bool = false) async throws {
        guard getuid() == 0 else {
            throw SystemCommandError("mounting a loop-file BTRFS needs root (run as root, or pass a BTRFS directory)")
        }
        self.path = path
        self.image = path + ".img"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let fresh = !(reuse && FileManager.default.fileExists(atPath: image))
        do {
            if fresh {
                try await SystemCommand.run("/usr/bin/truncate", ["-s", size, image])
                try await SystemCommand.run("/sbin/mkfs.btrfs", ["-q", "-f", image])
            }
            try await SystemCommand.run("/bin/mount", ["-o", "loop", image, path])
        } catch {
            if fresh { try? FileManager.default.removeItem(atPath: image) }
            throw error
        }
    }

    /// Runs `body` with the mount point of a fresh BTRFS filesystem of `size` at `path`,
    /// unmounted and its loop file removed afterwards whatever happens.
    public static func with<R>(size: String, at path: String, _ body: (String) async throws -> R) async throws -> R {
        let mount = try await LoopBtrfsMount(size: size, at: path)
        do {
            let result = try await body(mount.path)
            await mount.unmount()
            return result
        } catch {
            await mount.unmount()
            throw error
        }
    }

    /// Unmounts the filesystem; removes its loop file too unless `keep`. Runs to its end also
    /// when the caller's task is cancelled (a cleanup path).
    public func unmount(keep: Bool = false) async {
        let path = path
        let image = image
        await Task {
            // A filesystem still busy (a process exiting) gets a few tries, then a lazy unmount: it
            // detaches now and goes once the last user has. Only an empty mount point is removed.
            var unmounted = false
            for _ in 0..<5 where !unmounted {
                unmounted = (try? await SystemCommand.run("/bin/umount", [path])) != nil
                if !unmounted { try? await Task.sleep(for: .milliseconds(200)) }
            }
            if !unmounted { _ = try? await SystemCommand.run("/bin/umount", ["-l", path]) }
            rmdir(path)
            if !keep { try? FileManager.default.removeItem(atPath: image) }
        }.value
    }
}
