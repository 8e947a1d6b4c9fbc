/*
 * libicbd against the C test peer (tests/peer.c) over real mutual TLS: calls of every shape,
 * flow control (256 MiB streamed with bounded memory, 64 MiB uploaded within the window),
 * deadlines, cancellation, keepalive, thread safety, refused certificates both ways and a
 * server that breaks the protocol.
 *
 * usage: test-client PKI_DIR   (PKI_DIR made by tests/mkpki.sh)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "icbd.h"
#include "icbd/bench/v1/bench.pb-c.h"
#include "icbd/rpc/v1/health.pb-c.h"
#include "peer.h"
#include "testing.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static const char *pki;

/* ---------------------------------------------------------------------------------------------
 * Helpers */

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(int ms) {
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static peer *start_peer(const char *dir, const char *name, peer_behaviour behaviour, void *arg) {
    char error[512];
    peer_options options = {.dir = dir, .name = name, .behaviour = behaviour, .arg = arg};
    peer *p = peer_start(&options, error, sizeof error);
    if (!p) fprintf(stderr, "cannot start the peer: %s\n", error);
    return p;
}

/** Connects as `client` (a name in `client_dir`) to the peer, expecting `role`. */
static icbd_code connect_as(const char *host, peer *p, const char *role, const char *client_dir, const char *client,
                            const icbd_client_options *extra, icbd_conn **conn, icbd_status *status) {
    char address[64], ca[512], cert[512], key[512];
    snprintf(address, sizeof address, "%s:%u", host, peer_port(p));
    snprintf(ca, sizeof ca, "%s/ca.crt", pki);
    snprintf(cert, sizeof cert, "%s/%s.crt", client_dir, client);
    snprintf(key, sizeof key, "%s/%s.key", client_dir, client);
    icbd_client_options options = extra ? *extra : (icbd_client_options){0};
    options.ca_file = ca;
    options.cert_file = cert;
    options.key_file = key;
    options.expected_role = role;
    return icbd_connect(address, &options, conn, status);
}

static icbd_code connect_tester(peer *p, icbd_conn **conn, icbd_status *status) {
    return connect_as("127.0.0.1", p, "cache", pki, "tester", NULL, conn, status);
}

static icbd_code echo(icbd_conn *conn, const char *text, icbd_status *status) {
    uint8_t *response = NULL;
    size_t len = 0;
    icbd_code code = icbd_unary(conn, "/icbd.test.v1.Test/Echo", text, strlen(text), NULL, &response, &len, status);
    if (code == ICBD_OK && (len != strlen(text) || memcmp(response, text, len) != 0)) {
        code = ICBD_DATA_LOSS;
        snprintf(status->message, sizeof status->message, "echo of '%s' came back different", text);
    }
    free(response);
    return code;
}

static void check_no_violation(peer_stats *stats) {
    pthread_mutex_lock(&stats->mu);
    CHECK(stats->violation[0] == '\0', "the client broke icbd/1: %s", stats->violation);
    pthread_mutex_unlock(&stats->mu);
}

static unsigned read_cancels(peer_stats *stats) {
    pthread_mutex_lock(&stats->mu);
    unsigned cancels = stats->cancels;
    pthread_mutex_unlock(&stats->mu);
    return cancels;
}

/** A fixture: a serving peer and a connection to it. */
typedef struct fixture {
    peer_stats stats;
    peer *p;
    icbd_conn *conn;
} fixture;

static bool fixture_start(fixture *f) {
    peer_stats_init(&f->stats);
    f->p = start_peer(pki, "peer", peer_serve, &f->stats);
    if (!f->p) return false;
    icbd_status status;
    if (connect_tester(f->p, &f->conn, &status) != ICBD_OK) {
        fprintf(stderr, "connect: %s\n", status.message);
        peer_stop(f->p);
        return false;
    }
    return true;
}

static void fixture_stop(fixture *f) {
    icbd_close(f->conn);
    peer_stop(f->p);
    check_no_violation(&f->stats);
    pthread_mutex_destroy(&f->stats.mu);
}

/* ---------------------------------------------------------------------------------------------
 * Calls */

static void test_unary_health(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    CHECK(strcmp(icbd_conn_peer(f.conn), "icbd://cache/peer") == 0, "peer '%s'", icbd_conn_peer(f.conn));
    Icbd__Rpc__V1__HealthCheckRequest request = ICBD__RPC__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *answer = NULL;
    icbd_status status;
    icbd_call_options options = {.timeout_ms = 5000};
    icbd_code code = icbd_unary_pb(f.conn, "/icbd.rpc.v1.Health/Check", &request.base,
                                   &icbd__rpc__v1__health_check_response__descriptor, &answer, &options, &status);
    CHECK(code == ICBD_OK, "%s: %s", icbd_code_name(code), status.message);
    if (answer) {
        Icbd__Rpc__V1__HealthCheckResponse *health = (Icbd__Rpc__V1__HealthCheckResponse *)answer;
        CHECK(health->status == ICBD__RPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING, "not SERVING");
        CHECK(strcmp(health->role, "cache") == 0 && strcmp(health->node, "peer") == 0, "role %s node %s", health->role,
              health->node);
        protobuf_c_message_free_unpacked(answer, NULL);
    }
    CHECK(f.stats.last_timeout_ms == 5000, "Open carried timeout_ms %u", f.stats.last_timeout_ms);
    fixture_stop(&f);
}

static void test_statuses_and_odd_answers(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    uint8_t *response = NULL;
    size_t len = 0;
    icbd_status status;
    icbd_code code = icbd_unary(f.conn, "/icbd.test.v1.Test/Fail", "x", 1, NULL, &response, &len, &status);
    CHECK(code == ICBD_NOT_FOUND && status.from_server && strcmp(status.message, "no such thing") == 0, "%s %s",
          icbd_code_name(code), status.message);
    char value[32];
    CHECK(icbd_status_detail(&status, "reason", value, sizeof value) && strcmp(value, "test") == 0, "details '%s'",
          status.details);
    CHECK(response == NULL, "a response with an error status");

    code = icbd_unary(f.conn, "/icbd.test.v1.Test/Nope", "", 0, NULL, &response, &len, &status);
    CHECK(code == ICBD_UNIMPLEMENTED && strstr(status.message, "unknown method"), "%s %s", icbd_code_name(code),
          status.message);

    code = icbd_unary(f.conn, "/icbd.test.v1.Test/Twice", "", 0, NULL, &response, &len, &status);
    CHECK(code == ICBD_INTERNAL && strstr(status.message, "2 responses"), "%s %s", icbd_code_name(code),
          status.message);

    // An empty response is a valid message: a non-NULL pointer and length 0.
    code = icbd_unary(f.conn, "/icbd.test.v1.Test/Echo", "", 0, NULL, &response, &len, &status);
    CHECK(code == ICBD_OK && response != NULL && len == 0, "%s %s", icbd_code_name(code), status.message);
    free(response);

    icbd_metadata metadata[] = {{"trace", "t-1"}, {"who", "test"}};
    icbd_call_options options = {.timeout_ms = 1234, .metadata = metadata, .metadata_count = 2};
    CHECK(icbd_unary(f.conn, "/icbd.test.v1.Test/Echo", "m", 1, &options, &response, &len, &status) == ICBD_OK, "%s",
          status.message);
    free(response);
    CHECK(f.stats.last_timeout_ms == 1234 && strcmp(f.stats.last_metadata, "trace=t-1;who=test;") == 0,
          "Open carried timeout %u metadata '%s'", f.stats.last_timeout_ms, f.stats.last_metadata);
    fixture_stop(&f);
}

static void test_invalid_arguments(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    icbd_status status;
    uint8_t *response;
    size_t len;
    CHECK(icbd_unary(f.conn, "no-slash", "", 0, NULL, &response, &len, &status) == ICBD_INVALID_ARGUMENT,
          "a method without slashes");
    uint8_t *huge = malloc(ICBD_MAX_MESSAGE_LENGTH + 1);
    REQUIRE(huge, "out of memory");
    CHECK(icbd_unary(f.conn, "/a.B/C", huge, ICBD_MAX_MESSAGE_LENGTH + 1, NULL, &response, &len, &status) ==
              ICBD_INVALID_ARGUMENT,
          "an oversize request");
    free(huge);
    icbd_call *call;
    REQUIRE(icbd_call_start(f.conn, "/icbd.test.v1.Test/Upload", NULL, &call, &status) == ICBD_OK, "%s",
            status.message);
    CHECK(icbd_call_end(call, &status) == ICBD_OK, "End");
    CHECK(icbd_call_end(call, &status) == ICBD_OK, "a second End is a no-op");
    CHECK(icbd_call_send(call, "x", 1, &status) == ICBD_FAILED_PRECONDITION, "a message after End: %s",
          icbd_code_name(status.code));
    icbd_call_free(call);
    // The connection is still fine.
    CHECK(echo(f.conn, "still here", &status) == ICBD_OK, "%s", status.message);
    fixture_stop(&f);

    icbd_conn *conn = NULL;
    icbd_client_options options = {0};
    CHECK(icbd_connect("127.0.0.1:1", &options, &conn, &status) == ICBD_INVALID_ARGUMENT && !conn, "no files");
    char ca[512], cert[512], key[512];
    snprintf(ca, sizeof ca, "%s/ca.crt", pki);
    snprintf(cert, sizeof cert, "%s/tester.crt", pki);
    snprintf(key, sizeof key, "%s/tester.key", pki);
    options = (icbd_client_options){.ca_file = ca, .cert_file = cert, .key_file = key, .expected_role = "Cache"};
    CHECK(icbd_connect("127.0.0.1:1", &options, &conn, &status) == ICBD_INVALID_ARGUMENT, "role 'Cache'");
    options.expected_role = "cache";
    const char *bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                         ":80",       "::1:80",     "[::1]80",     "host:8x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(icbd_connect(bad[i], &options, &conn, &status) == ICBD_INVALID_ARGUMENT, "address '%s': %s", bad[i],
              status.message);
    }
    options.key_file = ca;
    CHECK(icbd_connect("127.0.0.1:1", &options, &conn, &status) == ICBD_INVALID_ARGUMENT &&
              strstr(status.message, "private key"),
          "a CA certificate as key: %s", status.message);
    options.key_file = key;
    // Nothing listens on port 1.
    CHECK(icbd_connect("127.0.0.1:1", &options, &conn, &status) == ICBD_UNAVAILABLE &&
              strstr(status.message, "cannot connect"),
          "%s", status.message);
}

