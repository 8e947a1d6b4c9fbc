import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDSample
import Logging
import LoopFileBtrfs
import SwiftProtobuf

/// The two-site deployment `icbd up` runs on this machine's loopback: a catalog; site `hq`
/// (primary) with one replicator; site `branch` with one replicator, two cache nodes and a
/// gateway that reads cache-branch-1's chunk files directly (the same-host path). Each
/// replicator owns a loop-mounted BTRFS. A sample template is published at hq and replicated
/// to branch, and tag `stable` is its first version: the gateway boots `sample:stable` for
/// workstations without an assignment, so a new version reaches them only when the tag moves
/// (by hand or by a rollout, ``rolloutDemo()``).
public actor LocalDeployment {
    /// Where it lives, whether its data outlives a stop, the sample's size and the gateway's port.
    public struct Configuration: Sendable {
        public var directory: String
        public var keep: Bool
        public var diskSize: Int64
        /// The gateway's HTTP port (0: any free one).
        public var gatewayPort = 8080

        public init(directory: String, keep: Bool, diskSize: Int64, gatewayPort: Int = 8080) {
            self.directory = directory
            self.keep = keep
            self.diskSize = diskSize
            self.gatewayPort = gatewayPort
        }
    }

    public let configuration: Configuration
    private var children: [ChildProcess] = []
    private var mounts: [LoopBtrfsMount] = []
    /// Each running service's `HOST:PORT`, by name (e.g. `gateway-branch`).
    public private(set) var addresses: [String: String] = [:]

    private nonisolated var pki: String { configuration.directory + "/pki" }
    private var logs: String { configuration.directory + "/logs" }

    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// Brings everything up, step by step, saying what it does.
    public func start() async throws {
        let steps = 8
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)

        progress(1, steps, "certificates in \(pki)")
        try await mintCertificates()

        progress(2, steps, "BTRFS filesystems for the repositories of hq and branch (loop files)")
        for site in ["hq", "branch"] {
            mounts.append(
                try await LoopBtrfsMount(
                    size: "\(max(4, 3 * (configuration.diskSize >> 30) + 2))G", at: configuration.directory + "/\(site)",
                    reuse: configuration.keep))
        }

        progress(3, steps, "catalog")
        let catalog = try await startService(
            "catalog", ["catalog", "--listen", "127.0.0.1:0", "--db", configuration.directory + "/catalog.db", "--name", "catalog"])
        let admin = ["--catalog", catalog, "--tls-dir", pki, "--name", "admin"]
        try await ChildProcess.run(["site", "add", "hq", "--cidr", "10.99.0.0/16", "--description", "primary site", "--replace"] + admin)
        try await ChildProcess.run(
            ["site", "add", "branch", "--cidr", "127.0.0.0/8", "--link", "hq", "--description", "an office; this machine's clients",
             "--replace"] + admin)

        progress(4, steps, "replicators of hq and branch")
        var replicators: [String: String] = [:]
        for site in ["hq", "branch"] {
            replicators[site] = try await startService(
                "replicator-\(site)",
                ["replicator", "--listen", "127.0.0.1:0", "--root", configuration.directory + "/\(site)", "--site", site,
                 "--catalog", catalog, "--name", "replicator-\(site)"])
        }

        progress(5, steps, "sample template 'sample' (a \(ByteSize(bytes: configuration.diskSize)) sparse VM-like disk, kernel, initrd)")
        let images = try await ChildProcess.run(["image", "list", "--json"] + admin)
        if images.contains("\"sample\"") {
            say("      published already (kept from the last run)")
        } else {
            let sample = configuration.directory + "/sample"
            try SampleTemplate(diskSize: configuration.diskSize).write(to: sample)
            try await ChildProcess.run(
                ["image", "publish", "sample", sample, "--replicator", replicators["hq"] ?? "", "--tls-dir", pki, "--name", "admin"])
            try? FileManager.default.removeItem(atPath: sample)
        }
        try await withCatalog(catalog) { catalog in
            let image = try await catalog.unary(CatalogMethods.getImage, .with { $0.name = "sample" })
            guard !image.tags.contains(where: { $0.name == "stable" }), let first = image.versions.first(where: { $0.state == .ready }) else { return }
            _ = try await catalog.unary(CatalogMethods.moveTag, .with { $0.image = "sample"; $0.tag = "stable"; $0.version = first.number })
            say("      tag stable -> version \(first.number)")
        }

        progress(6, steps, "replication of the sample to branch")
        try await waitForPlacement(image: "sample", node: "replicator-branch", catalog: catalog)

        progress(7, steps, "cache nodes of branch")
        for number in 1...2 {
            _ = try await startService(
                "cache-branch-\(number)",
                ["cache", "--listen", "127.0.0.1:0", "--dir", configuration.directory + "/cache-branch-\(number)", "--capacity", "2GiB",
                 "--site", "branch", "--catalog", catalog, "--name", "cache-branch-\(number)"])
        }

        progress(8, steps, "gateway of branch")
        _ = try await startService(
            "gateway-branch",
            ["gateway", "--listen", "127.0.0.1:\(configuration.gatewayPort)", "--site", "branch", "--catalog", catalog,
             "--default-image", "sample:stable", "--trusted-proxy", "127.0.0.1/32", "--local-cache",
             configuration.directory + "/cache-branch-1", "--name", "gateway-branch"])
    }

    /// Stops one service (SIGTERM), e.g. the caches for a benchmark's baseline.
    public func stopService(_ name: String) async {
        for child in children where child.name == name { await child.stop() }
        addresses[name] = nil
    }

    /// `icbd up --rollout-demo`: a staged rollout that rolls back by itself (docs/operations.md
    /// "Rolling out a new version"). Publishes a next version of the sample whose kernel is cut
    /// short, rolls tag `stable` out to it (25 %, then everyone), and boots `workstations` storm
    /// workstations, each from its own address (the gateway trusts this host as a proxy), that
    /// cannot start it: the slice's boots fail, the rollout rolls back, and every workstation
    /// boots the old version, every byte checked. Says each step and what the storm and
    /// `icbd rollout status` printed; throws if the storm failed.
    public func rolloutDemo(workstations: Int = 40) async throws {
        let steps = 4
        guard let catalog = addresses["catalog"], let replicator = addresses["replicator-hq"], let gateway = addresses["gateway-branch"] else {
            throw UpError("the rollout demo needs the deployment up (catalog, replicator-hq, gateway-branch)")
        }
        let admin = ["--catalog", catalog, "--tls-dir", pki, "--name", "admin"]
        say("\nRollout demo: a bad version of the sample, rolled out a slice at a time")

        progress(1, steps, "a next version of the sample whose kernel is cut short (it loads, and does not start)")
        let next = configuration.directory + "/sample"
        try SampleTemplate(diskSize: configuration.diskSize, changedMiB: 2).write(to: next)
        let kernel = try FileHandle(forWritingTo: URL(fileURLWithPath: next + "/vmlinuz"))
        try kernel.truncate(atOffset: 4096)
        try kernel.close()
        try await ChildProcess.run(["image", "publish", "sample", next, "--replicator", replicator, "--tls-dir", pki, "--name", "admin"])
        try? FileManager.default.removeItem(atPath: next)
        let bad = try await waitForPlacement(image: "sample", node: "replicator-branch", catalog: catalog)

        progress(2, steps, "icbd rollout start sample stable \(bad) --steps 25%,100% --min-boots 3")
        say(indented(try await ChildProcess.run(["rollout", "start", "sample", "stable", "\(bad)", "--steps", "25%,100%", "--min-boots", "3"] + admin)))

        progress(3, steps, "icbd storm -n \(workstations) --client-addresses 10.1.0.0/16 --booted-signal --fail-version \(bad)")
        say(
            indented(
                try await ChildProcess.run([
                    "storm", "--gateway", "http://\(gateway)", "-n", "\(workstations)", "--disk-size", "\(ByteSize(bytes: configuration.diskSize))",
                    "--client-addresses", "10.1.0.0/16", "--booted-signal", "--fail-version", "\(bad)",
                ])))

        progress(4, steps, "icbd rollout status")
        say(indented(try await ChildProcess.run(["rollout", "status"] + admin)))
        say("The rollout ended by itself; see it on http://\(gateway)/ (Rollouts, Boots) and with icbd boot list.")
    }

    /// Stops every child (SIGTERM, in reverse order) and unmounts the filesystems.
    public func stop() async {
        for child in children.reversed() { await child.stop() }
        for mount in mounts { await mount.unmount(keep: configuration.keep) }
        children = []
        mounts = []
    }

    /// What to try, printed once the deployment is up.
    public func summary() -> String {
        let catalog = addresses["catalog"] ?? "?"
        var lines = ["", "icbd is up in \(configuration.directory) (logs in \(logs)):"]
        for (name, address) in addresses.sorted(by: { $0.key < $1.key }) { lines.append("  \(name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(address)") }
        let gateway = "http://" + (addresses["gateway-branch"] ?? "?")
        lines += [
            "Open:",
            "  \(gateway)/                                  the status page",
            "  \(gateway)/boot/52:54:00:12:34:56.ipxe       a workstation's iPXE script",
            "  \(gateway)/v1/images/sample/latest/disk.raw  the disk (Range reads: curl -r 0-1048575 ...)",
            "Try:",
            "  icbd storm --gateway \(gateway) -n 50 --disk-size \(ByteSize(bytes: configuration.diskSize))   50 workstations booting at once",
            "  icbd rollout status --catalog \(catalog) --tls-dir \(pki)   (icbd up --rollout-demo shows one rolling back)",
            "  icbd image show sample --catalog \(catalog) --tls-dir \(pki)",
            "  icbd node list --catalog \(catalog) --tls-dir \(pki)",
            "  icbd replication status --catalog \(catalog) --tls-dir \(pki)",
            "  icbd site list --catalog \(catalog) --tls-dir \(pki)",
            "Press Ctrl-C to stop\(configuration.keep ? " (the data is kept for the next start)" : "").",
        ]
        return lines.joined(separator: "\n")
    }

    private func progress(_ step: Int, _ of: Int, _ what: String) {
        say("[\(step)/\(of)] \(what)")
    }

    /// A command's output, its lines indented under the step that ran it.
    private func indented(_ output: String) -> String {
        output.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n")
    }

    /// Runs `body` with an admin's RPC client of the catalog at `address`.
    private nonisolated func withCatalog<Result: Sendable>(
        _ address: String, _ body: @Sendable (RPCClient) async throws -> Result
    ) async throws -> Result {
        var logger = Logger(label: "icbd.up")
        logger.logLevel = .critical
        let client = RPCClientConfiguration(
            target: try HostPort(parsing: address), expectedRole: .catalog, tls: try TLSIdentity.load(directory: pki, name: "admin"))
        return try await withRPCClient(client, logger: logger, body)
    }

    private func mintCertificates() async throws {
        guard !FileManager.default.fileExists(atPath: pki + "/ca.crt") else { return }
        try await ChildProcess.run(["pki", "init", "--dir", pki])
        for (role, name) in [
            ("catalog", "catalog"), ("replicator", "replicator-hq"), ("replicator", "replicator-branch"),
            ("cache", "cache-branch-1"), ("cache", "cache-branch-2"), ("gateway", "gateway-branch"), ("admin", "admin"),
        ] {
            try await ChildProcess.run(["pki", "issue", "--dir", pki, "--role", role, "--name", name, "--ip", "127.0.0.1", "--dns", "localhost"])
        }
    }

    /// Starts a service child with the PKI and returns its address once it listens.
    private func startService(_ name: String, _ arguments: [String]) async throws -> String {
        let child = try await ChildProcess(name, arguments + ["--tls-dir", pki], logs: logs)
        children.append(child)
        let address = try await child.listeningAddress()
        addresses[name] = address
        say("      \(name) listening on \(address)")
        return address
    }

    /// Waits until `node` reports the newest version of `image` present, showing progress;
    /// returns that version's number.
    @discardableResult
    private func waitForPlacement(image: String, node: String, catalog address: String) async throws -> Int64 {
        let logs = self.logs
        return try await withCatalog(address) { catalog in
            var last = ""
            for _ in 0..<3000 {
                let answer = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = image })
                let newest = answer.versions.filter { $0.state == .ready }.map(\.number).max() ?? 0
                let placement = answer.placements.first { $0.node == node && $0.version == newest }
                switch placement?.state {
                case .present?:
                    say("      v\(newest) present at \(node)")
                    return newest
                case .failed?:
                    throw UpError("replicating v\(newest) of '\(image)' to \(node) failed: \(placement?.detail ?? "")")
                default:
                    let now = placement.map { "\($0.state) \($0.detail)" } ?? "waiting"
                    if now != last { say("      \(now)") }
                    last = now
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            throw UpError("v? of '\(image)' did not reach \(node) within 10 minutes; see \(logs)")
        }
    }
}
