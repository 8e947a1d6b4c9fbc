/*
 * icbd-c: the example tool of libicbd (docs/c-client.md).
 *
 *   icbd-c [--tls-dir DIR] [--name NAME] [--role ROLE] [--timeout SECONDS] health HOST:PORT
 *   icbd-c ... images HOST:PORT
 *   icbd-c ... chunks HOST:PORT HASH...
 *
 * Exit status: 0 success, 1 an error the message explains, 2 a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icbd.h"
#include "icbd/catalog/v1/catalog.pb-c.h"
#include "icbd/rpc/v1/health.pb-c.h"
#include "tool.h"

static const char usage_text[] =
    "usage: icbd-c [OPTIONS] COMMAND HOST:PORT [ARGS]\n"
    "\n"
    "commands:\n"
    "  health HOST:PORT          ask a service whether it is serving (Health/Check); exit 1 unless SERVING\n"
    "  images HOST:PORT          list the catalog's images (Catalog/ListImages, every page)\n"
    "  chunks HOST:PORT HASH...  fetch chunks (hex SHA-256) from a cache node (Cache/GetChunks), verify\n"
    "                            each against its hash and write them to standard output in order\n"
    "\n"
    "options:\n"
    "  --tls-dir DIR      directory with ca.crt, NAME.crt and NAME.key (default: $ICBD_TLS_DIR)\n"
    "  --name NAME        this client's certificate name (default: admin)\n"
    "  --role ROLE        the role the service must present (default: catalog; cache for chunks)\n"
    "  --timeout SECONDS  deadline of each call (default: 10; 0: none)\n";

static int usage(const char *problem) {
    if (problem) fprintf(stderr, "icbd-c: %s\n\n", problem);
    fputs(usage_text, stderr);
    return 2;
}

static int health(icbd_conn *conn, const icbd_call_options *call) {
    Icbd__Rpc__V1__HealthCheckRequest request = ICBD__RPC__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *answer = NULL;
    icbd_status status;
    if (icbd_unary_pb(conn, "/icbd.rpc.v1.Health/Check", &request.base,
                      &icbd__rpc__v1__health_check_response__descriptor, &answer, call, &status) != ICBD_OK) {
        return tool_fail_status("Health/Check", &status);
    }
    Icbd__Rpc__V1__HealthCheckResponse *response = (Icbd__Rpc__V1__HealthCheckResponse *)answer;
    const char *state = response->status == ICBD__RPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? "SERVING"
                        : response->status == ICBD__RPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
                            ? "NOT_SERVING"
                            : "UNKNOWN";
    printf("%s %s %s%s%s version %s\n", state, response->role, response->node, response->site[0] ? " site " : "",
           response->site, response->version);
    int serving = response->status == ICBD__RPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    protobuf_c_message_free_unpacked(answer, NULL);
    return serving ? 0 : 1;
}

/** Prints the tags of one image as "latest:3,stable:2" (or "-"). */
static void print_tags(const Icbd__Catalog__V1__ImageSummary *summary) {
    if (summary->n_tags == 0) {
        fputs("-", stdout);
        return;
    }
    for (size_t i = 0; i < summary->n_tags; i++) {
        printf("%s%s:%lld", i ? "," : "", summary->tags[i]->name, (long long)summary->tags[i]->version);
    }
}

