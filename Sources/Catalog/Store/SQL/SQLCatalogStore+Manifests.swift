import Foundation
import ICBDCore

/// The file a manifest upload writes to.
private struct ManifestTarget: Sendable {
    let fileID: Int64
    let file: FileRecord
}

extension SQLCatalogStore {
    public func storeManifest<Entries: AsyncSequence<[UInt8], any Error>>(
        _ locator: ManifestLocator, entries: Entries, by publisher: Publisher, at now: Date
    ) async throws -> Revisioned<FileRecord> {
        // Pages are staged in their own small transactions (nobody reads the manifest of a
        // publishing version); only the verified result is a change.
        let target = try await writeUnversioned { db in
            try await Self.authorize(db, publisher, over: try await Self.requireVersion(db, image: locator.image, number: locator.version))
            let (fileID, file) = try await Self.requireFile(db, locator, states: [.publishing])
            try await db.execute("DELETE FROM manifest_pages WHERE file_id = \(fileID)")
            try await db.execute("UPDATE files SET manifest_stored = \(false) WHERE id = \(fileID)")
            return ManifestTarget(fileID: fileID, file: file)
        }
        let expected = target.file.chunkCount
        let pageBytes = ManifestPaging.bytesPerPage
        var page: [UInt8] = []
        page.reserveCapacity(pageBytes)
        var pageIndex = 0
        var received: Int64 = 0
        func flush() async throws {
            let (bytes, index) = (page, pageIndex)
            try await writeUnversioned { db in
                // An upsert: a second upload of the same file converges instead of failing on a
                // page the first one wrote; the final check decides which content stands.
                try await db.execute(
                    """
                    INSERT INTO manifest_pages (file_id, page, entries) VALUES (\(target.fileID), \(index), \(bytes))
                    ON CONFLICT (file_id, page) DO UPDATE SET entries = excluded.entries
                    """)
            }
            pageIndex += 1
            page.removeAll(keepingCapacity: true)
        }
        for try await piece in entries {
            guard piece.count % ChunkManifest.entrySize == 0 else {
                throw CatalogStoreError.invalid(
                    "manifest of \(locator): a piece of \(piece.count) bytes is not a whole number of 32-byte entries")
            }
            received += Int64(piece.count / ChunkManifest.entrySize)
            guard received <= expected else {
                throw CatalogStoreError.invalid(
                    "manifest of \(locator) has more than the \(expected) entries a file of \(target.file.size) bytes in chunks of \(target.file.chunkSize) has"
                )
            }
            var offset = 0
            while offset < piece.count {
                let take = min(pageBytes - page.count, piece.count - offset)
                page.append(contentsOf: piece[offset..<(offset + take)])
                offset += take
                if page.count == pageBytes { try await flush() }
            }
        }
        if !page.isEmpty { try await flush() }
        guard received == expected else {
            throw CatalogStoreError.invalid(
                "manifest of \(locator) has \(received) entries; a file of \(target.file.size) bytes in chunks of \(target.file.chunkSize) has \(expected)"
            )
        }
        return try await commit { db, changes in
            let (fileID, file) = try await Self.requireFile(db, locator, states: [.publishing])
            guard fileID == target.fileID else {
                throw CatalogStoreError(.conflict, "the file \(locator) was replaced during the upload; send its manifest again")
            }
            var hasher = ChunkManifest.Hasher(fileSize: file.size, chunkSize: file.chunkSize)
            var stored = 0
            // A page at a time: memory stays bounded by one page whatever the manifest's size.
            let pageCount = try await db.integer("SELECT COUNT(*) AS value FROM manifest_pages WHERE file_id = \(fileID)") ?? 0
            for index in 0..<pageCount {
                guard
                    let bytes = try await db.blob(
                        "SELECT entries AS value FROM manifest_pages WHERE file_id = \(fileID) AND page = \(index)")
                else {
                    throw CatalogStoreError(
                        .conflict, "another upload of the manifest of \(locator) interfered (page \(index) is missing); send it again")
                }
                hasher.update(entries: [UInt8](bytes))
                stored += bytes.count / ChunkManifest.entrySize
            }
            guard stored == expected else {
                throw CatalogStoreError(
                    .conflict,
                    "another upload of the manifest of \(locator) interfered (\(stored) entries stored, \(expected) expected); send it again"
                )
            }
            let digest = hasher.finalize()
            guard digest == file.manifestDigest else {
                throw CatalogStoreError.invalid(
                    "the manifest of \(locator) hashes to \(digest.hexString), but the version declares \(file.manifestDigest.hexString); it was not stored"
                )
            }
            try await db.execute("UPDATE files SET manifest_stored = \(true) WHERE id = \(fileID)")
            try await Self.touchVersion(db, image: locator.image, number: locator.version, revision: changes.revision)
            let version = try await Self.requireVersion(db, image: locator.image, number: locator.version)
            changes.put(.version(version))
            var result = file
            result.manifestStored = true
            return result
        }
    }

    public func manifestFile(_ locator: ManifestLocator) async throws -> (file: FileRecord, pages: Int) {
        try await read { db in
            let (fileID, file) = try await Self.requireFile(db, locator, states: [.ready, .retired])
            let pages = try await db.integer("SELECT COUNT(*) AS value FROM manifest_pages WHERE file_id = \(fileID)") ?? 0
            return (file, Int(pages))
        }
    }

    public func manifestPage(_ locator: ManifestLocator, index: Int) async throws -> [UInt8] {
        try await read { db in
            let (fileID, _) = try await Self.requireFile(db, locator, states: [.ready, .retired])
            guard let bytes = try await db.blob("SELECT entries AS value FROM manifest_pages WHERE file_id = \(fileID) AND page = \(index)")
            else { throw CatalogStoreError.notFound("manifest of \(locator) has no page \(index)") }
            return [UInt8](bytes)
        }
    }

    /// The file's row id and record, when its version is in one of `states`.
    static func requireFile(_ db: Transaction, _ locator: ManifestLocator, states: Set<VersionState>) async throws -> (Int64, FileRecord) {
        let version = try await requireVersion(db, image: locator.image, number: locator.version)
        guard states.contains(version.state) else {
            let problem =
                switch version.state {
                case .publishing: "is still publishing; its manifests can be read once it is ready"
                case .ready: "is ready; its manifests are immutable"
                case .retired: "is retired; its manifests are immutable"
                }
            throw CatalogStoreError.precondition("version \(locator.version) of image '\(locator.image)' \(problem)")
        }
        guard
            let found = try await db.fetchOne(
                """
                SELECT files.* FROM files JOIN versions ON versions.id = files.version_id
                WHERE versions.image = \(locator.image) AND versions.number = \(locator.version) AND files.path = \(locator.path.rawValue)
                """,
                { row in (try row.integer(required: "id"), try CatalogRows.file(row)) })
        else {
            throw CatalogStoreError.notFound("version \(locator.version) of image '\(locator.image)' has no file '\(locator.path)'")
        }
        return found
    }
}
