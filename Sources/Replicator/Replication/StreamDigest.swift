import Crypto

/// The whole-stream digest of a transfer (and of a resumed stream's prefix).
///
/// As a digest list (`digest_list` on the wire) it is the SHA-256 of the concatenated SHA-256s
/// of the stream's pieces, in order: every segment, and on a resume the skipped prefix cut into
/// pieces of the segment size from byte 0. Each side then hashes every byte once, for the
/// segment's digest, and the list is as strong as a hash of the bytes (a different stream
/// needs a collision in one of the two). Without it (an older peer), the SHA-256 of the bytes.
struct StreamDigest {
    let isList: Bool
    private var hasher = SHA256()

    init(list: Bool) { isList = list }

    /// Adds the next piece, given its bytes and their SHA-256.
    mutating func add(_ bytes: UnsafeRawBufferPointer, digest: [UInt8]) {
        if isList {
            hasher.update(data: digest)
        } else {
            hasher.update(bufferPointer: bytes)
        }
    }

    func finalize() -> [UInt8] { Array(hasher.finalize()) }
}
