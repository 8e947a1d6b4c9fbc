import Foundation

/// The catalog's PostgreSQL schema and its versioned migrations: the same tables as the SQLite
/// schema (``SQLiteSchema``) in PostgreSQL's types.
///
/// Text columns compare bytewise (`COLLATE "C"`), as SQLite does, so that listings order and
/// page the same on both stores whatever the database's locale.
///
/// Migrations are only ever appended, and recorded in `icbd_migrations`. A database listing a
/// migration this code does not know was written by a newer icbd and is refused before
/// anything is written to it. Catalog processes starting together migrate one at a time
/// (an advisory lock).
enum PostgresSchema {
    /// The key of the advisory lock held while migrating ("icbd" in ASCII).
    static let migrationLock: Int64 = 0x6963_6264
    /// The channel commits notify, with the committed revision as payload.
    static let channel = "icbd_catalog"

    /// Every migration, oldest first.
    static let migrations: [(id: String, sql: String)] = [
        ("v1-catalog", version1),
        ("v2-cache-nodes", version2CacheNodes),
        ("v3-image-homes", version3ImageHomes),
        ("v4-revocations", version4Revocations),
        ("v5-rollouts", version5Rollouts),
    ]

    static var knownMigrations: [String] { migrations.map(\.id) }

    static let migrationsTable = """
        CREATE TABLE IF NOT EXISTS icbd_migrations (
          id TEXT PRIMARY KEY NOT NULL,
          applied_ms BIGINT NOT NULL
        )
        """

    static let version1 = """
        CREATE TABLE meta (
          key TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          value BIGINT NOT NULL
        );
        INSERT INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);

        CREATE TABLE images (
          name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          description TEXT COLLATE "C" NOT NULL,
          created_ms BIGINT NOT NULL,
          revision BIGINT NOT NULL
        );

        CREATE TABLE versions (
          id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          image TEXT COLLATE "C" NOT NULL REFERENCES images(name),
          number BIGINT NOT NULL CHECK (number > 0),
          parent BIGINT,
          state TEXT COLLATE "C" NOT NULL CHECK (state IN ('publishing', 'ready', 'retired')),
          btrfs_uuid TEXT COLLATE "C" NOT NULL,
          created_ms BIGINT NOT NULL,
          published_by TEXT COLLATE "C" NOT NULL,
          revision BIGINT NOT NULL,
          UNIQUE (image, number)
        );

        CREATE TABLE files (
          id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          version_id BIGINT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
          path TEXT COLLATE "C" NOT NULL,
          size BIGINT NOT NULL CHECK (size >= 0),
          chunk_size BIGINT NOT NULL CHECK (chunk_size > 0),
          manifest_sha256 BYTEA NOT NULL CHECK (length(manifest_sha256) = 32),
          manifest_stored BOOLEAN NOT NULL DEFAULT false,
          UNIQUE (version_id, path)
        );

        CREATE TABLE manifest_pages (
          file_id BIGINT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
          page BIGINT NOT NULL,
          entries BYTEA NOT NULL,
          PRIMARY KEY (file_id, page)
        );

        CREATE TABLE tags (
          image TEXT COLLATE "C" NOT NULL REFERENCES images(name),
          name TEXT COLLATE "C" NOT NULL,
          version BIGINT NOT NULL,
          revision BIGINT NOT NULL,
          PRIMARY KEY (image, name),
          FOREIGN KEY (image, version) REFERENCES versions(image, number)
        );

        CREATE TABLE sites (
          name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          description TEXT COLLATE "C" NOT NULL,
          cidrs TEXT COLLATE "C" NOT NULL,
          links TEXT COLLATE "C" NOT NULL,
          revision BIGINT NOT NULL
        );

        CREATE TABLE nodes (
          name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          role TEXT COLLATE "C" NOT NULL CHECK (role IN ('replicator', 'cache', 'gateway')),
          site TEXT COLLATE "C" NOT NULL REFERENCES sites(name),
          rpc_address TEXT COLLATE "C",
          http_address TEXT COLLATE "C",
          capacity_bytes BIGINT NOT NULL,
          heartbeat_ttl_ms BIGINT NOT NULL,
          last_heartbeat_ms BIGINT,
          state TEXT COLLATE "C" NOT NULL CHECK (state IN ('up', 'down', 'draining')),
          revision BIGINT NOT NULL
        );

        CREATE TABLE placements (
          image TEXT COLLATE "C" NOT NULL,
          version BIGINT NOT NULL,
          node TEXT COLLATE "C" NOT NULL REFERENCES nodes(name),
          state TEXT COLLATE "C" NOT NULL CHECK (state IN ('receiving', 'present', 'failed', 'deleted')),
          detail TEXT COLLATE "C" NOT NULL,
          updated_ms BIGINT NOT NULL,
          revision BIGINT NOT NULL,
          PRIMARY KEY (image, version, node),
          FOREIGN KEY (image, version) REFERENCES versions(image, number)
        );
        CREATE INDEX placements_node ON placements(node);

        CREATE TABLE policies (
          image TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES images(name),
          sites TEXT COLLATE "C" NOT NULL,
          keep_versions BIGINT NOT NULL CHECK (keep_versions > 0),
          revision BIGINT NOT NULL
        );

        CREATE TABLE assignments (
          mac TEXT COLLATE "C" PRIMARY KEY NOT NULL,
          image TEXT COLLATE "C" NOT NULL REFERENCES images(name),
          ref TEXT COLLATE "C" NOT NULL,
          revision BIGINT NOT NULL
        );

        CREATE TABLE changes (
          revision BIGINT NOT NULL,
          position BIGINT NOT NULL,
          change TEXT COLLATE "C" NOT NULL CHECK (change IN ('put', 'delete')),
          kind TEXT COLLATE "C" NOT NULL,
          key TEXT COLLATE "C" NOT NULL,
          body BYTEA NOT NULL,
          PRIMARY KEY (revision, position)
        );
        """
}
