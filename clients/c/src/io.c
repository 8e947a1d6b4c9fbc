/*
 * The I/O thread of a connection: the TLS handshake, then reading, writing, keepalive Pings and
 * timers until the connection fails or is closed. The only thread that touches the socket and
 * the SSL object (docs/wire.md sections 1, 2 and 5).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "internal.h"

#define ICBD_READ_CHUNK (64u * 1024u)

/** The client-certificate problems a server refuses with, for messages. */
#define REFUSED_CLIENT_HINT                                                                                           \
    "it refuses a client certificate that is not issued by the deployment CA, not valid now, or without exactly one " \
    "SAN URI icbd://ROLE/NAME"

/**
 * Describes a failed SSL operation. `accepted`: the server answered the first Ping, so it
 * accepted this client; before that, a connection that ends means the server refused it.
 */
static void describe_ssl_failure(icbd_conn *conn, int result, const char *during, bool accepted, icbd_status *failure) {
    int error = SSL_get_error(conn->ssl, result);
    int saved_errno = errno;
    char openssl[400];
    icbd_tls_errors(openssl, sizeof openssl);
    if (conn->check.refusal[0]) {
        icbd_fail(failure, ICBD_UNAVAILABLE, "TLS handshake with %s failed: the server's certificate is refused: %s",
                  conn->address, conn->check.refusal);
    } else if (strstr(openssl, "alert")) {
        // In TLS 1.3 a server refuses the client's certificate after the client's side of the
        // handshake is done, so the alert arrives here or at the first read.
        icbd_fail(failure, ICBD_UNAVAILABLE, "%s ended the connection with a TLS alert (%s; %s): " REFUSED_CLIENT_HINT,
                  conn->address, openssl, during);
    } else if (error == SSL_ERROR_SSL) {
        icbd_fail(failure, ICBD_UNAVAILABLE, "TLS error with %s (%s): %s", conn->address, during,
                  openssl[0] ? openssl : "unknown");
    } else if (!accepted) {
        char cause[160];
        snprintf(cause, sizeof cause, "%s",
                 saved_errno && error == SSL_ERROR_SYSCALL && result != 0 ? strerror(saved_errno) : "closed");
        icbd_fail(failure, ICBD_UNAVAILABLE,
                  "%s ended the connection during or right after the TLS handshake (%s, %s): " REFUSED_CLIENT_HINT,
                  conn->address, cause, during);
    } else if (error == SSL_ERROR_ZERO_RETURN || saved_errno == 0 || result == 0) {
        icbd_fail(failure, ICBD_UNAVAILABLE, "%s closed the connection (%s)", conn->address, during);
    } else {
        icbd_fail(failure, ICBD_UNAVAILABLE, "connection to %s lost (%s): %s", conn->address, during,
                  strerror(saved_errno));
    }
}

/**
 * After a failed write: the server may have ended the connection with an alert that is still
 * unread (a refused client certificate); if so, describe that instead.
 */
static void prefer_pending_alert(icbd_conn *conn, uint8_t *chunk, bool accepted, icbd_status *failure) {
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(conn->ssl, chunk, ICBD_READ_CHUNK);
    if (n <= 0 && SSL_get_error(conn->ssl, n) == SSL_ERROR_SSL) {
        describe_ssl_failure(conn, n, "while reading", accepted, failure);
    }
    ERR_clear_error();
}

/** Waits until the socket is ready for `events` or the wake pipe is readable. 1 ready, 0 timed out. */
static int poll_socket(icbd_conn *conn, short events, uint64_t deadline) {
    struct pollfd fds[2] = {{.fd = conn->fd, .events = events}, {.fd = conn->wake_read, .events = POLLIN}};
    int timeout = -1;
    if (deadline) {
        uint64_t now = icbd_now_ns();
        if (now >= deadline) return 0;
        uint64_t ms = (deadline - now + 999999) / 1000000;
        timeout = ms > INT_MAX ? INT_MAX : (int)ms;
    }
    int n = poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) return -1;
    if (fds[1].revents & POLLIN) {
        char drain[64];
        while (read(conn->wake_read, drain, sizeof drain) > 0) {
        }
    }
    return n > 0 ? 1 : (n == 0 ? 0 : 1);
}

