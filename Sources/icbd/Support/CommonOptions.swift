import ArgumentParser
import ICBDCore
import ICBDRPC
import Logging

/// `--tls-dir DIR --name NAME`: where a service or client finds `ca.crt`, `NAME.crt`, `NAME.key`.
struct TLSOptions: ParsableArguments {
    @Option(help: "Directory with ca.crt, NAME.crt and NAME.key (made by `icbd pki`).")
    var tlsDir: String

    @Option(help: "This node's name; also the certificate's file name.")
    var name: Name

    @Option(help: "Seconds between reads of the catalog's certificate revocation list (1 to 30).")
    var revocationRefresh: Int = 30

    func validate() throws {
        guard (1...30).contains(revocationRefresh) else {
            throw ValidationError("--revocation-refresh must be 1 to 30 seconds, not \(revocationRefresh)")
        }
    }

    /// The service's identity; refuses a directory holding `ca.key` or a key others can read.
    func identity() throws -> TLSIdentity {
        var identity = try TLSIdentity.load(directory: tlsDir, name: name.rawValue)
        identity.revocations = RevocationList(refreshInterval: .seconds(revocationRefresh))
        return identity
    }
}

/// `--log-level`.
struct LoggingOptions: ParsableArguments {
    @Option(name: .customLong("log-level"), help: "The least important events logged.")
    var level: Logger.Level = .info

    /// The level's name. `icbd bench` reads and lowers the default through it (`"info"` →
    /// `"warning"`); a name that is not a level leaves the level as it is.
    var logLevel: String {
        get { level.rawValue }
        set { level = Logger.Level(rawValue: newValue) ?? level }
    }

    /// A logger writing one structured line per event to standard error.
    func makeLogger(label: String) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = level
        return logger
    }
}

/// `--catalog HOST:PORT[,HOST:PORT…]`, given once or more: the catalog processes to use, in
/// the order they are tried.
struct CatalogAddressOptions: ParsableArguments {
    @Option(help: "The catalog's HOST:PORT; repeat it or give a comma list for several catalog processes, tried in turn.")
    var catalog: [HostPortList]

    /// At most this many catalog processes.
    static let maximumCount = 16

    func validate() throws {
        guard addresses.count <= Self.maximumCount else {
            throw ValidationError("--catalog: at most \(Self.maximumCount) catalogs, not \(addresses.count)")
        }
    }

    /// Every address, in the order given (at least one).
    var addresses: [HostPort] { catalog.flatMap(\.addresses) }
}
