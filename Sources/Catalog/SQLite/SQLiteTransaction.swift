import Foundation
import GRDB

/// The statements of one transaction on one SQLite connection. The connection is the
/// transaction's alone until it ends (``SQLiteConnectionPool``), so nobody else's statements come
/// in between, and its queue is idle: each statement runs right away on the caller's thread
/// (GRDB's synchronous access), a function call as in any SQLite program. What can wait — a
/// writer's `BEGIN IMMEDIATE` on another process's lock, a commit's fsync — goes through GRDB's
/// async API instead (``SQLiteCatalogStore``), so no task's thread blocks on it. A statement
/// inside an open transaction waits for no lock: a writer holds the database's write lock since
/// its `BEGIN IMMEDIATE`, and a WAL reader reads its snapshot.
///
/// Each connection keeps its statements prepared (GRDB's statement cache, keyed by the SQL
/// text): the text of every ``SQLStatement`` is fixed where it is written — values are bound,
/// never part of it — so the cache holds at most one statement per place in the code.
struct SQLiteTransaction: SQLTransaction {
    let connection: DatabaseQueue

    func fetchAll<T: Sendable>(_ statement: SQLStatement, _ read: @escaping @Sendable (any SQLRow) throws -> T) async throws -> [T] {
        let (sql, arguments) = Self.prepared(statement)
        return try connection.inDatabase { db in
            var results: [T] = []
            let rows = try Row.fetchCursor(try db.cachedStatement(sql: sql), arguments: arguments)
            while let row = try rows.next() { results.append(try read(SQLiteRow(row: row))) }
            return results
        }
    }

    func execute(_ statement: SQLStatement) async throws {
        let (sql, arguments) = Self.prepared(statement)
        try connection.inDatabase { db in try db.cachedStatement(sql: sql).execute(arguments: arguments) }
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
