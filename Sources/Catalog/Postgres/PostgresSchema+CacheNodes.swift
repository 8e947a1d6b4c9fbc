import ICBDCore

extension PostgresSchema {
    /// Cache usage from heartbeats (JSON of ``CacheUsage``, NULL until the first) and boot
    /// profiles, one recording per version and cache node (entries: JSON of
    /// `[BootProfileEntry]`). Profiles outlive the versions and nodes they name: they are hints.
    static let version2CacheNodes = """
        ALTER TABLE nodes ADD COLUMN cache_usage TEXT COLLATE "C";

        CREATE TABLE boot_profiles (
          image TEXT COLLATE "C" NOT NULL,
          version BIGINT NOT NULL CHECK (version > 0),
          node TEXT COLLATE "C" NOT NULL,
          recorded_ms BIGINT NOT NULL,
          entries TEXT COLLATE "C" NOT NULL,
          PRIMARY KEY (image, version, node)
        );
        """
}
