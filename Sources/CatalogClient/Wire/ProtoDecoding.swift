import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC

// Wire messages to domain values, for clients of the catalog (the command line, gateways,
// caches). A response that breaks a rule is INTERNAL: the catalog never sends one.

package enum WireDecoding {
    package static func failure(_ what: String, _ problem: String) -> RPCError {
        RPCError(code: .internal, message: "the catalog sent an invalid \(what): \(problem)")
    }

    package static func name(_ text: String, _ what: String) throws -> Name {
        do { return try Name(text) } catch { throw failure(what, "\(error)") }
    }

    package static func date(_ milliseconds: Int64) -> Date { Date(milliseconds: milliseconds) }
}

extension ImageRecord {
    public init(wire: Icbd_Catalog_V1_Image) throws {
        self.init(
            name: try WireDecoding.name(wire.name, "image name"), description: wire.description_p,
            created: WireDecoding.date(wire.createdMs),
            homeSite: wire.homeSite.isEmpty ? nil : try WireDecoding.name(wire.homeSite, "image home site"), revision: Revision(wire.revision))
    }
}

extension FileRecord {
    public init(wire: Icbd_Catalog_V1_File) throws {
        let path: VersionFilePath
        do { path = try VersionFilePath(wire.path) } catch { throw WireDecoding.failure("file path", "\(error)") }
        self.init(
            path: path, size: wire.size, chunkSize: wire.chunkSize, manifestDigest: [UInt8](wire.manifestSha256),
            manifestStored: wire.manifestStored)
    }
}

extension VersionState {
    public init(wire: Icbd_Catalog_V1_VersionState) throws {
        switch wire {
        case .publishing: self = .publishing
        case .ready: self = .ready
        case .retired: self = .retired
        case .unspecified, .UNRECOGNIZED: throw WireDecoding.failure("version state", "\(wire)")
        }
    }
}

extension VersionRecord {
    public init(wire: Icbd_Catalog_V1_Version) throws {
        self.init(
            image: try WireDecoding.name(wire.image, "image name"), number: wire.number, parent: wire.parent == 0 ? nil : wire.parent,
            state: try VersionState(wire: wire.state), btrfsUUID: wire.btrfsUuid, created: WireDecoding.date(wire.createdMs),
            files: try wire.files.map(FileRecord.init(wire:)), publishedBy: wire.publishedBy, revision: Revision(wire.revision))
    }
}

extension TagRecord {
    public init(wire: Icbd_Catalog_V1_Tag) throws {
        self.init(
            image: try WireDecoding.name(wire.image, "image name"), name: try WireDecoding.name(wire.name, "tag name"),
            version: wire.version, revision: Revision(wire.revision))
    }
}

extension SiteRecord {
    public init(wire: Icbd_Catalog_V1_Site) throws {
        self.init(
            name: try WireDecoding.name(wire.name, "site name"), description: wire.description_p,
            cidrs: try wire.cidrs.map { text in
                do { return try CIDR(parsing: text) } catch { throw WireDecoding.failure("CIDR", "\(error)") }
            },
            links: try wire.links.map {
                SiteLink(
                    site: try WireDecoding.name($0.site, "site link"), rateBytesPerSecond: $0.rateBytesPerSecond,
                    compression: LinkCompression(wire: $0.compression) ?? .auto)
            },
            revision: Revision(wire.revision))
    }
}

