import Foundation
import ICBDCore
import ICBDLocalDeployment
import ICBDProcess
import ICBDSample
import ICBDStorm

/// `icbd bench storm`: boot storms of N workstations through the gateway of `icbd up`'s
/// deployment, with the branch's cache nodes and then without them (every read from a
/// repository: the baseline), as completion times and their ratio to one workstation's boot.
public struct StormBenchmark: Sendable {
    var diskSize: Int64 = 1 << 30
    var counts = [50, 100, 200]
    var directory: String
    /// Where to write the completion-time table (CSV) and, when gnuplot is installed, its plot.
    var plot: String?

    public init(diskSize: Int64, counts: [Int], directory: String, plot: String?) {
        self.diskSize = diskSize
        self.counts = counts
        self.directory = directory
        self.plot = plot
    }

    struct Row {
        let setup: String
        let workstations: Int
        let p50: Double
        let p99: Double
        let max: Double
        let bytes: Int64
    }

    public func run() async throws -> BenchReport {
        let deployment = LocalDeployment(.init(directory: directory, keep: false, diskSize: diskSize, gatewayPort: 0))
        do {
            try await deployment.start()
            let gateway = "http://" + (await deployment.addresses["gateway-branch"] ?? "")
            let template = SampleTemplate(diskSize: diskSize)
            let expected = ExpectedTemplate(template: template, trace: BootTrace(diskSize: diskSize))
            var rows: [Row] = []
            // With caches: one boot fills them (a cold boot), then the storms.
            rows.append(try await storm("caches, cold", 1, gateway, expected))
            rows.append(try await storm("caches", 1, gateway, expected))
            for count in counts { rows.append(try await storm("caches", count, gateway, expected)) }
            await deployment.stopService("cache-branch-1")
            await deployment.stopService("cache-branch-2")
            rows.append(try await storm("no caches", 1, gateway, expected))
            for count in counts { rows.append(try await storm("no caches", count, gateway, expected)) }
            await deployment.stop()
            if let plot { try await write(rows, to: plot) }
            return report(rows)
        } catch {
            await deployment.stop()
            throw error
        }
    }

    private func storm(_ setup: String, _ count: Int, _ gateway: String, _ expected: ExpectedTemplate) async throws -> Row {
        let outcome = try await BootStorm(gateway: gateway, workstations: count, expected: expected).run()
        guard outcome.failures.isEmpty else {
            throw BenchError("\(outcome.failures.count) of \(count) workstations failed (\(setup)): \(outcome.failures.first ?? "")")
        }
        say(String(format: "bench storm: %@, %d workstations: p50 %.2f s, p99 %.2f s", setup, count, outcome.percentile(0.5), outcome.percentile(0.99)))
        return Row(
            setup: setup, workstations: count, p50: outcome.percentile(0.5), p99: outcome.percentile(0.99),
            max: outcome.seconds.max() ?? 0, bytes: outcome.bytes)
    }

    private func report(_ rows: [Row]) -> BenchReport {
        var report = BenchReport(bench: "storm")
        for setup in ["caches", "no caches"] {
            guard let single = rows.first(where: { $0.setup == setup && $0.workstations == 1 }) else { continue }
            for row in rows where row.setup == setup && row.workstations > 1 {
                let ratio = row.p99 / single.p99
                report.figures.append(
                    BenchFigure(
                        name: "\(setup): p99 boot of \(row.workstations) (p50 \(String(format: "%.2f", row.p50)), max \(String(format: "%.2f", row.max)))",
                        value: row.p99, unit: "s", baseline: .init(name: "one workstation", value: single.p99), ratio: ratio,
                        goal: setup == "caches" && row.workstations == counts.max() ? "ratio <= 3" : nil,
                        met: setup == "caches" && row.workstations == counts.max() ? ratio <= 3 : nil))
            }
        }
        for count in counts {
            guard let cached = rows.first(where: { $0.setup == "caches" && $0.workstations == count }),
                let uncached = rows.first(where: { $0.setup == "no caches" && $0.workstations == count })
            else { continue }
            report.figures.append(
                BenchFigure(
                    name: "p99 of \(count) with caches vs without", value: cached.p99, unit: "s",
                    baseline: .init(name: "no caches (repository reads)", value: uncached.p99), ratio: cached.p99 / uncached.p99))
        }
        return report
    }

    /// `PATH.csv` always; `PATH` (a PNG) through gnuplot when it is installed.
    private func write(_ rows: [Row], to path: String) async throws {
        var csv = "setup,workstations,p50_s,p99_s,max_s,bytes\n"
        for row in rows where row.setup != "caches, cold" {
            csv += "\(row.setup),\(row.workstations),\(row.p50),\(row.p99),\(row.max),\(row.bytes)\n"
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
            set title 'Boot storm: completion time vs concurrent workstations (icbd bench storm)'
            set xlabel 'workstations booting at once'
            set ylabel 'seconds to finish a boot trace'
            set key top left
            set grid
            plot '< grep "^caches," \(path).csv' using 2:4 with linespoints title 'p99, caches', \\
                 '< grep "^caches," \(path).csv' using 2:3 with linespoints title 'p50, caches', \\
                 '< grep "^no caches," \(path).csv' using 2:4 with linespoints title 'p99, no caches (repository)', \\
                 '< grep "^no caches," \(path).csv' using 2:3 with linespoints title 'p50, no caches (repository)'
            """
        let scriptPath = path + ".gnuplot"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: scriptPath) }
        try await SystemCommand.run("/usr/bin/gnuplot", [scriptPath])
    }
}
