import ArgumentParser
import ICBDCore
import ICBDRPC

/// `icbd pki init|issue`: the deployment CA and node certificates.
struct PKICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Create the deployment CA and issue node certificates.",
        subcommands: [Init.self, Issue.self]
    )

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create DIR/ca.crt and DIR/ca.key (P-256).")

        @Option(help: "Directory for the CA's files; created if missing.")
        var dir: String

        func run() async throws {
            try PKIDirectory(path: dir).initialize()
            print("created \(dir)/ca.crt and \(dir)/ca.key")
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue DIR/NAME.crt and DIR/NAME.key for a service or operator.")

        @Option(help: "Directory holding the CA.")
        var dir: String

        @Option(help: "catalog, replicator, cache, gateway or admin.")
        var role: String

        @Option(help: "The node's name: [a-z0-9][a-z0-9._-]{0,63}.")
        var name: String

        @Option(help: "A DNS name the node is reached by (repeatable).")
        var dns: [String] = []

        @Option(help: "An IP address the node is reached by (repeatable).")
        var ip: [String] = []

        func validate() throws {
            guard Role(rawValue: role) != nil else {
                throw ValidationError("--role: '\(role)' is not one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            do { _ = try Name(name) } catch { throw ValidationError("--name: \(error)") }
        }

        func run() async throws {
            guard let role = Role(rawValue: role) else { return }
            let written = try PKIDirectory(path: dir).issue(
                PeerIdentity(role: role, name: name), dnsNames: dns, ipAddresses: ip)
            print("issued icbd://\(role)/\(name): \(written.joined(separator: ", "))")
        }
    }
}
