import Synchronization

/// Lets one log line through per interval and counts the lines held back meanwhile, so events a
/// peer can cause at will (refused connections, failed handshakes) cannot flood the log.
final class LogThrottle: Sendable {
    private struct State {
        var quietUntil: ContinuousClock.Instant?
        var heldBack = 0
    }

    private let interval: Duration
    private let state = Mutex(State())

    init(interval: Duration = .seconds(10)) {
        self.interval = interval
    }

    /// Nil when this line is to be held back; else how many lines were held back since the last
    /// one that went through.
    func admit() -> Int? {
        let now = ContinuousClock.now
        return state.withLock { state in
            if let quietUntil = state.quietUntil, now < quietUntil {
                state.heldBack += 1
                return nil
            }
            defer { state = State(quietUntil: now + interval, heldBack: 0) }
            return state.heldBack
        }
    }
}
