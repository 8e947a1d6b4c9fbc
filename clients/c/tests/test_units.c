/*
 * Unit tests without sockets: the frame encoder against docs/wire.md's worked example, the frame
 * decoder fed whole, split, truncated, zero-length, oversize, malformed and random input, and
 * the icbd identity rules. Run under AddressSanitizer by scripts/test-c-client.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "icbd.h"
#include "testing.h"
#include "tls.h"

/* docs/wire.md section 8: a Health/Check on stream 1. */
static const uint8_t worked_example[] = {
    0x00, 0x00, 0x00, 0x1f, 0x08, 0x01, 0x12, 0x1b, 0x0a, 0x19, 0x2f, 0x69, 0x63, 0x62, 0x64, 0x2e, 0x72,
    0x70, 0x63, 0x2e, 0x76, 0x31, 0x2e, 0x48, 0x65, 0x61, 0x6c, 0x74, 0x68, 0x2f, 0x43, 0x68, 0x65, 0x63,
    0x6b, 0x00, 0x00, 0x00, 0x04, 0x08, 0x01, 0x1a, 0x00, 0x00, 0x00, 0x00, 0x04, 0x08, 0x01, 0x22, 0x00,
};
static const uint8_t worked_status[] = {0x00, 0x00, 0x00, 0x04, 0x08, 0x01, 0x2a, 0x00};

/** Collects decoded frames (the first 64; later ones are counted and freed). */
typedef struct collected {
    icbd_frame *frames[64];
    size_t count;
    size_t total;  // frames seen, including those not kept
    bool stop_after_first;
} collected;

static bool collect(void *context, icbd_frame *frame, char *error, size_t error_size) {
    collected *c = context;
    c->total++;
    if (c->count < sizeof c->frames / sizeof c->frames[0]) {
        c->frames[c->count++] = frame;
    } else {
        icbd_frame_free(frame);
    }
    if (c->stop_after_first) {
        snprintf(error, error_size, "sink stopped");
        return false;
    }
    return true;
}

static void collected_free(collected *c) {
    for (size_t i = 0; i < c->count; i++) icbd_frame_free(c->frames[i]);
    c->count = 0;
    c->total = 0;
}

