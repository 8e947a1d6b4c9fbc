import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import Metrics
import SwiftProtobuf

extension CatalogRPCService {
    func registerRollouts(into router: inout RPCRouter) {
        let store = self.store
        let pager = self.pager
        let now = self.now

        router.unary(CatalogMethods.startRollout) { request, context in
            let spec = try Self.rolloutSpec(request)
            let rollout = try await store.startRollout(spec, at: now())
            logger(for: context).notice(
                "rollout started",
                metadata: [
                    "image": "\(spec.image)", "tag": "\(spec.tag)", "from_version": "\(rollout.value.fromVersion)",
                    "to_version": "\(rollout.value.toVersion)", "steps": "\(spec.steps.map(RolloutRecord.percent).joined(separator: ","))",
                    "site": "\(spec.site?.rawValue ?? "every")", "revision": "\(rollout.revision)",
                ])
            return .with {
                $0.rollout = .init(rollout.value)
                $0.revision = rollout.revision.rawValue
            }
        }

        router.unary(CatalogMethods.controlRollout) { request, context in
            let control: RolloutRules.Control =
                switch request.action {
                case .pause: .pause
                case .resume: .resume
                case .abort: .abort
                case .unspecified, .UNRECOGNIZED: throw WireFields.invalid("action", "must be PAUSE, RESUME or ABORT")
                }
            let rollout = try await store.controlRollout(
                image: try WireFields.name(request.image, "image"), tag: try WireFields.name(request.tag, "tag"), control, at: now())
            logger(for: context).notice(
                "rollout \(control.rawValue)",
                metadata: ["image": "\(rollout.value.image)", "tag": "\(rollout.value.tag)", "state": "\(rollout.value.state.rawValue)"])
            return .with {
                $0.rollout = .init(rollout.value)
                $0.revision = rollout.revision.rawValue
            }
        }

        router.unary(CatalogMethods.listRollouts) { request, _ in
            let rollouts = try await store.listRollouts()
            var response = Icbd_Catalog_V1_ListRolloutsResponse()
            response.revision = rollouts.revision.rawValue
            var space = try pager.space(items: try ListingPager.pageSize(request.pageSize), used: response)
            let page = try pager.page(
                rollouts.value, key: { "\($0.image)/\($0.tag)" }, after: try ListingPager.token(request.pageToken), space: &space,
                wire: Icbd_Catalog_V1_Rollout.init)
            response.rollouts = page.items
            response.nextPageToken = page.cut?.after ?? ""
            return response
        }
    }

    static func rolloutSpec(_ request: Icbd_Catalog_V1_StartRolloutRequest) throws -> RolloutSpec {
        // The steps and criteria are checked with the rest of the rollout, by the store.
        let defaults = RolloutCriteria.default
        return RolloutSpec(
            image: try WireFields.name(request.image, "image"), tag: try WireFields.name(request.tag, "tag"),
            version: try WireFields.positive(request.version, "version"),
            steps: try WireFields.bounded(request.steps, "steps", maximum: RolloutSpec.maximumSteps).map { Int($0) },
            site: try WireFields.optionalName(request.site, "site"),
            criteria: RolloutCriteria(
                minimumBoots: request.minBoots == 0 ? defaults.minimumBoots : request.minBoots,
                maximumFailureRate: request.hasMaxFailureRate ? request.maxFailureRate : defaults.maximumFailureRate,
                maximumSlowdown: request.hasMaxSlowdown ? request.maxSlowdown : defaults.maximumSlowdown))
    }
}
