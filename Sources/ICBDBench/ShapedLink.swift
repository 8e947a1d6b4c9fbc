import Foundation
import Glibc
import ICBDProcess

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

    func create() async throws {
        try await SystemCommand.run("/sbin/ip", ["netns", "add", namespace])
        try await SystemCommand.run("/sbin/ip", ["link", "add", hostInterface, "type", "veth", "peer", "name", peerInterface])
        try await SystemCommand.run("/sbin/ip", ["link", "set", peerInterface, "netns", namespace])
        try await SystemCommand.run("/sbin/ip", ["addr", "add", "\(hostAddress)/30", "dev", hostInterface])
        try await SystemCommand.run("/sbin/ip", ["link", "set", hostInterface, "up"])
        try await inNamespace(["/sbin/ip", "link", "set", "lo", "up"])
        try await inNamespace(["/sbin/ip", "addr", "add", "\(peerAddress)/30", "dev", peerInterface])
        try await inNamespace(["/sbin/ip", "link", "set", peerInterface, "up"])
        try await SystemCommand.run("/sbin/tc", ["qdisc", "add", "dev", hostInterface, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "100ms"])
        try await inNamespace(["/sbin/tc", "qdisc", "add", "dev", peerInterface, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "100ms"])
    }

    func remove() async {
        _ = try? await SystemCommand.run("/sbin/ip", ["link", "del", hostInterface])
        _ = try? await SystemCommand.run("/sbin/ip", ["netns", "del", namespace])
    }

    private func inNamespace(_ command: [String]) async throws {
        try await SystemCommand.run("/usr/bin/nsenter", ["--net=\(namespacePath)"] + command)
    }
}
