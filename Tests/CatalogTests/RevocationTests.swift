import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import NIOCore
import SwiftProtobuf
import Testing

@Suite("Catalog: the certificate revocation list")
struct RevocationTests {
    func revocation(of identity: TLSIdentity, expires: Date, reason: String = "") -> Icbd_Catalog_V1_RevokeCertificateRequest {
        .with {
            $0.serial = identity.serial.hex
            $0.name = identity.identity.uri
            $0.expiresMs = Int64(expires.timeIntervalSince1970 * 1000)
            $0.reason = reason
        }
    }

    /// A node with a connection open (a Watch) is revoked by an admin: the catalog closes that
    /// connection and refuses its next handshake, while others keep working.
    @Test(arguments: StoreKind.available)
    func aRevokedPeerIsRefusedAtTheHandshakeAndItsOpenConnectionClosed(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind) { $0.tls.revocations = RevocationList(refreshInterval: .milliseconds(100)) }
        try await harness.run {
            let address = HostPort(host: "127.0.0.1", port: try await harness.service.localAddress().port ?? 0)
            let cache = try CatalogHarness.identity(harness.authority, .cache, "cache-1")
            let cacheClient = RPCClientConfiguration(target: address, expectedRole: .catalog, tls: cache)
            try await withRPCClient(cacheClient, logger: harness.logger) { node in
                _ = try await node.unary(CatalogMethods.listSites, .init())
                let watch = Task<String, Never> {
                    do {
                        try await node.serverStreaming(CatalogMethods.watch, .with { $0.fromRevision = 0 }) { responses in
                            for try await _ in responses {}
                        }
                        return "ended without error"
                    } catch {
                        return "\(error)"
                    }
                }
                try await harness.withClient { admin in
                    let answer = try await admin.unary(
                        CatalogMethods.revokeCertificate,
                        revocation(of: cache, expires: harness.clock.now.addingTimeInterval(86400), reason: "lost"))
                    #expect(answer.created)
                    #expect(answer.revocation.name == "icbd://cache/cache-1")
                    #expect(answer.revocation.reason == "lost")
                }
                // The catalog reads its list every 100 ms here (30 s by default); a minute at most.
                let ended = await withTaskGroup(of: String?.self) { group in
                    group.addTask { await watch.value }
                    group.addTask {
                        try? await Task.sleep(for: .seconds(60))
                        return nil
                    }
                    let first = await group.next() ?? nil
                    watch.cancel()  // when the minute won: ends the watch, so the group can finish
                    group.cancelAll()
                    return first
                }
                #expect(ended != nil, "the revoked peer's open Watch was closed")
                var refused: (any Error)?
                for _ in 0..<600 where refused == nil {
                    do { _ = try await node.unary(CatalogMethods.listSites, .init()) } catch { refused = error }
                }
                #expect(refused != nil, "the revoked peer's next handshake is refused")
            }
            try await harness.withClient(.cache, "cache-2") { other in
                _ = try await other.unary(CatalogMethods.listSites, .init())
                let listed = try await other.unary(CatalogMethods.listRevocations, .init()).revocations
                #expect(listed.map(\.name) == ["icbd://cache/cache-1"], "every role reads the list")
                await expectRPCError(.permissionDenied) {
                    _ = try await other.unary(CatalogMethods.revokeCertificate, revocation(of: cache, expires: harness.clock.now + 60))
                }
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func revokeRefusesWhatIsNoSerialAndWhatExpiredAlready(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                let node = try CatalogHarness.identity(harness.authority, .cache, "cache-1")
                var request = revocation(of: node, expires: harness.clock.now.addingTimeInterval(60))
                request.serial = "zz:11"
                await expectRPCError(.invalidArgument, mentioning: "serial") { _ = try await admin.unary(CatalogMethods.revokeCertificate, request) }
                request = revocation(of: node, expires: harness.clock.now.addingTimeInterval(-1))
                await expectRPCError(.invalidArgument, mentioning: "expired") { _ = try await admin.unary(CatalogMethods.revokeCertificate, request) }
                request = revocation(of: node, expires: harness.clock.now.addingTimeInterval(60), reason: String(repeating: "x", count: 257))
                await expectRPCError(.invalidArgument, mentioning: "reason") { _ = try await admin.unary(CatalogMethods.revokeCertificate, request) }
                request = revocation(of: node, expires: harness.clock.now.addingTimeInterval(60))
                request.name = "cache-1\nforged log line"
                await expectRPCError(.invalidArgument, mentioning: "name") { _ = try await admin.unary(CatalogMethods.revokeCertificate, request) }
                #expect(try await admin.unary(CatalogMethods.listRevocations, .init()).revocations.isEmpty)
            }
        }
    }

    /// The list stays bounded: an entry goes once its certificate expired; a serial revoked
    /// twice keeps its first entry; entries survive a restart.
    @Test(arguments: StoreKind.available)
    func theListKeepsTheFirstEntryAndDropsExpiredOnes(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        let now = harness.clock.now
        try await harness.run {
            let store = harness.store
            func entry(_ serial: String, expiresIn seconds: TimeInterval, _ reason: String) throws -> RevocationRecord {
                RevocationRecord(
                    serial: try #require(CertificateSerial(parsing: serial)), name: "", revoked: now, expires: now + seconds, reason: reason)
            }
            #expect(try await store.revoke(try entry("0a:01", expiresIn: 10, "first"), at: now).created)
            #expect(try await store.revoke(try entry("0b:02", expiresIn: 100, "b"), at: now).created)
            let again = try await store.revoke(try entry("A01", expiresIn: 50, "second"), at: now)
            #expect(!again.created)
            #expect(again.0.reason == "first", "the same serial however written")
            #expect(try await store.revocations(at: now).map(\.serial.hex) == ["0a01", "0b02"])
            #expect(try await store.revocations(at: now + 20).map(\.serial.hex) == ["0b02"], "an expired certificate needs no entry")
            // A revocation drops the expired entries: the table does not grow with them.
            #expect(try await store.revoke(try entry("0c:03", expiresIn: 100, "c"), at: now + 20).created)
            #expect(try await store.revocations(at: now).map(\.serial.hex) == ["0b02", "0c03"])
        }
        let restarted = try await CatalogHarness(on: harness.fixture, clock: harness.clock)
        try await restarted.run { () async throws in
            #expect(try await restarted.store.revocations(at: now).map(\.reason) == ["b", "c"])
        }
    }
}
