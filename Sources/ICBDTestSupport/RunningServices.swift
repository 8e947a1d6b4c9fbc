import Logging
import ServiceLifecycle

/// Runs `services` in one `ServiceGroup` while `body` runs, then stops them the way a process
/// stops on SIGTERM — graceful shutdown, last started first — and waits for every one to
/// finish, whether `body` returned or threw. A service that fails ends the group (the others
/// are shut down) and its error is thrown after `body`. With no services, `body` just runs.
public func withRunningServices<R: Sendable>(
    _ services: [any Service], logger: Logger, _ body: () async throws -> R
) async throws -> R {
    guard !services.isEmpty else { return try await body() }
    let group = ServiceGroup(services: services, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { running in
        running.addTask { try await group.run() }
        let result: Result<R, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        await group.triggerGracefulShutdown()
        try await running.waitForAll()
        return try result.get()
    }
}
