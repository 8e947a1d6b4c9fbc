import HTTPTypes
import Hummingbird

/// An error answered to an HTTP client: a status and a short reason for people.
struct GatewayError: Error, Sendable, CustomStringConvertible {
    let status: HTTPResponse.Status
    let reason: String
    /// Extra headers (`Retry-After`, `Content-Range`).
    var headers: HTTPFields = [:]

    var description: String { "\(status.code) \(reason)" }

    static func notFound(_ reason: String) -> GatewayError { GatewayError(status: .notFound, reason: reason) }
    static func badRequest(_ reason: String) -> GatewayError { GatewayError(status: .badRequest, reason: reason) }
    static func unavailable(_ reason: String, retryAfter: Int) -> GatewayError {
        GatewayError(status: .serviceUnavailable, reason: reason, headers: [.retryAfter: "\(retryAfter)"])
    }
}
