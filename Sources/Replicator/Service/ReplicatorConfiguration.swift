import ICBDCore
import ICBDRPC

/// How a replicator runs (`icbd replicator ...`).
public struct ReplicatorConfiguration: Sendable {
    /// Where its RPC server listens.
    public var listen: HostPort
    /// The address other nodes reach it at, registered in the catalog; nil: the address its
    /// socket listens on. Needed where that one is no use to others: listening on 0.0.0.0, or
    /// in a container or behind NAT (a DNS name such as the compose service's, or a published port).
    public var advertisedAddress: HostPort?
    /// A directory on BTRFS: the repository (`<root>/images/...`).
    public var root: String
    /// The site the repository belongs to.
    public var site: Name
    /// The catalog to register with.
    public var catalog: HostPort
    /// Further catalog processes on the same database, used when `catalog` does not answer.
    public var catalogAlternates: [HostPort] = []
    /// The replicator's certificate (role `replicator`), key and the deployment CA.
    public var tls: TLSIdentity
    public var name: String
    /// The catalog marks the replicator down when no heartbeat arrived for this long.
    public var heartbeatTTL: Duration = .seconds(15)
    /// How often it heartbeats (a third of the TTL, so two may be lost).
    public var heartbeatInterval: Duration = .seconds(5)
    /// How often retention runs besides after each publish (retired versions, policy changes).
    public var retentionInterval: Duration = .seconds(60)
    /// Pulling versions from other repositories.
    public var replication = ReplicationConfiguration()

    public init(listen: HostPort, root: String, site: Name, catalog: HostPort, tls: TLSIdentity, name: String) {
        self.listen = listen
        self.root = root
        self.site = site
        self.catalog = catalog
        self.tls = tls
        self.name = name
    }
}
