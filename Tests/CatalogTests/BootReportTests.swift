import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf
import Testing

/// `ReportBoots` over mutual TLS: only gateways report, as themselves and at their registered
/// site, within bounds, every field checked as input from a peer that may lie
/// (docs/security.md "Boot reports").
@Suite("Catalog: boot reports from gateways")
struct BootReportTests {
    static func boot(_ mac: String = "52:54:00:00:00:01", version: Int64 = 1) -> Icbd_Catalog_V1_Boot {
        .with {
            $0.mac = mac
            $0.image = "linux"
            $0.version = version
            $0.outcome = .booted
            $0.startedMs = ManualClock.start.milliseconds - 60_000
            $0.loadedMs = 2000
            $0.upMs = 9000
            $0.bytesRead = 1 << 20
            $0.diskReads = 8
        }
    }

    @Test(arguments: StoreKind.available)
    func onlyRegisteredGatewaysReportAsThemselvesWithinBoundsAndEveryFieldChecked(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                _ = try await addSite(admin, "hq")
                _ = try await addSite(admin, "branch")
                try await publish(admin, image: "linux")
                _ = try await registerNode(admin, "gw-hq", role: .gateway, site: "hq")
                // Not a gateway: refused before the handler runs, admins included.
                await expectRPCError(.permissionDenied) { _ = try await admin.unary(CatalogMethods.reportBoots, .with { $0.boots = [Self.boot()] }) }
            }
            try await harness.withClient(.cache, "cache-1") { cache in
                await expectRPCError(.permissionDenied) { _ = try await cache.unary(CatalogMethods.reportBoots, .with { $0.boots = [Self.boot()] }) }
            }
            try await harness.withClient(.gateway, "gw-unknown") { stranger in
                await expectRPCError(.failedPrecondition, mentioning: "register first") {
                    _ = try await stranger.unary(CatalogMethods.reportBoots, .with { $0.boots = [Self.boot()] })
                }
            }
            try await harness.withClient(.gateway, "gw-hq") { gateway in
                // A report claims another site, another gateway, an hour-long phase and a start in
                // the future: kept at the caller's site, as the caller, clamped.
                var lying = Self.boot()
                lying.site = "branch"
                lying.gateway = "gw-branch"
                lying.upMs = 10 * 3_600_000
                lying.startedMs = ManualClock.start.milliseconds + 86_400_000
                let answer = try await gateway.unary(CatalogMethods.reportBoots, .with { $0.boots = [lying, Self.boot(version: 7)] })
                #expect(answer.recorded == 1 && answer.ignored == 1, "a version the catalog does not know is ignored")
                let kept = try await harness.store.listBoots(site: nil, image: nil, limit: 10).value
                #expect(kept.map(\.site.rawValue) == ["hq"] && kept.map(\.gateway.rawValue) == ["gw-hq"])
                #expect(kept.first?.upMilliseconds == BootReport.maximumMilliseconds)
                #expect(kept.first?.started == ManualClock.start)

                // Bounds and bad fields: INVALID_ARGUMENT naming the field, nothing kept.
                let tooMany = (0...BootReport.maximumPerReport).map { _ in Self.boot() }
                await expectRPCError(.invalidArgument, mentioning: "boots: has 257 items") {
                    _ = try await gateway.unary(CatalogMethods.reportBoots, .with { $0.boots = tooMany })
                }
                var cases: [(String, Icbd_Catalog_V1_Boot)] = []
                var bad = Self.boot("52:54:00:00:00:zz")
                cases.append(("boots[1].mac", bad))
                bad = Self.boot()
                bad.outcome = .unspecified
                cases.append(("boots[1].outcome", bad))
                bad = Self.boot()
                bad.outcome = .failed
                bad.failure = "$(reboot)"
                cases.append(("boots[1].failure", bad))
                bad = Self.boot()
                bad.failure = "restarted"
                cases.append(("boots[1].failure: only a failed boot", bad))
                bad = Self.boot()
                bad.bytesRead = -1
                cases.append(("boots[1].bytes_read", bad))
                bad = Self.boot()
                bad.image = "../etc"
                cases.append(("boots[1].image", bad))
                bad = Self.boot(version: -3)
                cases.append(("boots[1].version", bad))
                for (field, boot) in cases {
                    await expectRPCError(.invalidArgument, mentioning: field) {
                        _ = try await gateway.unary(CatalogMethods.reportBoots, .with { $0.boots = [Self.boot("52:54:00:00:00:02"), boot] })
                    }
                }
                #expect(try await harness.store.listBoots(site: nil, image: nil, limit: 10).value.count == 1, "no refused report kept anything")
            }
            try await harness.withClient { admin in
                let listed = try await admin.unary(CatalogMethods.listBoots, .with { $0.site = "hq" }).boots
                #expect(listed.map(\.mac) == ["52:54:00:00:00:01"])
                await expectRPCError(.invalidArgument, mentioning: "limit") { _ = try await admin.unary(CatalogMethods.listBoots, .with { $0.limit = 5000 }) }
            }
        }
    }
}
