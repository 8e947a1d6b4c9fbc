import Foundation
import Glibc
import NIOCore

/// Writes a new file from pieces of bytes in order, leaving runs of zeros unwritten so they stay
/// holes: a 40 GiB disk image with 2 GiB of data costs 2 GiB on the repository.
///
/// Unwritten ranges of a new file read as zeros, so any zero run may be skipped; runs of whole
/// 4 KiB blocks become holes. ``finish()`` sets the final size (a trailing zero run is a hole
/// too) and syncs. A writer that is not finished leaves a partial file its owner must remove.
public struct SparseFileWriter: ~Copyable {
    /// The unit in which zeros are detected and skipped.
    static let block = 4096

    public let path: String
    private let fd: Int32
    private var offset: Int64 = 0
    private var finished = false

    /// Creates `path`, which must not exist yet.
    public init(path: String, mode: mode_t = 0o644) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SparseFileError("cannot create \(path): \(String(cString: strerror(errno)))") }
        self.path = path
        self.fd = fd
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
            if ZeroDetector.isZero(unit) {
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

    private func writeAll(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
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
