import ArgumentParser
import Catalog
import Foundation
import ICBDBench
import ICBDCore

/// `icbd bench AREA`: benchmarks that print ratios against a baseline measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run a benchmark (build with -c release for meaningful figures).",
        subcommands: [RPC.self, Catalog.self, Repository.self, Replication.self, Cache.self, Gateway.self, Storm.self])

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

    struct Gateway: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gateway",
            abstract: "Random 64 KiB and 1 MiB Range reads (wrk) through a gateway from a cache node (child processes) vs nginx serving the same file.")

        @Option(help: "Size of the disk image, e.g. 1GiB.")
        var size = "1GiB"

        @Option(help: "Seconds per wrk run.")
        var seconds = 10

        @Option(help: "Rounds per range size, each a wrk run of the gateway and one of nginx, which goes first alternating; the median round is reported.")
        var rounds = 5

        @Flag(help: "Reads reach the cache node only over mutual TLS (default: the gateway is given the cache node's directory, --local-cache, as on one host).")
        var remote = false

        @Flag(help: "Measure what following boots costs instead: 64 KiB reads that belong to a boot in progress vs the same reads of no boot, alternating, against the same gateway (no nginx).")
        var bootRecording = false

        @Option(help: "wrk connections.")
        var connections = 16

        @Option(help: "The gateway's memory chunk cache: 256MiB (default, as icbd gateway); 2GiB holds the whole image; 0 sends every read to the cache node.")
        var memoryCache = "256MiB"

        @Option(help: "Directory for the image file, nginx and the cache (removed afterwards).")
        var dir = FileManager.default.temporaryDirectory.path

        @Flag(help: "Print one JSON object.")
        var json = false

        @OptionGroup var logging: LoggingOptions

        func run() async throws {
            var options = GatewayBenchmark.Options()
            do {
                let bytes = try ByteSize(parsing: size).bytes
                guard bytes >= 16 << 20, bytes % (1 << 20) == 0 else { throw ValidationError("--size must be whole MiB, at least 16MiB") }
                options.megabytes = Int(bytes >> 20)
                options.memoryCache = Int(try ByteSize(parsing: memoryCache).bytes)
            } catch let error as ValidationError {
                throw error
            } catch {
                throw ValidationError("\(error)")
            }
            guard seconds >= 1, connections >= 1, rounds >= 1 else { throw ValidationError("--seconds, --connections and --rounds must be positive") }
            options.seconds = seconds
            options.connections = connections
            options.rounds = rounds
            options.remote = remote
            options.bootRecording = bootRecording
            options.directory = dir
            var logging = logging
            if logging.logLevel == "info" { logging.logLevel = "warning" }
            let report = try await GatewayBenchmark(options: options, logger: logging.makeLogger(label: "icbd.bench")).run()
            print(try report.render(json: json))
        }
    }

    struct Repository: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "repository",
            abstract: "Manifest hashing vs sha256sum; publish time of a VM-like disk vs cp, and of a next version.")

        @Option(help: "Size of the hashing test file, e.g. 2GiB.")
        var size = "2GiB"

        @Option(help: "Directory for the hashing test file (it is removed afterwards).")
        var dir = FileManager.default.temporaryDirectory.path

        @Option(help: "Size of the published disk image, e.g. 1GiB.")
        var diskSize = "1GiB"

        @Option(help: "A BTRFS directory for the publish figures; default: a loop-mounted one (needs root).")
        var btrfsDir: String?

        @Flag(help: "Print one JSON object.")
        var json = false

        @OptionGroup var logging: LoggingOptions

        mutating func run() async throws {
            let bytes: Int64
            let disk: Int64
            do { bytes = try ByteSize(parsing: size).bytes } catch { throw ValidationError("--size: \(error)") }
            do { disk = try ByteSize(parsing: diskSize).bytes } catch { throw ValidationError("--disk-size: \(error)") }
            guard bytes >= 1 << 20 else { throw ValidationError("--size must be at least 1MiB") }
            guard disk >= 64 << 20 else { throw ValidationError("--disk-size must be at least 64MiB") }
            if logging.logLevel == "info" { logging.logLevel = "warning" }
            var report = try await RepositoryBenchmark(fileSize: bytes, directory: dir).run()
            if btrfsDir == nil && getuid() != 0 {
                FileHandle.standardError.write(Data("publish figures skipped: they need root for a loop-mounted BTRFS, or --btrfs-dir\n".utf8))
            } else {
                report.figures += try await PublishBenchmark(
                    diskSize: disk, btrfsDirectory: btrfsDir, logger: logging.makeLogger(label: "icbd.bench")
                ).run()
            }
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

    struct Cache: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cache",
            abstract: "Cache hit path vs page cache reads, a miss storm's upstream bytes, S3-FIFO vs LRU on a boot trace.")

        @Option(help: "Concurrent callers of the miss storm.")
        var callers = 200

        @Option(help: "MiB of the version every caller reads (1 MiB chunks).")
        var versionMegabytes = 64

        @Option(help: "MiB per hit-path round (five rounds of each path; the median is reported).")
        var hitMegabytes = 2048

        @Option(help: "Directory for the cache (removed afterwards).")
        var dir = FileManager.default.temporaryDirectory.path

        @Flag(help: "Print one JSON object.")
        var json = false

        @OptionGroup var logging: LoggingOptions

        func validate() throws {
            guard callers > 0, (1...1024).contains(versionMegabytes), hitMegabytes > 0 else {
                throw ValidationError("--callers and --hit-megabytes must be positive, --version-megabytes from 1 to 1024")
            }
        }

        func run() async throws {
            var logging = logging
            if logging.logLevel == "info" { logging.logLevel = "error" }
            let report = try await CacheBenchmark(
                options: .init(callers: callers, versionMegabytes: versionMegabytes, hitMegabytes: hitMegabytes, directory: dir),
                logger: logging.makeLogger(label: "icbd.bench")
            ).run()
            print(try report.render(json: json))
        }
    }

    struct Replication: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replication",
            abstract: "Full and incremental replication between two loop-mounted BTRFS vs btrfs send | btrfs receive and | ssh (needs root).")

        @Option(help: "Size of the VM-like image, e.g. 1GiB.")
        var size = "1GiB"

        @Option(help: "Full transfers timed against the pipe, each of its own image; the median round is reported (1 to 9).")
        var rounds = 3

        @Flag(help: "Also over an emulated 100 Mbit/s WAN (network namespace, veth, tc tbf): icbd with lz4 vs uncompressed ssh.")
        var wan = false

        @Option(help: "Directory for the loop files (removed afterwards).")
        var dir = FileManager.default.temporaryDirectory.path

        @Flag(help: "Print one JSON object.")
        var json = false

        @OptionGroup var logging: LoggingOptions

        func run() async throws {
            let bytes: Int64
            do { bytes = try ByteSize(parsing: size).bytes } catch { throw ValidationError("--size: \(error)") }
            guard bytes >= 64 << 20, bytes % (1 << 20) == 0 else { throw ValidationError("--size must be whole MiB, at least 64MiB") }
            guard (1...9).contains(rounds) else { throw ValidationError("--rounds must be 1 to 9, not \(rounds)") }
            var logging = logging
            if logging.logLevel == "info" { logging.logLevel = "warning" }
            let logger = logging.makeLogger(label: "icbd.bench")
            var bench = ReplicationBenchmark(imageSize: bytes, directory: dir, logger: logger)
            bench.roundCount = rounds
            var report = try await bench.run()
            if wan { report.figures += try await WANReplicationBenchmark(imageSize: bytes, directory: dir, logger: logger).run() }
            print(try report.render(json: json))
        }
    }

    struct Storm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "storm",
            abstract: "Boot storms of 50, 100 and 200 workstations through icbd up's gateway vs nginx serving the template's files (needs root).")

        @Option(help: "Size of the sample template's disk.")
        var diskSize = "1GiB"

        @Option(help: "Workstation counts, comma-separated.")
        var workstations = "50,100,200"

        @Option(help: "Rounds per workstation count, each a storm through icbd and one against nginx, which goes first alternating; the median round is reported.")
        var rounds = 3

        @Option(help: "Directory for the deployment (removed afterwards).")
        var dir = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-bench-storm").path

        @Option(help: "Write the completion times to PATH.csv and their plot to PATH (PNG, with gnuplot).")
        var plot: String?

        @Flag(help: "Print one JSON object.")
        var json = false

        func validate() throws {
            guard getuid() == 0 else { throw ValidationError("bench storm needs root: it runs icbd up's deployment (loop-mounted BTRFS)") }
            guard (try? ByteSize(parsing: diskSize)) != nil else { throw ValidationError("--disk-size: give a size such as 1GiB") }
            guard !counts.isEmpty, counts.count == workstations.split(separator: ",").count, counts.allSatisfy({ (1...2000).contains($0) })
            else {
                throw ValidationError("--workstations: comma-separated counts from 1 to 2000, e.g. 50,100,200")
            }
            guard rounds >= 1 else { throw ValidationError("--rounds must be positive") }
        }

        private var counts: [Int] { workstations.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

        func run() async throws {
            let report = try await StormBenchmark(
                diskSize: try ByteSize(parsing: diskSize).bytes, counts: counts, rounds: rounds, directory: dir, plot: plot
            ).run()
            print(try report.render(json: json))
        }
    }
}
