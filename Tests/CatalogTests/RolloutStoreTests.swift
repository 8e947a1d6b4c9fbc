import Catalog
import Foundation
import ICBDCore
import ICBDTestSupport
import Testing

/// Staged rollouts and boot reports in the store, on both stores (docs/catalog.md "Rollouts").
@Suite("Catalog: rollouts and boots in the store (SQLite, and PostgreSQL where installed)")
struct RolloutStoreTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func name(_ text: String) throws -> Name { try Name(text) }

    /// Image `linux` with versions 1 and 2 ready, tag `stable` on 1, site `hq`.
    func prepare(_ store: any CatalogStore) async throws {
        let image = try name("linux")
        _ = try await store.createImage(name: image, description: "", homeSite: nil, ifMissing: true, by: .admin, at: now)
        for _ in 1...2 {
            let file = TestFile(path: "disk.raw", size: 3 << 20)
            let version = try await store.createVersion(
                NewVersion(image: image, number: nil, parent: nil, btrfsUUID: "uuid", files: [try file.domainSpec()], publishedBy: "repo1"),
                by: .admin, at: now)
            _ = try await store.storeManifest(
                ManifestLocator(image: image, version: version.value.number, path: try VersionFilePath(file.path)),
                entries: pieces(file.entries), by: .admin, at: now)
            _ = try await store.completeVersion(image: image, number: version.value.number, by: .admin, at: now)
        }
        _ = try await store.moveTag(image: image, tag: try name("stable"), version: 1, expected: .any)
        _ = try await store.putSite(SiteSpec(name: try name("hq"), description: "", cidrs: [], links: []), expected: .any)
    }

    func spec(steps: [Int] = [500, 2500, 10_000], site: String? = nil, minimumBoots: Int64 = 2) throws -> RolloutSpec {
        RolloutSpec(
            image: try name("linux"), tag: try name("stable"), version: 2, steps: steps, site: try site.map(name),
            criteria: RolloutCriteria(minimumBoots: minimumBoots, maximumFailureRate: 0.1, maximumSlowdown: 1.5))
    }

    func boot(_ mac: Int, version: Int64, _ outcome: BootReport.Outcome = .booted, up: Int64 = 10_000) throws -> BootReport {
        BootReport(
            mac: try MACAddress(parsing: String(format: "52:54:00:00:%02x:%02x", mac >> 8, mac & 0xff)), site: try name("hq"),
            gateway: try name("gw-hq"), image: try name("linux"), version: version, outcome: outcome,
            failure: outcome == .failed ? "not_loaded" : nil, started: now, loadedMilliseconds: outcome == .failed ? nil : 2000,
            upMilliseconds: outcome.cameUp ? up : nil, bytesRead: 1 << 20, diskReads: 8, errors: 0, unavailable: 0)
    }

    @Test(arguments: StoreKind.available)
    func aRolloutAdvancesOnHealthyBootsAndCompletesByMovingTheTag(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.withStore { store in
            try await prepare(store)
            let started = try await store.startRollout(try spec(), at: now)
            #expect(started.value.id == started.revision.rawValue)
            #expect(started.value.fromVersion == 1 && started.value.toVersion == 2 && started.value.state == .active && started.value.step == 0)
            #expect(try await store.changes(after: Revision(started.revision.rawValue - 1), limit: 10).first?.events == [CatalogEvent(.put, .rollout(started.value))])

            // While it runs: one rollout per tag, the tag moves only by it, neither version retires.
            await expectStoreError(.failedPrecondition, mentioning: "abort it first") { _ = try await store.startRollout(try spec(), at: now) }
            await expectStoreError(.failedPrecondition, mentioning: "in a rollout") {
                _ = try await store.moveTag(image: try name("linux"), tag: try name("stable"), version: 2, expected: .any)
            }
            for version: Int64 in [1, 2] {
                await expectStoreError(.failedPrecondition, mentioning: "icbd rollout abort linux stable") {
                    _ = try await store.retireVersion(image: try name("linux"), number: version, expected: .any, at: now)
                }
            }

            // The old version's boots: the baseline. A boot of an unknown version is ignored.
            let baseline = try await store.recordBoots([try boot(1, version: 1), try boot(2, version: 1), try boot(3, version: 9)], at: now)
            #expect(baseline.value.recorded == 2 && baseline.value.ignored == 1 && baseline.value.decided.isEmpty)
            #expect(baseline.revision == started.revision, "boots are not changes")

            // One healthy boot of the new version: below min-boots, progress only, no revision.
            let first = try await store.recordBoots([try boot(10, version: 2, up: 11_000)], at: now)
            #expect(first.value.decided.isEmpty && first.revision == started.revision)
            #expect(try await store.listRollouts().value.first?.progress.boots == 1)

            // The second: the step met the criteria, the slice grows to 25 %.
            let second = try await store.recordBoots([try boot(11, version: 2, up: 12_000)], at: now)
            #expect(second.revision.rawValue == started.revision.rawValue + 1)
            #expect(second.value.decided.map(\.step) == [1])
            #expect(second.value.decided.first?.progress == BootTally(), "a new step counts from zero")

            // Two more, twice: step 3, then completed with the tag on version 2, in one revision.
            _ = try await store.recordBoots([try boot(12, version: 2), try boot(13, version: 2)], at: now)
            let last = try await store.recordBoots([try boot(14, version: 2), try boot(15, version: 2)], at: now)
            #expect(last.value.decided.map(\.state) == [.completed])
            let events = try await store.changes(after: Revision(last.revision.rawValue - 1), limit: 10).first?.events ?? []
            #expect(events.map(\.entity.kind) == [.rollout, .tag])
            let image = try await store.image(try name("linux")).value
            #expect(image.tags.first { $0.name.rawValue == "stable" }?.version == 2)
            #expect(image.rollouts.map(\.state) == [.completed])

            // Finished: the tag moves again, version 1 may retire.
            _ = try await store.retireVersion(image: try name("linux"), number: 1, expected: .any, at: now)
        }
    }

    @Test(arguments: StoreKind.available)
    func aRolloutRollsBackWhenItsSliceFailsAndOperatorsPauseResumeAndAbort(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.withStore { store in
            try await prepare(store)
            let first = try await store.startRollout(try spec(site: "hq"), at: now)
            _ = try await store.recordBoots([try boot(1, version: 1), try boot(2, version: 1)], at: now)
            let failed = try await store.recordBoots([try boot(10, version: 2, .failed), try boot(11, version: 2)], at: now)
            let rolledBack = try #require(failed.value.decided.first)
            #expect(rolledBack.state == .rolledBack)
            #expect(rolledBack.detail.contains("1 of 2 boots of version 2 failed (50.0 %)"), "\(rolledBack.detail)")
            #expect(try await store.image(try name("linux")).value.tags.first { $0.name.rawValue == "stable" }?.version == 1)
            await expectStoreError(.failedPrecondition, mentioning: "rolled_back") {
                _ = try await store.controlRollout(image: try name("linux"), tag: try name("stable"), .resume, at: now)
            }

            // A new rollout replaces the finished one, with a new id (new slices).
            let second = try await store.startRollout(try spec(), at: now)
            #expect(second.value.id != first.value.id)
            #expect(try await store.listRollouts().value.count == 1)
            let paused = try await store.controlRollout(image: try name("linux"), tag: try name("stable"), .pause, at: now)
            #expect(paused.value.state == .paused && paused.revision.rawValue == second.revision.rawValue + 1)
            // Paused: boots are kept, the step is not judged.
            #expect(try await store.recordBoots([try boot(20, version: 2), try boot(21, version: 2)], at: now).value.decided.isEmpty)
            #expect(try await store.controlRollout(image: try name("linux"), tag: try name("stable"), .resume, at: now).value.state == .active)
            let aborted = try await store.controlRollout(image: try name("linux"), tag: try name("stable"), .abort, at: now)
            #expect(aborted.value.state == .aborted && aborted.value.detail.contains("every workstation boots version 1"))
            await expectStoreError(.notFound, mentioning: "no rollout") {
                _ = try await store.controlRollout(image: try name("linux"), tag: try name("beta"), .pause, at: now)
            }
            await expectStoreError(.invalidArgument, mentioning: "last step must be 100 %") {
                _ = try await store.startRollout(try spec(steps: [500, 2500]), at: now)
            }
            await expectStoreError(.invalidArgument, mentioning: "cannot be rolled out") {
                var latest = try spec()
                latest.tag = Name.latestTag
                _ = try await store.startRollout(latest, at: now)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func bootsAreKeptBoundedPerWorkstationAndListedNewestFirst(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.withStore { store in
            try await prepare(store)
            var many: [BootReport] = []
            for index in 0..<(BootReport.keptPerWorkstation + 5) {
                var report = try boot(1, version: 1)
                report.diskReads = Int64(index)
                many.append(report)
            }
            _ = try await store.recordBoots(many + [try boot(2, version: 2, .failed)], at: now)
            let listed = try await store.listBoots(site: nil, image: nil, limit: 1000).value
            #expect(listed.count == BootReport.keptPerWorkstation + 1)
            #expect(listed.first?.outcome == .failed, "newest first")
            #expect(listed.filter { $0.mac.description == "52:54:00:00:00:01" }.map(\.diskReads) == Array((5..<15).reversed()).map(Int64.init))
            #expect(try await store.listBoots(site: try name("hq"), image: try name("linux"), limit: 3).value.count == 3)
            #expect(try await store.listBoots(site: try name("branch"), image: nil, limit: 100).value.isEmpty)
        }
    }
}
