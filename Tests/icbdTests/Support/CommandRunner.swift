import Foundation
import ICBDCore
import ICBDProcess
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

    /// Runs `executable ARGUMENTS` to completion (output to files: a chatty child never blocks).
    static func runTool(_ executable: String, _ arguments: [String]) async throws -> Result {
        let (exit, stdout, stderr) = try await ChildRun.run(executable, arguments)
        return Result(status: exit.code, stdout: stdout, stderr: stderr)
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

/// A deployment PKI minted with `icbd pki` in `directory/pki`: the CA and one certificate per
/// `(role, name)`, servers for 127.0.0.1. Returns the PKI directory.
func mintPKI(in directory: URL, _ certificates: [(role: String, name: String)]) async throws -> String {
    let pki = directory.appendingPathComponent("pki").path
    var commands = [["pki", "init", "--dir", pki]]
    for (role, name) in certificates {
        commands.append(["pki", "issue", "--dir", pki, "--role", role, "--name", name] + (role == "admin" ? [] : ["--ip", "127.0.0.1"]))
    }
    for arguments in commands {
        let result = try await CommandRunner.run(arguments)
        guard result.status == 0 else { throw CommandError("icbd \(arguments.joined(separator: " ")) failed: \(result.stderr)") }
    }
    return pki
}

struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}


