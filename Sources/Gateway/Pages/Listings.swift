import Foundation
import HTTPTypes
import Hummingbird
import ICBDCore
import NIOCore

/// The JSON listings: `/v1/images` and `/v1/images/{image}`.
enum Listings {
    struct ImageSummary: Encodable {
        let name: String
        let description: String
        let tags: [String: Int64]
        let versions: [Int64]
        let url: String
    }

    struct FileEntry: Encodable {
        let path: String
        let size: Int64
        let chunkSize: Int64
        let etag: String
        let url: String
    }

    struct VersionEntry: Encodable {
        let number: Int64
        let parent: Int64?
        let state: String
        let created: String
        let files: [FileEntry]
        let presentOn: [String]
    }

    struct ImageDetail: Encodable {
        let name: String
        let description: String
        let tags: [String: Int64]
        let versions: [VersionEntry]
    }

    static func images(_ snapshot: CatalogSnapshot, head: Bool) throws -> Response {
        let images = snapshot.images.values.sorted { $0.image.name < $1.image.name }.map { entry in
            ImageSummary(
                name: entry.image.name.rawValue, description: entry.image.description, tags: entry.tags.mapValues(\.version),
                versions: entry.versions.values.filter { $0.state == .ready }.map(\.number).sorted(),
                url: "/v1/images/\(entry.image.name)")
        }
        return try json(["images": images], head: head)
    }

    static func image(_ name: String, _ snapshot: CatalogSnapshot, head: Bool) throws -> Response {
        guard let entry = snapshot.images[name] else { throw GatewayError.notFound("no image '\(name)'") }
        let formatter = ISO8601DateFormatter()
        let versions = entry.versions.values.sorted { $0.number < $1.number }.map { version in
            VersionEntry(
                number: version.number, parent: version.parent, state: version.state.rawValue,
                created: formatter.string(from: version.created),
                files: version.files.map { file in
                    FileEntry(
                        path: file.path.rawValue, size: file.size, chunkSize: file.chunkSize, etag: "\"\(file.manifestDigest.hexString)\"",
                        url: "/v1/images/\(name)/\(version.number)/\(file.path)")
                },
                presentOn: snapshot.repositories(holding: name, version: version.number).sorted())
        }
        return try json(
            ImageDetail(name: name, description: entry.image.description, tags: entry.tags.mapValues(\.version), versions: versions),
            head: head)
    }

    private static func json(_ value: some Encodable, head: Bool) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let body = ByteBuffer(bytes: try encoder.encode(value))
        return Response(
            status: .ok,
            headers: [.contentType: "application/json", .contentLength: "\(body.readableBytes)", .cacheControl: "no-cache"],
            body: head ? .init() : .init(byteBuffer: body))
    }
}
