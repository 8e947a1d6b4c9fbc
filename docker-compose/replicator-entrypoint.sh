#!/bin/sh
# Runs `icbd ARGS` for a replicator whose --root must be on BTRFS. If ICBD_BTRFS_LOOP_SIZE is
# set and the root is not on BTRFS yet, a loop file of that size under /var/lib/icbd is made
# into BTRFS and mounted at the root (the container must be privileged for the loop device).
# With a host BTRFS path bind-mounted at the root instead, leave ICBD_BTRFS_LOOP_SIZE unset.
set -eu
root=${ICBD_REPOSITORY_ROOT:-/srv/icbd}
if [ -n "${ICBD_BTRFS_LOOP_SIZE:-}" ] && [ "$(stat -f -c %T "$root" 2>/dev/null)" != "btrfs" ]; then
  image=/var/lib/icbd/repository.img
  mkdir -p "$root" /var/lib/icbd
  if [ ! -f "$image" ]; then
    truncate -s "$ICBD_BTRFS_LOOP_SIZE" "$image"
    mkfs.btrfs -q "$image"
  fi
  mount -o loop "$image" "$root"
fi
exec /usr/local/bin/icbd "$@"
