// libbtrfsutil (Debian libbtrfsutil-dev): subvolumes, snapshots, read-only flags, subvolume info.
#include <btrfsutil.h>
#include <sys/vfs.h>   // statfs: is a path on BTRFS
