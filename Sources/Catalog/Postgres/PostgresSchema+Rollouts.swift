extension PostgresSchema {
    /// Staged rollouts, one per tag (steps, criteria and progress as JSON), and the boots
    /// gateways report: the last few per workstation (`boots`) and, per version and site, every
    /// boot added up (`version_boots.tally`: JSON of ``BootTally``). Boots are outside the
    /// revisioned model.
    static let version5Rollouts = """
        CREATE TABLE rollouts (
          image TEXT COLLATE "C" NOT NULL,
          tag TEXT COLLATE "C" NOT NULL,
          id BIGINT NOT NULL,
          from_version BIGINT NOT NULL,
          to_version BIGINT NOT NULL,
          site TEXT COLLATE "C",
          steps TEXT COLLATE "C" NOT NULL,
          step BIGINT NOT NULL,
          state TEXT COLLATE "C" NOT NULL,
          criteria TEXT COLLATE "C" NOT NULL,
          detail TEXT COLLATE "C" NOT NULL,
          started_ms BIGINT NOT NULL,
          updated_ms BIGINT NOT NULL,
          progress TEXT COLLATE "C" NOT NULL,
          revision BIGINT NOT NULL,
          PRIMARY KEY (image, tag)
        );

        CREATE TABLE boots (
          id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          mac TEXT COLLATE "C" NOT NULL,
          site TEXT COLLATE "C" NOT NULL,
          gateway TEXT COLLATE "C" NOT NULL,
          image TEXT COLLATE "C" NOT NULL,
          version BIGINT NOT NULL,
          outcome TEXT COLLATE "C" NOT NULL,
          failure TEXT COLLATE "C",
          started_ms BIGINT NOT NULL,
          loaded_ms BIGINT,
          up_ms BIGINT,
          bytes_read BIGINT NOT NULL,
          disk_reads BIGINT NOT NULL,
          errors BIGINT NOT NULL,
          unavailable BIGINT NOT NULL
        );
        CREATE INDEX boots_mac ON boots (mac, id);

        CREATE TABLE version_boots (
          image TEXT COLLATE "C" NOT NULL,
          version BIGINT NOT NULL,
          site TEXT COLLATE "C" NOT NULL,
          tally TEXT COLLATE "C" NOT NULL,
          PRIMARY KEY (image, version, site)
        );
        """
}
