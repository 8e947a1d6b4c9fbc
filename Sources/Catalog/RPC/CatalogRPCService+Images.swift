import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging

extension CatalogRPCService {
    static let maximumPageSize = 1000

    func registerImages(into router: inout RPCRouter) {
        let store = self.store

        router.unary(CatalogMethods.listImages) { request, _ in
            let size = request.pageSize == 0 ? 100 : Int(request.pageSize)
            guard (1...Self.maximumPageSize).contains(size) else {
                throw WireFields.invalid("page_size", "must be from 1 to \(Self.maximumPageSize), not \(request.pageSize)")
            }
            let after = try WireFields.optionalName(request.pageToken, "page_token")
            let page = try await store.listImages(after: after, limit: size)
            var response = Icbd_Catalog_V1_ListImagesResponse()
            response.images = page.value.items.map(Icbd_Catalog_V1_ImageSummary.init)
            response.nextPageToken = page.value.next ?? ""
            response.revision = page.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.getImage) { request, _ in
            let detail = try await store.image(try WireFields.name(request.name, "name"))
            var response = Icbd_Catalog_V1_GetImageResponse()
            response.image = .init(detail.value.image)
            response.versions = detail.value.versions.map(Icbd_Catalog_V1_Version.init)
            response.tags = detail.value.tags.map(Icbd_Catalog_V1_Tag.init)
            response.placements = detail.value.placements.map(Icbd_Catalog_V1_Placement.init)
            if let policy = detail.value.policy { response.policy = .init(policy) }
            response.revision = detail.revision.rawValue
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
