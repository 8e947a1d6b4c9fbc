import ICBDCore
import ICBDProto
import ICBDRPC

extension LinkCompression {
    /// The model's value of a wire value; nil for a value this build does not know.
    public init?(wire: Icbd_Catalog_V1_LinkCompression) {
        switch wire {
        case .auto: self = .auto
        case .on: self = .on
        case .off: self = .off
        case .UNRECOGNIZED: return nil
        }
    }
}

extension Icbd_Catalog_V1_LinkCompression {
    public init(_ compression: LinkCompression) {
        switch compression {
        case .auto: self = .auto
        case .on: self = .on
        case .off: self = .off
        }
    }
}

extension WireFields {
    /// A site link's compression: a known value, else INVALID_ARGUMENT naming the field.
    package static func linkCompression(_ value: Icbd_Catalog_V1_LinkCompression, _ field: String) throws -> LinkCompression {
        guard let compression = LinkCompression(wire: value) else {
            throw invalid(field, "unknown compression \(value.rawValue); auto, on or off")
        }
        return compression
    }
}
