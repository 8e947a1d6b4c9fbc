import CacheNode

/// A synthetic trace of a site's cache: boots of three versions of one template (each version
/// changes 10% of the previous one's chunks) by many workstations, with two large scans of
/// once-read chunks (a backup, a full warm of another image) between them, optionally with
/// once-read chunks between every two boots too (other images read during the storm). Each boot
/// reads the version's boot working set in order plus a few chunks no other boot reads.
struct EvictionTrace {
    struct Options {
        var imageChunks = 4096
        var bootChunks = 512
        var changedFraction = 0.10
        var extraPerBoot = 24
        var bootsBeforeScan = 40
        var bootsAfterScan = 120
        var scanChunks = 3000
        /// Once-read chunks between consecutive boots after the first scan (other images read
        /// during the storm); 0: none.
        var scanBetweenBoots = 0
        var capacityChunks = 1024
        var seed: UInt64 = 7
    }

    let options: Options

    /// The reads, in order.
    func reads() -> [ChunkDigest] {
        var random = SplitMix(seed: options.seed)
        var next = 0
        func fresh() -> ChunkDigest {
            next += 1
            // The counter's bytes, then a fixed tail: distinct, never the all-zero entry.
            let counter = UInt64(next)
            var bytes: [UInt8] = (0..<8).map { (shift: Int) -> UInt8 in UInt8(truncatingIfNeeded: counter >> UInt64(8 * shift)) }
            bytes += [UInt8](repeating: 0xA5, count: 24)
            return ChunkDigest(bytes: bytes) ?? fresh()
        }
        // Versions 1..3: the image's chunks, each a copy of the previous with 10% replaced.
        var versions: [[ChunkDigest]] = [(0..<options.imageChunks).map { _ in fresh() }]
        for _ in 1..<3 {
            var chunks = versions[versions.count - 1]
            for _ in 0..<Int(Double(options.imageChunks) * options.changedFraction) {
                chunks[Int(random.next() % UInt64(options.imageChunks))] = fresh()
            }
            versions.append(chunks)
        }
        // Boots read the same positions of whichever version they boot.
        var positions = Array(0..<options.imageChunks)
        for index in positions.indices.reversed() {
            positions.swapAt(index, Int(random.next() % UInt64(index + 1)))
        }
        let bootPositions = Array(positions.prefix(options.bootChunks))
        var trace: [ChunkDigest] = []
        func boot(_ version: Int) {
            trace += bootPositions.map { versions[version][$0] }
            for _ in 0..<options.extraPerBoot { trace.append(fresh()) }
        }
        func scan() {
            for _ in 0..<options.scanChunks { trace.append(fresh()) }
        }
        for _ in 0..<options.bootsBeforeScan { boot(0) }
        scan()
        for number in 0..<options.bootsAfterScan {
            if number == options.bootsAfterScan / 2 { scan() }
            for _ in 0..<options.scanBetweenBoots { trace.append(fresh()) }
            boot([0, 1, 1, 2, 2][Int(random.next() % 5)])
        }
        return trace
    }

    /// The hit ratio of `kind` on the trace, every chunk 1 unit in size.
    func hitRatio(_ kind: EvictionPolicyKind, reads: [ChunkDigest]) -> Double {
        var policy = kind.make(capacity: Int64(options.capacityChunks))
        var hits = 0
        for key in reads {
            if policy.recordAccess(key) {
                hits += 1
            } else {
                _ = policy.makeRoom(for: 1, reserved: 0)
                policy.insert(key, size: 1)
            }
        }
        return Double(hits) / Double(max(1, reads.count))
    }
}

/// A small deterministic generator, so every run replays the same trace.
struct SplitMix {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
