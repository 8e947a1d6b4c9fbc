/// The path of a file within a version: `disk.raw`, `vmlinuz`, `boot/initrd.img`.
///
/// Relative, at most 255 bytes, segments of `[A-Za-z0-9._-]` separated by single slashes, no
/// `.` or `..` segment: it becomes part of paths on repositories and of HTTP URLs.
public struct VersionFilePath: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(VersionFilePathError) {
        guard !rawValue.isEmpty else { throw VersionFilePathError(path: rawValue, problem: "is empty") }
        guard rawValue.utf8.count <= 255 else { throw VersionFilePathError(path: rawValue, problem: "is longer than 255 bytes") }
        for segment in rawValue.split(separator: "/", omittingEmptySubsequences: false) {
            guard !segment.isEmpty else {
                throw VersionFilePathError(path: rawValue, problem: "has an empty segment (a leading, trailing or double '/')")
            }
            guard segment != ".", segment != ".." else {
                throw VersionFilePathError(path: rawValue, problem: "has a '.' or '..' segment")
            }
            guard segment.utf8.allSatisfy(Self.isAllowed) else {
                throw VersionFilePathError(path: rawValue, problem: "may only hold letters, digits, '.', '_', '-' and '/'")
            }
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static func < (lhs: VersionFilePath, rhs: VersionFilePath) -> Bool { lhs.rawValue < rhs.rawValue }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}

/// A file path that breaks the rule.
public struct VersionFilePathError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let problem: String
    public var description: String { "invalid file path '\(path)': it \(problem)" }
}
