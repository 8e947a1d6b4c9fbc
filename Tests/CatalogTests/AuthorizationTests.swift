import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Testing

@Suite("Catalog: who may call what")
struct AuthorizationTests {
    /// A call, named for the test's output.
    struct Call: Sendable, CustomStringConvertible {
        let description: String
        let run: @Sendable (RPCClient) async throws -> Void
    }

    static let writes: [Call] = [
        Call(description: "CreateImage") { client in
            var request = Icbd_Catalog_V1_CreateImageRequest()
            request.name = "other"
            _ = try await client.unary(CatalogMethods.createImage, request)
        },
        Call(description: "CreateVersion") { client in
            var request = Icbd_Catalog_V1_CreateVersionRequest()
            request.image = "win11"
            request.files = [TestFile(path: "disk.raw", size: 1).spec]
            _ = try await client.unary(CatalogMethods.createVersion, request)
        },
        Call(description: "MoveTag") { client in _ = try await moveTag(client, image: "win11", tag: "stable", version: 1) },
        Call(description: "PutSite") { client in _ = try await addSite(client, "elsewhere") },
        Call(description: "RetireVersion") { client in
            var request = Icbd_Catalog_V1_RetireVersionRequest()
            request.image = "win11"
            request.number = 1
            _ = try await client.unary(CatalogMethods.retireVersion, request)
        },
        Call(description: "Assign") { client in
            var request = Icbd_Catalog_V1_AssignRequest()
            request.mac = "52:54:00:12:34:56"
            request.image = "win11"
            _ = try await client.unary(CatalogMethods.assign, request)
        },
    ]

    /// Which roles each write admits (everything else is refused before the handler runs).
    static let admitted: [String: Set<Role>] = [
        "CreateImage": [.admin, .replicator], "CreateVersion": [.admin, .replicator], "MoveTag": [.admin],
        "PutSite": [.admin], "RetireVersion": [.admin], "Assign": [.admin],
    ]

    @Test(arguments: StoreKind.available)
    func eachRoleMayCallOnlyItsMethods(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                try await publish(admin, image: "win11")
                _ = try await addSite(admin, "hq")
            }
            for role in [Role.gateway, .cache, .replicator, .catalog] {
                try await harness.withClient(role, "\(role)-1") { client in
                    // Every role reads.
                    let image = try await getImage(client, "win11")
                    #expect(image.image.name == "win11")
                    for call in Self.writes where !(Self.admitted[call.description] ?? []).contains(role) {
                        let error = await expectRPCError(.permissionDenied) { try await call.run(client) }
                        if error == nil { Issue.record("\(role) was allowed \(call)") }
                    }
                }
            }
            // Nothing a refused caller sent was written.
            try await harness.withClient { admin in
                let image = try await getImage(admin, "win11")
                #expect(image.versions.count == 1)
                #expect(image.tags.map(\.name) == ["latest"])
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func nodesRegisterHeartbeatAndReportPlacementsOnlyAsThemselves(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                try await publish(admin, image: "win11")
                _ = try await addSite(admin, "hq")
            }
            try await harness.withClient(.cache, "cache-1") { cache in
                _ = try await registerNode(cache, "cache-1", role: .cache, site: "hq")
                await expectRPCError(.permissionDenied, mentioning: "only as itself") {
                    _ = try await registerNode(cache, "cache-2", role: .cache, site: "hq")
                }
                await expectRPCError(.permissionDenied, mentioning: "only as a cache node") {
                    _ = try await registerNode(cache, "cache-1", role: .replicator, site: "hq")
                }
                var heartbeat = Icbd_Catalog_V1_HeartbeatRequest()
                heartbeat.name = "cache-1"
                #expect(try await cache.unary(CatalogMethods.heartbeat, heartbeat).node.state == .up)
                heartbeat.name = "repo-1"
                await expectRPCError(.permissionDenied, mentioning: "heartbeat only as itself") {
                    _ = try await cache.unary(CatalogMethods.heartbeat, heartbeat)
                }
            }
            try await harness.withClient(.replicator, "repo-1") { replicator in
                _ = try await registerNode(replicator, "repo-1", role: .replicator, site: "hq")
                var placement = Icbd_Catalog_V1_SetPlacementRequest()
                placement.image = "win11"
                placement.version = 1
                placement.node = "repo-1"
                placement.state = .present
                #expect(try await replicator.unary(CatalogMethods.setPlacement, placement).placement.state == .present)
                placement.node = "repo-2"
                await expectRPCError(.permissionDenied, mentioning: "report placements only as itself") {
                    _ = try await replicator.unary(CatalogMethods.setPlacement, placement)
                }
            }
            try await harness.withClient { admin in
                // An admin may act for a node, and placements only go on repository nodes.
                var placement = Icbd_Catalog_V1_SetPlacementRequest()
                placement.image = "win11"
                placement.version = 1
                placement.node = "cache-1"
                placement.state = .present
                await expectRPCError(.failedPrecondition, mentioning: "placements are on repository") {
                    _ = try await admin.unary(CatalogMethods.setPlacement, placement)
                }
                let image = try await getImage(admin, "win11")
                #expect(image.placements.map(\.node) == ["repo-1"])
            }
        }
    }
}

