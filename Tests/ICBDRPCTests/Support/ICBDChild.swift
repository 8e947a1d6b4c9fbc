import Foundation
import ICBDCore
import ICBDProcess

/// The built `icbd` executable run as a child process of the test (a ``ChildRun``: its output
/// in files; killed when the test is done with it).
final class ICBDChild {
    private let child: ChildRun

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
    init(_ arguments: [String], in directory: URL) async throws {
        let name = UUID().uuidString
        child = try await ChildRun(
            try Self.binary.path, arguments, stdout: directory.appendingPathComponent("\(name).out"),
            stderr: directory.appendingPathComponent("\(name).err"))
    }

    /// Runs `icbd ARGUMENTS` to completion; fails unless it exits 0.
    static func run(_ arguments: [String], in directory: URL) async throws {
        let child = try await ICBDChild(arguments, in: directory)
        guard try await child.child.exit().succeeded else {
            throw ChildError("icbd \(arguments.joined(separator: " ")) failed: \(child.errors)")
        }
    }

    var errors: String { child.stderr }

    /// The HOST:PORT of the `listening ROLE NAME HOST:PORT` line a service prints.
    func listeningAddress() async throws -> String {
        while child.isRunning {
            if let line = child.stdout.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }) {
                return String(line.split(separator: " ")[3])
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ChildError("icbd exited before it listened: \(errors)")
    }

    /// VmRSS of the process, in bytes.
    func residentBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(child.pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { throw ChildError("no VmRSS in /proc/\(child.pid)/status") }
        return kilobytes * 1024
    }

    /// Ends the process (SIGKILL: nothing of it is under test any more); ICBDProcess reaps it.
    func stop() {
        child.send(SIGKILL)
    }
}

struct ChildError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
