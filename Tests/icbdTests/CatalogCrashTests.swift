import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProcess
import ICBDProto
import ICBDRPC
import Logging
import Synchronization
import Testing

/// The writes the catalog acknowledged: image name → the revision it answered with.
final class Acknowledged: Sendable {
    private let writes = Mutex<[String: Int64]>([:])

    func record(_ image: String, _ revision: Int64) { writes.withLock { $0[image] = revision } }
    var all: [String: Int64] { writes.withLock { $0 } }
    var count: Int { writes.withLock { $0.count } }
}

@Suite("Catalog: killed with SIGKILL during writes")
struct CatalogCrashTests {
    @Test func everyAcknowledgedWriteSurvivesAndTheRevisionNeverGoesBack() async throws {
        let deployment = try await CatalogDeployment()
        let acknowledged = Acknowledged()
        var lastRevision: Int64 = 0

        for round in 0..<3 {
            let catalog = try await deployment.start()
            let address = try await catalog.listeningAddress()
            let target = acknowledged.count + 100
            try await deployment.withClient(address) { client in
                // The revision after a restart is never below what was acknowledged before.
                let listing = try await client.unary(CatalogMethods.listImages, Icbd_Catalog_V1_ListImagesRequest())
                #expect(listing.revision >= lastRevision, "round \(round)")

                // Four writers create images until the catalog dies under them.
                await withTaskGroup(of: Void.self) { group in
                    for writer in 0..<4 {
                        group.addTask {
                            for index in 0..<10_000 {
                                var request = Icbd_Catalog_V1_CreateImageRequest()
                                request.name = "r\(round)-w\(writer)-\(index)"
                                guard let response = try? await client.unary(CatalogMethods.createImage, request) else { return }
                                acknowledged.record(request.name, response.revision)
                            }
                        }
                    }
                    // Kill once enough writes were acknowledged, with the writers still going.
                    for _ in 0..<6000 where acknowledged.count < target { try? await Task.sleep(for: .milliseconds(5)) }
                    _ = try? await catalog.stop(with: SIGKILL)
                    await group.waitForAll()
                }
            }
            #expect(acknowledged.count >= target, "the writers stopped before the kill")
            #expect(try await catalog.exit().bySignal)

            // The file as the dead process left it: sound, and holding every acknowledged write.
            let store = try SQLiteCatalogStore(path: deployment.database, logger: Logger(label: "test"))
            #expect(try await store.integrityCheck() == ["ok"])
            let revision = try await store.currentRevision().rawValue
            let written = acknowledged.all
            #expect(revision >= written.values.max() ?? 0)
            #expect(revision >= lastRevision)
            var names = Set<String>()
            var after: Name? = nil
            repeat {
                let page = try await store.listImages(after: after, limit: 1000).value
                names.formUnion(page.items.map(\.image.name.rawValue))
                after = try page.next.map { try Name($0) }
            } while after != nil
            let missing = Set(written.keys).subtracting(names)
            #expect(missing.isEmpty, "acknowledged but lost: \(missing.sorted().prefix(10))")
            try store.close()
            lastRevision = revision
        }

        // A last restart: the catalog serves everything and goes on counting from where it was.
        let catalog = try await deployment.start()
        let address = try await catalog.listeningAddress()
        try await deployment.withClient(address) { client in
            var request = Icbd_Catalog_V1_CreateImageRequest()
            request.name = "after-the-crashes"
            let response = try await client.unary(CatalogMethods.createImage, request)
            #expect(response.revision == lastRevision + 1)
        }
        #expect(try await catalog.stop(with: SIGTERM) == 0)
    }
}
