import Foundation
import ICBDCore

/// The gateway's copy of the catalog: images with versions and tags, sites, nodes, placements
/// and boot assignments, as of `revision`, as domain values. Built from listings and kept
/// current by applying the catalog's changes in order (each event carries the whole object, so
/// replaying an event already reflected by a listing is harmless). Keyed by the names requests
/// carry (`rawValue`s; an assignment by its MAC's text).
struct CatalogSnapshot: Sendable {
    struct ImageEntry: Sendable {
        var image: ImageRecord
        var versions: [Int64: VersionRecord] = [:]
        var tags: [String: TagRecord] = [:]
        /// By tag: the running or last rollout of each tag that had one.
        var rollouts: [String: RolloutRecord] = [:]
    }

    struct PlacementKey: Hashable, Sendable {
        let image: Name
        let version: Int64
        let node: Name
    }

    var images: [String: ImageEntry] = [:]
    var sites: [String: SiteRecord] = [:]
    var nodes: [String: NodeRecord] = [:]
    var placements: [PlacementKey: PlacementRecord] = [:]
    var assignments: [String: AssignmentRecord] = [:]
    var revision: Revision = .zero

    mutating func apply(_ change: CatalogChange) {
        for event in change.events { apply(event) }
        revision = change.revision
    }

    mutating func apply(_ event: CatalogEvent) {
        let deleted = event.change == .delete
        switch event.entity {
        case .image(let image):
            if deleted {
                images[image.name.rawValue] = nil
            } else {
                images[image.name.rawValue, default: ImageEntry(image: image)].image = image
            }
        case .version(let version):
            if deleted {
                images[version.image.rawValue]?.versions[version.number] = nil
            } else {
                images[version.image.rawValue, default: Self.unlisted(version.image)].versions[version.number] = version
            }
        case .tag(let tag):
            if deleted {
                images[tag.image.rawValue]?.tags[tag.name.rawValue] = nil
            } else {
                images[tag.image.rawValue, default: Self.unlisted(tag.image)].tags[tag.name.rawValue] = tag
            }
        case .site(let site): sites[site.name.rawValue] = deleted ? nil : site
        case .node(let node): nodes[node.name.rawValue] = deleted ? nil : node
        case .placement(let placement):
            placements[PlacementKey(image: placement.image, version: placement.version, node: placement.node)] = deleted ? nil : placement
        case .assignment(let assignment): assignments[assignment.mac.description] = deleted ? nil : assignment
        case .rollout(let rollout):
            if deleted {
                images[rollout.image.rawValue]?.rollouts[rollout.tag.rawValue] = nil
            } else {
                images[rollout.image.rawValue, default: Self.unlisted(rollout.image)].rollouts[rollout.tag.rawValue] = rollout
            }
        case .policy: break
        }
    }

    /// The entry of an image whose version or tag arrived before the image itself.
    private static func unlisted(_ name: Name) -> ImageEntry {
        ImageEntry(image: ImageRecord(name: name, description: "", created: Date(timeIntervalSince1970: 0), homeSite: nil, revision: .zero))
    }

    // MARK: Reads

    /// The ready version `reference` names, or why not. For a `workstation` (a boot script), a
    /// tag in a running rollout resolves to the version of the workstation's slice
    /// (``RolloutRecord/version(for:at:)``); otherwise to where the tag points.
    func resolve(
        image: String, reference: VersionReference, workstation: (mac: MACAddress, site: Name?)? = nil
    ) -> Result<VersionRecord, GatewayError> {
        guard let entry = images[image] else { return .failure(.notFound("no image '\(image)'")) }
        let number: Int64
        switch reference {
        case .number(let value): number = value
        case .tag(let tag):
            guard let found = entry.tags[tag.rawValue] else { return .failure(.notFound("image '\(image)' has no tag '\(tag)'")) }
            let rollout = workstation.flatMap { entry.rollouts[tag.rawValue]?.version(for: $0.mac, at: $0.site) }
            number = rollout ?? found.version
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
            for cidr in site.cidrs where cidr.contains(address) {
                if best == nil || cidr.prefixLength > best?.length ?? 0 { best = (site.name.rawValue, cidr.prefixLength) }
            }
        }
        return best?.name
    }

    /// Nodes of `role` the catalog says are up, with an RPC address.
    func upNodes(role: NodeRole) -> [NodeRecord] {
        nodes.values.filter { $0.role == role && $0.state == .up && $0.rpcAddress != nil }.sorted { $0.name < $1.name }
    }

    /// Repositories holding `version` of `image` (placement present).
    func repositories(holding image: String, version: Int64) -> Set<String> {
        Set(
            placements.values.filter { $0.image.rawValue == image && $0.version == version && $0.state == .present }.map(\.node.rawValue))
    }
}
