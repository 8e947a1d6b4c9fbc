import ICBDCore
import ICBDProto
import ICBDRPC
import CatalogClient

/// The entries of a PutManifest call, piece by piece as they arrive: the first message's, then
/// every later one's. Later messages may repeat the file's name but not name another.
struct ManifestUpload: AsyncSequence {
    typealias Element = [UInt8]
    typealias Failure = any Error

    let first: Icbd_Catalog_V1_PutManifestRequest
    let rest: RPCRequestStream<Icbd_Catalog_V1_PutManifestRequest>.AsyncIterator
    let locator: ManifestLocator

    struct AsyncIterator: AsyncIteratorProtocol {
        var first: Icbd_Catalog_V1_PutManifestRequest?
        var rest: RPCRequestStream<Icbd_Catalog_V1_PutManifestRequest>.AsyncIterator
        let locator: ManifestLocator

        mutating func next() async throws -> [UInt8]? {
            if let message = first {
                first = nil
                return [UInt8](message.entries)
            }
            guard let message = try await rest.next() else { return nil }
            if !message.image.isEmpty || message.version != 0 || !message.path.isEmpty {
                guard message.image == locator.image.rawValue, message.version == locator.version,
                    message.path == locator.path.rawValue
                else {
                    throw WireFields.invalid("PutManifest", "a later message names another file than \(locator); one call uploads one manifest")
                }
            }
            return [UInt8](message.entries)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(first: first, rest: rest, locator: locator)
    }
}
