/// The request's `Host` (RFC 9110 §7.2), checked to be `host[:port]` before anything is built
/// from it: a DNS name or IPv4 address (letters, digits, `-`, `.`) or a bracketed IPv6 address,
/// then optionally `:` and a port from 1 to 65535. Boot scripts write it into their URLs, so a
/// value with spaces, `$`, `/`, `#` or anything else cannot reach them. A request with a second
/// `Host` header is refused too (RFC 9112 §3.2).
enum HostHeader {
    /// The validated authority (nil when the request has none, as HTTP/1.0 allows), or a 400.
    static func validated(_ authority: String?, extraHostFields: Int) -> Result<String?, GatewayError> {
        guard extraHostFields == 0 else { return .failure(.badRequest("the request has more than one Host header")) }
        guard let authority else { return .success(nil) }
        guard isHostPort(Array(authority.utf8)) else {
            return .failure(.badRequest("the Host header must be HOST or HOST:PORT (a DNS name, IPv4 or [IPv6] address)"))
        }
        return .success(authority)
    }

    private static func isHostPort(_ bytes: [UInt8]) -> Bool {
        let hostEnd: Int
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close > 1,
                bytes[1..<close].allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return false }
            hostEnd = close + 1
        } else {
            hostEnd = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.count
            let host = bytes[..<hostEnd]
            guard (1...253).contains(host.count), host.first != UInt8(ascii: "-"), host.first != UInt8(ascii: "."),
                host.allSatisfy({ isDigit($0) || isLetter($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") })
            else { return false }
        }
        guard hostEnd < bytes.count else { return true }
        let port = bytes[(hostEnd + 1)...]
        guard bytes[hostEnd] == UInt8(ascii: ":"), (1...5).contains(port.count), port.allSatisfy(isDigit),
            let number = Int(String(decoding: port, as: UTF8.self)), (1...65535).contains(number)
        else { return false }
        return true
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }
}
