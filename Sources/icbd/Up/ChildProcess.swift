import Foundation
import Glibc

/// An `icbd` subcommand run as a child process of `icbd up`, its output in a log file.
final class ChildProcess: @unchecked Sendable {  // lets only; Process is used from one task at a time
    let name: String
    let process = Process()
    let log: String
    private let output: String

    /// The running binary itself, so that children are the same build.
    static var binary: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
    }

    /// Starts `icbd ARGUMENTS`; stdout goes to `LOGS/NAME.out`, stderr (the log) to `LOGS/NAME.log`.
    init(_ name: String, _ arguments: [String], logs: String) throws {
        self.name = name
        log = logs + "/\(name).log"
        output = logs + "/\(name).out"
        FileManager.default.createFile(atPath: log, contents: nil)
        FileManager.default.createFile(atPath: output, contents: nil)
        process.executableURL = Self.binary
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
    }

    /// The `HOST:PORT` of the `listening ROLE NAME HOST:PORT` line, once printed (at most 60 s).
    func listeningAddress() async throws -> String {
        for _ in 0..<1200 {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }) {
                return String(line.split(separator: " ")[3])
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let tail = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(5).joined(separator: "\n")
        throw UpError("\(name) did not start; the end of \(log):\n\(tail)")
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    func stop(grace: Duration = .seconds(10)) async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Runs `icbd ARGUMENTS` to completion; throws with its stderr when it fails. Cancelling
    /// the task kills the command (SIGKILL: a one-shot command has nothing to save, and the
    /// trapped signals of `icbd up` may reach it ignored).
    @discardableResult
    static func run(_ arguments: [String]) async throws -> String {
        try Task.checkCancellation()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-up-\(UUID())")
        defer {
            try? FileManager.default.removeItem(atPath: scratch.path + ".out")
            try? FileManager.default.removeItem(atPath: scratch.path + ".err")
        }
        FileManager.default.createFile(atPath: scratch.path + ".out", contents: nil)
        FileManager.default.createFile(atPath: scratch.path + ".err", contents: nil)
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch.path + ".out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch.path + ".err"))
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                process.terminationHandler = { _ in continuation.resume() }
                do { try process.run() } catch { continuation.resume(throwing: error) }
            }
        } onCancel: {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try Task.checkCancellation()
        guard process.terminationStatus == 0 else {
            let errors = (try? String(contentsOfFile: scratch.path + ".err", encoding: .utf8)) ?? ""
            throw UpError("icbd \(arguments.prefix(3).joined(separator: " ")) failed: \(errors)")
        }
        return (try? String(contentsOfFile: scratch.path + ".out", encoding: .utf8)) ?? ""
    }
}

/// Why `icbd up` could not bring the deployment up.
struct UpError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Prints a line at once (unbuffered), also when standard output is a pipe or a file.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
