import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf
import Testing

@Suite("Catalog: a failed publish is taken back with AbandonVersion")
struct AbandonVersionTests {
    func createVersion(_ client: RPCClient, image: String) async throws -> Int64 {
        _ = try await client.unary(CatalogMethods.createImage, .with { $0.name = image; $0.ifMissing = true })
        var request = Icbd_Catalog_V1_CreateVersionRequest()
        request.image = image
        request.btrfsUuid = UUID().uuidString.lowercased()
        request.files = [TestFile(path: "disk.raw", size: 3 << 20).spec]
        return try await client.unary(CatalogMethods.createVersion, request).version.number
    }

    func abandon(_ client: RPCClient, image: String, number: Int64, dropImage: Bool = false) async throws
        -> Icbd_Catalog_V1_AbandonVersionResponse
    {
        try await client.unary(
            CatalogMethods.abandonVersion, .with { $0.image = image; $0.number = number; $0.dropImageIfUnused = dropImage })
    }

    @Test(arguments: StoreKind.available)
    func aPublishingVersionGoesAsIfItHadNeverBeenCreated(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withReplicator("repo1") { replicator in
                try await publish(replicator, image: "win11")
                let before = try await getImage(replicator, "win11")
                let number = try await createVersion(replicator, image: "win11")
                try await uploadManifest(
                    replicator, image: "win11", version: number, file: TestFile(path: "disk.raw", size: 3 << 20))
                let answer = try await abandon(replicator, image: "win11", number: number, dropImage: true)
                #expect(!answer.imageDropped, "the image still has version 1")
                let after = try await getImage(replicator, "win11")
                #expect(after.versions == before.versions)
                #expect(after.tags == before.tags)
                // The number is free again: the next publish takes it.
                #expect(try await createVersion(replicator, image: "win11") == number)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func anImageThisPublishCreatedGoesTooWhenNothingElseUsesIt(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withReplicator("repo1") { replicator in
                let number = try await createVersion(replicator, image: "fresh")
                #expect(try await abandon(replicator, image: "fresh", number: number, dropImage: true).imageDropped)
                await expectRPCError(.notFound, mentioning: "image 'fresh' does not exist") {
                    _ = try await getImage(replicator, "fresh")
                }
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func onlyItsPublisherAbandonsAVersionAndOnlyWhilePublishing(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            let number = try await harness.withReplicator("repo1") { replicator in
                try await publish(replicator, image: "win11")
                return try await createVersion(replicator, image: "win11")
            }
            try await harness.withReplicator("repo2") { other in
                await expectRPCError(.failedPrecondition, mentioning: "being published by 'repo1', not 'repo2'") {
                    _ = try await abandon(other, image: "win11", number: number)
                }
                await expectRPCError(.failedPrecondition, mentioning: "version 1 of image 'win11' is ready, not publishing") {
                    _ = try await abandon(other, image: "win11", number: 1)
                }
            }
            try await harness.withClient(.gateway, "gw1") { gateway in
                await expectRPCError(.permissionDenied, mentioning: "gateway") {
                    _ = try await abandon(gateway, image: "win11", number: number)
                }
            }
            // An operator may clean up after any publisher.
            try await harness.withClient { admin in
                _ = try await abandon(admin, image: "win11", number: number)
                #expect(try await getImage(admin, "win11").versions.map(\.number) == [1])
            }
        }
    }
}
