import ArgumentParser
import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC

/// `icbd image list|show|create|tag|untag|retire`: images as the catalog knows them.
struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "List, show, tag and retire images in the catalog.",
        subcommands: [List.self, Show.self, Create.self, Publish.self, Tag.self, Untag.self, Retire.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List images with their tags.")

        @OptionGroup var client: CatalogClientOptions

        /// The whole listing, read page by page; `revision` is that of the last page.
        struct Listing: Encodable {
            var revision: Int64
            var images: [ImageSummary]
        }

        func run() async throws {
            let listing = try await client.withCatalog { catalog in
                var listing = Listing(revision: 0, images: [])
                var request = Icbd_Catalog_V1_ListImagesRequest()
                request.pageSize = 1000
                repeat {
                    let page = try await catalog.unary(CatalogMethods.listImages, request, options: client.callOptions)
                    listing.images += try page.images.map(ImageSummary.init(wire:))
                    listing.revision = page.revision
                    request.pageToken = page.nextPageToken
                } while !request.pageToken.isEmpty
                return listing
            }
            if client.json { return print(try Output.json(listing)) }
            var table = TextTable("IMAGE", "NEWEST", "VERSIONS", "TAGS", "DESCRIPTION")
            for summary in listing.images {
                let tags = summary.tags.map { "\($0.name)=\($0.version)" }.joined(separator: " ")
                table.add(
                    summary.image.name.rawValue, summary.newestVersion.map(String.init) ?? "-", "\(summary.versionCount)",
                    tags.isEmpty ? "-" : tags, summary.image.description)
            }
            print(table.render())
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an image's versions, files, tags and placements.")

        @Argument(help: "The image.")
        var image: Name

        @OptionGroup var client: CatalogClientOptions

        struct Shown: Encodable {
            var revision: Int64
            var image: ImageDetail
        }

        func run() async throws {
            var request = Icbd_Catalog_V1_GetImageRequest()
            request.name = image.rawValue
            let response = try await client.withCatalog { try await $0.allPages(CatalogMethods.getImage, request, options: client.callOptions) }
            let detail = try ImageDetail(wire: response)
            if client.json { return print(try Output.json(Shown(revision: response.revision, image: detail))) }
            print(Self.render(detail))
        }

        static func render(_ detail: ImageDetail) -> String {
            var lines = [
                "image \(detail.image.name)  created \(Output.time(detail.image.created))  home site \(detail.image.homeSite?.rawValue ?? "(none yet)")"
            ]
            if !detail.image.description.isEmpty { lines.append(detail.image.description) }
            if let policy = detail.policy {
                let sites = policy.sites.isEmpty ? "every site" : policy.sites.map(\.rawValue).joined(separator: ", ")
                lines.append("policy: \(sites), keep \(policy.keepVersions) versions")
            }
            var versions = TextTable("VERSION", "STATE", "PARENT", "CREATED", "SIZE", "FILES", "TAGS", "BY")
            for version in detail.versions {
                let tags = detail.tags.filter { $0.version == version.number }.map(\.name.rawValue).joined(separator: ",")
                versions.add(
                    "\(version.number)", version.state.rawValue, version.parent.map(String.init) ?? "-", Output.time(version.created),
                    Output.bytes(version.totalSize), "\(version.files.count)", tags.isEmpty ? "-" : tags, version.publishedBy)
            }
            lines += ["", detail.versions.isEmpty ? "no versions yet" : versions.render()]
            if let newest = detail.versions.last {
                var files = TextTable("FILE", "SIZE", "CHUNK", "CHUNKS", "MANIFEST SHA-256")
                for file in newest.files {
                    files.add(
                        file.path.rawValue, Output.bytes(file.size), Output.bytes(file.chunkSize), "\(file.chunkCount)",
                        file.manifestStored ? file.manifestDigest.hexString : "(manifest not stored yet)")
                }
                lines += ["", "files of version \(newest.number):", files.render()]
            }
            if !detail.placements.isEmpty {
                var placements = TextTable("VERSION", "NODE", "STATE", "UPDATED", "DETAIL")
                for placement in detail.placements {
                    placements.add(
                        "\(placement.version)", placement.node.rawValue, placement.state.rawValue, Output.time(placement.updated),
                        placement.detail)
                }
                lines += ["", placements.render()]
            }
            return lines.joined(separator: "\n")
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an image (publishers also create it on first publish).")

        @Argument(help: "The image: [a-z0-9][a-z0-9._-]{0,63}.")
        var image: Name

        @Option(help: "What the image is, for people.")
        var description: String = ""

        @Option(help: "The site whose replicators may publish it (default: the site of the first replicator that does).")
        var homeSite: Name?

        @OptionGroup var client: CatalogClientOptions

        func run() async throws {
            var request = Icbd_Catalog_V1_CreateImageRequest()
            request.name = image.rawValue
            request.description_p = description
            request.homeSite = homeSite?.rawValue ?? ""
            let response = try await client.withCatalog { try await $0.unary(CatalogMethods.createImage, request, options: client.callOptions) }
            let created = try ImageRecord(wire: response.image)
            if client.json { return print(try Output.json(created)) }
            print("created image \(created.name) (revision \(response.revision))")
        }
    }

    struct Tag: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Point a tag at a ready version (creates or moves it; rollback = move it back).")

        @Argument(help: "The image.")
        var image: Name

        @Argument(help: "The tag: stable, testing, ... (not all digits).")
        var tag: Name

        @Argument(help: "The version number (from 1 up).")
        var version: Int64

        @Option(help: "Move only if the tag is still at this revision (0: only if it does not exist).")
        var expectedRevision: Int64?

        @OptionGroup var client: CatalogClientOptions

        func validate() throws {
            guard !tag.isAllDigits else { throw ValidationError("TAG: '\(tag)' is all digits, which reads as a version number") }
            try ImageCommand.validate(version: version)
        }

        func run() async throws {
            var request = Icbd_Catalog_V1_MoveTagRequest()
            request.image = image.rawValue
            request.tag = tag.rawValue
            request.version = version
            if let expectedRevision { request.expectedRevision = expectedRevision }
            let response = try await client.withCatalog { try await $0.unary(CatalogMethods.moveTag, request, options: client.callOptions) }
            let moved = try TagRecord(wire: response.tag)
            if client.json { return print(try Output.json(moved)) }
            print("\(moved.image):\(moved.name) -> version \(moved.version) (revision \(moved.revision))")
        }
    }

    struct Untag: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a tag.")

        @Argument(help: "The image.")
        var image: Name

        @Argument(help: "The tag.")
        var tag: Name

        @OptionGroup var client: CatalogClientOptions

        func run() async throws {
            var request = Icbd_Catalog_V1_DeleteTagRequest()
            request.image = image.rawValue
            request.tag = tag.rawValue
            let response = try await client.withCatalog { try await $0.unary(CatalogMethods.deleteTag, request, options: client.callOptions) }
            if client.json { return print(try Output.json(Output.Revision(revision: response.revision))) }
            print("deleted tag \(image):\(tag) (revision \(response.revision))")
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire a version: no longer offered; 'latest' falls back to the newest other ready version.")

        @Argument(help: "The image.")
        var image: Name

        @Argument(help: "The version number (from 1 up).")
        var version: Int64

        @OptionGroup var client: CatalogClientOptions

        func validate() throws { try ImageCommand.validate(version: version) }

        func run() async throws {
            var request = Icbd_Catalog_V1_RetireVersionRequest()
            request.image = image.rawValue
            request.number = version
            let response = try await client.withCatalog { try await $0.unary(CatalogMethods.retireVersion, request, options: client.callOptions) }
            let retired = try VersionRecord(wire: response.version)
            if client.json { return print(try Output.json(retired)) }
            print("retired version \(retired.number) of \(retired.image) (revision \(response.revision))")
        }
    }

    /// A VERSION argument: versions are numbered from 1.
    static func validate(version: Int64) throws {
        guard version >= 1 else { throw ValidationError("VERSION: '\(version)' is not a number from 1 up") }
    }
}
