// lz4 block compression (Debian liblz4-dev): replication segments on slow links. LZ4 HC writes
// the same block format as the fast mode, so one decoder reads both.
#include <lz4.h>
#include <lz4hc.h>
