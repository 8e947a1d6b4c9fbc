import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import CatalogClient
import Logging

extension CatalogRPCService {
    func registerAssignments(into router: inout RPCRouter) {
        let store = self.store
        let pager = self.pager

        router.unary(CatalogMethods.listAssignments) { request, _ in
            let assignments = try await store.listAssignments()
            var response = Icbd_Catalog_V1_ListAssignmentsResponse()
            response.revision = assignments.revision.rawValue
            var space = try pager.space(items: try ListingPager.pageSize(request.pageSize), used: response)
            let page = try pager.page(
                assignments.value, key: \.mac.description, after: try ListingPager.token(request.pageToken), space: &space,
                wire: Icbd_Catalog_V1_Assignment.init)
            response.assignments = page.items
            response.nextPageToken = page.cut?.after ?? ""
            return response
        }

        router.unary(CatalogMethods.getAssignment) { request, _ in
            let result = try await store.assignment(try WireFields.mac(request.mac, "mac"))
            var response = Icbd_Catalog_V1_GetAssignmentResponse()
            response.assignment = .init(result.value.0)
            response.version = .init(result.value.1)
            response.revision = result.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.assign) { request, context in
            let mac = try WireFields.mac(request.mac, "mac")
            let target = ImageReference(
                image: try WireFields.name(request.image, "image"), version: try WireFields.reference(request.ref, "ref"))
            let assignment = try await store.assign(
                mac, to: target, expected: ExpectedRevision(wire: request.hasExpectedRevision ? request.expectedRevision : nil))
            logger(for: context).info("workstation assigned", metadata: ["mac": "\(mac)", "image": "\(target)", "revision": "\(assignment.revision)"])
            var response = Icbd_Catalog_V1_AssignResponse()
            response.assignment = .init(assignment.value)
            response.revision = assignment.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.unassign) { request, context in
            let mac = try WireFields.mac(request.mac, "mac")
            let revision = try await store.unassign(
                mac, expected: ExpectedRevision(wire: request.hasExpectedRevision ? request.expectedRevision : nil))
            logger(for: context).info("workstation unassigned", metadata: ["mac": "\(mac)", "revision": "\(revision)"])
            var response = Icbd_Catalog_V1_UnassignResponse()
            response.revision = revision.rawValue
            return response
        }
    }
}
