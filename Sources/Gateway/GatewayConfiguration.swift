import ICBDCore
import ICBDRPC

/// How a gateway runs; built once from the command line.
public struct GatewayConfiguration: Sendable {
    /// HTTP address for the boot layer; port 0 picks a free one.
    public var listen: HostPort
    /// The site this gateway serves: clients outside every site's CIDRs count as this site's.
    public var site: Name
    public var catalog: HostPort
    /// Further catalog processes (on one database), tried in turn when one fails.
    public var catalogAlternates: [HostPort] = []
    /// The gateway's certificate (role `gateway`) for the catalog, caches and repositories.
    public var tls: TLSIdentity
    public var name: String
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies in front of the gateway).
    public var trustedProxies: [CIDR] = []
    /// What a workstation without an assignment boots; nil: it gets 404.
    public var defaultImage: ImageReference?
    /// Responses reading from upstreams at once; beyond it new ones get 503 + Retry-After.
    public var admissionLimit = 256
    /// Seconds a refused client is told to wait.
    public var retryAfterSeconds = 2
    /// While response bytes wait for a client, it must take them at least this fast, or its
    /// connection is closed (and its admission slot freed): 32 KiB/s measured over 20 s, so a
    /// client that stops reading is cut within 40 s.
    public var minimumSendRate = MinimumSendRate(bytesPerSecond: 32 << 10, window: .seconds(20))
    /// Chunks read in parallel ahead of the one being written, per response.
    public var readAhead = 4
    /// One upstream read attempt; then the next node is tried.
    public var attemptTimeout: Duration = .seconds(5)
    /// How long a node that failed a read is tried last.
    public var ejection: Duration = .seconds(30)
    /// The directory of the cache node on this host (its `--dir`), whose chunk files the gateway
    /// reads directly, verified (the same-host path); nil: every read goes over mutual TLS.
    public var localCache: String?
    /// How long a verified local chunk file counts before it is hashed again.
    public var localVerificationLifetime: Duration = .seconds(3600)
    /// Local chunk files remembered as verified (about 100 bytes each).
    public var localVerifiedFiles = 262_144
    /// Recently served chunks kept in memory.
    public var memoryCacheBytes = defaultMemoryCacheBytes
    /// 256 MiB: `icbd gateway --memory-cache` and `icbd bench gateway` start from it.
    public static let defaultMemoryCacheBytes = 256 << 20
    /// Chunks whose 64 KiB blocks' digests are kept once their whole bytes were verified, so a
    /// later part read moves only the blocks it needs (512 bytes a 1 MiB chunk: 32 MiB for 64 GiB
    /// of images).
    public var verifiedBlockChunks = 65536
    /// Manifest entries kept in memory (32 bytes a chunk).
    public var manifestCacheBytes = 64 << 20
    /// Longer request targets get 414.
    public var maximumURILength = 2048
    /// A longer header field gets 431; the whole header block is capped by the HTTP decoder.
    public var maximumHeaderFieldBytes = 8 << 10
    /// How often the gateway heartbeats its registration.
    public var heartbeatInterval: Duration = .seconds(5)
    /// How boots are followed, and the bounds of what is kept of them.
    public var boots = BootTrackingConfiguration()
    /// How often the status page's cache usage (bytes held, hit ratio) is read from the catalog.
    public var cacheUsageRefresh: Duration = .seconds(15)

    public init(listen: HostPort, site: Name, catalog: HostPort, tls: TLSIdentity, name: String) {
        self.listen = listen
        self.site = site
        self.catalog = catalog
        self.tls = tls
        self.name = name
    }
}
