import Catalog
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Synchronization
import Testing

@Suite("Catalog: PostgreSQL URLs and passwords")
struct PostgresURLTests {
    @Test func aURLNamesUserHostPortDatabaseAndTLS() throws {
        let url = try PostgresDatabaseURL(parsing: "postgres://icbd@db.example:6543/catalog?sslmode=require")
        #expect(url.user == "icbd")
        #expect(url.host == "db.example")
        #expect(url.port == 6543)
        #expect(url.database == "catalog")
        #expect(url.sslMode == .require)
        let defaults = try PostgresDatabaseURL(parsing: "postgresql://icbd@10.0.0.5/catalog")
        #expect(defaults.port == 5432)
        #expect(defaults.sslMode == .prefer)
        #expect(PostgresDatabaseURL.isPostgres("postgres://x@y/z"))
        #expect(!PostgresDatabaseURL.isPostgres("/var/lib/icbd/catalog.db"))
    }

    @Test(arguments: [
        ("postgres://icbd:secret@db/catalog", "PGPASSWORD"),
        ("postgres://db/catalog", "no user"),
        ("postgres://icbd@db", "no database"),
        ("postgres://icbd@db/catalog?sslmode=sometimes", "sslmode 'sometimes'"),
        ("postgres://icbd@db/catalog?timeout=3", "unknown parameter 'timeout'"),
    ])
    func badURLsNameTheProblem(text: String, fragment: String) {
        #expect {
            _ = try PostgresDatabaseURL(parsing: text)
        } throws: { error in
            "\(error)".contains(fragment) && !"\(error)".contains("secret")
        }
    }

    @Test func thePasswordComesFromTheFileElsePGPASSWORD() async throws {
        try await withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("password").path
            try Data("from-file\n".utf8).write(to: URL(fileURLWithPath: file))
            #expect(try PostgresPassword.resolve(file: file, environment: ["PGPASSWORD": "from-env"]) == "from-file")
            #expect(try PostgresPassword.resolve(file: nil, environment: ["PGPASSWORD": "from-env"]) == "from-env")
            #expect(try PostgresPassword.resolve(file: nil, environment: [:]) == nil)
            #expect(throws: CatalogStoreError.self) { try PostgresPassword.resolve(file: directory.appendingPathComponent("none").path) }
        }
    }
}

