import Foundation

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
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-btrfs-\(UUID())").path
        let image = directory + ".img"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer {
            _ = try? run("/bin/umount", [directory])
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: image)
        }
        try run("/usr/bin/truncate", ["-s", size, image])
        try run("/sbin/mkfs.btrfs", ["-q", "-f", image])
        try run("/bin/mount", ["-o", "loop", image, directory])
        return try await body(directory)
    }

    /// Runs a command with an argument array; throws with its stderr when it fails.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LoopBtrfsError(
                "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}

public struct LoopBtrfsError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
