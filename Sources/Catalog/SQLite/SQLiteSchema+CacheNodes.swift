import ICBDCore

extension SQLiteSchema {
    /// Cache usage from heartbeats (JSON of ``CacheUsage``, NULL until the first) and boot
    /// profiles, one recording per version and cache node (entries: JSON of
    /// `[BootProfileEntry]`). Profiles outlive the versions and nodes they name: they are hints.
    static let version2CacheNodes = """
        ALTER TABLE nodes ADD COLUMN cache_usage TEXT;

        CREATE TABLE boot_profiles (
          image TEXT NOT NULL,
          version INTEGER NOT NULL CHECK (version > 0),
          node TEXT NOT NULL,
          recorded_ms INTEGER NOT NULL,
          entries TEXT NOT NULL,
          PRIMARY KEY (image, version, node)
        );
        """
}
