import Foundation
import ICBDCore

/// The validators of a file served over HTTP and the decisions RFC 9110 §13 derives from a
/// request's conditional headers. Plain values, no I/O.
struct EntityValidators: Sendable, Equatable {
    /// The strong entity tag, quoted: `"<manifest sha256 hex>"`.
    let etag: String
    /// When the version was created (whole seconds matter on the wire).
    let lastModified: Date

    init(manifestDigest: [UInt8], lastModified: Date) {
        self.etag = "\"\(manifestDigest.hexString)\""
        self.lastModified = lastModified
    }

    /// `If-None-Match`: true when the client's copy is current (answer 304). `*` matches any
    /// existing file; tags compare weakly (RFC 9110 §13.1.2), so `W/"x"` matches `"x"`.
    func notModified(ifNoneMatch header: String?) -> Bool {
        guard let header else { return false }
        return Self.entityTags(in: header).contains { $0 == "*" || Self.opaque($0) == Self.opaque(etag) }
    }

    /// `If-Range`: whether the range may be honoured. An entity tag must match strongly; a
    /// date must equal Last-Modified. Otherwise the whole body is sent (200).
    func rangeApplies(ifRange header: String?) -> Bool {
        guard let header = header.map({ String($0.trimmingSpaces) }), !header.isEmpty else { return true }
        if header.hasPrefix("\"") || header.hasPrefix("W/") {
            return header == etag  // weak tags never match strongly
        }
        guard let date = HTTPDate.parse(header) else { return false }
        return Int64(date.timeIntervalSince1970) == Int64(lastModified.timeIntervalSince1970)
    }

    /// The tags of a comma-separated list, as written (quotes and any `W/` kept).
    static func entityTags(in header: String) -> [String] {
        header.split(separator: ",").map { String($0.trimmingSpaces) }.filter { !$0.isEmpty }
    }

    private static func opaque(_ tag: String) -> String {
        tag.hasPrefix("W/") ? String(tag.dropFirst(2)) : tag
    }
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the one date format HTTP servers send.
enum HTTPDate {
    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "GMT") ?? .current
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        func two(_ value: Int?) -> String { let value = value ?? 0; return value < 10 ? "0\(value)" : "\(value)" }
        return "\(weekdays[(parts.weekday ?? 1) - 1]), \(two(parts.day)) \(months[(parts.month ?? 1) - 1]) \(parts.year ?? 1970) "
            + "\(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) GMT"
    }

    /// Parses IMF-fixdate only; nil otherwise.
    static func parse(_ text: String) -> Date? {
        let fields = text.split(separator: " ")
        guard fields.count == 6, fields[5] == "GMT", let day = Int(fields[1]), let month = months.firstIndex(of: String(fields[2])),
            let year = Int(fields[3])
        else { return nil }
        let clock = fields[4].split(separator: ":")
        guard clock.count == 3, let hour = Int(clock[0]), let minute = Int(clock[1]), let second = Int(clock[2]) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "GMT") ?? .current
        return calendar.date(from: DateComponents(year: year, month: month + 1, day: day, hour: hour, minute: minute, second: second))
    }
}
