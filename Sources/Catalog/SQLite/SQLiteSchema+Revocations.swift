import CatalogClient

extension SQLiteSchema {
    /// Revoked certificates by serial (``RevocationRecord``): outside the revisioned model, and
    /// dropped once expired (`expires_ms`).
    static let version4Revocations = """
        CREATE TABLE revocations (
          serial TEXT PRIMARY KEY,
          name TEXT NOT NULL,
          revoked_ms INTEGER NOT NULL,
          expires_ms INTEGER NOT NULL,
          reason TEXT NOT NULL
        );
        CREATE INDEX revocations_expiry ON revocations (expires_ms);
        """
}
