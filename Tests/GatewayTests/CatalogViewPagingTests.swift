import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
import SwiftProtobuf
import Testing

@testable import Gateway

/// Issue 22, item 6: an image whose one GetImage answer would pass the 16 MiB frame limit
/// (1500 versions of 64 files with long paths: over 24 MiB) used to stop the gateway's catalog view from ever
/// loading; read page by page, the view holds every version.
@Suite("Gateway: the catalog view reads an image larger than a frame")
struct CatalogViewPagingTests {
    @Test(.timeLimit(.minutes(10)))
    func theViewLoadsAnImageOfFifteenHundredVersionsOfSixtyFourFiles() async throws {
        try await withTemporaryDirectory { directory in
            let logger = quietLogger()
            let authority = try CertificateAuthority.create(commonName: "icbd catalog view test CA \(UUID())")
            let mint: (Role, String) throws -> TLSIdentity = { role, name in
                try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
            }
            let catalogService = try CatalogService(
                configuration: CatalogConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), databasePath: directory.path + "/catalog.db",
                    tls: try mint(.catalog, "cat1"), name: "cat1"),
                logger: logger)
            let store = catalogService.store
            let image = try Name("many")
            _ = try await store.createImage(name: image, description: "", homeSite: nil, ifMissing: false, by: .admin, at: Date())
            let files = try (0..<64).map { index in
                FileSpec(
                    path: try VersionFilePath("files/" + String(repeating: "directory-", count: 18) + "/file-\(index).raw"),
                    size: 1 << 20, chunkSize: 1 << 20, manifestDigest: [UInt8](repeating: UInt8(index), count: 32))
            }
            for _ in 0..<1500 {
                _ = try await store.createVersion(
                    NewVersion(image: image, number: nil, parent: nil, btrfsUUID: UUID().uuidString, files: files, publishedBy: "admin"),
                    by: .admin, at: Date())
            }
            try await withRunningServices([catalogService], logger: logger) {
                let address = HostPort(host: "127.0.0.1", port: try await catalogService.localAddress().port ?? 0)
                try await withRPCClient(
                    RPCClientConfiguration(target: address, expectedRole: .catalog, tls: try mint(.gateway, "gw1")), logger: logger
                ) { catalog in
                    let view = CatalogView(catalog: catalog, logger: logger, retryDelay: .milliseconds(50))
                    try await withRunningServices([view.follower], logger: logger) {
                        while !view.isLoaded { try await Task.sleep(for: .milliseconds(50)) }
                    }
                    let entry = try #require(view.snapshot.images["many"])
                    #expect(entry.versions.count == 1500)
                    #expect(entry.versions[1500]?.files.count == 64)
                    // One answer holding it all would not fit in a frame.
                    let whole = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = "many" })
                    let bytes: [UInt8] = try whole.serializedBytes()
                    #expect(bytes.count > 16 << 20)
                }
            }
        }
    }
}
