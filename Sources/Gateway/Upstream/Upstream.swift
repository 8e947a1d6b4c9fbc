import ICBDCore

/// A node chunk bytes can be read from.
struct Upstream: Sendable, Hashable, CustomStringConvertible {
    enum Kind: String, Sendable { case cache, repository }

    let name: String
    let kind: Kind
    let site: String
    let address: HostPort

    init?(_ node: NodeRecord) {
        guard let address = node.rpcAddress else { return nil }
        switch node.role {
        case .cache: kind = .cache
        case .replicator: kind = .repository
        case .gateway: return nil
        }
        name = node.name.rawValue
        site = node.site.rawValue
        self.address = address
    }

    /// The role the node's certificate must carry.
    var role: Role { kind == .cache ? .cache : .replicator }

    var description: String { "\(kind.rawValue) \(name)@\(site)" }
}

/// The order in which a chunk's upstreams are tried: the gateway's `local` cache node (the one on
/// its host, whose files it reads directly: a miss read through it fills it), then the client
/// site's caches in rendezvous order of the chunk's hash, then each other site's caches (same
/// ranking), then the repositories holding the version (the client's site first). Nodes ejected
/// for failing go last rather than nowhere: a wrong ejection must not fail a read that could
/// succeed.
enum UpstreamPlan {
    static func order(
        chunk hash: [UInt8], site: String, image: String, version: Int64, snapshot: CatalogSnapshot, local: String? = nil,
        isEjected: (String) -> Bool
    ) -> [Upstream] {
        var caches = snapshot.upNodes(role: .cache).compactMap(Upstream.init)
        var plan: [Upstream] = []
        if let local, let index = caches.firstIndex(where: { $0.name == local }) {
            plan.append(caches.remove(at: index))
        }
        plan += RendezvousOrder.rank(caches.filter { $0.site == site }, for: hash, name: \.name)
        let otherSites = Set(caches.map(\.site)).subtracting([site]).sorted()
        for other in otherSites {
            plan += RendezvousOrder.rank(caches.filter { $0.site == other }, for: hash, name: \.name)
        }
        var repositories = snapshot.upNodes(role: .replicator).compactMap(Upstream.init)
        let holding = snapshot.repositories(holding: image, version: version)
        if !holding.isEmpty { repositories = repositories.filter { holding.contains($0.name) } }
        plan += repositories.filter { $0.site == site } + repositories.filter { $0.site != site }
        let healthy = plan.filter { !isEjected($0.name) }
        return healthy + plan.filter { isEjected($0.name) }
    }
}
