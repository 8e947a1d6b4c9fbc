/// Which versions of one image a repository deletes (docs/replication.md "Retention"): every
/// retired one it holds, and ready ones beyond the newest `keep`, except a tagged version (a
/// rollback target), one in a running rollout (workstations of its slices boot it, whichever
/// side of the rollout they are on) and one another site still needs as the parent of its next
/// incremental transfer. Plain values in, plain values out.
public struct RetentionPlan: Sendable, Equatable {
    public enum State: Sendable { case publishing, ready, retired }

    /// Version numbers to delete here, oldest first.
    public let delete: [Int64]
    /// Versions beyond the newest `keep` left because a running rollout names them, oldest first.
    public let keptForRollouts: [Int64]

    public init(
        present: Set<Int64>, states: [Int64: State], tagged: Set<Int64>, keep: Int, neededByOtherSites: Set<Int64>,
        inRunningRollouts: Set<Int64> = []
    ) {
        let retired = present.filter { states[$0] == .retired }
        let ready = present.filter { states[$0] == .ready }.sorted(by: >)
        let beyond = ready.dropFirst(max(1, keep)).filter { !tagged.contains($0) && !neededByOtherSites.contains($0) }
        delete = (retired.union(beyond.filter { !inRunningRollouts.contains($0) })).sorted()
        keptForRollouts = beyond.filter { inRunningRollouts.contains($0) }.sorted()
    }
}
