import Foundation
import ICBDCore
import ICBDRPC
import CatalogClient

/// How a catalog runs (`icbd catalog ...`), with documented defaults.
public struct CatalogConfiguration: Sendable {
    /// Where the RPC server listens.
    public var listen: HostPort
    /// The database: an SQLite file (created on first start) or a
    /// `postgres://USER@HOST:PORT/DATABASE?sslmode=…` URL (``PostgresDatabaseURL``).
    public var databasePath: String
    /// The catalog's certificate (role `catalog`), key and the deployment CA.
    public var tls: TLSIdentity
    /// This catalog's node name.
    public var name: String
    /// Limits and defaults of the RPC methods (heartbeat TTLs, watch batches).
    public var rpc = CatalogRPCService.Settings()
    /// A file whose first line is the PostgreSQL password (else `PGPASSWORD` is used).
    public var databasePasswordFile: String?
    /// Adjusts how the PostgreSQL store reaches its database (pool size, timeouts, polling).
    public var postgres: @Sendable (inout PostgresCatalogStore.Configuration) -> Void = { _ in }
    /// How the SQLite store opens its file.
    public var store = SQLiteCatalogStore.Configuration()
    /// How often nodes whose heartbeat expired are looked for. Default 1 s.
    public var sweepInterval: Duration = .seconds(1)
    /// Revisions the change log keeps for watchers to resume from. Default 100,000; a watcher
    /// further behind is told to list again.
    public var changeLogRetention = 100_000
    /// The clock of heartbeats and timestamps. Tests substitute one they move by hand.
    public var now: @Sendable () -> Date = { Date() }

    public init(listen: HostPort, databasePath: String, tls: TLSIdentity, name: String) {
        self.listen = listen
        self.databasePath = databasePath
        self.tls = tls
        self.name = name
    }
}
