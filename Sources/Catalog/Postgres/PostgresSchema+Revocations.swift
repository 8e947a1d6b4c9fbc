import CatalogClient

extension PostgresSchema {
    /// Revoked certificates by serial (``RevocationRecord``): outside the revisioned model, and
    /// dropped once expired (`expires_ms`).
    static let version4Revocations = """
        CREATE TABLE revocations (
          serial TEXT COLLATE "C" PRIMARY KEY,
          name TEXT COLLATE "C" NOT NULL,
          revoked_ms BIGINT NOT NULL,
          expires_ms BIGINT NOT NULL,
          reason TEXT COLLATE "C" NOT NULL
        );
        CREATE INDEX revocations_expiry ON revocations (expires_ms);
        """
}
