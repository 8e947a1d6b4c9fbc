import HTTPTypes
import Hummingbird
import ICBDCore
import NIOCore

/// Hummingbird's request context plus the peer's address (for site routing).
struct GatewayRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

extension HTTPField.Name {
    /// The addresses a request passed through, nearest last (from trusted proxies only).
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}

extension IPAddress {
    /// A socket peer's address, taken from its `sockaddr` without going through text (nil for a
    /// Unix-domain socket). Linux's layouts: `sin_addr` at bytes 4–7 of `sockaddr_in`,
    /// `sin6_addr` at bytes 8–23 of `sockaddr_in6`.
    init?(peer: SocketAddress) {
        switch peer {
        case .v4(let address): self.init(bytes: withUnsafeBytes(of: address.address) { Array($0[4..<8]) })
        case .v6(let address): self.init(bytes: withUnsafeBytes(of: address.address) { Array($0[8..<24]) })
        case .unixDomainSocket: return nil
        }
    }
}
