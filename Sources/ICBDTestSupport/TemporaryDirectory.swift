import Foundation

/// Runs `body` with a fresh temporary directory of its own (`icbd-test-UUID` under the
/// system's), removed after it, whether it returns or throws. (Test support shared by the test
/// targets; not part of the icbd binary.)
public func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = try temporaryDirectory()
    defer { removeTemporaryDirectory(directory) }
    return try await body(directory)
}

/// A fresh temporary directory for one test (`icbd-test-UUID` under the system's); whoever
/// makes it removes it (``removeTemporaryDirectory(_:)``). Prefer ``withTemporaryDirectory(_:)``.
public func temporaryDirectory() throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-test-\(UUID())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

/// Removes a test's temporary directory. A service sent SIGKILL just before may still be exiting,
/// its files changing under the removal, so a removal that fails is tried again for up to a second.
public func removeTemporaryDirectory(_ directory: URL) {
    for _ in 0..<10 {
        do {
            try FileManager.default.removeItem(at: directory)
            return
        } catch {
            guard FileManager.default.fileExists(atPath: directory.path) else { return }
            usleep(100_000)
        }
    }
}