/* ---------------------------------------------------------------------------------------------
 * Streaming and flow control */

static void test_server_stream_256_mib_with_bounded_memory(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    const uint32_t count = 256, size = 1u << 20;
    uint8_t request[8] = {0, 0, 1, 0, 0, 0x10, 0, 0};  // 256, 1 MiB
    struct rusage before;
    getrusage(RUSAGE_SELF, &before);
    icbd_call *call;
    icbd_status status;
    REQUIRE(icbd_server_stream_start(f.conn, "/icbd.test.v1.Test/Stream", request, sizeof request, NULL, &call,
                                     &status) == ICBD_OK,
            "%s", status.message);
    const uint8_t *data;
    size_t len;
    uint64_t received = 0, messages = 0;
    size_t most_buffered = 0;
    bool pattern_ok = true;
    double start = now_seconds();
    while (icbd_call_recv(call, &data, &len, &status)) {
        size_t buffered = icbd_call_buffered(call);
        if (buffered > most_buffered) most_buffered = buffered;
        for (size_t i = 0; i < len && pattern_ok; i++) {
            if (data[i] != (uint8_t)((received + i) * 7)) pattern_ok = false;
        }
        received += len;
        messages++;
        if (messages % 32 == 0) sleep_ms(20);  // a slow reader: the server must wait, not memory grow
    }
    double seconds = now_seconds() - start;
    CHECK(status.code == ICBD_OK, "%s: %s", icbd_code_name(status.code), status.message);
    CHECK(received == (uint64_t)count * size && messages == count, "%llu bytes in %llu messages",
          (unsigned long long)received, (unsigned long long)messages);
    CHECK(pattern_ok, "the streamed bytes differ from what the server sent");
    CHECK(most_buffered <= ICBD_INITIAL_WINDOW + size, "%zu bytes buffered", most_buffered);
    CHECK(f.stats.credits_received >= 200, "the server got %u Credit frames", f.stats.credits_received);
    struct rusage after;
    getrusage(RUSAGE_SELF, &after);
    long grown_mib = (after.ru_maxrss - before.ru_maxrss) / 1024;
    fprintf(stderr, "  256 MiB in %.2f s (%.0f MiB/s); at most %zu bytes buffered; peak RSS grew %ld MiB\n", seconds,
            256 / seconds, most_buffered, grown_mib);
    // AddressSanitizer keeps freed memory in quarantine, so RSS says nothing there.
    if (!UNDER_ASAN) CHECK(grown_mib < 64, "peak RSS grew %ld MiB while streaming 256 MiB", grown_mib);
    icbd_call_free(call);
    fixture_stop(&f);
}

