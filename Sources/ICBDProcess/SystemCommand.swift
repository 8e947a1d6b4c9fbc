import Foundation
import Subprocess
import SystemPackage

/// Runs a system tool (mount, mkfs.btrfs, btrfs, ip, tc, …) to completion through
/// swift-subprocess, with an argument array (never a shell) and standard input `/dev/null`:
/// its standard output is the result, and a failure says how it ended and what it printed on
/// standard error. Never blocks a thread while the tool runs; cancelling the caller's task
/// kills the tool.
public enum SystemCommand {
    /// The most bytes of standard output or standard error kept: these tools print a few lines;
    /// a tool printing more fails with an error that says so.
    public static let maximumOutputBytes = 4 << 20

    /// Runs `executable ARGUMENTS`; returns its stdout, or throws with its stderr.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) async throws -> String {
        let line = ([executable] + arguments).joined(separator: " ")
        let status: TerminationStatus
        let output: String
        let errors: String
        do {
            let result = try await Subprocess.run(
                .path(FilePath(executable)), arguments: Arguments(arguments), input: .none,
                output: .string(limit: maximumOutputBytes), error: .string(limit: maximumOutputBytes))
            (status, output, errors) = (result.terminationStatus, result.standardOutput, result.standardError)
        } catch let error as SubprocessError where error.code == .executableNotFound || error.code == .spawnFailed {
            throw SystemCommandError("cannot start \(line): \(error)")
        } catch let error as SubprocessError {
            throw SystemCommandError("\(line) failed: \(error)")
        }
        let exit = SpawnedChild.Exit(status)
        guard exit.succeeded else {
            throw SystemCommandError("\(line) \(exit): " + errors.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return output
    }
}

/// A system tool that failed; the message carries what it printed on standard error.
public struct SystemCommandError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
