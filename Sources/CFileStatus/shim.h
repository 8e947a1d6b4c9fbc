// What `fstat` says about an open file, in plain fields: Swift's view of glibc's `struct stat`
// belongs to whichever Clang module included <sys/stat.h> first, which differs between debug
// and release builds, so Swift code reads these fields instead.
#include <stdint.h>
#include <sys/stat.h>

typedef struct {
    uint64_t device;
    uint64_t inode;
    int64_t size;
    int64_t changed_seconds;
    int64_t changed_nanoseconds;
    int is_regular;
} icbd_file_status;

// 0 and `*status` filled, or -1 with errno set.
static inline int icbd_file_status_of(int fd, icbd_file_status *status) {
    struct stat info;
    if (fstat(fd, &info) != 0) return -1;
    status->device = (uint64_t)info.st_dev;
    status->inode = (uint64_t)info.st_ino;
    status->size = (int64_t)info.st_size;
    status->changed_seconds = (int64_t)info.st_ctim.tv_sec;
    status->changed_nanoseconds = (int64_t)info.st_ctim.tv_nsec;
    status->is_regular = S_ISREG(info.st_mode) ? 1 : 0;
    return 0;
}
