import ICBDCore
import ICBDRPC
import CatalogClient

/// Where a page of GetImage starts: its versions come first (by number), then its placements
/// (by version and node). The token is `v` or `p` and the key of the last item given.
enum ImagePagePosition: Equatable {
    case start
    /// After the version whose key is given (nil: from the first).
    case versions(after: String?)
    /// After the placement whose key is given (nil: from the first).
    case placements(after: String?)

    init(token: String?) throws {
        guard let token else {
            self = .start
            return
        }
        let key = String(token.dropFirst())
        switch token.first {
        case "v": self = .versions(after: key.isEmpty ? nil : key)
        case "p": self = .placements(after: key.isEmpty ? nil : key)
        default: throw WireFields.invalid("page_token", "is not a token this catalog handed out; read the image again from the first page")
        }
    }

    var token: String {
        switch self {
        case .start: ""
        case .versions(let after): "v" + (after ?? "")
        case .placements(let after): "p" + (after ?? "")
        }
    }

    /// The versions this page lists from (`.some(nil)`: all), or nil when it lists none.
    var versionsAfter: String?? {
        switch self {
        case .start: .some(nil)
        case .versions(let after): .some(after)
        case .placements: nil
        }
    }

    /// The placements this page lists from, when it gets that far (nil: from the first).
    var placementsAfter: String? {
        if case .placements(let after) = self { return after }
        return nil
    }

    /// Numbers padded to 19 digits, so that keys order bytewise as the numbers do.
    static func key(_ version: VersionRecord) -> String { padded(version.number) }
    static func key(_ placement: PlacementRecord) -> String { "\(padded(placement.version))/\(placement.node)" }

    private static func padded(_ number: Int64) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 19 - digits.count)) + digits
    }
}
