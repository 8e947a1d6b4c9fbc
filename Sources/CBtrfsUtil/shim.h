// libbtrfsutil (Debian libbtrfsutil-dev): subvolumes, snapshots, read-only flags, subvolume info.
#include <btrfsutil.h>
#include <sys/vfs.h>   // statfs: is a path on BTRFS
#include <sys/stat.h>

/// fstat reduced to what the repository needs, in a form that Swift's overlapping module maps of
/// `struct stat` (Glibc, CoreFoundation, Dispatch) cannot make ambiguous.
static inline int icbd_fstat(int fd, long long *size, int *is_regular) {
    struct stat s;
    if (fstat(fd, &s) != 0) return -1;
    *size = (long long)s.st_size;
    *is_regular = S_ISREG(s.st_mode);
    return 0;
}

#include <sys/ioctl.h>
#include <linux/fs.h>  // FICLONE

/// Makes `destination` share every extent of `source` (a reflink, as `cp --reflink`): no data
/// is copied. Fails with EXDEV across filesystems and EOPNOTSUPP/EINVAL where unsupported.
static inline int icbd_reflink(int destination, int source) {
    return ioctl(destination, FICLONE, source);
}
