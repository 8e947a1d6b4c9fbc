import ArgumentParser
import Foundation
import ICBDCore
import ICBDRPC
import Logging

/// `--tls-dir DIR --name NAME`: where a service or client finds `ca.crt`, `NAME.crt`, `NAME.key`.
struct TLSOptions: ParsableArguments {
    @Option(help: "Directory with ca.crt, NAME.crt and NAME.key (made by `icbd pki`).")
    var tlsDir: String

    @Option(help: "This node's name; also the certificate's file name.")
    var name: String

    @Option(help: "Seconds between reads of the catalog's certificate revocation list (1 to 30).")
    var revocationRefresh: Int = 30

    func validate() throws {
        do { _ = try Name(name) } catch { throw ValidationError("--name: \(error)") }
        guard (1...30).contains(revocationRefresh) else {
            throw ValidationError("--revocation-refresh must be 1 to 30 seconds, not \(revocationRefresh)")
        }
    }

    /// The service's identity; refuses a directory holding `ca.key` or a key others can read.
    func identity() throws -> TLSIdentity {
        var identity = try TLSIdentity.load(directory: tlsDir, name: name)
        identity.revocations = RevocationList(refreshInterval: .seconds(revocationRefresh))
        return identity
    }
}

/// `--log-level`.
struct LoggingOptions: ParsableArguments {
    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level: '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
    }

    /// A logger writing one structured line per event to standard error.
    func makeLogger(label: String) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}

/// Parses `--catalog`, given once or more, each a `HOST:PORT` or a comma list of them: the
/// catalog processes to use, in the order they are tried (at least one).
func parseCatalogs(_ values: [String], option: String = "--catalog") throws -> [HostPort] {
    let addresses = try values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
        .map { try parseHostPort($0.trimmingCharacters(in: .whitespaces), option: option) }
    guard !addresses.isEmpty else { throw ValidationError("\(option): give at least one HOST:PORT") }
    guard addresses.count <= 16 else { throw ValidationError("\(option): at most 16 catalogs, not \(addresses.count)") }
    return addresses
}

/// Parses a `HOST:PORT` option with a message that says what is wrong.
func parseHostPort(_ text: String, option: String) throws -> HostPort {
    do { return try HostPort(parsing: text) } catch { throw ValidationError("\(option): \(error)") }
}
