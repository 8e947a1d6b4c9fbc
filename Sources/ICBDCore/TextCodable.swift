// Values that are written as one string (names, addresses, ranges) encode as that string and
// are validated again when decoded, so a stored or received value never skips the rules.

func decodeText<Value>(_ decoder: any Decoder, _ parse: (String) throws -> Value) throws -> Value {
    let container = try decoder.singleValueContainer()
    let text = try container.decode(String.self)
    do {
        return try parse(text)
    } catch {
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(error)")
    }
}

func encodeText(_ text: String, to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(text)
}

extension Name: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder) { try Name($0) } }
    public func encode(to encoder: any Encoder) throws { try encodeText(rawValue, to: encoder) }
}

extension CIDR: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder) { try CIDR(parsing: $0) } }
    public func encode(to encoder: any Encoder) throws { try encodeText(description, to: encoder) }
}

extension MACAddress: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder) { try MACAddress(parsing: $0) } }
    public func encode(to encoder: any Encoder) throws { try encodeText(description, to: encoder) }
}

extension HostPort: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder) { try HostPort(parsing: $0) } }
    public func encode(to encoder: any Encoder) throws { try encodeText(description, to: encoder) }
}

extension VersionReference: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder) { try VersionReference(parsing: $0) } }
    public func encode(to encoder: any Encoder) throws { try encodeText(description, to: encoder) }
}

extension VersionFilePath: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder) { try VersionFilePath($0) } }
    public func encode(to encoder: any Encoder) throws { try encodeText(rawValue, to: encoder) }
}
