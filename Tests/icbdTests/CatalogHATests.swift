import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import Synchronization
import Testing

/// Two real `icbd catalog` processes on one real PostgreSQL database.
struct HACatalogs {
    let deployment: CatalogDeployment
    let server: PostgresServer
    var processes: [ServiceProcess] = []
    var addresses: [String] = []

    init(server: PostgresServer, count: Int = 2, extra: [String] = ["--db-timeout", "3"]) async throws {
        self.server = server
        deployment = try await CatalogDeployment()
        try await server.createDatabase("catalog")
        let passwordFile = deployment.directory.appendingPathComponent("db-password").path
        try Data("\(PostgresServer.password)\n".utf8).write(to: URL(fileURLWithPath: passwordFile))
        for index in 1...count {
            let name = "cat\(index)"
            if index > 1 {
                let issued = try await CommandRunner.run(
                    ["pki", "issue", "--dir", deployment.pki, "--role", "catalog", "--name", name, "--ip", "127.0.0.1"])
                #expect(issued.status == 0, "\(issued.stderr)")
            }
            let process = try await ServiceProcess(
                [
                    "catalog", "--listen", "127.0.0.1:0", "--db", server.url(database: "catalog"), "--db-password-file", passwordFile,
                    "--tls-dir", deployment.pki, "--name", name,
                ] + extra, in: deployment.directory)
            processes.append(process)
            addresses.append(try await process.listeningAddress())
        }
    }

    /// Runs `body` with a client of `targets` (in that order of preference), presenting `name`.
    func withClient<R: Sendable>(_ targets: [String], as name: String = "admin", _ body: (RPCClient) async throws -> R) async throws -> R {
        try await Self.withClient(targets, pki: deployment.pki, as: name, body)
    }

    static func withClient<R: Sendable>(
        _ targets: [String], pki: String, as name: String = "admin", _ body: (RPCClient) async throws -> R
    ) async throws -> R {
        var configuration = try RPCClientConfiguration(
            targets: targets.map { try HostPort(parsing: $0) }, expectedRole: .catalog,
            tls: try TLSIdentity.load(directory: pki, name: name))
        configuration.initialBackoff = .milliseconds(20)
        configuration.maximumBackoff = .milliseconds(200)
        return try await withRPCClient(configuration, logger: quietLogger(), body)
    }
}

/// What one watcher saw: the revisions of changes, in order.
final class SeenRevisions: Sendable {
    private let revisions = Mutex<[Int64]>([])
    func append(_ revision: Int64) { revisions.withLock { $0.append(revision) } }
    var all: [Int64] { revisions.withLock { $0 } }
}

/// The writes a catalog acknowledged, by image name.
final class AcknowledgedWrites: Sendable {
    private let writes = Mutex<[String: Int64]>([:])
    func record(_ name: String, _ revision: Int64) { writes.withLock { $0[name] = revision } }
    var names: [String] { writes.withLock { Array($0.keys) } }
}

func createImage(_ client: RPCClient, _ name: String) async throws -> Int64 {
    var request = Icbd_Catalog_V1_CreateImageRequest()
    request.name = name
    request.ifMissing = true  // a retried create whose first answer was lost converges
    return try await client.unary(CatalogMethods.createImage, request, options: RPCCallOptions(timeout: .seconds(5))).revision
}

