import Foundation

/// A `postgres://USER@HOST:PORT/DATABASE?sslmode=MODE` catalog database, as `--db` takes it.
///
/// The password never goes in the URL (it would show in `ps` and in logs): it comes from
/// `PGPASSWORD` or from a file (`--db-password-file`).
public struct PostgresDatabaseURL: Sendable, Equatable, CustomStringConvertible {
    /// How the connection to the database is protected, with libpq's names.
    public enum SSLMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, without verifying it (libpq's default).
        case prefer
        /// TLS always; the server's certificate is not verified (as libpq).
        case require
        /// TLS always; the certificate must chain to `sslrootcert` and name the host.
        case verifyFull = "verify-full"
    }

    public var user: String
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode
    /// The CA file (PEM) that `verify-full` checks the server against; the system's roots when nil.
    public var sslRootCertificate: String?

    /// Whether `--db` names a PostgreSQL database rather than an SQLite file.
    public static func isPostgres(_ value: String) -> Bool {
        value.hasPrefix("postgres://") || value.hasPrefix("postgresql://")
    }

    public init(parsing text: String) throws {
        func invalid(_ problem: String) -> CatalogStoreError {
            CatalogStoreError(
                .invalidArgument,
                "--db \(Self.redacted(text)): \(problem); expected postgres://USER@HOST:PORT/DATABASE?sslmode=disable|prefer|require|verify-full"
            )
        }
        guard Self.isPostgres(text), let components = URLComponents(string: text) else { throw invalid("not a postgres:// URL") }
        guard components.password == nil else {
            throw invalid("the URL holds a password; pass it in PGPASSWORD or --db-password-file instead, where ps and logs do not show it")
        }
        guard let user = components.user, !user.isEmpty else { throw invalid("no user") }
        guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw invalid("port \(port) is out of range") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw invalid("no database name after the host") }
        var sslMode = SSLMode.prefer
        var rootCertificate: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = SSLMode(rawValue: value) else {
                    throw invalid("sslmode '\(item.value ?? "")' is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                sslMode = mode
            case "sslrootcert":
                guard let value = item.value, !value.isEmpty else { throw invalid("sslrootcert is empty") }
                rootCertificate = value
            default:
                throw invalid("unknown parameter '\(item.name)'")
            }
        }
        self.user = user.removingPercentEncoding ?? user
        self.host = host
        self.port = port
        self.database = database.removingPercentEncoding ?? database
        self.sslMode = sslMode
        self.sslRootCertificate = rootCertificate
    }

    public var description: String {
        "postgres://\(user)@\(host):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }

    /// The text without anything between `//` and `@` but the user, for error messages.
    static func redacted(_ text: String) -> String {
        guard let components = URLComponents(string: text), components.password != nil else { return text }
        var copy = components
        copy.password = "***"
        return copy.string ?? "postgres://…"
    }
}

/// The password of the catalog's database: `--db-password-file` when given (its first line),
/// else `PGPASSWORD`, else none (trust or certificate authentication).
public enum PostgresPassword {
    public static func resolve(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String? {
        if let file {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                throw CatalogStoreError(.invalidArgument, "--db-password-file \(file) cannot be read: \(error.localizedDescription)")
            }
            let password = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard !password.isEmpty else { throw CatalogStoreError(.invalidArgument, "--db-password-file \(file) is empty") }
            return password
        }
        return environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
    }
}
