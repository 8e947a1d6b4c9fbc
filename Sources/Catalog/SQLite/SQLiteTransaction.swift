import Foundation
import GRDB

/// The statements of one transaction on one SQLite connection, each run through GRDB's async
/// API. The connection is the transaction's alone until it ends (``SQLiteConnectionPool``), so
/// nobody else's statements come in between.
struct SQLiteTransaction: SQLTransaction {
    let connection: DatabaseQueue

    func fetchAll<T: Sendable>(_ statement: SQLStatement, _ read: @escaping @Sendable (any SQLRow) throws -> T) async throws -> [T] {
        let (sql, arguments) = Self.prepared(statement)
        return try await connection.writeWithoutTransaction { db in
            var results: [T] = []
            let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try rows.next() { results.append(try read(SQLiteRow(row: row))) }
            return results
        }
    }

    func execute(_ statement: SQLStatement) async throws {
        let (sql, arguments) = Self.prepared(statement)
        try await connection.writeWithoutTransaction { db in try db.execute(sql: sql, arguments: arguments) }
    }

    /// SQLite's `?` placeholders and GRDB's arguments.
    static func prepared(_ statement: SQLStatement) -> (String, StatementArguments) {
        let (sql, values) = statement.rendered { _ in "?" }
        let arguments: [DatabaseValue] = values.map { value in
            switch value {
            case .integer(let number): number.databaseValue
            case .text(let text): text.databaseValue
            case .blob(let bytes): bytes.databaseValue
            case .boolean(let flag): flag.databaseValue
            }
        }
        return (sql, StatementArguments(arguments))
    }
}

/// A GRDB row, decoded with GRDB's typed decoding.
struct SQLiteRow: SQLRow {
    let row: Row

    func integer(_ column: String) throws -> Int64? { try decode(column) }
    func text(_ column: String) throws -> String? { try decode(column) }
    func blob(_ column: String) throws -> Data? { try decode(column) }
    func boolean(_ column: String) throws -> Bool? { try decode(column) }

    private func decode<Value: DatabaseValueConvertible>(_ column: String) throws -> Value? {
        do { return try row.decode(Value?.self, forColumn: column) } catch {
            throw CatalogRows.damaged("\(column) is not a \(Value.self): \(error)")
        }
    }
}
