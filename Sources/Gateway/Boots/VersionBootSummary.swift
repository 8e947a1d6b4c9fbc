/// How the boots of one version went, over the boots the gateway holds (status page): how many
/// ended, how many booted or settled, and the median times to load and to be up.
struct VersionBootSummary: Sendable, Equatable {
    let image: String
    let version: Int64
    /// Boots that ended (booted, settled, unsettled or failed).
    var ended = 0
    var succeeded = 0
    var failed = 0
    var medianLoaded: Duration?
    /// To the booted signal or to settling, whichever the boot reached.
    var medianUp: Duration?

    var successRate: Double? { ended == 0 ? nil : Double(succeeded) / Double(ended) }

    /// One summary per version among `records`, newest version first.
    static func of(_ records: [BootRecord]) -> [VersionBootSummary] {
        struct Version: Hashable {
            let image: String
            let number: Int64
        }
        var byVersion: [Version: [BootRecord]] = [:]
        for record in records where !record.isOpen {
            guard let target = record.target else { continue }
            byVersion[Version(image: target.image, number: target.version), default: []].append(record)
        }
        return byVersion.values.compactMap { records -> VersionBootSummary? in
            guard let target = records.first?.target else { return nil }
            var summary = VersionBootSummary(image: target.image, version: target.version)
            summary.ended = records.count
            summary.succeeded = records.count(where: \.succeeded)
            summary.failed = records.count { if case .failed = $0.outcome { true } else { false } }
            summary.medianLoaded = median(records.compactMap { $0.phases[.loaded] })
            summary.medianUp = median(records.compactMap { $0.phases[.booted] ?? $0.phases[.settled] })
            return summary
        }.sorted { ($0.image, -$0.version) < ($1.image, -$1.version) }
    }

    private static func median(_ durations: [Duration]) -> Duration? {
        guard !durations.isEmpty else { return nil }
        return durations.sorted()[durations.count / 2]
    }
}
