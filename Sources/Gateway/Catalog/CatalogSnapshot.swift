import Foundation
import ICBDCore
import ICBDProto
import SwiftProtobuf

/// The gateway's copy of the catalog: images with versions and tags, sites, nodes, placements
/// and boot assignments, as of `revision`. Built from listings and kept current by applying
/// Watch events in order (each event carries the whole object, so replaying an event already
/// reflected by a listing is harmless).
struct CatalogSnapshot: Sendable {
    struct ImageEntry: Sendable {
        var image: Icbd_Catalog_V1_Image
        var versions: [Int64: Icbd_Catalog_V1_Version] = [:]
        var tags: [String: Icbd_Catalog_V1_Tag] = [:]
    }

    struct PlacementKey: Hashable, Sendable {
        let image: String
        let version: Int64
        let node: String
    }

    var images: [String: ImageEntry] = [:]
    var sites: [String: Icbd_Catalog_V1_Site] = [:]
    var nodes: [String: Icbd_Catalog_V1_Node] = [:]
    var placements: [PlacementKey: Icbd_Catalog_V1_Placement] = [:]
    var assignments: [String: Icbd_Catalog_V1_Assignment] = [:]
    var revision: Int64 = 0

    mutating func apply(_ event: Icbd_Catalog_V1_WatchEvent) {
        let deleted = event.type == .delete
        switch event.entity {
        case .image(let image):
            if deleted { images[image.name] = nil } else { images[image.name, default: ImageEntry(image: image)].image = image }
        case .version(let version):
            if deleted {
                images[version.image]?.versions[version.number] = nil
            } else {
                images[version.image, default: ImageEntry(image: .with { $0.name = version.image })].versions[version.number] = version
            }
        case .tag(let tag):
            if deleted {
                images[tag.image]?.tags[tag.name] = nil
            } else {
                images[tag.image, default: ImageEntry(image: .with { $0.name = tag.image })].tags[tag.name] = tag
            }
        case .site(let site): sites[site.name] = deleted ? nil : site
        case .node(let node): nodes[node.name] = deleted ? nil : node
        case .placement(let placement):
            placements[PlacementKey(image: placement.image, version: placement.version, node: placement.node)] = deleted ? nil : placement
        case .assignment(let assignment): assignments[assignment.mac] = deleted ? nil : assignment
        case .policy, .none: break
        }
    }

    // MARK: Reads

    /// The ready version `reference` names, or why not.
    func resolve(image: String, reference: VersionReference) -> Result<Icbd_Catalog_V1_Version, GatewayError> {
        guard let entry = images[image] else { return .failure(.notFound("no image '\(image)'")) }
        let number: Int64
        switch reference {
        case .number(let value): number = value
        case .tag(let tag):
            guard let found = entry.tags[tag.rawValue] else { return .failure(.notFound("image '\(image)' has no tag '\(tag)'")) }
            number = found.version
        }
        guard let version = entry.versions[number], version.state == .ready else {
            return .failure(.notFound("image '\(image)' has no ready version \(number)"))
        }
        return .success(version)
    }

    /// The site whose CIDRs hold `address` (the longest prefix wins), if any.
    func site(of address: IPAddress) -> String? {
        var best: (name: String, length: Int)?
        for site in sites.values {
            for text in site.cidrs {
                guard let cidr = try? CIDR(parsing: text), cidr.contains(address) else { continue }
                if best == nil || cidr.prefixLength > best?.length ?? 0 { best = (site.name, cidr.prefixLength) }
            }
        }
        return best?.name
    }

    /// Nodes of `role` the catalog says are up.
    func upNodes(role: Icbd_Catalog_V1_NodeRole) -> [Icbd_Catalog_V1_Node] {
        nodes.values.filter { $0.role == role && $0.state == .up && !$0.rpcAddress.isEmpty }.sorted { $0.name < $1.name }
    }

    /// Repositories holding `version` of `image` (placement present).
    func repositories(holding image: String, version: Int64) -> Set<String> {
        Set(placements.values.filter { $0.image == image && $0.version == version && $0.state == .present }.map(\.node))
    }
}
