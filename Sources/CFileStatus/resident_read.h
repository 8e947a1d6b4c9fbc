// A read that never waits for the disk: `preadv2` with `RWF_NOWAIT` (Linux 4.14), which copies
// only bytes already in the page cache. The gateway answers a range of a verified same-host chunk
// file this way on the event loop; a read that would wait goes the long way, through a task and
// the thread pool.
#include <sys/types.h>
#include <sys/uio.h>

// glibc declares this only under _GNU_SOURCE, which Swift's view of its headers lacks.
extern ssize_t preadv2(int fd, const struct iovec *vector, int count, off_t offset, int flags);
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

// The count of bytes copied (possibly fewer than `length`: only those resident), or -1 with
// errno set: EAGAIN when the first byte is not resident, EOPNOTSUPP where the file system
// cannot tell.
static inline ssize_t icbd_read_resident(int fd, void *buffer, size_t length, off_t offset) {
    struct iovec vector = { .iov_base = buffer, .iov_len = length };
    return preadv2(fd, &vector, 1, offset, RWF_NOWAIT);
}
