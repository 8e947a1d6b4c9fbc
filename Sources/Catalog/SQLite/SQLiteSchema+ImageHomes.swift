extension SQLiteSchema {
    /// Each image's home site (docs/catalog.md "Authority per image"): for existing images the
    /// site of the oldest version whose publisher is a registered replicator; NULL where none is
    /// known (the next replicator to create a version records its own site).
    static let version3ImageHomes = """
        ALTER TABLE images ADD COLUMN home_site TEXT;

        UPDATE images SET home_site = (
          SELECT nodes.site FROM versions JOIN nodes ON nodes.name = versions.published_by AND nodes.role = 'replicator'
          WHERE versions.image = images.name ORDER BY versions.number LIMIT 1
        );
        """
}