@Suite("Catalog: optimistic concurrency")
struct ConcurrencyTests {
    @Test(arguments: StoreKind.available, 0..<3)
    func twoPublishersOfTheSameVersionExactlyOneWins(kind: StoreKind, round: Int) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withReplicator("repo-a") { first in
                try await publish(first, image: "win11")
                try await harness.withReplicator("repo-b") { second in
                    // Both read newest = 1 and publish version 2 at once.
                    let outcomes = try await withThrowingTaskGroup(of: Result<Int64, RPCError>.self) { group in
                        for client in [first, second] {
                            group.addTask {
                                do {
                                    return .success(try await publish(client, image: "win11", number: 2, parent: 1).number)
                                } catch let error as RPCError {
                                    return .failure(error)
                                }
                            }
                        }
                        var outcomes: [Result<Int64, RPCError>] = []
                        for try await outcome in group { outcomes.append(outcome) }
                        return outcomes
                    }
                    let wins = outcomes.compactMap { try? $0.get() }
                    let losses = outcomes.compactMap { outcome -> RPCError? in
                        if case .failure(let error) = outcome { error } else { nil }
                    }
                    #expect(wins == [2])
                    #expect(losses.count == 1)
                    #expect(losses.first?.code == .aborted)
                    #expect(losses.first?.message.contains("another publisher won") == true, "\(losses)")
                    #expect(losses.first?.details["next_version"] == "3")
                    let image = try await getImage(first, "win11")
                    #expect(image.versions.map(\.number) == [1, 2])
                    #expect(image.tags.first?.version == 2)
                }
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func tagMovesWithTheSameExpectedRevisionExactlyOneWins(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                for _ in 0..<3 { try await publish(admin, image: "win11") }
                let stable = try await moveTag(admin, image: "win11", tag: "stable", version: 1, expected: 0)
                let read = stable.tag.revision
                let results = await withTaskGroup(of: Bool.self) { group in
                    for target in [Int64(2), 3] {
                        group.addTask { (try? await moveTag(admin, image: "win11", tag: "stable", version: target, expected: read)) != nil }
                    }
                    var results: [Bool] = []
                    for await result in group { results.append(result) }
                    return results
                }
                #expect(results.filter { $0 }.count == 1)
                await expectRPCError(.aborted, mentioning: "someone else changed it") {
                    _ = try await moveTag(admin, image: "win11", tag: "stable", version: 1, expected: read)
                }
                await expectRPCError(.alreadyExists, mentioning: "exists already") {
                    _ = try await moveTag(admin, image: "win11", tag: "stable", version: 1, expected: 0)
                }
            }
        }
    }
}
