import ArgumentParser
import Foundation
import ICBDCore

/// `icbd`: the one binary of the image replication and caching layer.
struct ICBD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "icbd",
        abstract: "Image replication and caching for iCBD: catalog, replicators, cache nodes and gateways.",
        version: SoftwareVersion.current,
        subcommands: [
            PKICommand.self, CatalogCommand.self, ReplicatorCommand.self, CacheCommand.self, GatewayCommand.self, HealthCommand.self, ImageCommand.self, SiteCommand.self, NodeCommand.self,
            AssignCommand.self, UnassignCommand.self, AssignmentsCommand.self, BenchCommand.self, ReplicationCommand.self, UpCommand.self, StormCommand.self, SampleCommand.self, ValidateCommand.self, RolloutCommand.self, BootCommand.self,
        ]
    )
}

/// Runs the command line. Exit codes (docs/architecture.md "Command line"): 0 success, 1 an error
/// the message explains, 2 a usage error (a bad option or argument: argument-parser's message
/// names it and says what is valid).
@main
enum Main {
    static func main() async {
        MallocTuning.apply()
        DescriptorLimit.raise()
        do {
            var command = try ICBD.parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let code = ICBD.exitCode(for: error)
            let message = ICBD.fullMessage(for: error)
            if code == .success {
                print(message)
                exit(0)
            }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            exit(code == .validationFailure ? 2 : 1)
        }
    }
}
