/// The segments of a request path, percent-decoded one by one. A segment that decodes to
/// contain `/`, NUL, or that is `.` or `..` (raw or encoded) is refused: paths never climb.
enum RequestPath {
    static func segments(_ path: String) -> Result<[String], GatewayError> {
        guard path.utf8.first == UInt8(ascii: "/") else { return .failure(.badRequest("the path must start with '/'")) }
        var segments: [String] = []
        // Split on bytes: `/` is ASCII, and a byte-wise split skips grapheme breaking.
        for raw in path.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard let decoded = percentDecoded(path[raw.startIndex..<raw.endIndex]) else {
                return .failure(.badRequest("the path has a bad percent-encoding"))
            }
            guard decoded != ".", decoded != "..", !decoded.utf8.contains(UInt8(ascii: "/")), !decoded.utf8.contains(0) else {
                return .failure(.badRequest("the path may not hold '.', '..' or encoded '/' segments"))
            }
            segments.append(decoded)
        }
        if segments.last == "" { segments.removeLast() }  // a trailing slash
        return .success(segments)
    }

    static func percentDecoded(_ text: Substring) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