/** A tiny deterministic generator, so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_encoder_matches_worked_example(void) {
    icbd_bytes out = {0};
    char error[256];
    REQUIRE(icbd_frame_append_open(&out, 1, "/icbd.rpc.v1.Health/Check", 0, NULL, NULL, 0, error, sizeof error), "%s",
            error);
    REQUIRE(icbd_frame_append_message(&out, 1, "", 0, error, sizeof error), "%s", error);
    REQUIRE(icbd_frame_append_end(&out, 1, error, sizeof error), "%s", error);
    CHECK(out.len == sizeof worked_example, "encoded %zu bytes, the example has %zu", out.len, sizeof worked_example);
    CHECK(out.len == sizeof worked_example && memcmp(out.data, worked_example, out.len) == 0,
          "the bytes differ from docs/wire.md section 8");
    out.len = 0;
    REQUIRE(icbd_frame_append_status(&out, 1, 0, "", error, sizeof error), "%s", error);
    CHECK(out.len == sizeof worked_status && memcmp(out.data, worked_status, out.len) == 0,
          "Status{code: 0} is not 08 01 2a 00");
    icbd_bytes_free(&out);
}

static void check_worked_frames(collected *c) {
    REQUIRE(c->count == 3, "decoded %zu frames, want 3", c->count);
    CHECK(c->frames[0]->stream == 1 && c->frames[0]->kind_case == ICBD__RPC__V1__FRAME__KIND_OPEN &&
              strcmp(c->frames[0]->open->method, "/icbd.rpc.v1.Health/Check") == 0 &&
              c->frames[0]->open->timeout_ms == 0,
          "frame 1 is not Open of /icbd.rpc.v1.Health/Check on stream 1");
    CHECK(c->frames[1]->stream == 1 && c->frames[1]->kind_case == ICBD__RPC__V1__FRAME__KIND_MESSAGE &&
              c->frames[1]->message.len == 0,
          "frame 2 is not an empty message");
    CHECK(c->frames[2]->stream == 1 && c->frames[2]->kind_case == ICBD__RPC__V1__FRAME__KIND_END, "frame 3 is not End");
}

static void test_decoder_reads_worked_example_however_split(void) {
    char error[256];
    // Whole.
    icbd_frame_decoder d;
    collected c = {0};
    icbd_frame_decoder_init(&d, 0);
    CHECK(icbd_frame_decoder_feed(&d, worked_example, sizeof worked_example, collect, &c, error, sizeof error), "%s",
          error);
    check_worked_frames(&c);
    collected_free(&c);
    icbd_frame_decoder_free(&d);
    // Byte by byte.
    icbd_frame_decoder_init(&d, 0);
    for (size_t i = 0; i < sizeof worked_example; i++) {
        CHECK(icbd_frame_decoder_feed(&d, worked_example + i, 1, collect, &c, error, sizeof error), "%s", error);
    }
    check_worked_frames(&c);
    collected_free(&c);
    icbd_frame_decoder_free(&d);
    // Every two-piece split.
    for (size_t cut = 0; cut <= sizeof worked_example; cut++) {
        icbd_frame_decoder_init(&d, 0);
        bool ok = icbd_frame_decoder_feed(&d, worked_example, cut, collect, &c, error, sizeof error) &&
                  icbd_frame_decoder_feed(&d, worked_example + cut, sizeof worked_example - cut, collect, &c, error,
                                          sizeof error);
        CHECK(ok && c.count == 3, "split at %zu: %s, %zu frames", cut, ok ? "ok" : error, c.count);
        collected_free(&c);
        icbd_frame_decoder_free(&d);
    }
}

static void test_truncated_input_yields_only_complete_frames(void) {
    char error[256];
    size_t ends[] = {35, 43, 51};  // where each frame of the example ends
    for (size_t len = 0; len < sizeof worked_example; len++) {
        icbd_frame_decoder d;
        collected c = {0};
        icbd_frame_decoder_init(&d, 0);
        bool ok = icbd_frame_decoder_feed(&d, worked_example, len, collect, &c, error, sizeof error);
        size_t complete = 0;
        for (size_t i = 0; i < 3; i++) complete += ends[i] <= len;
        CHECK(ok, "prefix of %zu bytes: %s", len, error);
        CHECK(c.count == complete, "prefix of %zu bytes gave %zu frames, want %zu", len, c.count, complete);
        collected_free(&c);
        icbd_frame_decoder_free(&d);  // frees a partial frame: ASan reports a leak otherwise
    }
}

static void test_zero_and_oversize_lengths_fail_before_allocating(void) {
    const uint32_t lengths[] = {0, ICBD_MAX_FRAME_LENGTH + 1, 0x7fffffff, 0xffffffff};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        uint8_t header[4] = {(uint8_t)(lengths[i] >> 24), (uint8_t)(lengths[i] >> 16), (uint8_t)(lengths[i] >> 8),
                             (uint8_t)lengths[i]};
        icbd_frame_decoder d;
        collected c = {0};
        char error[256] = "";
        icbd_frame_decoder_init(&d, 0);
        bool ok = icbd_frame_decoder_feed(&d, header, 4, collect, &c, error, sizeof error);
        CHECK(!ok, "length %u was accepted", lengths[i]);
        CHECK(strstr(error, "outside 1...16777216") != NULL, "length %u: error '%s'", lengths[i], error);
        CHECK(d.body == NULL, "length %u: a body buffer was allocated", lengths[i]);
        // The decoder stays failed: later bytes are never taken as a new frame.
        ok = icbd_frame_decoder_feed(&d, worked_example, sizeof worked_example, collect, &c, error, sizeof error);
        CHECK(!ok && c.count == 0, "a failed decoder decoded more frames");
        icbd_frame_decoder_free(&d);
    }
    // A receiver may be configured to accept less than the maximum.
    icbd_frame_decoder d;
    collected c = {0};
    char error[256];
    icbd_frame_decoder_init(&d, 16);
    CHECK(!icbd_frame_decoder_feed(&d, (const uint8_t *)"\x00\x00\x00\x11", 4, collect, &c, error, sizeof error),
          "17 bytes accepted with a maximum of 16");
    icbd_frame_decoder_free(&d);
}

static void test_largest_frame_round_trips(void) {
    char error[256];
    icbd_bytes out = {0};
    // Stream 1 (2 bytes), key (1) and 4-byte length leave 16 MiB - 7 for the payload.
    size_t payload = ICBD_MAX_FRAME_LENGTH - 7;
    uint8_t *message = malloc(payload + 1);
    REQUIRE(message, "out of memory");
    for (size_t i = 0; i <= payload; i++) message[i] = (uint8_t)(i * 31);
    bool ok = icbd_frame_append_message(&out, 1, message, payload, error, sizeof error);
    CHECK(ok, "%s", error);
    CHECK(out.len == 4 + (size_t)ICBD_MAX_FRAME_LENGTH, "frame of %zu bytes", out.len);
    CHECK(out.len >= 4 && out.data[0] == 0x01 && out.data[1] == 0 && out.data[2] == 0 && out.data[3] == 0,
          "length prefix is not 16 MiB");
    icbd_frame_decoder d;
    collected c = {0};
    icbd_frame_decoder_init(&d, 0);
    // Fed in 1000-byte pieces, so the decoder gathers it into one buffer.
    for (size_t at = 0; ok && at < out.len; at += 1000) {
        size_t n = out.len - at < 1000 ? out.len - at : 1000;
        ok = icbd_frame_decoder_feed(&d, out.data + at, n, collect, &c, error, sizeof error);
    }
    CHECK(ok, "%s", error);
    CHECK(
        c.count == 1 && c.frames[0]->message.len == payload && memcmp(c.frames[0]->message.data, message, payload) == 0,
        "the 16 MiB frame did not round-trip");
    collected_free(&c);
    icbd_frame_decoder_free(&d);

    // One byte more is refused by the encoder: a sender never sends more.
    size_t before = out.len;
    CHECK(!icbd_frame_append_message(&out, 1, message, payload + 1, error, sizeof error), "an oversize frame encoded");
    CHECK(out.len == before, "a refused frame left bytes behind");
    // ICBD_MAX_MESSAGE_LENGTH fits with the largest stream id.
    out.len = 0;
    CHECK(icbd_frame_append_message(&out, UINT32_MAX, message, ICBD_MAX_MESSAGE_LENGTH, error, sizeof error), "%s",
          error);
    free(message);
    icbd_bytes_free(&out);
}

static void expect_rejected(const uint8_t *bytes, size_t len, const char *what, const char *reason) {
    icbd_frame_decoder d;
    collected c = {0};
    char error[256] = "";
    icbd_frame_decoder_init(&d, 0);
    bool ok = icbd_frame_decoder_feed(&d, bytes, len, collect, &c, error, sizeof error);
    CHECK(!ok, "%s was accepted", what);
    CHECK(strstr(error, reason) != NULL, "%s: error '%s', want '%s'", what, error, reason);
    collected_free(&c);
    icbd_frame_decoder_free(&d);
}

static void test_malformed_frames_are_refused(void) {
    expect_rejected((const uint8_t *)"\x00\x00\x00\x03\xff\xff\xff", 7, "a truncated varint", "do not decode");
    expect_rejected((const uint8_t *)"\x00\x00\x00\x02\x08\x01", 6, "a frame with no kind", "has no kind");
    expect_rejected((const uint8_t *)"\x00\x00\x00\x04\x08\x01\x12\x05", 8, "a field running past the frame",
                    "do not decode");
    expect_rejected((const uint8_t *)"\x00\x00\x00\x01\x00", 5, "a zero key", "do not decode");
    // Unknown fields are skipped, as proto3 requires.
    icbd_frame_decoder d;
    collected c = {0};
    char error[256];
    icbd_frame_decoder_init(&d, 0);
    CHECK(icbd_frame_decoder_feed(&d, (const uint8_t *)"\x00\x00\x00\x07\x08\x01\xf8\x07\x05\x22\x00", 11, collect, &c,
                                  error, sizeof error),
          "an unknown field: %s", error);
    CHECK(c.count == 1 && c.frames[0]->kind_case == ICBD__RPC__V1__FRAME__KIND_END, "End with an unknown field");
    collected_free(&c);
    icbd_frame_decoder_free(&d);
    // A sink that stops ends decoding, and the decoder stays failed.
    c.stop_after_first = true;
    icbd_frame_decoder_init(&d, 0);
    CHECK(!icbd_frame_decoder_feed(&d, worked_example, sizeof worked_example, collect, &c, error, sizeof error),
          "the sink's stop was ignored");
    CHECK(c.total == 1, "%zu frames after the sink stopped", c.total);
    collected_free(&c);
    icbd_frame_decoder_free(&d);
}

static void test_every_kind_round_trips(void) {
    char error[256];
    icbd_bytes out = {0};
    const char *keys[] = {"trace", "who"};
    const char *values[] = {"abc", "me"};
    bool ok = icbd_frame_append_open(&out, 7, "/a.B/C", 1234, keys, values, 2, error, sizeof error) &&
              icbd_frame_append_message(&out, 7, "xyz", 3, error, sizeof error) &&
              icbd_frame_append_end(&out, 7, error, sizeof error) &&
              icbd_frame_append_cancel(&out, 7, error, sizeof error) &&
              icbd_frame_append_credit(&out, 7, 1u << 20, error, sizeof error) &&
              icbd_frame_append_ping(&out, UINT64_MAX, true, error, sizeof error) &&
              icbd_frame_append_status(&out, 7, 5, "no such image", error, sizeof error);
    REQUIRE(ok, "%s", error);
    icbd_frame_decoder d;
    collected c = {0};
    icbd_frame_decoder_init(&d, 0);
    REQUIRE(icbd_frame_decoder_feed(&d, out.data, out.len, collect, &c, error, sizeof error), "%s", error);
    REQUIRE(c.count == 7, "%zu frames", c.count);
    icbd_frame **f = c.frames;
    CHECK(f[0]->open->timeout_ms == 1234 && f[0]->open->n_metadata == 2 &&
              strcmp(f[0]->open->metadata[1]->key, "who") == 0 && strcmp(f[0]->open->metadata[1]->value, "me") == 0,
          "Open fields");
    CHECK(f[1]->message.len == 3 && memcmp(f[1]->message.data, "xyz", 3) == 0, "message payload");
    CHECK(f[2]->kind_case == ICBD__RPC__V1__FRAME__KIND_END, "End");
    CHECK(f[3]->kind_case == ICBD__RPC__V1__FRAME__KIND_CANCEL, "Cancel");
    CHECK(f[4]->credit->bytes == 1u << 20, "Credit");
    CHECK(f[5]->stream == 0 && f[5]->ping->nonce == UINT64_MAX && f[5]->ping->ack, "Ping");
    CHECK(f[6]->status->code == 5 && strcmp(f[6]->status->message, "no such image") == 0, "Status");
    collected_free(&c);
    icbd_frame_decoder_free(&d);
    icbd_bytes_free(&out);
}

/** Appends one valid frame of a random kind. */
static void append_random_frame(icbd_bytes *out) {
    char error[256];
    uint32_t stream = (uint32_t)(rng() % 5);
    uint8_t payload[40];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)rng();
    switch (rng() % 7) {
    case 0:
        icbd_frame_append_open(out, stream, "/icbd.rpc.v1.Health/Check", (uint32_t)rng(), NULL, NULL, 0, error,
                               sizeof error);
        break;
    case 1: icbd_frame_append_message(out, stream, payload, rng() % sizeof payload, error, sizeof error); break;
    case 2: icbd_frame_append_end(out, stream, error, sizeof error); break;
    case 3: icbd_frame_append_cancel(out, stream, error, sizeof error); break;
    case 4: icbd_frame_append_credit(out, stream, (uint32_t)rng(), error, sizeof error); break;
    case 5: icbd_frame_append_ping(out, rng(), rng() % 2, error, sizeof error); break;
    default: icbd_frame_append_status(out, stream, (uint32_t)(rng() % 17), "status", error, sizeof error); break;
    }
}

