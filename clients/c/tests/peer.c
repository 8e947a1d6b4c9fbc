/* The test peer's transport: listening, the TLS handshake, reading and writing frames. */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "icbd.h"
#include "tls.h"

struct peer {
    peer_options options;
    SSL_CTX *ctx;
    int listen_fd;
    int stop_read, stop_write;
    uint16_t port;
    pthread_t thread;
};

typedef struct frame_node {
    icbd_frame *frame;
    struct frame_node *next;
} frame_node;

struct peer_conn {
    peer *p;
    SSL *ssl;
    int fd;
    icbd_tls_check check;
    icbd_frame_decoder decoder;
    frame_node *head, *tail;
    bool closed;
    bool answer_pings;
};

void peer_stats_init(peer_stats *stats) {
    memset(stats, 0, sizeof *stats);
    pthread_mutex_init(&stats->mu, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Reading and writing */

bool peer_send_raw(peer_conn *c, const void *data, size_t len) {
    const uint8_t *bytes = data;
    while (len > 0) {
        ERR_clear_error();
        int n = SSL_write(c->ssl, bytes, len > 1 << 30 ? 1 << 30 : (int)len);
        if (n <= 0) {
            c->closed = true;
            return false;
        }
        bytes += n;
        len -= (size_t)n;
    }
    return true;
}

bool peer_send_bytes(peer_conn *c, icbd_bytes *out, bool built) {
    bool ok = built && peer_send_raw(c, out->data, out->len);
    icbd_bytes_free(out);
    return ok;
}

bool peer_send_message(peer_conn *c, uint32_t stream, const void *data, size_t len) {
    icbd_bytes out = {0};
    char error[256];
    return peer_send_bytes(c, &out, icbd_frame_append_message(&out, stream, data, len, error, sizeof error));
}

bool peer_send_status(peer_conn *c, uint32_t stream, uint32_t code, const char *message) {
    icbd_bytes out = {0};
    char error[256];
    return peer_send_bytes(c, &out, icbd_frame_append_status(&out, stream, code, message, error, sizeof error));
}

static void push_back(peer_conn *c, icbd_frame *frame) {
    frame_node *node = malloc(sizeof *node);
    if (!node) abort();
    node->frame = frame;
    node->next = NULL;
    if (c->tail) {
        c->tail->next = node;
    } else {
        c->head = node;
    }
    c->tail = node;
}

void peer_unread(peer_conn *c, icbd_frame *frame) {
    frame_node *node = malloc(sizeof *node);
    if (!node) abort();
    node->frame = frame;
    node->next = c->head;
    c->head = node;
    if (!c->tail) c->tail = node;
}

static icbd_frame *pop(peer_conn *c) {
    frame_node *node = c->head;
    if (!node) return NULL;
    c->head = node->next;
    if (!c->head) c->tail = NULL;
    icbd_frame *frame = node->frame;
    free(node);
    return frame;
}

static bool queue_frame(void *context, icbd_frame *frame, char *error, size_t error_size) {
    (void)error;
    (void)error_size;
    peer_conn *c = context;
    if (c->answer_pings && frame->kind_case == ICBD__RPC__V1__FRAME__KIND_PING && frame->stream == 0 &&
        !frame->ping->ack) {
        icbd_bytes out = {0};
        char why[128];
        peer_send_bytes(c, &out, icbd_frame_append_ping(&out, frame->ping->nonce, true, why, sizeof why));
        icbd_frame_free(frame);
        return true;
    }
    push_back(c, frame);
    return true;
}

icbd_frame *peer_read(peer_conn *c, int timeout_ms) {
    uint8_t chunk[64 * 1024];
    struct timeval start;
    gettimeofday(&start, NULL);
    for (;;) {
        icbd_frame *frame = pop(c);
        if (frame) return frame;
        if (c->closed) return NULL;
        if (SSL_pending(c->ssl) == 0) {
            int wait = -1;
            if (timeout_ms >= 0) {
                struct timeval now;
                gettimeofday(&now, NULL);
                long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_usec - start.tv_usec) / 1000;
                if (elapsed >= timeout_ms) return NULL;
                wait = timeout_ms - (int)elapsed;
            }
            struct pollfd fds[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = c->p->stop_read, .events = POLLIN}};
            int n = poll(fds, 2, wait);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return NULL;
            if (fds[1].revents) return NULL;
        }
        ERR_clear_error();
        int n = SSL_read(c->ssl, chunk, sizeof chunk);
        if (n <= 0) {
            int error = SSL_get_error(c->ssl, n);
            if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) continue;
            c->closed = true;
            return NULL;
        }
        char error[256];
        if (!icbd_frame_decoder_feed(&c->decoder, chunk, (size_t)n, queue_frame, c, error, sizeof error)) {
            fprintf(stderr, "peer: the client's bytes break framing: %s\n", error);
            c->closed = true;
        }
    }
}

