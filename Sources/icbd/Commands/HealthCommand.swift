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

    @Option(help: "Directory with ca.crt and the client certificate.")
    var tlsDir: String

    @Option(help: "The client certificate's name (an admin certificate).")
    var name: String = "admin"

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Int = 5

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        _ = try parseHostPort(address, option: "HOST:PORT")
        guard Role(rawValue: role) != nil else { throw ValidationError("--role: '\(role)' is not a role") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        guard let role = Role(rawValue: role) else { return }
        let configuration = RPCClientConfiguration(
            target: try parseHostPort(address, option: "HOST:PORT"), expectedRole: role,
            tls: try TLSIdentity.load(directory: tlsDir, name: name))
        let answer = try await withRPCClient(configuration, logger: logging.makeLogger(label: "icbd.health")) { client in
            try await client.unary(
                HealthService.check, Icbd_Rpc_V1_HealthCheckRequest(), options: RPCCallOptions(timeout: .seconds(timeout)))
        }
        let status = "\(answer.status)".uppercased().replacingOccurrences(of: "NOTSERVING", with: "NOT_SERVING")
        if json {
            let object: [String: String] = [
                "status": status, "role": answer.role, "node": answer.node, "site": answer.site, "version": answer.version,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(status) \(answer.role) \(answer.node)\(answer.site.isEmpty ? "" : " site \(answer.site)") version \(answer.version)")
        }
        guard answer.status == .serving else { throw ExitCode.failure }
    }
}
