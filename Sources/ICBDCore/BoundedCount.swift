import Synchronization

/// A count that never passes its limit: how much of something a peer may make a service hold
/// at once (connections, calls, request bytes, admitted responses). ``take(_:)`` succeeds only
/// when the whole amount fits; what was taken is given back with ``giveBack(_:)``.
public final class BoundedCount: Sendable {
    public let limit: Int
    private let value = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// The amount taken and not given back.
    public var taken: Int { value.load(ordering: .relaxed) }

    /// Takes `amount`; false, and nothing taken, when it does not fit under the limit.
    public func take(_ amount: Int = 1) -> Bool {
        guard value.wrappingAdd(amount, ordering: .relaxed).newValue <= limit else {
            value.wrappingSubtract(amount, ordering: .relaxed)
            return false
        }
        return true
    }

    public func giveBack(_ amount: Int = 1) {
        value.wrappingSubtract(amount, ordering: .relaxed)
    }
}
