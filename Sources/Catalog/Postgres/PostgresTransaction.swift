import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The statements of one transaction on one PostgreSQL connection: each ``SQLStatement``
/// becomes a `PostgresQuery` through postgres-nio's interpolation, so every value is a bound
/// parameter (`$N`), and rows are read with its typed decoding.
struct PostgresTransaction: SQLTransaction {
    let connection: PostgresConnection
    let logger: Logger

    func fetchAll<T: Sendable>(_ statement: SQLStatement, _ read: @escaping @Sendable (any SQLRow) throws -> T) async throws -> [T] {
        let rows = try await connection.query(Self.query(statement), logger: logger)
        var results: [T] = []
        for try await row in rows { results.append(try read(PostgresCatalogRow(row: PostgresRandomAccessRow(row)))) }
        return results
    }

    func execute(_ statement: SQLStatement) async throws {
        try await connection.query(Self.query(statement), logger: logger)
    }

    static func query(_ statement: SQLStatement) -> PostgresQuery {
        var query = PostgresQuery.StringInterpolation(literalCapacity: 0, interpolationCount: statement.parts.count)
        for part in statement.parts {
            switch part {
            case .sql(let text): query.appendLiteral(text)
            case .value(.integer(let number)): query.appendInterpolation(number)
            case .value(.text(let text)): query.appendInterpolation(text)
            case .value(.blob(let bytes)): query.appendInterpolation(ByteBuffer(bytes: bytes))
            case .value(.boolean(let flag)): query.appendInterpolation(flag)
            }
        }
        return PostgresQuery(stringInterpolation: query)
    }
}

/// A PostgreSQL row, decoded with postgres-nio's typed decoding.
struct PostgresCatalogRow: SQLRow {
    let row: PostgresRandomAccessRow

    func integer(_ column: String) throws -> Int64? { try decode(column) }
    func text(_ column: String) throws -> String? { try decode(column) }
    func blob(_ column: String) throws -> Data? { try decode(column, as: ByteBuffer.self).map { Data($0.readableBytesView) } }
    func boolean(_ column: String) throws -> Bool? { try decode(column) }

    private func decode<Value: PostgresDecodable>(_ column: String, as type: Value.Type = Value.self) throws -> Value? {
        guard row.contains(column) else { throw CatalogStoreError(.storage, "the catalog database returned no column '\(column)'") }
        let cell = row[column]
        guard cell.bytes != nil else { return nil }
        do { return try cell.decode(Value.self) } catch {
            throw CatalogRows.damaged("\(column) is not a \(Value.self): \(error)")
        }
    }
}