/* A message larger than the rest of the window may only go once the whole window is back: the
 * client must return the credit of a small message even though it is less than a batch. */
static void test_large_message_after_a_small_one(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    icbd_call *call;
    icbd_status status;
    icbd_call_options options = {.timeout_ms = 3000};
    REQUIRE(icbd_server_stream_start(f.conn, "/icbd.test.v1.Test/SmallThenLarge", "", 0, &options, &call, &status) ==
                ICBD_OK,
            "%s", status.message);
    const uint8_t *data;
    size_t len, sizes[3] = {0};
    int count = 0;
    while (icbd_call_recv(call, &data, &len, &status)) {
        if (count < 3) sizes[count] = len;
        count++;
    }
    CHECK(status.code == ICBD_OK && count == 2 && sizes[0] == 5 && sizes[1] == 6u << 20,
          "%d messages (%zu, %zu): %s %s", count, sizes[0], sizes[1], icbd_code_name(status.code), status.message);
    icbd_call_free(call);
    fixture_stop(&f);
}

static void test_client_stream_within_the_window(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    icbd_call *call;
    icbd_status status;
    REQUIRE(icbd_call_start(f.conn, "/icbd.test.v1.Test/Upload", NULL, &call, &status) == ICBD_OK, "%s",
            status.message);
    size_t big = 5u << 20;  // larger than the window: allowed while the whole window is free
    uint8_t *chunk = calloc(1, big);
    REQUIRE(chunk, "out of memory");
    uint64_t sent = 0;
    bool ok = icbd_call_send(call, chunk, big, &status) == ICBD_OK;
    sent += big;
    for (int i = 0; ok && i < 64; i++) {
        ok = icbd_call_send(call, chunk, 1u << 20, &status) == ICBD_OK;
        sent += 1u << 20;
    }
    for (int i = 0; ok && i < 1000; i++) {
        ok = icbd_call_send(call, chunk, 100, &status) == ICBD_OK;
        sent += 100;
    }
    CHECK(ok, "send: %s", status.message);
    free(chunk);
    uint8_t *response = NULL;
    size_t len = 0;
    CHECK(icbd_call_response(call, &response, &len, &status) == ICBD_OK, "%s", status.message);
    uint64_t total = 0;
    for (size_t i = 0; i < len && i < 8; i++) total = total << 8 | response[i];
    CHECK(len == 8 && total == sent, "the server counted %llu of %llu bytes", (unsigned long long)total,
          (unsigned long long)sent);
    free(response);
    icbd_call_free(call);
    fixture_stop(&f);  // the peer records a violation if the client ever exceeded its window
}

