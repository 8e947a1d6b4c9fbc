/*
 * libicbd against the Swift services (started by scripts/test-c-client): Health, an unknown
 * method, certificates refused both ways, deadlines and cancellation answered by the Swift
 * server, threads sharing a connection, and the catalog's streams in both directions:
 * PutManifest (client-streaming) uploads and GetManifest (server-streaming) reads back
 * --manifest-files x 32 MiB of manifests (8: 256 MiB each way) with bounded memory; Watch
 * follows a change made on the same connection; ListImages pages; a proto3 optional field set
 * to 0 arrives as present.
 *
 * usage: test-interop --address HOST:PORT --tls-dir DIR --node NAME
 *                     [--foreign-address HOST:PORT] [--other-tls-dir DIR] [--manifest-files N]
 *   --foreign-address: a catalog whose certificate comes from another CA (must be refused)
 *   --other-tls-dir:   ca.crt and admin.* of another CA (the catalog must refuse this client)
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "icbd.h"
#include "icbd/catalog/v1/catalog.pb-c.h"
#include "icbd/rpc/v1/health.pb-c.h"
#include "testing.h"

static const char *address, *tls_dir, *node, *foreign_address, *other_tls_dir;
static unsigned manifest_files = 8;

/** A fresh image name per run, so the test can run against a catalog again. */
static char image_name[64];

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static icbd_code connect_to(const char *target, const char *role, const char *dir, icbd_conn **conn,
                            icbd_status *status) {
    char ca[512], cert[512], key[512];
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    snprintf(cert, sizeof cert, "%s/admin.crt", dir);
    snprintf(key, sizeof key, "%s/admin.key", dir);
    icbd_client_options options = {.ca_file = ca, .cert_file = cert, .key_file = key, .expected_role = role};
    return icbd_connect(target, &options, conn, status);
}

static icbd_code health(icbd_conn *conn, Icbd__Rpc__V1__HealthCheckResponse **response, icbd_status *status) {
    Icbd__Rpc__V1__HealthCheckRequest request = ICBD__RPC__V1__HEALTH_CHECK_REQUEST__INIT;
    icbd_call_options options = {.timeout_ms = 5000};
    return icbd_unary_pb(conn, "/icbd.rpc.v1.Health/Check", &request.base,
                         &icbd__rpc__v1__health_check_response__descriptor, (ProtobufCMessage **)response, &options,
                         status);
}

/* ---------------------------------------------------------------------------------------------
 * Health, errors, certificates */

static void test_health(void) {
    icbd_conn *conn;
    icbd_status status;
    REQUIRE(connect_to(address, "catalog", tls_dir, &conn, &status) == ICBD_OK, "%s", status.message);
    char expected_peer[128];
    snprintf(expected_peer, sizeof expected_peer, "icbd://catalog/%s", node);
    CHECK(strcmp(icbd_conn_peer(conn), expected_peer) == 0, "peer %s", icbd_conn_peer(conn));
    Icbd__Rpc__V1__HealthCheckResponse *response = NULL;
    icbd_code code = health(conn, &response, &status);
    CHECK(code == ICBD_OK, "%s: %s", icbd_code_name(code), status.message);
    if (response) {
        CHECK(response->status == ICBD__RPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING, "status %d",
              response->status);
        CHECK(strcmp(response->role, "catalog") == 0 && strcmp(response->node, node) == 0, "role %s node %s",
              response->role, response->node);
        CHECK(response->version[0] != '\0', "no version");
        protobuf_c_message_free_unpacked(&response->base, NULL);
    }
    uint8_t *bytes;
    size_t len;
    code = icbd_unary(conn, "/icbd.rpc.v1.Health/NoSuchMethod", "", 0, NULL, &bytes, &len, &status);
    CHECK(code == ICBD_UNIMPLEMENTED && status.from_server, "an unknown method: %s %s", icbd_code_name(code),
          status.message);
    // A request that does not decode: the server answers INVALID_ARGUMENT.
    code = icbd_unary(conn, "/icbd.rpc.v1.Health/Check", "\xff\xff\xff", 3, NULL, &bytes, &len, &status);
    CHECK(code == ICBD_INVALID_ARGUMENT && status.from_server, "an undecodable request: %s %s", icbd_code_name(code),
          status.message);
    icbd_close(conn);

    // The same catalog by DNS name (its certificate names localhost).
    char by_name[128];
    const char *port = strrchr(address, ':');
    snprintf(by_name, sizeof by_name, "localhost%s", port ? port : "");
    CHECK(connect_to(by_name, "catalog", tls_dir, &conn, &status) == ICBD_OK, "%s: %s", by_name, status.message);
    icbd_close(conn);
}

