/// A workstation's Ethernet address, the key of its boot assignment.
///
/// Accepts `52:54:00:12:34:56`, `52-54-00-12-34-56` and `525400123456`, any case; always
/// written lowercase with colons.
public struct MACAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(parsing text: String) throws(MACAddressError) {
        var hex = Substring(text)
        if text.count == 17 {
            let separators = [2, 5, 8, 11, 14].map { text[text.index(text.startIndex, offsetBy: $0)] }
            guard let separator = separators.first, separator == ":" || separator == "-",
                separators.allSatisfy({ $0 == separator })
            else { throw MACAddressError(text: text) }
            hex = Substring(text.filter { $0 != separator })
        }
        guard hex.count == 12, hex.allSatisfy(\.isHexDigit) else { throw MACAddressError(text: text) }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { throw MACAddressError(text: text) }
            bytes.append(byte)
            index = next
        }
        self.bytes = bytes
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
