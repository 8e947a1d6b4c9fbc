import ICBDCore
import ICBDRPC

/// How a cache node runs (`icbd cache ...`).
public struct CacheConfiguration: Sendable {
    /// Where its RPC server listens.
    public var listen: HostPort
    /// The address other nodes reach it at, registered in the catalog; nil: the address its
    /// socket listens on. Needed where that one is no use to others: listening on 0.0.0.0, or
    /// in a container or behind NAT (a DNS name such as the compose service's, or a published port).
    public var advertisedAddress: HostPort?
    /// The cache directory (chunks and temporary files).
    public var directory: String
    /// The most bytes of chunks it keeps on disk.
    public var capacity: Int64
    /// The site it serves; its repositories are asked first.
    public var site: Name
    /// The catalog to register with.
    public var catalog: HostPort
    /// Further catalog processes (on one database), tried in turn when one fails.
    public var catalogAlternates: [HostPort] = []
    /// The node's certificate (role `cache`), key and the deployment CA.
    public var tls: TLSIdentity
    public var name: String
    /// Which chunks go when the cache is full.
    public var eviction: EvictionPolicyKind = .s3fifo
    /// How long a verification of a held chunk counts: a read of a chunk this process has not
    /// verified within it (every chunk found on disk at start, first of all) hashes it before
    /// serving it. `.zero`: every read verifies (and the scrubber is off).
    public var verifyInterval: Duration = .seconds(3600)
    /// The most bytes per second the background scrubber hashes while re-verifying held chunks
    /// (0: no scrubber; reads still verify as `verifyInterval` says).
    public var scrubBytesPerSecond = 32 << 20
    /// Upstream calls in flight at most (each asks for up to ``batchSize`` chunks).
    public var upstreamCalls = 4
    /// Of those, how many may serve warming.
    public var warmCalls = 1
    /// The most chunks one upstream call asks for.
    public var batchSize = 32
    /// How many chunks ahead of the one being sent a GetChunks call starts fetching.
    public var readAhead = 32
    /// How long one upstream call may take.
    public var upstreamTimeout: Duration = .seconds(60)
    /// How long after a version's first read its reads are recorded as its boot profile.
    public var bootProfileWindow: Duration = .seconds(300)
    /// Whether a version newly placed on this site is warmed, its predecessor's boot profile first.
    public var warmNewVersions = true
    /// The catalog marks the node down when no heartbeat arrived for this long.
    public var heartbeatTTL: Duration = .seconds(15)
    /// How often it heartbeats.
    public var heartbeatInterval: Duration = .seconds(5)

    public init(
        listen: HostPort, directory: String, capacity: Int64, site: Name, catalog: HostPort, tls: TLSIdentity, name: String
    ) {
        self.listen = listen
        self.directory = directory
        self.capacity = capacity
        self.site = site
        self.catalog = catalog
        self.tls = tls
        self.name = name
    }
}
