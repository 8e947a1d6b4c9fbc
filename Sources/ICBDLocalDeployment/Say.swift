import Foundation

/// Prints a line at once (unbuffered), also when standard output is a pipe or a file: the
/// progress of `icbd up` and of the benchmarks that run its deployment.
public func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
