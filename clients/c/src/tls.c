#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static const char *const roles[] = {"catalog", "replicator", "cache", "gateway", "admin"};

bool icbd_role_valid(const char *role) {
    if (!role) return false;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        if (strcmp(role, roles[i]) == 0) return true;
    }
    return false;
}

static bool name_char(char c, bool first) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
    return !first && (c == '.' || c == '_' || c == '-');
}

bool icbd_identity_parse(const char *uri, size_t len, char *role, size_t role_size) {
    static const char prefix[] = "icbd://";
    const size_t prefix_len = sizeof prefix - 1;
    if (len <= prefix_len || memcmp(uri, prefix, prefix_len) != 0) return false;
    const char *rest = uri + prefix_len;
    size_t rest_len = len - prefix_len;
    const char *slash = memchr(rest, '/', rest_len);
    if (!slash) return false;
    size_t role_len = (size_t)(slash - rest);
    bool known = false;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        if (strlen(roles[i]) == role_len && memcmp(rest, roles[i], role_len) == 0) known = true;
    }
    if (!known) return false;
    const char *name = slash + 1;
    size_t name_len = rest_len - role_len - 1;
    if (name_len < 1 || name_len > 64) return false;
    for (size_t i = 0; i < name_len; i++) {
        if (!name_char(name[i], i == 0)) return false;
    }
    if (role && role_size > role_len) {
        memcpy(role, rest, role_len);
        role[role_len] = '\0';
    }
    return true;
}

bool icbd_certificate_identity(X509 *certificate, char *uri, size_t uri_size, char *reason, size_t reason_size) {
    int critical = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(certificate, NID_subject_alt_name, &critical, NULL);
    if (!names) {
        snprintf(reason, reason_size,
                 critical == -2 ? "it has more than one subjectAltName extension"
                                : "it has no subjectAltName URI icbd://ROLE/NAME");
        return false;
    }
    int uris = 0;
    bool ok = false;
    char first[96] = "";
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_URI) continue;
        uris++;
        const ASN1_IA5STRING *text = name->d.uniformResourceIdentifier;
        const char *data = (const char *)ASN1_STRING_get0_data(text);
        size_t len = (size_t)ASN1_STRING_length(text);
        if (uris == 1) {
            snprintf(first, sizeof first, "%.*s", (int)(len < 90 ? len : 90), data);
            // A NUL inside the string would make the copy shorter than the URI checked.
            ok = memchr(data, '\0', len) == NULL && icbd_identity_parse(data, len, NULL, 0) && len < uri_size;
            if (ok) snprintf(uri, uri_size, "%.*s", (int)len, data);
        }
    }
    GENERAL_NAMES_free(names);
    if (uris != 1) {
        snprintf(reason, reason_size, "it must carry exactly one SAN URI icbd://ROLE/NAME, it has %d", uris);
        return false;
    }
    if (!ok) {
        snprintf(reason, reason_size, "its SAN URI '%s' is not icbd://ROLE/NAME with a known role and a valid name",
                 first);
        return false;
    }
    return true;
}

static void describe_subject(X509 *certificate, char *text, size_t size) {
    text[0] = '\0';
    if (!certificate) return;
    X509_NAME_oneline(X509_get_subject_name(certificate), text, (int)size);
}

/** Why OpenSSL refused a certificate, with what to do for the usual cases. */
static void describe_verify_error(icbd_tls_check *check, int error, int depth, X509 *certificate) {
    char subject[160];
    describe_subject(certificate, subject, sizeof subject);
    const char *hint = "";
    switch (error) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE: hint = "; it is not issued by the deployment CA"; break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        hint = "; check the clocks, or issue a new certificate with `icbd pki issue`";
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        hint = "; it does not name the host or IP address dialled (issue it with --dns/--ip for that address)";
        break;
    case X509_V_ERR_INVALID_PURPOSE: hint = "; it lacks extended key usage serverAuth"; break;
    default: break;
    }
    snprintf(check->refusal, sizeof check->refusal, "%s (certificate %s, depth %d%s%s)%s",
             X509_verify_cert_error_string(error), subject, depth, check->ca_file ? ", CA file " : "",
             check->ca_file ? check->ca_file : "", hint);
}

