import Foundation
import ICBDCore

/// A value bound to a statement, in the types the catalog's schema uses. NULL keeps its type:
/// PostgreSQL must know the type of every parameter, also of a NULL one.
enum SQLValue: Sendable {
    case integer(Int64?)
    case text(String?)
    case blob(Data)
    case boolean(Bool)
}

/// One SQL statement, written once for both databases: its text and, apart from it, the values
/// bound to it. Written with interpolation — `"SELECT * FROM images WHERE name = \(name)"` binds
/// `name` as a parameter, it never becomes part of the text. Each executor turns the parts into
/// its library's statement (GRDB's `?` arguments, postgres-nio's `PostgresQuery` interpolation).
struct SQLStatement: Sendable, ExpressibleByStringInterpolation {
    enum Part: Sendable {
        case sql(String)
        case value(SQLValue)
    }

    var parts: [Part]

    init(stringLiteral sql: String) {
        parts = [.sql(sql)]
    }

    init(stringInterpolation: Interpolation) {
        parts = stringInterpolation.parts
    }

    /// The text with `placeholder(n)` (n from 1) where the values go, and the values in order.
    func rendered(placeholder: (Int) -> String) -> (sql: String, values: [SQLValue]) {
        var sql = ""
        var values: [SQLValue] = []
        for part in parts {
            switch part {
            case .sql(let text): sql += text
            case .value(let value):
                values.append(value)
                sql += placeholder(values.count)
            }
        }
        return (sql, values)
    }

    struct Interpolation: StringInterpolationProtocol {
        var parts: [Part] = []

        init(literalCapacity: Int, interpolationCount: Int) {
            parts.reserveCapacity(2 * interpolationCount + 1)
        }

        mutating func appendLiteral(_ literal: String) { parts.append(.sql(literal)) }
        mutating func appendInterpolation(_ value: Int64?) { parts.append(.value(.integer(value))) }
        mutating func appendInterpolation(_ value: Int) { parts.append(.value(.integer(Int64(value)))) }
        mutating func appendInterpolation(_ value: String?) { parts.append(.value(.text(value))) }
        mutating func appendInterpolation(_ value: Bool) { parts.append(.value(.boolean(value))) }
        mutating func appendInterpolation(_ value: Data) { parts.append(.value(.blob(value))) }
        mutating func appendInterpolation(_ value: [UInt8]) { parts.append(.value(.blob(Data(value)))) }
        mutating func appendInterpolation(_ value: Name?) { appendInterpolation(value?.rawValue) }
        mutating func appendInterpolation(_ value: Revision) { appendInterpolation(value.rawValue) }
        /// A point in time, stored as milliseconds since 1970.
        mutating func appendInterpolation(_ value: Date) { appendInterpolation(value.milliseconds) }
        /// A value of one of the model's enumerations (a state, a role), stored as its raw text.
        mutating func appendInterpolation<Value: RawRepresentable>(_ value: Value?) where Value.RawValue == String {
            appendInterpolation(value?.rawValue)
        }
    }
}
