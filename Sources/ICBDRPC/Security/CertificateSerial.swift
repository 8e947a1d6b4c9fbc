import X509

/// A certificate's serial number as icbd writes it: lowercase hex, two digits a byte, no
/// separators and no leading zero bytes (so `3a:5f`, `3A5F`, `serial=3A5F` from openssl and a
/// DER integer's sign byte all name the same serial). The revocation list is keyed by it; one
/// deployment has one CA, so a serial names one certificate.
public struct CertificateSerial: Sendable, Hashable, CustomStringConvertible {
    /// The canonical text.
    public let hex: String

    /// The longest serial accepted: RFC 5280 allows 20 octets.
    public static let maximumBytes = 20

    public init(_ serial: Certificate.SerialNumber) {
        self.init(bytes: Array(serial.bytes))
    }

    init(bytes: [UInt8]) {
        let significant = bytes.drop { $0 == 0 }
        hex = significant.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Parses `3a:5f:…` (as swift-certificates prints it), `3A5F…` or `serial=3A5F…` (as
    /// `openssl x509 -serial` prints it); nil when it is not a serial of 1 to 20 bytes.
    public init?(parsing text: String) {
        var text = Substring(text)
        if text.hasPrefix("serial=") { text = text.dropFirst("serial=".count) }
        guard text.allSatisfy({ $0 == ":" || ($0.isASCII && $0.isHexDigit) }) else { return nil }
        var hex = ""
        if text.contains(":") {
            for part in text.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...2).contains(part.count) else { return nil }
                hex += part.count == 1 ? "0" + part : String(part)
            }
        } else {
            guard !text.isEmpty else { return nil }
            hex = text.count % 2 == 1 ? "0" + text : String(text)
        }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        let significant = bytes.drop { $0 == 0 }
        guard !significant.isEmpty, significant.count <= Self.maximumBytes else { return nil }
        self.init(bytes: bytes)
    }

    public var description: String { hex }
}
