import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func recordBoots(_ boots: [BootReport], at now: Date) async throws -> Revisioned<BootsRecorded> {
        try await commit { db, changes in
            var result = BootsRecorded()
            // Looked up once per image (and version) of the report, added up once per version
            // and site: a report of 256 boots holds the writers' lock for few statements.
            var known: [VersionKey: Bool] = [:]
            var rolloutsOfImage: [Name: [RolloutRecord]] = [:]
            var tallies: [TallyKey: BootTally] = [:]
            var counted: [String: RolloutRecord] = [:]
            var touched: [String] = []
            for boot in boots {
                let version = VersionKey(image: boot.image, number: boot.version)
                if known[version] == nil {
                    known[version] = try await db.boolean(
                        "SELECT EXISTS (SELECT 1 FROM versions WHERE image = \(boot.image) AND number = \(boot.version)) AS value")
                }
                guard known[version] == true else {
                    result.ignored += 1
                    continue
                }
                try await Self.insertBoot(db, boot)
                tallies[TallyKey(version: version, site: boot.site), default: BootTally()].add(boot)
                result.recorded += 1
                if rolloutsOfImage[boot.image] == nil { rolloutsOfImage[boot.image] = try await Self.fetchRollouts(db, image: boot.image) }
                for rollout in rolloutsOfImage[boot.image] ?? []
                where rollout.state == .active && rollout.toVersion == boot.version && (rollout.site == nil || rollout.site == boot.site) {
                    let key = "\(rollout.image)/\(rollout.tag)"
                    if counted[key] == nil { touched.append(key) }
                    counted[key, default: rollout].progress.add(boot)
                }
            }
            for (key, tally) in tallies { try await Self.addToTally(db, key, tally) }
            try await db.execute(
                """
                DELETE FROM boots WHERE id <= (SELECT id FROM boots ORDER BY id DESC LIMIT 1 OFFSET \(BootReport.keptInAll))
                """)
            for key in touched {
                guard let rollout = counted[key] else { continue }
                let baseline = try await Self.tally(db, image: rollout.image, version: rollout.fromVersion, site: rollout.site)
                let decision = RolloutRules.decide(rollout, baseline: baseline)
                var next = RolloutRules.applying(decision, to: rollout, at: now)
                if decision == .wait {
                    // Progress only: kept without a revision, like a heartbeat's time.
                    try await db.execute(
                        """
                        UPDATE rollouts SET progress = \(try CatalogRows.jsonText(next.progress))
                        WHERE image = \(next.image) AND tag = \(next.tag)
                        """)
                    continue
                }
                next.revision = changes.revision
                try await Self.writeRollout(db, next)
                changes.put(.rollout(next))
                if next.state == .completed {
                    changes.put(.tag(try await Self.writeTag(db, image: next.image, name: next.tag, version: next.toVersion, revision: changes.revision)))
                }
                result.decided.append(next)
            }
            return result
        }
    }

    public func listBoots(site: Name?, image: Name?, limit: Int) async throws -> Revisioned<[BootReport]> {
        try await readRevisioned { db in
            try await db.fetchAll(
                """
                SELECT * FROM boots
                WHERE (CAST(\(site) AS TEXT) IS NULL OR site = \(site)) AND (CAST(\(image) AS TEXT) IS NULL OR image = \(image))
                ORDER BY id DESC LIMIT \(limit)
                """, CatalogRows.boot)
        }
    }

    // MARK: Shared

    /// Keeps `boot`, and only the last ``BootReport/keptPerWorkstation`` of its workstation.
    static func insertBoot(_ db: Transaction, _ boot: BootReport) async throws {
        let mac = boot.mac.description
        try await db.execute(
            """
            INSERT INTO boots (mac, site, gateway, image, version, outcome, failure, started_ms, loaded_ms, up_ms,
                               bytes_read, disk_reads, errors, unavailable)
            VALUES (\(mac), \(boot.site), \(boot.gateway), \(boot.image), \(boot.version), \(boot.outcome), \(boot.failure),
                    \(boot.started), \(boot.loadedMilliseconds), \(boot.upMilliseconds), \(boot.bytesRead), \(boot.diskReads),
                    \(boot.errors), \(boot.unavailable))
            """)
        try await db.execute(
            """
            DELETE FROM boots WHERE mac = \(mac) AND id <= (
              SELECT id FROM boots WHERE mac = \(mac) ORDER BY id DESC LIMIT 1 OFFSET \(BootReport.keptPerWorkstation))
            """)
    }

    /// Adds `tally` to its version's tally at its site.
    static func addToTally(_ db: Transaction, _ key: TallyKey, _ tally: BootTally) async throws {
        let image = key.version.image
        let version = key.version.number
        var total =
            try await db.fetchOne(
                "SELECT tally FROM version_boots WHERE image = \(image) AND version = \(version) AND site = \(key.site)",
                { try CatalogRows.json($0, "tally", as: BootTally.self) }) ?? BootTally()
        total.add(tally)
        try await db.execute(
            """
            INSERT INTO version_boots (image, version, site, tally) VALUES (\(image), \(version), \(key.site), \(try CatalogRows.jsonText(total)))
            ON CONFLICT (image, version, site) DO UPDATE SET tally = excluded.tally
            """)
    }

    /// Every boot of `version` of `image` added up, at `site` or (nil) at every site.
    static func tally(_ db: Transaction, image: Name, version: Int64, site: Name?) async throws -> BootTally {
        let tallies = try await db.fetchAll(
            """
            SELECT tally FROM version_boots
            WHERE image = \(image) AND version = \(version) AND (CAST(\(site) AS TEXT) IS NULL OR site = \(site))
            """, { try CatalogRows.json($0, "tally", as: BootTally.self) })
        return tallies.reduce(into: BootTally()) { $0.add($1) }
    }
}

/// A version of an image, within one report.
struct VersionKey: Hashable, Sendable {
    let image: Name
    let number: Int64
}

/// The tally of a version at a site.
struct TallyKey: Hashable, Sendable {
    let version: VersionKey
    let site: Name
}
