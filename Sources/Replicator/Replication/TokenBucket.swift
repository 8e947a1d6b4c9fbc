/// A token bucket: `rate` bytes per second on average, bursts of at most `burst` bytes. Plain
/// value; the caller sleeps for what ``take(_:at:)`` returns.
struct TokenBucket: Sendable {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant?

    /// `rate` ≤ 0 means unlimited.
    init(bytesPerSecond rate: Int64, burst: Int) {
        self.rate = Double(max(0, rate))
        self.burst = Double(max(1, burst))
        self.tokens = Double(max(1, burst))
    }

    /// Takes `bytes` tokens (going into debt if needed) and returns how long to wait before
    /// sending them.
    mutating func take(_ bytes: Int, at now: ContinuousClock.Instant) -> Duration {
        guard rate > 0 else { return .zero }
        if let last {
            let elapsed = now - last
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            tokens = min(burst, tokens + seconds * rate)
        }
        last = now
        tokens -= Double(bytes)
        guard tokens < 0 else { return .zero }
        return .nanoseconds(Int64(-tokens / rate * 1e9))
    }
}