static void test_certificates_refused_both_ways(void) {
    icbd_conn *conn = NULL;
    icbd_status status;
    icbd_code code = connect_to(address, "cache", tls_dir, &conn, &status);
    CHECK(code == ICBD_UNAVAILABLE && strstr(status.message, "expected role cache"), "a catalog taken for a cache: %s",
          status.message);
    if (foreign_address) {
        code = connect_to(foreign_address, "catalog", tls_dir, &conn, &status);
        CHECK(code == ICBD_UNAVAILABLE && strstr(status.message, "not issued by the deployment CA"),
              "a catalog from another CA: %s %s", icbd_code_name(code), status.message);
        fprintf(stderr, "  server from another CA: %s\n", status.message);
    }
    if (other_tls_dir) {
        // Trust the catalog (the deployment CA) but present a client certificate from another CA.
        char ca[512], cert[512], key[512];
        snprintf(ca, sizeof ca, "%s/ca.crt", tls_dir);
        snprintf(cert, sizeof cert, "%s/admin.crt", other_tls_dir);
        snprintf(key, sizeof key, "%s/admin.key", other_tls_dir);
        icbd_client_options options = {.ca_file = ca, .cert_file = cert, .key_file = key, .expected_role = "catalog"};
        code = icbd_connect(address, &options, &conn, &status);
        CHECK(code == ICBD_UNAVAILABLE && strstr(status.message, "refuses a client certificate"),
              "a client from another CA: %s %s", icbd_code_name(code), status.message);
        fprintf(stderr, "  client from another CA: %s\n", status.message);
    }
}

typedef struct worker {
    icbd_conn *conn;
    int failures;
} worker;

static void *health_worker(void *arg) {
    worker *w = arg;
    for (int i = 0; i < 50; i++) {
        Icbd__Rpc__V1__HealthCheckResponse *response = NULL;
        icbd_status status;
        if (health(w->conn, &response, &status) != ICBD_OK) {
            if (w->failures++ == 0) fprintf(stderr, "  %s\n", status.message);
        } else {
            protobuf_c_message_free_unpacked(&response->base, NULL);
        }
    }
    return NULL;
}

static void test_threads_share_a_connection(void) {
    icbd_conn *conn;
    icbd_status status;
    REQUIRE(connect_to(address, "catalog", tls_dir, &conn, &status) == ICBD_OK, "%s", status.message);
    enum { THREADS = 8 };
    pthread_t threads[THREADS];
    worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (worker){.conn = conn};
        pthread_create(&threads[i], NULL, health_worker, &workers[i]);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        failures += workers[i].failures;
    }
    CHECK(failures == 0, "%d of %d calls failed", failures, THREADS * 50);
    icbd_close(conn);
}

/* ---------------------------------------------------------------------------------------------
 * Catalog: publishing a version with large manifests, and reading them back */

#define CHUNKS_PER_FILE (1u << 20) /* the catalog's maximum: 32 MiB of manifest */
#define CHUNK_SIZE 4096
#define UPLOAD_PIECE (1u << 20) /* entries per PutManifest message: 1 MiB */

/** Deterministic manifest entries of file `file`, from entry `first` on. */
static void fill_entries(unsigned file, uint64_t first, uint8_t *out, size_t len) {
    for (size_t i = 0; i < len; i += 8) {
        uint64_t x = (first * 32 + i) / 8 * 0x9e3779b97f4a7c15ull + file * 0xbf58476d1ce4e5b9ull + 1;
        x ^= x >> 31;
        x *= 0x94d049bb133111ebull;
        x ^= x >> 29;
        memcpy(out + i, &x, 8);
    }
}

