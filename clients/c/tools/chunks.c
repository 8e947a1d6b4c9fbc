/*
 * icbd-c chunks: GetChunks from a cache node, each chunk verified by SHA-256 before a byte of it
 * is written.
 *
 * The method is /icbd.cache.v1.Cache/GetChunks (Protos/icbd/cache/v1/cache.proto).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "icbd/cache/v1/cache.pb-c.h"
#include "tool.h"

/** The largest chunk icbd uses (File.chunk_size is at most 64 MiB). */
#define MAX_CHUNK_SIZE (64u * 1024u * 1024u)

int tool_fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("icbd-c: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    return 1;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool tool_parse_hash(const char *text, uint8_t hash[32]) {
    if (strlen(text) != 64) return false;
    for (size_t i = 0; i < 32; i++) {
        int high = hex_value(text[2 * i]), low = hex_value(text[2 * i + 1]);
        if (high < 0 || low < 0) return false;
        hash[i] = (uint8_t)(high << 4 | low);
    }
    return true;
}

static void hex(const uint8_t *bytes, size_t len, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

/** The chunk being received: its bytes are held until they verify. */
typedef struct chunk_in_progress {
    size_t index;  // into the hashes asked for; valid while `open`
    bool open;
    uint8_t *data;
    size_t len, cap;
} chunk_in_progress;

static bool append(chunk_in_progress *chunk, const uint8_t *data, size_t len) {
    if (len > MAX_CHUNK_SIZE - chunk->len) return false;
    if (chunk->len + len > chunk->cap) {
        size_t cap = chunk->cap ? chunk->cap : 1 << 20;
        while (cap < chunk->len + len) cap *= 2;
        uint8_t *grown = realloc(chunk->data, cap);
        if (!grown) return false;
        chunk->data = grown;
        chunk->cap = cap;
    }
    if (len) memcpy(chunk->data + chunk->len, data, len);
    chunk->len += len;
    return true;
}

/** Verifies the open chunk and writes it out; returns an exit status. */
static int finish_chunk(chunk_in_progress *chunk, const uint8_t (*hashes)[32]) {
    uint8_t digest[32];
    unsigned int digest_len = 0;
    if (EVP_Digest(chunk->data ? chunk->data : (const uint8_t *)"", chunk->len, digest, &digest_len, EVP_sha256(),
                   NULL) != 1) {
        return tool_fail("SHA-256 failed");
    }
    if (memcmp(digest, hashes[chunk->index], 32) != 0) {
        char want[65], got[65];
        hex(hashes[chunk->index], 32, want);
        hex(digest, 32, got);
        return tool_fail("DATA_LOSS: chunk %zu (%zu bytes) hashes to %s, not %s; nothing of it was written",
                         chunk->index + 1, chunk->len, got, want);
    }
    if (chunk->len && fwrite(chunk->data, 1, chunk->len, stdout) != chunk->len) {
        return tool_fail("cannot write to standard output: %s", strerror(errno));
    }
    chunk->open = false;
    chunk->len = 0;
    return 0;
}

int tool_chunks(icbd_conn *conn, const icbd_call_options *call_options, const uint8_t (*hashes)[32], size_t count) {
    if (isatty(STDOUT_FILENO)) return tool_fail("chunks writes binary data: redirect standard output to a file");
    ProtobufCBinaryData *wanted = calloc(count, sizeof *wanted);
    if (!wanted) return tool_fail("out of memory");
    for (size_t i = 0; i < count; i++) wanted[i] = (ProtobufCBinaryData){.len = 32, .data = (uint8_t *)hashes[i]};
    Icbd__Cache__V1__GetChunksRequest request = ICBD__CACHE__V1__GET_CHUNKS_REQUEST__INIT;
    request.n_hashes = count;
    request.hashes = wanted;

    icbd_call *call;
    icbd_status status;
    icbd_code code = icbd_server_stream_start_pb(conn, "/icbd.cache.v1.Cache/GetChunks", &request.base, call_options,
                                                 &call, &status);
    free(wanted);
    if (code != ICBD_OK) return tool_fail_status("Cache/GetChunks", &status);

    chunk_in_progress chunk = {0};
    size_t next = 0;  // the index of the next chunk to start
    int result = 0;
    ProtobufCMessage *message;
    while (result == 0 &&
           icbd_call_recv_pb(call, &icbd__cache__v1__get_chunks_response__descriptor, &message, &status)) {
        Icbd__Cache__V1__GetChunksResponse *piece = (Icbd__Cache__V1__GetChunksResponse *)message;
        if (piece->sha256.len > 0) {
            if (chunk.open) result = finish_chunk(&chunk, hashes);
            if (result == 0 && next >= count) {
                result = tool_fail("the cache sent more chunks than the %zu asked for", count);
            } else if (result == 0 && (piece->sha256.len != 32 || memcmp(piece->sha256.data, hashes[next], 32) != 0)) {
                result = tool_fail("chunk %zu of the answer is not the chunk asked for in that place", next + 1);
            } else if (result == 0) {
                chunk.index = next++;
                chunk.open = true;
            }
        } else if (!chunk.open) {
            result = tool_fail("the cache sent chunk data before naming the chunk");
        }
        if (result == 0 && !append(&chunk, piece->data.data, piece->data.len)) {
            result = tool_fail("chunk %zu is larger than %u bytes, or memory ran out", chunk.index + 1, MAX_CHUNK_SIZE);
        }
        protobuf_c_message_free_unpacked(message, NULL);
    }
    if (result == 0) {
        if (status.code != ICBD_OK) {
            result = tool_fail_status("Cache/GetChunks", &status);
        } else {
            if (chunk.open) result = finish_chunk(&chunk, hashes);
            if (result == 0 && next != count) {
                result = tool_fail("the cache sent %zu of the %zu chunks asked for", next, count);
            }
        }
    }
    icbd_call_free(call);  // cancels the call if it stopped early
    free(chunk.data);
    if (result == 0 && fflush(stdout) != 0) result = tool_fail("cannot write to standard output: %s", strerror(errno));
    return result;
}
