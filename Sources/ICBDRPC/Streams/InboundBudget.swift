import Synchronization

/// The request message bytes one connection holds for its calls that no handler has taken yet,
/// bounded across all its streams (``RPCServerConfiguration/maximumBufferedRequestBytes``).
///
/// Flow control bounds each stream (a window plus one message, up to 16 MiB), but a connection
/// may open 1024 streams: without this bound one peer could make the server hold 16 GiB.
package final class InboundBudget: Sendable {
    package let limit: Int
    private let held = Atomic<Int>(0)

    package init(limit: Int) {
        self.limit = limit
    }

    /// Bytes taken and not given back.
    package var taken: Int { held.load(ordering: .relaxed) }

    /// Takes `bytes`; false, and nothing taken, when they do not fit.
    package func take(_ bytes: Int) -> Bool {
        guard held.wrappingAdd(bytes, ordering: .relaxed).newValue <= limit else {
            held.wrappingSubtract(bytes, ordering: .relaxed)
            return false
        }
        return true
    }

    package func giveBack(_ bytes: Int) {
        held.wrappingSubtract(bytes, ordering: .relaxed)
    }
}
