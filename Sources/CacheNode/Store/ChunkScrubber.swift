import ServiceLifecycle

/// Re-verifies held chunks in the background, oldest verification first, at no more than
/// `bytesPerSecond` of hashing (a bounded share of one core), so that corruption appearing on
/// disk after a chunk was verified is found without every read paying for SHA-256. A
/// `Service`: it stops at graceful shutdown.
struct ChunkScrubber: Service {
    let store: ChunkStore
    let bytesPerSecond: Int
    /// How long it waits when nothing is due before asking again (dueness comes with time).
    var idlePause: Duration = .seconds(10)

    func run() async {
        await cancelWhenGracefulShutdown { await scrub() }
    }

    private func scrub() async {
        while !Task.isCancelled {
            let pause: Duration
            if let bytes = await store.scrubNext() {
                // Pacing by bytes hashed; a corrupt entry (0 bytes) still costs a small pause.
                pause = .seconds(Double(max(bytes, 64 << 10)) / Double(max(1, bytesPerSecond)))
            } else {
                pause = idlePause
            }
            do { try await Task.sleep(for: pause) } catch { return }
        }
    }
}