/* Random input: valid frames, valid frames with flipped bytes, and random bytes behind random
 * lengths, fed in random pieces. Must not crash (ASan/UBSan watch), must decode every stream of
 * valid frames, and a decoder that failed must stay failed. */
static void test_random_input_does_not_crash(void) {
    icbd_bytes input = {0};
    size_t frames = 0, failures = 0, valid_streams = 0;
    for (int round = 0; round < 20000; round++) {
        input.len = 0;
        size_t valid_frames = 0;
        bool valid = true;
        int count = 1 + (int)(rng() % 8);
        for (int i = 0; i < count; i++) {
            uint64_t choice = rng() % 10;
            size_t start = input.len;
            if (choice < 6) {
                append_random_frame(&input);
                valid_frames++;
            } else if (choice < 9) {
                append_random_frame(&input);
                size_t flips = 1 + rng() % 3;
                for (size_t f = 0; f < flips; f++)
                    input.data[start + rng() % (input.len - start)] ^= (uint8_t)(1 + rng() % 255);
                valid = false;
            } else {
                uint32_t body = (uint32_t)(rng() % 48);
                if (rng() % 8 == 0) body = (uint32_t)(rng() >> 32);  // any length at all
                if (!icbd_bytes_reserve(&input, 4 + 48)) return;
                uint8_t *p = input.data + input.len;
                p[0] = (uint8_t)(body >> 24), p[1] = (uint8_t)(body >> 16), p[2] = (uint8_t)(body >> 8),
                p[3] = (uint8_t)body;
                size_t fill = body < 48 ? body : 48;
                for (size_t b = 0; b < fill; b++) p[4 + b] = (uint8_t)rng();
                input.len += 4 + fill;
                valid = false;
            }
        }
        icbd_frame_decoder d;
        collected c = {0};
        char error[256];
        icbd_frame_decoder_init(&d, 0);
        size_t at = 0;
        bool failed = false;
        while (at < input.len) {
            size_t n = 1 + rng() % 64;
            if (n > input.len - at) n = input.len - at;
            bool ok = icbd_frame_decoder_feed(&d, input.data + at, n, collect, &c, error, sizeof error);
            if (failed) CHECK(!ok, "a failed decoder accepted more input");
            failed = failed || !ok;
            at += n;
        }
        if (valid) {
            valid_streams++;
            CHECK(!failed && c.total == valid_frames, "valid frames: %zu of %zu decoded (%s)", c.total, valid_frames,
                  failed ? error : "ok");
        }
        frames += c.total;
        failures += failed;
        collected_free(&c);
        icbd_frame_decoder_free(&d);
    }
    icbd_bytes_free(&input);
    fprintf(stderr, "  random input: %zu frames decoded, %zu of 20000 streams refused, %zu all valid\n", frames,
            failures, valid_streams);
    CHECK(frames > 0 && failures > 0 && valid_streams > 0, "random input should both decode and fail");
}