static int images(icbd_conn *conn, const icbd_call_options *call) {
    char *token = strdup("");
    if (!token) return tool_fail("out of memory");
    size_t pages = 0;
    int result = 0;
    printf("IMAGE\tNEWEST\tVERSIONS\tTAGS\tDESCRIPTION\n");
    for (;;) {
        Icbd__Catalog__V1__ListImagesRequest request = ICBD__CATALOG__V1__LIST_IMAGES_REQUEST__INIT;
        request.page_token = token;
        ProtobufCMessage *answer = NULL;
        icbd_status status;
        if (icbd_unary_pb(conn, "/icbd.catalog.v1.Catalog/ListImages", &request.base,
                          &icbd__catalog__v1__list_images_response__descriptor, &answer, call, &status) != ICBD_OK) {
            result = tool_fail_status("Catalog/ListImages", &status);
            break;
        }
        Icbd__Catalog__V1__ListImagesResponse *response = (Icbd__Catalog__V1__ListImagesResponse *)answer;
        for (size_t i = 0; i < response->n_images; i++) {
            const Icbd__Catalog__V1__ImageSummary *summary = response->images[i];
            const Icbd__Catalog__V1__Image *image = summary->image;
            printf("%s\t%lld\t%lld\t", image ? image->name : "?", (long long)summary->newest_version,
                   (long long)summary->version_count);
            print_tags(summary);
            printf("\t%s\n", image ? image->description : "");
        }
        bool more = response->next_page_token && response->next_page_token[0];
        bool same = more && strcmp(response->next_page_token, token) == 0;
        free(token);
        token = more ? strdup(response->next_page_token) : NULL;
        protobuf_c_message_free_unpacked(answer, NULL);
        if (!more) break;
        if (same || !token || ++pages > 1000000) {
            result = tool_fail("the catalog's page token does not advance; stopping");
            break;
        }
    }
    free(token);
    if (fflush(stdout) != 0) return tool_fail("cannot write to standard output: %s", strerror(errno));
    return result;
}

int main(int argc, char **argv) {
    const char *tls_dir = getenv("ICBD_TLS_DIR");
    const char *name = "admin";
    const char *role = NULL;
    long timeout = 10;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *option = argv[i];
        if (strcmp(option, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (i + 1 >= argc) return usage("an option lacks its value");
        const char *value = argv[++i];
        if (strcmp(option, "--tls-dir") == 0) {
            tls_dir = value;
        } else if (strcmp(option, "--name") == 0) {
            name = value;
        } else if (strcmp(option, "--role") == 0) {
            role = value;
        } else if (strcmp(option, "--timeout") == 0) {
            char *end;
            errno = 0;
            timeout = strtol(value, &end, 10);
            if (errno || *end || timeout < 0 || timeout > 86400) return usage("--timeout takes 0 to 86400 seconds");
        } else {
            return usage("unknown option");
        }
    }
    if (argc - i < 2) return usage(NULL);
    const char *command = argv[i];
    const char *address = argv[i + 1];
    char **rest = argv + i + 2;
    int rest_count = argc - i - 2;
    bool is_chunks = strcmp(command, "chunks") == 0;
    if (strcmp(command, "health") != 0 && strcmp(command, "images") != 0 && !is_chunks) {
        return usage("unknown command");
    }
    if (is_chunks ? rest_count < 1 : rest_count != 0) return usage("wrong number of arguments");
    if (!tls_dir) return usage("--tls-dir is required (or set ICBD_TLS_DIR)");
    if (!role) role = is_chunks ? "cache" : "catalog";

    char ca[4096], cert[4096], key[4096];
    if ((size_t)snprintf(ca, sizeof ca, "%s/ca.crt", tls_dir) >= sizeof ca ||
        (size_t)snprintf(cert, sizeof cert, "%s/%s.crt", tls_dir, name) >= sizeof cert ||
        (size_t)snprintf(key, sizeof key, "%s/%s.key", tls_dir, name) >= sizeof key) {
        return usage("--tls-dir or --name is too long");
    }
    uint8_t(*hashes)[32] = NULL;
    if (is_chunks) {
        hashes = calloc((size_t)rest_count, sizeof *hashes);
        if (!hashes) return tool_fail("out of memory");
        for (int h = 0; h < rest_count; h++) {
            if (!tool_parse_hash(rest[h], hashes[h])) {
                free(hashes);
                return usage("a HASH is 64 hexadecimal digits (a SHA-256)");
            }
        }
    }

    icbd_client_options options = {.ca_file = ca, .cert_file = cert, .key_file = key, .expected_role = role};
    icbd_conn *conn;
    icbd_status status;
    if (icbd_connect(address, &options, &conn, &status) != ICBD_OK) {
        free(hashes);
        return status.code == ICBD_INVALID_ARGUMENT ? usage(status.message) : tool_fail_status("connect", &status);
    }
    icbd_call_options call = {.timeout_ms = (uint32_t)timeout * 1000u};
    int result;
    if (strcmp(command, "health") == 0) {
        result = health(conn, &call);
    } else if (strcmp(command, "images") == 0) {
        result = images(conn, &call);
    } else {
        result = tool_chunks(conn, &call, hashes, (size_t)rest_count);
    }
    icbd_close(conn);
    free(hashes);
    return result;
}
