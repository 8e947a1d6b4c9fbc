import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func listNodes(_ filter: NodeFilter) async throws -> Revisioned<[NodeRecord]> {
        try await readRevisioned { db in
            // CAST: PostgreSQL must know the type of a NULL parameter.
            try await db.fetchAll(
                """
                SELECT * FROM nodes WHERE (CAST(\(filter.site) AS TEXT) IS NULL OR site = \(filter.site)) AND (CAST(\(filter.role) AS TEXT) IS NULL OR role = \(filter.role))
                ORDER BY site, role, name
                """, CatalogRows.node)
        }
    }

    public func registerNode(_ registration: NodeRegistration, byAdmin: Bool, at now: Date) async throws -> Revisioned<NodeRecord> {
        try await commit { db, changes in
            guard try await Self.siteExists(db, registration.site) else {
                throw CatalogStoreError.notFound("site '\(registration.site)' does not exist; add it with `icbd site add` first")
            }
            let current = try await Self.fetchNode(db, registration.name)
            if let current, current.role != registration.role {
                throw CatalogStoreError.precondition(
                    "node '\(registration.name)' is registered as a \(current.role) node; a node's role cannot change (delete the node first)")
            }
            try CatalogRules.checkSiteMove(current, to: registration.site, byAdmin: byAdmin)
            let node = NodeRecord(
                name: registration.name, role: registration.role, site: registration.site, rpcAddress: registration.rpcAddress,
                httpAddress: registration.httpAddress, capacityBytes: registration.capacityBytes,
                heartbeatTTLMilliseconds: registration.heartbeatTTLMilliseconds, lastHeartbeat: now,
                state: current.map { CatalogRules.stateAfterHeartbeat($0.state) } ?? .up, revision: changes.revision)
            if let current, Self.sameRegistration(current, node) {
                try await Self.recordHeartbeat(db, registration.name, at: now)
                var same = current
                same.lastHeartbeat = now
                return same
            }
            try await db.execute(
                """
                INSERT INTO nodes (name, role, site, rpc_address, http_address, capacity_bytes, heartbeat_ttl_ms,
                  last_heartbeat_ms, state, revision)
                VALUES (\(node.name), \(node.role), \(node.site), \(node.rpcAddress?.description), \(node.httpAddress?.description),
                  \(node.capacityBytes), \(node.heartbeatTTLMilliseconds), \(now), \(node.state), \(node.revision))
                ON CONFLICT (name) DO UPDATE SET site = excluded.site, rpc_address = excluded.rpc_address,
                  http_address = excluded.http_address, capacity_bytes = excluded.capacity_bytes,
                  heartbeat_ttl_ms = excluded.heartbeat_ttl_ms, last_heartbeat_ms = excluded.last_heartbeat_ms,
                  state = excluded.state, revision = excluded.revision
                """)
            changes.put(.node(node))
            return node
        }
    }

    public func heartbeat(_ name: Name, usage: CacheUsage?, at now: Date) async throws -> Revisioned<NodeRecord> {
        try await commit { db, changes in
            guard var node = try await Self.fetchNode(db, name) else {
                throw CatalogStoreError.notFound("node '\(name)' is not registered; call RegisterNode first")
            }
            try await Self.recordHeartbeat(db, name, at: now)
            node.lastHeartbeat = now
            if let usage = CatalogRules.recordedUsage(usage, for: node.role) {
                let text = try CatalogRows.jsonText(usage)
                try await db.execute("UPDATE nodes SET cache_usage = \(text) WHERE name = \(name)")
                node.cacheUsage = usage
            }
            let state = CatalogRules.stateAfterHeartbeat(node.state)
            guard state != node.state else { return node }
            node.state = state
            node.revision = changes.revision
            try await Self.setNodeState(db, name, state, revision: changes.revision)
            changes.put(.node(node))
            return node
        }
    }

    public func setNodeState(_ name: Name, _ state: NodeState, expected: ExpectedRevision) async throws -> Revisioned<NodeRecord> {
        try await commit { db, changes in
            guard var node = try await Self.fetchNode(db, name) else { throw CatalogStoreError.notFound("node '\(name)' is not registered") }
            try CatalogRules.check(expected, current: node.revision, "node '\(name)'")
            guard node.state != state else { return node }
            node.state = state
            node.revision = changes.revision
            try await Self.setNodeState(db, name, state, revision: changes.revision)
            changes.put(.node(node))
            return node
        }
    }

    public func deleteNode(_ name: Name, expected: ExpectedRevision) async throws -> Revision {
        try await commit { db, changes in
            guard let node = try await Self.fetchNode(db, name) else { throw CatalogStoreError.notFound("node '\(name)' is not registered") }
            try CatalogRules.check(expected, current: node.revision, "node '\(name)'")
            let placements = try await db.fetchAll("SELECT * FROM placements WHERE node = \(name)", CatalogRows.placement)
            try await db.execute("DELETE FROM placements WHERE node = \(name)")
            for placement in placements { changes.delete(.placement(placement)) }
            try await db.execute("DELETE FROM nodes WHERE name = \(name)")
            changes.delete(.node(node))
        }.revision
    }

    public func markExpiredNodesDown(at now: Date, graceStart: Date) async throws -> Revisioned<[NodeRecord]> {
        try await commit { db, changes in
            let candidates = try await db.fetchAll("SELECT * FROM nodes WHERE state = 'up' ORDER BY name", CatalogRows.node)
            var expired: [NodeRecord] = []
            for var node in candidates where CatalogRules.isExpired(node, at: now, graceStart: graceStart) {
                node.state = .down
                node.revision = changes.revision
                try await Self.setNodeState(db, node.name, .down, revision: changes.revision)
                changes.put(.node(node))
                expired.append(node)
            }
            return expired
        }
    }

    // MARK: Shared

    static func fetchNode(_ db: Transaction, _ name: Name) async throws -> NodeRecord? {
        try await db.fetchOne("SELECT * FROM nodes WHERE name = \(name)", CatalogRows.node)
    }

    static func siteExists(_ db: Transaction, _ name: Name) async throws -> Bool {
        try await db.boolean("SELECT EXISTS (SELECT 1 FROM sites WHERE name = \(name)) AS value")
    }

    static func recordHeartbeat(_ db: Transaction, _ name: Name, at now: Date) async throws {
        try await db.execute("UPDATE nodes SET last_heartbeat_ms = \(now) WHERE name = \(name)")
    }

    static func setNodeState(_ db: Transaction, _ name: Name, _ state: NodeState, revision: Revision) async throws {
        try await db.execute("UPDATE nodes SET state = \(state), revision = \(revision) WHERE name = \(name)")
    }

    /// Whether a registration changes nothing but the heartbeat time.
    static func sameRegistration(_ a: NodeRecord, _ b: NodeRecord) -> Bool {
        a.site == b.site && a.rpcAddress == b.rpcAddress && a.httpAddress == b.httpAddress && a.capacityBytes == b.capacityBytes
            && a.heartbeatTTLMilliseconds == b.heartbeatTTLMilliseconds && a.state == b.state
    }
}
