import Foundation
import Subprocess
import Synchronization
import SystemPackage
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
        let child = try await ChildRun(executable, arguments, stdout: directory.appendingPathComponent("stdout"),
                                 stderr: directory.appendingPathComponent("stderr"))
        let status = try await child.exit()
        return Result(status: status.code, stdout: child.stdout, stderr: child.stderr)
    }
}

/// One child process, spawned and awaited through swift-subprocess (by pidfd: an exit is never
/// missed, however soon it comes), its standard output and error written to files.
final class ChildRun: Sendable {
    /// How the child ended: its exit code, or the signal that killed it.
    struct Exit: Sendable, Equatable {
        let code: Int32
        let bySignal: Bool
    }

    let stdoutFile: URL
    let stderrFile: URL
    private let runner: Task<Exit, any Error>
    /// The child's pid once spawned and its exit once awaited, shared with the runner task.
    private final class State: Sendable {
        let value = Mutex<(pid: pid_t, exit: Exit?)>((0, nil))
    }
    private let state = State()

    /// Starts `executable ARGUMENTS`; returns once it runs (throws if it cannot be started).
    init(_ executable: String, _ arguments: [String], stdout: URL, stderr: URL) async throws {
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
            throw CommandError("\(executable) did not start")
        }
    }

    var pid: pid_t { state.value.withLock { $0.pid } }
    var isRunning: Bool { state.value.withLock { $0.exit == nil } }
    var stdout: String { (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// Waits for the child to exit.
    func exit() async throws -> Exit { try await runner.value }

    /// Sends `signal` unless the child has exited already (its pid may be another's by then).
    func send(_ signal: Int32) {
        state.value.withLock { state in
            if state.exit == nil && state.pid > 0 { kill(state.pid, signal) }
        }
    }
}

/// A long-running `icbd` service started for a test; stdout goes to a file we read back.
final class ServiceProcess: Sendable {
    let child: ChildRun
    var stdoutFile: URL { child.stdoutFile }
    var stderrFile: URL { child.stderrFile }

    init(_ arguments: [String], in directory: URL) async throws {
        child = try await ChildRun(
            try CommandRunner.binary.path, arguments,
            stdout: directory.appendingPathComponent("service-\(UUID()).out"),
            stderr: directory.appendingPathComponent("service-\(UUID()).err"))
    }

    /// The `HOST:PORT` of the `listening ROLE NAME HOST:PORT` line, once printed.
    func listeningAddress() async throws -> String {
        let line = try await announcedLine(prefix: "listening ")
        return String(line.split(separator: " ")[2])
    }

    /// The rest of the first stdout line that starts with `prefix`, once printed.
    func announcedLine(prefix: String) async throws -> String {
        for _ in 0..<300 {
            if let line = child.stdout.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) {
                return String(line.dropFirst(prefix.count))
            }
            guard child.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CommandError("the service printed no '\(prefix)' line; stderr: \(stderr)")
    }

    var stderr: String { child.stderr }
    var isRunning: Bool { child.isRunning }
    var pid: pid_t { child.pid }
    /// Waits for the process to exit (after a signal, or by itself).
    func exit() async throws -> ChildRun.Exit { try await child.exit() }

    /// Sends `signal` and waits for the process to exit; returns its exit code, or the signal
    /// that ended it.
    func stop(with signal: Int32) async throws -> Int32 {
        child.send(signal)
        return try await child.exit().code
    }

    deinit {
        child.send(SIGKILL)
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
