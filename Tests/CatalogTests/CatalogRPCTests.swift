import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Testing

@Suite("Catalog: publishing and reading over RPC with mutual TLS")
struct CatalogRPCTests {
    @Test(arguments: StoreKind.available)
    func aPublishedVersionIsListedTaggedAndItsManifestStreamsBack(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            // 12 GiB in 1 MiB chunks: 12,288 entries, three pages on the wire.
            let disk = TestFile(path: "disk.raw", size: 12 << 30)
            let kernel = TestFile(path: "vmlinuz", size: 9_000_000, seed: 9)
            try await harness.withReplicator("repo1") { replicator in
                let version = try await publish(replicator, image: "win11", files: [disk, kernel], manifestPiece: 777)
                #expect(version.number == 1)
                #expect(version.state == .ready)
                #expect(version.publishedBy == "repo1")
                #expect(version.files.map(\.path) == ["disk.raw", "vmlinuz"])
                #expect(version.files.allSatisfy { $0.manifestStored })
            }
            try await harness.withClient(.gateway, "gw1") { gateway in
                var list = Icbd_Catalog_V1_ListImagesRequest()
                list.pageSize = 10
                let listing = try await gateway.unary(CatalogMethods.listImages, list)
                #expect(listing.images.map(\.image.name) == ["win11"])
                #expect(listing.images.first?.tags.map(\.name) == ["latest"])
                #expect(listing.images.first?.newestVersion == 1)
                #expect(listing.revision > 0)

                var request = Icbd_Catalog_V1_GetManifestRequest()
                request.image = "win11"
                request.version = 1
                request.path = "disk.raw"
                let (file, entries, messages) = try await gateway.serverStreaming(CatalogMethods.getManifest, request) { chunks in
                    var file = Icbd_Catalog_V1_File()
                    var entries = Data()
                    var messages = 0
                    for try await chunk in chunks {
                        if messages == 0 { file = chunk.file }
                        #expect(chunk.firstChunk == Int64(entries.count / 32))
                        entries += chunk.entries
                        messages += 1
                    }
                    return (file, entries, messages)
                }
                #expect(messages == 3)
                #expect(file.chunkCount == 12_288)
                #expect([UInt8](entries) == disk.entries)
                #expect([UInt8](file.manifestSha256) == disk.digest)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func badRequestsNameTheProblem(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                try await publish(admin, image: "win11")
                var create = Icbd_Catalog_V1_CreateImageRequest()
                create.name = "Win 11"
                await expectRPCError(.invalidArgument, mentioning: "name: invalid name 'Win 11'") {
                    _ = try await admin.unary(CatalogMethods.createImage, create)
                }
                await expectRPCError(.notFound, mentioning: "image 'nope' does not exist") {
                    _ = try await getImage(admin, "nope")
                }
                await expectRPCError(.notFound, mentioning: "no version 4") {
                    _ = try await moveTag(admin, image: "win11", tag: "stable", version: 4)
                }
                var site = Icbd_Catalog_V1_PutSiteRequest()
                site.site.name = "hq"
                site.site.cidrs = ["10.0.0.0/8", "10.300.0.0/16"]
                await expectRPCError(.invalidArgument, mentioning: "site.cidrs[1]") {
                    _ = try await admin.unary(CatalogMethods.putSite, site)
                }
                site.site.cidrs = ["10.0.0.0/8", "10.1.0.0/16"]
                await expectRPCError(.invalidArgument, mentioning: "10.0.0.0/8 overlaps 10.1.0.0/16") {
                    _ = try await admin.unary(CatalogMethods.putSite, site)
                }
                var assign = Icbd_Catalog_V1_AssignRequest()
                assign.mac = "52:54:00:zz:34:56"
                assign.image = "win11"
                await expectRPCError(.invalidArgument, mentioning: "mac: invalid MAC address") {
                    _ = try await admin.unary(CatalogMethods.assign, assign)
                }
                assign.mac = "52-54-00-12-34-56"
                assign.ref = "stable"
                await expectRPCError(.notFound, mentioning: "no tag 'stable'") {
                    _ = try await admin.unary(CatalogMethods.assign, assign)
                }
                var version = Icbd_Catalog_V1_CreateVersionRequest()
                version.image = "win11"
                version.files = [TestFile(path: "../etc/shadow", size: 1).spec]
                await expectRPCError(.invalidArgument, mentioning: "files[0].path") {
                    _ = try await admin.unary(CatalogMethods.createVersion, version)
                }
                version.files = [TestFile(path: "disk.raw", size: 1, chunkSize: 3000).spec]
                await expectRPCError(.invalidArgument, mentioning: "files[0].chunk_size") {
                    _ = try await admin.unary(CatalogMethods.createVersion, version)
                }
                version.files = [TestFile(path: "disk.raw", size: 1).spec]
                version.number = 5
                await expectRPCError(.failedPrecondition, mentioning: "next version of image 'win11' is 2, not 5") {
                    _ = try await admin.unary(CatalogMethods.createVersion, version)
                }
                // Nothing of the refused requests was written.
                let image = try await getImage(admin, "win11")
                #expect(image.versions.count == 1)
                #expect(image.tags.map(\.name) == ["latest"])
                let sites = try await admin.unary(CatalogMethods.listSites, Icbd_Catalog_V1_ListSitesRequest())
                #expect(sites.sites.isEmpty)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func assignmentsResolveTagsAndTheTagIsRefusedOnRetiredVersions(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                try await publish(admin, image: "win11")
                try await publish(admin, image: "win11")
                _ = try await moveTag(admin, image: "win11", tag: "stable", version: 1)
                var assign = Icbd_Catalog_V1_AssignRequest()
                assign.mac = "525400123456"
                assign.image = "win11"
                assign.ref = "stable"
                let assigned = try await admin.unary(CatalogMethods.assign, assign)
                #expect(assigned.assignment.mac == "52:54:00:12:34:56")
                var get = Icbd_Catalog_V1_GetAssignmentRequest()
                get.mac = "52%3A54:00:12:34:56".replacingOccurrences(of: "%3A", with: ":")
                #expect(try await admin.unary(CatalogMethods.getAssignment, get).version.number == 1)

                // Rollforward: move the tag and the workstation follows without being touched.
                _ = try await moveTag(admin, image: "win11", tag: "stable", version: 2)
                #expect(try await admin.unary(CatalogMethods.getAssignment, get).version.number == 2)

                var retire = Icbd_Catalog_V1_RetireVersionRequest()
                retire.image = "win11"
                retire.number = 1
                let retired = try await admin.unary(CatalogMethods.retireVersion, retire)
                #expect(retired.version.state == .retired)
                await expectRPCError(.failedPrecondition, mentioning: "retired") {
                    _ = try await moveTag(admin, image: "win11", tag: "stable", version: 1)
                }
                retire.number = 2
                await expectRPCError(.failedPrecondition, mentioning: "tag 'stable'") {
                    _ = try await admin.unary(CatalogMethods.retireVersion, retire)
                }
            }
        }
    }
}
