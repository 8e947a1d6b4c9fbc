import Crypto
import Glibc
import NIOCore

/// Rebuilds the stream bytes a cut transfer spooled: each ``SpoolRecord``'s literal pieces,
/// and its data references read back from the partly received subvolume kept aside
/// (``ReceiveSpool/partialPath``), in order, each segment checked against its SHA-256. It stops
/// at the first segment that does not rebuild (a reference whose file changed or whose pages
/// were lost in a crash): the transfer resumes from there.
final class SpoolRebuild {
    private let reader: SpoolReader
    private let partial: String
    /// The references whose file was renamed after them, by their index in the spool: the
    /// file's name at the end of the spool.
    private let renamed: [Int: [UInt8]]
    private var reference = 0
    private var files: [[UInt8]: Int32] = [:]
    /// Stream bytes rebuilt so far, and where their records end in the spool file.
    private(set) var length: Int64 = 0
    private(set) var validEnd: Int64
    /// Why the rebuild stopped before the spool's end; nil while it has not.
    private(set) var stopped: String?

    static let maximumOpenFiles = 64

    /// Nil when the spool is not there or not of this format.
    init?(spool: ReceiveSpool) {
        guard let reader = SpoolReader(path: spool.path), let prepass = SpoolReader(path: spool.path) else { return nil }
        self.reader = reader
        self.partial = spool.partialPath
        self.validEnd = reader.validEnd
        self.renamed = Self.renames(prepass)
    }

    deinit {
        for fd in files.values { close(fd) }
    }

    /// The next segment's bytes and SHA-256; nil at the spool's end or at a segment that does not
    /// rebuild (``stopped`` says why).
    func next() -> (bytes: ByteBuffer, sha256: [UInt8])? {
        guard stopped == nil, let record = reader.next() else { return nil }
        var bytes = ByteBufferAllocator().buffer(capacity: record.rawLength)
        for piece in record.pieces {
            switch piece {
            case .literal(let literal):
                bytes.writeBytes(literal)
            case .data(let path, let fileOffset, let count):
                let name = renamed[reference] ?? path
                reference += 1
                guard read(count, at: fileOffset, of: name, into: &bytes) else {
                    stopped = "the data of '\(String(decoding: name, as: UTF8.self))' at \(fileOffset) is not in the partly received subvolume"
                    return nil
                }
            case .rename:
                continue
            }
        }
        let digest = bytes.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) }
        guard digest == record.sha256 else {
            stopped = "the segment at stream byte \(length) does not rebuild to its SHA-256"
            return nil
        }
        length += Int64(record.rawLength)
        validEnd = reader.validEnd
        return (bytes, digest)
    }

    private func read(_ count: Int, at offset: Int64, of path: [UInt8], into bytes: inout ByteBuffer) -> Bool {
        guard let fd = file(path) else { return false }
        let done = bytes.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { target in
            readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: target[0..<count]), at: offset)
        }
        return done == count
    }

    private func file(_ path: [UInt8]) -> Int32? {
        if let fd = files[path] { return fd }
        if files.count >= Self.maximumOpenFiles {
            for fd in files.values { close(fd) }
            files = [:]
        }
        let fd = open(partial + "/" + String(decoding: path, as: UTF8.self), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        files[path] = fd
        return fd
    }

    /// Follows the spool's renames: for each reference whose file was renamed (or whose directory
    /// was) after it, the file's name at the end of the spool.
    private static func renames(_ reader: SpoolReader) -> [Int: [UInt8]] {
        var byPath: [[UInt8]: [Int]] = [:]
        var directories: Set<[UInt8]> = []
        var renamed: [Int: [UInt8]] = [:]
        var index = 0
        func add(_ ids: [Int], at path: [UInt8]) {
            byPath[path, default: []] += ids
            var parent = path
            while let slash = parent.lastIndex(of: UInt8(ascii: "/")) {
                parent = Array(parent[..<slash])
                guard directories.insert(parent).inserted else { break }
            }
        }
        while let record = reader.next() {
            for piece in record.pieces {
                switch piece {
                case .literal:
                    continue
                case .data(let path, _, _):
                    add([index], at: path)
                    index += 1
                case .rename(let from, let to):
                    if let ids = byPath.removeValue(forKey: from) {
                        for id in ids { renamed[id] = to }
                        add(ids, at: to)
                    }
                    guard directories.contains(from) else { continue }
                    let prefix = from + [UInt8(ascii: "/")]
                    for path in Array(byPath.keys) where path.starts(with: prefix) {
                        guard let ids = byPath.removeValue(forKey: path) else { continue }
                        let moved = to + path.dropFirst(from.count)
                        for id in ids { renamed[id] = moved }
                        add(ids, at: moved)
                    }
                }
            }
        }
        return renamed
    }
}
