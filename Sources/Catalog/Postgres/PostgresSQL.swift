import Foundation
import Logging
import NIOCore
import PostgresNIO

/// A value bound to or read from a PostgreSQL statement, in the few types the catalog's
/// schema uses (BIGINT, TEXT, BYTEA, BOOLEAN). NULL is `nil` around it.
enum PGValue: Sendable, Equatable {
    case int(Int64)
    case text(String)
    case bytes([UInt8])
    case bool(Bool)
}

/// Something that can be bound as a statement argument.
protocol PGArgument: Sendable {
    var pgValue: PGValue? { get }
}

extension Int64: PGArgument { var pgValue: PGValue? { .int(self) } }
extension Int: PGArgument { var pgValue: PGValue? { .int(Int64(self)) } }
extension String: PGArgument { var pgValue: PGValue? { .text(self) } }
extension Bool: PGArgument { var pgValue: PGValue? { .bool(self) } }
extension Data: PGArgument { var pgValue: PGValue? { .bytes([UInt8](self)) } }
extension Array: PGArgument where Element == UInt8 { var pgValue: PGValue? { .bytes(self) } }
extension Optional: PGArgument where Wrapped: PGArgument { var pgValue: PGValue? { self?.pgValue } }

/// Something a column can be read as.
protocol PGColumnDecodable {
    static func decode(_ value: PGValue?, column: String) throws -> Self
}

extension Int64: PGColumnDecodable {
    static func decode(_ value: PGValue?, column: String) throws -> Int64 {
        switch value {
        case .int(let number): return number
        case .bool(let flag): return flag ? 1 : 0
        case .text(let text):
            // NUMERIC results (SUM of BIGINTs) arrive as text.
            guard let number = Int64(text) else { throw PGRow.mismatch(column, value, "an integer") }
            return number
        default: throw PGRow.mismatch(column, value, "an integer")
        }
    }
}

extension Int: PGColumnDecodable {
    static func decode(_ value: PGValue?, column: String) throws -> Int {
        let number = try Int64.decode(value, column: column)
        guard let int = Int(exactly: number) else { throw PGRow.mismatch(column, value, "an Int") }
        return int
    }
}

extension String: PGColumnDecodable {
    static func decode(_ value: PGValue?, column: String) throws -> String {
        guard case .text(let text) = value else { throw PGRow.mismatch(column, value, "text") }
        return text
    }
}

extension Bool: PGColumnDecodable {
    static func decode(_ value: PGValue?, column: String) throws -> Bool {
        switch value {
        case .bool(let flag): return flag
        case .int(let number): return number != 0
        default: throw PGRow.mismatch(column, value, "a boolean")
        }
    }
}

extension Data: PGColumnDecodable {
    static func decode(_ value: PGValue?, column: String) throws -> Data {
        guard case .bytes(let bytes) = value else { throw PGRow.mismatch(column, value, "bytes") }
        return Data(bytes)
    }
}

extension Optional: PGColumnDecodable where Wrapped: PGColumnDecodable {
    static func decode(_ value: PGValue?, column: String) throws -> Wrapped? {
        guard let value else { return nil }
        return try Wrapped.decode(value, column: column)
    }
}

/// One result row, read into memory by column name.
struct PGRow: Sendable {
    private(set) var values: [String: PGValue?] = [:]
    private(set) var first: PGValue?

    init(_ row: PostgresRow) throws {
        var isFirst = true
        for cell in row {
            let value = try Self.value(of: cell)
            values[cell.columnName] = .some(value)
            if isFirst {
                first = value
                isFirst = false
            }
        }
    }

    func decode<T: PGColumnDecodable>(forColumn column: String) throws -> T {
        guard let value = values[column] else {
            throw CatalogStoreError(.storage, "the catalog database returned no column '\(column)'")
        }
        return try T.decode(value, column: column)
    }

    /// The first column (scalar queries).
    func scalar<T: PGColumnDecodable>(_ type: T.Type = T.self) throws -> T {
        try T.decode(first, column: "first column")
    }

    private static func value(of cell: PostgresCell) throws -> PGValue? {
        guard cell.bytes != nil else { return nil }
        switch cell.dataType {
        case .int8, .int4, .int2: return .int(try cell.decode(Int64.self))
        case .bool: return .bool(try cell.decode(Bool.self))
        case .bytea: return .bytes(Array(try cell.decode(ByteBuffer.self).readableBytesView))
        default: return .text(try cell.decode(String.self))
        }
    }

    static func mismatch(_ column: String, _ value: PGValue?, _ expected: String) -> CatalogStoreError {
        CatalogStoreError(
            .storage, "the catalog database holds a damaged row: \(column) is \(value.map { "\($0)" } ?? "NULL"), not \(expected)")
    }
}

/// Statements on one connection inside one transaction. SQL is written with SQLite-style
/// placeholders (`?` in order, or `?N`), turned into PostgreSQL's `$N` here, so that the
/// statements read like the SQLite store's.
struct PGTransaction {
    let connection: PostgresConnection
    let logger: Logger

    func fetchAll(sql: String, arguments: [any PGArgument] = []) async throws -> [PGRow] {
        let rows = try await connection.query(Self.query(sql, arguments), logger: logger)
        var result: [PGRow] = []
        for try await row in rows { result.append(try PGRow(row)) }
        return result
    }

    func fetchOne(sql: String, arguments: [any PGArgument] = []) async throws -> PGRow? {
        try await fetchAll(sql: sql, arguments: arguments).first
    }

    /// The first column of the first row; nil when there is no row or it is NULL.
    func scalar<T: PGColumnDecodable>(_ type: T.Type, sql: String, arguments: [any PGArgument] = []) async throws -> T? {
        guard let row = try await fetchOne(sql: sql, arguments: arguments) else { return nil }
        return try row.scalar(T?.self)
    }

    func execute(sql: String, arguments: [any PGArgument] = []) async throws {
        try await connection.query(Self.query(sql, arguments), logger: logger)
    }

    static func query(_ sql: String, _ arguments: [any PGArgument]) -> PostgresQuery {
        var bindings = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument.pgValue {
            case nil: bindings.appendNull()
            case .int(let number): bindings.append(number)
            case .text(let text): bindings.append(text)
            case .bool(let flag): bindings.append(flag)
            case .bytes(let bytes): bindings.append(ByteBuffer(bytes: bytes))
            }
        }
        return PostgresQuery(unsafeSQL: placeholders(sql), binds: bindings)
    }

    /// `?` → `$1`, `$2`…; `?N` → `$N`; untouched inside quoted literals.
    static func placeholders(_ sql: String) -> String {
        var result = ""
        result.reserveCapacity(sql.count + 16)
        var next = 1
        var inQuote = false
        var characters = sql.makeIterator()
        var pending: Character? = characters.next()
        while let character = pending {
            pending = characters.next()
            if character == "'" { inQuote.toggle() }
            guard character == "?", !inQuote else {
                result.append(character)
                continue
            }
            var digits = ""
            while let digit = pending, digit.isASCII, digit.isNumber {
                digits.append(digit)
                pending = characters.next()
            }
            if digits.isEmpty {
                result += "$\(next)"
                next += 1
            } else {
                result += "$" + digits
            }
        }
        return result
    }
}
