import ICBDCore
import ICBDProto

/// `/icbd.rpc.v1.Health/Check`, served by every service to any authenticated role.
public struct HealthService: RPCService {
    public let role: Role
    public let node: String
    public let site: String
    /// A degraded mode and why, asked at each check (a cache in pass-through says so); nil: none.
    public let detail: @Sendable () -> String?

    public init(role: Role, node: String, site: String = "", detail: @escaping @Sendable () -> String? = { nil }) {
        self.role = role
        self.node = node
        self.site = site
        self.detail = detail
    }

    public func register(into router: inout RPCRouter) {
        router.unary(HealthMethods.check) { _, _ in
            var response = Icbd_Rpc_V1_HealthCheckResponse()
            // A service answers only while it runs; NOT_SERVING is for draining, not built yet.
            response.status = .serving
            response.role = role.rawValue
            response.node = node
            response.site = site
            response.version = SoftwareVersion.current
            if let detail = detail() { response.detail = detail }
            return response
        }
    }
}