static void test_bench_stream_with_protobuf(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    Icbd__Bench__V1__StreamRequest request = ICBD__BENCH__V1__STREAM_REQUEST__INIT;
    request.count = 10;
    request.size = 1000;
    icbd_call *call;
    icbd_status status;
    REQUIRE(icbd_server_stream_start_pb(f.conn, "/icbd.bench.v1.Bench/Stream", &request.base, NULL, &call, &status) ==
                ICBD_OK,
            "%s", status.message);
    ProtobufCMessage *message;
    unsigned count = 0;
    while (icbd_call_recv_pb(call, &icbd__bench__v1__payload__descriptor, &message, &status)) {
        Icbd__Bench__V1__Payload *payload = (Icbd__Bench__V1__Payload *)message;
        CHECK(payload->data.len == 1000, "payload of %zu bytes", payload->data.len);
        count++;
        protobuf_c_message_free_unpacked(message, NULL);
    }
    CHECK(status.code == ICBD_OK && count == 10, "%u payloads, %s", count, status.message);
    icbd_call_free(call);

    // A response that does not decode as the type asked for ends the call with INTERNAL.
    REQUIRE(icbd_server_stream_start_pb(f.conn, "/icbd.bench.v1.Bench/Stream", &request.base, NULL, &call, &status) ==
                ICBD_OK,
            "%s", status.message);
    int got = icbd_call_recv_pb(call, &icbd__rpc__v1__frame__descriptor, &message, &status);
    CHECK(got == 0 && status.code == ICBD_INTERNAL && strstr(status.message, "does not decode"), "%s", status.message);
    icbd_call_free(call);
    CHECK(echo(f.conn, "after", &status) == ICBD_OK, "%s", status.message);
    fixture_stop(&f);
}

/* ---------------------------------------------------------------------------------------------
 * Deadlines and cancellation */

