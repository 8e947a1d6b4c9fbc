/// An IPv4 or IPv6 address as its network-order bytes (4 or 16).
///
/// Parsed strictly: dotted-quad IPv4 without leading zeros, IPv6 in RFC 4291 text form
/// (`::` compression, an IPv4 tail such as `::ffff:10.0.0.1`), no zone ids.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses IPv4 or IPv6 text; the error says what is wrong.
    public init(parsing text: String) throws(IPAddressError) {
        if text.contains(":") {
            guard let bytes = Self.parseIPv6(Substring(text)) else {
                throw IPAddressError(text: text, problem: "is not an IPv6 address")
            }
            self.bytes = bytes
        } else {
            guard let bytes = Self.parseIPv4(Substring(text)) else {
                throw IPAddressError(text: text, problem: "is not an IPv4 address (four numbers 0-255 separated by dots)")
            }
            self.bytes = bytes
        }
    }

    public var description: String {
        isIPv4 ? bytes.map(String.init).joined(separator: ".") : Self.formatIPv6(bytes)
    }

    /// Four numbers 0–255 without leading zeros, separated by dots; read byte by byte (it runs
    /// for every `X-Forwarded-For` hop of every request).
    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4)
        var value = 0
        var digits = 0
        for character in text.utf8 {
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard digits < 3, digits == 0 || value != 0 else { return nil }  // at most 3 digits, no leading zero
                value = value * 10 + Int(character - UInt8(ascii: "0"))
                digits += 1
            case UInt8(ascii: "."):
                guard digits > 0, value <= 255, bytes.count < 3 else { return nil }
                bytes.append(UInt8(value))
                value = 0
                digits = 0
            default:
                return nil
            }
        }
        guard digits > 0, value <= 255, bytes.count == 3 else { return nil }
        bytes.append(UInt8(value))
        return bytes
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.count <= 45 else { return nil }
        let compressions = text.ranges(of: "::")
        guard compressions.count <= 1 else { return nil }
        let halves = compressions.first.map { [text[..<$0.lowerBound], text[$0.upperBound...]] } ?? [text]
        func groups(_ part: Substring, allowIPv4Tail: Bool) -> [UInt8]? {
            guard !part.isEmpty else { return [] }
            var bytes: [UInt8] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                if allowIPv4Tail, index == fields.count - 1, field.contains(".") {
                    guard let tail = parseIPv4(field) else { return nil }
                    bytes += tail
                    continue
                }
                guard (1...4).contains(field.count), let value = UInt16(field, radix: 16),
                    field.allSatisfy(\.isHexDigit)
                else { return nil }
                bytes += [UInt8(value >> 8), UInt8(value & 0xff)]
            }
            return bytes
        }
        if halves.count == 1 {
            guard let bytes = groups(halves[0], allowIPv4Tail: true), bytes.count == 16 else { return nil }
            return bytes
        }
        guard let head = groups(halves[0], allowIPv4Tail: false), let tail = groups(halves[1], allowIPv4Tail: true),
            head.count + tail.count <= 14
        else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    /// RFC 5952: lowercase, leading zeros dropped, the longest run (of two or more) of zero
    /// groups compressed to `::`.
    static func formatIPv6(_ bytes: [UInt8]) -> String {
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var best: Range<Int>? = nil
        var start: Int? = nil
        for index in 0...8 {
            if index < 8, groups[index] == 0 {
                if start == nil { start = index }
            } else if let runStart = start {
                if index - runStart >= 2, index - runStart > (best?.count ?? 0) { best = runStart..<index }
                start = nil
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard let best else { return hex.joined(separator: ":") }
        return hex[..<best.lowerBound].joined(separator: ":") + "::" + hex[best.upperBound...].joined(separator: ":")
    }
}

/// An address that does not parse.
public struct IPAddressError: Error, Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public let problem: String
    public var description: String { "invalid address '\(text)': it \(problem)" }
}
