/*
 * Connections: connecting (TCP, then TLS 1.3 and a first Ping round trip run by the I/O thread,
 * io.c), closing, and the state shared with the calls (docs/wire.md section 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include "internal.h"

/* ---------------------------------------------------------------------------------------------
 * Waiting and waking */

bool icbd_conn_wait_locked(icbd_conn *conn, uint64_t deadline) {
    if (deadline == 0) {
        pthread_cond_wait(&conn->cv, &conn->mu);
        return true;
    }
    struct timespec until = {.tv_sec = (time_t)(deadline / 1000000000ull), .tv_nsec = (long)(deadline % 1000000000ull)};
    return pthread_cond_timedwait(&conn->cv, &conn->mu, &until) != ETIMEDOUT || icbd_now_ns() < deadline;
}

void icbd_conn_wake_locked(icbd_conn *conn) {
    if (conn->wake_pending) return;
    conn->wake_pending = true;
    // The pipe is non-blocking; a full pipe already wakes the I/O thread.
    ssize_t ignored = write(conn->wake_write, "w", 1);
    (void)ignored;
}

void icbd_conn_fail_locked(icbd_conn *conn, const icbd_status *status) {
    if (conn->state == ICBD_CONN_FAILED) return;
    conn->state = ICBD_CONN_FAILED;
    conn->failure = *status;
    while (conn->active) icbd_call_finish_locked(conn->active, status);
    conn->out.len = 0;
    pthread_cond_broadcast(&conn->cv);
    icbd_conn_wake_locked(conn);
}

bool icbd_conn_release_locked(icbd_conn *conn) {
    return --conn->refs == 0;
}

void icbd_conn_destroy(icbd_conn *conn) {
    if (conn->ssl) SSL_free(conn->ssl);
    if (conn->fd >= 0) close(conn->fd);
    if (conn->ctx) SSL_CTX_free(conn->ctx);
    if (conn->wake_read >= 0) close(conn->wake_read);
    if (conn->wake_write >= 0) close(conn->wake_write);
    icbd_frame_decoder_free(&conn->decoder);
    icbd_bytes_free(&conn->out);
    icbd_bytes_free(&conn->writing);
    pthread_cond_destroy(&conn->cv);
    pthread_mutex_destroy(&conn->mu);
    free(conn);
}

/* ---------------------------------------------------------------------------------------------
 * Connecting */

/** Splits "HOST:PORT" or "[V6]:PORT". */
static bool split_address(const char *address, char *host, size_t host_size, char *port, size_t port_size) {
    const char *colon;
    const char *host_start = address;
    size_t host_len;
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        if (!close || close[1] != ':') return false;
        host_start = address + 1;
        host_len = (size_t)(close - host_start);
        colon = close + 1;
    } else {
        colon = strrchr(address, ':');
        if (!colon || strchr(address, ':') != colon) return false;
        host_len = (size_t)(colon - address);
    }
    const char *digits = colon + 1;
    size_t digits_len = strlen(digits);
    if (host_len == 0 || host_len >= host_size || digits_len == 0 || digits_len > 5 || digits_len >= port_size) {
        return false;
    }
    long value = 0;
    for (size_t i = 0; i < digits_len; i++) {
        if (digits[i] < '0' || digits[i] > '9') return false;
        value = value * 10 + (digits[i] - '0');
    }
    if (value < 1 || value > 65535) return false;
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    memcpy(port, digits, digits_len + 1);
    return true;
}