static void test_deadline_gives_up_and_cancels(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    uint8_t *response = NULL;
    size_t len = 0;
    icbd_status status;
    icbd_call_options options = {.timeout_ms = 200};
    double start = now_seconds();
    icbd_code code = icbd_unary(f.conn, "/icbd.test.v1.Test/Silent", "", 0, &options, &response, &len, &status);
    double took = now_seconds() - start;
    CHECK(code == ICBD_DEADLINE_EXCEEDED, "%s: %s", icbd_code_name(code), status.message);
    // Not before the deadline plus the one-second grace (no upper bound: machines are slow).
    CHECK(took >= 1.15, "gave up after %.2f s; want the deadline plus one second", took);
    pthread_mutex_lock(&f.stats.mu);
    unsigned timeout_ms = f.stats.last_timeout_ms;
    pthread_mutex_unlock(&f.stats.mu);
    CHECK(timeout_ms == 200, "timeout_ms %u", timeout_ms);
    for (int i = 0; i < 200 && read_cancels(&f.stats) == 0; i++) sleep_ms(10);
    CHECK(read_cancels(&f.stats) == 1, "the server saw %u Cancel frames", read_cancels(&f.stats));
    CHECK(echo(f.conn, "after a deadline", &status) == ICBD_OK, "%s", status.message);
    fixture_stop(&f);
}

static void test_freeing_a_stream_cancels_it(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    uint8_t request[8] = {0, 0, 0x10, 0, 0, 0x01, 0, 0};  // 4096 messages of 64 KiB: 256 MiB
    icbd_call *call;
    icbd_status status;
    REQUIRE(icbd_server_stream_start(f.conn, "/icbd.test.v1.Test/Stream", request, sizeof request, NULL, &call,
                                     &status) == ICBD_OK,
            "%s", status.message);
    const uint8_t *data;
    size_t len;
    CHECK(icbd_call_recv(call, &data, &len, &status) == 1 && len == 65536, "first message");
    icbd_call_free(call);
    for (int i = 0; i < 300 && read_cancels(&f.stats) == 0; i++) sleep_ms(10);
    CHECK(read_cancels(&f.stats) == 1, "the server saw %u Cancel frames", read_cancels(&f.stats));
    CHECK(f.stats.streamed < 64u << 20, "the server streamed %llu bytes after the cancel",
          (unsigned long long)f.stats.streamed);
    CHECK(echo(f.conn, "after a cancel", &status) == ICBD_OK, "%s", status.message);
    fixture_stop(&f);
}

static void test_close_with_calls_open(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    icbd_call *call;
    icbd_status status;
    REQUIRE(icbd_server_stream_start(f.conn, "/icbd.test.v1.Test/Silent", "", 0, NULL, &call, &status) == ICBD_OK, "%s",
            status.message);
    icbd_close(f.conn);
    const uint8_t *data;
    size_t len;
    CHECK(icbd_call_recv(call, &data, &len, &status) == 0 && status.code == ICBD_UNAVAILABLE &&
              strstr(status.message, "icbd_close"),
          "%s: %s", icbd_code_name(status.code), status.message);
    icbd_call_free(call);  // frees the connection too: ASan reports a leak or a use after free otherwise
    peer_stop(f.p);
    check_no_violation(&f.stats);
}

/* ---------------------------------------------------------------------------------------------
 * Threads */

typedef struct worker {
    icbd_conn *conn;
    int index;
    int failures;
} worker;

static void *echo_worker(void *arg) {
    worker *w = arg;
    for (int i = 0; i < 100; i++) {
        char text[64];
        snprintf(text, sizeof text, "worker %d call %d", w->index, i);
        icbd_status status;
        if (echo(w->conn, text, &status) != ICBD_OK) {
            if (w->failures++ == 0) fprintf(stderr, "  worker %d: %s\n", w->index, status.message);
        }
    }
    return NULL;
}

static void *stream_worker(void *arg) {
    worker *w = arg;
    uint8_t request[8] = {0, 0, 0, 64, 0, 0x04, 0, 0};  // 64 messages of 256 KiB
    icbd_call *call;
    icbd_status status;
    if (icbd_server_stream_start(w->conn, "/icbd.test.v1.Test/Stream", request, sizeof request, NULL, &call, &status) !=
        ICBD_OK) {
        w->failures++;
        return NULL;
    }
    const uint8_t *data;
    size_t len, total = 0;
    while (icbd_call_recv(call, &data, &len, &status)) total += len;
    if (status.code != ICBD_OK || total != 64u << 18) w->failures++;
    icbd_call_free(call);
    return NULL;
}

static void test_threads_share_a_connection(void) {
    fixture f;
    REQUIRE(fixture_start(&f), "fixture");
    enum { THREADS = 8 };
    pthread_t threads[THREADS + 1];
    worker workers[THREADS + 1];
    for (int i = 0; i <= THREADS; i++) {
        workers[i] = (worker){.conn = f.conn, .index = i};
        pthread_create(&threads[i], NULL, i == THREADS ? stream_worker : echo_worker, &workers[i]);
    }
    int failures = 0;
    for (int i = 0; i <= THREADS; i++) {
        pthread_join(threads[i], NULL);
        failures += workers[i].failures;
    }
    CHECK(failures == 0, "%d calls failed", failures);
    CHECK(f.stats.calls == THREADS * 100 + 1, "the server saw %u calls", f.stats.calls);
    fixture_stop(&f);
}

