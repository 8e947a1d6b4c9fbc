import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func recordBoots(_ boots: [BootReport], at now: Date) async throws -> Revisioned<BootsRecorded> {
        try await commit { db, changes in
            var result = BootsRecorded()
            var rollouts: [String: RolloutRecord] = [:]
            var touched: [String] = []
            for boot in boots {
                let known = try await db.boolean(
                    "SELECT EXISTS (SELECT 1 FROM versions WHERE image = \(boot.image) AND number = \(boot.version)) AS value")
                guard known else {
                    result.ignored += 1
                    continue
                }
                try await Self.insertBoot(db, boot)
                try await Self.addToTally(db, boot)
                result.recorded += 1
                for rollout in try await Self.fetchRollouts(db, image: boot.image)
                where rollout.state == .active && rollout.toVersion == boot.version && (rollout.site == nil || rollout.site == boot.site) {
                    let key = "\(rollout.image)/\(rollout.tag)"
                    var counted = rollouts[key] ?? rollout
                    counted.progress.add(boot)
                    if rollouts[key] == nil { touched.append(key) }
                    rollouts[key] = counted
                }
            }
            try await db.execute(
                """
                DELETE FROM boots WHERE id <= (SELECT id FROM boots ORDER BY id DESC LIMIT 1 OFFSET \(BootReport.keptInAll))
                """)
            for key in touched {
                guard let counted = rollouts[key] else { continue }
                let baseline = try await Self.tally(db, image: counted.image, version: counted.fromVersion, site: counted.site)
                let decision = RolloutRules.decide(counted, baseline: baseline)
                var next = RolloutRules.applying(decision, to: counted, at: now)
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

    /// Adds `boot` to its version's tally at its site.
    static func addToTally(_ db: Transaction, _ boot: BootReport) async throws {
        var tally =
            try await db.fetchOne(
                "SELECT tally FROM version_boots WHERE image = \(boot.image) AND version = \(boot.version) AND site = \(boot.site)",
                { try CatalogRows.json($0, "tally", as: BootTally.self) }) ?? BootTally()
        tally.add(boot)
        try await db.execute(
            """
            INSERT INTO version_boots (image, version, site, tally) VALUES (\(boot.image), \(boot.version), \(boot.site), \(try CatalogRows.jsonText(tally)))
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
