import Foundation
import ICBDCore

/// One figure of a benchmark run (docs/benchmarks.md, `icbd bench`).
public struct BenchFigure: Encodable, Sendable {
    struct Baseline: Encodable, Sendable {
        let name: String
        let value: Double
    }

    var name: String
    let value: Double
    let unit: String
    var baseline: Baseline?
    var ratio: Double?
    var goal: String?
    var met: Bool?
    /// Each round's values, for a figure taken from alternating rounds (``AlternatingRounds``).
    var rounds: [BenchRound]? = nil
}

/// One round of a figure: icbd's value and the baseline's, measured back to back.
struct BenchRound: Encodable, Sendable, Equatable {
    let value: Double
    let baseline: Double

    /// value / baseline (0 without a baseline).
    var ratio: Double { baseline > 0 ? value / baseline : 0 }
}

/// What `icbd bench AREA` prints: a table for people or one JSON object.
public struct BenchReport: Encodable, Sendable {
    let bench: String
    /// What was measured, where a bench has a choice (sizes, paths, connections, rounds).
    var configuration: [String: String]? = nil
    public var figures: [BenchFigure] = []

    /// The report as a table for people, or (`json`) one JSON object.
    public func render(json: Bool) throws -> String {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        }
        var lines = ["bench \(bench)"]
        if let configuration {
            lines.append("  " + configuration.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        for figure in figures {
            var line = "  \(figure.name.padding(toLength: 44, withPad: " ", startingAt: 0)) \(format(figure.value)) \(figure.unit)"
            if let baseline = figure.baseline, let ratio = figure.ratio {
                line += "  (\(baseline.name) \(format(baseline.value)); ratio \(String(format: "%.2f", ratio)))"
            } else if let baseline = figure.baseline {
                line += "  (\(baseline.name) \(format(baseline.value)))"
            }
            if let goal = figure.goal, let met = figure.met {
                line += "  goal \(goal): \(met ? "met" : "NOT met")"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    private func format(_ value: Double) -> String {
        value >= 100 ? String(format: "%.0f", value) : String(format: "%.3f", value)
    }
}

/// Percentiles of latency samples.
struct LatencySamples {
    private(set) var seconds: [Double] = []

    mutating func append(_ duration: Duration) {
        let (s, atto) = duration.components
        seconds.append(Double(s) + Double(atto) / 1e18)
    }

    mutating func merge(_ other: LatencySamples) {
        seconds += other.seconds
    }

    /// The `p`th percentile (0...100), in milliseconds.
    func percentileMilliseconds(_ p: Double) -> Double {
        guard !seconds.isEmpty else { return 0 }
        let sorted = seconds.sorted()
        let index = min(sorted.count - 1, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1)
        return sorted[max(0, index)] * 1000
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
