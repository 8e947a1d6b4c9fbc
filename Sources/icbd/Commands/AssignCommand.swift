import ArgumentParser
import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC

/// `icbd assign MAC IMAGE[:REF]`: which image a workstation boots.
struct AssignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assign", abstract: "Assign the image a workstation boots (REF: a version number or a tag; default latest).")

    @Argument(help: "The workstation's MAC address: 52:54:00:12:34:56, 52-54-00-12-34-56 or 525400123456.")
    var mac: MACAddress

    @Argument(help: "IMAGE, IMAGE:TAG or IMAGE:VERSION.")
    var image: ImageReference

    @OptionGroup var client: CatalogClientOptions

    func run() async throws {
        var request = Icbd_Catalog_V1_AssignRequest()
        request.mac = mac.description
        request.image = image.image.rawValue
        request.ref = image.version.description
        let (assignment, version) = try await client.withCatalog { catalog in
            let response = try await catalog.unary(CatalogMethods.assign, request, options: client.callOptions)
            var get = Icbd_Catalog_V1_GetAssignmentRequest()
            get.mac = response.assignment.mac
            let resolved = try await catalog.unary(CatalogMethods.getAssignment, get, options: client.callOptions)
            return (try AssignmentRecord(wire: response.assignment), try VersionRecord(wire: resolved.version))
        }
        if client.json { return print(try Output.json(AssignmentsCommand.Row(assignment: assignment, version: version.number))) }
        print("\(assignment.mac) boots \(assignment.image):\(assignment.version) (now version \(version.number); revision \(assignment.revision))")
    }
}

/// `icbd unassign MAC`.
struct UnassignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unassign", abstract: "Remove a workstation's assignment.")

    @Argument(help: "The workstation's MAC address.")
    var mac: MACAddress

    @OptionGroup var client: CatalogClientOptions

    func run() async throws {
        var request = Icbd_Catalog_V1_UnassignRequest()
        request.mac = mac.description
        let response = try await client.withCatalog { try await $0.unary(CatalogMethods.unassign, request, options: client.callOptions) }
        if client.json { return print(try Output.json(Output.Revision(revision: response.revision))) }
        print("\(request.mac) has no assignment now (revision \(response.revision))")
    }
}

/// `icbd assignments`: every workstation's assignment.
struct AssignmentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "assignments", abstract: "List workstation assignments.")

    @OptionGroup var client: CatalogClientOptions

    struct Row: Encodable {
        var assignment: AssignmentRecord
        /// What it resolves to now; nil if it resolves to nothing.
        var version: Int64?
    }

    struct Listing: Encodable {
        var revision: Int64
        var assignments: [AssignmentRecord]
    }

    func run() async throws {
        let response = try await client.withCatalog {
            try await $0.allPages(CatalogMethods.listAssignments, Icbd_Catalog_V1_ListAssignmentsRequest(), options: client.callOptions)
        }
        let listing = Listing(revision: response.revision, assignments: try response.assignments.map(AssignmentRecord.init(wire:)))
        if client.json { return print(try Output.json(listing)) }
        var table = TextTable("MAC", "IMAGE", "REF")
        for assignment in listing.assignments {
            table.add(assignment.mac.description, assignment.image.rawValue, assignment.version.description)
        }
        print(table.render())
    }
}
