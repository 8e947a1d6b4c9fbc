import CBtrfsUtil
import Foundation
import Glibc
import NIOCore

/// Writes a file from pieces of bytes in order, writing only what must be written.
///
/// - A new file: runs of zeros stay unwritten, so they are holes (unwritten ranges read as
///   zeros): a 40 GiB disk image with 2 GiB of data costs 2 GiB on the repository.
/// - Over an existing file (the previous version's copy, in a writable snapshot): blocks equal
///   to what is there are not written, so they keep sharing their extents with the previous
///   version: changing 10 MiB of a 1 GiB disk costs 10 MiB.
///
/// ``finish()`` sets the final size and syncs. A writer that is not finished leaves a partial
/// file its owner must remove.
public struct SparseFileWriter: ~Copyable {
    /// The unit in which zeros are detected and skipped.
    static let block = 4096

    public let path: String
    private let fd: Int32
    private var offset: Int64 = 0
    /// The size of the file being overwritten (0 for a new file).
    private let existingSize: Int64
    /// Bytes that differed from what was there and were written.
    public private(set) var writtenBytes: Int64 = 0
    private var finished = false
    private var existing = [UInt8](repeating: 0, count: SparseFileWriter.block)

    /// Creates `path`, which must not exist yet.
    public init(path: String, mode: mode_t = 0o644) throws {
        try self.init(path: path, flags: O_CREAT | O_EXCL, mode: mode)
    }

    /// Opens the regular file at `path` to overwrite it (or creates it): only blocks that differ
    /// from its current content are written. A symbolic link or another kind of file is refused.
    public init(overwriting path: String, mode: mode_t = 0o644) throws {
        try self.init(path: path, flags: O_CREAT | O_NOFOLLOW, mode: mode)
    }

    private init(path: String, flags: Int32, mode: mode_t) throws {
        let fd = open(path, O_RDWR | O_CLOEXEC | flags, mode)
        guard fd >= 0 else { throw SparseFileError("cannot open \(path) for writing: \(String(cString: strerror(errno)))") }
        var size: Int64 = 0
        var isRegular: Int32 = 0
        guard icbd_fstat(fd, &size, &isRegular) == 0, isRegular != 0 else {
            close(fd)
            throw SparseFileError("\(path) is not a regular file")
        }
        self.path = path
        self.fd = fd
        self.existingSize = size
    }

    /// Bytes written so far, holes included.
    public var size: Int64 { offset }

    /// Appends `bytes`.
    public mutating func write(_ bytes: ByteBuffer) throws {
        try bytes.withUnsafeReadableBytes { try write($0) }
    }

    /// Appends `bytes`, writing only their non-zero blocks (adjacent ones in one `pwrite`).
    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
        var start = 0
        var pending: Range<Int>? = nil  // non-zero bytes not yet written
        while start < bytes.count {
            let end = min(start + Self.block, bytes.count)
            let unit = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
            if try isAlreadyThere(unit, at: offset + Int64(start)) {
                if let run = pending { try writeAll(UnsafeRawBufferPointer(rebasing: bytes[run]), at: offset + Int64(run.lowerBound)) }
                pending = nil
            } else {
                pending = (pending?.lowerBound ?? start)..<end
            }
            start = end
        }
        if let run = pending { try writeAll(UnsafeRawBufferPointer(rebasing: bytes[run]), at: offset + Int64(run.lowerBound)) }
        offset += Int64(bytes.count)
    }

    /// Sets the file's size to what was written, syncs it and closes it; returns the size.
    public consuming func finish() throws -> Int64 {
        finished = true
        defer { close(fd) }
        guard ftruncate(fd, off_t(offset)) == 0, fsync(fd) == 0 else {
            throw SparseFileError("cannot finish \(path): \(String(cString: strerror(errno)))")
        }
        return offset
    }

    /// Whether `unit` equals what the file holds at `position` (zeros beyond its old end).
    private mutating func isAlreadyThere(_ unit: UnsafeRawBufferPointer, at position: Int64) throws -> Bool {
        guard position < existingSize else { return ZeroDetector.isZero(unit) }
        let count = Int(min(Int64(unit.count), existingSize - position))
        let read = existing.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(position)) }
        guard read == count else {
            throw SparseFileError("cannot read \(path) at offset \(position): \(String(cString: strerror(errno)))")
        }
        let same = existing.withUnsafeBytes { held in
            guard let old = held.baseAddress, let new = unit.baseAddress else { return count == 0 }
            return memcmp(old, new, count) == 0
        }
        return same && ZeroDetector.isZero(UnsafeRawBufferPointer(rebasing: unit[count...]))
    }

    private mutating func writeAll(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
        writtenBytes += Int64(bytes.count)
        var done = 0
        while done < bytes.count {
            let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(position) + off_t(done))
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                throw SparseFileError("cannot write \(path) at offset \(position + Int64(done)): \(String(cString: strerror(errno)))")
            }
            done += written
        }
    }

    deinit {
        if !finished { close(fd) }
    }
}

/// A file that cannot be written.
public struct SparseFileError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
