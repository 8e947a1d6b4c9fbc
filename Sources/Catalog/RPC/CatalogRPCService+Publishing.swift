import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import CatalogClient
import Logging

extension CatalogRPCService {
    static let maximumFilesPerVersion = 64

    func registerPublishing(into router: inout RPCRouter) {
        let store = self.store
        let now = self.now

        router.unary(CatalogMethods.createImage) { request, context in
            let homeSite = try WireFields.optionalName(request.homeSite, "home_site")
            guard homeSite == nil || context.peer.role == .admin else {
                throw RPCError(
                    code: .permissionDenied, message: "\(context.peer) may not name a home site: a replicator's image belongs to its own site")
            }
            let result = try await store.createImage(
                name: try WireFields.name(request.name, "name"), description: try WireFields.text(request.description_p, "description"),
                homeSite: homeSite, ifMissing: request.ifMissing, by: Self.publisher(context), at: now())
            if result.value.created {
                logger(for: context).info(
                    "image created",
                    metadata: [
                        "image": "\(result.value.0.name)", "home_site": "\(result.value.0.homeSite?.rawValue ?? "")",
                        "revision": "\(result.revision)",
                    ])
            }
            var response = Icbd_Catalog_V1_CreateImageResponse()
            response.image = .init(result.value.0)
            response.created = result.value.created
            response.revision = result.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.createVersion) { request, context in
            let version = try await store.createVersion(
                try Self.newVersion(request, publishedBy: context.peer.name), by: Self.publisher(context), at: now())
            logger(for: context).info(
                "version publishing",
                metadata: ["image": "\(version.value.image)", "version": "\(version.value.number)", "revision": "\(version.revision)"])
            var response = Icbd_Catalog_V1_CreateVersionResponse()
            response.version = .init(version.value)
            response.revision = version.revision.rawValue
            return response
        }

        router.clientStreaming(CatalogMethods.putManifest) { requests, context in
            var iterator = requests.makeAsyncIterator()
            guard let first = try await iterator.next() else {
                throw WireFields.invalid("PutManifest", "the call sent no message; the first names the file")
            }
            let locator = ManifestLocator(
                image: try WireFields.name(first.image, "image"), version: try WireFields.positive(first.version, "version"),
                path: try WireFields.path(first.path, "path"))
            let entries = ManifestUpload(first: first, rest: iterator, locator: locator)
            let file = try await store.storeManifest(locator, entries: entries, by: Self.publisher(context), at: now())
            var response = Icbd_Catalog_V1_PutManifestResponse()
            response.file = .init(file.value)
            response.revision = file.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.completeVersion) { request, context in
            let image = try WireFields.name(request.image, "image")
            let number = try WireFields.positive(request.number, "number")
            let result = try await store.completeVersion(image: image, number: number, by: Self.publisher(context), at: now())
            logger(for: context).info(
                "version ready",
                metadata: [
                    "image": "\(image)", "version": "\(number)", "latest": "\(result.value.latest?.version ?? 0)",
                    "revision": "\(result.revision)",
                ])
            var response = Icbd_Catalog_V1_CompleteVersionResponse()
            response.version = .init(result.value.0)
            if let latest = result.value.latest { response.latest = .init(latest) }
            response.revision = result.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.abandonVersion) { request, context in
            let image = try WireFields.name(request.image, "image")
            let number = try WireFields.positive(request.number, "number")
            let result = try await store.abandonVersion(
                image: image, number: number, by: Self.publisher(context), dropImageIfUnused: request.dropImageIfUnused)
            logger(for: context).info(
                "version abandoned",
                metadata: ["image": "\(image)", "version": "\(number)", "image_dropped": "\(result.value)", "revision": "\(result.revision)"])
            var response = Icbd_Catalog_V1_AbandonVersionResponse()
            response.imageDropped = result.value
            response.revision = result.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.retireVersion) { request, context in
            let image = try WireFields.name(request.image, "image")
            let number = try WireFields.positive(request.number, "number")
            let version = try await store.retireVersion(
                image: image, number: number, expected: ExpectedRevision(wire: request.expectedRevisionIfPresent), at: now())
            logger(for: context).info(
                "version retired", metadata: ["image": "\(image)", "version": "\(number)", "revision": "\(version.revision)"])
            var response = Icbd_Catalog_V1_RetireVersionResponse()
            response.version = .init(version.value)
            response.revision = version.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.moveTag) { request, context in
            let image = try WireFields.name(request.image, "image")
            let tag = try WireFields.name(request.tag, "tag")
            let moved = try await store.moveTag(
                image: image, tag: tag, version: try WireFields.positive(request.version, "version"),
                expected: ExpectedRevision(wire: request.expectedRevisionIfPresent))
            logger(for: context).info(
                "tag moved", metadata: ["image": "\(image)", "tag": "\(tag)", "version": "\(moved.value.version)", "revision": "\(moved.revision)"])
            var response = Icbd_Catalog_V1_MoveTagResponse()
            response.tag = .init(moved.value)
            response.revision = moved.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.deleteTag) { request, context in
            let image = try WireFields.name(request.image, "image")
            let tag = try WireFields.name(request.tag, "tag")
            let revision = try await store.deleteTag(
                image: image, tag: tag, expected: ExpectedRevision(wire: request.expectedRevisionIfPresent))
            logger(for: context).info("tag deleted", metadata: ["image": "\(image)", "tag": "\(tag)", "revision": "\(revision)"])
            var response = Icbd_Catalog_V1_DeleteTagResponse()
            response.revision = revision.rawValue
            return response
        }
    }

