import Foundation
import ICBDProto
import ICBDRPC
import Logging
import ServiceLifecycle

/// Keeps a service's ``RevocationList`` current: reads the catalog's list every
/// ``RevocationList/refreshInterval`` — through the service's catalog client, or for the
/// catalog itself from its own store — and replaces the list, which closes the connections of
/// newly revoked peers. A failed read keeps the list held (logged) and is retried next time.
/// A `Service`: it stops at graceful shutdown.
public struct RevocationFollower: Service, Sendable {
    let list: RevocationList
    let logger: Logger
    let read: @Sendable () async throws -> [CertificateSerial]

    /// Follows the catalog `catalog` reaches.
    public init(list: RevocationList, catalog: RPCClient, logger: Logger) {
        self.list = list
        self.logger = logger
        self.read = {
            let answer = try await catalog.unary(CatalogMethods.listRevocations, .init())
            // At most what the list holds; an entry that does not parse is skipped (and logged).
            return answer.revocations.prefix(RevocationList.maximumEntries).compactMap { revocation in
                guard let serial = CertificateSerial(parsing: revocation.serial) else {
                    logger.warning("the catalog sent a revocation without a valid serial", metadata: ["serial": "\(revocation.serial.prefix(64))"])
                    return nil
                }
                return serial
            }
        }
    }

    /// Follows the serials `read` returns (the catalog reads its own store).
    public init(list: RevocationList, logger: Logger, read: @escaping @Sendable () async throws -> [CertificateSerial]) {
        self.list = list
        self.logger = logger
        self.read = read
    }

    /// Refreshes until graceful shutdown (or cancellation).
    public func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await refresh()
                try? await Task.sleep(for: list.refreshInterval)
            }
        }
    }

    /// Reads the list once and applies it.
    public func refresh() async {
        do {
            let serials = try await read()
            let closed = list.replace(with: serials, logger: logger)
            logger.debug("revocation list refreshed", metadata: ["revoked": "\(serials.count)", "connections_closed": "\(closed)"])
        } catch is CancellationError {
        } catch {
            logger.warning("cannot refresh the revocation list; keeping the one held", metadata: ["error": "\(error)"])
        }
    }
}
