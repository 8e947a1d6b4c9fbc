import ArgumentParser
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC

/// `icbd rollout start|pause|resume|abort|status`: staged rollouts (docs/catalog.md "Rollouts").
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout", abstract: "Move a tag to a new version a slice of workstations at a time, judged by their boots.",
        subcommands: [RolloutStartCommand.self, RolloutPauseCommand.self, RolloutResumeCommand.self, RolloutAbortCommand.self, RolloutStatusCommand.self])

    /// How a rollout is printed for people.
    static func describe(_ rollout: RolloutRecord) -> String {
        let site = rollout.site.map { " at site \($0)" } ?? ""
        return "\(rollout.image):\(rollout.tag) version \(rollout.fromVersion) → \(rollout.toVersion)\(site): \(rollout.state.rawValue), step \(rollout.step + 1) of \(rollout.steps.count) (\(RolloutRecord.percent(rollout.slice))); \(rollout.detail) (revision \(rollout.revision))"
    }
}

struct RolloutStartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start rolling TAG of IMAGE out to VERSION.",
        discussion: """
            The tag resolves to VERSION for a slice of the workstations (chosen by a hash of MAC and rollout, so a \
            workstation stays in its slice) and to its current version for the others. Each step waits for --min-boots \
            boots of VERSION; their failure rate may exceed the old version's by --max-failure-rate and their mean time \
            to up may be --max-slowdown times the old one's. Then the slice grows; after the last step the tag moves. \
            Otherwise the rollout rolls back: everyone boots the old version.
            """)

    @Argument(help: "The image.")
    var image: Name

    @Argument(help: "The tag to roll out (not latest).")
    var tag: Name

    @Argument(help: "The version the tag moves to.")
    var version: Int64

    @Option(help: "The slices, growing, the last 100%.")
    var steps: RolloutSteps

    @Option(help: "Only this site's workstations are in the slices (the tag still moves for every site at the end).")
    var site: Name?

    @Option(help: "Boots of the new version each step waits for.")
    var minBoots: Int64 = RolloutCriteria.default.minimumBoots

    @Option(help: "How much higher (0-1) the new version's failure rate may be than the old one's.")
    var maxFailureRate: Double = RolloutCriteria.default.maximumFailureRate

    @Option(help: "How many times the old version's mean time to up the new version's may take.")
    var maxSlowdown: Double = RolloutCriteria.default.maximumSlowdown

    @OptionGroup var client: CatalogClientOptions

    func run() async throws {
        var request = Icbd_Catalog_V1_StartRolloutRequest()
        request.image = image.rawValue
        request.tag = tag.rawValue
        request.version = version
        request.steps = steps.basisPoints.map { Int32(clamping: $0) }
        request.site = site?.rawValue ?? ""
        request.minBoots = minBoots
        request.maxFailureRate = maxFailureRate
        request.maxSlowdown = maxSlowdown
        let response = try await client.withCatalog { try await $0.unary(CatalogMethods.startRollout, request, options: client.callOptions) }
        let rollout = try RolloutRecord(wire: response.rollout)
        if client.json { return print(try Output.json(rollout)) }
        print("rollout started: " + RolloutCommand.describe(rollout))
    }
}

/// Pause, resume and abort: one word to the catalog.
protocol RolloutControlCommand: AsyncParsableCommand {
    var image: Name { get }
    var tag: Name { get }
    var client: CatalogClientOptions { get }
    static var action: Icbd_Catalog_V1_ControlRolloutRequest.Action { get }
}

extension RolloutControlCommand {
    func run() async throws {
        var request = Icbd_Catalog_V1_ControlRolloutRequest()
        request.image = image.rawValue
        request.tag = tag.rawValue
        request.action = Self.action
        let response = try await client.withCatalog { try await $0.unary(CatalogMethods.controlRollout, request, options: client.callOptions) }
        let rollout = try RolloutRecord(wire: response.rollout)
        if client.json { return print(try Output.json(rollout)) }
        print(RolloutCommand.describe(rollout))
    }
}

struct RolloutPauseCommand: RolloutControlCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Stop a rollout's slice from growing (it keeps its version).")
    static let action = Icbd_Catalog_V1_ControlRolloutRequest.Action.pause
    @Argument(help: "The image.") var image: Name
    @Argument(help: "The tag.") var tag: Name
    @OptionGroup var client: CatalogClientOptions
}

struct RolloutResumeCommand: RolloutControlCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Let a paused rollout's slice grow again.")
    static let action = Icbd_Catalog_V1_ControlRolloutRequest.Action.resume
    @Argument(help: "The image.") var image: Name
    @Argument(help: "The tag.") var tag: Name
    @OptionGroup var client: CatalogClientOptions
}

struct RolloutAbortCommand: RolloutControlCommand {
    static let configuration = CommandConfiguration(commandName: "abort", abstract: "Stop a rollout: every workstation boots the old version again.")
    static let action = Icbd_Catalog_V1_ControlRolloutRequest.Action.abort
    @Argument(help: "The image.") var image: Name
    @Argument(help: "The tag.") var tag: Name
    @OptionGroup var client: CatalogClientOptions
}

struct RolloutStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Every tag's rollout: running, or how the last one ended.")

    @OptionGroup var client: CatalogClientOptions

    struct Listing: Encodable {
        var revision: Int64
        var rollouts: [RolloutRecord]
    }

    func run() async throws {
        let response = try await client.withCatalog {
            try await $0.allPages(CatalogMethods.listRollouts, Icbd_Catalog_V1_ListRolloutsRequest(), options: client.callOptions)
        }
        let listing = Listing(revision: response.revision, rollouts: try response.rollouts.map(RolloutRecord.init(wire:)))
        if client.json { return print(try Output.json(listing)) }
        var table = TextTable("IMAGE", "TAG", "FROM", "TO", "SITE", "STEP", "STATE", "BOOTS", "FAILED", "DETAIL")
        for rollout in listing.rollouts {
            table.add(
                rollout.image.rawValue, rollout.tag.rawValue, "\(rollout.fromVersion)", "\(rollout.toVersion)", rollout.site?.rawValue ?? "every",
                "\(rollout.step + 1)/\(rollout.steps.count) (\(RolloutRecord.percent(rollout.slice)))", rollout.state.rawValue,
                "\(rollout.progress.boots)", "\(rollout.progress.failed)", rollout.detail)
        }
        print(table.render())
    }
}
