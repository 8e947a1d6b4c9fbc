/// A name of an image, site or node: `[a-z0-9][a-z0-9._-]{0,63}` (docs/architecture.md "Data model (catalog)").
///
/// Names appear in paths, URLs and certificate URIs, so anything else is refused at the edge.
public struct Name: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: String

    /// Validates `rawValue`; the error says what is wrong with it.
    public init(_ rawValue: String) throws(NameError) {
        guard let first = rawValue.utf8.first else { throw NameError(name: rawValue, problem: "is empty") }
        guard rawValue.utf8.count <= 64 else {
            throw NameError(name: rawValue, problem: "is longer than 64 characters")
        }
        guard Self.isLowerAlnum(first) else {
            throw NameError(name: rawValue, problem: "must start with a lowercase letter or a digit")
        }
        for byte in rawValue.utf8 where !(Self.isLowerAlnum(byte) || byte == UInt8(ascii: ".")
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-"))
        {
            throw NameError(name: rawValue, problem: "may only hold lowercase letters, digits, '.', '_' and '-'")
        }
        self.rawValue = rawValue
    }

    /// For literals known to satisfy the rule.
    init(unchecked rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static func < (lhs: Name, rhs: Name) -> Bool { lhs.rawValue < rhs.rawValue }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

/// A name that breaks the naming rule.
public struct NameError: Error, Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let problem: String

    public var description: String {
        "invalid name '\(name)': it \(problem) (names match [a-z0-9][a-z0-9._-]{0,63})"
    }
}

extension Name {
    /// `admin`: the name of an operator's certificate unless told otherwise (`icbd pki issue
    /// --role admin --name admin`, the client commands' default `--name`).
    public static let admin = Name(unchecked: "admin")
}
