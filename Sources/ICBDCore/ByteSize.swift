/// A size in bytes written with a unit: `4096`, `512KiB`, `512MiB`, `20GiB`, `1TiB` (also kB/MB/GB/TB).
public struct ByteSize: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let bytes: Int64

    public init(bytes: Int64) { self.bytes = bytes }

    public init(parsing text: String) throws(ByteSizeError) {
        let trimmed = text.trimmingSpaces
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        let unit = trimmed.dropFirst(digits.count).trimmingSpaces
        guard !digits.isEmpty, let value = Int64(digits) else {
            throw ByteSizeError(text: text, problem: "it does not start with a whole number")
        }
        guard let multiplier = Self.units[unit.lowercased()] else {
            throw ByteSizeError(text: text, problem: "unknown unit '\(unit)'; use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB")
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw ByteSizeError(text: text, problem: "it is too large") }
        self.bytes = product
    }

    public static func < (lhs: ByteSize, rhs: ByteSize) -> Bool { lhs.bytes < rhs.bytes }

    public var description: String {
        for (suffix, size) in [("TiB", Int64(1) << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where bytes >= size && bytes % size == 0 {
            return "\(bytes / size)\(suffix)"
        }
        return "\(bytes)B"
    }

    private static let units: [String: Int64] = [
        "": 1, "b": 1,
        "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
        "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
        "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000, "tb": 1_000_000_000_000,
    ]
}

/// A size that does not parse.
public struct ByteSizeError: Error, Sendable, CustomStringConvertible {
    public let text: String
    public let problem: String
    public var description: String { "invalid size '\(text)': \(problem) (e.g. 512MiB, 20GiB)" }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: Substring {
        let start = firstIndex { $0 != " " } ?? endIndex
        let end = lastIndex { $0 != " " }.map { index(after: $0) } ?? endIndex
        return Substring(self[start..<Swift.max(start, end)])
    }
}
