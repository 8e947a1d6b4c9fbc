import Foundation

extension GatewayBenchmark {
    /// The two workstations of `--boot-recording`, as the gateway sees them (`X-Forwarded-For`
    /// from wrk and curl on 127.0.0.1, a trusted proxy): one whose boot is in progress, one
    /// that never asked for a boot script.
    static let bootingWorkstation = (mac: "52:54:00:be:0c:01", address: "10.9.0.1")
    static let quietWorkstation = "10.9.0.2"

    /// `icbd bench gateway --boot-recording`: what following boots costs the read path (the
    /// staged-rollouts issue: within 5 %). The same gateway, the same random 64 KiB ranges of
    /// the same version-number URL, in alternating rounds: once from a workstation whose boot is
    /// in progress, so that every read is attributed to its boot (its bytes, latency sketch,
    /// errors), once from a workstation with no boot, whose reads pay only the look-up that finds
    /// none. Before each recorded run the booting workstation asks for its script (a new boot,
    /// the last one ending as restarted) and after it sends the booted signal, so each recorded
    /// run is one whole boot; the bench then checks that the gateway counted exactly that many
    /// booted boots that loaded, or the figure would measure nothing.
    func measureBootRecording(gateway address: String, process: pid_t, size: Int64, directory: URL) async throws -> BenchReport {
        let wrk = Wrk(connections: options.connections, seconds: options.seconds)
        let bytes = 64 << 10
        /// The Lua script of wrk runs whose reads come from `workstation`.
        func script(from workstation: String) throws -> String {
            let path = directory.appendingPathComponent("ranges-from-\(workstation).lua").path
            try Wrk.rangeScript(size: size, bytes: bytes, headers: ["X-Forwarded-For": workstation])
                .write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let recorded = try script(from: Self.bootingWorkstation.address)
        let unrecorded = try script(from: Self.quietWorkstation)
        let gateway = "http://\(address)"
        let disk = Self.diskURL(at: address)
        let booting = ["-sf", "-H", "X-Forwarded-For: \(Self.bootingWorkstation.address)"]
        let pairs = try await AlternatingRounds(count: options.rounds).run { side in
            switch side {
            case .ours:
                let script = try await Self.curl(booting + ["\(gateway)/boot/\(Self.bootingWorkstation.mac).ipxe"])
                guard script.contains("/v1/images/bench/1/") else {
                    throw BenchError("the gateway's boot script does not name version 1 of bench:\n\(script)")
                }
                let run = try await Self.run(wrk, disk, script: recorded, bytes: bytes, processes: [process])
                try await Self.curl(booting + ["-o", "/dev/null", "\(gateway)/boot/\(Self.bootingWorkstation.mac)/up"])
                return run
            case .baseline:
                return try await Self.run(wrk, disk, script: unrecorded, bytes: bytes, processes: [process])
            }
        }
        let metrics = try await Self.curl(["-sf", "\(gateway)/metrics"])
        let booted = Self.sum(of: "icbd_boots_total", with: #"outcome="booted""#, in: metrics)
        let loaded = Self.sum(of: "icbd_boot_seconds_count", with: #"phase="loaded""#, in: metrics)
        guard booted == Double(options.rounds), loaded == Double(options.rounds) else {
            throw BenchError("the gateway recorded \(booted) booted boots, \(loaded) of them loaded, for \(options.rounds) recorded runs")
        }
        let baseline = "the same reads from a workstation with no boot"
        var report = BenchReport(bench: "gateway", configuration: options.description)
        report.figures.append(
            BenchFigure(
                name: "boot recording: random 64 KiB ranges, requests/s", unit: "req/s", baseline: baseline,
                rounds: pairs.map { BenchRound(value: $0.ours.wrk.requestsPerSecond, baseline: $0.baseline.wrk.requestsPerSecond) },
                goal: .ratioAtLeast(0.95)))
        report.figures.append(
            BenchFigure(
                name: "boot recording: random 64 KiB ranges, CPU, gateway", unit: "s/GiB", baseline: baseline,
                rounds: pairs.map { BenchRound(value: $0.ours.cpuPerGiB[0], baseline: $0.baseline.cpuPerGiB[0]) }))
        return report
    }

    /// The sum of the samples of `metric` whose labels contain `label`, in Prometheus text.
    static func sum(of metric: String, with label: String, in text: String) -> Double {
        text.split(separator: "\n")
            .filter { $0.hasPrefix(metric + "{") && $0.contains(label) }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0, +)
    }
}
