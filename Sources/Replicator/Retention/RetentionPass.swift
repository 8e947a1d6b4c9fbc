import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import SwiftProtobuf

/// Applies retention to every image of the repository against what the catalog says: deletes
/// the snapshots the ``RetentionPlan`` names and reports their placements as deleted.
struct RetentionPass: Sendable {
    let repository: ImageRepository
    let catalog: RPCClient
    let node: String
    let logger: Logger
    /// Versions each image keeps where the catalog has no policy for it.
    var defaultKeep = 3

    func run() async throws {
        for (image, local) in try repository.versions() {
            let answer: Icbd_Catalog_V1_GetImageResponse
            do {
                answer = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = image.rawValue })
            } catch let error as RPCError where error.code == .notFound {
                continue  // recovery removes versions of images the catalog does not know
            }
            var states: [Int64: RetentionPlan.State] = [:]
            for version in answer.versions {
                switch version.state {
                case .ready: states[version.number] = .ready
                case .retired: states[version.number] = .retired
                default: states[version.number] = .publishing
                }
            }
            var neededElsewhere: [String: Int64] = [:]
            for placement in answer.placements where placement.node != node && placement.state == .present {
                neededElsewhere[placement.node] = max(neededElsewhere[placement.node] ?? 0, placement.version)
            }
            let keep = answer.hasPolicy ? Int(answer.policy.keepVersions) : defaultKeep
            let rollouts = answer.rollouts.filter { $0.state == .active || $0.state == .paused }
            let plan = RetentionPlan(
                present: Set(local.keys), states: states, tagged: Set(answer.tags.map(\.version)), keep: keep,
                neededByOtherSites: Set(neededElsewhere.values), inRunningRollouts: Set(rollouts.flatMap { [$0.fromVersion, $0.toVersion] }))
            for number in plan.keptForRollouts {
                logger.info(
                    "retention keeps a version beyond the versions to keep: a running rollout names it",
                    metadata: [
                        "image": "\(image)", "version": "\(number)", "keep": "\(keep)",
                        "rollouts": "\(rollouts.map { "\($0.tag): \($0.fromVersion) to \($0.toVersion)" }.joined(separator: ", "))",
                    ])
            }
            for number in plan.delete {
                try repository.deleteVersion(of: image, number)
                logger.info("retention deleted a version", metadata: ["image": "\(image)", "version": "\(number)"])
                _ = try? await catalog.unary(
                    CatalogMethods.setPlacement,
                    .with {
                        $0.image = image.rawValue
                        $0.version = number
                        $0.node = node
                        $0.state = .deleted
                    })
            }
        }
    }
}
