import Foundation
import ICBDCore
import ICBDProto

// Domain values to wire messages: the one place responses are built from.

extension Icbd_Catalog_V1_Image {
    package init(_ image: ImageRecord) {
        self.init()
        name = image.name.rawValue
        description_p = image.description
        createdMs = image.created.milliseconds
        homeSite = image.homeSite?.rawValue ?? ""
        revision = image.revision.rawValue
    }
}

extension Icbd_Catalog_V1_File {
    package init(_ file: FileRecord) {
        self.init()
        path = file.path.rawValue
        size = file.size
        chunkSize = file.chunkSize
        manifestSha256 = Data(file.manifestDigest)
        chunkCount = file.chunkCount
        manifestStored = file.manifestStored
    }
}

extension Icbd_Catalog_V1_Version {
    package init(_ version: VersionRecord) {
        self.init()
        image = version.image.rawValue
        number = version.number
        parent = version.parent ?? 0
        state = .init(version.state)
        btrfsUuid = version.btrfsUUID
        createdMs = version.created.milliseconds
        files = version.files.map(Icbd_Catalog_V1_File.init)
        revision = version.revision.rawValue
        publishedBy = version.publishedBy
    }
}

extension Icbd_Catalog_V1_VersionState {
    package init(_ state: VersionState) {
        self =
            switch state {
            case .publishing: .publishing
            case .ready: .ready
            case .retired: .retired
            }
    }
}

extension Icbd_Catalog_V1_Tag {
    package init(_ tag: TagRecord) {
        self.init()
        image = tag.image.rawValue
        name = tag.name.rawValue
        version = tag.version
        revision = tag.revision.rawValue
    }
}

extension Icbd_Catalog_V1_Site {
    package init(_ site: SiteRecord) {
        self.init()
        name = site.name.rawValue
        description_p = site.description
        cidrs = site.cidrs.map(\.description)
        links = site.links.map { link in
            var wire = Icbd_Catalog_V1_SiteLink()
            wire.site = link.site.rawValue
            wire.rateBytesPerSecond = link.rateBytesPerSecond
            wire.compression = Icbd_Catalog_V1_LinkCompression(link.compression)
            return wire
        }
        revision = site.revision.rawValue
    }
}

extension Icbd_Catalog_V1_NodeRole {
    package init(_ role: NodeRole) {
        self =
            switch role {
            case .replicator: .replicator
            case .cache: .cache
            case .gateway: .gateway
            }
    }
}

extension Icbd_Catalog_V1_NodeState {
    package init(_ state: NodeState) {
        self =
            switch state {
            case .up: .up
            case .down: .down
            case .draining: .draining
            }
    }
}

extension Icbd_Catalog_V1_Node {
    package init(_ node: NodeRecord) {
        self.init()
        name = node.name.rawValue
        role = .init(node.role)
        site = node.site.rawValue
        rpcAddress = node.rpcAddress?.description ?? ""
        httpAddress = node.httpAddress?.description ?? ""
        capacityBytes = node.capacityBytes
        heartbeatTtlMs = node.heartbeatTTLMilliseconds
        lastHeartbeatMs = node.lastHeartbeat?.milliseconds ?? 0
        state = .init(node.state)
        revision = node.revision.rawValue
        if let usage = node.cacheUsage {
            cacheUsage.usedBytes = usage.usedBytes
            cacheUsage.hitRatio = usage.hitRatio
        }
    }
}

extension Icbd_Catalog_V1_PlacementState {
    package init(_ state: PlacementState) {
        self =
            switch state {
            case .receiving: .receiving
            case .present: .present
            case .failed: .failed
            case .deleted: .deleted
            }
    }
}

extension Icbd_Catalog_V1_Placement {
    package init(_ placement: PlacementRecord) {
        self.init()
        image = placement.image.rawValue
        version = placement.version
        node = placement.node.rawValue
        state = .init(placement.state)
        detail = placement.detail
        updatedMs = placement.updated.milliseconds
        revision = placement.revision.rawValue
    }
}

extension Icbd_Catalog_V1_Policy {
    package init(_ policy: PolicyRecord) {
        self.init()
        image = policy.image.rawValue
        sites = policy.sites.map(\.rawValue)
        keepVersions = policy.keepVersions
        revision = policy.revision.rawValue
    }
}

extension Icbd_Catalog_V1_Assignment {
    package init(_ assignment: AssignmentRecord) {
        self.init()
        mac = assignment.mac.description
        image = assignment.image.rawValue
        ref = assignment.version == .latest ? "" : assignment.version.description
        revision = assignment.revision.rawValue
    }
}

extension Icbd_Catalog_V1_ImageSummary {
    package init(_ summary: ImageSummary) {
        self.init()
        image = .init(summary.image)
        tags = summary.tags.map(Icbd_Catalog_V1_Tag.init)
        newestVersion = summary.newestVersion ?? 0
        versionCount = Int64(summary.versionCount)
    }
}

extension Icbd_Catalog_V1_WatchEvent {
    package init(_ event: CatalogEvent) {
        self.init()
        type = event.change == .put ? .put : .delete
        entity =
            switch event.entity {
            case .image(let value): .image(.init(value))
            case .version(let value): .version(.init(value))
            case .tag(let value): .tag(.init(value))
            case .site(let value): .site(.init(value))
            case .node(let value): .node(.init(value))
            case .placement(let value): .placement(.init(value))
            case .policy(let value): .policy(.init(value))
            case .assignment(let value): .assignment(.init(value))
            case .rollout(let value): .rollout(.init(value))
            }
    }
}

extension EntityKind {
    package init?(_ kind: Icbd_Catalog_V1_EntityKind) {
        switch kind {
        case .image: self = .image
        case .version: self = .version
        case .tag: self = .tag
        case .site: self = .site
        case .node: self = .node
        case .placement: self = .placement
        case .policy: self = .policy
        case .assignment: self = .assignment
        case .rollout: self = .rollout
        case .unspecified, .UNRECOGNIZED: return nil
        }
    }
}

extension Icbd_Catalog_V1_EntityKind {
    package init(_ kind: EntityKind) {
        self =
            switch kind {
            case .image: .image
            case .version: .version
            case .tag: .tag
            case .site: .site
            case .node: .node
            case .placement: .placement
            case .policy: .policy
            case .assignment: .assignment
            case .rollout: .rollout
            }
    }
}
