import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import NIOCore
import SwiftProtobuf

/// The files of a publish's source directory, checked before anything is sent, and sent to a
/// replicator's `Publish` call (client side: `icbd image publish` and `icbd bench repository`).
public enum PublishSource {
    /// One file: its path relative to the directory, and its size.
    public struct File: Sendable {
        public let path: String
        public let size: Int64
    }

    /// Every regular file under `directory`, by relative path; symbolic links and other kinds of
    /// file are refused, and so are paths a version cannot hold.
    public static func files(in directory: String) throws -> [File] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PublishSourceError("DIR: '\(directory)' is not a directory")
        }
        guard let walker = FileManager.default.enumerator(atPath: directory) else {
            throw PublishSourceError("DIR: cannot read '\(directory)'")
        }
        var files: [File] = []
        while let relative = walker.nextObject() as? String {
            let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/" + relative)
            switch attributes[.type] as? FileAttributeType {
            case .typeDirectory?: continue
            case .typeRegular?:
                do { _ = try VersionFilePath(relative) } catch { throw PublishSourceError("DIR: \(error)") }
                files.append(File(path: relative, size: (attributes[.size] as? NSNumber)?.int64Value ?? 0))
            default:
                throw PublishSourceError(
                    "DIR: '\(relative)' is not a regular file (a symbolic link or a device); a version holds regular files only")
            }
        }
        guard !files.isEmpty, files.count <= 64 else {
            throw PublishSourceError("DIR: a version has 1 to 64 files, '\(directory)' has \(files.count)")
        }
        return files.sorted { $0.path < $1.path }
    }

    /// Sends one file in 1 MiB pieces.
    public static func stream(
        _ file: File, index: UInt32, from directory: String, to writer: RPCRequestWriter<Icbd_Replicator_V1_PublishRequest>
    ) async throws {
        guard let handle = FileHandle(forReadingAtPath: directory + "/" + file.path) else {
            throw PublishSourceError("cannot read '\(file.path)'")
        }
        defer { try? handle.close() }
        var offset: Int64 = 0
        while offset < file.size {
            guard let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else {
                throw PublishSourceError("'\(file.path)' shrank while it was being published")
            }
            try await writer.write(.with { $0.file = index; $0.offset = offset }, payload: ByteBuffer(bytes: data))
            offset += Int64(data.count)
        }
    }
}

/// A source directory that cannot be published as it is (exit 1: the message says why).
public struct PublishSourceError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
