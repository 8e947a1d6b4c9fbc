import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf
import Testing

/// The shapes `--json` prints, written from docs/catalog.md ("the same objects as JSON:
/// snake_case keys, ISO 8601 times, digests in hex, with the catalog revision they were read at"),
/// independently of the structs the commands encode; a renamed field or a changed type fails here.
enum JSONShape {
    struct Revision: Decodable { var revision: Int64 }

    struct Site: Decodable {
        var name: Name
        var description: String
        var cidrs: [CIDR]
        var links: [Link]
        var revision: Int64

        struct Link: Decodable {
            var site: Name
            var rateBytesPerSecond: Int64
            var compression: LinkCompression
        }
    }

    struct Sites: Decodable {
        var revision: Int64
        var sites: [Site]
    }

    struct Node: Decodable {
        var name: Name
        var role: NodeRole
        var site: Name
        var rpcAddress: HostPort?
        var httpAddress: HostPort?
        var capacityBytes: Int64
        var heartbeatTtlMilliseconds: Int64
        var lastHeartbeat: Date?
        var state: NodeState
        var revision: Int64
        var cacheUsage: Usage?

        struct Usage: Decodable {
            var usedBytes: Int64
            var hitRatio: Double
        }
    }

    struct Nodes: Decodable {
        var revision: Int64
        var nodes: [Node]
    }

    struct Image: Decodable {
        var name: Name
        var description: String
        var created: Date
        var homeSite: Name?
        var revision: Int64
    }

    struct Tag: Decodable {
        var image: Name
        var name: Name
        var version: Int64
        var revision: Int64
    }

    struct Version: Decodable {
        var image: Name
        var number: Int64
        var parent: Int64?
        var state: VersionState
        var btrfsUuid: String
        var created: Date
        var files: [File]
        var publishedBy: String
        var revision: Int64

        struct File: Decodable {
            var path: String
            var size: Int64
            var chunkSize: Int64
            /// SHA-256 in hex.
            var manifestDigest: String
            var manifestStored: Bool
        }
    }

    struct Placement: Decodable {
        var image: Name
        var version: Int64
        var node: Name
        var state: PlacementState
        var detail: String
        var updated: Date
        var revision: Int64
    }

    struct Images: Decodable {
        var revision: Int64
        var images: [Summary]

        struct Summary: Decodable {
            var image: Image
            var tags: [Tag]
            var newestVersion: Int64?
            var versionCount: Int
        }
    }

    struct Shown: Decodable {
        var revision: Int64
        var image: Detail

        struct Detail: Decodable {
            var image: Image
            var versions: [Version]
            var tags: [Tag]
            var placements: [Placement]
        }
    }

    struct Assignment: Decodable {
        var mac: MACAddress
        var image: Name
        /// A version number or a tag, as given.
        var version: String
        var revision: Int64
    }

    struct Assigned: Decodable {
        var assignment: Assignment
        /// What it resolves to now.
        var version: Int64?
    }

    struct Assignments: Decodable {
        var revision: Int64
        var assignments: [Assignment]
    }

    struct Replication: Decodable {
        var revision: Int64
        var placements: [Row]

        struct Row: Decodable {
            var site: String
            var node: String
            var image: String
            var version: Int64
            var state: String
            var detail: String
            var updated: Date?
        }
    }

    /// `icbd image publish --json`.
    struct Published: Decodable {
        var image: Name
        var version: Int64
        /// 0: the first version.
        var parent: Int64
        var btrfsUuid: String
        var files: [File]

        struct File: Decodable {
            var path: String
            var size: Int64
            /// The SHA-256 of the file's chunk manifest, in hex.
            var etag: String
            var zeroChunks: Int64
            var writtenBytes: Int64
            var reflinked: Bool
        }
    }

    struct Revoked: Decodable {
        var serial: String
        var name: String
        var revokedMs: Int64
        var expiresMs: Int64
        var reason: String
        var created: Bool
    }

    /// Decodes a command's standard output, which must be the JSON of `Shape`.
    static func decode<Shape: Decodable>(_ shape: Shape.Type, _ result: CommandRunner.Result) throws -> Shape {
        #expect(result.status == 0, "\(result.stderr)")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(Shape.self, from: Data(result.stdout.utf8))
        } catch {
            Issue.record("\(Shape.self): \(error)\n\(result.stdout)")
            throw error
        }
    }
}

