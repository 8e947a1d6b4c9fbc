import ArgumentParser
import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC

/// `icbd node list|drain|undrain|remove`: replicators, cache nodes and gateways.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "List nodes, drain them and remove them.",
        subcommands: [List.self, Drain.self, Undrain.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List nodes with their state, last heartbeat and, for cache nodes, the bytes held and hit ratio they reported.")

        @Option(help: "Only nodes of this site.")
        var site: Name?

        @Option(help: "Only nodes of this role.")
        var role: NodeRole?

        @OptionGroup var client: CatalogClientOptions

        struct Listing: Encodable {
            var revision: Int64
            var nodes: [NodeRecord]
        }

        func run() async throws {
            var request = Icbd_Catalog_V1_ListNodesRequest()
            request.site = site?.rawValue ?? ""
            switch role {
            case .replicator?: request.role = .replicator
            case .cache?: request.role = .cache
            case .gateway?: request.role = .gateway
            case nil: break
            }
            let response = try await client.withCatalog { try await $0.allPages(CatalogMethods.listNodes, request, options: client.callOptions) }
            let listing = Listing(revision: response.revision, nodes: try response.nodes.map(NodeRecord.init(wire:)))
            if client.json { return print(try Output.json(listing)) }
            var table = TextTable("NODE", "ROLE", "SITE", "STATE", "RPC", "HTTP", "CAPACITY", "USED", "HIT RATIO", "LAST HEARTBEAT")
            for node in listing.nodes {
                table.add(
                    node.name.rawValue, node.role.rawValue, node.site.rawValue, node.state.rawValue, node.rpcAddress?.description ?? "-",
                    node.httpAddress?.description ?? "-", node.capacityBytes == 0 ? "-" : Output.bytes(node.capacityBytes),
                    node.cacheUsage.map { Output.bytes($0.usedBytes) } ?? "-",
                    node.cacheUsage.map { String(format: "%.3f", $0.hitRatio) } ?? "-", Output.time(node.lastHeartbeat))
            }
            print(table.render())
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a node draining: it takes no new work.")

        @Argument(help: "The node.")
        var node: Name

        @OptionGroup var client: CatalogClientOptions

        func run() async throws { try await NodeCommand.setState(node: node, .draining, client: client) }
    }

    struct Undrain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a draining node up again.")

        @Argument(help: "The node.")
        var node: Name

        @OptionGroup var client: CatalogClientOptions

        func run() async throws { try await NodeCommand.setState(node: node, .up, client: client) }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a node and its placements from the catalog.")

        @Argument(help: "The node.")
        var node: Name

        @OptionGroup var client: CatalogClientOptions

        func run() async throws {
            var request = Icbd_Catalog_V1_DeleteNodeRequest()
            request.name = node.rawValue
            let response = try await client.withCatalog { try await $0.unary(CatalogMethods.deleteNode, request, options: client.callOptions) }
            if client.json { return print(try Output.json(Output.Revision(revision: response.revision))) }
            print("removed node \(node) (revision \(response.revision))")
        }
    }

    static func setState(node: Name, _ state: Icbd_Catalog_V1_NodeState, client: CatalogClientOptions) async throws {
        var request = Icbd_Catalog_V1_SetNodeStateRequest()
        request.name = node.rawValue
        request.state = state
        let response = try await client.withCatalog { try await $0.unary(CatalogMethods.setNodeState, request, options: client.callOptions) }
        let updated = try NodeRecord(wire: response.node)
        if client.json { return print(try Output.json(updated)) }
        print("node \(updated.name) is \(updated.state) (revision \(response.revision))")
    }
}
