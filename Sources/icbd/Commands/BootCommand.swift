import ArgumentParser
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC

/// `icbd boot list`: the boots gateways reported (docs/gateway.md "Boots").
struct BootCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot", abstract: "Workstation boots, as the gateways saw them.", subcommands: [BootListCommand.self])
}

struct BootListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "The boots the catalog keeps (the last 10 per workstation), newest first.")

    @Option(help: "Only boots at this site.")
    var site: Name?

    @Option(help: "Only boots of this image.")
    var image: Name?

    @Option(help: "At most this many boots (1-1000).")
    var limit: Int32 = 100

    @OptionGroup var client: CatalogClientOptions

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000, not \(limit)") }
    }

    struct Listing: Encodable {
        var revision: Int64
        var boots: [BootReport]
    }

    func run() async throws {
        var request = Icbd_Catalog_V1_ListBootsRequest()
        request.site = site?.rawValue ?? ""
        request.image = image?.rawValue ?? ""
        request.limit = limit
        let response = try await client.withCatalog { try await $0.unary(CatalogMethods.listBoots, request, options: client.callOptions) }
        let listing = Listing(revision: response.revision, boots: try response.boots.map(BootReport.init(wire:)))
        if client.json { return print(try Output.json(listing)) }
        var table = TextTable("STARTED", "MAC", "SITE", "GATEWAY", "VERSION", "OUTCOME", "LOADED", "UP", "READ", "ERRORS")
        for boot in listing.boots {
            let outcome = boot.failure.map { "\(boot.outcome.rawValue) (\($0))" } ?? boot.outcome.rawValue
            table.add(
                Output.time(boot.started), boot.mac.description, boot.site.rawValue, boot.gateway.rawValue, "\(boot.image):\(boot.version)",
                outcome, Self.seconds(boot.loadedMilliseconds), Self.seconds(boot.upMilliseconds), Output.bytes(boot.bytesRead),
                "\(boot.errors + boot.unavailable)")
        }
        print(table.render())
    }

    private static func seconds(_ milliseconds: Int64?) -> String {
        milliseconds.map { String(format: "%.1f s", Double($0) / 1000) } ?? "-"
    }
}
