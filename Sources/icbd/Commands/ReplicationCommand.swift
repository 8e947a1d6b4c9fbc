import ArgumentParser
import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf

/// `icbd replication status`: where each version is, per site and repository.
struct ReplicationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replication", abstract: "Show replication between the sites' repositories.", subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per site and version: present, receiving (bytes, rate, ETA) or failed (why).")

        @Option(help: "Only this image.")
        var image: Name?

        @OptionGroup var client: CatalogClientOptions

        struct Row: Encodable {
            var site: String
            var node: String
            var image: String
            var version: Int64
            var state: String
            var detail: String
            var updated: Date?
        }

        struct Listing: Encodable {
            var revision: Int64
            var placements: [Row]
        }

        func run() async throws {
            let (nodes, placements) = try await client.withCatalog { catalog in
                let nodes = try await catalog.allPages(CatalogMethods.listNodes, .init(), options: client.callOptions)
                let placements = try await catalog.allPages(
                    CatalogMethods.listPlacements, .with { $0.image = image?.rawValue ?? "" }, options: client.callOptions)
                return (nodes, placements)
            }
            let siteOf = Dictionary(nodes.nodes.map { ($0.name, $0.site) }, uniquingKeysWith: { a, _ in a })
            let rows = placements.placements.map { placement in
                Row(
                    site: siteOf[placement.node] ?? "-", node: placement.node, image: placement.image, version: placement.version,
                    state: Self.name(placement.state), detail: placement.detail,
                    updated: placement.updatedMs > 0 ? Date(timeIntervalSince1970: Double(placement.updatedMs) / 1000) : nil)
            }
            .sorted { ($0.site, $0.node, $0.image, $0.version) < ($1.site, $1.node, $1.image, $1.version) }
            if client.json { return print(try Output.json(Listing(revision: placements.revision, placements: rows))) }
            var table = TextTable("SITE", "NODE", "IMAGE", "VERSION", "STATE", "UPDATED", "DETAIL")
            for row in rows {
                table.add(row.site, row.node, row.image, "\(row.version)", row.state, Output.time(row.updated), row.detail.isEmpty ? "-" : row.detail)
            }
            print(table.render())
        }

        static func name(_ state: Icbd_Catalog_V1_PlacementState) -> String {
            switch state {
            case .receiving: "receiving"
            case .present: "present"
            case .failed: "failed"
            case .deleted: "deleted"
            default: "unknown"
            }
        }
    }
}
