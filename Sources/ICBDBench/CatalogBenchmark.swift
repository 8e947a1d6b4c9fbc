import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// `icbd bench catalog`: GetImage reads and tag-move writes per second at concurrency 32 over
/// RPC (reads next to Health/Check calls at the same concurrency, the RPC floor), and the
/// latency from a write to 200 watchers having seen it.
///
/// With `--db postgres://…` it measures the SQLite catalog first, then two catalog processes
/// (services) on that PostgreSQL database in the same run: reads and writes through one and
/// through both, and the latency from a write on one to 200 watchers on the other.
public struct CatalogBenchmark: Sendable {
    var concurrency = 32
    var calls = 5_000
    var watchers = 200
    var watchedWrites = 50
    /// A PostgreSQL catalog database to measure next to SQLite.
    var postgres: PostgresCatalogStore.Configuration?
    let logger: Logger
    /// Each run publishes its own image, so that runs on one PostgreSQL database do not collide.
    private let image = "bench-\(UUID().uuidString.prefix(8).lowercased())"

    public init(calls: Int, postgres: PostgresCatalogStore.Configuration? = nil, logger: Logger) {
        self.calls = calls
        self.postgres = postgres
        self.logger = logger
    }

    public func run() async throws -> BenchReport {
        var report = try await runSQLite()
        guard let postgres else { return report }
        report.figures = report.figures.map { $0.prefixed("sqlite: ") }
        report.figures += try await runPostgres(postgres).figures
        return report
    }

    /// Two catalog services on the PostgreSQL database: through one, through both, and Watch
    /// from one to the other.
    private func runPostgres(_ settings: PostgresCatalogStore.Configuration) async throws -> BenchReport {
        let authority = try CertificateAuthority.create(commonName: "icbd bench CA")
        func identity(_ role: Role, _ name: String) throws -> TLSIdentity {
            try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
        }
        var catalogs: [CatalogService] = []
        var stores: [PostgresCatalogStore] = []
        for name in ["bench-catalog-a", "bench-catalog-b"] {
            let store = try await PostgresCatalogStore.open(settings, logger: logger)
            stores.append(store)
            catalogs.append(
                try CatalogService(
                    configuration: CatalogConfiguration(
                        listen: HostPort(host: "127.0.0.1", port: 0), databasePath: settings.url.description,
                        tls: try identity(.catalog, name), name: name),
                    store: store, logger: logger))
        }
        let admin = try identity(.admin, "bench-admin")
        return try await BenchServices.with(logger: logger) { services in
            for service in stores.flatMap(\.services) { services.start(service) }
            for catalog in catalogs { services.start(catalog) }
            var configurations: [RPCClientConfiguration] = []
            for catalog in catalogs {
                let target = HostPort(host: "127.0.0.1", port: try await catalog.localAddress().port ?? 0)
                configurations.append(RPCClientConfiguration(target: target, expectedRole: .catalog, tls: admin))
            }
            return try await withRPCClient(configurations[0], logger: logger) { a in
                try await withRPCClient(configurations[1], logger: logger) { b in
                    try await publishTwoVersions(a)
                    var report = BenchReport(bench: "catalog")
                    report.figures += try await readsAndWrites([a]).map { $0.prefixed("pg, 1 catalog: ") }
                    report.figures += try await readsAndWrites([a, b]).map { $0.prefixed("pg, 2 catalogs: ") }
                    report.figures += try await watchLatency(a, watchersOn: configurations[1]).map {
                        $0.prefixed("pg, A→B: ")
                    }
                    return report
                }
            }
        }
    }

    private func runSQLite() async throws -> BenchReport {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-bench-catalog-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let authority = try CertificateAuthority.create(commonName: "icbd bench CA")
        func identity(_ role: Role, _ name: String) throws -> TLSIdentity {
            try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
        }
        let catalog = try CatalogService(
            configuration: CatalogConfiguration(
                listen: HostPort(host: "127.0.0.1", port: 0), databasePath: directory.appendingPathComponent("catalog.db").path,
                tls: try identity(.catalog, "bench-catalog"), name: "bench-catalog"),
            logger: logger)
        let admin = try identity(.admin, "bench-admin")
        return try await BenchServices.with(logger: logger) { services in
            services.start(catalog)
            let target = HostPort(host: "127.0.0.1", port: try await catalog.localAddress().port ?? 0)
            let configuration = RPCClientConfiguration(target: target, expectedRole: .catalog, tls: admin)
            return try await withRPCClient(configuration, logger: logger) { client in
                try await publishTwoVersions(client)
                var report = BenchReport(bench: "catalog")
                report.figures += try await readsAndWrites([client])
                report.figures += try await watchLatency(client, watchersOn: configuration)
                return report
            }
        }
    }

