import Foundation

/// One result row, read by column name in the types the schema uses (NULL is nil). Each
/// executor decodes with its library's typed decoding; a value of another type is a damaged
/// row (`.storage`), never a crash.
protocol SQLRow {
    func integer(_ column: String) throws -> Int64?
    func text(_ column: String) throws -> String?
    func blob(_ column: String) throws -> Data?
    func boolean(_ column: String) throws -> Bool?
}

/// The statements of one open transaction, on whichever database runs it.
protocol SQLTransaction: Sendable {
    /// Runs `statement` and reads each row with `read`, before the rows leave the database's side.
    func fetchAll<T: Sendable>(_ statement: SQLStatement, _ read: @escaping @Sendable (any SQLRow) throws -> T) async throws -> [T]
    /// Runs `statement`, discarding any rows.
    func execute(_ statement: SQLStatement) async throws
}

extension SQLTransaction {
    func fetchOne<T: Sendable>(_ statement: SQLStatement, _ read: @escaping @Sendable (any SQLRow) throws -> T) async throws -> T? {
        try await fetchAll(statement, read).first
    }

    /// The integer column `value` of the first row; nil when there is no row or it is NULL.
    func integer(_ statement: SQLStatement) async throws -> Int64? {
        try await fetchOne(statement) { try $0.integer("value") } ?? nil
    }

    /// The boolean column `value` of the first row; false when there is no row or it is NULL.
    func boolean(_ statement: SQLStatement) async throws -> Bool {
        let value: Bool?? = try await fetchOne(statement) { try $0.boolean("value") }
        return (value ?? nil) ?? false
    }

    /// The blob column `value` of the first row; nil when there is no row or it is NULL.
    func blob(_ statement: SQLStatement) async throws -> Data? {
        try await fetchOne(statement) { try $0.blob("value") } ?? nil
    }
}

extension SQLRow {
    /// A column that must not be NULL.
    func required<T>(_ column: String, _ read: (String) throws -> T?) throws -> T {
        guard let value = try read(column) else { throw CatalogRows.damaged("\(column) is NULL") }
        return value
    }

    func integer(required column: String) throws -> Int64 { try required(column, integer) }
    func text(required column: String) throws -> String { try required(column, text) }
    func blob(required column: String) throws -> Data { try required(column, blob) }
    func boolean(required column: String) throws -> Bool { try required(column, boolean) }
}
