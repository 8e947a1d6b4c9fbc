import ArgumentParser
import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC

/// `icbd site add|list|remove`: sites and the workstation ranges they own.
struct SiteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "site", abstract: "Add, list and remove sites.", subcommands: [Add.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a site with the CIDR ranges of its workstations (ranges of different sites may not overlap).")

        @Argument(help: "The site: [a-z0-9][a-z0-9._-]{0,63}.")
        var site: Name

        @Option(help: "A range of the site's workstations, e.g. 10.1.0.0/16 or 2001:db8:1::/48 (repeatable).")
        var cidr: [CIDR] = []

        @Option(
            help: ArgumentHelp(
                "A WAN link to another site: SITE[=RATE][,compression=auto|on|off] (repeatable).",
                discussion: """
                    RATE is in bytes per second with a unit, e.g. hq=12MB. Compression is lz4 on replication \
                    transfers over the link: auto (the default) turns it on for links slower than 1 Gbit/s; \
                    on or off force it, e.g. hq=12MB,compression=off.
                    """))
        var link: [SiteLink] = []

        @Option(help: "What the site is, for people.")
        var description: String = ""

        @Flag(help: "Replace the site if it exists instead of refusing.")
        var replace = false

        @OptionGroup var client: CatalogClientOptions

        func validate() throws {
            if let (a, b) = firstOverlap(in: cidr) { throw ValidationError("--cidr: \(a) overlaps \(b)") }
        }

        func run() async throws {
            var request = Icbd_Catalog_V1_PutSiteRequest()
            request.site.name = site.rawValue
            request.site.description_p = description
            request.site.cidrs = cidr.map(\.description)
            request.site.links = link.map { link in
                var wire = Icbd_Catalog_V1_SiteLink()
                wire.site = link.site.rawValue
                wire.rateBytesPerSecond = link.rateBytesPerSecond
                wire.compression = Icbd_Catalog_V1_LinkCompression(link.compression)
                return wire
            }
            if !replace { request.expectedRevision = 0 }
            let response = try await client.withCatalog { try await $0.unary(CatalogMethods.putSite, request, options: client.callOptions) }
            let added = try SiteRecord(wire: response.site)
            if client.json { return print(try Output.json(added)) }
            let ranges = added.cidrs.isEmpty ? "no ranges" : added.cidrs.map(\.description).joined(separator: ", ")
            print("\(response.created ? "added" : "updated") site \(added.name): \(ranges) (revision \(response.revision))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List sites with their ranges and links.")

        @OptionGroup var client: CatalogClientOptions

        struct Listing: Encodable {
            var revision: Int64
            var sites: [SiteRecord]
        }

        func run() async throws {
            let response = try await client.withCatalog {
                try await $0.allPages(CatalogMethods.listSites, Icbd_Catalog_V1_ListSitesRequest(), options: client.callOptions)
            }
            let listing = Listing(revision: response.revision, sites: try response.sites.map(SiteRecord.init(wire:)))
            if client.json { return print(try Output.json(listing)) }
            var table = TextTable("SITE", "CIDRS", "LINKS", "DESCRIPTION")
            for site in listing.sites {
                let links = site.links.map { link in
                    (link.rateBytesPerSecond == 0 ? "\(link.site)" : "\(link.site)=\(Output.bytes(link.rateBytesPerSecond))/s")
                        + (link.compression == .auto ? "" : ",compression=\(link.compression.rawValue)")
                }
                table.add(
                    site.name.rawValue, site.cidrs.isEmpty ? "-" : site.cidrs.map(\.description).joined(separator: ","),
                    links.isEmpty ? "-" : links.joined(separator: ","), site.description)
            }
            print(table.render())
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a site that has no nodes, links or policies naming it.")

        @Argument(help: "The site.")
        var site: Name

        @OptionGroup var client: CatalogClientOptions

        func run() async throws {
            var request = Icbd_Catalog_V1_DeleteSiteRequest()
            request.name = site.rawValue
            let response = try await client.withCatalog { try await $0.unary(CatalogMethods.deleteSite, request, options: client.callOptions) }
            if client.json { return print(try Output.json(Output.Revision(revision: response.revision))) }
            print("removed site \(site) (revision \(response.revision))")
        }
    }
}
