import CatalogClient
import Foundation
import ICBDCore
import ICBDRPC

/// Reading domain values back from rows, for both databases. Values are validated again: a row
/// that breaks a rule (a damaged or hand-edited database) is a storage error, not a crash.
enum CatalogRows {
    static func name(_ row: any SQLRow, _ column: String) throws -> Name {
        let text = try row.text(required: column)
        do { return try Name(text) } catch { throw damaged("\(column) '\(text)': \(error)") }
    }

    static func optionalName(_ row: any SQLRow, _ column: String) throws -> Name? {
        guard try row.text(column) != nil else { return nil }
        return try name(row, column)
    }

    static func date(_ row: any SQLRow, _ column: String) throws -> Date {
        Date(milliseconds: try row.integer(required: column))
    }

    static func revision(_ row: any SQLRow) throws -> Revision {
        Revision(try row.integer(required: "revision"))
    }

    static func enumValue<E: RawRepresentable>(_ row: any SQLRow, _ column: String, as type: E.Type) throws -> E where E.RawValue == String {
        let text = try row.text(required: column)
        guard let value = E(rawValue: text) else { throw damaged("\(column) '\(text)' is not a \(E.self)") }
        return value
    }

    static func hostPort(_ row: any SQLRow, _ column: String) throws -> HostPort? {
        guard let text = try row.text(column), !text.isEmpty else { return nil }
        do { return try HostPort(parsing: text) } catch { throw damaged("\(column) '\(text)': \(error)") }
    }

    static func json<T: Decodable>(_ row: any SQLRow, _ column: String, as type: T.Type) throws -> T {
        let text = try row.text(required: column)
        do { return try JSONDecoder().decode(T.self, from: Data(text.utf8)) } catch {
            throw damaged("\(column) does not decode as \(T.self): \(error)")
        }
    }

