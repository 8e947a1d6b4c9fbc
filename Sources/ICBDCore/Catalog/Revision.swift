/// A point in the catalog's history. Every committed change bumps the one global revision by
/// one; an object's revision is the revision of its last change.
public struct Revision: RawRepresentable, Sendable, Hashable, Comparable, Codable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public let rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }
    public init(_ rawValue: Int64) { self.rawValue = rawValue }
    public init(integerLiteral value: Int64) { self.rawValue = value }

    /// Before the first change.
    public static let zero = Revision(0)

    public var next: Revision { Revision(rawValue + 1) }

    public static func < (lhs: Revision, rhs: Revision) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "\(rawValue)" }
}

/// What a write expects of the object it changes (optimistic concurrency).
public enum ExpectedRevision: Sendable, Hashable {
    /// Unconditional.
    case any
    /// The object must not exist yet.
    case absent
    /// The object must exist with exactly this revision.
    case exactly(Revision)

    /// The wire's `optional int64 expected_revision`: absent, 0 (must not exist) or N.
    public init(wire: Int64?) {
        switch wire {
        case nil: self = .any
        case 0?: self = .absent
        case let value?: self = .exactly(Revision(value))
        }
    }
}

/// A value and the catalog revision it was read or written at.
public struct Revisioned<Value: Sendable>: Sendable {
    public var value: Value
    public var revision: Revision

    public init(_ value: Value, at revision: Revision) {
        self.value = value
        self.revision = revision
    }
}
