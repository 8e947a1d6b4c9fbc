import Foundation
import Testing

@testable import ICBDBench

@Suite("Bench figures are medians of alternating rounds")
struct AlternatingRoundsTests {
    @Test func theSideThatGoesFirstAlternatesFromRoundToRound() async throws {
        var order: [AlternatingRounds.Side] = []
        var measured = 0
        let pairs = try await AlternatingRounds(count: 4).run { side in
            order.append(side)
            measured += 1
            return (side, measured)
        }
        #expect(order == [.ours, .baseline, .baseline, .ours, .ours, .baseline, .baseline, .ours])
        #expect(pairs.count == 4)
        #expect(pairs.allSatisfy { $0.ours.0 == .ours && $0.baseline.0 == .baseline })
        // Each pair holds the two runs of its own round.
        #expect(pairs.map { [$0.ours.1, $0.baseline.1] } == [[1, 2], [4, 3], [5, 6], [8, 7]])
    }

    @Test func theMedianRoundIsTakenNotTheBest() {
        #expect(AlternatingRounds.medianRound(of: [0.5, 0.9, 0.1, 0.7, 0.3]) == 0)
        #expect(AlternatingRounds.medianRound(of: [0.4]) == 0)
        // An even count: the higher of the two middle ones.
        #expect(AlternatingRounds.medianRound(of: [0.4, 0.1, 0.3, 0.2]) == 2)
        #expect(AlternatingRounds.medianRound(of: []) == nil)
    }

    @Test func aFigureReportsItsMedianRoundAndKeepsEveryRound() throws {
        let rounds = [
            BenchRound(value: 900, baseline: 1000),  // 0.9: the best round
            BenchRound(value: 400, baseline: 1000),  // 0.4
            BenchRound(value: 600, baseline: 1000),  // 0.6: the median
            BenchRound(value: 100, baseline: 1000),  // 0.1
            BenchRound(value: 1400, baseline: 2000),  // 0.7
        ]
        let figure = BenchFigure(name: "requests/s", unit: "req/s", baseline: "nginx", rounds: rounds, goal: .ratioAtLeast(0.7))
        #expect(figure.value == 600)
        #expect(figure.baseline?.value == 1000)
        #expect(figure.ratio == 0.6)
        #expect(figure.goal == "ratio >= 0.7")
        #expect(figure.met == false)
        #expect(figure.rounds == rounds)
        let json = try BenchReport(bench: "gateway", configuration: ["rounds": "5"], figures: [figure]).render(json: true)
        let decoded = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect((decoded["configuration"] as? [String: String]) == ["rounds": "5"])
        let figures = try #require(decoded["figures"] as? [[String: Any]])
        #expect((figures.first?["rounds"] as? [[String: Double]])?.map { $0["value"] } == [900, 400, 600, 100, 1400])
    }

    @Test func goalsBoundTheRatioFromAboveOrBelow() {
        #expect(BenchGoal.ratioAtLeast(0.7).isMet(by: 0.7))
        #expect(!BenchGoal.ratioAtLeast(0.7).isMet(by: 0.69))
        #expect(BenchGoal.ratioAtMost(1.5).isMet(by: 1.5))
        #expect(!BenchGoal.ratioAtMost(1.5).isMet(by: 1.51))
        #expect(BenchGoal.ratioAtMost(1.5).description == "ratio <= 1.5")
    }
}
