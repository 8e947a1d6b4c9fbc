import ICBDCore
import ICBDRPC
import Logging
import ServiceLifecycle
import Testing

/// The upstream pool gateways and cache nodes share: bounded, closing the clients of nodes that
/// leave, and closing all of them at graceful shutdown.
@Suite("RPC client pool")
struct RPCClientPoolTests {
    @Test func aCatalogListingMoreNodesThanTheBoundCannotMakeANodeHoldMoreClients() throws {
        let pki = try TestPKI()
        var configuration = RPCClientPool.Configuration(tls: try pki.identity(.gateway, "gw"))
        configuration.maximumClients = 2
        let pool = RPCClientPool(configuration: configuration, logger: Logger(label: "test"))
        let first = try pool.client(for: HostPort(host: "127.0.0.1", port: 1001), role: .cache)
        #expect(try pool.client(for: HostPort(host: "127.0.0.1", port: 1001), role: .cache) === first, "one client per node")
        _ = try pool.client(for: HostPort(host: "127.0.0.1", port: 1002), role: .replicator)
        let refused = #expect(throws: RPCError.self) {
            _ = try pool.client(for: HostPort(host: "127.0.0.1", port: 1003), role: .cache)
        }
        #expect(refused?.code == .resourceExhausted)
        #expect(pool.count == 2)
        // A node leaving frees its place.
        pool.retain([HostPort(host: "127.0.0.1", port: 1001)])
        #expect(pool.count == 1)
        _ = try pool.client(for: HostPort(host: "127.0.0.1", port: 1003), role: .cache)
    }

    @Test func aNodeThatLeavesHasItsConnectionClosedAndGracefulShutdownClosesTheRest() async throws {
        let server = try TestServer()
        try await server.run {
            let address = try await server.address()
            let pool = RPCClientPool(configuration: RPCClientPool.Configuration(tls: try server.pki.identity(.gateway, "gw")), logger: server.logger)
            let group = ServiceGroup(services: [pool], logger: server.logger)
            try await withThrowingTaskGroup(of: Void.self) { running in
                running.addTask { try await group.run() }
                let left = try pool.client(for: address, role: .catalog)
                _ = try await left.ping()
                // The node leaves the catalog: its client is shut down, calls on it fail.
                pool.retain([])
                await expectRPCError(.unavailable) { try await untilItFails { _ = try await left.ping() } }
                // Back again: a new client, connected anew.
                let back = try pool.client(for: address, role: .catalog)
                #expect(back !== left)
                _ = try await back.ping()
                // Graceful shutdown closes every client and the pool makes no more.
                await group.triggerGracefulShutdown()
                try await running.waitForAll()
                await expectRPCError(.unavailable) { _ = try await back.ping() }
                await expectRPCError(.unavailable) { _ = try pool.client(for: address, role: .catalog) }
            }
        }
    }
}

/// Repeats `body` until it throws (its connection closes a moment after the shutdown), at most
/// 1000 times (a bound against a hang, not a timing claim); rethrows what it threw.
private func untilItFails(_ body: () async throws -> Void) async throws {
    for _ in 0..<1000 {
        try await body()
        try await Task.sleep(for: .milliseconds(10))
    }
}
