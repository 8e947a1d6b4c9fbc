/// A workstation's Ethernet address, the key of its boot assignment.
///
/// Exactly six hex pairs, any case: `52:54:00:12:34:56`, `52-54-00-12-34-56` (one separator
/// throughout) or `525400123456`; nothing else (no other byte, no spaces, no line breaks).
/// Always written lowercase with colons.
public struct MACAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(parsing text: String) throws(MACAddressError) {
        let utf8 = Array(text.utf8)
        let digits: [UInt8]
        switch utf8.count {
        case 12:
            digits = utf8
        case 17:
            let separator = utf8[2]
            guard separator == UInt8(ascii: ":") || separator == UInt8(ascii: "-"),
                stride(from: 2, to: 17, by: 3).allSatisfy({ utf8[$0] == separator })
            else { throw MACAddressError(text: text) }
            digits = utf8.enumerated().filter { $0.offset % 3 != 2 }.map(\.element)
        default:
            throw MACAddressError(text: text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(6)
        for pair in stride(from: 0, to: 12, by: 2) {
            guard let high = Self.hexValue(digits[pair]), let low = Self.hexValue(digits[pair + 1]) else {
                throw MACAddressError(text: text)
            }
            bytes.append(high << 4 | low)
        }
        self.bytes = bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }

    public static func < (lhs: MACAddress, rhs: MACAddress) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}

/// A MAC address that does not parse.
public struct MACAddressError: Error, Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public var description: String {
        "invalid MAC address '\(text)': expected six hex pairs such as 52:54:00:12:34:56 (':' or '-' between, or none)"
    }
}
