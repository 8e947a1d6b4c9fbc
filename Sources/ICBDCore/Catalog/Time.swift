import Foundation

extension Date {
    /// Times are kept and sent as whole milliseconds since the Unix epoch.
    public init(milliseconds: Int64) { self.init(timeIntervalSince1970: Double(milliseconds) / 1000) }
    public var milliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}