/* ---------------------------------------------------------------------------------------------
 * Keepalive */

typedef struct ping_script {
    bool answer;  // answer the client's keepalive Pings
    unsigned pings_seen;
    bool ack_received;  // our Ping{nonce: 42} came back acked
} ping_script;

static void send_ping(peer_conn *c, uint64_t nonce, bool ack) {
    icbd_bytes out = {0};
    char error[128];
    if (icbd_frame_append_ping(&out, nonce, ack, error, sizeof error)) peer_send_raw(c, out.data, out.len);
    icbd_bytes_free(&out);
}

static void ping_behaviour(peer_conn *c, void *arg) {
    ping_script *script = arg;
    peer_set_answer_pings(c, false);
    send_ping(c, 42, false);
    bool first = true;
    icbd_frame *frame;
    while ((frame = peer_read(c, 5000)) != NULL) {
        if (frame->kind_case == ICBD__RPC__V1__FRAME__KIND_PING) {
            if (frame->ping->ack && frame->ping->nonce == 42) {
                script->ack_received = true;
            } else if (!frame->ping->ack) {
                // The first Ping is icbd_connect's round trip: always answered.
                if (!first) __atomic_add_fetch(&script->pings_seen, 1, __ATOMIC_SEQ_CST);
                if (first || script->answer) send_ping(c, frame->ping->nonce, true);
                first = false;
            }
        }
        icbd_frame_free(frame);
    }
}

static void test_keepalive(void) {
    // A generous timeout: a loaded machine may answer a Ping late without the peer being dead.
    icbd_client_options fast = {.keepalive_interval_ms = 100, .keepalive_timeout_ms = 2000};
    icbd_status status;
    // A server that answers: the connection stays up, pinged every 100 ms, and our Ping is acked.
    ping_script answering = {.answer = true};
    peer *p = start_peer(pki, "peer", ping_behaviour, &answering);
    REQUIRE(p, "peer");
    icbd_conn *conn;
    icbd_code code = connect_as("127.0.0.1", p, "cache", pki, "tester", &fast, &conn, &status);
    CHECK(code == ICBD_OK, "%s", status.message);
    if (code == ICBD_OK) {
        // Wait for five keepalive Pings (no time limit but the test's own: machines are slow).
        while (__atomic_load_n(&answering.pings_seen, __ATOMIC_SEQ_CST) < 5) sleep_ms(10);
        CHECK(icbd_conn_usable(conn, &status), "a connection with answered Pings failed: %s", status.message);
        icbd_close(conn);
    }
    peer_stop(p);
    CHECK(answering.pings_seen >= 5, "the server saw %u keepalive Pings", answering.pings_seen);
    CHECK(answering.ack_received, "the client did not answer the server's Ping");

    // A server that stops answering: the client closes within the keepalive timeout.
    ping_script silent = {.answer = false};
    p = start_peer(pki, "peer", ping_behaviour, &silent);
    REQUIRE(p, "peer");
    code = connect_as("127.0.0.1", p, "cache", pki, "tester", &fast, &conn, &status);
    CHECK(code == ICBD_OK, "%s", status.message);
    if (code == ICBD_OK) {
        double start = now_seconds();
        while (icbd_conn_usable(conn, &status) && now_seconds() - start < 60) sleep_ms(10);
        double took = now_seconds() - start;
        CHECK(!icbd_conn_usable(conn, &status) && strstr(status.message, "did not answer a Ping"), "after %.2f s: %s",
              took, status.message);
        uint8_t *response;
        size_t len;
        CHECK(icbd_unary(conn, "/icbd.test.v1.Test/Echo", "", 0, NULL, &response, &len, &status) == ICBD_UNAVAILABLE,
              "a call on a failed connection: %s", icbd_code_name(status.code));
        icbd_close(conn);
    }
    peer_stop(p);
}

/* ---------------------------------------------------------------------------------------------
 * Certificates */

