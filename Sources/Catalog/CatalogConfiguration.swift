import Foundation
import ICBDCore
import ICBDRPC

/// How a catalog runs (`icbd catalog ...`), with documented defaults.
public struct CatalogConfiguration: Sendable {
    /// Where the RPC server listens.
    public var listen: HostPort
    /// The database file (SQLite, created on first start).
    public var databasePath: String
    /// The catalog's certificate (role `catalog`), key and the deployment CA.
    public var tls: TLSIdentity
    /// This catalog's node name.
    public var name: String
    /// Limits and defaults of the RPC methods (heartbeat TTLs, watch batches).
    public var rpc = CatalogRPCService.Settings()
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