@Suite("--json output of the client commands decodes into its documented shape")
struct CommandJSONTests {
    @Test func everyClientCommandPrintsItsDocumentedShape() async throws {
        let deployment = try await CatalogDeployment()
        let catalog = try await deployment.start()
        let address = try await catalog.listeningAddress()
        func run<Shape: Decodable>(_ shape: Shape.Type, _ arguments: [String]) async throws -> Shape {
            try JSONShape.decode(shape, try await deployment.cli(arguments + ["--json"], address))
        }

        let hq = try await run(JSONShape.Site.self, ["site", "add", "hq", "--cidr", "10.0.0.0/16"])
        #expect(hq.name.rawValue == "hq" && hq.cidrs.map(\.description) == ["10.0.0.0/16"] && hq.links.isEmpty)
        let branch = try await run(
            JSONShape.Site.self, ["site", "add", "branch", "--cidr", "10.1.0.0/16", "--link", "hq=100MB,compression=off"])
        #expect(branch.links.first?.rateBytesPerSecond == 100_000_000 && branch.links.first?.compression == .off)
        #expect(try await run(JSONShape.Sites.self, ["site", "list"]).sites.map(\.name.rawValue) == ["branch", "hq"])
        _ = try await run(JSONShape.Site.self, ["site", "add", "spare"])
        _ = try await run(JSONShape.Revision.self, ["site", "remove", "spare"])

        // A replicator publishes two versions; a cache node reports its usage.
        try await deployment.withClient(address, as: "repo1") { replicator in
            _ = try await replicator.unary(
                CatalogMethods.registerNode, .with { $0.name = "repo1"; $0.role = .replicator; $0.site = "hq"; $0.rpcAddress = "127.0.0.1:1" })
            try await publishVersion(replicator, image: "win11")
            try await publishVersion(replicator, image: "win11", size: 5 << 20)
            _ = try await replicator.unary(
                CatalogMethods.setPlacement, .with { $0.image = "win11"; $0.version = 2; $0.node = "repo1"; $0.state = .present })
        }
        try await deployment.withClient(address, as: "cache1") { cache in
            _ = try await cache.unary(
                CatalogMethods.registerNode, .with { $0.name = "cache1"; $0.role = .cache; $0.site = "hq"; $0.capacityBytes = 8 << 30 })
            _ = try await cache.unary(CatalogMethods.heartbeat, .with { $0.name = "cache1"; $0.usedBytes = 3 << 30; $0.hitRatio = 0.5 })
        }

        let created = try await run(JSONShape.Image.self, ["image", "create", "empty", "--description", "nothing yet", "--home-site", "hq"])
        #expect(created.name.rawValue == "empty" && created.homeSite?.rawValue == "hq" && created.description == "nothing yet")
        let images = try await run(JSONShape.Images.self, ["image", "list"])
        let win11 = try #require(images.images.first { $0.image.name.rawValue == "win11" })
        #expect(win11.newestVersion == 2 && win11.versionCount == 2 && win11.tags.contains { $0.name.rawValue == "latest" && $0.version == 2 })
        let shown = try await run(JSONShape.Shown.self, ["image", "show", "win11"])
        #expect(shown.image.versions.map(\.number) == [1, 2])
        let file = try #require(shown.image.versions.last?.files.first)
        #expect(file.path == "disk.raw" && file.size == 5 << 20 && file.manifestDigest.count == 64 && file.manifestStored)
        #expect(shown.image.placements.contains { $0.node.rawValue == "repo1" && $0.version == 2 && $0.state == .present })
        let tagged = try await run(JSONShape.Tag.self, ["image", "tag", "win11", "stable", "1"])
        #expect(tagged.name.rawValue == "stable" && tagged.version == 1)
        _ = try await run(JSONShape.Revision.self, ["image", "untag", "win11", "stable"])
        #expect(try await run(JSONShape.Version.self, ["image", "retire", "win11", "1"]).state == .retired)

        let nodes = try await run(JSONShape.Nodes.self, ["node", "list"])
        let cacheNode = try #require(nodes.nodes.first { $0.name.rawValue == "cache1" })
        #expect(cacheNode.role == .cache && cacheNode.cacheUsage?.hitRatio == 0.5 && cacheNode.capacityBytes == 8 << 30)
        #expect(nodes.nodes.first { $0.name.rawValue == "repo1" }?.rpcAddress == HostPort(host: "127.0.0.1", port: 1))
        #expect(try await run(JSONShape.Node.self, ["node", "drain", "cache1"]).state == .draining)
        _ = try await run(JSONShape.Revision.self, ["node", "remove", "cache1"])

        let assigned = try await run(JSONShape.Assigned.self, ["assign", "52-54-00-12-34-56", "win11"])
        #expect(assigned.assignment.mac.description == "52:54:00:12:34:56" && assigned.assignment.version == "latest" && assigned.version == 2)
        #expect(try await run(JSONShape.Assignments.self, ["assignments"]).assignments.map(\.image.rawValue) == ["win11"])
        _ = try await run(JSONShape.Revision.self, ["unassign", "52:54:00:12:34:56"])

        let replication = try await run(JSONShape.Replication.self, ["replication", "status"])
        #expect(replication.placements.contains { $0.site == "hq" && $0.node == "repo1" && $0.state == "present" }, "\(replication)")

        // Numbers and a boolean, not strings.
        let revoked = try await run(JSONShape.Revoked.self, ["pki", "revoke", "serial=3A5F01", "--reason", "lost laptop"])
        #expect(revoked.serial == "3a5f01" && revoked.created && revoked.reason == "lost laptop")
        #expect(revoked.revokedMs > 0 && revoked.expiresMs > revoked.revokedMs)
        #expect(try await run(JSONShape.Revoked.self, ["pki", "revoke", "3a:5f:01"]).created == false)

        #expect(try await catalog.stop(with: SIGTERM) == 0)
    }
}
