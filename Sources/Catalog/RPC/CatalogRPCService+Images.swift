import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import CatalogClient
import Logging

extension CatalogRPCService {
    func registerImages(into router: inout RPCRouter) {
        let store = self.store
        let pager = self.pager

        router.unary(CatalogMethods.listImages) { request, _ in
            let size = try ListingPager.pageSize(request.pageSize, fallback: 100)
            let after = try WireFields.optionalName(request.pageToken, "page_token")
            let listed = try await store.listImages(after: after, limit: size)
            var response = Icbd_Catalog_V1_ListImagesResponse()
            response.revision = listed.revision.rawValue
            var space = try pager.space(items: size, used: response)
            let page = try pager.page(
                listed.value.items, key: \.image.name.rawValue, after: after?.rawValue, space: &space, wire: Icbd_Catalog_V1_ImageSummary.init)
            response.images = page.items
            response.nextPageToken = page.cut.map { $0.after ?? "" } ?? listed.value.next ?? ""
            return response
        }

        router.unary(CatalogMethods.getImage) { request, _ in
            let size = try ListingPager.pageSize(request.pageSize)
            let position = try ImagePagePosition(token: try ListingPager.token(request.pageToken))
            let detail = try await store.image(try WireFields.name(request.name, "name"))
            var response = Icbd_Catalog_V1_GetImageResponse()
            response.image = .init(detail.value.image)
            if position == .start {
                response.tags = detail.value.tags.map(Icbd_Catalog_V1_Tag.init)
                if let policy = detail.value.policy { response.policy = .init(policy) }
                response.rollouts = detail.value.rollouts.map(Icbd_Catalog_V1_Rollout.init)
            }
            response.revision = detail.revision.rawValue
            var space = try pager.space(items: size, used: response)
            var next: ImagePagePosition?
            if let after = position.versionsAfter {
                let versions = try pager.page(
                    detail.value.versions, key: ImagePagePosition.key, after: after, space: &space, wire: Icbd_Catalog_V1_Version.init)
                response.versions = versions.items
                next = versions.cut.map { .versions(after: $0.after) }
            }
            if next == nil {
                let placements = try pager.page(
                    detail.value.placements, key: ImagePagePosition.key, after: position.placementsAfter, space: &space,
                    wire: Icbd_Catalog_V1_Placement.init)
                response.placements = placements.items
                next = placements.cut.map { .placements(after: $0.after) }
            }
            response.nextPageToken = next?.token ?? ""
            return response
        }

        router.unary(CatalogMethods.resolveVersion) { request, _ in
            let version = try await store.resolveVersion(
                image: try WireFields.name(request.image, "image"), reference: try WireFields.reference(request.ref, "ref"))
            var response = Icbd_Catalog_V1_ResolveVersionResponse()
            response.version = .init(version.value)
            response.revision = version.revision.rawValue
            return response
        }

        router.serverStreaming(CatalogMethods.getManifest) { request, writer, _ in
            let locator = ManifestLocator(
                image: try WireFields.name(request.image, "image"), version: try WireFields.positive(request.version, "version"),
                path: try WireFields.path(request.path, "path"))
            let (file, pages) = try await store.manifestFile(locator)
            var first = Icbd_Catalog_V1_ManifestChunk()
            first.file = .init(file)
            guard pages > 0 else {
                try await writer.write(first)
                return
            }
            // One page per message: memory stays at one page whatever the manifest's size, and
            // the client's window paces the reads.
            for index in 0..<pages {
                var chunk = index == 0 ? first : Icbd_Catalog_V1_ManifestChunk()
                chunk.firstChunk = Int64(index * ManifestPaging.entriesPerPage)
                chunk.entries = Data(try await store.manifestPage(locator, index: index))
                try await writer.write(chunk)
            }
        }
    }
}
