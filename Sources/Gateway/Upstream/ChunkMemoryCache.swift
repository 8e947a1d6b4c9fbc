import NIOCore
import Synchronization

/// The most recently served chunks, by hash, up to `capacityBytes` in memory: what a boot storm
/// reads over and over (kernels, initrds, the first blocks of a disk) is served without an
/// upstream read. Least recently used chunks go first.
final class ChunkMemoryCache: Sendable {
    private struct Entry {
        var buffer: ByteBuffer
        var lastUse: UInt64
    }

    private struct State {
        var entries: [[UInt8]: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
        var hits: Int64 = 0
        var misses: Int64 = 0
    }

    private let state = Mutex(State())
    let capacityBytes: Int

    init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    func get(_ hash: [UInt8]) -> ByteBuffer? {
        state.withLock { state in
            state.clock += 1
            guard var entry = state.entries[hash] else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            entry.lastUse = state.clock
            state.entries[hash] = entry
            return entry.buffer
        }
    }

    /// Every one of `hashes`, in order, when all are held (each counts as a hit); else nil,
    /// counting nothing.
    func getAll(_ hashes: [[UInt8]]) -> [ByteBuffer]? {
        state.withLock { state in
            guard hashes.allSatisfy({ state.entries[$0] != nil }) else { return nil }
            return hashes.compactMap { hash in
                state.clock += 1
                state.hits += 1
                state.entries[hash]?.lastUse = state.clock
                return state.entries[hash]?.buffer
            }
        }
    }

    func contains(_ hash: [UInt8]) -> Bool {
        state.withLock { $0.entries[hash] != nil }
    }

    func put(_ hash: [UInt8], _ buffer: ByteBuffer) {
        guard buffer.readableBytes <= capacityBytes / 4 else { return }
        state.withLock { state in
            state.clock += 1
            if let old = state.entries.updateValue(Entry(buffer: buffer, lastUse: state.clock), forKey: hash) {
                state.bytes -= old.buffer.readableBytes
            }
            state.bytes += buffer.readableBytes
            guard state.bytes > capacityBytes else { return }
            // Evict the least recently used eighth in one pass (amortises the scan).
            let victims = state.entries.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(max(1, state.entries.count / 8))
            for (key, entry) in victims where state.bytes > capacityBytes * 7 / 8 || key != hash {
                state.entries[key] = nil
                state.bytes -= entry.buffer.readableBytes
                if state.bytes <= capacityBytes * 7 / 8 { break }
            }
        }
    }

    /// Hits and misses since start, and bytes held.
    var statistics: (hits: Int64, misses: Int64, bytes: Int) {
        state.withLock { ($0.hits, $0.misses, $0.bytes) }
    }
}
