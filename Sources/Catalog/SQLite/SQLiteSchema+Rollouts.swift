extension SQLiteSchema {
    /// Staged rollouts, one per tag (steps, criteria and progress as JSON), and the boots
    /// gateways report: the last few per workstation (`boots`) and, per version and site, every
    /// boot added up (`version_boots.tally`: JSON of ``BootTally``). Boots are outside the
    /// revisioned model.
    static let version5Rollouts = """
        CREATE TABLE rollouts (
          image TEXT NOT NULL,
          tag TEXT NOT NULL,
          id INTEGER NOT NULL,
          from_version INTEGER NOT NULL,
          to_version INTEGER NOT NULL,
          site TEXT,
          steps TEXT NOT NULL,
          step INTEGER NOT NULL,
          state TEXT NOT NULL,
          criteria TEXT NOT NULL,
          detail TEXT NOT NULL,
          started_ms INTEGER NOT NULL,
          updated_ms INTEGER NOT NULL,
          progress TEXT NOT NULL,
          revision INTEGER NOT NULL,
          PRIMARY KEY (image, tag)
        );

        CREATE TABLE boots (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          mac TEXT NOT NULL,
          site TEXT NOT NULL,
          gateway TEXT NOT NULL,
          image TEXT NOT NULL,
          version INTEGER NOT NULL,
          outcome TEXT NOT NULL,
          failure TEXT,
          started_ms INTEGER NOT NULL,
          loaded_ms INTEGER,
          up_ms INTEGER,
          bytes_read INTEGER NOT NULL,
          disk_reads INTEGER NOT NULL,
          errors INTEGER NOT NULL,
          unavailable INTEGER NOT NULL
        );
        CREATE INDEX boots_mac ON boots (mac, id);

        CREATE TABLE version_boots (
          image TEXT NOT NULL,
          version INTEGER NOT NULL,
          site TEXT NOT NULL,
          tally TEXT NOT NULL,
          PRIMARY KEY (image, version, site)
        );
        """
}
