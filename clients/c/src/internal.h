/*
 * libicbd internals: the connection and call structures shared by connect.c (connecting and
 * closing), io.c (the I/O thread), route.c (what the server sends) and call.c (the calls).
 *
 * Threads: each connection has one I/O thread, the only one to touch its socket and SSL object.
 * Callers and the I/O thread share everything else under `mu`; `cv` is broadcast on any change
 * a waiter may care about (a message, a Status, credit, write-buffer space, failure).
 */
#ifndef ICBD_INTERNAL_H
#define ICBD_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "frame.h"
#include "icbd.h"
#include "tls.h"

/** Callers wait before queueing a message while this many bytes wait for the socket. */
#define ICBD_WRITE_HIGH_WATER (4u * 1024u * 1024u)
/** The I/O thread stops reading while this many bytes wait for the socket: only a peer that
 *  floods Pings without reading gets there, since message senders stop at the high water. */
#define ICBD_WRITE_HARD_LIMIT (ICBD_WRITE_HIGH_WATER + 2u * ICBD_MAX_FRAME_LENGTH)
/** Credit is returned once this many bytes were read, or when the peer's window falls below it. */
#define ICBD_CREDIT_BATCH (ICBD_INITIAL_WINDOW / 4u)
/** The client gives up on a call this long after the deadline it sent. */
#define ICBD_DEADLINE_GRACE_NS 1000000000ull

typedef struct icbd_message_node {
    icbd_frame *frame;  // kind message; the payload is frame->message
    struct icbd_message_node *next;
} icbd_message_node;

struct icbd_call {
    icbd_conn *conn;
    uint32_t id;
    char *method;
    uint32_t timeout_ms;
    /** Monotonic ns after which the client gives up; 0: never. */
    uint64_t give_up_at;

    /* Under conn->mu. */
    bool active;  // in the connection's table: frames for it are routed here
    struct icbd_call *prev_active, *next_active;
    icbd_message_node *head, *tail;
    size_t buffered;
    /** Message bytes this side may still send; negative after one large message. */
    int64_t send_window;
    /** Message bytes the server may still send. */
    int64_t receive_window;
    /** Bytes read by the caller and not yet returned as credit. */
    uint64_t unreturned;
    bool requests_ended;
    bool over;
    icbd_status final;

    /* The caller's thread only. */
    icbd_frame *current;  // the message last returned by icbd_call_recv
};

typedef enum icbd_conn_state {
    ICBD_CONN_CONNECTING,
    ICBD_CONN_READY,
    ICBD_CONN_FAILED,
} icbd_conn_state;

struct icbd_conn {
    pthread_mutex_t mu;
    pthread_cond_t cv;

    /* Set before the I/O thread starts, then read-only (peer_uri: set before READY). */
    char address[300];
    char host[256];
    char expected_role[16];
    char ca_file[256];
    char peer_uri[96];
    uint64_t connect_deadline;
    uint64_t keepalive_interval_ns;
    uint64_t keepalive_timeout_ns;
    int wake_read, wake_write;

    /* The I/O thread only (and connect/destroy while it does not run). */
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    icbd_tls_check check;
    icbd_frame_decoder decoder;
    icbd_bytes writing;  // taken from `out`, being written to the socket
    size_t written;
    uint64_t next_ping_at;
    uint64_t ping_sent_at;
    uint64_t ping_nonce;
    bool ping_outstanding;

    /* Under mu. */
    unsigned refs;  // the caller's handle and each call not yet freed
    icbd_conn_state state;
    icbd_status failure;
    bool closing;
    bool wake_pending;
    icbd_bytes out;  // frames waiting for the I/O thread
    uint32_t last_stream;
    icbd_call *active;
    pthread_t io_thread;
    bool io_started;
};

/* status.c */
icbd_code icbd_fail(icbd_status *status, icbd_code code, const char *format, ...) __attribute__((format(printf, 3, 4)));
void icbd_succeed(icbd_status *status);

/* time */
uint64_t icbd_now_ns(void);

/* connect.c, called with mu held. */
/** Wakes the I/O thread: frames were queued in conn->out, or it must stop. */
void icbd_conn_wake_locked(icbd_conn *conn);
/** Fails the connection: every active call ends with `status`; the I/O thread closes the socket. */
void icbd_conn_fail_locked(icbd_conn *conn, const icbd_status *status);
/** Drops one reference; true when it was the last (the caller then calls icbd_conn_destroy). */
bool icbd_conn_release_locked(icbd_conn *conn);
void icbd_conn_destroy(icbd_conn *conn);
/** Waits on cv until `deadline` (monotonic ns; 0: forever). False when the deadline passed. */
bool icbd_conn_wait_locked(icbd_conn *conn, uint64_t deadline);

/* io.c: the I/O thread's body; arg is the connection. */
void *icbd_io_main(void *arg);

/* route.c: a frame from the server (an icbd_frame_sink; takes mu). */
bool icbd_route_frame(void *context, icbd_frame *frame, char *error, size_t error_size);

/* call.c, called with mu held. */
/** The call is over with `status`: it leaves the connection's table and its waiters wake. */
void icbd_call_finish_locked(icbd_call *call, const icbd_status *status);
/** Ends the call from this side with `status` and sends Cancel, so the server stops its work. */
void icbd_call_abort_locked(icbd_call *call, const icbd_status *status);

#endif
