import Foundation
import ICBDCore
import Testing

@testable import Replicator

extension VersionPullTests {
    /// A receiver pulls from the repository the catalog names; a replicator answering at that
    /// address with a certificate of another name (another site's, which does not hold the
    /// version as the catalog knows it) is refused during the handshake, and nothing is kept.
    @Test func aSenderPresentingAnotherReplicatorsCertificateIsRefusedAndNothingIsKept() async throws {
        try await ReplicationDeployment.with(branchReplicates: false) { deployment in
            _ = try await publish(deployment.hq, image: "win11", files: [("disk.raw", vmLikeDisk(mebibytes: 4, seed: 5))])
            let pull = VersionPull(
                repository: deployment.branchRepository, tls: try deployment.mint(.replicator, "repo-branch"), metrics: ReplicationMetrics(),
                logger: deployment.logger, target: try await target(deployment, image: "win11", version: 1))
            let versionPath = deployment.branchRepository.versionPath(of: try Name("win11"), 1)

            // hq's replicator presents icbd://replicator/repo-hq; the receiver meant repo-branch-2.
            var options = VersionPull.Options()
            options.sourceName = "repo-branch-2"
            let error = await #expect(throws: ReplicationError.self) {
                _ = try await pull.run(from: deployment.hqAddress, parents: [], options: options) { _ in }
            }
            #expect("\(error.map { "\($0)" } ?? "")".contains("expected the node named 'repo-branch-2'"), "\(String(describing: error))")
            #expect(!Subvolume.exists(at: versionPath))
            #expect(pull.spool.held() == nil)

            // The node the catalog names is accepted.
            options.sourceName = "repo-hq"
            _ = try await pull.run(from: deployment.hqAddress, parents: [], options: options) { _ in }
            #expect(try Subvolume.info(at: versionPath).receivedUUID == pull.target.identity)
        }
    }
}
