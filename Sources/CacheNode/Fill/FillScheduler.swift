import ICBDRPC
import NIOCore
import Synchronization

/// Single-flight, batched, bounded upstream fills.
///
/// Every chunk being fetched has one *flight*; a miss joins the flight of its chunk if there is
/// one, so any number of concurrent misses of a chunk cause one upstream fetch. Flights wait in
/// two queues, demand before warm; a fixed number of workers (``nextBatch(after:)``) take them in
/// batches of one group, so the number of upstream calls in flight is bounded by the workers,
/// and at most `warmWorkers` of them work on warming.
///
/// A flight belongs to the scheduler, not to its callers: a caller that goes away does not cancel
/// the fetch others wait for.
final class FillScheduler: Sendable {
    typealias Waiter = CheckedContinuation<ByteBuffer?, any Error>

    private struct Flight {
        var want: ChunkWant
        var waiters: [UInt64: Waiter] = [:]
        var queuedAsDemand: Bool
        var taken = false
    }

    private struct State {
        var flights: [ChunkDigest: Flight] = [:]
        var demand = PendingFills()
        var warm = PendingFills()
        var idleWorkers: [UInt64: CheckedContinuation<FillBatch?, Never>] = [:]
        var warmBatchesInFlight = 0
        var nextID: UInt64 = 0
        var finished = false
    }

    private let state = Mutex(State())
    private let store: ChunkStore
    private let metrics: CacheMetrics
    let batchSize: Int
    let warmWorkers: Int
    /// The most chunks waiting for warming; more are not queued.
    let warmQueueLimit: Int

    init(store: ChunkStore, metrics: CacheMetrics, batchSize: Int, warmWorkers: Int, warmQueueLimit: Int = 1 << 20) {
        self.store = store
        self.metrics = metrics
        self.batchSize = batchSize
        self.warmWorkers = warmWorkers
        self.warmQueueLimit = warmQueueLimit
    }

