/*
 * A test-only icbd/1 server in C: mutual TLS 1.3 with ALPN icbd/1 (OpenSSL), frames from
 * src/frame.c. It serves one connection at a time, running a behaviour on it: either
 * peer_serve (a small service that also checks that its client keeps the protocol) or a script
 * of a test that wants to misbehave on purpose.
 */
#ifndef ICBD_TEST_PEER_H
#define ICBD_TEST_PEER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef struct peer peer;
typedef struct peer_conn peer_conn;

/** Runs on each accepted connection after its handshake; the connection closes when it returns. */
typedef void (*peer_behaviour)(peer_conn *conn, void *arg);

typedef struct peer_options {
    /** Directory with ca.crt (the CA clients must chain to), NAME.crt and NAME.key. */
    const char *dir;
    const char *name;
    peer_behaviour behaviour;
    void *arg;
} peer_options;

/** What peer_serve saw; read it after the client is done (or under `mu`). */
typedef struct peer_stats {
    pthread_mutex_t mu;
    /** The node name Health reports; NULL: "peer". Set before serving. */
    const char *node;
    unsigned connections;
    unsigned calls;
    unsigned cancels;
    uint32_t last_timeout_ms;
    char last_metadata[128];  // "key=value;..." of the last Open
    uint64_t uploaded;        // message bytes received by Test/Upload
    uint64_t streamed;        // message bytes sent by Test/Stream and Bench/Stream
    unsigned credits_received;
    /** The client broke icbd/1 (empty when it did not); the connection was closed. */
    char violation[256];
} peer_stats;

void peer_stats_init(peer_stats *stats);

/** Listens on 127.0.0.1 on a free port and serves in a thread. NULL with a reason on failure. */
peer *peer_start(const peer_options *options, char *error, size_t error_size);
uint16_t peer_port(const peer *p);
/** Stops accepting, ends the behaviour running (its reads return NULL), joins the thread. */
void peer_stop(peer *p);

/* For behaviours. */

/**
 * The next frame from the client, or NULL when it closed the connection, `timeout_ms` passed
 * (-1: none), the peer is stopping, or the bytes broke framing. Ping{ack: false} is answered
 * and not returned while `answer_pings` is set (the default).
 */
icbd_frame *peer_read(peer_conn *c, int timeout_ms);
/** Puts a frame back so that the next peer_read returns it. */
void peer_unread(peer_conn *c, icbd_frame *frame);
/** True once the client closed the connection (EOF or close_notify seen). */
bool peer_client_closed(peer_conn *c);
void peer_set_answer_pings(peer_conn *c, bool answer);
/** Writes bytes as they are. */
bool peer_send_raw(peer_conn *c, const void *data, size_t len);
/** Writes `out` if `built` (its frames were encoded; false when encoding failed), then frees it. */
bool peer_send_bytes(peer_conn *c, icbd_bytes *out, bool built);
bool peer_send_message(peer_conn *c, uint32_t stream, const void *data, size_t len);
bool peer_send_status(peer_conn *c, uint32_t stream, uint32_t code, const char *message);
/** The client's identity, "icbd://admin/tester". */
const char *peer_client_uri(peer_conn *c);

/**
 * The behaviour of a small service; arg is a peer_stats. Methods:
 *   /icbd.rpc.v1.Health/Check     HealthCheckResponse{SERVING, "cache", "peer", version "c-test-peer"}
 *   /icbd.test.v1.Test/Echo       the request back
 *   /icbd.test.v1.Test/Fail       NOT_FOUND "no such thing", details reason=test, hint=none
 *   /icbd.test.v1.Test/Twice      two responses (wrong for a unary call)
 *   /icbd.test.v1.Test/Silent     no answer until the client cancels
 *   /icbd.test.v1.Test/Stream     request: count and size (two uint32 big-endian); sends count
 *                                 messages of size bytes, byte i of the stream being (i * 7) & 255,
 *                                 within the client's credit; then OK
 *   /icbd.test.v1.Test/SmallThenLarge  5 bytes, then 6 MiB: the second only fits a whole window
 *   /icbd.bench.v1.Bench/Stream   the same with icbd.bench.v1 StreamRequest/Payload messages
 *   /icbd.cache.v1.Cache/GetChunks the chunks of peer_chunk_hashes asked for, in order (a chunk
 *                                 over 12 MiB in two messages); NOT_FOUND for another hash
 *   /icbd.test.v1.Test/Upload     client-streaming: grants credit like the Swift side (1 MiB
 *                                 batches), answers the byte count as 8 bytes big-endian
 *   anything else                 UNIMPLEMENTED
 * It enforces the client's side of icbd/1: increasing stream ids, its flow-control window,
 * no message after End, Ping only on stream 0; a violation is recorded and closes the connection.
 */
void peer_serve(peer_conn *c, void *arg);

/**
 * The hex SHA-256 names of the chunks GetChunks serves (count must be 5): 1000 bytes, 1 MiB,
 * 20 MiB, empty, and a "bad" 4 KiB chunk whose bytes do not match its name.
 */
bool peer_chunk_hashes(char hex[][65], size_t count);

#endif
