/// Rounds of a comparison between icbd and a baseline on a noisy, shared machine. In each round
/// both sides run back to back and the side that goes first alternates (icbd first in the first
/// round, the baseline first in the next, …), so drift and warm-up hit both alike. Each figure
/// comes from its median round, never from the best one.
struct AlternatingRounds {
    enum Side: Equatable {
        case ours
        case baseline
    }

    /// One round's measurement of each side.
    struct Pair<Sample> {
        let ours: Sample
        let baseline: Sample
    }

    let count: Int

    /// The order of the sides in round `index` (from 0).
    static func order(ofRound index: Int) -> [Side] {
        index % 2 == 0 ? [.ours, .baseline] : [.baseline, .ours]
    }

    /// Measures each side in each of ``count`` rounds, in the alternating order; one pair per round.
    func run<Sample>(_ measure: (Side) async throws -> Sample) async throws -> [Pair<Sample>] {
        var pairs: [Pair<Sample>] = []
        for round in 0..<count {
            var ours: Sample?
            var baseline: Sample?
            for side in Self.order(ofRound: round) {
                let sample = try await measure(side)
                if side == .ours { ours = sample } else { baseline = sample }
            }
            if let ours, let baseline { pairs.append(Pair(ours: ours, baseline: baseline)) }
        }
        return pairs
    }

    /// The index of the round whose `ratio` is the median (with an even count, the higher of
    /// the two middle ones); nil for no rounds.
    static func medianRound(of ratios: [Double]) -> Int? {
        guard !ratios.isEmpty else { return nil }
        return ratios.indices.sorted { ratios[$0] < ratios[$1] }[ratios.count / 2]
    }
}

/// What a ratio must be for a figure to meet its goal.
enum BenchGoal: Equatable, CustomStringConvertible {
    case ratioAtLeast(Double)
    case ratioAtMost(Double)

    func isMet(by ratio: Double) -> Bool {
        switch self {
        case .ratioAtLeast(let bound): ratio >= bound
        case .ratioAtMost(let bound): ratio <= bound
        }
    }

    var description: String {
        switch self {
        case .ratioAtLeast(let bound): "ratio >= \(bound)"
        case .ratioAtMost(let bound): "ratio <= \(bound)"
        }
    }
}

extension BenchFigure {
    /// A figure from alternating rounds: the value, the baseline's and the ratio are those of the
    /// median round by the ratio; every round is kept.
    init(name: String, unit: String, baseline: String, rounds: [BenchRound], goal: BenchGoal? = nil) {
        let median = AlternatingRounds.medianRound(of: rounds.map(\.ratio)).map { rounds[$0] } ?? BenchRound(value: 0, baseline: 0)
        self.init(
            name: name, value: median.value, unit: unit, baseline: .init(name: baseline, value: median.baseline), ratio: median.ratio,
            goal: goal?.description, met: goal?.isMet(by: median.ratio), rounds: rounds)
    }
}
