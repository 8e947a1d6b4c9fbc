/// Chunks waiting for an upstream call, grouped so that one call asks for many of a group;
/// groups are served first come, first served, at most `batchSize` chunks at a time.
struct PendingFills {
    private var groups: [FillGroup: [ChunkWant]] = [:]
    private var order = FIFOQueue<FillGroup>()
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ want: ChunkWant) {
        let group = want.group
        if groups[group] == nil {
            groups[group] = []
            order.push(group)
        }
        groups[group]?.append(want)
        count += 1
    }

    /// Up to `limit` wants of the oldest group for which `isWanted` holds (others are dropped).
    mutating func takeBatch(limit: Int, isWanted: (ChunkWant) -> Bool) -> (FillGroup, [ChunkWant])? {
        while let group = order.pop() {
            guard var wants = groups.removeValue(forKey: group) else { continue }
            var taken: [ChunkWant] = []
            var consumed = 0
            for want in wants {
                guard taken.count < limit else { break }
                consumed += 1
                if isWanted(want) { taken.append(want) }
            }
            wants.removeFirst(consumed)
            count -= consumed
            if !wants.isEmpty {
                groups[group] = wants
                order.push(group)  // the rest waits behind the other groups
            }
            if !taken.isEmpty { return (group, taken) }
        }
        return nil
    }
}
