import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Synchronization
import Testing

/// What a watcher saw: every response, in order.
final class WatchLog: Sendable {
    private let responses = Mutex<[Icbd_Catalog_V1_WatchResponse]>([])

    func append(_ response: Icbd_Catalog_V1_WatchResponse) { responses.withLock { $0.append(response) } }
    var all: [Icbd_Catalog_V1_WatchResponse] { responses.withLock { $0 } }
    /// The revisions of the changes seen (progress marks left out).
    var revisions: [Int64] { all.filter { !$0.events.isEmpty }.map(\.revision) }
}

/// Watches from `from` and records responses until `stop` says so (checked after each one).
func watch(
    _ client: RPCClient, from: Int64, kinds: [Icbd_Catalog_V1_EntityKind] = [], log: WatchLog,
    until stop: @escaping @Sendable (Icbd_Catalog_V1_WatchResponse) -> Bool
) async throws {
    var request = Icbd_Catalog_V1_WatchRequest()
    request.fromRevision = from
    request.kinds = kinds
    try await client.serverStreaming(CatalogMethods.watch, request, options: RPCCallOptions(timeout: .seconds(60))) { responses in
        for try await response in responses {
            log.append(response)
            if stop(response) { return }
        }
    }
}

@Suite("Catalog: Watch")
struct WatchTests {
    @Test(arguments: StoreKind.available)
    func aWatcherReplaysThenFollowsAndResumesWithoutGapsOrRepeats(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                // History before anyone watches: revisions 1...
                _ = try await addSite(admin, "hq", cidrs: ["10.0.0.0/16"])
                try await publish(admin, image: "win11")
                let afterHistory = try await harness.store.currentRevision().rawValue

                try await harness.withClient(.gateway, "gw1") { gateway in
                    // 1. Replay from 0, then follow live changes.
                    let first = WatchLog()
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            // Until the last live change arrives: the site added below.
                            try await watch(gateway, from: 0, log: first) { response in
                                response.events.contains { $0.site.name == "branch" }
                            }
                        }
                        // Wait until the replay caught up, then write while the watch is live.
                        for _ in 0..<3000 where !first.all.contains(where: \.caughtUp) { try await Task.sleep(for: .milliseconds(10)) }
                        let caughtUp = first.all.contains { $0.caughtUp }
                        try #require(caughtUp, "the watch never caught up")
                        _ = try await moveTag(admin, image: "win11", tag: "stable", version: 1)
                        _ = try await addSite(admin, "branch", cidrs: ["10.1.0.0/16"])
                        try await group.waitForAll()
                    }
                    let seen = first.revisions
                    #expect(seen == Array(1...seen.count).map(Int64.init), "every revision, in order, once")
                    #expect(first.all.filter(\.caughtUp).map(\.revision) == [afterHistory])
                    #expect(first.all.last?.events.first?.site.name == "branch")

                    // 2. More changes while nobody watches, then resume from the last revision seen.
                    let resumeFrom = try #require(seen.last)
                    try await publish(admin, image: "win11")
                    var retire = Icbd_Catalog_V1_RetireVersionRequest()
                    retire.image = "win11"
                    retire.number = 1
                    await expectRPCError(.failedPrecondition, mentioning: "tag 'stable'") {
                        _ = try await admin.unary(CatalogMethods.retireVersion, retire)
                    }
                    let head = try await harness.store.currentRevision().rawValue
                    let second = WatchLog()
                    try await watch(gateway, from: resumeFrom, log: second) { $0.caughtUp }
                    #expect(second.revisions == Array((resumeFrom + 1)...head))
                    #expect(Set(seen).isDisjoint(with: second.revisions))
                    // The publish is one revision per step; its ready step moved latest in the same revision.
                    let ready = try #require(second.all.last { !$0.events.isEmpty })
                    #expect(ready.events.map(\.type) == [.put, .put])
                    #expect(ready.events.first?.version.state == .ready)
                    #expect(ready.events.last?.tag.name == "latest")
                }
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func aFilteredWatchSeesOnlyItsKinds(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                _ = try await addSite(admin, "hq")
                try await publish(admin, image: "win11")
                _ = try await registerNode(admin, "cache-1", role: .cache, site: "hq")
                let log = WatchLog()
                try await watch(admin, from: 0, kinds: [.node, .site], log: log) { $0.caughtUp }
                let kinds = log.all.flatMap(\.events).map { event -> String in
                    switch event.entity {
                    case .site: "site"
                    case .node: "node"
                    default: "other"
                    }
                }
                #expect(kinds == ["site", "node"])
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func aWatcherBehindTheRetainedLogIsToldToListAgain(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                for index in 0..<5 { _ = try await addSite(admin, "site-\(index)") }
                _ = try await harness.store.compactChanges(retaining: 2)
                // Still inside the log kept in memory: served.
                let recent = WatchLog()
                try await watch(admin, from: 3, log: recent) { $0.caughtUp }
                #expect(recent.revisions == [4, 5])
                await expectRPCError(.failedPrecondition, mentioning: "ahead of this catalog") {
                    try await watch(admin, from: 99, log: WatchLog()) { _ in true }
                }
            }
        }
        // A catalog that restarted reads the log from disk, where the compaction shows.
        let restarted = try await CatalogHarness(on: harness.fixture)
        try await restarted.run {
            try await restarted.withClient { admin in
                let error = await expectRPCError(.failedPrecondition, mentioning: "list again") {
                    try await watch(admin, from: 1, log: WatchLog()) { _ in true }
                }
                #expect(error?.details["reason"] == "compacted")
                let log = WatchLog()
                try await watch(admin, from: 3, log: log) { $0.caughtUp }
                #expect(log.revisions == [4, 5])
            }
        }
    }
}
