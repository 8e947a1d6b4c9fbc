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
/// Plain arithmetic on the proleptic Gregorian calendar (days from civil, H. Hinnant): a
/// `Calendar` per request cost more than the rest of a memory-served response.
enum HTTPDate {
    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let (days, secondOfDay) = seconds.floorDivided(by: 86_400)
        let (year, month, day) = civil(fromDays: days)
        // 1970-01-01 was a Thursday.
        let weekday = Int((days + 4).floorDivided(by: 7).remainder)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(weekdays[weekday]), \(two(day)) \(months[Int(month) - 1]) \(year) "
            + "\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) GMT"
    }

    /// Parses IMF-fixdate only; nil otherwise.
    static func parse(_ text: String) -> Date? {
        let fields = text.split(separator: " ")
        guard fields.count == 6, fields[5] == "GMT", let day = Int64(fields[1]), let month = months.firstIndex(of: String(fields[2])),
            let year = Int64(fields[3]), (1...9999).contains(year), (1...31).contains(day)  // bounded: no overflow on any header
        else { return nil }
        let clock = fields[4].split(separator: ":")
        guard clock.count == 3, let hour = Int64(clock[0]), let minute = Int64(clock[1]), let second = Int64(clock[2]),
            (0..<24).contains(hour), (0..<60).contains(minute), (0...60).contains(second)
        else { return nil }
        let days = daysFromCivil(year: year, month: Int64(month) + 1, day: day)
        return Date(timeIntervalSince1970: Double(days * 86_400 + hour * 3600 + minute * 60 + second))
    }

    /// Days since 1970-01-01 of a Gregorian date.
    private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shifted = month <= 2 ? year - 1 : year
        let era = shifted.floorDivided(by: 400).quotient
        let yearOfEra = shifted - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The Gregorian date `days` after 1970-01-01.
    private static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = shifted.floorDivided(by: 146_097).quotient
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Int64 {
    /// Quotient rounded towards minus infinity and the matching non-negative remainder.
    fileprivate func floorDivided(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let remainder = self % divisor
        return remainder < 0 ? (self / divisor - 1, remainder + divisor) : (self / divisor, remainder)
    }
}
