import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import NIOCore
import NIOPosix
import Testing

/// Plain TCP connections that never start TLS: what a client that wants to exhaust a server's
/// sockets holds open.
enum IdleConnections {
    /// Opens `count` connections to `target`, at most 100 at a time, in order of batches.
    static func open(
        _ count: Int, to target: HostPort, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> [(channel: any Channel, opened: ContinuousClock.Instant)] {
        var channels: [(channel: any Channel, opened: ContinuousClock.Instant)] = []
        for start in stride(from: 0, to: count, by: 100) {
            try await withThrowingTaskGroup(of: (any Channel).self) { tasks in
                for _ in start..<min(start + 100, count) {
                    tasks.addTask {
                        try await ClientBootstrap(group: group).connect(host: target.host, port: target.port).get()
                    }
                }
                for try await channel in tasks { channels.append((channel, ContinuousClock.now)) }
            }
        }
        return channels
    }

    /// Raises this process's soft limit of open files to its hard limit; true when that allows
    /// `needed` descriptors.
    static func allowOpenFiles(_ needed: Int) -> Bool {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return false }
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return false }
        return limit.rlim_cur >= rlim_t(needed)
    }
}

@Suite("RPC server: connection limit and handshake timeout")
struct ConnectionLimitTests {
    /// 5,000 idle connections (the server's descriptors and the test's: 10,000, plus margin).
    static let idleCount = 5000
    /// Longer than opening them takes on a quiet debug build (about 30 s on two loaded cores),
    /// so that usually all of them are open when health is asked.
    static let handshakeTimeout = Duration.seconds(50)

    @Test(
        .enabled(
            if: IdleConnections.allowOpenFiles(2 * idleCount + 1000),
            "needs RLIMIT_NOFILE of at least 11,000 (raise the hard limit: ulimit -Hn)"),
        .timeLimit(.minutes(4)))
    func idleConnectionsLeaveHealthAnsweringAndAreClosedAfterTheHandshakeTimeout() async throws {
        // The server and the idle connections on event loops of their own: accepting thousands
        // of connections must not delay the other tests' connections.
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { loops.shutdownGracefully { _ in } }
        // Only the handshake timeout may close the idle connections here: the idle timeout
        // is longer than the test's time limit.
        let server = try TestServer(group: loops) { configuration in
            configuration.maximumConnections = Self.idleCount + 100
            configuration.handshakeTimeout = Self.handshakeTimeout
            configuration.idleTimeout = .seconds(3600)
        }
        try await server.run {
            let idle = try await IdleConnections.open(Self.idleCount, to: try await server.address(), group: loops)
            let health = try await server.withClient { client in
                try await client.unary(HealthMethods.check, Icbd_Rpc_V1_HealthCheckRequest())
            }
            #expect(health.status == .serving)
            let answered = ContinuousClock.now
            let open = idle.filter { $0.channel.isActive }
            print("health answered with \(open.count) of \(Self.idleCount) idle connections open")
            // None was closed before its handshake timeout...
            for closed in idle where !closed.channel.isActive {
                #expect(answered - closed.opened >= Self.handshakeTimeout)
            }
            // ...and the server closes every one of them (the test never does).
            for connection in idle { try await connection.channel.closeFuture.get() }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func connectionsOverTheLimitAreClosedAtOnceEvenBeforeAnyHandshake() async throws {
        let log = RecordingLogHandler()
        let server = try TestServer(log: log) { configuration in
            configuration.maximumConnections = 8
            configuration.handshakeTimeout = .seconds(3600)
            configuration.idleTimeout = .seconds(3600)
        }
        try await server.run {
            let target = try await server.address()
            // Eight connections that never start TLS fill the server.
            let idle = try await IdleConnections.open(8, to: target).map(\.channel)
            // Connections accepted after them are closed at once.
            let refused = try await IdleConnections.open(2, to: target).map(\.channel)
            for channel in refused { try await channel.closeFuture.get() }
            #expect(idle.allSatisfy { $0.isActive })
            await #expect(throws: (any Error).self) {
                _ = try await server.withClient { client in
                    try await client.unary(HealthMethods.check, Icbd_Rpc_V1_HealthCheckRequest())
                }
            }
            // Refusals are logged, not one line each.
            #expect(log.lines.filter { $0.message.hasPrefix("connection refused") }.count == 1)
            // Once the idle connections are gone, the server takes new ones again.
            for channel in idle { try await channel.close() }
            while true {
                do {
                    let health = try await server.withClient { client in
                        try await client.unary(HealthMethods.check, Icbd_Rpc_V1_HealthCheckRequest())
                    }
                    #expect(health.status == .serving)
                    break
                } catch {
                    try await Task.sleep(for: .milliseconds(50))  // the server has not seen the closes yet
                }
            }
        }
    }
}
