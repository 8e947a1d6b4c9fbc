// lz4 block compression (Debian liblz4-dev): replication segments on slow links.
#include <lz4.h>
