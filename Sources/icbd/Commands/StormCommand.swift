import ArgumentParser
import Foundation
import ICBDCore
import ICBDSample
import ICBDStorm

/// `icbd storm --gateway URL -n N`: N simulated workstations boot the sample template through
/// a gateway at once, every byte checked; prints completion times. Exit 1 if any failed.
struct StormCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storm",
        abstract: "Boot N simulated workstations at once through a gateway (the sample template of icbd up), checking every byte.")

    @Option(help: "The gateway's base URL, e.g. http://127.0.0.1:8080.")
    var gateway: String

    @Option(name: [.customShort("n"), .long], help: "Workstations booting at once.")
    var workstations = 200

    @Option(help: "Size of the sample template's disk image (as published).")
    var diskSize = "1GiB"

    @Option(help: "Size of its kernel.")
    var kernelSize = "8MiB"

    @Option(help: "Size of its initrd.")
    var initrdSize = "32MiB"

    @Option(name: .customLong("changed-mib"), help: "1 MiB pieces changed in the booted version (as `icbd sample --changed-mib`).")
    var changedMiB: Int64 = 0

    @Option(help: "Fraction of the disk each boot reads.")
    var traceFraction = 0.03

    @Option(help: "A version whose kernel does not start: its workstations load it and start over until the gateway gives them another (a rollout that rolled back).")
    var failVersion: Int64?

    @Option(help: "An IPv4 range: workstation i sends its (i+1)-th address as X-Forwarded-For (the gateway must trust this host: --trusted-proxy), so the gateway tells their boots apart.")
    var clientAddresses: CIDR?

    @Flag(help: "Each workstation sends the booted signal (GET /boot/MAC/up) once it booted, as an iCBD boot layer does.")
    var bootedSignal = false

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard gateway.hasPrefix("http://") || gateway.hasPrefix("https://") else {
            throw ValidationError("--gateway: give a URL such as http://127.0.0.1:8080")
        }
        guard (1...10_000).contains(workstations) else { throw ValidationError("--workstations: 1 to 10000") }
        guard traceFraction > 0, traceFraction <= 1 else { throw ValidationError("--trace-fraction: a number in (0, 1]") }
        if let failVersion, failVersion < 1 { throw ValidationError("--fail-version: a version number from 1 up") }
        if let clientAddresses, !clientAddresses.network.isIPv4 || workstations + 1 >= 1 << (32 - clientAddresses.prefixLength) - 1 {
            throw ValidationError("--client-addresses: an IPv4 range with room for \(workstations) workstations, such as 10.1.0.0/16")
        }
        for (value, option) in [(diskSize, "--disk-size"), (kernelSize, "--kernel-size"), (initrdSize, "--initrd-size")] {
            guard (try? ByteSize(parsing: value)) != nil else { throw ValidationError("\(option): '\(value)' is not a size such as 1GiB") }
        }
    }

    func run() async throws {
        let template = SampleTemplate(
            diskSize: try ByteSize(parsing: diskSize).bytes, kernelSize: Int(try ByteSize(parsing: kernelSize).bytes),
            initrdSize: Int(try ByteSize(parsing: initrdSize).bytes), changedMiB: changedMiB)
        let trace = BootTrace(diskSize: template.diskSize, fraction: traceFraction)
        var storm = BootStorm(
            gateway: gateway.hasSuffix("/") ? String(gateway.dropLast()) : gateway, workstations: workstations,
            expected: ExpectedTemplate(template: template, trace: trace))
        storm.failVersion = failVersion
        storm.clientAddresses = clientAddresses
        storm.sendsBootedSignal = bootedSignal
        let outcome = try await storm.run()
        let summary: [String: Any] = [
            "workstations": workstations, "completed": outcome.seconds.count, "failed": outcome.failures.count,
            "bytes": outcome.bytes, "p50_s": outcome.percentile(0.5), "p99_s": outcome.percentile(0.99),
            "max_s": outcome.seconds.max() ?? 0, "trace_reads": trace.reads.count, "trace_bytes": trace.totalBytes,
            "versions": Dictionary(uniqueKeysWithValues: outcome.versions.map { ("\($0.key)", $0.value) }), "restarts": outcome.restarts,
        ]
        let booted: [String] = outcome.versions.sorted { $0.key < $1.key }.map { "version \($0.key): \($0.value)" }
        var versions = "; booted " + booted.joined(separator: ", ")
        if let failVersion { versions += "; \(outcome.restarts) boots of version \(failVersion) started over" }
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(
                "storm: \(outcome.seconds.count)/\(workstations) workstations booted, " + String(format: "%.1f MiB", Double(outcome.bytes) / 1_048_576) + " read and checked; "
                    + String(format: "p50 %.2f s, p99 %.2f s, max %.2f s", outcome.percentile(0.5), outcome.percentile(0.99), outcome.seconds.max() ?? 0)
                    + versions)
        }
        for failure in outcome.failures.prefix(10) { FileHandle.standardError.write(Data("storm: \(failure)\n".utf8)) }
        if !outcome.failures.isEmpty { throw StormError("\(outcome.failures.count) of \(workstations) workstations failed") }
    }
}