    /// Who publishes: the role check before the handler lets only replicators and admins here.
    static func publisher(_ context: RPCCallContext) -> Publisher {
        context.peer.role == .admin ? .admin : .replicator(context.peer.name)
    }

    static func newVersion(_ request: Icbd_Catalog_V1_CreateVersionRequest, publishedBy: String) throws -> NewVersion {
        let image = try WireFields.name(request.image, "image")
        guard !request.files.isEmpty else { throw WireFields.invalid("files", "a version needs at least one file") }
        var seen = Set<VersionFilePath>()
        let files = try WireFields.bounded(request.files, "files", maximum: maximumFilesPerVersion).enumerated().map { index, file in
            let field = "files[\(index)]"
            let path = try WireFields.path(file.path, "\(field).path")
            guard seen.insert(path).inserted else { throw WireFields.invalid("\(field).path", "'\(path)' appears twice") }
            let size = try WireFields.nonNegative(file.size, "\(field).size")
            let chunkSize = file.chunkSize == 0 ? ChunkManifest.defaultChunkSize : file.chunkSize
            guard ChunkManifest.isValidChunkSize(chunkSize) else {
                throw WireFields.invalid(
                    "\(field).chunk_size", "must be a power of two from \(ChunkManifest.chunkSizes.lowerBound) to \(ChunkManifest.chunkSizes.upperBound), not \(chunkSize)")
            }
            guard ChunkManifest.chunkCount(fileSize: size, chunkSize: chunkSize) <= ChunkManifest.maximumChunkCount else {
                throw WireFields.invalid(
                    field, "\(size) bytes in chunks of \(chunkSize) is more than \(ChunkManifest.maximumChunkCount) chunks; use larger chunks")
            }
            return FileSpec(
                path: path, size: size, chunkSize: chunkSize, manifestDigest: try WireFields.digest(file.manifestSha256, "\(field).manifest_sha256"))
        }
        return NewVersion(
            image: image, number: try WireFields.optionalPositive(request.number, "number"),
            parent: try WireFields.optionalPositive(request.parent, "parent"),
            btrfsUUID: try WireFields.text(request.btrfsUuid, "btrfs_uuid", maximumLength: 64), files: files, publishedBy: publishedBy)
    }
}

extension Icbd_Catalog_V1_RetireVersionRequest {
    var expectedRevisionIfPresent: Int64? { hasExpectedRevision ? expectedRevision : nil }
}

extension Icbd_Catalog_V1_MoveTagRequest {
    var expectedRevisionIfPresent: Int64? { hasExpectedRevision ? expectedRevision : nil }
}

extension Icbd_Catalog_V1_DeleteTagRequest {
    var expectedRevisionIfPresent: Int64? { hasExpectedRevision ? expectedRevision : nil }
}
