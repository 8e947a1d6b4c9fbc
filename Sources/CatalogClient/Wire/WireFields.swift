import Foundation
import ICBDCore
import ICBDRPC

/// Turns request fields into domain values; anything that breaks a rule is INVALID_ARGUMENT
/// with a message that names the field and the problem.
package enum WireFields {
    package static func invalid(_ field: String, _ problem: some CustomStringConvertible) -> RPCError {
        RPCError(code: .invalidArgument, message: "\(field): \(problem)")
    }

    package static func name(_ text: String, _ field: String) throws -> Name {
        do { return try Name(text) } catch { throw invalid(field, error) }
    }

    /// Empty means "not given".
    package static func optionalName(_ text: String, _ field: String) throws -> Name? {
        text.isEmpty ? nil : try name(text, field)
    }

    package static func positive(_ value: Int64, _ field: String) throws -> Int64 {
        guard value > 0 else { throw invalid(field, "must be a number from 1 up, not \(value)") }
        return value
    }

    /// 0 means "not given".
    package static func optionalPositive(_ value: Int64, _ field: String) throws -> Int64? {
        value == 0 ? nil : try positive(value, field)
    }

    package static func nonNegative(_ value: Int64, _ field: String) throws -> Int64 {
        guard value >= 0 else { throw invalid(field, "must not be negative, not \(value)") }
        return value
    }

    package static func text(_ text: String, _ field: String, maximumLength: Int = 1024) throws -> String {
        guard text.utf8.count <= maximumLength else { throw invalid(field, "is longer than \(maximumLength) bytes") }
        return text
    }

    package static func cidr(_ text: String, _ field: String) throws -> CIDR {
        do { return try CIDR(parsing: text) } catch { throw invalid(field, error) }
    }

    package static func mac(_ text: String, _ field: String) throws -> MACAddress {
        do { return try MACAddress(parsing: text) } catch { throw invalid(field, error) }
    }

    package static func optionalHostPort(_ text: String, _ field: String) throws -> HostPort? {
        guard !text.isEmpty else { return nil }
        do { return try HostPort(parsing: text) } catch { throw invalid(field, error) }
    }

    package static func reference(_ text: String, _ field: String) throws -> VersionReference {
        do { return try VersionReference(parsing: text) } catch { throw invalid(field, error) }
    }

    package static func path(_ text: String, _ field: String) throws -> VersionFilePath {
        do { return try VersionFilePath(text) } catch { throw invalid(field, error) }
    }

    package static func digest(_ data: Data, _ field: String) throws -> [UInt8] {
        guard data.count == 32 else { throw invalid(field, "must be a 32-byte SHA-256, not \(data.count) bytes") }
        return [UInt8](data)
    }

    /// A list with at most `maximum` items.
    package static func bounded<T>(_ items: [T], _ field: String, maximum: Int) throws -> [T] {
        guard items.count <= maximum else { throw invalid(field, "has \(items.count) items; at most \(maximum) are allowed") }
        return items
    }
}
