import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func startRollout(_ spec: RolloutSpec, at now: Date) async throws -> Revisioned<RolloutRecord> {
        try await commit { db, changes in
            _ = try await Self.requireImage(db, spec.image)
            if let site = spec.site, !(try await Self.fetchSites(db).contains { $0.name == site }) {
                throw CatalogStoreError.notFound("no site '\(site)'")
            }
            let (from, to) = try RolloutRules.checkStart(
                spec, tag: try await Self.fetchTag(db, image: spec.image, name: spec.tag),
                version: try await Self.fetchVersion(db, image: spec.image, number: spec.version),
                running: try await Self.fetchRollout(db, image: spec.image, tag: spec.tag))
            let rollout = RolloutRecord(
                image: spec.image, tag: spec.tag, id: changes.revision.rawValue, fromVersion: from, toVersion: to, site: spec.site,
                steps: spec.steps, step: 0, state: .active, criteria: spec.criteria,
                detail: "started at step 1 (\(RolloutRecord.percent(spec.steps[0])))", started: now, updated: now, progress: BootTally(),
                revision: changes.revision)
            try await Self.writeRollout(db, rollout)
            changes.put(.rollout(rollout))
            return rollout
        }
    }

    public func controlRollout(image: Name, tag: Name, _ control: RolloutRules.Control, at now: Date) async throws
        -> Revisioned<RolloutRecord>
    {
        try await commit { db, changes in
            guard let current = try await Self.fetchRollout(db, image: image, tag: tag) else {
                throw CatalogStoreError.notFound("tag '\(tag)' of image '\(image)' has no rollout")
            }
            var next = try RolloutRules.apply(control, to: current, at: now)
            guard next != current else { return current }
            next.revision = changes.revision
            try await Self.writeRollout(db, next)
            changes.put(.rollout(next))
            return next
        }
    }

    public func listRollouts() async throws -> Revisioned<[RolloutRecord]> {
        try await readRevisioned { db in
            try await db.fetchAll("SELECT * FROM rollouts ORDER BY image, tag", CatalogRows.rollout)
        }
    }

    // MARK: Shared

    static func fetchRollout(_ db: Transaction, image: Name, tag: Name) async throws -> RolloutRecord? {
        try await db.fetchOne("SELECT * FROM rollouts WHERE image = \(image) AND tag = \(tag)", CatalogRows.rollout)
    }

    static func fetchRollouts(_ db: Transaction, image: Name) async throws -> [RolloutRecord] {
        try await db.fetchAll("SELECT * FROM rollouts WHERE image = \(image) ORDER BY tag", CatalogRows.rollout)
    }

    /// The running rollout of `tag`, which keeps the tag where it is; nil when none runs.
    static func runningRollout(_ db: Transaction, image: Name, tag: Name) async throws -> RolloutRecord? {
        guard let rollout = try await fetchRollout(db, image: image, tag: tag), rollout.state.isRunning else { return nil }
        return rollout
    }

    /// Creates or replaces the rollout of its tag, whole.
    static func writeRollout(_ db: Transaction, _ rollout: RolloutRecord) async throws {
        let steps = try CatalogRows.jsonText(rollout.steps)
        let criteria = try CatalogRows.jsonText(rollout.criteria)
        let progress = try CatalogRows.jsonText(rollout.progress)
        try await db.execute(
            """
            INSERT INTO rollouts (image, tag, id, from_version, to_version, site, steps, step, state, criteria, detail,
                                  started_ms, updated_ms, progress, revision)
            VALUES (\(rollout.image), \(rollout.tag), \(rollout.id), \(rollout.fromVersion), \(rollout.toVersion), \(rollout.site),
                    \(steps), \(rollout.step), \(rollout.state), \(criteria), \(rollout.detail), \(rollout.started), \(rollout.updated),
                    \(progress), \(rollout.revision))
            ON CONFLICT (image, tag) DO UPDATE SET
              id = excluded.id, from_version = excluded.from_version, to_version = excluded.to_version, site = excluded.site,
              steps = excluded.steps, step = excluded.step, state = excluded.state, criteria = excluded.criteria,
              detail = excluded.detail, started_ms = excluded.started_ms, updated_ms = excluded.updated_ms,
              progress = excluded.progress, revision = excluded.revision
            """)
    }
}
