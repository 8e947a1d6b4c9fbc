import Foundation
import Glibc

/// An emulated WAN for `icbd bench replication --wan`: a network namespace joined to this one
/// by a veth pair, both ends shaped with `tc qdisc … tbf` (netem is not available here), as in
/// scripts/e2e. This side is ``hostAddress``, the namespace's side ``peerAddress``. Always
/// removed with ``remove()`` (deleting one end of a veth pair deletes both).
struct ShapedLink {
    let namespace: String
    let hostInterface: String
    let peerInterface: String
    let rate: String
    let hostAddress = "10.254.7.1"
    let peerAddress = "10.254.7.2"

    init(rate: String = "100mbit") {
        let id = getpid()
        namespace = "icbd-bench-wan-\(id)"
        hostInterface = "ibw\(id)h"
        peerInterface = "ibw\(id)p"
        self.rate = rate
    }

    /// The namespace's path for `nsenter --net=`.
    var namespacePath: String { "/var/run/netns/\(namespace)" }

    func create() throws {
        try run("/sbin/ip", ["netns", "add", namespace])
        try run("/sbin/ip", ["link", "add", hostInterface, "type", "veth", "peer", "name", peerInterface])
        try run("/sbin/ip", ["link", "set", peerInterface, "netns", namespace])
        try run("/sbin/ip", ["addr", "add", "\(hostAddress)/30", "dev", hostInterface])
        try run("/sbin/ip", ["link", "set", hostInterface, "up"])
        try inNamespace(["/sbin/ip", "link", "set", "lo", "up"])
        try inNamespace(["/sbin/ip", "addr", "add", "\(peerAddress)/30", "dev", peerInterface])
        try inNamespace(["/sbin/ip", "link", "set", peerInterface, "up"])
        try run("/sbin/tc", ["qdisc", "add", "dev", hostInterface, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "100ms"])
        try inNamespace(["/sbin/tc", "qdisc", "add", "dev", peerInterface, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "100ms"])
    }

    func remove() {
        try? run("/sbin/ip", ["link", "del", hostInterface], quiet: true)
        try? run("/sbin/ip", ["netns", "del", namespace], quiet: true)
    }

    private func inNamespace(_ command: [String]) throws {
        try run("/usr/bin/nsenter", ["--net=\(namespacePath)"] + command)
    }

    private func run(_ executable: String, _ arguments: [String], quiet: Bool = false) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = quiet ? FileHandle.nullDevice : errors
        try process.run()
        let message = quiet ? Data() : errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError(
                "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(String(decoding: message, as: UTF8.self))")
        }
    }
}
