import Glibc

/// Reads `buffer.count` bytes of `fd` from `offset` on, through short reads and interruptions;
/// returns how many it read: fewer only at the end of the file or on an error.
func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) -> Int {
    var done = 0
    while done < buffer.count {
        let result = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
        if result < 0 && errno == EINTR { continue }
        guard result > 0 else { break }
        done += result
    }
    return done
}
