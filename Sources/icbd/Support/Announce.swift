import Foundation
import ICBDCore
import Logging
import NIOCore

/// Prints `listening ROLE NAME HOST:PORT` on standard output (and logs it), so scripts and tests
/// can read back a port picked with `:0`.
func announceListening(role: Role, name: String, address: SocketAddress, logger: Logger) {
    let host = address.ipAddress ?? "unknown"
    let port = address.port ?? 0
    let hostPort = HostPort(host: host, port: port)
    // Written unbuffered: a script reading the port must see the line at once.
    FileHandle.standardOutput.write(Data("listening \(role) \(name) \(hostPort)\n".utf8))
    logger.info("listening", metadata: ["role": "\(role)", "name": "\(name)", "address": "\(hostPort)"])
}
