import Logging
import ServiceLifecycle
import Synchronization

/// The services a benchmark runs in its own process (catalog, repository, cache, gateway),
/// each in a `ServiceGroup` of its own, and stopped the way the binary stops on SIGTERM:
/// gracefully, newest first, waiting for every one to finish. (Cancelling them instead left
/// HTTP connections that never closed and a benchmark that never returned.)
final class BenchServices: Sendable {
    private let logger: Logger
    private let started: AsyncStream<ServiceGroup>.Continuation
    private let groups = Mutex<[ServiceGroup]>([])

    private init(logger: Logger, started: AsyncStream<ServiceGroup>.Continuation) {
        self.logger = logger
        self.started = started
    }

    /// Starts `service` in the background; it runs until `body` of ``with(logger:_:)`` returns.
    func start(_ service: some Service) {
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: service)], gracefulShutdownSignals: [], logger: logger))
        groups.withLock { $0.append(group) }
        started.yield(group)
    }

    /// Runs `body` with a place to start services, then stops them all and waits for them,
    /// whether `body` returned or threw.
    static func with<R: Sendable>(logger: Logger, _ body: (BenchServices) async throws -> R) async throws -> R {
        let (stream, continuation) = AsyncStream.makeStream(of: ServiceGroup.self)
        let services = BenchServices(logger: logger, started: continuation)
        return try await withThrowingTaskGroup(of: Void.self) { outer in
            outer.addTask {
                try await withThrowingDiscardingTaskGroup { running in
                    for await group in stream { running.addTask { try await group.run() } }
                }
            }
            let result: Result<R, any Error>
            do { result = .success(try await body(services)) } catch { result = .failure(error) }
            await services.stopAll()
            try await outer.waitForAll()
            return try result.get()
        }
    }

    private func stopAll() async {
        started.finish()
        for group in groups.withLock({ $0 }).reversed() { await group.triggerGracefulShutdown() }
    }
}