    private func publishTwoVersions(_ client: RPCClient) async throws {
        var create = Icbd_Catalog_V1_CreateImageRequest()
        create.name = image
        _ = try await client.unary(CatalogMethods.createImage, create)
        for number in 1...2 {
            let entries = (0..<32).map { UInt8(truncatingIfNeeded: $0 &+ number) }
            var file = Icbd_Catalog_V1_FileSpec()
            file.path = "disk.raw"
            file.size = 1 << 20
            file.chunkSize = 1 << 20
            file.manifestSha256 = Data(ChunkManifest.digest(fileSize: 1 << 20, chunkSize: 1 << 20, entries: entries))
            var version = Icbd_Catalog_V1_CreateVersionRequest()
            version.image = image
            version.btrfsUuid = UUID().uuidString.lowercased()
            version.files = [file]
            let created = try await client.unary(CatalogMethods.createVersion, version).version
            _ = try await client.clientStreaming(CatalogMethods.putManifest) { writer in
                var manifest = Icbd_Catalog_V1_PutManifestRequest()
                manifest.image = image
                manifest.version = created.number
                manifest.path = "disk.raw"
                manifest.entries = Data(entries)
                try await writer.write(manifest)
            }
            var complete = Icbd_Catalog_V1_CompleteVersionRequest()
            complete.image = image
            complete.number = created.number
            _ = try await client.unary(CatalogMethods.completeVersion, complete)
        }
    }

    private func moveTag(_ client: RPCClient, _ tag: String = "stable", to version: Int64) async throws -> Int64 {
        var move = Icbd_Catalog_V1_MoveTagRequest()
        move.image = image
        move.tag = tag
        move.version = version
        return try await client.unary(CatalogMethods.moveTag, move).revision
    }

