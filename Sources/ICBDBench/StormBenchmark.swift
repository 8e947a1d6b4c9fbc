import Foundation
import ICBDCore
import ICBDLocalDeployment
import ICBDProcess
import ICBDSample
import ICBDStorm

/// `icbd bench storm`: boot storms of N workstations through the gateway of `icbd up`'s
/// deployment (its cache nodes holding the template), next to the same storms against nginx
/// serving the template's files from this host: the same client, the same traces, every byte
/// checked. For each N, alternating rounds; the figure is the median round's ratio of
/// completion times.
public struct StormBenchmark: Sendable {
    var diskSize: Int64 = 1 << 30
    var counts = [50, 100, 200]
    /// Alternating rounds (icbd, nginx) per workstation count.
    var rounds = 3
    var directory: String
    /// Where to write the completion-time table (CSV) and, when gnuplot is installed, its plot.
    var plot: String?

    public init(diskSize: Int64, counts: [Int], rounds: Int, directory: String, plot: String?) {
        self.diskSize = diskSize
        self.counts = counts
        self.rounds = rounds
        self.directory = directory
        self.plot = plot
    }

    /// The issue's goal: a storm of 200 completes within 1.5× nginx's time.
    static func goal(workstations: Int) -> BenchGoal? { workstations == 200 ? .ratioAtMost(1.5) : nil }

    /// One storm's completion times.
    struct Storm {
        let p50: Double
        let p99: Double
        let max: Double
    }

    public func run() async throws -> BenchReport {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") else {
            throw BenchError("/usr/sbin/nginx is missing: run scripts/bootstrap (Debian nginx-light)")
        }
        let www = directory + "/nginx"
        defer { try? FileManager.default.removeItem(atPath: www) }
        let deployment = LocalDeployment(.init(directory: directory, keep: false, diskSize: diskSize, gatewayPort: 0))
        do {
            try await deployment.start()
            let gateway = "http://" + (await deployment.addresses["gateway-branch"] ?? "")
            let template = SampleTemplate(diskSize: diskSize)
            let expected = ExpectedTemplate(template: template, trace: BootTrace(diskSize: diskSize))
            try await NginxTemplateSite.write(template, bootScriptOf: gateway, root: www + "/root")
            let result = try await Nginx.with(root: www + "/root", directory: www, locations: NginxTemplateSite.locations) { nginx in
                let nginxURL = "http://127.0.0.1:\(nginx.port)"
                // One boot each first: it fills the caches, and the page cache with nginx's files.
                _ = try await storm("icbd, cold", 1, gateway, expected)
                _ = try await storm("nginx, cold", 1, nginxURL, expected)
                var storms: [(workstations: Int, rounds: [AlternatingRounds.Pair<Storm>])] = []
                for count in counts {
                    let pairs = try await AlternatingRounds(count: rounds).run { side in
                        try await storm(side == .ours ? "icbd" : "nginx", count, side == .ours ? gateway : nginxURL, expected)
                    }
                    storms.append((count, pairs))
                }
                return try await report(of: storms)
            }
            await deployment.stop()
            return result
        } catch {
            await deployment.stop()
            throw error
        }
    }

    private func storm(_ setup: String, _ count: Int, _ server: String, _ expected: ExpectedTemplate) async throws -> Storm {
        let outcome = try await BootStorm(gateway: server, workstations: count, expected: expected).run()
        guard outcome.failures.isEmpty else {
            throw BenchError("\(outcome.failures.count) of \(count) workstations failed (\(setup)): \(outcome.failures.first ?? "")")
        }
        say(String(format: "bench storm: %@, %d workstations: p50 %.2f s, p99 %.2f s", setup, count, outcome.percentile(0.5), outcome.percentile(0.99)))
        return Storm(p50: outcome.percentile(0.5), p99: outcome.percentile(0.99), max: outcome.seconds.max() ?? 0)
    }

    private func report(of storms: [(workstations: Int, rounds: [AlternatingRounds.Pair<Storm>])]) async throws -> BenchReport {
        var report = BenchReport(
            bench: "storm", configuration: ["diskSize": "\(ByteSize(bytes: diskSize))", "rounds": "\(rounds)", "baseline": "nginx, same host"])
        var table: [(workstations: Int, median: AlternatingRounds.Pair<Storm>)] = []
        for (count, pairs) in storms {
            let figure = BenchFigure(
                name: "storm of \(count): p99 boot time", unit: "s", baseline: "nginx, the template's files on this host",
                rounds: pairs.map { BenchRound(value: $0.ours.p99, baseline: $0.baseline.p99) }, goal: Self.goal(workstations: count))
            report.figures.append(figure)
            if let median = AlternatingRounds.medianRound(of: (figure.rounds ?? []).map(\.ratio)) { table.append((count, pairs[median])) }
        }
        if let plot { try await write(table, to: plot) }
        return report
    }

    /// `PATH.csv` (the median round of each count) always; `PATH` (a PNG) through gnuplot when
    /// it is installed.
    private func write(_ table: [(workstations: Int, median: AlternatingRounds.Pair<Storm>)], to path: String) async throws {
        var csv = "setup,workstations,p50_s,p99_s,max_s\n"
        for (setup, side) in [("icbd", \AlternatingRounds.Pair<Storm>.ours), ("nginx", \.baseline)] {
            for row in table {
                let storm = row.median[keyPath: side]
                csv += "\(setup),\(row.workstations),\(storm.p50),\(storm.p99),\(storm.max)\n"
            }
        }
        try csv.write(toFile: path + ".csv", atomically: true, encoding: .utf8)
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/gnuplot") else {
            say("bench storm: gnuplot is not installed; the table is in \(path).csv")
            return
        }
        let script = """
            set terminal pngcairo size 800,500 noenhanced
            set output '\(path)'
            set datafile separator ','
            set title 'Boot storm: completion time vs concurrent workstations (icbd bench storm, median rounds)'
            set xlabel 'workstations booting at once'
            set ylabel 'seconds to finish a boot trace'
            set key top left
            set grid
            plot '< grep "^icbd," \(path).csv' using 2:4 with linespoints title 'p99, icbd (gateway and cache nodes)', \\
                 '< grep "^icbd," \(path).csv' using 2:3 with linespoints title 'p50, icbd', \\
                 '< grep "^nginx," \(path).csv' using 2:4 with linespoints title 'p99, nginx (same files, same host)', \\
                 '< grep "^nginx," \(path).csv' using 2:3 with linespoints title 'p50, nginx'
            """
        let scriptPath = path + ".gnuplot"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: scriptPath) }
        try await SystemCommand.run("/usr/bin/gnuplot", [scriptPath])
    }
}
