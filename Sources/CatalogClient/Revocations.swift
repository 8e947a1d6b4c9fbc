import Foundation
import ICBDCore
import ICBDRPC

/// One revoked certificate of the deployment (`icbd pki revoke`). Kept until the certificate
/// expires, after which no server would accept it anyway, so the list stays bounded.
public struct RevocationRecord: Sendable, Hashable {
    public var serial: CertificateSerial
    /// The certificate's `icbd://ROLE/NAME`, or empty when the admin gave only a serial.
    public var name: String
    public var revoked: Date
    /// The certificate's notAfter: the entry is dropped after it.
    public var expires: Date
    /// Why, for people; at most ``maximumReasonBytes``.
    public var reason: String

    /// The most entries the catalog keeps: what every server holds at most
    /// (``RevocationList/maximumEntries``).
    public static let maximumEntries = RevocationList.maximumEntries
    public static let maximumReasonBytes = 256
    public static let maximumNameBytes = 128

    public init(serial: CertificateSerial, name: String, revoked: Date, expires: Date, reason: String) {
        self.serial = serial
        self.name = name
        self.revoked = revoked
        self.expires = expires
        self.reason = reason
    }
}
