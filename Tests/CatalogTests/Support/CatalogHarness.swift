import Catalog
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

/// A clock the test moves by hand, so heartbeat expiry never depends on how fast the machine is.
final class ManualClock: Sendable {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    private let current: Mutex<Date>

    init(at start: Date = ManualClock.start) {
        current = Mutex(start)
    }

    var now: Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}

/// A catalog on 127.0.0.1:0 with a real database (an SQLite file in a temporary directory or
/// a database on a real PostgreSQL server, ``StoreFixture``), real mutual TLS with
/// certificates minted for the test, and clients of any role and name.
struct CatalogHarness {
    let authority: CertificateAuthority
    let fixture: StoreFixture
    let clock: ManualClock
    let service: CatalogService
    let logger = quietLogger()

    var directory: URL { fixture.directory }
    var databasePath: String { fixture.database }

    /// A catalog on a fresh database of `kind`.
    init(_ kind: StoreKind = .sqlite, clock: ManualClock = ManualClock(), configure: (inout CatalogConfiguration) -> Void = { _ in }) async throws {
        try await self.init(on: try await StoreFixture(kind), clock: clock, configure: configure)
    }

    /// A catalog on `fixture`'s database (a restart, or a second catalog process on it).
    init(
        on fixture: StoreFixture, clock: ManualClock = ManualClock(), authority: CertificateAuthority? = nil,
        name: String = "cat1", configure: (inout CatalogConfiguration) -> Void = { _ in }
    ) async throws {
        self.clock = clock
        self.fixture = fixture
        self.authority = try authority ?? CertificateAuthority.create(commonName: "icbd catalog test CA \(UUID())")
        var configuration = CatalogConfiguration(
            listen: HostPort(host: "127.0.0.1", port: 0), databasePath: fixture.database,
            tls: try Self.identity(self.authority, .catalog, name), name: name)
        try fixture.configure(&configuration)
        let clock = self.clock
        configuration.now = { clock.now }
        configure(&configuration)
        service = try await CatalogService.open(configuration: configuration, logger: logger)
    }

    var store: any CatalogStore { service.store }

    static func identity(_ authority: CertificateAuthority, _ role: Role, _ name: String) throws -> TLSIdentity {
        try authority.issueIdentity(
            PeerIdentity(role: role, name: name), dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"],
            notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(3600))
    }

    /// Runs the catalog while `body` runs, as a catalog process does: its store's services (if
    /// any) and the catalog in one `ServiceGroup`, shut down gracefully after `body`. Once per
    /// harness (a restart is a new harness on the same fixture).
    func run<R: Sendable>(_ body: () async throws -> R) async throws -> R {
        try await withRunningServices(service.storeServices + [service], logger: logger) {
            _ = try await service.localAddress()
            return try await body()
        }
    }

    /// Runs `body` with a client presenting `role`/`name`.
    func withClient<R: Sendable>(_ role: Role = .admin, _ name: String = "admin", _ body: (RPCClient) async throws -> R) async throws -> R {
        let address = HostPort(host: "127.0.0.1", port: try await service.localAddress().port ?? 0)
        let configuration = RPCClientConfiguration(
            target: address, expectedRole: .catalog, tls: try Self.identity(authority, role, name))
        return try await withRPCClient(configuration, logger: logger, body)
    }

    /// Runs `body` with the client of replicator `name`, registered (by an admin) at `site`,
    /// which is added when missing: a replicator publishes only the images of its own site.
    func withReplicator<R: Sendable>(_ name: String, site: String = "hq", _ body: (RPCClient) async throws -> R) async throws -> R {
        try await withClient { admin in
            _ = try await addSite(admin, site)
            _ = try await registerNode(admin, name, role: .replicator, site: site)
        }
        return try await withClient(.replicator, name, body)
    }
}

/// Asserts that `body` fails with an RPCError of `code`; returns the error.
@discardableResult
func expectRPCError(
    _ code: RPCError.Code, mentioning fragment: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> RPCError? {
    do {
        try await body()
        Issue.record("expected \(code), the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as RPCError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let fragment { #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation) }
        return error
    } catch {
        Issue.record("expected RPCError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Asserts that `body` fails with a CatalogStoreError of `code`.
@discardableResult
func expectStoreError(
    _ code: CatalogStoreError.Code, mentioning fragment: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> CatalogStoreError? {
    do {
        try await body()
        Issue.record("expected \(code), the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as CatalogStoreError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let fragment { #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation) }
        return error
    } catch {
        Issue.record("expected CatalogStoreError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
