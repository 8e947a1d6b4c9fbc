import Catalog
import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import ServiceLifecycle
import Testing

/// The membership every node runs (replicators, cache nodes, gateways), against a real catalog.
@Suite("Catalog: node membership, as the nodes run it")
struct NodeMembershipTests {
    @Test(arguments: StoreKind.available)
    func aNodeAnOperatorRemovedRegistersAgainAndItsHeartbeatsCarryItsUsage(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in _ = try await addSite(admin, "hq") }
            try await harness.withClient(.cache, "cache-1") { catalog in
                var registration = NodeMembership.Registration(
                    name: "cache-1", role: .cache, site: try Name("hq"), heartbeatInterval: .milliseconds(20), heartbeatTTL: .seconds(15))
                registration.capacityBytes = 1 << 30
                let membership = NodeMembership(
                    catalog: catalog, registration: registration, logger: harness.logger,
                    endpoints: { NodeMembership.Endpoints(rpc: HostPort(host: "127.0.0.1", port: 7443)) },
                    usage: { CacheUsage(usedBytes: 4096, hitRatio: 0.5) })
                try await withRunningServices([membership], logger: harness.logger) {
                    try await harness.withClient { admin in
                        let node = try await eventually(admin) { $0.hasCacheUsage }
                        #expect(node.rpcAddress == "127.0.0.1:7443" && node.capacityBytes == 1 << 30 && node.heartbeatTtlMs == 15_000)
                        #expect(node.cacheUsage.usedBytes == 4096 && node.cacheUsage.hitRatio == 0.5)
                        // An operator removes the node; its next heartbeat is NOT_FOUND and it registers again.
                        var remove = Icbd_Catalog_V1_DeleteNodeRequest()
                        remove.name = "cache-1"
                        _ = try await admin.unary(CatalogMethods.deleteNode, remove)
                        let again = try await eventually(admin) { $0.revision > node.revision }
                        #expect(again.state == .up && again.rpcAddress == "127.0.0.1:7443" && again.capacityBytes == 1 << 30)
                    }
                }
            }
        }
    }

    /// The node `cache-1` once it is listed and `condition` holds for it, polled every 20 ms at
    /// most 1000 times (a bound against a hang, not a timing claim).
    private func eventually(
        _ admin: RPCClient, _ condition: (Icbd_Catalog_V1_Node) -> Bool
    ) async throws -> Icbd_Catalog_V1_Node {
        for _ in 0..<1000 {
            let node = try await admin.unary(CatalogMethods.listNodes, .init()).nodes.first { $0.name == "cache-1" }
            if let node, condition(node) { return node }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw RPCError(code: .deadlineExceeded, message: "cache-1 never reached the expected state")
    }
}
