import Crypto
import ICBDCore

/// The manifests of a version's files, hashed from a full send stream's write commands as they
/// pass to `btrfs receive`, so that the received files need not be read back.
///
/// Sound only for what it follows: a full stream builds its subvolume from nothing (`subvol`),
/// so a file the stream creates (`mkfile`, under a temporary name it then renames) holds zeros
/// except where the stream writes, up to the size a `truncate` gives it. It follows files whose
/// writes come in increasing, non-overlapping order and whose every other command is metadata
/// (owner, mode, times, xattrs). Anything else — a clone, a link or unlink, a rename of a written
/// file, a write to a file it did not see created, an unknown command, an incremental stream —
/// abandons it, and the check reads the files back (see ``ReceivedVersionCheck`` and
/// docs/replication.md "Verifying a full version from its stream").
///
/// Memory: one SHA-256 state and 32 bytes per chunk of each followed file.
struct StreamWriteManifests: Sendable {
    /// One file's chunks so far. (`SHA256` is a copy-on-write value, not marked `Sendable`.)
    private struct File: @unchecked Sendable {
        let chunkSize: Int64
        var entries: [UInt8] = []
        var zeroChunks = 0
        var chunk = SHA256()
        /// Bytes of the current chunk hashed, and whether any was not zero.
        var filled: Int64 = 0
        var nonZero = false
        /// The file's bytes up to here are hashed.
        var cursor: Int64 { Int64(entries.count / ChunkManifest.entrySize) * chunkSize + filled }

        init(chunkSize: Int64) { self.chunkSize = chunkSize }

        mutating func hash(_ bytes: UnsafeRawBufferPointer) {
            var rest = bytes
            while !rest.isEmpty {
                let piece = UnsafeRawBufferPointer(rebasing: rest.prefix(Int(chunkSize - filled)))
                if !nonZero && !ZeroDetector.isZero(piece) { nonZero = true }
                chunk.update(bufferPointer: piece)
                filled += Int64(piece.count)
                if filled == chunkSize { finishChunk() }
                rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(piece.count))
            }
        }

        /// Zeros up to `offset` (a hole the stream does not write).
        mutating func zeros(to offset: Int64) {
            while cursor < offset {
                if filled == 0 && offset - cursor >= chunkSize {
                    entries += ChunkManifest.zeroEntry
                    zeroChunks += 1
                    continue
                }
                let count = Int(min(offset - cursor, chunkSize - filled, Int64(Self.zeroBytes.count)))
                Self.zeroBytes.withUnsafeBytes { hash(UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
            }
        }

        mutating func finishChunk() {
            if nonZero {
                entries += Array(chunk.finalize())
            } else {
                entries += ChunkManifest.zeroEntry
                zeroChunks += 1
            }
            chunk = SHA256()
            filled = 0
            nonZero = false
        }

        static let zeroBytes = [UInt8](repeating: 0, count: 64 << 10)
    }

    /// A file the stream created, under its current name.
    private struct Created: Sendable {
        /// Followed: its name is (or was when first written) one of the version's files.
        var file: File?
        var written = false
    }

    /// The version's files: path bytes → chunk size.
    private let wanted: [[UInt8]: Int64]
    private var created: [[UInt8]: Created] = [:]
    /// The file the current write goes to (nil: not followed).
    private var writing: [UInt8]?
    /// Why the stream is not followed; nil while it is.
    private(set) var abandoned: String?

    /// Follows the files `files` (relative path → chunk size).
    init(files: [(path: String, chunkSize: Int64)]) {
        wanted = Dictionary(files.map { (Array($0.path.utf8), $0.chunkSize) }, uniquingKeysWith: { first, _ in first })
    }

    /// Stops following the stream; the files are read back instead.
    mutating func abandon(_ reason: String) {
        guard abandoned == nil else { return }
        abandoned = reason
        created = [:]
        writing = nil
    }

    /// A command's effect on which file holds what (its data, for a write, follows through
    /// ``data(_:)`` after ``beginWrite(path:offset:)``).
    mutating func command(_ command: SendStreamCommand, path: [UInt8]?, pathTo: [UInt8]?, size: Int64?) {
        guard abandoned == nil else { return }
        writing = nil
        switch command {
        case .subvolume, .makeDirectory, .removeDirectory, .setXattr, .removeXattr, .chmod, .chown, .utimes, .end,
            .fileAttributes:
            return
        case .write:
            return  // beginWrite
        case .makeFile:
            guard let path, created[path] == nil else { return abandon("a file created twice") }
            created[path] = Created(file: wanted[path].map { File(chunkSize: $0) })
        case .rename:
            guard let path, let pathTo, created[pathTo] == nil else { return abandon("a rename without names or onto a created file") }
            guard var moved = created.removeValue(forKey: path) else {
                // A directory (or another non-file) moving: fine unless it holds a followed file.
                let prefix = path + [UInt8(ascii: "/")]
                if created.keys.contains(where: { $0.starts(with: prefix) }) { abandon("a directory of created files renamed") }
                return
            }
            guard !moved.written else { return abandon("a written file renamed") }
            moved.file = wanted[pathTo].map { File(chunkSize: $0) }
            created[pathTo] = moved
        case .truncate:
            // Entries are changed in place (a copy would copy the chunk list per command).
            guard let path, let size, created[path] != nil else { return abandon("a truncate of a file the stream did not create") }
            created[path]?.written = true
            if let cursor = created[path]?.file?.cursor {
                guard size >= cursor else { return abandon("a truncate below written data") }
                created[path]?.file?.zeros(to: size)
            }
        case .snapshot, .makeNode, .makeFIFO, .makeSocket, .symlink, .link, .unlink, .clone, .updateExtent, .fallocate,
            .encodedWrite, .enableVerity:
            abandon("the stream \(command)s")
        }
    }

    /// A write of `offset` in `path`; its data follows.
    mutating func beginWrite(path: [UInt8]?, offset: Int64) {
        guard abandoned == nil else { return }
        guard let path, created[path] != nil else { return abandon("a write to a file the stream did not create") }
        created[path]?.written = true
        if let cursor = created[path]?.file?.cursor {
            guard offset >= cursor else { return abandon("writes out of order") }
            created[path]?.file?.zeros(to: offset)
            writing = path
        }
    }

    /// The next bytes of the current write's data.
    mutating func data(_ bytes: UnsafeRawBufferPointer) {
        guard abandoned == nil, let writing else { return }
        created[writing]?.file?.hash(bytes)
    }

    /// The manifest of `path` as the stream left it, given its size on disk; nil when the
    /// stream was not followed or did not create that file.
    func manifest(path: String, fileSize: Int64) -> ManifestBuilder.Manifest? {
        guard abandoned == nil, var file = created[Array(path.utf8)]?.file, fileSize >= file.cursor else { return nil }
        file.zeros(to: fileSize)
        if file.filled > 0 { file.finishChunk() }
        guard Int64(file.entries.count / ChunkManifest.entrySize) == ChunkManifest.chunkCount(fileSize: fileSize, chunkSize: file.chunkSize)
        else { return nil }
        return ManifestBuilder.Manifest(
            fileSize: fileSize, chunkSize: file.chunkSize, entries: file.entries,
            digest: ChunkManifest.digest(fileSize: fileSize, chunkSize: file.chunkSize, entries: file.entries),
            zeroChunks: file.zeroChunks)
    }
}