bool peer_client_closed(peer_conn *c) {
    return c->closed;
}

void peer_set_answer_pings(peer_conn *c, bool answer) {
    c->answer_pings = answer;
}

const char *peer_client_uri(peer_conn *c) {
    return c->check.peer_uri;
}

/* ---------------------------------------------------------------------------------------------
 * Accepting */

static void serve_connection(peer *p, int fd) {
    peer_conn c = {.p = p, .fd = fd, .answer_pings = true};
    c.check.peer_is_server = false;
    c.check.ca_file = "the test CA";
    struct timeval timeout = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    icbd_frame_decoder_init(&c.decoder, 0);
    c.ssl = SSL_new(p->ctx);
    if (!c.ssl || SSL_set_fd(c.ssl, fd) != 1) {
        fprintf(stderr, "peer: cannot set up TLS\n");
    } else {
        SSL_set_app_data(c.ssl, &c.check);
        ERR_clear_error();
        if (SSL_accept(c.ssl) != 1) {
            char openssl[256];
            icbd_tls_errors(openssl, sizeof openssl);
            fprintf(stderr, "peer: handshake refused: %s%s%s\n", c.check.refusal, c.check.refusal[0] ? "; " : "",
                    openssl);
        } else {
            p->options.behaviour(&c, p->options.arg);
            if (!c.closed) SSL_shutdown(c.ssl);
        }
        SSL_free(c.ssl);
    }
    icbd_frame *frame;
    while ((frame = pop(&c)) != NULL) icbd_frame_free(frame);
    icbd_frame_decoder_free(&c.decoder);
    close(fd);
}

static void *peer_main(void *arg) {
    peer *p = arg;
    for (;;) {
        struct pollfd fds[2] = {{.fd = p->listen_fd, .events = POLLIN}, {.fd = p->stop_read, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[1].revents) break;
        int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        serve_connection(p, fd);
    }
    return NULL;
}

peer *peer_start(const peer_options *options, char *error, size_t error_size) {
    peer *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->options = *options;
    p->listen_fd = p->stop_read = p->stop_write = -1;
    char ca[512], cert[512], key[512];
    snprintf(ca, sizeof ca, "%s/ca.crt", options->dir);
    snprintf(cert, sizeof cert, "%s/%s.crt", options->dir, options->name);
    snprintf(key, sizeof key, "%s/%s.key", options->dir, options->name);
    p->ctx = icbd_tls_context(true, false, ca, cert, key, error, error_size);
    if (!p->ctx) goto failure;
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) goto system_failure;
    p->stop_read = pipe_fds[0];
    p->stop_write = pipe_fds[1];
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0) goto system_failure;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof address;
    if (bind(p->listen_fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(p->listen_fd, 16) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&address, &len) != 0) {
        goto system_failure;
    }
    p->port = ntohs(address.sin_port);
    if (pthread_create(&p->thread, NULL, peer_main, p) != 0) goto system_failure;
    return p;

system_failure:
    snprintf(error, error_size, "peer: %s", strerror(errno));
failure:
    if (p->ctx) SSL_CTX_free(p->ctx);
    if (p->listen_fd >= 0) close(p->listen_fd);
    if (p->stop_read >= 0) close(p->stop_read);
    if (p->stop_write >= 0) close(p->stop_write);
    free(p);
    return NULL;
}

uint16_t peer_port(const peer *p) {
    return p->port;
}

void peer_stop(peer *p) {
    if (!p) return;
    if (write(p->stop_write, "s", 1) != 1) perror("peer: stop");
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
    close(p->stop_read);
    close(p->stop_write);
    SSL_CTX_free(p->ctx);
    free(p);
}
