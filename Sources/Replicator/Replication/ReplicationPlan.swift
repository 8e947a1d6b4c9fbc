import Foundation
import ICBDCore
import ICBDProto
import SwiftProtobuf

/// Which versions of one image this repository should pull, and from where (plain values in,
/// plain values out).
///
/// A site holds the newest `keep` ready versions of every image its policy places there (no
/// policy: every site, ``defaultKeep``). They are pulled oldest first so that each can be sent
/// against the one before it.
struct ReplicationPlan: Sendable {
    /// One version to pull, with the repositories that hold it, the publisher first.
    struct Pull: Sendable {
        let version: Icbd_Catalog_V1_Version
        let sources: [Icbd_Catalog_V1_Node]
    }

    /// Versions to pull, oldest first.
    let pulls: [Pull]
    /// Versions held here, verified by identity, whose placement here the catalog does not
    /// show as present (a crash between receive and report): report them.
    let unreported: [Int64]

    init(
        site: String, node: String, image: Icbd_Catalog_V1_GetImageResponse, local: [Int64: Subvolume.Info],
        nodes: [Icbd_Catalog_V1_Node], defaultKeep: Int
    ) {
        let placed = !image.hasPolicy || image.policy.sites.isEmpty || image.policy.sites.contains(site)
        let keep = image.hasPolicy && image.policy.keepVersions > 0 ? Int(image.policy.keepVersions) : defaultKeep
        let ready = image.versions.filter { $0.state == .ready }.sorted { $0.number > $1.number }
        let wanted = placed ? Array(ready.prefix(max(1, keep))).reversed() : []
        var pulls: [Pull] = []
        var unreported: [Int64] = []
        for version in wanted {
            if Self.holds(local[version.number], version) {
                let reported = image.placements.contains { $0.version == version.number && $0.node == node && $0.state == .present }
                if !reported { unreported.append(version.number) }
                continue
            }
            let holders = Set(
                image.placements.filter { $0.version == version.number && $0.state == .present && $0.node != node }.map(\.node))
            let sources = nodes.filter { $0.role == .replicator && $0.state == .up && $0.name != node && holders.contains($0.name) && !$0.rpcAddress.isEmpty }
                .sorted { ($0.name == version.publishedBy ? 0 : 1, $0.name) < ($1.name == version.publishedBy ? 0 : 1, $1.name) }
            pulls.append(Pull(version: version, sources: sources))
        }
        self.pulls = pulls
        self.unreported = unreported
    }

    /// Whether `info` is a complete copy of `version`: read-only, with the version's identity.
    static func holds(_ info: Subvolume.Info?, _ version: Icbd_Catalog_V1_Version) -> Bool {
        guard let info, info.isReadOnly, let identity = UUID(uuidString: version.btrfsUuid) else { return false }
        return (info.receivedUUID ?? info.uuid) == identity
    }

    /// The versions here that can be parents of an incremental stream: complete copies of ready
    /// versions, newest first.
    static func parents(image: Icbd_Catalog_V1_GetImageResponse, local: [Int64: Subvolume.Info]) -> [Icbd_Replicator_V1_ParentCandidate] {
        image.versions.filter { $0.state == .ready && holds(local[$0.number], $0) }
            .sorted { $0.number > $1.number }
            .prefix(VersionSender.maximumParents)
            .map { version in .with { $0.version = version.number; $0.btrfsUuid = version.btrfsUuid } }
    }
}
