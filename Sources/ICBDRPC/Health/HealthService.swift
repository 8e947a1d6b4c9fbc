import ICBDCore
import ICBDProto
import Synchronization

/// `/icbd.rpc.v1.Health/Check`, served by every service to any authenticated role.
public struct HealthService: RPCService {
    public static let check = RPCMethod<Icbd_Rpc_V1_HealthCheckRequest, Icbd_Rpc_V1_HealthCheckResponse>(
        service: "icbd.rpc.v1.Health", method: "Check", kind: .unary, allowedRoles: Set(Role.allCases))

    public let role: Role
    public let node: String
    public let site: String
    private let serving: ServingFlag

    public init(role: Role, node: String, site: String = "") {
        self.role = role
        self.node = node
        self.site = site
        self.serving = ServingFlag()
    }

    /// Says NOT_SERVING from now on (a service draining before it stops), or SERVING again.
    public func setServing(_ serving: Bool) {
        self.serving.withLock { $0 = serving }
    }

    public func register(into router: inout RPCRouter) {
        router.unary(Self.check) { _, _ in
            var response = Icbd_Rpc_V1_HealthCheckResponse()
            response.status = serving.withLock { $0 } ? .serving : .notServing
            response.role = role.rawValue
            response.node = node
            response.site = site
            response.version = SoftwareVersion.current
            return response
        }
    }
}

/// Whether a service says it is serving; shared by copies of its ``HealthService``.
final class ServingFlag: Sendable {
    private let value = Mutex(true)
    func withLock<R>(_ body: (inout Bool) -> R) -> R { value.withLock { body(&$0) } }
}
