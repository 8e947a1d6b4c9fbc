/*
 * icbd-test-peer: the C test peer as a program, so that the Swift client can call a C server
 * (interop in that direction). Serves tests/peer.h's peer_serve methods, one connection at a
 * time, until SIGTERM or SIGINT.
 *
 *   icbd-test-peer --tls-dir DIR --name NAME
 *   -> prints "listening cache NAME 127.0.0.1:PORT", then
 *      "chunks HASH HASH HASH HASH" (the good chunks GetChunks serves) and "bad-chunk HASH"
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "peer.h"

int main(int argc, char **argv) {
    const char *dir = NULL, *name = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--tls-dir") == 0) dir = argv[i + 1];
        if (strcmp(argv[i], "--name") == 0) name = argv[i + 1];
    }
    if (!dir || !name || argc != 5) {
        fprintf(stderr, "usage: icbd-test-peer --tls-dir DIR --name NAME\n");
        return 2;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);  // before the peer's thread starts, so it inherits the mask
    peer_stats stats;
    peer_stats_init(&stats);
    stats.node = name;
    char hashes[5][65];
    if (!peer_chunk_hashes(hashes, 5)) {
        fprintf(stderr, "icbd-test-peer: cannot hash the test chunks\n");
        return 1;
    }
    char error[512];
    peer_options options = {.dir = dir, .name = name, .behaviour = peer_serve, .arg = &stats};
    peer *p = peer_start(&options, error, sizeof error);
    if (!p) {
        fprintf(stderr, "icbd-test-peer: %s\n", error);
        return 1;
    }
    printf("listening cache %s 127.0.0.1:%u\n", name, peer_port(p));
    printf("chunks %s %s %s %s\nbad-chunk %s\n", hashes[0], hashes[1], hashes[2], hashes[3], hashes[4]);
    fflush(stdout);
    int signal_number;
    sigwait(&stop, &signal_number);
    peer_stop(p);
    fprintf(stderr, "icbd-test-peer: %u connections, %u calls%s%s\n", stats.connections, stats.calls,
            stats.violation[0] ? "; protocol violation: " : "", stats.violation);
    return stats.violation[0] ? 1 : 0;
}