    static func jsonText(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func damaged(_ problem: String) -> CatalogStoreError {
        CatalogStoreError(.storage, "the catalog database holds a damaged row: \(problem)")
    }

    // MARK: Records

    static func image(_ row: any SQLRow) throws -> ImageRecord {
        ImageRecord(
            name: try name(row, "name"), description: try row.text(required: "description"), created: try date(row, "created_ms"),
            homeSite: try optionalName(row, "home_site"), revision: try revision(row))
    }

    static func file(_ row: any SQLRow) throws -> FileRecord {
        let pathText = try row.text(required: "path")
        let path: VersionFilePath
        do { path = try VersionFilePath(pathText) } catch { throw damaged("path '\(pathText)': \(error)") }
        return FileRecord(
            path: path, size: try row.integer(required: "size"), chunkSize: try row.integer(required: "chunk_size"),
            manifestDigest: [UInt8](try row.blob(required: "manifest_sha256")), manifestStored: try row.boolean(required: "manifest_stored"))
    }

    static func version(_ row: any SQLRow, files: [FileRecord]) throws -> VersionRecord {
        VersionRecord(
            image: try name(row, "image"), number: try row.integer(required: "number"), parent: try row.integer("parent"),
            state: try enumValue(row, "state", as: VersionState.self), btrfsUUID: try row.text(required: "btrfs_uuid"),
            created: try date(row, "created_ms"), files: files, publishedBy: try row.text(required: "published_by"),
            revision: try revision(row))
    }

    static func tag(_ row: any SQLRow) throws -> TagRecord {
        TagRecord(image: try name(row, "image"), name: try name(row, "name"), version: try row.integer(required: "version"), revision: try revision(row))
    }

    static func site(_ row: any SQLRow) throws -> SiteRecord {
        SiteRecord(
            name: try name(row, "name"), description: try row.text(required: "description"), cidrs: try json(row, "cidrs", as: [CIDR].self),
            links: try json(row, "links", as: [SiteLink].self), revision: try revision(row))
    }

    static func node(_ row: any SQLRow) throws -> NodeRecord {
        var node = NodeRecord(
            name: try name(row, "name"), role: try enumValue(row, "role", as: NodeRole.self), site: try name(row, "site"),
            rpcAddress: try hostPort(row, "rpc_address"), httpAddress: try hostPort(row, "http_address"),
            capacityBytes: try row.integer(required: "capacity_bytes"), heartbeatTTLMilliseconds: try row.integer(required: "heartbeat_ttl_ms"),
            lastHeartbeat: try row.integer("last_heartbeat_ms").map(Date.init(milliseconds:)),
            state: try enumValue(row, "state", as: NodeState.self), revision: try revision(row))
        if try row.text("cache_usage") != nil { node.cacheUsage = try json(row, "cache_usage", as: CacheUsage.self) }
        return node
    }

    static func placement(_ row: any SQLRow) throws -> PlacementRecord {
        PlacementRecord(
            image: try name(row, "image"), version: try row.integer(required: "version"), node: try name(row, "node"),
            state: try enumValue(row, "state", as: PlacementState.self), detail: try row.text(required: "detail"),
            updated: try date(row, "updated_ms"), revision: try revision(row))
    }

    static func policy(_ row: any SQLRow) throws -> PolicyRecord {
        PolicyRecord(
            image: try name(row, "image"), sites: try json(row, "sites", as: [Name].self),
            keepVersions: try row.integer(required: "keep_versions"), revision: try revision(row))
    }

    static func assignment(_ row: any SQLRow) throws -> AssignmentRecord {
        let macText = try row.text(required: "mac")
        let refText = try row.text(required: "ref")
        do {
            return AssignmentRecord(
                mac: try MACAddress(parsing: macText), image: try name(row, "image"), version: try VersionReference(parsing: refText),
                revision: try revision(row))
        } catch let error as CatalogStoreError {
            throw error
        } catch {
            throw damaged("assignment \(macText) \(refText): \(error)")
        }
    }

    static func bootProfile(_ row: any SQLRow) throws -> BootProfileRecord {
        BootProfileRecord(
            image: try name(row, "image"), version: try row.integer(required: "version"), node: try name(row, "node"),
            recorded: try date(row, "recorded_ms"), entries: try json(row, "entries", as: [BootProfileEntry].self))
    }

    static func rollout(_ row: any SQLRow) throws -> RolloutRecord {
        let step = try row.integer(required: "step")
        let steps = try json(row, "steps", as: [Int].self)
        guard steps.indices.contains(Int(step)) else { throw damaged("rollout step \(step) of \(steps.count) steps") }
        return RolloutRecord(
            image: try name(row, "image"), tag: try name(row, "tag"), id: try row.integer(required: "id"),
            fromVersion: try row.integer(required: "from_version"), toVersion: try row.integer(required: "to_version"),
            site: try optionalName(row, "site"), steps: steps, step: Int(step),
            state: try enumValue(row, "state", as: RolloutState.self), criteria: try json(row, "criteria", as: RolloutCriteria.self),
            detail: try row.text(required: "detail"), started: try date(row, "started_ms"), updated: try date(row, "updated_ms"),
            progress: try json(row, "progress", as: BootTally.self), revision: try revision(row))
    }

    static func boot(_ row: any SQLRow) throws -> BootReport {
        let macText = try row.text(required: "mac")
        guard let mac = try? MACAddress(parsing: macText) else { throw damaged("boot of MAC '\(macText)'") }
        return BootReport(
            mac: mac, site: try name(row, "site"), gateway: try name(row, "gateway"), image: try name(row, "image"),
            version: try row.integer(required: "version"), outcome: try enumValue(row, "outcome", as: BootReport.Outcome.self),
            failure: try row.text("failure"), started: try date(row, "started_ms"), loadedMilliseconds: try row.integer("loaded_ms"),
            upMilliseconds: try row.integer("up_ms"), bytesRead: try row.integer(required: "bytes_read"),
            diskReads: try row.integer(required: "disk_reads"), errors: try row.integer(required: "errors"),
            unavailable: try row.integer(required: "unavailable"))
    }

    static func revocation(_ row: any SQLRow) throws -> RevocationRecord {
        let text = try row.text(required: "serial")
        guard let serial = CertificateSerial(parsing: text) else { throw damaged("serial '\(text)' is not a certificate serial") }
        return RevocationRecord(
            serial: serial, name: try row.text(required: "name"), revoked: try date(row, "revoked_ms"),
            expires: try date(row, "expires_ms"), reason: try row.text(required: "reason"))
    }
}
