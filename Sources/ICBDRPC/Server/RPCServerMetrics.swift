import CoreMetrics

/// What the server counts (swift-metrics; Prometheus where the process serves `--metrics`):
/// calls by method and status code, and their duration by method; connections refused over
/// the limit and handshakes that timed out. Methods the router does not know count as
/// `unknown`, so a client cannot grow the label set.
enum RPCServerMetrics {
    static func connectionRefused() {
        Counter(label: "icbd_rpc_server_connections_refused_total").increment()
    }

    static func handshakeTimedOut() {
        Counter(label: "icbd_rpc_server_handshake_timeouts_total").increment()
    }

    static func callEnded(method: String, code: RPCError.Code, after duration: Duration) {
        Counter(label: "icbd_rpc_server_calls_total", dimensions: [("method", method), ("code", code.description)]).increment()
        Timer(label: "icbd_rpc_server_call_seconds", dimensions: [("method", method)], preferredDisplayUnit: .seconds)
            .recordNanoseconds(duration.nanoseconds)
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating.
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : product.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}
