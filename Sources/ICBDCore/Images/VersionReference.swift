/// What a boot assignment or an HTTP URL names of an image: a version number or a tag.
///
/// A reference made only of digits is a version number, so tag names may not be all digits.
public enum VersionReference: Sendable, Hashable, CustomStringConvertible {
    case number(Int64)
    case tag(Name)

    /// The tag that follows each new ready version.
    public static let latest = VersionReference.tag(Name.latestTag)

    /// Parses `7` or `stable`; empty text means `latest`.
    public init(parsing text: String) throws(NameError) {
        if text.isEmpty {
            self = .latest
        } else if text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let number = Int64(text), number > 0 else {
                throw NameError(name: text, problem: "is not a version number from 1 up")
            }
            self = .number(number)
        } else {
            self = .tag(try Name(text))
        }
    }

    public var description: String {
        switch self {
        case .number(let number): "\(number)"
        case .tag(let tag): tag.rawValue
        }
    }
}

/// `IMAGE[:REF]`, as `icbd assign` takes it.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    public let image: Name
    public let version: VersionReference

    public init(image: Name, version: VersionReference) {
        self.image = image
        self.version = version
    }

    public init(parsing text: String) throws(NameError) {
        if let colon = text.firstIndex(of: ":") {
            image = try Name(String(text[..<colon]))
            let ref = String(text[text.index(after: colon)...])
            guard !ref.isEmpty else { throw NameError(name: text, problem: "ends in ':' without a version or tag") }
            version = try VersionReference(parsing: ref)
        } else {
            image = try Name(text)
            version = .latest
        }
    }

    public var description: String { "\(image):\(version)" }
}

extension Name {
    /// `latest`: moved to each new ready version by the catalog.
    public static let latestTag = Name(unchecked: "latest")

    /// Whether the name is only digits, which would read as a version number.
    public var isAllDigits: Bool { rawValue.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } }
}