    /// Calls per second of `call(worker, index)` on `concurrency` workers.
    private func rate(_ call: @escaping @Sendable (Int, Int) async throws -> Void) async throws -> Double {
        let perWorker = max(1, calls / concurrency)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask { for index in 0..<perWorker { try await call(worker, index) } }
            }
            try await group.waitForAll()
        }
        return Double(perWorker * concurrency) / (ContinuousClock.now - start).seconds
    }

    /// Worker N calls through `clients[N % count]`.
    private func readsAndWrites(_ clients: [RPCClient]) async throws -> [BenchFigure] {
        let get = Icbd_Catalog_V1_GetImageRequest.with { $0.name = image }
        _ = try await rate { worker, _ in _ = try await clients[worker % clients.count].unary(CatalogMethods.getImage, get) }  // warm-up
        let health = try await rate { worker, _ in
            _ = try await clients[worker % clients.count].unary(HealthMethods.check, Icbd_Rpc_V1_HealthCheckRequest())
        }
        let reads = try await rate { worker, _ in _ = try await clients[worker % clients.count].unary(CatalogMethods.getImage, get) }
        // Each worker moves its own tag between the two versions: every call commits a change.
        let writes = try await rate { worker, index in
            _ = try await moveTag(clients[worker % clients.count], "w\(worker)", to: Int64(index % 2 + 1))
        }
        return [
            BenchFigure(
                name: "GetImage reads at concurrency \(concurrency)", value: reads, unit: "calls/s",
                baseline: .init(name: "Health/Check calls at the same concurrency", value: health), ratio: reads / health),
            BenchFigure(name: "tag moves (committed writes) at concurrency \(concurrency)", value: writes, unit: "writes/s"),
        ]
    }

    /// Writes through `client`; the watchers watch through `configuration`'s catalog.
    private func watchLatency(_ client: RPCClient, watchersOn configuration: RPCClientConfiguration) async throws -> [BenchFigure] {
        let board = ArrivalBoard(watchers: watchers)
        let from = try await moveTag(client, to: 1)
        // Watchers spread over four connections, as if from several gateways and caches.
        let clients = try (0..<4).map { _ in try RPCClient(configuration: configuration, logger: logger) }
        return try await BenchServices.with(logger: logger) { services in
            for connection in clients { services.start(connection) }
            return try await watching(clients, from: from, board: board) {
                var allSeen = LatencySamples()
                var each = LatencySamples()
                for index in 0..<watchedWrites {
                    let start = ContinuousClock.now
                    // The tag is on version 1: move it to 2, back to 1, … (a move to where it is
                    // already changes nothing, and watchers would wait for a revision that never
                    // comes).
                    let revision = try await moveTag(client, to: Int64((index + 1) % 2 + 1))
                    for arrival in await board.waitForAll(revision) { each.append(max(.zero, arrival - start)) }
                    allSeen.append(ContinuousClock.now - start)
                }
                return [
                    BenchFigure(name: "write to one of \(watchers) watchers, p50", value: each.percentileMilliseconds(50), unit: "ms"),
                    BenchFigure(name: "write to one of \(watchers) watchers, p99", value: each.percentileMilliseconds(99), unit: "ms"),
                    BenchFigure(name: "write to all \(watchers) watchers, p50", value: allSeen.percentileMilliseconds(50), unit: "ms"),
                    BenchFigure(name: "write to all \(watchers) watchers, p99", value: allSeen.percentileMilliseconds(99), unit: "ms"),
                ]
            }
        }
    }

    /// Runs `body` while the watchers follow the catalog through `clients` from `from`, once all
    /// have caught up; then ends their calls (cancelled, as a client that goes away).
    private func watching<R: Sendable>(
        _ clients: [RPCClient], from: Int64, board: ArrivalBoard, _ body: () async throws -> R
    ) async throws -> R {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for watcher in 0..<watchers {
                group.addTask {
                    var request = Icbd_Catalog_V1_WatchRequest()
                    request.fromRevision = from
                    try await clients[watcher % clients.count].serverStreaming(CatalogMethods.watch, request) { responses in
                        for try await response in responses {
                            if response.caughtUp { board.caughtUp() } else { board.arrived(response.revision) }
                        }
                    }
                }
            }
            defer { group.cancelAll() }
            await board.waitUntilAllCaughtUp()
            return try await body()
        }
    }
}

extension BenchFigure {
    func prefixed(_ prefix: String) -> BenchFigure {
        var figure = self
        figure.name = prefix + name
        return figure
    }
}

/// When each watcher saw each revision; wakes the writer once all have seen one.
private final class ArrivalBoard: Sendable {
    private struct State {
        var caughtUp = 0
        var caughtUpWaiter: CheckedContinuation<Void, Never>?
        var arrivals: [Int64: [ContinuousClock.Instant]] = [:]
        var waiters: [Int64: CheckedContinuation<[ContinuousClock.Instant], Never>] = [:]
    }

    private let watchers: Int
    private let state = Mutex(State())

    init(watchers: Int) { self.watchers = watchers }

    func caughtUp() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            state.caughtUp += 1
            guard state.caughtUp == watchers else { return nil }
            defer { state.caughtUpWaiter = nil }
            return state.caughtUpWaiter
        }
        waiter?.resume()
    }

    func waitUntilAllCaughtUp() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                if state.caughtUp >= watchers { return true }
                state.caughtUpWaiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func arrived(_ revision: Int64) {
        let now = ContinuousClock.now
        let done: (CheckedContinuation<[ContinuousClock.Instant], Never>, [ContinuousClock.Instant])? = state.withLock { state in
            state.arrivals[revision, default: []].append(now)
            guard let all = state.arrivals[revision], all.count == watchers, let waiter = state.waiters.removeValue(forKey: revision)
            else { return nil }
            state.arrivals[revision] = nil
            return (waiter, all)
        }
        if let (waiter, all) = done { waiter.resume(returning: all) }
    }

    func waitForAll(_ revision: Int64) async -> [ContinuousClock.Instant] {
        await withCheckedContinuation { continuation in
            let all: [ContinuousClock.Instant]? = state.withLock { state in
                if let all = state.arrivals[revision], all.count == watchers {
                    state.arrivals[revision] = nil
                    return all
                }
                state.waiters[revision] = continuation
                return nil
            }
            if let all { continuation.resume(returning: all) }
        }
    }
}