extension NodeRecord {
    public init(wire: Icbd_Catalog_V1_Node) throws {
        func address(_ text: String) throws -> HostPort? {
            guard !text.isEmpty else { return nil }
            do { return try HostPort(parsing: text) } catch { throw WireDecoding.failure("node address", "\(error)") }
        }
        let role: NodeRole =
            switch wire.role {
            case .replicator: .replicator
            case .cache: .cache
            case .gateway: .gateway
            case .unspecified, .UNRECOGNIZED: throw WireDecoding.failure("node role", "\(wire.role)")
            }
        let state: NodeState =
            switch wire.state {
            case .up: .up
            case .down: .down
            case .draining: .draining
            case .unspecified, .UNRECOGNIZED: throw WireDecoding.failure("node state", "\(wire.state)")
            }
        self.init(
            name: try WireDecoding.name(wire.name, "node name"), role: role, site: try WireDecoding.name(wire.site, "site name"),
            rpcAddress: try address(wire.rpcAddress), httpAddress: try address(wire.httpAddress), capacityBytes: wire.capacityBytes,
            heartbeatTTLMilliseconds: wire.heartbeatTtlMs,
            lastHeartbeat: wire.lastHeartbeatMs == 0 ? nil : WireDecoding.date(wire.lastHeartbeatMs), state: state,
            revision: Revision(wire.revision))
        if wire.hasCacheUsage {
            cacheUsage = CacheUsage(usedBytes: wire.cacheUsage.usedBytes, hitRatio: wire.cacheUsage.hitRatio)
        }
    }
}

extension PlacementRecord {
    public init(wire: Icbd_Catalog_V1_Placement) throws {
        let state: PlacementState =
            switch wire.state {
            case .receiving: .receiving
            case .present: .present
            case .failed: .failed
            case .deleted: .deleted
            case .unspecified, .UNRECOGNIZED: throw WireDecoding.failure("placement state", "\(wire.state)")
            }
        self.init(
            image: try WireDecoding.name(wire.image, "image name"), version: wire.version, node: try WireDecoding.name(wire.node, "node name"),
            state: state, detail: wire.detail, updated: WireDecoding.date(wire.updatedMs), revision: Revision(wire.revision))
    }
}

extension PolicyRecord {
    public init(wire: Icbd_Catalog_V1_Policy) throws {
        self.init(
            image: try WireDecoding.name(wire.image, "image name"), sites: try wire.sites.map { try WireDecoding.name($0, "site name") },
            keepVersions: wire.keepVersions, revision: Revision(wire.revision))
    }
}

extension AssignmentRecord {
    public init(wire: Icbd_Catalog_V1_Assignment) throws {
        do {
            self.init(
                mac: try MACAddress(parsing: wire.mac), image: try Name(wire.image), version: try VersionReference(parsing: wire.ref),
                revision: Revision(wire.revision))
        } catch {
            throw WireDecoding.failure("assignment", "\(error)")
        }
    }
}

extension ImageSummary {
    public init(wire: Icbd_Catalog_V1_ImageSummary) throws {
        self.init(
            image: try ImageRecord(wire: wire.image), tags: try wire.tags.map(TagRecord.init(wire:)),
            newestVersion: wire.newestVersion == 0 ? nil : wire.newestVersion, versionCount: Int(wire.versionCount))
    }
}

extension ImageDetail {
    public init(wire: Icbd_Catalog_V1_GetImageResponse) throws {
        self.init(
            image: try ImageRecord(wire: wire.image), versions: try wire.versions.map(VersionRecord.init(wire:)),
            tags: try wire.tags.map(TagRecord.init(wire:)), placements: try wire.placements.map(PlacementRecord.init(wire:)),
            policy: wire.hasPolicy ? try PolicyRecord(wire: wire.policy) : nil, rollouts: try wire.rollouts.map(RolloutRecord.init(wire:)))
    }
}

extension CatalogEvent {
    public init(wire: Icbd_Catalog_V1_WatchEvent) throws {
        let entity: CatalogEntity =
            switch wire.entity {
            case .image(let value)?: .image(try ImageRecord(wire: value))
            case .version(let value)?: .version(try VersionRecord(wire: value))
            case .tag(let value)?: .tag(try TagRecord(wire: value))
            case .site(let value)?: .site(try SiteRecord(wire: value))
            case .node(let value)?: .node(try NodeRecord(wire: value))
            case .placement(let value)?: .placement(try PlacementRecord(wire: value))
            case .policy(let value)?: .policy(try PolicyRecord(wire: value))
            case .assignment(let value)?: .assignment(try AssignmentRecord(wire: value))
            case .rollout(let value)?: .rollout(try RolloutRecord(wire: value))
            case nil: throw WireDecoding.failure("watch event", "it carries no object")
            }
        self.init(wire.type == .delete ? .delete : .put, entity)
    }
}
