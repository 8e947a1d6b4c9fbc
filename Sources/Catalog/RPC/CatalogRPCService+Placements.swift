import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import CatalogClient
import Logging

extension CatalogRPCService {
    static let maximumKeepVersions: Int64 = 1000
    static let maximumPolicySites = 256

    func registerPlacements(into router: inout RPCRouter) {
        let store = self.store
        let pager = self.pager
        let now = self.now

        router.unary(CatalogMethods.listPlacements) { request, _ in
            let placements = try await store.listPlacements(
                image: try WireFields.optionalName(request.image, "image"), node: try WireFields.optionalName(request.node, "node"))
            var response = Icbd_Catalog_V1_ListPlacementsResponse()
            response.revision = placements.revision.rawValue
            var space = try pager.space(items: try ListingPager.pageSize(request.pageSize), used: response)
            let page = try pager.page(
                placements.value, key: { "\($0.image)\u{1}\(ImagePagePosition.key($0))" }, after: try ListingPager.token(request.pageToken),
                space: &space, wire: Icbd_Catalog_V1_Placement.init)
            response.placements = page.items
            response.nextPageToken = page.cut?.after ?? ""
            return response
        }

        router.unary(CatalogMethods.setPlacement) { request, context in
            let node = try WireFields.name(request.node, "node")
            try Self.requireSelf(context, node, "report placements")
            let state: PlacementState
            switch request.state {
            case .receiving: state = .receiving
            case .present: state = .present
            case .failed: state = .failed
            case .deleted: state = .deleted
            case .unspecified, .UNRECOGNIZED: throw WireFields.invalid("state", "must be receiving, present, failed or deleted")
            }
            let update = PlacementUpdate(
                image: try WireFields.name(request.image, "image"), version: try WireFields.positive(request.version, "version"),
                node: node, state: state, detail: try WireFields.text(request.detail, "detail"))
            let placement = try await store.setPlacement(
                update, expected: ExpectedRevision(wire: request.hasExpectedRevision ? request.expectedRevision : nil), at: now())
            logger(for: context).debug(
                "placement set",
                metadata: ["image": "\(update.image)", "version": "\(update.version)", "node": "\(node)", "state": "\(state)"])
            var response = Icbd_Catalog_V1_SetPlacementResponse()
            response.placement = .init(placement.value)
            response.revision = placement.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.listPolicies) { request, _ in
            let policies = try await store.listPolicies()
            var response = Icbd_Catalog_V1_ListPoliciesResponse()
            response.revision = policies.revision.rawValue
            var space = try pager.space(items: try ListingPager.pageSize(request.pageSize), used: response)
            let page = try pager.page(
                policies.value, key: \.image.rawValue, after: try ListingPager.token(request.pageToken), space: &space,
                wire: Icbd_Catalog_V1_Policy.init)
            response.policies = page.items
            response.nextPageToken = page.cut?.after ?? ""
            return response
        }

        router.unary(CatalogMethods.putPolicy) { request, context in
            let image = try WireFields.name(request.policy.image, "policy.image")
            let sites = try WireFields.bounded(request.policy.sites, "policy.sites", maximum: Self.maximumPolicySites)
                .enumerated().map { index, site in try WireFields.name(site, "policy.sites[\(index)]") }
            let keep = try WireFields.positive(request.policy.keepVersions, "policy.keep_versions")
            guard keep <= Self.maximumKeepVersions else {
                throw WireFields.invalid("policy.keep_versions", "must be at most \(Self.maximumKeepVersions), not \(keep)")
            }
            let policy = try await store.putPolicy(
                PolicySpec(image: image, sites: sites, keepVersions: keep),
                expected: ExpectedRevision(wire: request.hasExpectedRevision ? request.expectedRevision : nil))
            logger(for: context).info(
                "policy set", metadata: ["image": "\(image)", "sites": "\(sites.map(\.rawValue).joined(separator: ","))", "keep": "\(keep)"])
            var response = Icbd_Catalog_V1_PutPolicyResponse()
            response.policy = .init(policy.value)
            response.revision = policy.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.deletePolicy) { request, context in
            let image = try WireFields.name(request.image, "image")
            let revision = try await store.deletePolicy(
                image: image, expected: ExpectedRevision(wire: request.hasExpectedRevision ? request.expectedRevision : nil))
            logger(for: context).info("policy deleted", metadata: ["image": "\(image)", "revision": "\(revision)"])
            var response = Icbd_Catalog_V1_DeletePolicyResponse()
            response.revision = revision.rawValue
            return response
        }
    }
}