    /// Fetches `want` (joining its flight if one is under way) and returns its verified bytes,
    /// or nil when the store holds it already (read it there). `prefetched`: the caller started
    /// this flight itself with ``prefetch(_:priority:)`` (waiting for it is no join).
    func chunk(_ want: ChunkWant, prefetched: Bool = false) async throws -> ByteBuffer? {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: Waiter) in
                let action = state.withLock { state -> WaiterAction in
                    if state.finished { return .fail(RPCError(code: .unavailable, message: "the cache is shutting down")) }
                    if state.flights[want.digest] != nil {
                        state.flights[want.digest]?.waiters[id] = waiter
                        if !prefetched { metrics.joined() }
                        return .wait(promote(want, in: &state))
                    }
                    if store.contains(want.digest) { return .resumeNil }
                    var flight = Flight(want: want, queuedAsDemand: true)
                    flight.waiters[id] = waiter
                    state.flights[want.digest] = flight
                    state.demand.append(want)
                    return .wait(dispatch(in: &state))
                }
                switch action {
                case .resumeNil: waiter.resume(returning: nil)
                case .fail(let error): waiter.resume(throwing: error)
                case .wait(let dispatched): dispatched.run()
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.flights[want.digest]?.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Starts flights for `wants` not held and not in flight, without waiting for them.
    /// Returns the digests whose flights it started (joining one under way counts as a join).
    @discardableResult
    func prefetch(_ wants: some Sequence<ChunkWant>, priority: FillBatch.Priority) -> Set<ChunkDigest> {
        let (queued, dispatched) = state.withLock { state -> (Set<ChunkDigest>, Dispatched) in
            guard !state.finished else { return ([], Dispatched()) }
            var queued: Set<ChunkDigest> = []
            for want in wants {
                if state.flights[want.digest] != nil {
                    if priority == .demand {
                        _ = promote(want, in: &state)
                        metrics.joined()
                    }
                    continue
                }
                if store.contains(want.digest) { continue }
                if priority == .warm && state.warm.count >= warmQueueLimit { break }
                state.flights[want.digest] = Flight(want: want, queuedAsDemand: priority == .demand)
                if priority == .demand { state.demand.append(want) } else { state.warm.append(want) }
                queued.insert(want.digest)
            }
            return (queued, dispatch(in: &state))
        }
        dispatched.run()
        return queued
    }

    /// The next batch for a worker to fetch (waiting for one); nil once the scheduler finished.
    /// `previous` is the batch the worker just completed.
    func nextBatch(after previous: FillBatch?) async -> FillBatch? {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (worker: CheckedContinuation<FillBatch?, Never>) in
                let action = state.withLock { state -> (FillBatch?, Bool, Dispatched) in
                    if previous?.priority == .warm { state.warmBatchesInFlight -= 1 }
                    if state.finished { return (nil, true, Dispatched()) }
                    if let batch = takeBatch(in: &state) { return (batch, true, dispatch(in: &state)) }
                    state.idleWorkers[id] = worker
                    return (nil, false, Dispatched())
                }
                if action.1 { worker.resume(returning: action.0) }
                action.2.run()
            }
        } onCancel: {
            let worker = state.withLock { $0.idleWorkers.removeValue(forKey: id) }
            worker?.resume(returning: nil)
        }
    }

    /// Ends the flight of `digest`: its waiters get the bytes or the error.
    func complete(_ digest: ChunkDigest, with result: Result<ByteBuffer, RPCError>) {
        guard let flight = state.withLock({ $0.flights.removeValue(forKey: digest) }) else { return }
        for waiter in flight.waiters.values {
            waiter.resume(with: result.map { Optional($0) }.mapError { $0 as any Error })
        }
    }

    /// Fails every flight and releases idle workers (the service stops).
    func finish() {
        let (flights, workers) = state.withLock { state in
            state.finished = true
            defer {
                state.flights = [:]
                state.idleWorkers = [:]
            }
            return (Array(state.flights.values), Array(state.idleWorkers.values))
        }
        for worker in workers { worker.resume(returning: nil) }
        for flight in flights {
            for waiter in flight.waiters.values {
                waiter.resume(throwing: RPCError(code: .unavailable, message: "the cache is shutting down"))
            }
        }
    }

    /// Chunks in flight or queued (for tests and health).
    var flightCount: Int { state.withLock { $0.flights.count } }

    // MARK: Inside the lock

    private enum WaiterAction {
        case resumeNil
        case fail(RPCError)
        case wait(Dispatched)
    }

    /// Batches handed to idle workers, resumed once the lock is released.
    private struct Dispatched {
        var handoffs: [(CheckedContinuation<FillBatch?, Never>, FillBatch)] = []

        func run() {
            for (worker, batch) in handoffs { worker.resume(returning: batch) }
        }
    }

    /// A demand for a chunk queued for warming moves it to the demand queue.
    private func promote(_ want: ChunkWant, in state: inout State) -> Dispatched {
        guard let flight = state.flights[want.digest], !flight.queuedAsDemand, !flight.taken else { return Dispatched() }
        state.flights[want.digest]?.queuedAsDemand = true
        state.demand.append(flight.want)
        return dispatch(in: &state)
    }

    private func dispatch(in state: inout State) -> Dispatched {
        var dispatched = Dispatched()
        while let id = state.idleWorkers.keys.first, let batch = takeBatch(in: &state) {
            if let worker = state.idleWorkers.removeValue(forKey: id) { dispatched.handoffs.append((worker, batch)) }
        }
        return dispatched
    }

    private func takeBatch(in state: inout State) -> FillBatch? {
        if let (group, wants) = take(from: \.demand, in: &state) {
            return FillBatch(group: group, wants: wants, priority: .demand)
        }
        guard state.warmBatchesInFlight < warmWorkers, let (group, wants) = take(from: \.warm, in: &state) else { return nil }
        state.warmBatchesInFlight += 1
        return FillBatch(group: group, wants: wants, priority: .warm)
    }

    /// Takes a batch of flights not taken yet from one queue and marks them taken.
    private func take(from queue: WritableKeyPath<State, PendingFills>, in state: inout State) -> (FillGroup, [ChunkWant])? {
        // The queue leaves the state while the filter reads the flights (no overlapping access).
        var pending = PendingFills()
        swap(&pending, &state[keyPath: queue])
        let taken = pending.takeBatch(limit: batchSize) { want in
            state.flights[want.digest].map { !$0.taken } ?? false
        }
        swap(&pending, &state[keyPath: queue])
        guard let (group, wants) = taken else { return nil }
        for want in wants { state.flights[want.digest]?.taken = true }
        return (group, wants)
    }
}
