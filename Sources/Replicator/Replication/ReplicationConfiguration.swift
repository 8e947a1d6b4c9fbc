import ICBDProto

/// How a replicator pulls versions from other repositories (docs/replication.md).
public struct ReplicationConfiguration: Sendable {
    /// Whether this replicator pulls at all.
    public var enabled = true
    /// The catalog is scanned for versions to pull when its Watch shows a change; at least this
    /// often as well, a safety net for a watch that is down or a missed wakeup.
    public var scanInterval: Duration = .seconds(30)
    /// How long a watch that ended waits before it starts again.
    public var watchRetryDelay: Duration = .seconds(1)
    /// At most this many images are transferred at once (K).
    public var maximumConcurrentTransfers = 2
    /// A version is tried at most this many times (every source each time) before its placement
    /// stays `failed` until the replicator restarts.
    public var maximumAttempts = 8
    /// Backoff after the first failure; doubles per failure up to ``maximumBackoff``, with jitter.
    public var initialBackoff: Duration = .seconds(2)
    public var maximumBackoff: Duration = .seconds(300)
    /// Raw stream bytes per segment.
    public var segmentSize = SegmentCodec.defaultSegmentSize
    /// lz4 is on for links with a configured rate below this (1 Gbit/s), unless forced.
    public var compressionBelowBytesPerSecond: Int64 = 125_000_000
    /// Forces lz4 on (true) or off (false) on every link that leaves it to the replicators
    /// (`compression=auto`); nil: by link rate. A link's own `on`/`off` wins over this.
    public var forceCompression: Bool? = nil
    /// How often a running transfer's progress goes to its placement.
    public var progressInterval: Duration = .seconds(2)
    /// Versions kept where the catalog has no policy for the image.
    public var defaultKeep = 3
    /// A source whose stream was refused (it broke the rules of a send stream, or failed its
    /// digest) is tried after every other source for this long.
    public var suspectSourcePeriod: Duration = .seconds(600)
    /// A transfer that receives no segment for this long fails (and a sender whose receiver
    /// reads nothing for this long ends the call; see VersionSender).
    public var inactivityTimeout: Duration = .seconds(60)
    /// At most this many `SendVersion` calls are served at once; more are answered
    /// RESOURCE_EXHAUSTED (the receiver tries another source, or later).
    public var maximumConcurrentSends = 4

    public init() {}

    /// The wait before attempt `failures + 1`: exponential, capped, jitter in its upper half.
    func backoff(afterFailures failures: Int) -> Duration {
        let exponent = min(max(failures - 1, 0), 30)
        let base = min(initialBackoff * (1 << exponent), maximumBackoff)
        return base / 2 + base / 2 * Double.random(in: 0...1)
    }
}

/// What a transfer between two sites uses: the link's rate and whether to compress.
struct LinkSettings: Sendable, Equatable {
    var rateBytesPerSecond: Int64
    var lz4: Bool

    /// The link between `source` and `destination` as either site lists it; no link: unlimited
    /// (same site or LAN), uncompressed. Compression: the link's `on`/`off` if it forces one,
    /// else the replicator's ``ReplicationConfiguration/forceCompression``, else on below
    /// ``ReplicationConfiguration/compressionBelowBytesPerSecond``.
    init(from source: String, to destination: String, sites: [Icbd_Catalog_V1_Site], configuration: ReplicationConfiguration) {
        let link =
            sites.first { $0.name == destination }?.links.first { $0.site == source }
            ?? sites.first { $0.name == source }?.links.first { $0.site == destination }
        rateBytesPerSecond = max(0, link?.rateBytesPerSecond ?? 0)
        switch link?.compression {
        case .on: lz4 = true
        case .off: lz4 = false
        default:
            if let forced = configuration.forceCompression {
                lz4 = forced
            } else {
                lz4 = rateBytesPerSecond > 0 && rateBytesPerSecond < configuration.compressionBelowBytesPerSecond
            }
        }
    }
}