static bool closing(icbd_conn *conn) {
    pthread_mutex_lock(&conn->mu);
    bool closing = conn->closing;
    pthread_mutex_unlock(&conn->mu);
    return closing;
}

static bool handshake(icbd_conn *conn, icbd_status *failure) {
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int result = SSL_connect(conn->ssl);
        if (result == 1) break;
        int error = SSL_get_error(conn->ssl, result);
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
            describe_ssl_failure(conn, result, "during the TLS handshake", false, failure);
            return false;
        }
        if (closing(conn)) {
            icbd_fail(failure, ICBD_UNAVAILABLE, "the connection to %s was closed (icbd_close)", conn->address);
            return false;
        }
        if (poll_socket(conn, error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, conn->connect_deadline) == 0) {
            icbd_fail(failure, ICBD_UNAVAILABLE, "TLS handshake with %s timed out", conn->address);
            return false;
        }
    }
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(conn->ssl, &alpn, &alpn_len);
    if (alpn_len != strlen(ICBD_ALPN) || memcmp(alpn, ICBD_ALPN, alpn_len) != 0) {
        icbd_fail(failure, ICBD_UNAVAILABLE, "%s did not negotiate ALPN %s; is it an icbd service?", conn->address,
                  ICBD_ALPN);
        return false;
    }
    if (SSL_get_verify_result(conn->ssl) != X509_V_OK || !conn->check.peer_uri[0]) {
        icbd_fail(failure, ICBD_UNAVAILABLE, "the certificate of %s was not verified", conn->address);
        return false;
    }
    return true;
}

static void swap_bytes(icbd_bytes *a, icbd_bytes *b) {
    icbd_bytes t = *a;
    *a = *b;
    *b = t;
}

/** Takes queued frames and runs timers; false (with `failure`) when the connection must end. */
static bool sync_locked(icbd_conn *conn, uint64_t now, bool *paused, uint64_t *next_timer, bool *accepted,
                        icbd_status *failure) {
    if (conn->closing) {
        icbd_fail(failure, ICBD_UNAVAILABLE, "the connection to %s was closed (icbd_close)", conn->address);
        return false;
    }
    if (conn->state == ICBD_CONN_FAILED) {
        *failure = conn->failure;
        return false;
    }
    conn->wake_pending = false;
    *accepted = conn->state == ICBD_CONN_READY;
    char error[128];
    if (conn->ping_outstanding) {
        uint64_t limit = conn->state == ICBD_CONN_CONNECTING ? conn->connect_deadline
                                                             : conn->ping_sent_at + conn->keepalive_timeout_ns;
        if (now >= limit) {
            if (conn->state == ICBD_CONN_CONNECTING) {
                icbd_fail(failure, ICBD_UNAVAILABLE, "%s did not answer the first Ping in time", conn->address);
            } else {
                icbd_fail(failure, ICBD_UNAVAILABLE, "%s did not answer a Ping within %llu ms; closing the connection",
                          conn->address, (unsigned long long)(conn->keepalive_timeout_ns / 1000000));
            }
            return false;
        }
        *next_timer = limit;
    } else {
        if (now >= conn->next_ping_at) {
            conn->ping_nonce++;
            if (!icbd_frame_append_ping(&conn->out, conn->ping_nonce, false, error, sizeof error)) {
                icbd_fail(failure, ICBD_UNAVAILABLE, "cannot send a Ping: %s", error);
                return false;
            }
            conn->ping_outstanding = true;
            conn->ping_sent_at = now;
            *next_timer =
                conn->state == ICBD_CONN_CONNECTING ? conn->connect_deadline : now + conn->keepalive_timeout_ns;
        } else {
            *next_timer = conn->next_ping_at;
        }
    }
    if (conn->written == conn->writing.len && conn->out.len > 0) {
        conn->writing.len = 0;
        conn->written = 0;
        swap_bytes(&conn->writing, &conn->out);
        pthread_cond_broadcast(&conn->cv);
    }
    *paused = conn->out.len >= ICBD_WRITE_HARD_LIMIT;
    return true;
}

