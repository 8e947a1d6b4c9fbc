import ICBDCore
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
import NIOPosix
import Testing

/// An RPC server on 127.0.0.1:0 with the test service, and clients for it, for one test.
struct TestServer {
    let pki: TestPKI
    let probes = TestService.Probes()
    let server: RPCServer
    let logger: Logger

    /// `log`: where the server logs (default: nowhere but critical lines); `group`: its event
    /// loops; `configure` adjusts the server's configuration.
    init(
        pki: TestPKI? = nil, log: RecordingLogHandler? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        configure: (inout RPCServerConfiguration) -> Void = { _ in }
    ) throws {
        self.pki = try pki ?? TestPKI()
        let logger = quietLogger()
        self.logger = logger
        var router = RPCRouter()
        router.register(TestService(probes: probes))
        router.register(HealthService(role: .catalog, node: "test-server"))
        var configuration = RPCServerConfiguration(
            listen: HostPort(host: "127.0.0.1", port: 0), tls: try self.pki.identity(.catalog, "test-server"))
        configure(&configuration)
        server = try RPCServer(
            configuration: configuration,
            router: router,
            group: group,
            logger: log.map { log in Logger(label: "test-server") { _ in log } } ?? logger
        )
    }

    func address() async throws -> HostPort {
        HostPort(host: "127.0.0.1", port: try await server.localAddress().port ?? 0)
    }

    /// Runs the server while `body` runs, then shuts it down gracefully (calls still in flight
    /// get the grace period).
    func run<R: Sendable>(_ body: () async throws -> R) async throws -> R {
        try await withRunningServices([server], logger: logger) {
            _ = try await server.localAddress()
            return try await body()
        }
    }

    func clientConfiguration(_ identity: TLSIdentity, expectedRole: Role = .catalog) async throws -> RPCClientConfiguration {
        RPCClientConfiguration(target: try await address(), expectedRole: expectedRole, tls: identity)
    }

    /// Runs `body` with a client presenting `identity` (default: an admin).
    func withClient<R: Sendable>(_ identity: TLSIdentity? = nil, _ body: (RPCClient) async throws -> R) async throws -> R {
        let configuration = try await clientConfiguration(try identity ?? pki.identity(.admin, "admin"))
        return try await withRPCClient(configuration, logger: logger, body)
    }
}

/// Asserts that `body` fails with an RPCError of `code`; returns the error.
@discardableResult
func expectRPCError(
    _ code: RPCError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> RPCError? {
    do {
        try await body()
        Issue.record("expected \(code), the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as RPCError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected RPCError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
