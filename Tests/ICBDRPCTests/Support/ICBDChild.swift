import Foundation
import ICBDCore

/// The built `icbd` executable run as a child process of the test.
final class ICBDChild {
    private let process: Process
    private let stdout: URL
    private let stderr: URL

    /// `icbd` beside the test bundle (`swift build --build-tests` builds both).
    static var binary: URL {
        get throws {
            let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("icbd")
            if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
            let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent()
            let debug = packageRoot.appendingPathComponent(".build/debug/icbd")
            guard FileManager.default.isExecutableFile(atPath: debug.path) else {
                throw ChildError("icbd is not built; run `swift build` first")
            }
            return debug
        }
    }

    /// Starts `icbd ARGUMENTS`, its output going to files in `directory`.
    init(_ arguments: [String], in directory: URL) throws {
        let name = UUID().uuidString
        stdout = directory.appendingPathComponent("\(name).out")
        stderr = directory.appendingPathComponent("\(name).err")
        FileManager.default.createFile(atPath: stdout.path, contents: nil)
        FileManager.default.createFile(atPath: stderr.path, contents: nil)
        process = Process()
        process.executableURL = try Self.binary
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: stdout)
        process.standardError = try FileHandle(forWritingTo: stderr)
        try process.run()
    }

    /// Runs `icbd ARGUMENTS` to completion; fails unless it exits 0.
    static func run(_ arguments: [String], in directory: URL) async throws {
        let child = try ICBDChild(arguments, in: directory)
        while child.process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        guard child.process.terminationStatus == 0 else {
            throw ChildError("icbd \(arguments.joined(separator: " ")) failed: \(child.errors)")
        }
    }

    var errors: String { (try? String(contentsOf: stderr, encoding: .utf8)) ?? "" }

    /// The HOST:PORT of the `listening ROLE NAME HOST:PORT` line a service prints.
    func listeningAddress() async throws -> String {
        while process.isRunning {
            let output = (try? String(contentsOf: stdout, encoding: .utf8)) ?? ""
            if let line = output.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }) {
                return String(line.split(separator: " ")[3])
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ChildError("icbd exited before it listened: \(errors)")
    }

    /// VmRSS of the process, in bytes.
    func residentBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { throw ChildError("no VmRSS in /proc/\(process.processIdentifier)/status") }
        return kilobytes * 1024
    }

    /// Ends the process (SIGKILL: nothing of it is under test any more) and waits for it.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

struct ChildError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