static int verify_callback(int preverified, X509_STORE_CTX *store) {
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    icbd_tls_check *check = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!check) return 0;  // every icbd SSL object carries its check; refuse rather than guess
    X509 *certificate = X509_STORE_CTX_get_current_cert(store);
    int depth = X509_STORE_CTX_get_error_depth(store);
    if (!preverified) {
        if (!check->refusal[0]) describe_verify_error(check, X509_STORE_CTX_get_error(store), depth, certificate);
        return 0;
    }
    if (depth != 0) return 1;
    char uri[96];
    char reason[256];
    if (!icbd_certificate_identity(certificate, uri, sizeof uri, reason, sizeof reason)) {
        snprintf(check->refusal, sizeof check->refusal, "%s", reason);
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    char role[16] = "";
    icbd_identity_parse(uri, strlen(uri), role, sizeof role);
    if (check->expected_role && strcmp(role, check->expected_role) != 0) {
        snprintf(check->refusal, sizeof check->refusal, "the peer is %s, expected role %s", uri, check->expected_role);
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    uint32_t usage = X509_get_extended_key_usage(certificate);
    bool has_usage_extension = (X509_get_extension_flags(certificate) & EXFLAG_XKUSAGE) != 0;
    uint32_t needed = check->peer_is_server ? XKU_SSL_SERVER : XKU_SSL_CLIENT;
    if (!has_usage_extension || !(usage & needed)) {
        snprintf(check->refusal, sizeof check->refusal, "the certificate of %s lacks extended key usage %s", uri,
                 check->peer_is_server ? "serverAuth" : "clientAuth");
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    snprintf(check->peer_uri, sizeof check->peer_uri, "%s", uri);
    return 1;
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_len, const unsigned char *in,
                       unsigned int in_len, void *arg) {
    (void)ssl;
    (void)arg;
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, out_len, (const unsigned char *)ICBD_ALPN_WIRE, sizeof ICBD_ALPN_WIRE - 1, in,
                              in_len) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

void icbd_tls_errors(char *text, size_t text_size) {
    size_t used = 0;
    text[0] = '\0';
    unsigned long error;
    while ((error = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(error, one, sizeof one);
        if (used + 3 < text_size) {
            int n = snprintf(text + used, text_size - used, "%s%s", used ? "; " : "", one);
            if (n > 0) used += (size_t)n < text_size - used ? (size_t)n : text_size - used - 1;
        }
    }
}

SSL_CTX *icbd_tls_context(bool server, bool own_identity_required, const char *ca_file, const char *cert_file,
                          const char *key_file, char *error, size_t error_size) {
    char openssl[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        icbd_tls_errors(openssl, sizeof openssl);
        snprintf(error, error_size, "cannot create a TLS context: %s", openssl);
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)) goto openssl_failure;
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        icbd_tls_errors(openssl, sizeof openssl);
        snprintf(error, error_size, "cannot load the deployment CA from %s (%s); it is ca.crt of `icbd pki init`",
                 ca_file, openssl);
        goto failure;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        icbd_tls_errors(openssl, sizeof openssl);
        snprintf(error, error_size, "cannot load a PEM certificate from %s (%s); issue one with `icbd pki issue`",
                 cert_file, openssl);
        goto failure;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        icbd_tls_errors(openssl, sizeof openssl);
        snprintf(error, error_size, "cannot load a PEM private key from %s (%s)", key_file, openssl);
        goto failure;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(error, error_size, "the key in %s does not belong to the certificate in %s", key_file, cert_file);
        goto failure;
    }
    char uri[96];
    char reason[256];
    if (own_identity_required &&
        !icbd_certificate_identity(SSL_CTX_get0_certificate(ctx), uri, sizeof uri, reason, sizeof reason)) {
        snprintf(error, error_size, "the certificate in %s has no icbd identity, peers would refuse it: %s", cert_file,
                 reason);
        goto failure;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), verify_callback);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (server) {
        SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    return ctx;

openssl_failure:
    icbd_tls_errors(openssl, sizeof openssl);
    snprintf(error, error_size, "cannot configure TLS: %s", openssl);
failure:
    SSL_CTX_free(ctx);
    return NULL;
}

bool icbd_host_is_ip(const char *host) {
    unsigned char address[16];
    return inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1;
}
