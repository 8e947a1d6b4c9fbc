import Foundation
import Glibc
import ICBDCore
import ICBDProcess

/// An `icbd` subcommand run as a child process of `icbd up` (or of `icbd bench`), its output in
/// a log file.
public final class ChildProcess: Sendable {
    let name: String
    let log: String
    private let child: ChildRun

    /// The running binary itself, so that children are the same build.
    public static var binary: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
    }

    /// Starts `icbd ARGUMENTS`; stdout goes to `LOGS/NAME.out`, stderr (the log) to `LOGS/NAME.log`.
    public init(_ name: String, _ arguments: [String], logs: String) async throws {
        self.name = name
        log = logs + "/\(name).log"
        child = try await ChildRun(
            Self.binary.path, arguments, stdout: URL(fileURLWithPath: logs + "/\(name).out"), stderr: URL(fileURLWithPath: log))
    }

    /// The child's pid (e.g. for its CPU time in /proc).
    public var pid: pid_t { child.pid }

    /// The `HOST:PORT` of the `listening ROLE NAME HOST:PORT` line, once printed (at most 60 s).
    public func listeningAddress() async throws -> String {
        for _ in 0..<1200 {
            if let line = child.stdout.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }) {
                return String(line.split(separator: " ")[3])
            }
            guard child.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let tail = child.stderr.split(separator: "\n").suffix(5).joined(separator: "\n")
        throw UpError("\(name) did not start; the end of \(log):\n\(tail)")
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    public func stop(grace: Duration = .seconds(10)) async {
        child.send(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while child.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        child.send(SIGKILL)
        _ = try? await child.exit()
    }

    /// Runs `icbd ARGUMENTS` to completion; throws with its stderr when it fails. Cancelling
    /// the task kills the command (SIGKILL: a one-shot command has nothing to save, and the
    /// trapped signals of `icbd up` may reach it ignored).
    @discardableResult
    static func run(_ arguments: [String]) async throws -> String {
        try Task.checkCancellation()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-up-\(UUID())").path
        defer {
            try? FileManager.default.removeItem(atPath: scratch + ".out")
            try? FileManager.default.removeItem(atPath: scratch + ".err")
        }
        let child = try await ChildRun(
            binary.path, arguments, stdout: URL(fileURLWithPath: scratch + ".out"), stderr: URL(fileURLWithPath: scratch + ".err"))
        let exit = try await withTaskCancellationHandler {
            try await child.exit()
        } onCancel: {
            child.send(SIGKILL)
        }
        try Task.checkCancellation()
        guard exit == .init(code: 0, bySignal: false) else {
            throw UpError("icbd \(arguments.prefix(3).joined(separator: " ")) failed: \(child.stderr)")
        }
        return child.stdout
    }
}

/// Why `icbd up` could not bring the deployment up.
struct UpError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
