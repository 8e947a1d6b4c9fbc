import CBtrfsUtil
import Foundation

/// A libbtrfsutil call that failed, with what it was doing and the library's own explanation.
public struct BtrfsError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let path: String
    /// libbtrfsutil's error code (`enum btrfs_util_error`).
    public let code: UInt32
    public let systemError: Int32
    public let message: String

    init(_ operation: String, path: String, code: btrfs_util_error) {
        self.operation = operation
        self.path = path
        self.code = code.rawValue
        self.systemError = errno
        self.message = btrfs_util_strerror(code).map { String(cString: $0) } ?? "error \(code.rawValue)"
    }

    public var description: String {
        let system = systemError != 0 ? " (\(String(cString: strerror(systemError))))" : ""
        return "btrfs: cannot \(operation) \(path): \(message)\(system)"
    }
}

/// Calls a libbtrfsutil function, throwing its error.
func btrfsCall(_ operation: String, _ path: String, _ body: () -> btrfs_util_error) throws(BtrfsError) {
    errno = 0
    let result = body()
    guard result == BTRFS_UTIL_OK else { throw BtrfsError(operation, path: path, code: result) }
}
