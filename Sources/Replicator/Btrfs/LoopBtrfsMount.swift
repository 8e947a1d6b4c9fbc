import Foundation
import Glibc

/// A BTRFS filesystem on a loop file, made and mounted for a benchmark, a test or a local
/// deployment (`icbd up`); ``unmount()`` removes it again. Needs root.
public final class LoopBtrfsMount: Sendable {
    /// The mount point.
    public let path: String
    /// The loop file holding the filesystem.
    public let image: String

    /// Creates a `size` (e.g. "4G") loop file beside `path`, makes BTRFS on it and mounts it at
    /// `path` (created if missing). With `reuse`, a loop file kept from an earlier run is mounted
    /// as it is.
    public init(size: String, at path: String, reuse: Bool = false) throws {
        guard getuid() == 0 else {
            throw SystemCommandError("mounting a loop-file BTRFS needs root (run as root, or pass a BTRFS directory)")
        }
        self.path = path
        self.image = path + ".img"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let fresh = !(reuse && FileManager.default.fileExists(atPath: image))
        do {
            if fresh {
                try SystemCommand.run("/usr/bin/truncate", ["-s", size, image])
                try SystemCommand.run("/sbin/mkfs.btrfs", ["-q", "-f", image])
            }
            try SystemCommand.run("/bin/mount", ["-o", "loop", image, path])
        } catch {
            if fresh { try? FileManager.default.removeItem(atPath: image) }
            throw error
        }
    }

    /// Unmounts the filesystem; removes its loop file too unless `keep`.
    public func unmount(keep: Bool = false) {
        // A filesystem still busy (a process exiting) gets a few tries, then a lazy unmount: it
        // detaches now and goes once the last user has. Only an empty mount point is removed.
        var unmounted = false
        for _ in 0..<5 where !unmounted {
            unmounted = (try? SystemCommand.run("/bin/umount", [path])) != nil
            if !unmounted { usleep(200_000) }
        }
        if !unmounted { _ = try? SystemCommand.run("/bin/umount", ["-l", path]) }
        rmdir(path)
        if !keep { try? FileManager.default.removeItem(atPath: image) }
    }
}

extension Subvolume {
    /// Bytes only `path` holds, shared with no other subvolume, per `btrfs filesystem du`
    /// (libbtrfsutil has no such call). Waits first for deleted subvolumes to be cleaned up (a
    /// deleted snapshot still shares its extents until the cleaner has gone through it) and
    /// syncs the filesystem.
    public static func exclusiveBytes(at path: String) throws -> Int64 {
        try SystemCommand.run("/bin/btrfs", ["filesystem", "sync", path])  // a commit wakes the cleaner
        try SystemCommand.run("/bin/btrfs", ["subvolume", "sync", path])
        let output = try SystemCommand.run("/bin/btrfs", ["filesystem", "du", "-s", "--raw", path])
        // "     Total   Exclusive  Set shared  Filename" then one line of numbers.
        guard let line = output.split(separator: "\n").last,
            let exclusive = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int64($0) })
        else { throw SystemCommandError("cannot read the output of btrfs filesystem du: \(output)") }
        return exclusive
    }
}
