import Foundation
import Gateway
import ICBDTestSupport
import Testing

/// Reads answered on the event loop that read them (docs/gateway.md "Reads answered at once"):
/// the same answers as the long way, in the order the requests came, and never faster than the
/// client takes them.
@Suite("Gateway: reads answered at once", .serialized, .requiresLoopBtrfs)
struct ImmediateReadTests {
    static let image = "/v1/images/win11/1/disk.raw"
    static let immediate = "icbd_gateway_immediate_responses_total"

    @Test func anAnswerGivenAtOnceCarriesTheFieldsAndCountsOfTheLongWay() async throws {
        try await GatewayDeployment.with { deployment in
            let disk = sampleDisk(mebibytes: 2)
            try await deployment.publish("win11", [("disk.raw", disk)])
            let range = [("Range", "bytes=1000-70999")]
            let files = #"icbd_gateway_requests_total{route="file",status="206""#
            let (immediateBefore, filesBefore) = (try await deployment.metric(Self.immediate), try await deployment.metric(files))
            // Nothing is in memory yet: the long way, which keeps the chunk in memory.
            let long = try await deployment.request(Self.image, headers: range)
            #expect(try await deployment.metric(Self.immediate) == immediateBefore)
            let atOnce = try await deployment.request(Self.image, headers: range)
            #expect(try await deployment.metric(Self.immediate) == immediateBefore + 1)
            #expect(try await deployment.metric(files) == filesBefore + 2)
            #expect(long.status == 206 && atOnce.status == 206)
            #expect(long.body == Array(disk[1000...70999]))
            #expect(atOnce.body == long.body)
            var (longFields, atOnceFields) = (long.headers, atOnce.headers)
            #expect(atOnceFields.removeValue(forKey: "date")?.hasSuffix(" GMT") == true)
            longFields["date"] = nil
            #expect(atOnceFields == longFields)
            #expect(atOnceFields["server"] == "icbd-gateway")
        }
    }

    @Test func pipelinedRequestsGetTheirAnswersInOrderWhicheverWayEachIsAnswered() async throws {
        try await GatewayDeployment.with { deployment in
            let disk = sampleDisk(mebibytes: 4)
            try await deployment.publish("win11", [("disk.raw", disk)])
            #expect(try await deployment.request(Self.image).body == disk)  // every chunk now in memory
            let before = try await deployment.metric(Self.immediate)
            // MiB 3 is zeros.
            let ranges = [0...99, 100...65_635, (1 << 20)...((1 << 20) + 4095), (3 << 20)...((3 << 20) + 99)]
            let answers = try PipelinedExchange.run(
                port: deployment.port,
                requests: [
                    PipelinedExchange.get(Self.image, range: ranges[0]),
                    PipelinedExchange.get("/healthz"),
                    PipelinedExchange.get(Self.image, range: ranges[1]),
                    PipelinedExchange.get("/v1/images/win11/1/no-such-file"),
                    PipelinedExchange.get(Self.image, range: ranges[2]),
                    PipelinedExchange.get(Self.image, range: ranges[3], close: true),
                ])
            #expect(answers.map(\.status) == [206, 200, 206, 404, 206, 206])
            guard answers.count == 6 else { return }
            for (answer, range) in zip([answers[0], answers[2], answers[4], answers[5]], ranges) {
                #expect(answer.body == Array(disk[range]), "bytes \(range)")
                #expect(answer.headers["content-range"] == "bytes \(range.lowerBound)-\(range.upperBound)/\(disk.count)")
            }
            #expect(String(decoding: answers[1].body, as: UTF8.self) == "ok\n")
            #expect(String(decoding: answers[3].body, as: UTF8.self).contains("no file 'no-such-file'"))
            // The first was read before anything had been passed on: answered at once.
            #expect(try await deployment.metric(Self.immediate) >= before + 1)
        }
    }

    @Test func aClientThatAsksWithoutReadingIsAnsweredNoFasterThanItReads() async throws {
        try await GatewayDeployment.with { deployment in
            let disk = sampleDisk(mebibytes: 4)
            try await deployment.publish("win11", [("disk.raw", disk)])
            #expect(try await deployment.request(Self.image).body == disk)  // every chunk now in memory
            let files = #"icbd_gateway_requests_total{route="file""#
            let before = try await deployment.metric(files)
            // 1000 requests for 1 MiB each, sent at once by a client that reads nothing.
            let request = PipelinedExchange.get(Self.image, range: 0...((1 << 20) - 1))
            let reader = try StalledReader(port: deployment.port, request: String(repeating: request, count: 1000))
            try await Task.sleep(for: .seconds(2))
            let answered = try await deployment.metric(files) - before
            #expect(answered >= 1)
            #expect(answered < 32, "\(Int(answered)) MiB answered to a client that read none of it")
            withExtendedLifetime(reader) {}
        }
    }
}