static void test_identity_rules(void) {
    struct {
        const char *uri;
        bool valid;
    } cases[] = {
        {"icbd://admin/tester", true},
        {"icbd://catalog/cat1", true},
        {"icbd://replicator/r.1_a-b", true},
        {"icbd://cache/0", true},
        {"icbd://gateway/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true},    // 64
        {"icbd://gateway/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},  // 65
        {"icbd://Cache/peer", false},
        {"icbd://cache/Peer", false},
        {"icbd://cache/-peer", false},
        {"icbd://cache/.peer", false},
        {"icbd://cache/", false},
        {"icbd://cache", false},
        {"icbd://operator/x", false},
        {"ICBD://cache/x", false},
        {"https://cache/x", false},
        {"icbd://cache/x/y", false},
        {"icbd://cache/x y", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char role[16] = "";
        bool valid = icbd_identity_parse(cases[i].uri, strlen(cases[i].uri), role, sizeof role);
        CHECK(valid == cases[i].valid, "'%s' judged %s", cases[i].uri, valid ? "valid" : "invalid");
    }
    char role[16] = "";
    CHECK(icbd_identity_parse("icbd://cache/x", 14, role, sizeof role) && strcmp(role, "cache") == 0, "role '%s'",
          role);
    // A NUL inside the bytes checked is not a name character.
    CHECK(!icbd_identity_parse("icbd://cache/x\0y", 16, NULL, 0), "an embedded NUL passed");
    CHECK(icbd_role_valid("gateway") && !icbd_role_valid("Gateway") && !icbd_role_valid(NULL), "role names");
}

static void test_status_helpers(void) {
    CHECK(strcmp(icbd_code_name(ICBD_NOT_FOUND), "NOT_FOUND") == 0, "code name");
    CHECK(strcmp(icbd_code_name((icbd_code)99), "UNRECOGNIZED") == 0, "unknown code name");
    icbd_status status = {.code = ICBD_FAILED_PRECONDITION};
    snprintf(status.details, sizeof status.details, "reason=compacted\noldest=17");
    char value[32];
    CHECK(icbd_status_detail(&status, "reason", value, sizeof value) && strcmp(value, "compacted") == 0, "reason");
    CHECK(icbd_status_detail(&status, "oldest", value, sizeof value) && strcmp(value, "17") == 0, "oldest");
    CHECK(!icbd_status_detail(&status, "old", value, sizeof value), "a key prefix matched");
}

int main(void) {
    RUN(test_encoder_matches_worked_example);
    RUN(test_decoder_reads_worked_example_however_split);
    RUN(test_truncated_input_yields_only_complete_frames);
    RUN(test_zero_and_oversize_lengths_fail_before_allocating);
    RUN(test_largest_frame_round_trips);
    RUN(test_malformed_frames_are_refused);
    RUN(test_every_kind_round_trips);
    RUN(test_random_input_does_not_crash);
    RUN(test_identity_rules);
    RUN(test_status_helpers);
    return testing_summary("test-units");
}
