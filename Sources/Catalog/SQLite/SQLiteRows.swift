import Foundation
import GRDB
import ICBDCore

/// Reading domain values back from rows. Values are validated again: a row that breaks a rule
/// (a damaged or hand-edited file) is a storage error, not a crash.
enum SQLiteRows {
    static func name(_ row: Row, _ column: String) throws -> Name {
        let text: String = try row.decode(forColumn: column)
        do { return try Name(text) } catch { throw damaged("\(column) '\(text)': \(error)") }
    }

    static func optionalName(_ row: Row, _ column: String) throws -> Name? {
        guard (try row.decode(forColumn: column) as String?) != nil else { return nil }
        return try name(row, column)
    }

    static func date(_ row: Row, _ column: String) throws -> Date {
        Date(milliseconds: try row.decode(forColumn: column) as Int64)
    }

    static func enumValue<E: RawRepresentable>(_ row: Row, _ column: String, as type: E.Type) throws -> E where E.RawValue == String {
        let text: String = try row.decode(forColumn: column)
        guard let value = E(rawValue: text) else { throw damaged("\(column) '\(text)' is not a \(E.self)") }
        return value
    }

    static func hostPort(_ row: Row, _ column: String) throws -> HostPort? {
        guard let text: String = try row.decode(forColumn: column), !text.isEmpty else { return nil }
        do { return try HostPort(parsing: text) } catch { throw damaged("\(column) '\(text)': \(error)") }
    }

    static func json<T: Decodable>(_ row: Row, _ column: String, as type: T.Type) throws -> T {
        let text: String = try row.decode(forColumn: column)
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

    static func image(_ row: Row) throws -> ImageRecord {
        ImageRecord(
            name: try name(row, "name"), description: try row.decode(forColumn: "description"), created: try date(row, "created_ms"),
            homeSite: try optionalName(row, "home_site"), revision: Revision(try row.decode(forColumn: "revision")))
    }

    static func file(_ row: Row) throws -> FileRecord {
        let pathText: String = try row.decode(forColumn: "path")
        let path: VersionFilePath
        do { path = try VersionFilePath(pathText) } catch { throw damaged("path '\(pathText)': \(error)") }
        let digest: Data = try row.decode(forColumn: "manifest_sha256")
        return FileRecord(
            path: path, size: try row.decode(forColumn: "size"), chunkSize: try row.decode(forColumn: "chunk_size"), manifestDigest: [UInt8](digest),
            manifestStored: try row.decode(forColumn: "manifest_stored") as Bool)
    }

    static func version(_ row: Row, files: [FileRecord]) throws -> VersionRecord {
        VersionRecord(
            image: try name(row, "image"), number: try row.decode(forColumn: "number"), parent: try row.decode(forColumn: "parent"),
            state: try enumValue(row, "state", as: VersionState.self), btrfsUUID: try row.decode(forColumn: "btrfs_uuid"),
            created: try date(row, "created_ms"), files: files, publishedBy: try row.decode(forColumn: "published_by"),
            revision: Revision(try row.decode(forColumn: "revision")))
    }

    static func tag(_ row: Row) throws -> TagRecord {
        TagRecord(
            image: try name(row, "image"), name: try name(row, "name"), version: try row.decode(forColumn: "version"),
            revision: Revision(try row.decode(forColumn: "revision")))
    }

    static func site(_ row: Row) throws -> SiteRecord {
        SiteRecord(
            name: try name(row, "name"), description: try row.decode(forColumn: "description"), cidrs: try json(row, "cidrs", as: [CIDR].self),
            links: try json(row, "links", as: [SiteLink].self), revision: Revision(try row.decode(forColumn: "revision")))
    }

    static func node(_ row: Row) throws -> NodeRecord {
        let last: Int64? = try row.decode(forColumn: "last_heartbeat_ms")
        var node = NodeRecord(
            name: try name(row, "name"), role: try enumValue(row, "role", as: NodeRole.self), site: try name(row, "site"),
            rpcAddress: try hostPort(row, "rpc_address"), httpAddress: try hostPort(row, "http_address"),
            capacityBytes: try row.decode(forColumn: "capacity_bytes"), heartbeatTTLMilliseconds: try row.decode(forColumn: "heartbeat_ttl_ms"),
            lastHeartbeat: last.map(Date.init(milliseconds:)), state: try enumValue(row, "state", as: NodeState.self),
            revision: Revision(try row.decode(forColumn: "revision")))
        let usage: String? = try row.decode(forColumn: "cache_usage")
        if usage != nil { node.cacheUsage = try json(row, "cache_usage", as: CacheUsage.self) }
        return node
    }

    static func placement(_ row: Row) throws -> PlacementRecord {
        PlacementRecord(
            image: try name(row, "image"), version: try row.decode(forColumn: "version"), node: try name(row, "node"),
            state: try enumValue(row, "state", as: PlacementState.self), detail: try row.decode(forColumn: "detail"),
            updated: try date(row, "updated_ms"), revision: Revision(try row.decode(forColumn: "revision")))
    }

    static func policy(_ row: Row) throws -> PolicyRecord {
        PolicyRecord(
            image: try name(row, "image"), sites: try json(row, "sites", as: [Name].self),
            keepVersions: try row.decode(forColumn: "keep_versions"), revision: Revision(try row.decode(forColumn: "revision")))
    }

    static func assignment(_ row: Row) throws -> AssignmentRecord {
        let macText: String = try row.decode(forColumn: "mac")
        let refText: String = try row.decode(forColumn: "ref")
        do {
            return AssignmentRecord(
                mac: try MACAddress(parsing: macText), image: try name(row, "image"), version: try VersionReference(parsing: refText),
                revision: Revision(try row.decode(forColumn: "revision")))
        } catch let error as CatalogStoreError {
            throw error
        } catch {
            throw damaged("assignment \(macText) \(refText): \(error)")
        }
    }
}
