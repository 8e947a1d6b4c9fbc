import Foundation
import ICBDProcess

/// wrk (Debian's) asking for random aligned Range reads of one file: the load of the gateway
/// bench, the same against icbd and nginx.
struct Wrk {
    /// What one run measured.
    struct Result: Equatable {
        let requests: Int
        let requestsPerSecond: Double
        let p99Milliseconds: Double
    }

    var connections: Int
    var seconds: Int

    /// Runs wrk (2 threads) against `url` with the Lua `script`; throws when a response was not
    /// 2xx.
    func run(_ url: String, script: String) async throws -> Result {
        let output = try await SystemCommand.run(
            "/usr/bin/wrk", ["-t2", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script, url])
        return try Self.parse(output, url: url)
    }

    /// Reads `N requests in …`, `99% …` and `Requests/sec: …` of wrk's output.
    static func parse(_ output: String, url: String) throws -> Result {
        var requests: Int?
        var rate: Double?
        var p99: Double?
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if line.contains("Non-2xx") {
                throw BenchError("wrk saw failed requests at \(url): \(line.trimmingCharacters(in: .whitespaces))")
            }
            if fields.count >= 3, fields[1] == "requests", fields[2] == "in" { requests = Int(fields[0]) }
            if fields.first == "Requests/sec:", fields.count >= 2 { rate = Double(fields[1]) }
            if fields.first == "99%", fields.count >= 2 { p99 = milliseconds(String(fields[1])) }
        }
        guard let requests, let rate, let p99 else { throw BenchError("could not read wrk's output:\n\(output)") }
        return Result(requests: requests, requestsPerSecond: rate, p99Milliseconds: p99)
    }

    /// wrk prints `850.00us`, `1.25ms`, `2.01s`.
    private static func milliseconds(_ text: String) -> Double? {
        for (suffix, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }

    /// A Lua script asking for random `bytes`-aligned ranges of `bytes` in a file of `size`,
    /// each request with `headers` too.
    static func rangeScript(size: Int64, bytes: Int, headers: [String: String] = [:]) -> String {
        let others = headers.sorted { $0.key < $1.key }.map { "[\"\($0.key)\"] = \"\($0.value)\", " }.joined()
        return """
            math.randomseed(os.time())
            local slots = \(size / Int64(bytes))
            request = function()
              local first = math.random(0, slots - 1) * \(bytes)
              return wrk.format("GET", nil, {\(others)["Range"] = "bytes=" .. first .. "-" .. (first + \(bytes - 1))})
            end
            """
    }
}
