import Logging
import SwiftASN1
import NIOCore
import NIOSSL
import Synchronization
import X509

/// The serials of the deployment's revoked certificates, as this process last read them from
/// the catalog, and the server connections it holds open to peers: every handshake of a
/// ``TLSContexts`` checks the list (the TLS verify callback), and a connection whose peer's
/// certificate becomes revoked is closed when the list changes.
///
/// One list is shared by every copy of a ``TLSIdentity``; its holder refreshes it every
/// ``refreshInterval`` (the catalog's `ListRevocations`, or the catalog's own store).
public final class RevocationList: Sendable {
    /// How often a service refreshes this list. Default 30 s: a revocation takes effect within
    /// that and a handshake.
    public let refreshInterval: Duration
    /// The most serials held; a longer list from the catalog is cut (and logged), so a peer
    /// cannot make this process hold an unbounded set. The catalog keeps no more than this.
    public static let maximumEntries = 10_000

    private let state = Mutex<State>(State())

    private struct State {
        var revoked: Set<CertificateSerial> = []
        var connections: [ObjectIdentifier: GuardedConnection] = [:]
    }

    private struct GuardedConnection {
        let serial: CertificateSerial
        let channel: any Channel
    }

    public init(refreshInterval: Duration = .seconds(30)) {
        self.refreshInterval = refreshInterval
    }

    /// Whether `serial` is revoked.
    public func isRevoked(_ serial: CertificateSerial) -> Bool {
        state.withLock { $0.revoked.contains(serial) }
    }

    /// The revoked serials held now.
    public var serials: Set<CertificateSerial> { state.withLock { $0.revoked } }

    /// Replaces the list with `serials` (at most ``maximumEntries`` of them, the rest dropped)
    /// and closes the guarded connections whose peer is now revoked. Returns how many it closed.
    @discardableResult
    public func replace(with serials: some Sequence<CertificateSerial>, logger: Logger) -> Int {
        var kept: Set<CertificateSerial> = []
        var dropped = 0
        for serial in serials {
            if kept.count < Self.maximumEntries { kept.insert(serial) } else { dropped += 1 }
        }
        if dropped > 0 {
            logger.error(
                "revocation list cut to its maximum", metadata: ["kept": "\(kept.count)", "dropped": "\(dropped)"])
        }
        let doomed = state.withLock { state -> [GuardedConnection] in
            let added = kept.subtracting(state.revoked)
            state.revoked = kept
            guard !added.isEmpty else { return [] }
            return state.connections.values.filter { added.contains($0.serial) }
        }
        for connection in doomed {
            logger.notice(
                "closing a connection whose peer's certificate was revoked",
                metadata: ["serial": "\(connection.serial)", "remote": "\(connection.channel.remoteAddress.map { "\($0)" } ?? "unknown")"])
            connection.channel.close(promise: nil)
        }
        return doomed.count
    }

    /// Keeps `channel`, a server connection past its handshake, until the returned guard is
    /// ended: when its peer's certificate is revoked, the channel is closed. A peer revoked
    /// between its handshake and this call is closed at once.
    package func guardConnection(_ channel: any Channel) async -> RevocationGuard {
        let key = RevocationGuard(list: self)
        let serial: CertificateSerial? = try? await channel.eventLoop.submit {
            let handler = try channel.pipeline.syncOperations.handler(type: NIOSSLHandler.self)
            guard let der = try handler.peerCertificate?.toDERBytes() else { return nil }
            return CertificateSerial(try Certificate(derEncoded: der).serialNumber)
        }.get()
        guard let serial else { return key }
        let revoked = state.withLock { state in
            state.connections[ObjectIdentifier(key)] = GuardedConnection(serial: serial, channel: channel)
            return state.revoked.contains(serial)
        }
        if revoked { channel.close(promise: nil) }
        return key
    }

    fileprivate func release(_ key: RevocationGuard) {
        _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(key)) }
    }
}

/// One connection kept by a ``RevocationList``; ``end()`` it when the connection is done.
package final class RevocationGuard: Sendable {
    private let list: RevocationList

    fileprivate init(list: RevocationList) { self.list = list }

    package func end() { list.release(self) }
}
