import Logging
import ServiceLifecycle

/// Runs `services` in a `ServiceGroup` while `body` runs, then shuts the group down gracefully
/// (the last service first) and waits for it, as a catalog process does at SIGTERM.
func withRunningServices<R: Sendable>(
    _ services: [any Service], logger: Logger = quietLogger(), _ body: () async throws -> R
) async throws -> R {
    guard !services.isEmpty else { return try await body() }
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services.map { .init(service: $0) }, logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result: Result<R, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return try result.get()
    }
}
