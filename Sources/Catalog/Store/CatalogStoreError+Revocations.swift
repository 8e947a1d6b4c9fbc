import CatalogClient

extension CatalogStoreError {
    /// The revocation list is full of certificates not yet expired.
    static func revocationListFull(_ count: Int) -> CatalogStoreError {
        CatalogStoreError(
            .failedPrecondition,
            "the revocation list holds \(count) certificates not yet expired, its maximum; wait for some to expire, or start a new CA if that many keys were lost")
    }
}
