import Foundation
import GRDB

/// The catalog's SQLite schema and its versioned migrations.
///
/// Migrations are only ever appended. A database that lists a migration this code does not
/// know was written by a newer icbd and is refused before anything is written to it.
enum SQLiteSchema {
    /// `PRAGMA application_id` of catalog databases: "icbd" in ASCII.
    static let applicationID: Int32 = 0x6963_6264

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-catalog") { db in
            try db.execute(sql: version1)
            try db.execute(sql: "PRAGMA application_id = \(applicationID)")
        }
        migrator.registerMigration("v2-cache-nodes") { db in
            try db.execute(sql: version2CacheNodes)
        }
        migrator.registerMigration("v3-image-homes") { db in
            try db.execute(sql: version3ImageHomes)
        }
        migrator.registerMigration("v4-revocations") { db in
            try db.execute(sql: version4Revocations)
        }
        migrator.registerMigration("v5-rollouts") { db in
            try db.execute(sql: version5Rollouts)
        }
        return migrator
    }

    /// The identifiers of the migrations this code knows, oldest first.
    static var knownMigrations: [String] { migrator.migrations }

    static let version1 = """
        CREATE TABLE meta (
          key TEXT PRIMARY KEY NOT NULL,
          value INTEGER NOT NULL
        );
        INSERT INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);

        CREATE TABLE images (
          name TEXT PRIMARY KEY NOT NULL,
          description TEXT NOT NULL,
          created_ms INTEGER NOT NULL,
          revision INTEGER NOT NULL
        );

        CREATE TABLE versions (
          id INTEGER PRIMARY KEY,
          image TEXT NOT NULL REFERENCES images(name),
          number INTEGER NOT NULL CHECK (number > 0),
          parent INTEGER,
          state TEXT NOT NULL CHECK (state IN ('publishing', 'ready', 'retired')),
          btrfs_uuid TEXT NOT NULL,
          created_ms INTEGER NOT NULL,
          published_by TEXT NOT NULL,
          revision INTEGER NOT NULL,
          UNIQUE (image, number)
        );

        CREATE TABLE files (
          id INTEGER PRIMARY KEY,
          version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
          path TEXT NOT NULL,
          size INTEGER NOT NULL CHECK (size >= 0),
          chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
          manifest_sha256 BLOB NOT NULL CHECK (length(manifest_sha256) = 32),
          manifest_stored INTEGER NOT NULL DEFAULT 0,
          UNIQUE (version_id, path)
        );

        -- Manifests live apart from the files, in pages of 4096 entries, so that listings never
        -- read them and GetManifest streams them a page at a time.
        CREATE TABLE manifest_pages (
          file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
          page INTEGER NOT NULL,
          entries BLOB NOT NULL,
          PRIMARY KEY (file_id, page)
        );

        CREATE TABLE tags (
          image TEXT NOT NULL REFERENCES images(name),
          name TEXT NOT NULL,
          version INTEGER NOT NULL,
          revision INTEGER NOT NULL,
          PRIMARY KEY (image, name),
          FOREIGN KEY (image, version) REFERENCES versions(image, number)
        );

        CREATE TABLE sites (
          name TEXT PRIMARY KEY NOT NULL,
          description TEXT NOT NULL,
          cidrs TEXT NOT NULL,        -- JSON array of CIDR strings
          links TEXT NOT NULL,        -- JSON array of {site, rateBytesPerSecond}
          revision INTEGER NOT NULL
        );

        CREATE TABLE nodes (
          name TEXT PRIMARY KEY NOT NULL,
          role TEXT NOT NULL CHECK (role IN ('replicator', 'cache', 'gateway')),
          site TEXT NOT NULL REFERENCES sites(name),
          rpc_address TEXT,
          http_address TEXT,
          capacity_bytes INTEGER NOT NULL,
          heartbeat_ttl_ms INTEGER NOT NULL,
          last_heartbeat_ms INTEGER,
          state TEXT NOT NULL CHECK (state IN ('up', 'down', 'draining')),
          revision INTEGER NOT NULL
        );

        CREATE TABLE placements (
          image TEXT NOT NULL,
          version INTEGER NOT NULL,
          node TEXT NOT NULL REFERENCES nodes(name),
          state TEXT NOT NULL CHECK (state IN ('receiving', 'present', 'failed', 'deleted')),
          detail TEXT NOT NULL,
          updated_ms INTEGER NOT NULL,
          revision INTEGER NOT NULL,
          PRIMARY KEY (image, version, node),
          FOREIGN KEY (image, version) REFERENCES versions(image, number)
        );
        CREATE INDEX placements_node ON placements(node);

        CREATE TABLE policies (
          image TEXT PRIMARY KEY NOT NULL REFERENCES images(name),
          sites TEXT NOT NULL,        -- JSON array of site names; empty: every site
          keep_versions INTEGER NOT NULL CHECK (keep_versions > 0),
          revision INTEGER NOT NULL
        );

        CREATE TABLE assignments (
          mac TEXT PRIMARY KEY NOT NULL,
          image TEXT NOT NULL REFERENCES images(name),
          ref TEXT NOT NULL,
          revision INTEGER NOT NULL
        );

        -- One row per event; all events of a revision committed together. Watch replays it.
        CREATE TABLE changes (
          revision INTEGER NOT NULL,
          position INTEGER NOT NULL,
          change TEXT NOT NULL CHECK (change IN ('put', 'delete')),
          kind TEXT NOT NULL,
          key TEXT NOT NULL,
          body BLOB NOT NULL,         -- JSON of the domain object
          PRIMARY KEY (revision, position)
        ) WITHOUT ROWID;
        """
}
