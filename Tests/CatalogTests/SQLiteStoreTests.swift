import Catalog
import Foundation
import GRDB
import ICBDCore
import ICBDRPC
import ICBDTestSupport
import Testing

/// The entries of `bytes`, in pieces of `size` bytes, as an upload delivers them.
func pieces(_ bytes: [UInt8], size: Int = 32 * 1000) -> AsyncThrowingStream<[UInt8], any Error> {
    AsyncThrowingStream { continuation in
        var offset = 0
        while offset < bytes.count {
            continuation.yield(Array(bytes[offset..<min(offset + size, bytes.count)]))
            offset += size
        }
        continuation.finish()
    }
}

@Suite("Catalog: the store (SQLite, and PostgreSQL where the tests take a store kind)")
final class SQLiteStoreTests: Sendable {
    /// This test's own directory (one suite instance per test), removed when the test is done.
    let directory: URL
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws {
        directory = try temporaryDirectory()
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    var path: String { directory.appendingPathComponent("catalog.db").path }

    func open() throws -> SQLiteCatalogStore {
        try SQLiteCatalogStore(path: path, logger: quietLogger())
    }

    func name(_ text: String) throws -> Name { try Name(text) }

    /// Creates image `image` with version `number` made ready (one file, manifest stored).
    @discardableResult
    func readyVersion(_ store: any CatalogStore, _ image: String, file: TestFile = TestFile(path: "disk.raw", size: 3 << 20)) async throws
        -> VersionRecord
    {
        _ = try await store.createImage(name: try name(image), description: "", homeSite: nil, ifMissing: true, by: .admin, at: now)
        let version = try await store.createVersion(
            NewVersion(image: try name(image), number: nil, parent: nil, btrfsUUID: "uuid", files: [try file.domainSpec()], publishedBy: "repo1"),
            by: .admin, at: now)
        _ = try await store.storeManifest(
            ManifestLocator(image: try name(image), version: version.value.number, path: try VersionFilePath(file.path)),
            entries: pieces(file.entries), by: .admin, at: now)
        return try await store.completeVersion(image: try name(image), number: version.value.number, by: .admin, at: now).value.0
    }

    @Test(arguments: StoreKind.available)
    func everyChangeBumpsOneRevisionAndANoOpBumpsNothing(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.withStore { store in
            #expect(try await store.currentRevision() == 0)
            let created = try await store.createImage(name: try name("win11"), description: "Windows 11", homeSite: nil, ifMissing: false, by: .admin, at: now)
            #expect(created.revision == 1)
            #expect(created.value.created)
            let again = try await store.createImage(name: try name("win11"), description: "", homeSite: nil, ifMissing: true, by: .admin, at: now)
            #expect(again.revision == 1)
            #expect(!again.value.created)
            await expectStoreError(.alreadyExists, mentioning: "win11") {
                _ = try await store.createImage(name: try name("win11"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
            }
            let site = SiteSpec(name: try name("hq"), description: "", cidrs: [try CIDR(parsing: "10.0.0.0/8")], links: [])
            #expect(try await store.putSite(site, expected: .absent).revision == 2)
            #expect(try await store.putSite(site, expected: .any).revision == 2)  // unchanged: no change
            let changes = try await store.changes(after: 0, limit: 100)
            #expect(changes.map(\.revision) == [1, 2])
            #expect(changes[0].events == [CatalogEvent(.put, .image(created.value.0))])
        }
    }

    @Test(arguments: StoreKind.available)
    func latestFollowsEachNewReadyVersionAndRetireFallsBack(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.withStore { store in
            let image = try name("win11")
            try await readyVersion(store, "win11")
            try await readyVersion(store, "win11")
            var detail = try await store.image(image).value
            #expect(detail.versions.map(\.number) == [1, 2])
            #expect(detail.versions.allSatisfy { $0.state == .ready && $0.files.allSatisfy(\.manifestStored) })
            #expect(detail.tags.first { $0.name == Name.latestTag }?.version == 2)

            // A tag moved by hand, then a rollback of latest: both stay until told otherwise.
            _ = try await store.moveTag(image: image, tag: try name("stable"), version: 1, expected: .absent)
            _ = try await store.moveTag(image: image, tag: Name.latestTag, version: 1, expected: .any)
            try await readyVersion(store, "win11")
            detail = try await store.image(image).value
            #expect(detail.tags.map { "\($0.name)=\($0.version)" } == ["latest=3", "stable=1"])

            // Retiring what latest points to moves latest back to the newest other ready version.
            _ = try await store.retireVersion(image: image, number: 3, expected: .any, at: now)
            detail = try await store.image(image).value
            #expect(detail.tags.map { "\($0.name)=\($0.version)" } == ["latest=2", "stable=1"])
            #expect(detail.versions.last?.state == .retired)

            // A tag on a retired version is refused; so is retiring a version a tag names.
            await expectStoreError(.failedPrecondition, mentioning: "retired") {
                _ = try await store.moveTag(image: image, tag: try name("stable"), version: 3, expected: .any)
            }
            await expectStoreError(.failedPrecondition, mentioning: "tag 'stable'") {
                _ = try await store.retireVersion(image: image, number: 1, expected: .any, at: now)
            }
            await expectStoreError(.notFound, mentioning: "no version 9") {
                _ = try await store.moveTag(image: image, tag: try name("stable"), version: 9, expected: .any)
            }
            await expectStoreError(.invalidArgument, mentioning: "all digits") {
                _ = try await store.moveTag(image: image, tag: try name("42"), version: 1, expected: .any)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func listingsPageThroughImagesWithTheirTagsAndCounts(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.withStore { store in
            for image in ["e", "a", "d", "c", "b"] {
                _ = try await store.createImage(name: try name(image), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
            }
            try await readyVersion(store, "b")
            try await readyVersion(store, "b")
            try await readyVersion(store, "d")
            var pages: [[String]] = []
            var after: Name? = nil
            var summaries: [ImageSummary] = []
            repeat {
                let page = try await store.listImages(after: after, limit: 2).value
                pages.append(page.items.map(\.image.name.rawValue))
                summaries += page.items
                after = try page.next.map { try Name($0) }
            } while after != nil
            #expect(pages == [["a", "b"], ["c", "d"], ["e"]])
            #expect(summaries.map { $0.versionCount } == [0, 2, 0, 1, 0])
            #expect(summaries.map { $0.newestVersion } == [nil, 2, nil, 1, nil])
            #expect(summaries.map { $0.tags.map { "\($0.name)=\($0.version)" } } == [[], ["latest=2"], [], ["latest=1"], []])
        }
    }

    @Test(arguments: StoreKind.available)
    func failedWritesLeaveNothingHalfWritten(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.withStore { store in
            let image = try name("win11")
            try await readyVersion(store, "win11")
            let before = try await store.currentRevision()

            let file = TestFile(path: "disk.raw", size: 2 << 20)
            await expectStoreError(.invalidArgument, mentioning: "must be an older version, not 7") {
                _ = try await store.createVersion(
                    NewVersion(image: image, number: 2, parent: 7, btrfsUUID: "u", files: [try file.domainSpec()], publishedBy: "r"), by: .admin, at: now)
            }
            #expect(try await store.image(image).value.versions.count == 1)
            #expect(try await store.currentRevision() == before)

            // A manifest that does not hash to the declared digest is not stored and the version
            // cannot become ready.
            let version = try await store.createVersion(
                NewVersion(image: image, number: 2, parent: 1, btrfsUUID: "u", files: [try file.domainSpec()], publishedBy: "r"), by: .admin, at: now)
            let locator = ManifestLocator(image: image, version: 2, path: try VersionFilePath("disk.raw"))
            var wrong = file.entries
            wrong[5] ^= 0xff
            await expectStoreError(.invalidArgument, mentioning: "hashes to") {
                _ = try await store.storeManifest(locator, entries: pieces(wrong), by: .admin, at: now)
            }
            await expectStoreError(.invalidArgument, mentioning: "has 1 entries") {
                _ = try await store.storeManifest(locator, entries: pieces(Array(file.entries[0..<32])), by: .admin, at: now)
            }
            #expect(try await store.currentRevision() == version.revision)
            await expectStoreError(.failedPrecondition, mentioning: "has no manifest yet") {
                _ = try await store.completeVersion(image: image, number: 2, by: .admin, at: now)
            }
            await expectStoreError(.failedPrecondition, mentioning: "still publishing") {
                _ = try await store.manifestFile(locator)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func largeManifestsArePagedAndReadBackExactly(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.withStore { store in
            // 20 GiB at 1 MiB: 20,480 entries, five pages.
            let file = TestFile(path: "disk.raw", size: 20 << 30)
            let version = try await readyVersion(store, "big", file: file)
            let locator = ManifestLocator(image: try name("big"), version: version.number, path: try VersionFilePath("disk.raw"))
            let (stored, pages) = try await store.manifestFile(locator)
            #expect(stored.chunkCount == 20_480)
            #expect(pages == 5)
            var entries: [UInt8] = []
            for index in 0..<pages { entries += try await store.manifestPage(locator, index: index) }
            #expect(entries == file.entries)
            #expect(ChunkManifest.digest(fileSize: stored.size, chunkSize: stored.chunkSize, entries: entries) == stored.manifestDigest)
        }
    }

    /// A write whose caller is cancelled mid-way either commits or leaves nothing, and never
    /// leaves the database locked: another connection to the file (a second catalog process)
    /// can write at once after each such write.
    @Test func cancelledWritesNeverLeaveTheDatabaseLocked() async throws {
        let store = try open()
        defer { try? store.close() }
        var other = GRDB.Configuration()
        other.busyMode = .immediateError
        let neighbour = try DatabaseQueue(path: path, configuration: other)
        defer { try? neighbour.close() }
        var committed = 0
        for round in 0..<200 {
            let write = Task {
                try await store.createImage(
                    name: try Name("image-\(round)"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
            }
            // Cancelled anywhere from before its BEGIN to after its COMMIT.
            for _ in 0..<(round % 40) { await Task.yield() }
            write.cancel()
            if (try? await write.value) != nil { committed += 1 }
            try await neighbour.writeWithoutTransaction { db in
                try db.execute(sql: "BEGIN IMMEDIATE")
                try db.execute(sql: "ROLLBACK")
            }
        }
        // What committed is there, what did not is not.
        let images = try await store.listImages(after: nil, limit: 1000).value.items.map(\.image.name.rawValue)
        #expect(images.count == committed, "\(committed) writes returned, \(images.count) images stored")
    }

    @Test func theRevisionSurvivesReopeningAndNeverGoesBack() async throws {
        var store = try open()
        try await readyVersion(store, "win11")
        let revision = try await store.currentRevision()
        try store.close()
        store = try open()
        #expect(try await store.currentRevision() == revision)
        #expect(try await store.integrityCheck() == ["ok"])
        let next = try await store.createImage(name: try name("ubuntu"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
        #expect(next.revision == revision.next)
        let journal = try await DatabaseQueue(path: path).read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
    }

    @Test func aDatabaseFromANewerSchemaIsRefusedAndLeftAsItWas() async throws {
        let store = try open()
        _ = try await store.createImage(name: try name("win11"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
        try store.close()
        // What a newer icbd would leave behind: a migration this code does not know.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v2-from-the-future')")
            try db.execute(sql: "CREATE TABLE future_things (id INTEGER PRIMARY KEY)")
        }
        try queue.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        do {
            _ = try open()
            Issue.record("a newer schema was opened")
        } catch let error as CatalogStoreError {
            #expect(error.code == .storage)
            #expect(error.message.contains("newer icbd"), "\(error)")
            #expect(error.message.contains("v2-from-the-future"), "\(error)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        let identifiers = try await DatabaseQueue(path: path).read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid")
        }
        #expect(identifiers.first == "v1-catalog")
        #expect(identifiers.last == "v2-from-the-future")
    }

    @Test func aFileThatIsNotACatalogIsRefused() async throws {
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in try db.execute(sql: "CREATE TABLE users (name TEXT)") }
        try queue.close()
        await expectStoreError(.storage, mentioning: "not an icbd catalog") { _ = try open() }
        try Data("this is not a database, it is a text file, long enough to have a header .......".utf8)
            .write(to: directory.appendingPathComponent("text.db"))
        do {
            _ = try SQLiteCatalogStore(path: directory.appendingPathComponent("text.db").path, logger: quietLogger())
            Issue.record("a text file was opened as a catalog")
        } catch let error as CatalogStoreError {
            #expect(error.code == .storage)
        }
    }

    @Test(arguments: StoreKind.available)
    func compactedRevisionsAskTheWatcherToListAgain(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.withStore { store in
            for index in 0..<10 {
                _ = try await store.createImage(name: try name("image-\(index)"), description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
            }
        }
        // A fresh store reads the log from disk, not from memory.
        try await fixture.withStore { reopened async throws in
            #expect(try await reopened.compactChanges(retaining: 4) == 6)
            #expect(try await reopened.changes(after: 6, limit: 100).map(\.revision) == [7, 8, 9, 10])
            let error = await expectStoreError(.compacted, mentioning: "list again") {
                _ = try await reopened.changes(after: 5, limit: 100)
            }
            #expect(error?.rpcError.code == .failedPrecondition)
            #expect(error?.rpcError.details["reason"] == "compacted")
        }
    }

    @Test(arguments: StoreKind.available)
    func sitesOwnDisjointRangesAndLinkOnlyToKnownSites(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.withStore { store in
            func site(_ name: String, _ cidrs: [String], links: [String] = []) throws -> SiteSpec {
                SiteSpec(
                    name: try Name(name), description: "", cidrs: try cidrs.map(CIDR.init(parsing:)),
                    links: try links.map { SiteLink(site: try Name($0), rateBytesPerSecond: 0) })
            }
            _ = try await store.putSite(try site("hq", ["10.0.0.0/16", "2001:db8::/48"]), expected: .absent)
            await expectStoreError(.failedPrecondition, mentioning: "overlaps 10.0.0.0/16 of site 'hq'") {
                _ = try await store.putSite(try site("branch", ["10.0.5.0/24"]), expected: .absent)
            }
            await expectStoreError(.failedPrecondition, mentioning: "2001:db8::/48") {
                _ = try await store.putSite(try site("branch", ["2001:db8::/32"]), expected: .absent)
            }
            await expectStoreError(.notFound, mentioning: "unknown site 'nowhere'") {
                _ = try await store.putSite(try site("branch", ["10.1.0.0/16"], links: ["nowhere"]), expected: .absent)
            }
            _ = try await store.putSite(try site("branch", ["10.1.0.0/16"], links: ["hq"]), expected: .absent)
            await expectStoreError(.failedPrecondition, mentioning: "links to site 'hq'") {
                _ = try await store.deleteSite(try Name("hq"), expected: .any)
            }
            #expect(try await store.listSites().value.map(\.name.rawValue) == ["branch", "hq"])
        }
    }
}
