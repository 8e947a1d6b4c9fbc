import ArgumentParser
import Foundation
import ICBDCore
import ICBDLocalDeployment
import UnixSignals

/// `icbd up --dir DIR`: the whole system on this machine, for a first look and for demos.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run a local two-site deployment (catalog; site hq; site branch with caches and a gateway) until Ctrl-C. Needs root (loop-mounted BTRFS).")

    @Option(help: "Directory for certificates, databases, filesystems and logs.")
    var dir = "deploy"

    @Flag(help: "Keep the data (filesystems, catalog) for the next start instead of removing it.")
    var keep = false

    @Option(help: "Size of the sample template's disk image.")
    var diskSize = "1GiB"

    @Option(help: "The gateway's HTTP port on 127.0.0.1 (0: any free one).")
    var gatewayPort = 8080

    @Flag(help: "Once up, show a staged rollout rolling back by itself: a next version of the sample whose kernel does not start, tag stable rolled out to it, 40 storm workstations booting.")
    var rolloutDemo = false

    func validate() throws {
        guard getuid() == 0 else { throw ValidationError("icbd up needs root: it mounts loop-file BTRFS filesystems") }
        guard (try? ByteSize(parsing: diskSize).bytes).map({ $0 >= 64 << 20 }) == true else {
            throw ValidationError("--disk-size: give a size of at least 64MiB, e.g. 1GiB")
        }
    }

    func run() async throws {
        let directory = URL(fileURLWithPath: dir).standardizedFileURL.path
        // Without --keep, every start is fresh and a stop leaves only the certificates and logs.
        if !keep { Self.removeData(in: directory) }
        let deployment = LocalDeployment(
            .init(directory: directory, keep: keep, diskSize: try ByteSize(parsing: diskSize).bytes, gatewayPort: gatewayPort))
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        // Ctrl-C stops it at any point, also while it is still coming up.
        let outcome: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
            group.addTask {
                do {
                    try await deployment.start()
                    say(await deployment.summary())
                    if rolloutDemo { try await deployment.rolloutDemo() }
                    try await Task.sleep(for: .seconds(100 * 365 * 86_400))
                    return .success(())
                } catch is CancellationError {
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                for await _ in signals { break }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .success(())
        }
        say("\nstopping...")
        await deployment.stop()
        if !keep { Self.removeData(in: directory) }
        say("stopped\(keep ? "; the data is kept in \(directory)" : "")")
        try outcome.get()
    }

    /// The catalog, the repositories' loop files and the caches: what --keep keeps.
    static func removeData(in directory: String) {
        for data in ["catalog.db", "catalog.db-wal", "catalog.db-shm", "hq.img", "branch.img", "cache-branch-1", "cache-branch-2", "sample"] {
            try? FileManager.default.removeItem(atPath: directory + "/" + data)
        }
    }
}
