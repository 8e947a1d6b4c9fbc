import Logging

/// The log handler of the HTTP server's per-request loggers. Hummingbird gives every request a
/// copy of the server's logger with its own `hb.request.id`; `StreamLogHandler` renders all of
/// its metadata again on every such change, 2–3 % of the CPU of a memory-served response. This
/// one keeps the added metadata as given and hands it to the gateway's handler only when
/// something is logged.
struct RequestLogHandler: LogHandler {
    private var base: any LogHandler
    var metadata: Logger.Metadata = [:]

    init(base: any LogHandler) {
        self.base = base
    }

    var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        base.log(event: event)
    }
}