/** Runs the connection until it fails or is closed. True when TLS may still send close_notify. */
static bool serve(icbd_conn *conn, icbd_status *failure) {
    uint8_t *chunk = malloc(ICBD_READ_CHUNK);
    if (!chunk) {
        icbd_fail(failure, ICBD_RESOURCE_EXHAUSTED, "out of memory for the read buffer");
        return true;
    }
    bool usable = true;
    bool write_wants_read = false;
    for (;;) {
        uint64_t now = icbd_now_ns();
        bool paused = false, accepted = false;
        uint64_t next_timer = 0;
        pthread_mutex_lock(&conn->mu);
        bool ok = sync_locked(conn, now, &paused, &next_timer, &accepted, failure);
        pthread_mutex_unlock(&conn->mu);
        if (!ok) break;

        bool progress = false;
        bool want_write = false;
        write_wants_read = false;
        if (conn->written < conn->writing.len) {
            size_t left = conn->writing.len - conn->written;
            ERR_clear_error();
            errno = 0;
            int n = SSL_write(conn->ssl, conn->writing.data + conn->written, left > INT_MAX ? INT_MAX : (int)left);
            if (n > 0) {
                conn->written += (size_t)n;
                progress = true;
            } else {
                int error = SSL_get_error(conn->ssl, n);
                if (error == SSL_ERROR_WANT_WRITE) {
                    want_write = true;
                } else if (error == SSL_ERROR_WANT_READ) {
                    write_wants_read = true;
                } else {
                    describe_ssl_failure(conn, n, "while writing", accepted, failure);
                    prefer_pending_alert(conn, chunk, accepted, failure);
                    usable = false;
                    break;
                }
            }
        }
        if (!paused || write_wants_read) {
            ERR_clear_error();
            errno = 0;
            int n = SSL_read(conn->ssl, chunk, ICBD_READ_CHUNK);
            if (n > 0) {
                progress = true;
                char error[256];
                if (!icbd_frame_decoder_feed(&conn->decoder, chunk, (size_t)n, icbd_route_frame, conn, error,
                                             sizeof error)) {
                    icbd_fail(failure, ICBD_UNAVAILABLE, "protocol error from %s: %s; the connection is closed",
                              conn->address, error);
                    break;
                }
            } else {
                int error = SSL_get_error(conn->ssl, n);
                if (error == SSL_ERROR_WANT_WRITE) {
                    want_write = true;
                } else if (error != SSL_ERROR_WANT_READ) {
                    describe_ssl_failure(conn, n, "while reading", accepted, failure);
                    usable = error == SSL_ERROR_ZERO_RETURN;
                    break;
                }
            }
        }
        if (progress) continue;
        short events = (short)((!paused || write_wants_read ? POLLIN : 0) | (want_write ? POLLOUT : 0));
        if (poll_socket(conn, events, next_timer) < 0) {
            icbd_fail(failure, ICBD_UNAVAILABLE, "poll failed: %s", strerror(errno));
            break;
        }
    }
    free(chunk);
    return usable;
}

/** Sends close_notify, waiting briefly for the socket if it is full. */
static void send_close_notify(icbd_conn *conn) {
    for (int attempt = 0; attempt < 2; attempt++) {
        ERR_clear_error();
        int result = SSL_shutdown(conn->ssl);
        if (result >= 0) break;
        int error = SSL_get_error(conn->ssl, result);
        if (error != SSL_ERROR_WANT_WRITE && error != SSL_ERROR_WANT_READ) break;
        struct pollfd fd = {.fd = conn->fd, .events = POLLOUT};
        if (poll(&fd, 1, 100) <= 0) break;
    }
    ERR_clear_error();
}

void *icbd_io_main(void *arg) {
    icbd_conn *conn = arg;
    icbd_status failure;
    icbd_succeed(&failure);
    bool tls_usable = false;
    if (handshake(conn, &failure)) {
        conn->next_ping_at = 0;  // at once: the first Ping's answer confirms the server accepted this client
        tls_usable = serve(conn, &failure);
    }
    pthread_mutex_lock(&conn->mu);
    icbd_conn_fail_locked(conn, &failure);
    pthread_mutex_unlock(&conn->mu);
    if (tls_usable) send_close_notify(conn);
    SSL_free(conn->ssl);
    conn->ssl = NULL;
    shutdown(conn->fd, SHUT_RDWR);
    close(conn->fd);
    conn->fd = -1;
    return NULL;
}