static void test_refused_server_certificates(void) {
    struct {
        const char *dir_suffix;  // "" or "/other"
        const char *name;
        const char *host;
        const char *role;
        const char *reason;  // in the error message
    } cases[] = {
        {"/other", "peer", "127.0.0.1", "cache", "not issued by the deployment CA"},
        {"", "peer-catalog", "127.0.0.1", "cache", "expected role cache"},
        {"", "peer", "127.0.0.1", "catalog", "expected role catalog"},
        {"", "peer-two-uris", "127.0.0.1", "cache", "exactly one SAN URI"},
        {"", "peer-no-uri", "127.0.0.1", "cache", "exactly one SAN URI"},
        {"", "peer-bad-uri", "127.0.0.1", "cache", "icbd://Cache/peer"},
        {"", "peer-client-only", "127.0.0.1", "cache", "serverAuth"},
        {"", "peer-dns-only", "127.0.0.1", "cache", "IP address"},
        {"", "peer-expired", "127.0.0.1", "cache", "expired"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s%s", pki, cases[i].dir_suffix);
        peer_stats stats;
        peer_stats_init(&stats);
        peer *p = start_peer(dir, cases[i].name, peer_serve, &stats);
        REQUIRE(p, "peer");
        icbd_conn *conn = NULL;
        icbd_status status;
        icbd_code code = connect_as(cases[i].host, p, cases[i].role, pki, "tester", NULL, &conn, &status);
        CHECK(code == ICBD_UNAVAILABLE && conn == NULL, "%s%s accepted", cases[i].dir_suffix, cases[i].name);
        CHECK(strstr(status.message, cases[i].reason) != NULL, "%s: message '%s' lacks '%s'", cases[i].name,
              status.message, cases[i].reason);
        if (i == 0) fprintf(stderr, "  e.g. %s\n", status.message);
        peer_stop(p);
        CHECK(stats.connections == 0, "the peer served a refused connection");
        pthread_mutex_destroy(&stats.mu);
    }
    // The certificate without an IP SAN is fine when dialled by its DNS name.
    peer_stats stats;
    peer_stats_init(&stats);
    peer *p = start_peer(pki, "peer-dns-only", peer_serve, &stats);
    REQUIRE(p, "peer");
    icbd_conn *conn = NULL;
    icbd_status status;
    CHECK(connect_as("localhost", p, "cache", pki, "tester", NULL, &conn, &status) == ICBD_OK, "localhost: %s",
          status.message);
    icbd_close(conn);
    peer_stop(p);
    pthread_mutex_destroy(&stats.mu);
}

static void test_server_refuses_client_certificate(void) {
    peer_stats stats;
    peer_stats_init(&stats);
    peer *p = start_peer(pki, "peer", peer_serve, &stats);
    REQUIRE(p, "peer");
    char other[512];
    snprintf(other, sizeof other, "%s/other", pki);
    icbd_conn *conn = NULL;
    icbd_status status;
    // The client trusts the peer, but presents a certificate from another CA: TLS 1.3 tells it
    // only after its handshake, and icbd_connect's Ping round trip reports it.
    icbd_code code = connect_as("127.0.0.1", p, "cache", other, "tester", NULL, &conn, &status);
    CHECK(code == ICBD_UNAVAILABLE && conn == NULL, "a client certificate from another CA was accepted");
    CHECK(strstr(status.message, "refuses a client certificate") != NULL, "message: %s", status.message);
    fprintf(stderr, "  e.g. %s\n", status.message);
    peer_stop(p);
    CHECK(stats.connections == 0, "the peer served the refused client");
    pthread_mutex_destroy(&stats.mu);
}

/* ---------------------------------------------------------------------------------------------
 * A server that breaks the protocol */

typedef enum misbehaviour {
    ZERO_LENGTH,
    OVERSIZE_LENGTH,
    NOT_A_FRAME,
    OPEN_FROM_SERVER,
    UNOPENED_STREAM,
    PING_ON_STREAM,
    STATUS_ON_STREAM_ZERO,
    BEYOND_WINDOW,
    CLOSE_MID_CALL,
} misbehaviour;

typedef struct misbehaviour_case {
    misbehaviour what;
    const char *reason;
    bool client_closed;  // set by the peer's thread; read after peer_stop joined it
} misbehaviour_case;

static void misbehave(peer_conn *c, void *arg) {
    misbehaviour_case *m = arg;
    icbd_frame *open = peer_read(c, 5000);  // the client's first call
    if (!open) return;
    uint32_t id = open->stream;
    icbd_frame_free(open);
    icbd_bytes out = {0};
    char error[128];
    switch (m->what) {
    case ZERO_LENGTH: peer_send_raw(c, "\0\0\0\0", 4); break;
    case OVERSIZE_LENGTH: peer_send_raw(c, "\x01\x00\x00\x01", 4); break;
    case NOT_A_FRAME: peer_send_raw(c, "\0\0\0\3\xff\xff\xff", 7); break;
    case OPEN_FROM_SERVER: icbd_frame_append_open(&out, id, "/x.Y/Z", 0, NULL, NULL, 0, error, sizeof error); break;
    case UNOPENED_STREAM: icbd_frame_append_message(&out, id + 5, "x", 1, error, sizeof error); break;
    case PING_ON_STREAM: {
        Icbd__Rpc__V1__Ping ping = ICBD__RPC__V1__PING__INIT;
        icbd_frame frame = ICBD__RPC__V1__FRAME__INIT;
        frame.stream = id;
        frame.kind_case = ICBD__RPC__V1__FRAME__KIND_PING;
        frame.ping = &ping;
        icbd_frame_append(&out, &frame, error, sizeof error);
        break;
    }
    case STATUS_ON_STREAM_ZERO: icbd_frame_append_status(&out, 0, 0, "", error, sizeof error); break;
    case BEYOND_WINDOW: {
        uint8_t *mib = calloc(1, 1u << 20);
        if (!mib) break;
        for (int i = 0; i < 5; i++) icbd_frame_append_message(&out, id, mib, 1u << 20, error, sizeof error);
        free(mib);
        break;
    }
    case CLOSE_MID_CALL: return;
    }
    if (out.len) peer_send_raw(c, out.data, out.len);
    icbd_bytes_free(&out);
    // Wait for the client to close the connection.
    icbd_frame *frame;
    while ((frame = peer_read(c, 5000)) != NULL) icbd_frame_free(frame);
    m->client_closed = peer_client_closed(c);
}

static void test_protocol_errors_close_the_connection(void) {
    misbehaviour_case cases[] = {
        {ZERO_LENGTH, "frame length 0 is outside", false},
        {OVERSIZE_LENGTH, "frame length 16777217 is outside", false},
        {NOT_A_FRAME, "do not decode", false},
        {OPEN_FROM_SERVER, "Open sent by a server", false},
        {UNOPENED_STREAM, "for unopened stream", false},
        {PING_ON_STREAM, "Ping on stream 1", false},
        {STATUS_ON_STREAM_ZERO, "Status on stream 0", false},
        {BEYOND_WINDOW, "flow-control window", false},
        {CLOSE_MID_CALL, "closed the connection", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        peer *p = start_peer(pki, "peer", misbehave, &cases[i]);
        REQUIRE(p, "peer");
        icbd_conn *conn;
        icbd_status status;
        icbd_code code = connect_tester(p, &conn, &status);
        CHECK(code == ICBD_OK, "%s", status.message);
        if (code != ICBD_OK) {
            peer_stop(p);
            continue;
        }
        icbd_call *call;
        CHECK(icbd_server_stream_start(conn, "/icbd.test.v1.Test/Stream", "", 0, NULL, &call, &status) == ICBD_OK, "%s",
              status.message);
        // The client does not read until the damage is done, so a window can be exceeded.
        sleep_ms(300);
        const uint8_t *data;
        size_t len;
        int got;
        while ((got = icbd_call_recv(call, &data, &len, &status)) == 1) {
        }
        CHECK(status.code == ICBD_UNAVAILABLE && strstr(status.message, cases[i].reason),
              "case %zu: %s: %s (want '%s')", i, icbd_code_name(status.code), status.message, cases[i].reason);
        icbd_call_free(call);
        CHECK(!icbd_conn_usable(conn, &status), "case %zu: the connection is still usable", i);
        uint8_t *response;
        CHECK(icbd_unary(conn, "/icbd.test.v1.Test/Echo", "", 0, NULL, &response, &len, &status) == ICBD_UNAVAILABLE,
              "case %zu: a later call was not refused at once", i);
        icbd_close(conn);
        peer_stop(p);
        CHECK(cases[i].what == CLOSE_MID_CALL || cases[i].client_closed,
              "case %zu: the client kept the connection open", i);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PKI_DIR (made by tests/mkpki.sh)\n", argv[0]);
        return 2;
    }
    pki = argv[1];
    RUN(test_unary_health);
    RUN(test_statuses_and_odd_answers);
    RUN(test_invalid_arguments);
    RUN(test_server_stream_256_mib_with_bounded_memory);
    RUN(test_large_message_after_a_small_one);
    RUN(test_client_stream_within_the_window);
    RUN(test_bench_stream_with_protobuf);
    RUN(test_deadline_gives_up_and_cancels);
    RUN(test_freeing_a_stream_cancels_it);
    RUN(test_close_with_calls_open);
    RUN(test_threads_share_a_connection);
    RUN(test_keepalive);
    RUN(test_refused_server_certificates);
    RUN(test_server_refuses_client_certificate);
    RUN(test_protocol_errors_close_the_connection);
    return testing_summary("test-client");
}