@Suite("Several catalog processes on one PostgreSQL database", .requiresPostgreSQL)
struct CatalogHATests {
    @Test func aWatchOnOneCatalogSeesWritesThroughAnotherInOrderOnce() async throws {
        try await PostgresServer.with { server in
            let catalogs = try await HACatalogs(server: server)
            let total: Int64 = 40
            let seen = SeenRevisions()
            let (pki, a) = (catalogs.deployment.pki, catalogs.addresses[0])
            try await catalogs.withClient([catalogs.addresses[1]], as: "gw1") { watcherClient in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        _ = try await CatalogWatch.follow(watcherClient, from: 0, logger: quietLogger()) { response in
                            if !response.events.isEmpty { seen.append(response.revision) }
                            return response.revision < total
                        }
                    }
                    try await HACatalogs.withClient([a], pki: pki) { writer in
                        for index in 0..<total { _ = try await createImage(writer, "image-\(index)") }
                    }
                    try await group.waitForAll()
                }
            }
            #expect(seen.all == Array(1...total))
            // Both processes answer from the same database.
            try await catalogs.withClient([catalogs.addresses[1]]) { client in
                var list = Icbd_Catalog_V1_ListImagesRequest()
                list.pageSize = 1000
                let images = try await client.unary(CatalogMethods.listImages, list).images
                #expect(images.count == Int(total))
            }
        }
    }

    @Test func killingOneOfTwoCatalogsLosesNoAcknowledgedWriteAndNoWatchedChange() async throws {
        try await PostgresServer.with { server in
            let catalogs = try await HACatalogs(server: server)
            let (a, b) = (catalogs.addresses[0], catalogs.addresses[1])
            let pki = catalogs.deployment.pki
            let catalogA = catalogs.processes[0].pid
            let writes = 60
            let acknowledged = AcknowledgedWrites()
            let watchers = (0..<4).map { _ in SeenRevisions() }
            let last = try await withThrowingTaskGroup(of: Void.self) { group -> Int64 in
                // Watchers prefer A or B; those on A must resume on B after the kill.
                for (index, log) in watchers.enumerated() {
                    let targets = index % 2 == 0 ? [a, b] : [b, a]
                    group.addTask {
                        try await HACatalogs.withClient(targets, pki: pki, as: "gw1") { client in
                            _ = try await CatalogWatch.follow(client, from: 0, logger: quietLogger()) { response in
                                if !response.events.isEmpty { log.append(response.revision) }
                                // Until the marker written after everything else.
                                return !response.events.contains { $0.image.name == "the-end" }
                            }
                        }
                    }
                }
                // Two writers, preferring A: every write is retried until acknowledged.
                try await withThrowingTaskGroup(of: Void.self) { writers in
                    for writer in 0..<2 {
                        writers.addTask {
                            try await HACatalogs.withClient([a, b], pki: pki) { client in
                                for index in 0..<(writes / 2) {
                                    let name = "image-\(writer)-\(index)"
                                    var attempts = 0
                                    while true {
                                        do {
                                            let revision = try await createImage(client, name)
                                            acknowledged.record(name, revision)
                                            break
                                        } catch let error as RPCError where error.code == .unavailable && attempts < 50 {
                                            attempts += 1
                                            try await Task.sleep(for: .milliseconds(50))
                                        }
                                    }
                                    if writer == 0 && index == writes / 6 {
                                        // A third of the way in: catalog A dies without a goodbye.
                                        kill(catalogA, SIGKILL)
                                    }
                                }
                            }
                        }
                    }
                    try await writers.waitForAll()
                }
                // Every acknowledged write is there.
                try await catalogs.withClient([b]) { client in
                    var list = Icbd_Catalog_V1_ListImagesRequest()
                    list.pageSize = 1000
                    let answer = try await client.unary(CatalogMethods.listImages, list)
                    let names = Set(answer.images.map(\.image.name))
                    for name in acknowledged.names { #expect(names.contains(name), "acknowledged \(name) is missing") }
                }
                let end = try await catalogs.withClient([b]) { client in try await createImage(client, "the-end") }
                try await group.waitForAll()
                return end
            }
            #expect(!catalogs.processes[0].isRunning)
            #expect(last == Int64(writes) + 1)
            #expect(acknowledged.names.count == writes)
            for log in watchers {
                #expect(log.all == Array(1...last), "every change, in order, exactly once")
            }
        }
    }

    @Test func postgresRestartedUnderLoadFailsCallsUnavailableThenLosesNothing() async throws {
        try await PostgresServer.with { server in
            let catalogs = try await HACatalogs(server: server)
            let (a, b, pki) = (catalogs.addresses[0], catalogs.addresses[1], catalogs.deployment.pki)
            let acknowledged = AcknowledgedWrites()
            let unavailable = SeenRevisions()  // the times a write was refused as UNAVAILABLE
            let seen = SeenRevisions()
            let writes = 30
            let end = try await withThrowingTaskGroup(of: Void.self) { group -> Int64 in
                group.addTask {
                    try await HACatalogs.withClient([b], pki: pki, as: "gw1") { client in
                        _ = try await CatalogWatch.follow(client, from: 0, logger: quietLogger()) { response in
                            if !response.events.isEmpty { seen.append(response.revision) }
                            return !response.events.contains { $0.image.name == "the-end" }
                        }
                    }
                }
                try await HACatalogs.withClient([a, b], pki: pki) { client in
                    for index in 0..<writes {
                        if index == writes / 3 { try await server.shutDown() }
                        var attempts = 0
                        while true {
                            do {
                                // A deadline longer than the catalog's own database bound: a
                                // call must come back UNAVAILABLE, never run into its deadline.
                                var request = Icbd_Catalog_V1_CreateImageRequest()
                                request.name = "image-\(index)"
                                request.ifMissing = true
                                let answer = try await client.unary(
                                    CatalogMethods.createImage, request, options: RPCCallOptions(timeout: .seconds(30)))
                                acknowledged.record(request.name, answer.revision)
                                break
                            } catch let error as RPCError where error.code == .unavailable && attempts < 100 {
                                unavailable.append(Int64(index))
                                attempts += 1
                                // While the database is down, start it again after a few refusals.
                                if attempts == 3 && index == writes / 3 { try await server.startAgain() }
                                try await Task.sleep(for: .milliseconds(100))
                            }
                        }
                    }
                }
                let end = try await HACatalogs.withClient([b], pki: pki) { client in try await createImage(client, "the-end") }
                try await group.waitForAll()
                return end
            }
            #expect(!unavailable.all.isEmpty, "writes while the database was down were refused as UNAVAILABLE")
            #expect(acknowledged.names.count == writes)
            #expect(end == Int64(writes) + 1, "a refused write left nothing behind")
            #expect(seen.all == Array(1...end), "the watcher on the other catalog saw every change once, in order")
        }
    }

    @Test func clientCommandsTakeSeveralCatalogsAndUseOneThatAnswers() async throws {
        try await PostgresServer.with { server in
            let catalogs = try await HACatalogs(server: server)
            let (a, b) = (catalogs.addresses[0], catalogs.addresses[1])
            let added = try await catalogs.deployment.cli(["site", "add", "hq", "--cidr", "10.0.0.0/16"], "\(a),\(b)")
            #expect(added.status == 0, "\(added.stderr)")
            _ = try await catalogs.processes[0].stop(with: SIGKILL)
            // A dead first catalog, as a comma list and as repeated options.
            let listed = try await catalogs.deployment.cli(["site", "list", "--json"], "\(a),\(b)")
            #expect(listed.status == 0, "\(listed.stderr)")
            #expect(listed.stdout.contains("\"hq\""))
            let repeated = try await CommandRunner.run(
                ["site", "list", "--catalog", a, "--catalog", b, "--tls-dir", catalogs.deployment.pki])
            #expect(repeated.status == 0, "\(repeated.stderr)")
            #expect(repeated.stdout.contains("hq"))
            let none = try await CommandRunner.run(["site", "list", "--catalog", a, "--tls-dir", catalogs.deployment.pki])
            #expect(none.status != 0)
        }
    }
}
