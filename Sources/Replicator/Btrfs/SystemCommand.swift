import Foundation

/// Runs a system tool (mount, mkfs.btrfs, btrfs) with an argument array, never a shell.
public enum SystemCommand {
    /// Runs `executable ARGUMENTS` to completion; returns its stdout, or throws with its stderr.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // These tools print little on stderr (far below a pipe's 64 KiB), so reading stdout to
        // its end first cannot block them.
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SystemCommandError(
                "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): "
                    + String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// A system tool that failed; the message carries what it printed on stderr.
public struct SystemCommandError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