/// Needs PostgreSQL (always there in CI).
@Suite("Catalog: the PostgreSQL store", .requiresPostgreSQL)
struct PostgresStoreTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func name(_ text: String) throws -> Name { try Name(text) }

    @Test func aDatabaseFromANewerSchemaIsRefusedAndLeftAsItWas() async throws {
        let fixture = try await StoreFixture(.postgres)
        try await fixture.withStore { store in
            _ = try await store.createImage(name: try name("win11"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
        }
        let (server, database) = try fixture.postgresServer()
        try await server.psql("INSERT INTO icbd_migrations (id, applied_ms) VALUES ('v2-from-the-future', 0)", database: database)
        let migrations = try await server.psql("SELECT id FROM icbd_migrations ORDER BY id", database: database)
        #expect(migrations.hasPrefix("v1-catalog\n") && migrations.contains("v2-from-the-future\n"))
        await expectStoreError(.storage, mentioning: "v2-from-the-future") { _ = try await fixture.open() }
        await expectStoreError(.storage, mentioning: "newer icbd") { _ = try await fixture.open() }
        #expect(try await server.psql("SELECT id FROM icbd_migrations ORDER BY id", database: database) == migrations)
        #expect(try await server.psql("SELECT value FROM meta WHERE key = 'revision'", database: database) == "1\n")
    }

    @Test func aDatabaseThatIsNotACatalogIsRefused() async throws {
        let fixture = try await StoreFixture(.postgres)
        let (server, database) = try fixture.postgresServer()
        try await server.psql("CREATE TABLE users (name TEXT)", database: database)
        await expectStoreError(.storage, mentioning: "not an icbd catalog") { _ = try await fixture.open() }
    }

    @Test func theRevisionSurvivesReopeningAndTwoProcessesMigrateOnce() async throws {
        let fixture = try await StoreFixture(.postgres)
        // Two catalogs starting at once on an empty database: one migrates, the other waits.
        async let first = fixture.open()
        async let second = fixture.open()
        let (a, b) = try await (first, second)
        try await withRunning([a, b]) {
            _ = try await a.createImage(name: try name("win11"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
            #expect(try await b.currentRevision() == 1)
        }
        try await fixture.withStore { reopened async throws in
            #expect(try await reopened.currentRevision() == 1)
            #expect(try await reopened.createImage(name: try name("ubuntu"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now).revision == 2)
        }
    }

    @Test(arguments: 0..<3)
    func racingWritersOnTwoStoresExactlyOneWins(round: Int) async throws {
        let fixture = try await StoreFixture(.postgres)
        try await fixture.withStores(2) { stores in
            let (a, b) = (stores[0], stores[1])
            let image = try name("win11")
            _ = try await a.createImage(name: image, description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
            let site = SiteSpec(name: try name("hq"), description: "", cidrs: [try CIDR(parsing: "10.0.0.0/8")], links: [])
            let created = try await a.putSite(site, expected: .absent)
            // Eight writers, four on each store, all expecting the revision they read.
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for writer in 0..<8 {
                    let store = writer % 2 == 0 ? a : b
                    group.addTask {
                        var changed = site
                        changed.description = "writer \(writer)"
                        do {
                            _ = try await store.putSite(changed, expected: .exactly(created.revision))
                            return true
                        } catch let error as CatalogStoreError {
                            #expect(error.code == .conflict, "\(error)")
                            return false
                        } catch {
                            Issue.record("unexpected \(error)")
                            return false
                        }
                    }
                }
                var wins: [Bool] = []
                for await outcome in group { wins.append(outcome) }
                return wins
            }
            #expect(outcomes.filter { $0 }.count == 1)
            #expect(try await b.currentRevision() == created.revision.next)
            // B learns of A's commits through its follower: wait for it, then read B's log.
            _ = try await b.waitForRevision(after: created.revision)
            let changes = try await b.changes(after: 0, limit: 100)
            #expect(changes.map(\.revision) == [1, 2, 3])
        }
    }

    @Test func aStoreFollowsWritesThroughAnotherInRevisionOrderExactlyOnce() async throws {
        let fixture = try await StoreFixture(.postgres)
        try await fixture.withStores(2) { stores in
            let (a, b) = (stores[0], stores[1])
            let total = 60
            let follower = Task { () -> [Revision] in
                var seen: [Revision] = []
                var position = Revision.zero
                while seen.count < total {
                    let changes = try await b.changes(after: position, limit: 7)
                    if changes.isEmpty {
                        _ = try await b.waitForRevision(after: position)
                        continue
                    }
                    for change in changes {
                        seen.append(change.revision)
                        position = change.revision
                    }
                }
                return seen
            }
            // Writes through both stores at once: commits interleave across processes.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<2 {
                    let store = writer == 0 ? a : b
                    group.addTask {
                        for index in 0..<(total / 2) {
                            _ = try await store.createImage(
                                name: try Name("image-\(writer)-\(index)"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: Date())
                        }
                    }
                }
                try await group.waitForAll()
            }
            let seen = try await follower.value
            #expect(seen == (1...total).map { Revision(Int64($0)) })
        }
    }

    @Test func heartbeatExpiryIsDecidedOnceAcrossStores() async throws {
        let fixture = try await StoreFixture(.postgres)
        try await fixture.withStores(3) { stores in
            _ = try await stores[0].putSite(SiteSpec(name: try name("hq"), description: "", cidrs: [], links: []), expected: .absent)
            for index in 0..<5 {
                _ = try await stores[0].registerNode(
                    NodeRegistration(
                        name: try name("cache-\(index)"), role: .cache, site: try name("hq"), rpcAddress: nil, httpAddress: nil,
                        capacityBytes: 1, heartbeatTTLMilliseconds: 1000), byAdmin: true, at: now)
            }
            let before = try await stores[0].currentRevision()
            let later = now.addingTimeInterval(10)
            let expired = try await withThrowingTaskGroup(of: [NodeRecord].self) { group in
                for store in stores {
                    for _ in 0..<3 { group.addTask { try await store.markExpiredNodesDown(at: later, graceStart: now).value } }
                }
                var all: [NodeRecord] = []
                for try await nodes in group { all += nodes }
                return all
            }
            #expect(expired.map(\.name.rawValue).sorted() == (0..<5).map { "cache-\($0)" })
            #expect(try await stores[2].currentRevision() == before.next, "one revision marks them all down")
        }
    }

    @Test func callsFailUnavailableWhileTheServerIsDownAndSucceedAfterwards() async throws {
        try await PostgresServer.with { server in
            try await server.createDatabase("catalog")
            var settings = PostgresCatalogStore.Configuration(
                url: try PostgresDatabaseURL(parsing: server.url(database: "catalog")), password: PostgresServer.password)
            settings.operationTimeout = .seconds(5)
            settings.pollInterval = .milliseconds(200)
            // A loaded machine may take longer than the short bound to connect: retry the opening.
            func open() async throws -> PostgresCatalogStore {
                for _ in 0..<5 {
                    if let store = try? await PostgresCatalogStore.open(settings, logger: quietLogger()) { return store }
                }
                return try await PostgresCatalogStore.open(settings, logger: quietLogger())
            }
            let writer = try await open()
            let watcher = try await open()
            try await withRunning([writer, watcher]) {
                _ = try await writer.createImage(name: try name("before"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)

                try await server.shutDown()
                await expectStoreError(.unavailable) {
                    _ = try await writer.createImage(name: try name("during"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
                }
                await expectStoreError(.unavailable) { _ = try await watcher.currentRevision() }

                try await server.startAgain()
                // The pools reconnect by themselves; the first calls may still meet a dead connection.
                var written: Revision?
                for _ in 0..<300 where written == nil {
                    written = try? await writer.createImage(name: try name("after"), description: "", homeSite: nil, ifMissing: true, by: .admin, at: now).revision
                    if written == nil { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(written == 2, "the write that failed left nothing; the one after is revision 2")
                // The other store's watchers learn of it (LISTEN again, or the poll) without a call.
                let woken = try await watcher.waitForRevision(after: 1)
                #expect(woken == 2)
                #expect(try await watcher.changes(after: 0, limit: 10).map(\.revision) == [1, 2])
            }
        }
    }
}

extension StoreFixture {
    /// The shared server and this fixture's database on it.
    func postgresServer() throws -> (PostgresServer, String) {
        let url = try PostgresDatabaseURL(parsing: database)
        return (try #require(server), url.database)
    }
}
