import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf
import Testing

/// Issue 22, item 6: no listing's answer can outgrow a frame; clients follow the pages.
@Suite("Catalog: listings are paged by count and by bytes")
struct ListingPagingTests {
    static let versions = 1500
    /// Small enough that the image above takes many pages, each of many versions.
    static let budget = 64 << 10

    /// Image `many` with ``versions`` versions of three files each (made through the store, for
    /// speed), and placements of its last ten versions on two replicators.
    static func manyVersions(_ store: any CatalogStore) async throws {
        let now = Date()
        let image = try Name("many")
        _ = try await store.createImage(name: image, description: "", homeSite: nil, ifMissing: false, by: .admin, at: now)
        let files = try ["disk.raw", "boot/vmlinuz", "boot/initrd.img"].enumerated().map { index, path in
            try TestFile(path: path, size: Int64(index + 1) << 20, seed: UInt8(index)).domainSpec()
        }
        for _ in 0..<versions {
            _ = try await store.createVersion(
                NewVersion(image: image, number: nil, parent: nil, btrfsUUID: UUID().uuidString, files: files, publishedBy: "admin"),
                by: .admin, at: now)
        }
        _ = try await store.putSite(SiteSpec(name: try Name("hq"), description: "", cidrs: [], links: []), expected: .any)
        for node in ["repo-a", "repo-b"] {
            _ = try await store.registerNode(
                NodeRegistration(
                    name: try Name(node), role: .replicator, site: try Name("hq"), rpcAddress: nil, httpAddress: nil, capacityBytes: 0,
                    heartbeatTTLMilliseconds: 60_000), byAdmin: true, at: now)
            for version in (versions - 9)...versions {
                _ = try await store.setPlacement(
                    PlacementUpdate(image: image, version: Int64(version), node: try Name(node), state: .receiving, detail: "test"),
                    expected: .any, at: now)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func anImageWithFifteenHundredVersionsIsReadWholePageByPageAndNoPagePassesTheBudget(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind) { $0.rpc.pageBudgetBytes = Self.budget }
        try await harness.run {
            try await Self.manyVersions(harness.store)
            try await harness.withClient(.gateway, "gw1") { gateway in
                // A request without page_size (an old client) gets a first page and a token.
                var request = Icbd_Catalog_V1_GetImageRequest()
                request.name = "many"
                var page = try await gateway.unary(CatalogMethods.getImage, request)
                #expect(page.tags.isEmpty && page.image.name == "many")
                #expect(!page.nextPageToken.isEmpty)
                #expect(page.versions.first?.number == 1)

                // Page by page: each within the budget, versions then placements in order.
                var versions: [Int64] = []
                var placements: [String] = []
                var pages = 0
                while true {
                    pages += 1
                    let bytes: [UInt8] = try page.serializedBytes()
                    #expect(bytes.count <= Self.budget, "page \(pages)")
                    #expect(page.image.name == "many")
                    versions += page.versions.map(\.number)
                    placements += page.placements.map { "\($0.version)/\($0.node)" }
                    guard !page.nextPageToken.isEmpty else { break }
                    request.pageToken = page.nextPageToken
                    page = try await gateway.unary(CatalogMethods.getImage, request)
                }
                // About 260 bytes a version: the 64 KiB budget, not page_size (1000), ended the pages.
                #expect(pages >= 5, "the versions took \(pages) pages")
                #expect(versions == (1...Int64(Self.versions)).map { $0 })
                #expect(placements == ((Self.versions - 9)...Self.versions).flatMap { ["\($0)/repo-a", "\($0)/repo-b"] })

                // What clients do: follow the pages into one answer.
                let whole = try await gateway.allPages(CatalogMethods.getImage, .with { $0.name = "many" })
                #expect(whole.versions.count == Self.versions)
                #expect(whole.versions.allSatisfy { $0.files.count == 3 })
                #expect(whole.placements.count == 20)
                #expect(whole.nextPageToken.isEmpty)

                // page_size bounds the count; the server caps it.
                let small = try await gateway.unary(CatalogMethods.getImage, .with { $0.name = "many"; $0.pageSize = 7 })
                #expect(small.versions.map(\.number) == Array(1...7))
                await expectRPCError(.invalidArgument, mentioning: "page_size") {
                    _ = try await gateway.unary(CatalogMethods.getImage, .with { $0.name = "many"; $0.pageSize = 100_000 })
                }
                await expectRPCError(.invalidArgument, mentioning: "page_token") {
                    _ = try await gateway.unary(CatalogMethods.getImage, .with { $0.name = "many"; $0.pageToken = "x1" })
                }

                // The other listings page the same way.
                let listed = try await gateway.unary(CatalogMethods.listPlacements, .with { $0.pageSize = 3 })
                #expect(listed.placements.count == 3 && !listed.nextPageToken.isEmpty)
                let allPlacements = try await gateway.allPages(CatalogMethods.listPlacements, .with { $0.pageSize = 3 })
                #expect(allPlacements.placements.map { "\($0.version)/\($0.node)" } == placements)
                let nodes = try await gateway.allPages(CatalogMethods.listNodes, .with { $0.pageSize = 1 })
                #expect(nodes.nodes.map(\.name) == ["repo-a", "repo-b"])
            }
        }
    }
}
