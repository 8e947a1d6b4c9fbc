import Foundation
import ICBDCore

/// How change-log entries store their object: JSON of the domain value, so a log written by
/// one store can be read by any code that knows the model, and values are validated again
/// when read back.
enum ChangeCoding {
    static func encode(_ entity: CatalogEntity) throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(entity)
    }

    static func decode(_ data: Data) throws -> CatalogEntity {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return try decoder.decode(CatalogEntity.self, from: data)
    }
}
