import ArgumentParser
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC

/// `icbd health HOST:PORT`: calls Health/Check and prints the answer; exit 1 unless SERVING.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health", abstract: "Ask a service whether it is serving.")

    @Argument(help: "The service's HOST:PORT.")
    var address: HostPort

    @Option(help: "The role the service must have.")
    var role: Role = .catalog

    @OptionGroup var client: ClientOptions

    @Flag(help: "Print JSON.")
    var json = false

    /// The answer as `--json` prints it.
    struct Answer: Encodable {
        /// SERVING, NOT_SERVING or UNKNOWN.
        var status: String
        var role: String
        var node: String
        var site: String
        var version: String
        /// Why it is not serving, or how it serves; left out when empty.
        var detail: String?
    }

    func run() async throws {
        let answer = try await client.withClient(address, role: role) { client in
            try await client.unary(HealthMethods.check, Icbd_Rpc_V1_HealthCheckRequest(), options: self.client.callOptions)
        }
        let status = "\(answer.status)".uppercased().replacingOccurrences(of: "NOTSERVING", with: "NOT_SERVING")
        if json {
            print(
                try Output.json(
                    Answer(
                        status: status, role: answer.role, node: answer.node, site: answer.site, version: answer.version,
                        detail: answer.detail.isEmpty ? nil : answer.detail)))
        } else {
            print("\(status) \(answer.role) \(answer.node)\(answer.site.isEmpty ? "" : " site \(answer.site)") version \(answer.version)\(answer.detail.isEmpty ? "" : ": \(answer.detail)")")
        }
        guard answer.status == .serving else { throw ExitCode.failure }
    }
}
