import Foundation
import ICBDCore

extension PostgresCatalogStore {
    public func listNodes(_ filter: NodeFilter) async throws -> Revisioned<[NodeRecord]> {
        try await read { db in
            try await db.fetchAll(
                sql:
                    "SELECT * FROM nodes WHERE (?1::text IS NULL OR site = ?1::text) AND (?2::text IS NULL OR role = ?2::text) ORDER BY site, role, name",
                arguments: [filter.site?.rawValue, filter.role?.rawValue]
            ).map(PostgresRows.node)
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
                    "node '\(registration.name)' is registered as a \(current.role) node; a node's role cannot change (delete the node first)"
                )
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
                sql: """
                    INSERT INTO nodes (name, role, site, rpc_address, http_address, capacity_bytes, heartbeat_ttl_ms,
                      last_heartbeat_ms, state, revision)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET site = excluded.site, rpc_address = excluded.rpc_address,
                      http_address = excluded.http_address, capacity_bytes = excluded.capacity_bytes,
                      heartbeat_ttl_ms = excluded.heartbeat_ttl_ms, last_heartbeat_ms = excluded.last_heartbeat_ms,
                      state = excluded.state, revision = excluded.revision
                    """,
                arguments: [
                    node.name.rawValue, node.role.rawValue, node.site.rawValue, node.rpcAddress?.description,
                    node.httpAddress?.description, node.capacityBytes, node.heartbeatTTLMilliseconds, now.milliseconds,
                    node.state.rawValue, node.revision.rawValue,
                ])
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
                try await Self.recordCacheUsage(db, name, usage)
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
            guard var node = try await Self.fetchNode(db, name) else {
                throw CatalogStoreError.notFound("node '\(name)' is not registered")
            }
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
            guard let node = try await Self.fetchNode(db, name) else {
                throw CatalogStoreError.notFound("node '\(name)' is not registered")
            }
            try CatalogRules.check(expected, current: node.revision, "node '\(name)'")
            let placements = try await db.fetchAll(sql: "SELECT * FROM placements WHERE node = ?", arguments: [name.rawValue])
                .map(PostgresRows.placement)
            try await db.execute(sql: "DELETE FROM placements WHERE node = ?", arguments: [name.rawValue])
            for placement in placements { changes.delete(.placement(placement)) }
            try await db.execute(sql: "DELETE FROM nodes WHERE name = ?", arguments: [name.rawValue])
            changes.delete(.node(node))
        }.revision
    }

    public func markExpiredNodesDown(at now: Date, graceStart: Date) async throws -> Revisioned<[NodeRecord]> {
        try await commit { db, changes in
            let candidates = try await db.fetchAll(sql: "SELECT * FROM nodes WHERE state = 'up' ORDER BY name").map(PostgresRows.node)
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

    static func fetchNode(_ db: PGTransaction, _ name: Name) async throws -> NodeRecord? {
        try await db.fetchOne(sql: "SELECT * FROM nodes WHERE name = ?", arguments: [name.rawValue]).map(PostgresRows.node)
    }

    static func siteExists(_ db: PGTransaction, _ name: Name) async throws -> Bool {
        try await db.scalar(Bool.self, sql: "SELECT EXISTS (SELECT 1 FROM sites WHERE name = ?)", arguments: [name.rawValue]) ?? false
    }

    static func recordHeartbeat(_ db: PGTransaction, _ name: Name, at now: Date) async throws {
        try await db.execute(sql: "UPDATE nodes SET last_heartbeat_ms = ? WHERE name = ?", arguments: [now.milliseconds, name.rawValue])
    }

    static func recordCacheUsage(_ db: PGTransaction, _ name: Name, _ usage: CacheUsage) async throws {
        try await db.execute(
            sql: "UPDATE nodes SET cache_usage = ? WHERE name = ?", arguments: [try PostgresRows.jsonText(usage), name.rawValue])
    }

    static func setNodeState(_ db: PGTransaction, _ name: Name, _ state: NodeState, revision: Revision) async throws {
        try await db.execute(
            sql: "UPDATE nodes SET state = ?, revision = ? WHERE name = ?", arguments: [state.rawValue, revision.rawValue, name.rawValue])
    }

    /// Whether a registration changes nothing but the heartbeat time.
    static func sameRegistration(_ a: NodeRecord, _ b: NodeRecord) -> Bool {
        a.site == b.site && a.rpcAddress == b.rpcAddress && a.httpAddress == b.httpAddress && a.capacityBytes == b.capacityBytes
            && a.heartbeatTTLMilliseconds == b.heartbeatTTLMilliseconds && a.state == b.state
    }
}
