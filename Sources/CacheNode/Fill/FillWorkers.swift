import ServiceLifecycle

/// The cache's upstream workers: `count` of them take batches from the fill scheduler and fetch
/// them. A `Service`: at graceful shutdown the scheduler finishes — flights waiting fail, idle
/// workers return — and fetches in flight are cancelled.
struct FillWorkers: Service {
    let cache: ChunkCache
    let fetcher: UpstreamFetcher
    let count: Int

    func run() async {
        await cancelWhenGracefulShutdown {
            await withTaskCancellationHandler {
                await withDiscardingTaskGroup { group in
                    for _ in 0..<max(1, count) {
                        group.addTask { await cache.runWorker(fetcher: fetcher) }
                    }
                }
            } onCancel: {
                cache.scheduler.finish()
            }
        }
    }
}
