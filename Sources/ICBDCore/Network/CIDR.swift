/// An IPv4 or IPv6 network in CIDR notation (`10.1.0.0/16`, `2001:db8::/32`): the workstation
/// ranges a site owns.
///
/// Host bits must be zero (`10.1.2.3/16` is refused with the network it probably meant), so a
/// range has exactly one spelling and equal ranges compare equal.
public struct CIDR: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let network: IPAddress
    public let prefixLength: Int

    /// Parses `ADDRESS/PREFIX`; the error names what is wrong.
    public init(parsing text: String) throws(CIDRError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw CIDRError(text: text, problem: "it needs a prefix length, as in 10.1.0.0/16 or 2001:db8::/32")
        }
        let address: IPAddress
        do { address = try IPAddress(parsing: String(parts[0])) } catch {
            throw CIDRError(text: text, problem: "'\(parts[0])' \(error.problem)")
        }
        let bits = address.bytes.count * 8
        guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), (1...3).contains(parts[1].count),
            let length = Int(parts[1]), (0...bits).contains(length)
        else {
            throw CIDRError(text: text, problem: "the prefix length must be a number from 0 to \(bits)")
        }
        let masked = Self.mask(address.bytes, prefixLength: length)
        guard masked == address.bytes, let network = IPAddress(bytes: masked) else {
            let suggestion = IPAddress(bytes: masked).map { "\($0)/\(length)" } ?? ""
            throw CIDRError(text: text, problem: "it has host bits set; did you mean \(suggestion)?")
        }
        self.network = network
        self.prefixLength = length
    }

    /// Whether `address` lies in this range (an IPv4 address never lies in an IPv6 range).
    public func contains(_ address: IPAddress) -> Bool {
        address.bytes.count == network.bytes.count && Self.mask(address.bytes, prefixLength: prefixLength) == network.bytes
    }

    /// Whether the two ranges share at least one address: one contains the other's network.
    public func overlaps(_ other: CIDR) -> Bool {
        guard network.bytes.count == other.network.bytes.count else { return false }
        let shorter = min(prefixLength, other.prefixLength)
        return Self.mask(network.bytes, prefixLength: shorter) == Self.mask(other.network.bytes, prefixLength: shorter)
    }

    public var description: String { "\(network)/\(prefixLength)" }

    /// IPv4 first, then by network bytes, then shorter prefixes first.
    public static func < (lhs: CIDR, rhs: CIDR) -> Bool {
        if lhs.network.bytes.count != rhs.network.bytes.count { return lhs.network.bytes.count < rhs.network.bytes.count }
        if lhs.network.bytes != rhs.network.bytes { return lhs.network.bytes.lexicographicallyPrecedes(rhs.network.bytes) }
        return lhs.prefixLength < rhs.prefixLength
    }

    static func mask(_ bytes: [UInt8], prefixLength: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bitsHere = max(0, min(8, prefixLength - index * 8))
            return bitsHere == 0 ? 0 : byte & UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
    }
}

/// The first pair of overlapping ranges in `ranges`, if any.
public func firstOverlap(in ranges: [CIDR]) -> (CIDR, CIDR)? {
    for (index, range) in ranges.enumerated() {
        for other in ranges[(index + 1)...] where range.overlaps(other) { return (range, other) }
    }
    return nil
}

/// A range that does not parse.
public struct CIDRError: Error, Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public let problem: String
    public var description: String { "invalid CIDR '\(text)': \(problem)" }
}
