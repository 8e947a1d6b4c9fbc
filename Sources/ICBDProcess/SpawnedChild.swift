import Foundation
import Subprocess
import Synchronization
import SystemPackage

/// One child process spawned and awaited through swift-subprocess, with the standard streams
/// it is handed: the one way icbd starts a program. An argument array, never a shell line;
/// awaited by pidfd (no SIGCHLD handler that could reap another component's children, and an
/// exit is never missed however soon it comes); no thread blocks while it runs. Descriptors
/// other than the three standard ones are not inherited. A child still running when its
/// `SpawnedChild` is released is killed (SIGKILL): children never outlive their owner.
public final class SpawnedChild: Sendable {
    /// How the child ended: its exit code, or the signal that killed it.
    public struct Exit: Sendable, Equatable, CustomStringConvertible {
        public let code: Int32
        public let bySignal: Bool

        public init(code: Int32, bySignal: Bool) {
            self.code = code
            self.bySignal = bySignal
        }

        /// Exit code 0.
        public var succeeded: Bool { code == 0 && !bySignal }

        /// As a shell reports it: the exit code, or 128 + the signal.
        public var status: Int32 { bySignal ? 128 + code : code }

        /// "exited 3", "was killed by signal 9".
        public var description: String { bySignal ? "was killed by signal \(code)" : "exited \(code)" }
    }

    /// The child's pid once spawned and its exit once awaited, shared with the runner task.
    private final class State: Sendable {
        let value = Mutex<(pid: pid_t, exit: Exit?)>((0, nil))
    }
    private let state = State()
    private let runner: Task<Exit, any Error>

    /// Starts `executable ARGUMENTS` and returns once it runs; throws if it cannot be started.
    ///
    /// The standard streams are handed over: each descriptor is closed here once the child has
    /// its copy, or when it could not be started; nil is `/dev/null`. `environment`: variables
    /// set on top of this process's environment.
    public init(
        _ executable: String, _ arguments: [String], input stdin: FileDescriptor? = nil, output stdout: FileDescriptor? = nil,
        error stderr: FileDescriptor? = nil, environment: [String: String] = [:]
    ) async throws {
        var streams: [FileDescriptor] = []
        var opened: [FileDescriptor] = []
        for stream in [stdin, stdout, stderr] {
            if let stream {
                streams.append(stream)
                continue
            }
            do {
                opened.append(try FileDescriptor.open("/dev/null", .readWrite, options: .closeOnExec))
                streams.append(opened[opened.count - 1])
            } catch {
                for descriptor in opened + [stdin, stdout, stderr].compactMap({ $0 }) { try? descriptor.close() }
                throw SpawnError(description: "cannot start \(executable): cannot open /dev/null: \(error)")
            }
        }
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        runner = Task { [state] in
            defer { signal.finish() }  // also when the spawn fails
            // swift-subprocess closes the handed-over descriptors, spawned or not.
            let result = try await Subprocess.run(
                .path(FilePath(executable)), arguments: Arguments(arguments),
                environment: .inherit.updating(environment.reduce(into: [:]) { $0[Environment.Key(stringLiteral: $1.key)] = $1.value }),
                input: .fileDescriptor(streams[0], closeAfterSpawningProcess: true),
                output: .fileDescriptor(streams[1], closeAfterSpawningProcess: true),
                error: .fileDescriptor(streams[2], closeAfterSpawningProcess: true)
            ) { execution in
                state.value.withLock { $0.pid = execution.processIdentifier.value }
                signal.yield()
            }
            let exit = Exit(result.terminationStatus)
            state.value.withLock { $0.exit = exit }
            return exit
        }
        for await _ in started { break }
        guard pid > 0 else {
            let reason: String
            do {
                _ = try await runner.value
                reason = "it did not start"
            } catch {
                reason = "\(error)"
            }
            throw SpawnError(description: "cannot start \(executable): \(reason)")
        }
    }

    deinit {
        send(SIGKILL)
    }

    public var pid: pid_t { state.value.withLock { $0.pid } }
    public var isRunning: Bool { state.value.withLock { $0.exit == nil } }

    /// Waits for the child to exit.
    public func exit() async throws -> Exit { try await runner.value }

    /// Sends `signal` unless the child has exited already (its pid may be another's by then).
    public func send(_ signal: Int32) {
        state.value.withLock { state in
            if state.exit == nil && state.pid > 0 { kill(state.pid, signal) }
        }
    }
}

extension SpawnedChild.Exit {
    init(_ status: TerminationStatus) {
        switch status {
        case .exited(let code): self.init(code: code, bySignal: false)
        case .signaled(let signal): self.init(code: signal, bySignal: true)
        }
    }
}

/// A child that could not be started, and why.
public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
}