/** The manifest digest as icbd defines it: SHA-256("icbd.manifest.v1" | chunk size | size | entries). */
static bool manifest_digest(unsigned file, uint8_t digest[32]) {
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    uint8_t *piece = malloc(UPLOAD_PIECE);
    bool ok = sha && piece && EVP_DigestInit_ex(sha, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(sha, "icbd.manifest.v1", 16) == 1;
    uint64_t header[2] = {CHUNK_SIZE, (uint64_t)CHUNKS_PER_FILE * CHUNK_SIZE};
    for (int h = 0; ok && h < 2; h++) {
        uint8_t be[8];
        for (int b = 0; b < 8; b++) be[b] = (uint8_t)(header[h] >> (56 - 8 * b));
        ok = EVP_DigestUpdate(sha, be, 8) == 1;
    }
    for (uint64_t at = 0; ok && at < (uint64_t)CHUNKS_PER_FILE * 32; at += UPLOAD_PIECE) {
        fill_entries(file, at / 32, piece, UPLOAD_PIECE);
        ok = EVP_DigestUpdate(sha, piece, UPLOAD_PIECE) == 1;
    }
    unsigned int len = 0;
    ok = ok && EVP_DigestFinal_ex(sha, digest, &len) == 1 && len == 32;
    EVP_MD_CTX_free(sha);
    free(piece);
    return ok;
}

static int64_t create_version(icbd_conn *conn, icbd_status *status) {
    Icbd__Catalog__V1__CreateImageRequest image = ICBD__CATALOG__V1__CREATE_IMAGE_REQUEST__INIT;
    image.name = image_name;
    image.description = "created by libicbd's interop test";
    image.if_missing = 1;
    ProtobufCMessage *answer = NULL;
    if (icbd_unary_pb(conn, "/icbd.catalog.v1.Catalog/CreateImage", &image.base,
                      &icbd__catalog__v1__create_image_response__descriptor, &answer, NULL, status) != ICBD_OK) {
        return -1;
    }
    protobuf_c_message_free_unpacked(answer, NULL);

    Icbd__Catalog__V1__FileSpec specs[64];
    Icbd__Catalog__V1__FileSpec *spec_pointers[64];
    uint8_t digests[64][32];
    char paths[64][32];
    for (unsigned f = 0; f < manifest_files; f++) {
        if (!manifest_digest(f, digests[f])) {
            snprintf(status->message, sizeof status->message, "SHA-256 failed");
            status->code = ICBD_INTERNAL;
            return -1;
        }
        snprintf(paths[f], sizeof paths[f], "disk%u.raw", f);
        Icbd__Catalog__V1__FileSpec spec = ICBD__CATALOG__V1__FILE_SPEC__INIT;
        spec.path = paths[f];
        spec.size = (int64_t)CHUNKS_PER_FILE * CHUNK_SIZE;
        spec.chunk_size = CHUNK_SIZE;
        spec.manifest_sha256 = (ProtobufCBinaryData){.len = 32, .data = digests[f]};
        specs[f] = spec;
        spec_pointers[f] = &specs[f];
    }
    Icbd__Catalog__V1__CreateVersionRequest request = ICBD__CATALOG__V1__CREATE_VERSION_REQUEST__INIT;
    request.image = image_name;
    request.btrfs_uuid = "0c1d2e3f-0000-4000-8000-00000000c11e";
    request.n_files = manifest_files;
    request.files = spec_pointers;
    if (icbd_unary_pb(conn, "/icbd.catalog.v1.Catalog/CreateVersion", &request.base,
                      &icbd__catalog__v1__create_version_response__descriptor, &answer, NULL, status) != ICBD_OK) {
        return -1;
    }
    Icbd__Catalog__V1__CreateVersionResponse *created = (Icbd__Catalog__V1__CreateVersionResponse *)answer;
    int64_t number = created->version ? created->version->number : -1;
    protobuf_c_message_free_unpacked(answer, NULL);
    return number;
}

/** PutManifest: the entries of one file in 1 MiB messages. */
static icbd_code upload_manifest(icbd_conn *conn, int64_t version, unsigned file, icbd_status *status) {
    icbd_call *call;
    icbd_call_options options = {.timeout_ms = 600000};
    icbd_code code = icbd_call_start(conn, "/icbd.catalog.v1.Catalog/PutManifest", &options, &call, status);
    if (code != ICBD_OK) return code;
    char path[32];
    snprintf(path, sizeof path, "disk%u.raw", file);
    uint8_t *piece = malloc(UPLOAD_PIECE);
    if (!piece) abort();
    for (uint64_t at = 0; code == ICBD_OK && at < (uint64_t)CHUNKS_PER_FILE * 32; at += UPLOAD_PIECE) {
        fill_entries(file, at / 32, piece, UPLOAD_PIECE);
        Icbd__Catalog__V1__PutManifestRequest request = ICBD__CATALOG__V1__PUT_MANIFEST_REQUEST__INIT;
        if (at == 0) {
            request.image = image_name;
            request.version = version;
            request.path = path;
        }
        request.entries = (ProtobufCBinaryData){.len = UPLOAD_PIECE, .data = piece};
        code = icbd_call_send_pb(call, &request.base, status);
    }
    free(piece);
    uint8_t *response = NULL;
    size_t len = 0;
    if (code == ICBD_OK) code = icbd_call_response(call, &response, &len, status);
    if (code == ICBD_OK) {
        Icbd__Catalog__V1__PutManifestResponse *stored =
            icbd__catalog__v1__put_manifest_response__unpack(NULL, len, response);
        if (!stored || !stored->file || !stored->file->manifest_stored) {
            code = ICBD_INTERNAL;
            snprintf(status->message, sizeof status->message, "PutManifest answered without a stored manifest");
        }
        if (stored) icbd__catalog__v1__put_manifest_response__free_unpacked(stored, NULL);
    }
    free(response);
    icbd_call_free(call);
    return code;
}

/** GetManifest: reads one file's manifest back and compares every entry. */
static icbd_code download_manifest(icbd_conn *conn, int64_t version, unsigned file, size_t *most_buffered,
                                   icbd_status *status) {
    char path[32];
    snprintf(path, sizeof path, "disk%u.raw", file);
    Icbd__Catalog__V1__GetManifestRequest request = ICBD__CATALOG__V1__GET_MANIFEST_REQUEST__INIT;
    request.image = image_name;
    request.version = version;
    request.path = path;
    icbd_call *call;
    icbd_call_options options = {.timeout_ms = 600000};
    icbd_code code = icbd_server_stream_start_pb(conn, "/icbd.catalog.v1.Catalog/GetManifest", &request.base, &options,
                                                 &call, status);
    if (code != ICBD_OK) return code;
    uint64_t next = 0;
    uint8_t *expected = NULL;
    size_t expected_cap = 0;
    bool same = true;
    ProtobufCMessage *message;
    while (icbd_call_recv_pb(call, &icbd__catalog__v1__manifest_chunk__descriptor, &message, status)) {
        size_t buffered = icbd_call_buffered(call);
        if (buffered > *most_buffered) *most_buffered = buffered;
        Icbd__Catalog__V1__ManifestChunk *chunk = (Icbd__Catalog__V1__ManifestChunk *)message;
        if ((uint64_t)chunk->first_chunk != next || chunk->entries.len % 32 != 0) same = false;
        if (chunk->entries.len > expected_cap) {
            free(expected);
            expected_cap = chunk->entries.len;
            expected = malloc(expected_cap);
            if (!expected) abort();
        }
        if (same && chunk->entries.len) {
            fill_entries(file, next, expected, chunk->entries.len);
            same = memcmp(expected, chunk->entries.data, chunk->entries.len) == 0;
        }
        next += chunk->entries.len / 32;
        protobuf_c_message_free_unpacked(message, NULL);
    }
    free(expected);
    icbd_call_free(call);
    if (status->code != ICBD_OK) return status->code;
    if (!same || next != CHUNKS_PER_FILE) {
        snprintf(status->message, sizeof status->message, "file %u: %llu entries read back, %s", file,
                 (unsigned long long)next, same ? "in order" : "differing from those uploaded");
        status->code = ICBD_DATA_LOSS;
    }
    return status->code;
}

/**
 * proto3 `optional` (rewritten to a oneof for protoc-c): expected_revision 0 must reach the
 * server as present ("the tag must not exist yet"), not as absent ("unconditional").
 */
static void check_optional_field_presence(icbd_conn *conn, int64_t version) {
    for (int attempt = 0; attempt < 2; attempt++) {
        Icbd__Catalog__V1__MoveTagRequest request = ICBD__CATALOG__V1__MOVE_TAG_REQUEST__INIT;
        request.image = image_name;
        request.tag = "c-interop";
        request.version = version;
        request._expected_revision_case = ICBD__CATALOG__V1__MOVE_TAG_REQUEST___EXPECTED_REVISION_EXPECTED_REVISION;
        request.expected_revision = 0;
        ProtobufCMessage *answer = NULL;
        icbd_status status;
        icbd_code code = icbd_unary_pb(conn, "/icbd.catalog.v1.Catalog/MoveTag", &request.base,
                                       &icbd__catalog__v1__move_tag_response__descriptor, &answer, NULL, &status);
        if (attempt == 0) {
            CHECK(code == ICBD_OK, "MoveTag creating a tag: %s %s", icbd_code_name(code), status.message);
        } else {
            // Absent, the field would mean "unconditional" and the call would succeed.
            CHECK((code == ICBD_ALREADY_EXISTS || code == ICBD_ABORTED) && status.from_server,
                  "MoveTag with expected_revision 0 on an existing tag: %s %s", icbd_code_name(code), status.message);
        }
        if (answer) protobuf_c_message_free_unpacked(answer, NULL);
    }
}

static void test_manifests_stream_both_ways(void) {
    icbd_conn *conn;
    icbd_status status;
    REQUIRE(connect_to(address, "catalog", tls_dir, &conn, &status) == ICBD_OK, "%s", status.message);
    int64_t version = create_version(conn, &status);
    REQUIRE(version > 0, "CreateVersion: %s %s", icbd_code_name(status.code), status.message);
    double start = now_seconds();
    for (unsigned f = 0; f < manifest_files; f++) {
        icbd_code code = upload_manifest(conn, version, f, &status);
        REQUIRE(code == ICBD_OK, "PutManifest of file %u: %s %s", f, icbd_code_name(code), status.message);
    }
    double uploaded = now_seconds() - start;
    Icbd__Catalog__V1__CompleteVersionRequest complete = ICBD__CATALOG__V1__COMPLETE_VERSION_REQUEST__INIT;
    complete.image = image_name;
    complete.number = version;
    ProtobufCMessage *answer = NULL;
    icbd_code code = icbd_unary_pb(conn, "/icbd.catalog.v1.Catalog/CompleteVersion", &complete.base,
                                   &icbd__catalog__v1__complete_version_response__descriptor, &answer, NULL, &status);
    REQUIRE(code == ICBD_OK, "CompleteVersion: %s %s", icbd_code_name(code), status.message);
    Icbd__Catalog__V1__CompleteVersionResponse *completed = (Icbd__Catalog__V1__CompleteVersionResponse *)answer;
    CHECK(completed->version && completed->version->state == ICBD__CATALOG__V1__VERSION_STATE__VERSION_STATE_READY,
          "the version is not ready");
    protobuf_c_message_free_unpacked(answer, NULL);
    check_optional_field_presence(conn, version);
    start = now_seconds();
    size_t most_buffered = 0;
    for (unsigned f = 0; f < manifest_files; f++) {
        code = download_manifest(conn, version, f, &most_buffered, &status);
        CHECK(code == ICBD_OK, "GetManifest of file %u: %s %s", f, icbd_code_name(code), status.message);
    }
    double downloaded = now_seconds() - start;
    unsigned mib = manifest_files * 32;
    fprintf(stderr, "  %u MiB uploaded in %.1f s, read back in %.1f s; at most %zu bytes buffered\n", mib, uploaded,
            downloaded, most_buffered);
    // The window (4 MiB) plus one message (a 128 KiB page) at most.
    CHECK(most_buffered <= ICBD_INITIAL_WINDOW + (1u << 20), "%zu bytes buffered", most_buffered);
    icbd_close(conn);
}

/* ---------------------------------------------------------------------------------------------
 * Catalog: Watch, deadlines, cancellation, paging */

/** Reads WatchResponses until one satisfies `match` (or the call ends). */
static bool watch_until(icbd_call *call, bool (*match)(const Icbd__Catalog__V1__WatchResponse *), icbd_status *status) {
    ProtobufCMessage *message;
    while (icbd_call_recv_pb(call, &icbd__catalog__v1__watch_response__descriptor, &message, status)) {
        bool matched = match((const Icbd__Catalog__V1__WatchResponse *)message);
        protobuf_c_message_free_unpacked(message, NULL);
        if (matched) return true;
    }
    return false;
}

static bool is_caught_up(const Icbd__Catalog__V1__WatchResponse *response) {
    return response->caught_up;
}

static char watched_image[80];

static bool names_watched_image(const Icbd__Catalog__V1__WatchResponse *response) {
    for (size_t i = 0; i < response->n_events; i++) {
        const Icbd__Catalog__V1__WatchEvent *event = response->events[i];
        if (event->entity_case == ICBD__CATALOG__V1__WATCH_EVENT__ENTITY_IMAGE &&
            strcmp(event->image->name, watched_image) == 0) {
            return true;
        }
    }
    return false;
}

static icbd_code create_image(icbd_conn *conn, const char *name, int64_t *revision, icbd_status *status) {
    Icbd__Catalog__V1__CreateImageRequest request = ICBD__CATALOG__V1__CREATE_IMAGE_REQUEST__INIT;
    request.name = (char *)name;
    request.if_missing = 1;
    ProtobufCMessage *answer = NULL;
    icbd_code code = icbd_unary_pb(conn, "/icbd.catalog.v1.Catalog/CreateImage", &request.base,
                                   &icbd__catalog__v1__create_image_response__descriptor, &answer, NULL, status);
    if (code == ICBD_OK) {
        if (revision) *revision = ((Icbd__Catalog__V1__CreateImageResponse *)answer)->revision;
        protobuf_c_message_free_unpacked(answer, NULL);
    }
    return code;
}

static void test_watch_sees_a_change_made_on_the_same_connection(void) {
    icbd_conn *conn;
    icbd_status status;
    REQUIRE(connect_to(address, "catalog", tls_dir, &conn, &status) == ICBD_OK, "%s", status.message);
    int64_t revision = 0;
    REQUIRE(create_image(conn, image_name, &revision, &status) == ICBD_OK, "%s", status.message);
    Icbd__Catalog__V1__EntityKind kinds[] = {ICBD__CATALOG__V1__ENTITY_KIND__ENTITY_KIND_IMAGE};
    Icbd__Catalog__V1__WatchRequest request = ICBD__CATALOG__V1__WATCH_REQUEST__INIT;
    request.from_revision = revision;
    request.n_kinds = 1;
    request.kinds = kinds;
    icbd_call *watch;
    REQUIRE(icbd_server_stream_start_pb(conn, "/icbd.catalog.v1.Catalog/Watch", &request.base, NULL, &watch, &status) ==
                ICBD_OK,
            "%s", status.message);
    CHECK(watch_until(watch, is_caught_up, &status), "no caught_up: %s %s", icbd_code_name(status.code),
          status.message);
    // A unary call on the same connection while the stream is open; the stream then carries it.
    snprintf(watched_image, sizeof watched_image, "%s-w", image_name);
    CHECK(create_image(conn, watched_image, NULL, &status) == ICBD_OK, "%s", status.message);
    CHECK(watch_until(watch, names_watched_image, &status), "the Watch did not show %s: %s", watched_image,
          status.message);
    icbd_call_free(watch);  // cancels the Watch
    Icbd__Rpc__V1__HealthCheckResponse *response = NULL;
    CHECK(health(conn, &response, &status) == ICBD_OK, "after the cancel: %s", status.message);
    if (response) protobuf_c_message_free_unpacked(&response->base, NULL);
    icbd_close(conn);
}

static void test_server_deadline(void) {
    icbd_conn *conn;
    icbd_status status;
    REQUIRE(connect_to(address, "catalog", tls_dir, &conn, &status) == ICBD_OK, "%s", status.message);
    int64_t revision = 0;
    REQUIRE(create_image(conn, image_name, &revision, &status) == ICBD_OK, "%s", status.message);
    Icbd__Catalog__V1__WatchRequest request = ICBD__CATALOG__V1__WATCH_REQUEST__INIT;
    request.from_revision = revision;
    icbd_call_options options = {.timeout_ms = 300};
    icbd_call *watch;
    double start = now_seconds();
    REQUIRE(icbd_server_stream_start_pb(conn, "/icbd.catalog.v1.Catalog/Watch", &request.base, &options, &watch,
                                        &status) == ICBD_OK,
            "%s", status.message);
    const uint8_t *data;
    size_t len;
    while (icbd_call_recv(watch, &data, &len, &status)) {
    }
    double took = now_seconds() - start;
    CHECK(status.code == ICBD_DEADLINE_EXCEEDED && status.from_server, "%s (from server: %d): %s",
          icbd_code_name(status.code), status.from_server, status.message);
    CHECK(took >= 0.25, "the Watch ended after %.2f s, before its deadline", took);
    icbd_call_free(watch);
    icbd_close(conn);
}

static void test_list_images_pages(void) {
    icbd_conn *conn;
    icbd_status status;
    REQUIRE(connect_to(address, "catalog", tls_dir, &conn, &status) == ICBD_OK, "%s", status.message);
    char extra[80];
    snprintf(extra, sizeof extra, "%s-p", image_name);
    REQUIRE(create_image(conn, image_name, NULL, &status) == ICBD_OK, "%s", status.message);
    REQUIRE(create_image(conn, extra, NULL, &status) == ICBD_OK, "%s", status.message);
    char *token = strdup("");
    unsigned pages = 0, found = 0;
    while (token) {
        Icbd__Catalog__V1__ListImagesRequest request = ICBD__CATALOG__V1__LIST_IMAGES_REQUEST__INIT;
        request.page_size = 1;
        request.page_token = token;
        ProtobufCMessage *answer = NULL;
        icbd_code code = icbd_unary_pb(conn, "/icbd.catalog.v1.Catalog/ListImages", &request.base,
                                       &icbd__catalog__v1__list_images_response__descriptor, &answer, NULL, &status);
        free(token);
        token = NULL;
        if (code != ICBD_OK) {
            CHECK(false, "ListImages: %s %s", icbd_code_name(code), status.message);
            break;
        }
        Icbd__Catalog__V1__ListImagesResponse *response = (Icbd__Catalog__V1__ListImagesResponse *)answer;
        pages++;
        CHECK(response->n_images <= 1, "a page of %zu images with page_size 1", response->n_images);
        for (size_t i = 0; i < response->n_images; i++) {
            const char *name = response->images[i]->image ? response->images[i]->image->name : "";
            if (strcmp(name, image_name) == 0 || strcmp(name, extra) == 0) found++;
        }
        if (response->next_page_token && response->next_page_token[0] && pages < 10000) {
            token = strdup(response->next_page_token);
        }
        protobuf_c_message_free_unpacked(answer, NULL);
    }
    CHECK(found == 2 && pages >= 2, "found %u of 2 images in %u pages", found, pages);
    icbd_close(conn);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--address") == 0)
            address = argv[i + 1];
        else if (strcmp(argv[i], "--tls-dir") == 0)
            tls_dir = argv[i + 1];
        else if (strcmp(argv[i], "--node") == 0)
            node = argv[i + 1];
        else if (strcmp(argv[i], "--foreign-address") == 0)
            foreign_address = argv[i + 1];
        else if (strcmp(argv[i], "--other-tls-dir") == 0)
            other_tls_dir = argv[i + 1];
        else if (strcmp(argv[i], "--manifest-files") == 0)
            manifest_files = (unsigned)atoi(argv[i + 1]);
    }
    if (!address || !tls_dir || !node || argc % 2 == 0 || manifest_files > 64) {
        fprintf(stderr,
                "usage: %s --address HOST:PORT --tls-dir DIR --node NAME [--foreign-address HOST:PORT] "
                "[--other-tls-dir DIR] [--manifest-files N (0-64)]\n",
                argv[0]);
        return 2;
    }
    snprintf(image_name, sizeof image_name, "c-interop-%ld-%d", (long)time(NULL), (int)getpid());
    RUN(test_health);
    RUN(test_certificates_refused_both_ways);
    RUN(test_threads_share_a_connection);
    RUN(test_watch_sees_a_change_made_on_the_same_connection);
    RUN(test_server_deadline);
    RUN(test_list_images_pages);
    if (manifest_files > 0) RUN(test_manifests_stream_both_ways);
    return testing_summary("test-interop");
}
