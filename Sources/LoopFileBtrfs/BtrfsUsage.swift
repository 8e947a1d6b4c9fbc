import ICBDProcess

/// What BTRFS says about the space a subvolume uses, for benchmarks and tests.
public enum BtrfsUsage {
    /// Bytes only `path` holds, shared with no other subvolume, per `btrfs filesystem du`
    /// (libbtrfsutil has no such call). Waits first for deleted subvolumes to be cleaned up (a
    /// deleted snapshot still shares its extents until the cleaner has gone through it) and
    /// syncs the filesystem.
    public static func exclusiveBytes(at path: String) async throws -> Int64 {
        try await SystemCommand.run("/bin/btrfs", ["filesystem", "sync", path])  // a commit wakes the cleaner
        try await SystemCommand.run("/bin/btrfs", ["subvolume", "sync", path])
        let output = try await SystemCommand.run("/bin/btrfs", ["filesystem", "du", "-s", "--raw", path])
        // "     Total   Exclusive  Set shared  Filename" then one line of numbers.
        guard let line = output.split(separator: "\n").last,
            let exclusive = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int64($0) })
        else { throw SystemCommandError("cannot read the output of btrfs filesystem du: \(output)") }
        return exclusive
    }
}
