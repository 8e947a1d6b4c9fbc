import CBtrfsUtil
import Foundation
import Glibc
import ICBDRPC
import NIOCore

/// Brings a file of a local publish (`icbd image publish --local`) into `work`: a reflink when
/// the source is on the repository's filesystem (no data copied; the version shares the
/// source's extents), else a copy through ``SparseFileWriter`` (only blocks that differ from the
/// parent version are written).
struct LocalFileCopy {
    /// Copies `relative` from `directory` over the same path in `work`. The source must be a
    /// regular file inside `directory` (no symbolic link on the way out) of `size` bytes.
    static func copy(_ relative: String, size: Int64, from directory: String, into work: String) throws -> WrittenFile {
        let source = try openSource(relative, in: directory)
        defer { close(source) }
        var actual: Int64 = 0
        var isRegular: Int32 = 0
        guard icbd_fstat(source, &actual, &isRegular) == 0 else {
            throw RPCError(code: .invalidArgument, message: "cannot stat '\(relative)' in \(directory): \(String(cString: strerror(errno)))")
        }
        guard actual == size else {
            throw RPCError(code: .invalidArgument, message: "'\(relative)' was announced with \(size) bytes, it has \(actual) (did it change?)")
        }
        let target = work + "/" + relative
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if try reflink(source, to: target) { return WrittenFile(writtenBytes: 0, reflinked: true) }

        var writer = try SparseFileWriter(overwriting: target)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: Int64 = 0
        while offset < size {
            let read = buffer.withUnsafeMutableBytes { pread(source, $0.baseAddress, min($0.count, Int(size - offset)), off_t(offset)) }
            guard read > 0 else {
                throw RPCError(code: .invalidArgument, message: "'\(relative)' shrank while it was being published")
            }
            try buffer.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<read])) }
            offset += Int64(read)
        }
        let written = writer.writtenBytes
        _ = try writer.finish()
        return WrittenFile(writtenBytes: written, reflinked: false)
    }

    /// Opens the source read-only, refusing any path that leaves `directory` (a symbolic link
    /// on the way, `..`).
    private static func openSource(_ relative: String, in directory: String) throws -> Int32 {
        let joined = directory + "/" + relative
        guard let resolvedDirectory = realpath(directory, nil) else {
            throw RPCError(code: .invalidArgument, message: "local directory \(directory): \(String(cString: strerror(errno)))")
        }
        defer { free(resolvedDirectory) }
        guard let resolved = realpath(joined, nil) else {
            throw RPCError(code: .invalidArgument, message: "'\(relative)' in \(directory): \(String(cString: strerror(errno)))")
        }
        defer { free(resolved) }
        guard String(cString: resolved) == String(cString: resolvedDirectory) + "/" + relative else {
            throw RPCError(
                code: .invalidArgument,
                message: "'\(relative)' in \(directory) goes through a symbolic link; a version holds regular files only")
        }
        // O_NONBLOCK: opening a fifo must not wait for a writer (it is refused just below).
        let fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            throw RPCError(code: .invalidArgument, message: "cannot read '\(relative)' in \(directory): \(String(cString: strerror(errno)))")
        }
        var size: Int64 = 0
        var isRegular: Int32 = 0
        guard icbd_fstat(fd, &size, &isRegular) == 0, isRegular != 0 else {
            close(fd)
            throw RPCError(
                code: .invalidArgument, message: "'\(relative)' in \(directory) is not a regular file (a fifo, device, socket or directory); a version holds regular files only")
        }
        return fd
    }

    /// Replaces `target` by a reflink of `source`; false when the filesystem cannot (another
    /// filesystem, no reflink support), with `target` left as it was.
    private static func reflink(_ source: Int32, to target: String) throws -> Bool {
        let temporary = target + ".reflink"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RPCError(code: .internal, message: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let cloned = icbd_reflink(fd, source) == 0
        let failure = errno
        close(fd)
        guard cloned else {
            unlink(temporary)
            if [EXDEV, EOPNOTSUPP, EINVAL, ENOTTY].contains(failure) { return false }
            throw RPCError(code: .internal, message: "reflink into \(target): \(String(cString: strerror(failure)))")
        }
        guard rename(temporary, target) == 0 else {
            unlink(temporary)
            throw RPCError(code: .internal, message: "cannot rename \(temporary): \(String(cString: strerror(errno)))")
        }
        return true
    }
}
