import ArgumentParser
import Foundation
import ICBDCore
import ICBDRPC
import Logging

/// `--tls-dir DIR [--name admin] [--timeout S] [--log-level L]`: the certificate a client
/// command presents and how long it waits for each answer.
struct ClientOptions: ParsableArguments {
    @Option(help: "Directory with ca.crt and the client certificate.")
    var tlsDir: String

    @Option(help: "The client certificate's name.")
    var name: String = "admin"

    @Option(help: "Seconds to wait for each answer.")
    var timeout: Int = 10

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "warning"

    func validate() throws {
        do { _ = try Name(name) } catch { throw ValidationError("--name: \(error)") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: '\(logLevel)' is not a level") }
    }

    var callOptions: RPCCallOptions { RPCCallOptions(timeout: .seconds(timeout)) }

    /// Runs `body` with a client of the service at `target`, which must have `role`.
    func withClient<R: Sendable>(_ target: HostPort, role: Role, _ body: (RPCClient) async throws -> R) async throws -> R {
        try await withClient([target], role: role, body)
    }

    /// Runs `body` with a client of the first of `targets` that answers, failing over to the others.
    func withClient<R: Sendable>(_ targets: [HostPort], role: Role, _ body: (RPCClient) async throws -> R) async throws -> R {
        var logger = Logger(label: "icbd.client") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        let configuration = try RPCClientConfiguration(
            targets: targets, expectedRole: role, tls: try TLSIdentity.load(directory: tlsDir, name: name))
        return try await withRPCClient(configuration, logger: logger, body)
    }
}

/// `--catalog HOST:PORT[,HOST:PORT…]` (also repeatable) and the client options, `--json`: how
/// a client command reaches the catalog — the first catalog process that answers — and prints
/// what it got.
struct CatalogClientOptions: ParsableArguments {
    @Option(help: "The catalog's HOST:PORT; repeat it or give a comma list for several catalog processes, tried in turn.")
    var catalog: [String]

    @OptionGroup var client: ClientOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        _ = try parseCatalogs(catalog)
    }

    var callOptions: RPCCallOptions { client.callOptions }

    /// Runs `body` with a client of the catalog.
    func withCatalog<R: Sendable>(_ body: (RPCClient) async throws -> R) async throws -> R {
        try await client.withClient(try parseCatalogs(catalog), role: .catalog, body)
    }
}

/// Parses a name argument with a message that says which one is wrong (exit 2).
func parseName(_ text: String, _ what: String) throws -> Name {
    do { return try Name(text) } catch { throw ValidationError("\(what): \(error)") }
}

/// Parses a positive number argument.
func parseNumber(_ text: String, _ what: String) throws -> Int64 {
    guard let number = Int64(text), number > 0 else { throw ValidationError("\(what): '\(text)' is not a number from 1 up") }
    return number
}
