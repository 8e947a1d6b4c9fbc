extension Duration {
    /// The duration in whole milliseconds, rounded down (what the wire's `*_ms` fields carry).
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
