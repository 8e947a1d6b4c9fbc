import Foundation
import Subprocess
import Synchronization
import SystemPackage

/// One child process, spawned and awaited through swift-subprocess (by pidfd: an exit is never
/// missed, however soon it comes), its standard output and error written to files.
public final class ChildRun: Sendable {
    /// How the child ended: its exit code, or the signal that killed it.
    public struct Exit: Sendable, Equatable {
        public let code: Int32
        public let bySignal: Bool

        public init(code: Int32, bySignal: Bool) {
            self.code = code
            self.bySignal = bySignal
        }
    }

    public let stdoutFile: URL
    public let stderrFile: URL
    private let runner: Task<Exit, any Error>
    /// The child's pid once spawned and its exit once awaited, shared with the runner task.
    private final class State: Sendable {
        let value = Mutex<(pid: pid_t, exit: Exit?)>((0, nil))
    }
    private let state = State()

    /// Starts `executable ARGUMENTS`; returns once it runs (throws if it cannot be started).
    public init(_ executable: String, _ arguments: [String], stdout: URL, stderr: URL) async throws {
        stdoutFile = stdout
        stderrFile = stderr
        let out = try FileDescriptor.open(FilePath(stdout.path), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: .ownerReadWrite)
        let err = try FileDescriptor.open(FilePath(stderr.path), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: .ownerReadWrite)
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        runner = Task { [state] in
            defer { signal.finish() }  // also when the spawn fails
            let result = try await Subprocess.run(
                .path(FilePath(executable)), arguments: Arguments(arguments), input: .none,
                output: .fileDescriptor(out, closeAfterSpawningProcess: true),
                error: .fileDescriptor(err, closeAfterSpawningProcess: true)
            ) { execution in
                state.value.withLock { $0.pid = execution.processIdentifier.value }
                signal.yield()
            }
            let exit: Exit
            switch result.terminationStatus {
            case .exited(let code): exit = Exit(code: code, bySignal: false)
            case .signaled(let signal): exit = Exit(code: signal, bySignal: true)
            }
            state.value.withLock { $0.exit = exit }
            return exit
        }
        for await _ in started { break }
        guard pid > 0 else {
            _ = try await runner.value  // the reason it could not be started
            throw ChildRunError(description: "\(executable) did not start")
        }
    }

    public var pid: pid_t { state.value.withLock { $0.pid } }
    public var isRunning: Bool { state.value.withLock { $0.exit == nil } }
    public var stdout: String { (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// Runs `executable ARGUMENTS` to completion, its output in files of a scratch directory
    /// (removed after), so a chatty child never blocks on a full pipe nobody reads; never blocks
    /// a thread while it waits. With `killAfter`, a child still running then is killed (SIGKILL;
    /// its exit says so). Returns how it ended and what it printed.
    public static func run(_ executable: String, _ arguments: [String], killAfter limit: Duration? = nil) async throws
        -> (exit: Exit, stdout: String, stderr: String)
    {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-child-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let child = try await ChildRun(
            executable, arguments, stdout: directory.appendingPathComponent("stdout"), stderr: directory.appendingPathComponent("stderr"))
        let watchdog = limit.map { limit in
            Task {
                try await Task.sleep(for: limit)
                child.send(SIGKILL)
            }
        }
        defer { watchdog?.cancel() }
        let exit = try await child.exit()
        return (exit, child.stdout, child.stderr)
    }

    /// Waits for the child to exit.
    public func exit() async throws -> Exit { try await runner.value }

    /// Sends `signal` unless the child has exited already (its pid may be another's by then).
    public func send(_ signal: Int32) {
        state.value.withLock { state in
            if state.exit == nil && state.pid > 0 { kill(state.pid, signal) }
        }
    }
}

/// A child that could not be started.
public struct ChildRunError: Error, CustomStringConvertible {
    public let description: String
}
