import Foundation
import Testing

@testable import ICBDBench

@Suite("icbd bench gateway: wrk's output and the goals of each configuration")
struct GatewayBenchmarkTests {
    static let output = """
        Running 10s test @ http://127.0.0.1:8080/disk.raw
          2 threads and 16 connections
          Thread Stats   Avg      Stdev     Max   +/- Stdev
            Latency     1.02ms  412.33us  12.40ms   80.12%
            Req/Sec     7.90k   510.21     9.01k    71.00%
          Latency Distribution
             50%  0.95ms
             75%    1.20ms
             90%    1.50ms
             99%    3.25ms
          157284 requests in 10.00s, 9.62GB read
        Requests/sec:  15728.40
        Transfer/sec:      0.96GB
        """

    @Test func wrkOutputGivesRequestsRateAndP99() throws {
        let result = try Wrk.parse(Self.output, url: "u")
        #expect(result == Wrk.Result(requests: 157_284, requestsPerSecond: 15728.40, p99Milliseconds: 3.25))
        let seconds = try Wrk.parse(Self.output.replacingOccurrences(of: "99%    3.25ms", with: "99%    2.50s"), url: "u")
        #expect(seconds.p99Milliseconds == 2500)
    }

    @Test func failedRequestsOrAnUnreadableOutputFailTheRun() {
        let failed = Self.output.replacingOccurrences(of: "Requests/sec", with: "  Non-2xx or 3xx responses: 12\nRequests/sec")
        #expect(throws: BenchError.self) { try Wrk.parse(failed, url: "u") }
        #expect(throws: BenchError.self) { try Wrk.parse("unable to connect", url: "u") }
    }

    @Test func theGoalsAreTheIssuesForEachPathAtTheDefaultMemoryTier() {
        var options = GatewayBenchmark.Options()
        let sameHost = GatewayBenchmark.Goals(options)
        #expect(sameHost.requests64KiB == .ratioAtLeast(0.7))
        #expect(sameHost.p99of64KiB == .ratioAtMost(1.5))
        #expect(sameHost.throughput1MiB == .ratioAtLeast(0.9))
        #expect(options.description["path"] == "same-host")
        options.remote = true
        let remote = GatewayBenchmark.Goals(options)
        #expect(remote.requests64KiB == .ratioAtLeast(0.35))
        #expect(remote.p99of64KiB == nil)
        #expect(remote.throughput1MiB == .ratioAtLeast(0.5))
        #expect(options.description["path"] == "remote")
        #expect(options.description["memoryCache"] == "256MiB")
        options.memoryCache = 0
        let other = GatewayBenchmark.Goals(options)
        #expect(other.requests64KiB == nil && other.p99of64KiB == nil && other.throughput1MiB == nil)
    }

    @Test func bootRecordingRunsSayWhichWorkstationReadsAndCountItsBootsFromTheMetrics() {
        let script = Wrk.rangeScript(size: 1 << 30, bytes: 64 << 10, headers: ["X-Forwarded-For": "10.9.0.1"])
        #expect(script.contains(#"{["X-Forwarded-For"] = "10.9.0.1", ["Range"] = "bytes=" .. first"#))
        #expect(Wrk.rangeScript(size: 1 << 30, bytes: 64 << 10).contains(#"{["Range"] = "bytes=" .. first"#))
        let metrics = """
            # TYPE icbd_boots_total counter
            icbd_boots_total{site="hq",image="bench",version="1",outcome="booted"} 3
            icbd_boots_total{site="hq",image="bench",version="1",outcome="failed"} 1
            icbd_boots_total{site="branch",image="bench",version="1",outcome="booted"} 2
            icbd_boot_seconds_count{site="hq",image="bench",version="1",phase="loaded"} 4
            """
        #expect(GatewayBenchmark.sum(of: "icbd_boots_total", with: #"outcome="booted""#, in: metrics) == 5)
        #expect(GatewayBenchmark.sum(of: "icbd_boot_seconds_count", with: #"phase="loaded""#, in: metrics) == 4)
        #expect(GatewayBenchmark.sum(of: "icbd_boots", with: #"outcome="booted""#, in: metrics) == 0)
        var options = GatewayBenchmark.Options()
        #expect(options.description["baseline"] == "nginx")
        options.bootRecording = true
        #expect(options.description["baseline"] == "the same gateway, reads of no boot")
    }
}