/** TCP connect to the first address of host:port that answers before the deadline. */
static int tcp_connect(const char *host, const char *port, uint64_t deadline, icbd_status *status) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *addresses = NULL;
    int rc = getaddrinfo(host, port, &hints, &addresses);
    if (rc != 0) {
        icbd_fail(status, ICBD_UNAVAILABLE, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    char why[160] = "no address";
    for (struct addrinfo *a = addresses; a && fd < 0; a = a->ai_next) {
        int s = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (s < 0) {
            snprintf(why, sizeof why, "socket: %s", strerror(errno));
            continue;
        }
        int error = 0;
        if (connect(s, a->ai_addr, a->ai_addrlen) != 0) {
            error = errno;
            if (error == EINPROGRESS) {
                struct pollfd p = {.fd = s, .events = POLLOUT};
                uint64_t now = icbd_now_ns();
                int timeout = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
                int n;
                do {
                    n = poll(&p, 1, timeout);
                } while (n < 0 && errno == EINTR);
                socklen_t len = sizeof error;
                if (n == 0) {
                    error = ETIMEDOUT;
                } else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
                    error = errno;
                }
            }
        }
        if (error == 0) {
            int one = 1;
            setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            fd = s;
        } else {
            snprintf(why, sizeof why, "%s", strerror(error));
            close(s);
        }
    }
    freeaddrinfo(addresses);
    if (fd < 0) icbd_fail(status, ICBD_UNAVAILABLE, "cannot connect to %s port %s: %s", host, port, why);
    return fd;
}

static icbd_conn *conn_new(void) {
    icbd_conn *conn = calloc(1, sizeof *conn);
    if (!conn) return NULL;
    conn->fd = conn->wake_read = conn->wake_write = -1;
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&conn->cv, &attributes);
    pthread_condattr_destroy(&attributes);
    pthread_mutex_init(&conn->mu, NULL);
    conn->refs = 1;
    conn->state = ICBD_CONN_CONNECTING;
    return conn;
}

