import Foundation
import SystemPackage

/// One child process (a ``SpawnedChild``) whose standard output and error are written to
/// files, read back as text while it runs or after it ended.
public final class ChildRun: Sendable {
    public typealias Exit = SpawnedChild.Exit

    public let stdoutFile: URL
    public let stderrFile: URL
    private let child: SpawnedChild

    /// Starts `executable ARGUMENTS`; returns once it runs (throws if it cannot be started).
    /// `environment`: variables set on top of this process's environment.
    public init(_ executable: String, _ arguments: [String], stdout: URL, stderr: URL, environment: [String: String] = [:]) async throws {
        stdoutFile = stdout
        stderrFile = stderr
        let out = try FileDescriptor.open(FilePath(stdout.path), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: .ownerReadWrite)
        let err: FileDescriptor
        do {
            err = try FileDescriptor.open(FilePath(stderr.path), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: .ownerReadWrite)
        } catch {
            try? out.close()
            throw error
        }
        child = try await SpawnedChild(executable, arguments, output: out, error: err, environment: environment)
    }

    public var pid: pid_t { child.pid }
    public var isRunning: Bool { child.isRunning }
    public var stdout: String { (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// Runs `executable ARGUMENTS` to completion, its output in files of a scratch directory
    /// (removed after), so a chatty child never blocks on a full pipe nobody reads, and a
    /// daemon it leaves running holds no pipe of ours. With `killAfter`, a child still running
    /// then is killed (SIGKILL; its exit says so); so is one whose caller's task is cancelled.
    /// Returns how it ended and what it printed.
    public static func run(
        _ executable: String, _ arguments: [String], killAfter limit: Duration? = nil, environment: [String: String] = [:]
    ) async throws -> (exit: Exit, stdout: String, stderr: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-child-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let child = try await ChildRun(
            executable, arguments, stdout: directory.appendingPathComponent("stdout"), stderr: directory.appendingPathComponent("stderr"),
            environment: environment)
        let watchdog = limit.map { limit in
            Task {
                try await Task.sleep(for: limit)
                child.send(SIGKILL)
            }
        }
        defer { watchdog?.cancel() }
        let exit = try await withTaskCancellationHandler {
            try await child.exit()
        } onCancel: {
            child.send(SIGKILL)
        }
        return (exit, child.stdout, child.stderr)
    }

    /// Waits for the child to exit.
    public func exit() async throws -> Exit { try await child.exit() }

    /// Sends `signal` unless the child has exited already (its pid may be another's by then).
    public func send(_ signal: Int32) { child.send(signal) }
}
