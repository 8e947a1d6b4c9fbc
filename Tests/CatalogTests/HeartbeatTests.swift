import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Testing

@Suite("Catalog: node heartbeats")
struct HeartbeatTests {
    @Test(arguments: StoreKind.available)
    func aNodeWithoutHeartbeatsGoesDownWatchersAreToldAndAHeartbeatBringsItBack(_ kind: StoreKind) async throws {
        // The sweep runs every few milliseconds of real time; expiry itself follows the test's clock.
        let harness = try await CatalogHarness(kind) { $0.sweepInterval = .milliseconds(20) }
        try await harness.run {
            try await harness.withClient { admin in _ = try await addSite(admin, "hq") }
            try await harness.withClient(.cache, "cache-1") { cache in
                let node = try await registerNode(cache, "cache-1", role: .cache, site: "hq", ttlMilliseconds: 5000)
                #expect(node.state == .up)
                #expect(node.heartbeatTtlMs == 5000)
                let registered = try await harness.store.currentRevision().rawValue

                // Within the TTL nothing happens; past it, the catalog marks the node down.
                harness.clock.advance(by: 4)
                var heartbeat = Icbd_Catalog_V1_HeartbeatRequest()
                heartbeat.name = "cache-1"
                let kept = try await cache.unary(CatalogMethods.heartbeat, heartbeat)
                #expect(kept.node.state == .up)
                #expect(kept.revision == registered, "a heartbeat that changes nothing is not a change")
                harness.clock.advance(by: 6)

                let log = WatchLog()
                try await watch(cache, from: registered, kinds: [.node], log: log) { response in
                    response.events.contains { $0.node.name == "cache-1" && $0.node.state == .down }
                }
                let down = try #require(log.all.last)
                #expect(down.events.count == 1)
                #expect(down.revision == registered + 1)

                var list = Icbd_Catalog_V1_ListNodesRequest()
                list.site = "hq"
                #expect(try await cache.unary(CatalogMethods.listNodes, list).nodes.map(\.state) == [.down])

                let back = try await cache.unary(CatalogMethods.heartbeat, heartbeat)
                #expect(back.node.state == .up)
                #expect(back.revision == down.revision + 1)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func drainingSurvivesHeartbeatsAndARestartedCatalogGivesNodesAFullTTL(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind) { $0.sweepInterval = .seconds(3600) }
        try await harness.run {
            try await harness.withClient { admin in
                _ = try await addSite(admin, "hq")
                _ = try await registerNode(admin, "gw-1", role: .gateway, site: "hq", ttlMilliseconds: 2000)
                _ = try await registerNode(admin, "gw-2", role: .gateway, site: "hq", ttlMilliseconds: 2000)
                var drain = Icbd_Catalog_V1_SetNodeStateRequest()
                drain.name = "gw-1"
                drain.state = .draining
                #expect(try await admin.unary(CatalogMethods.setNodeState, drain).node.state == .draining)
                var heartbeat = Icbd_Catalog_V1_HeartbeatRequest()
                heartbeat.name = "gw-1"
                #expect(try await admin.unary(CatalogMethods.heartbeat, heartbeat).node.state == .draining)
                drain.state = .down
                await expectRPCError(.invalidArgument, mentioning: "down is set by the catalog") {
                    _ = try await admin.unary(CatalogMethods.setNodeState, drain)
                }
            }
        }
        // Long after the last heartbeats, a new catalog process starts: an up node gets its TTL
        // from the start before it is marked down; the draining one stays draining.
        let later = ManualClock(at: ManualClock.start.addingTimeInterval(3600))
        let restarted = try await CatalogHarness(on: harness.fixture, clock: later) { $0.sweepInterval = .seconds(3600) }
        try await restarted.run {
            #expect(try await restarted.service.sweepExpiredNodes().isEmpty)
            restarted.clock.advance(by: 1)
            #expect(try await restarted.service.sweepExpiredNodes().isEmpty)
            restarted.clock.advance(by: 2)
            #expect(try await restarted.service.sweepExpiredNodes().map(\.name.rawValue) == ["gw-2"])
            restarted.clock.advance(by: 3600)
            #expect(try await restarted.service.sweepExpiredNodes().isEmpty)
            let states = try await restarted.store.listNodes(NodeFilter()).value.map { "\($0.name)=\($0.state)" }
            #expect(states == ["gw-1=draining", "gw-2=down"])
        }
    }
}