icbd_code icbd_connect(const char *address, const icbd_client_options *options, icbd_conn **out, icbd_status *status) {
    icbd_status ignored;
    if (!status) status = &ignored;
    if (out) *out = NULL;
    if (!out || !address || !options) return icbd_fail(status, ICBD_INVALID_ARGUMENT, "icbd_connect: NULL argument");
    if (!options->ca_file || !options->cert_file || !options->key_file) {
        return icbd_fail(status, ICBD_INVALID_ARGUMENT,
                         "icbd_connect: ca_file, cert_file and key_file are required (ca.crt, NAME.crt, NAME.key "
                         "of `icbd pki`)");
    }
    if (!icbd_role_valid(options->expected_role)) {
        return icbd_fail(status, ICBD_INVALID_ARGUMENT,
                         "icbd_connect: expected_role '%s' is not catalog, replicator, cache, gateway or admin",
                         options->expected_role ? options->expected_role : "(null)");
    }
    icbd_conn *conn = conn_new();
    if (!conn) return icbd_fail(status, ICBD_RESOURCE_EXHAUSTED, "out of memory");
    char port[8];
    if (!split_address(address, conn->host, sizeof conn->host, port, sizeof port)) {
        icbd_conn_destroy(conn);
        return icbd_fail(status, ICBD_INVALID_ARGUMENT, "'%s' is not HOST:PORT (or [IPV6]:PORT) with a port 1-65535",
                         address);
    }
    snprintf(conn->address, sizeof conn->address, "%s", address);
    snprintf(conn->expected_role, sizeof conn->expected_role, "%s", options->expected_role);
    snprintf(conn->ca_file, sizeof conn->ca_file, "%s", options->ca_file);
    uint64_t now = icbd_now_ns();
    conn->connect_deadline =
        now + (uint64_t)(options->connect_timeout_ms ? options->connect_timeout_ms : 5000) * 1000000ull;
    conn->keepalive_interval_ns =
        (uint64_t)(options->keepalive_interval_ms ? options->keepalive_interval_ms : 20000) * 1000000ull;
    conn->keepalive_timeout_ns =
        (uint64_t)(options->keepalive_timeout_ms ? options->keepalive_timeout_ms : 20000) * 1000000ull;
    conn->ping_nonce = (uint64_t)now ^ (uint64_t)(uintptr_t)conn;

    char error[512];
    conn->ctx =
        icbd_tls_context(false, true, options->ca_file, options->cert_file, options->key_file, error, sizeof error);
    if (!conn->ctx) {
        icbd_conn_destroy(conn);
        return icbd_fail(status, ICBD_INVALID_ARGUMENT, "%s", error);
    }
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        icbd_conn_destroy(conn);
        return icbd_fail(status, ICBD_RESOURCE_EXHAUSTED, "pipe: %s", strerror(errno));
    }
    conn->wake_read = pipe_fds[0];
    conn->wake_write = pipe_fds[1];
    conn->fd = tcp_connect(conn->host, port, conn->connect_deadline, status);
    if (conn->fd < 0) {
        icbd_conn_destroy(conn);
        return status->code;
    }

    conn->check.expected_role = conn->expected_role;
    conn->check.peer_is_server = true;
    conn->check.ca_file = conn->ca_file;
    conn->ssl = SSL_new(conn->ctx);
    bool configured =
        conn->ssl && SSL_set_fd(conn->ssl, conn->fd) == 1 &&
        SSL_set_alpn_protos(conn->ssl, (const unsigned char *)ICBD_ALPN_WIRE, sizeof ICBD_ALPN_WIRE - 1) == 0 &&
        SSL_set_app_data(conn->ssl, &conn->check) == 1;
    if (configured) {
        X509_VERIFY_PARAM *param = SSL_get0_param(conn->ssl);
        if (icbd_host_is_ip(conn->host)) {
            configured = X509_VERIFY_PARAM_set1_ip_asc(param, conn->host) == 1;
        } else {
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            configured = X509_VERIFY_PARAM_set1_host(param, conn->host, 0) == 1 &&
                         SSL_set_tlsext_host_name(conn->ssl, conn->host) == 1;
        }
    }
    if (!configured) {
        icbd_tls_errors(error, sizeof error);
        icbd_conn_destroy(conn);
        return icbd_fail(status, ICBD_INTERNAL, "cannot set up TLS for %s: %s", address, error);
    }
    SSL_set_connect_state(conn->ssl);
    icbd_frame_decoder_init(&conn->decoder, ICBD_MAX_FRAME_LENGTH);

    // The I/O thread takes no signals: a write to a closed socket must not raise SIGPIPE in a
    // process that did not ask for it.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int rc = pthread_create(&conn->io_thread, NULL, icbd_io_main, conn);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (rc != 0) {
        icbd_conn_destroy(conn);
        return icbd_fail(status, ICBD_RESOURCE_EXHAUSTED, "cannot start the connection's thread: %s", strerror(rc));
    }
    conn->io_started = true;

    pthread_mutex_lock(&conn->mu);
    while (conn->state == ICBD_CONN_CONNECTING) icbd_conn_wait_locked(conn, 0);
    bool ready = conn->state == ICBD_CONN_READY;
    if (!ready) *status = conn->failure;
    pthread_mutex_unlock(&conn->mu);
    if (!ready) {
        icbd_close(conn);
        return status->code;
    }
    icbd_succeed(status);
    *out = conn;
    return ICBD_OK;
}

void icbd_close(icbd_conn *conn) {
    if (!conn) return;
    pthread_mutex_lock(&conn->mu);
    conn->closing = true;
    icbd_conn_wake_locked(conn);
    pthread_mutex_unlock(&conn->mu);
    if (conn->io_started) pthread_join(conn->io_thread, NULL);
    pthread_mutex_lock(&conn->mu);
    icbd_status closed;
    icbd_fail(&closed, ICBD_UNAVAILABLE, "the connection to %s was closed (icbd_close)", conn->address);
    icbd_conn_fail_locked(conn, &closed);
    bool last = icbd_conn_release_locked(conn);
    pthread_mutex_unlock(&conn->mu);
    if (last) icbd_conn_destroy(conn);
}

int icbd_conn_usable(icbd_conn *conn, icbd_status *status) {
    if (!conn) return 0;
    pthread_mutex_lock(&conn->mu);
    int usable = conn->state == ICBD_CONN_READY && !conn->closing;
    if (status) {
        if (usable) {
            icbd_succeed(status);
        } else {
            *status = conn->failure;
        }
    }
    pthread_mutex_unlock(&conn->mu);
    return usable;
}

const char *icbd_conn_peer(const icbd_conn *conn) {
    return conn ? conn->peer_uri : "";
}
