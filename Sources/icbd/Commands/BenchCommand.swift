import ArgumentParser
import Catalog
import Foundation
import ICBDCore

/// `icbd bench AREA`: benchmarks that print ratios against a baseline measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run a benchmark (build with -c release for meaningful figures).",
        subcommands: [RPC.self, Catalog.self, Repository.self])

    struct RPC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rpc",
            abstract: "RPC streaming throughput vs a plain TLS copy, and unary latency at concurrency 1 and 64.")

        @Option(help: "MiB per throughput run (five rounds of each path; the median round is reported).")
        var megabytes = 512

        @Option(help: "Unary calls per concurrency level.")
        var calls = 20_000

        @Flag(help: "Print one JSON object.")
        var json = false

        @OptionGroup var logging: LoggingOptions

        func validate() throws {
            guard megabytes > 0, calls > 0 else { throw ValidationError("--megabytes and --calls must be positive") }
        }

        func run() async throws {
            var logging = logging
            if logging.logLevel == "info" { logging.logLevel = "warning" }
            let report = try await RPCBenchmark(
                options: .init(streamMegabytes: megabytes, unaryCalls: calls), logger: logging.makeLogger(label: "icbd.bench")
            ).run()
            print(try report.render(json: json))
        }
    }

    struct Repository: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "repository", abstract: "Manifest hashing throughput vs sha256sum of the same file.")

        @Option(help: "Size of the test file, e.g. 2GiB.")
        var size = "2GiB"

        @Option(help: "Directory for the test file (it is removed afterwards).")
        var dir = FileManager.default.temporaryDirectory.path

        @Flag(help: "Print one JSON object.")
        var json = false

        func run() async throws {
            let bytes: Int64
            do { bytes = try ByteSize(parsing: size).bytes } catch { throw ValidationError("--size: \(error)") }
            guard bytes >= 1 << 20 else { throw ValidationError("--size must be at least 1MiB") }
            let report = try await RepositoryBenchmark(fileSize: bytes, directory: dir).run()
            print(try report.render(json: json))
        }
    }

    struct Catalog: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "catalog",
            abstract: "Catalog reads and writes per second at concurrency 32, and write-to-200-watchers latency.")

        @Option(help: "Calls per measurement.")
        var calls = 5_000

        @Option(help: "Also measure two catalogs on this PostgreSQL database (postgres://USER@HOST:PORT/DB?sslmode=…), next to SQLite.")
        var db: String?

        @Option(help: "A file whose first line is the PostgreSQL password (default: PGPASSWORD).")
        var dbPasswordFile: String?

        @Flag(help: "Print one JSON object.")
        var json = false

        @OptionGroup var logging: LoggingOptions

        func validate() throws {
            guard calls >= 32 else { throw ValidationError("--calls must be at least 32") }
        }

        func run() async throws {
            var logging = logging
            if logging.logLevel == "info" { logging.logLevel = "warning" }
            var postgres: PostgresCatalogStore.Configuration?
            if let db {
                guard PostgresDatabaseURL.isPostgres(db) else { throw ValidationError("--db must be a postgres:// URL (SQLite is always measured)") }
                postgres = PostgresCatalogStore.Configuration(
                    url: try PostgresDatabaseURL(parsing: db), password: try PostgresPassword.resolve(file: dbPasswordFile))
            }
            let report = try await CatalogBenchmark(calls: calls, postgres: postgres, logger: logging.makeLogger(label: "icbd.bench")).run()
            print(try report.render(json: json))
        }
    }
}
