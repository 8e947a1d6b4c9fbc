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
    var address: String

    @Option(help: "The role the service must have (catalog, replicator, cache, gateway).")
    var role: String = "catalog"

    @OptionGroup var client: ClientOptions

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        _ = try parseHostPort(address, option: "HOST:PORT")
        guard Role(rawValue: role) != nil else { throw ValidationError("--role: '\(role)' is not a role") }
    }

    func run() async throws {
        guard let role = Role(rawValue: role) else { return }
        let answer = try await client.withClient(try parseHostPort(address, option: "HOST:PORT"), role: role) { client in
            try await client.unary(HealthMethods.check, Icbd_Rpc_V1_HealthCheckRequest(), options: self.client.callOptions)
        }
        let status = "\(answer.status)".uppercased().replacingOccurrences(of: "NOTSERVING", with: "NOT_SERVING")
        if json {
            var object: [String: String] = [
                "status": status, "role": answer.role, "node": answer.node, "site": answer.site, "version": answer.version,
            ]
            if !answer.detail.isEmpty { object["detail"] = answer.detail }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(status) \(answer.role) \(answer.node)\(answer.site.isEmpty ? "" : " site \(answer.site)") version \(answer.version)\(answer.detail.isEmpty ? "" : ": \(answer.detail)")")
        }
        guard answer.status == .serving else { throw ExitCode.failure }
    }
}
