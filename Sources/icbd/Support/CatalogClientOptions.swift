import ArgumentParser
import ICBDCore
import ICBDRPC
import Logging

/// `--tls-dir DIR [--name admin] [--timeout S] [--log-level L]`: the certificate a client
/// command presents and how long it waits for each answer.
struct ClientOptions: ParsableArguments {
    @Option(help: "Directory with ca.crt and the client certificate.")
    var tlsDir: String

    @Option(help: "The client certificate's name.")
    var name = Name.admin

    @Option(help: "Seconds to wait for each answer.")
    var timeout: Int = 10

    @Option(help: "The least important events logged.")
    var logLevel: Logger.Level = .warning

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    var callOptions: RPCCallOptions { RPCCallOptions(timeout: .seconds(timeout)) }

    /// Runs `body` with a client of the service at `target`, which must have `role`.
    func withClient<R: Sendable>(_ target: HostPort, role: Role, _ body: (RPCClient) async throws -> R) async throws -> R {
        try await withClient([target], role: role, body)
    }

    /// Runs `body` with a client of the first of `targets` that answers, failing over to the others.
    func withClient<R: Sendable>(_ targets: [HostPort], role: Role, _ body: (RPCClient) async throws -> R) async throws -> R {
        var logger = Logger(label: "icbd.client") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = logLevel
        let configuration = try RPCClientConfiguration(
            targets: targets, expectedRole: role, tls: try TLSIdentity.load(directory: tlsDir, name: name.rawValue))
        return try await withRPCClient(configuration, logger: logger, body)
    }
}

/// `--catalog HOST:PORT[,HOST:PORT…]` (also repeatable) and the client options, `--json`: how
/// a client command reaches the catalog — the first catalog process that answers — and prints
/// what it got.
struct CatalogClientOptions: ParsableArguments {
    @OptionGroup var catalog: CatalogAddressOptions

    @OptionGroup var client: ClientOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    var callOptions: RPCCallOptions { client.callOptions }

    /// Runs `body` with a client of the catalog.
    func withCatalog<R: Sendable>(_ body: (RPCClient) async throws -> R) async throws -> R {
        try await client.withClient(catalog.addresses, role: .catalog, body)
    }
}
