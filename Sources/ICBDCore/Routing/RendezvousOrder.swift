/// Rendezvous (highest random weight) hashing: for a chunk, every gateway ranks the same nodes
/// in the same order, so each chunk has one home cache per site and a node that leaves only
/// moves its own chunks to their next-ranked node. Cache nodes rank the same way to know which
/// chunks are theirs to warm.
public enum RendezvousOrder {
    /// `nodes` ranked for `chunk` (its SHA-256), best first; ties by name.
    public static func rank<Node>(_ nodes: [Node], for chunk: [UInt8], name: (Node) -> String) -> [Node] {
        let key = prefix64(chunk)
        return nodes.map { (node: $0, name: name($0), score: mix(key ^ nameHash(name($0)))) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.name < $1.name }
            .map(\.node)
    }

    /// The first 8 bytes of the (already uniform) chunk hash.
    private static func prefix64(_ bytes: [UInt8]) -> UInt64 {
        var value: UInt64 = 0
        for byte in bytes.prefix(8) { value = value << 8 | UInt64(byte) }
        return value
    }

    /// FNV-1a of the node name: stable across processes and platforms (unlike `Hasher`).
    public static func nameHash(_ name: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// SplitMix64's finaliser: spreads the combined key over all 64 bits.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
