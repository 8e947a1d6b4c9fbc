import Foundation
import Glibc
import ICBDProcess
import SystemPackage

/// A private `sshd` for the bench's `btrfs send | ssh | btrfs receive` baseline (what an
/// administrator would script): its own host key, client key, authorized_keys and config in a
/// temporary directory, listening on one address and a free port, optionally inside a network
/// namespace. It never reads or changes the system's sshd configuration or ~/.ssh, and it is
/// stopped and its directory removed when ``with(address:namespacePath:_:)`` returns.
final class PrivateSSHServer: Sendable {
    let address: String
    let port: Int
    let directory: String
    private let daemon: SpawnedChild

    static let sshd = "/usr/sbin/sshd"

    private init(address: String, port: Int, directory: String, daemon: SpawnedChild) {
        self.address = address
        self.port = port
        self.directory = directory
        self.daemon = daemon
    }

    /// Runs `body` with an sshd on `address` (inside the namespace at `namespacePath`, when
    /// given) that accepts connections; stops it and removes its directory afterwards.
    static func with<R>(address: String, namespacePath: String? = nil, _ body: (PrivateSSHServer) async throws -> R) async throws -> R {
        let server = try await start(address: address, namespacePath: namespacePath)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    /// Starts sshd and waits until it accepts connections (probed with connect(2)).
    private static func start(address: String, namespacePath: String?) async throws -> PrivateSSHServer {
        guard FileManager.default.isExecutableFile(atPath: Self.sshd) else {
            throw BenchError("\(Self.sshd) is missing (Debian package openssh-server); run scripts/bootstrap")
        }
        let port = try Self.freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-bench-ssh-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // sshd refuses to start without its privilege separation directory (the package makes
        // it only while its own service runs).
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        try await SystemCommand.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", directory + "/host_key"])
        try await SystemCommand.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", directory + "/client_key"])
        try FileManager.default.copyItem(atPath: directory + "/client_key.pub", toPath: directory + "/authorized_keys")
        let config = """
            Port \(port)
            ListenAddress \(address)
            HostKey \(directory)/host_key
            AuthorizedKeysFile \(directory)/authorized_keys
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            PidFile \(directory)/sshd.pid
            LogLevel ERROR

            """
        try config.write(toFile: directory + "/sshd_config", atomically: true, encoding: .utf8)
        let daemon = [Self.sshd, "-D", "-e", "-f", directory + "/sshd_config"]
        let command = namespacePath.map { ["/usr/bin/nsenter", "--net=\($0)"] + daemon } ?? daemon
        let log = directory + "/sshd.log"
        let server = PrivateSSHServer(
            address: address, port: port, directory: directory,
            daemon: try await SpawnedChild(
                command[0], Array(command.dropFirst()),
                error: try FileDescriptor.open(FilePath(log), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: .ownerReadWrite)))
        for _ in 0..<100 {
            if Self.accepts(address: address, port: port) { return server }
            try await Task.sleep(for: .milliseconds(100))
        }
        let errors = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        await server.stop()
        throw BenchError("the bench's private sshd on \(address):\(port) does not accept a login: \(errors.suffix(500))")
    }

    /// `ssh` arguments that log in to this server as root with the bench's key and run `remote`:
    /// no compression (the baseline is the uncompressed pipe), no user or system ssh config.
    func sshArguments(_ remote: [String]) -> [String] {
        [
            "-F", "/dev/null", "-p", "\(port)", "-i", directory + "/client_key", "-o", "BatchMode=yes", "-o", "Compression=no",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=\(directory)/known_hosts", "-o", "LogLevel=ERROR",
            "root@\(address)",
        ] + remote
    }

    /// Stops sshd (SIGTERM), waits for it and removes its directory.
    private func stop() async {
        daemon.send(SIGTERM)
        _ = try? await daemon.exit()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Whether something listens on `address:port`.
    private static func accepts(address: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_addr.s_addr = inet_addr(address)
        target.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &target) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A TCP port nobody listens on now (bound, read back, released).
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("cannot open a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw BenchError("cannot bind a socket to find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
