import Foundation
import Testing

/// Runs the built `icbd` binary as a real child process.
enum CommandRunner {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `icbd` next to the test bundle (`swift build --build-tests` builds both).
    static var binary: URL {
        get throws {
            let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("icbd")
            if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
            let debug = packageRoot.appendingPathComponent(".build/debug/icbd")
            guard FileManager.default.isExecutableFile(atPath: debug.path) else {
                throw CommandError("icbd is not built; run `swift build` first (scripts/test does)")
            }
            return debug
        }
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `icbd ARGUMENTS` to completion.
    static func run(_ arguments: [String]) async throws -> Result {
        try await runTool(try binary.path, arguments)
    }

    /// Runs `executable ARGUMENTS` to completion. Its output goes to files, not pipes, so a
    /// chatty child never blocks on a full pipe that nobody reads while we wait for its exit.
    static func runTool(_ executable: String, _ arguments: [String]) async throws -> Result {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("stdout")
        let err = directory.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try await waitForExit(process) { try process.run() }
        return Result(
            status: process.terminationStatus,
            stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// Starts `process` with `start` and waits for it to exit, without blocking a thread.
    static func waitForExit(_ process: Process, start: () throws -> Void = {}) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            process.terminationHandler = { _ in continuation.resume() }
            do { try start() } catch { continuation.resume(throwing: error) }
        }
    }
}

/// A long-running `icbd` service started for a test; stdout goes to a file we read back.
final class ServiceProcess {
    let process = Process()
    let stdoutFile: URL
    let stderrFile: URL

    init(_ arguments: [String], in directory: URL) throws {
        stdoutFile = directory.appendingPathComponent("service-\(UUID()).out")
        stderrFile = directory.appendingPathComponent("service-\(UUID()).err")
        FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
        FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        process.executableURL = try CommandRunner.binary
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
    }

    /// The `HOST:PORT` of the `listening ROLE NAME HOST:PORT` line, once printed.
    func listeningAddress() async throws -> String {
        let line = try await announcedLine(prefix: "listening ")
        return String(line.split(separator: " ")[2])
    }

    /// The rest of the first stdout line that starts with `prefix`, once printed.
    func announcedLine(prefix: String) async throws -> String {
        for _ in 0..<300 {
            let text = (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) {
                return String(line.dropFirst(prefix.count))
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CommandError("the service printed no '\(prefix)' line; stderr: \(stderr)")
    }

    var stderr: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// Sends `signal` and waits for the process to exit; returns its exit status.
    func stop(with signal: Int32) async throws -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        try await CommandRunner.waitForExit(process) { kill(process.processIdentifier, signal) }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A fresh temporary directory for one test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-test-\(UUID())")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
