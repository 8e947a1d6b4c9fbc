import Foundation
import ICBDCore
import Logging
import Synchronization
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// Builds the TLS handlers of icbd/1: TLS 1.3, ALPN `icbd/1`, mutual authentication against the
/// deployment CA, and the icbd identity rules and the revocation list checked *during* the
/// handshake, so a bad or revoked peer certificate fails the handshake with an alert (docs/wire.md
/// "1. Connection").
package struct TLSContexts: Sendable {
    package static let alpn = "icbd/1"

    let identity: TLSIdentity
    let context: NIOSSLContext
    let isServer: Bool

    package init(server identity: TLSIdentity) throws {
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: try identity.nioCertificateChain.map { .certificate($0) },
            privateKey: .privateKey(identity.privateKey)
        )
        config.certificateVerification = .noHostnameVerification
        try self.init(identity: identity, config: config, isServer: true)
    }

    package init(client identity: TLSIdentity) throws {
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateChain = try identity.nioCertificateChain.map { .certificate($0) }
        config.privateKey = .privateKey(identity.privateKey)
        config.certificateVerification = .fullVerification
        try self.init(identity: identity, config: config, isServer: false)
    }

    private init(identity: TLSIdentity, config: TLSConfiguration, isServer: Bool) throws {
        var config = config
        config.minimumTLSVersion = .tlsv13
        config.trustRoots = .certificates(try identity.nioTrustRoots)
        config.applicationProtocols = [Self.alpn]
        self.identity = identity
        self.context = try NIOSSLContext(configuration: config)
        self.isServer = isServer
    }

    /// The server side of one connection.
    package func makeServerHandler(logger: Logger) -> NIOSSLServerHandler {
        NIOSSLServerHandler(
            context: context,
            customVerificationCallbackWithMetadata: verify(usage: .clientAuth, expectedRole: nil, host: nil, logger: logger)
        )
    }

    /// The client side of one connection to `host`, which must present `expectedRole` (and
    /// `expectedName`, when given). `refusal` receives, if the server's certificate is refused,
    /// why: for the caller's error.
    package func makeClientHandler(
        host: String, expectedRole: Role, expectedName: String? = nil, logger: Logger,
        refusal: CertificateRefusal = CertificateRefusal()
    ) throws -> NIOSSLClientHandler {
        let isIP = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
        return try NIOSSLClientHandler(
            context: context,
            serverHostname: isIP ? nil : host,
            customVerificationCallbackWithMetadata: verify(
                usage: .serverAuth, expectedRole: expectedRole, expectedName: expectedName, host: host, logger: logger,
                refusal: refusal)
        )
    }

    private func verify(
        usage: ExtendedKeyUsage.Usage, expectedRole: Role?, expectedName: String? = nil, host: String?, logger: Logger,
        refusal: CertificateRefusal = CertificateRefusal()
    ) -> NIOSSLCustomVerificationCallbackWithMetadata {
        let roots = identity.trustRoots
        let revocations = identity.revocations
        return { presented, promise in
            promise.completeWithTask {
                do {
                    guard let first = presented.first else { return .failed }
                    let leaf = try Certificate(derEncoded: first.toDERBytes())
                    let intermediates = try presented.dropFirst().map { try Certificate(derEncoded: $0.toDERBytes()) }
                    let isIP = host.map { $0.contains(":") || $0.allSatisfy { $0.isNumber || $0 == "." } } ?? false
                    var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
                        RFC5280Policy(validationTime: Date())
                        PeerCertificatePolicy(usage: usage, expectedRole: expectedRole, expectedName: expectedName)
                        RevocationPolicy(list: revocations)
                        if let host {
                            ServerIdentityPolicy(serverHostname: isIP ? nil : host, serverIP: isIP ? host : nil)
                        }
                    }
                    let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
                    switch result {
                    case .validCertificate(let chain):
                        let nio = try chain.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) }
                        return .certificateVerified(VerificationMetadata(ValidatedCertificateChain(nio)))
                    case .couldNotValidate(let failures):
                        let reasons = failures.map { "\($0.policyFailureReason)" }
                        let reason = reasons.isEmpty ? "no chain to the deployment CA" : reasons.joined(separator: "; ")
                        refusal.record("\(leaf.subject): \(reason)")
                        logger.warning("peer certificate refused", metadata: ["subject": "\(leaf.subject)", "reasons": "\(reason)"])
                        return .failed
                    }
                } catch {
                    refusal.record("\(error)")
                    logger.warning("peer certificate refused", metadata: ["error": "\(error)"])
                    return .failed
                }
            }
        }
    }
}

/// Why this side refused its peer's certificate during one handshake, if it did.
package final class CertificateRefusal: Sendable {
    private let reason = Mutex<String?>(nil)

    package init() {}

    func record(_ text: String) {
        reason.withLock { $0 = $0 ?? text }
    }

    package var recorded: String? { reason.withLock { $0 } }
}
