/* SPDX-License-Identifier: Apache-2.0 */
/* The enrollment protocol: topics, request decoding, response encoding. */
#include <cbor.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "enroll.h"
#include "floe-alloc.h"
#include "floe-batch.h"
#include "floe-wire-internal.h"

#define MAP_ENTRIES_MAX 16

static const char *const reason_names[] = {
        [ENROLL_OK] = "ok",
        [ENROLL_BAD_REQUEST] = "bad-request",
        [ENROLL_BAD_IDENTITY] = "bad-identity",
        [ENROLL_BAD_CSR] = "bad-csr",
        [ENROLL_WEAK_KEY] = "weak-key",
        [ENROLL_UNSUPPORTED_KEY] = "unsupported-key",
        [ENROLL_NOT_ENTITLED] = "not-entitled",
        [ENROLL_TOKEN_USED] = "token-used",
        [ENROLL_TOKEN_EXPIRED] = "token-expired",
        [ENROLL_ALREADY_ENROLLED] = "already-enrolled",
        [ENROLL_CLAIM_REVOKED] = "claim-revoked",
        [ENROLL_CLAIM_EXPIRED] = "claim-expired",
        [ENROLL_RATE_LIMITED] = "rate-limited",
        [ENROLL_INTERNAL] = "internal",
};

const char *enroll_reason_name(enum enroll_reason r)
{
        return (unsigned)r < ELEMENTSOF(reason_names) ? reason_names[r] : NULL;
}

int enroll_fail(struct enroll_error *err, enum enroll_reason reason, const char *fmt, ...)
{
        va_list ap;

        if (err) {
                err->reason = reason;
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
                /* printable ASCII only: messages go into responses and logs */
                for (char *p = err->message; *p; p++)
                        if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
                                *p = '?';
        }
        return -EBADMSG;
}

const char *enroll_format_content_type(enum enroll_format f)
{
        return f == ENROLL_FORMAT_CBOR ? "application/cbor" : "application/json";
}

/* -- topics ------------------------------------------------------------------------------ */

int enroll_topic_parse(const char *topic, enum enroll_kind *ret_kind, char *ret_id, size_t size)
{
        size_t plen = strlen(ENROLL_TOPIC_PREFIX), len;
        const char *id, *end;
        enum enroll_kind kind;
        char buf[CA_NAME_MAX + 1];

        if (!topic || strncmp(topic, ENROLL_TOPIC_PREFIX, plen) != 0)
                return -EINVAL;
        id = topic + plen;
        end = strchr(id, '/');
        if (!end || strcmp(end, "/req") != 0)
                return -EINVAL;
        len = (size_t)(end - id);
        if (len == 0 || len >= sizeof(buf) || len >= size)
                return -EINVAL;
        memcpy(buf, id, len);
        buf[len] = '\0';
        if (ca_name_check(CA_KIND_CLAIM, buf) == 0)
                kind = ENROLL_KIND_CLAIM;
        else if (ca_name_check(CA_KIND_DEVICE, buf) == 0)
                kind = ENROLL_KIND_RENEW;
        else
                return -EINVAL;
        memcpy(ret_id, buf, len + 1);
        *ret_kind = kind;
        return 0;
}

static bool nonce_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.';
}

bool enroll_response_topic_valid(const char *id, const char *topic, size_t len)
{
        char want[ENROLL_TOPIC_MAX];
        int n;

        if (!id || !topic || len > ENROLL_TOPIC_MAX)
                return false;
        n = snprintf(want, sizeof(want), ENROLL_TOPIC_PREFIX "%s/res", id);
        if (n < 0 || (size_t)n >= sizeof(want) || len < (size_t)n ||
            memcmp(topic, want, (size_t)n) != 0)
                return false;
        if (len == (size_t)n)
                return true;
        if (topic[n] != '/' || len - (size_t)n - 1 == 0 || len - (size_t)n - 1 > ENROLL_NONCE_MAX)
                return false;
        for (size_t i = (size_t)n + 1; i < len; i++)
                if (!nonce_char(topic[i]))
                        return false;
        return true;
}

/* -- requests ------------------------------------------------------------------------------ */

void enroll_request_clear(struct enroll_request *r)
{
        if (!r)
                return;
        floe_free(r->csr);
        OPENSSL_cleanse(r->token, sizeof(r->token));
        *r = (struct enroll_request){0};
}

int enroll_identity_check(const char *identity, struct enroll_error *err)
{
        const char *why = ca_name_problem(CA_KIND_DEVICE, identity);

        if (why)
                return enroll_fail(err, ENROLL_BAD_IDENTITY, "identity: %s", why);
        return 0;
}

enum field {
        F_VERSION,
        F_IDENTITY,
        F_CSR,
        F_TOKEN,
        F_OTHER,
};

static enum field field_of(const char *key, size_t len)
{
        static const char *const names[] = {"v", "identity", "csr", "token"};

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (len == strlen(names[i]) && memcmp(key, names[i], len) == 0)
                        return (enum field)i;
        return F_OTHER;
}

/* The text values, as they come from either format; checked in one place. */
static int set_identity(struct enroll_request *r, const char *s, size_t len,
                        struct enroll_error *err)
{
        if (len == 0)
                return enroll_fail(err, ENROLL_BAD_IDENTITY, "identity: empty");
        if (memchr(s, '\0', len))
                return enroll_fail(err, ENROLL_BAD_IDENTITY, "identity: contains NUL");
        if (len > CA_IDENTITY_MAX)
                return enroll_fail(err, ENROLL_BAD_IDENTITY, "identity: longer than %d bytes",
                                   CA_IDENTITY_MAX);
        memcpy(r->identity, s, len);
        r->identity[len] = '\0';
        return 0;
}

static int set_csr(struct enroll_request *r, const void *p, size_t len, bool der,
                   struct enroll_error *err)
{
        if (len == 0)
                return enroll_fail(err, ENROLL_BAD_CSR, "csr: empty");
        if (len > CA_CSR_MAX)
                return enroll_fail(err, ENROLL_BAD_CSR, "csr: larger than %d bytes", CA_CSR_MAX);
        if (!der && memchr(p, '\0', len))
                return enroll_fail(err, ENROLL_BAD_CSR, "csr: PEM text contains NUL");
        r->csr = floe_malloc(len + 1);
        if (!r->csr)
                return -ENOMEM;
        memcpy(r->csr, p, len);
        r->csr[len] = '\0';
        r->csr_len = len;
        r->csr_der = der;
        return 0;
}

static int set_token(struct enroll_request *r, const char *s, size_t len, struct enroll_error *err)
{
        if (len == 0 || len > ENROLL_TOKEN_MAX || memchr(s, '\0', len))
                return enroll_fail(err, ENROLL_BAD_REQUEST, "token: malformed");
        memcpy(r->token, s, len);
        r->token[len] = '\0';
        return 0;
}

static int finish(const struct enroll_request *r, struct enroll_error *err)
{
        if (!r->csr)
                return enroll_fail(err, ENROLL_BAD_REQUEST, "missing key \"csr\"");
        return 0;
}

static int decode_json(const char *data, size_t len, struct enroll_request *r,
                       struct enroll_error *err)
{
        json_error_t jerr;
        json_t *root, *v;
        const char *key;
        int ret = 0;

        root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!root) {
                /* jansson quotes the input "near '...'": it could be a token */
                char *near = strstr(jerr.text, " near ");

                if (near)
                        *near = '\0';
                return enroll_fail(err, ENROLL_BAD_REQUEST, "JSON: %s at byte %d", jerr.text,
                                   jerr.position);
        }
        if (!json_is_object(root)) {
                ret = enroll_fail(err, ENROLL_BAD_REQUEST, "JSON: not an object");
                goto out;
        }
        if (json_object_size(root) > MAP_ENTRIES_MAX) {
                ret = enroll_fail(err, ENROLL_BAD_REQUEST, "more than %d keys", MAP_ENTRIES_MAX);
                goto out;
        }
        json_object_foreach(root, key, v)
        {
                enum field f = field_of(key, strlen(key));

                if (f == F_OTHER)
                        continue;
                if (f == F_VERSION) {
                        if (!json_is_integer(v) || json_integer_value(v) != ENROLL_VERSION) {
                                ret = enroll_fail(err, ENROLL_BAD_REQUEST,
                                                  "v: unsupported version (expected %d)",
                                                  ENROLL_VERSION);
                                goto out;
                        }
                        continue;
                }
                if (!json_is_string(v)) {
                        ret = enroll_fail(err, ENROLL_BAD_REQUEST, "%s: expected a string", key);
                        goto out;
                }
                if (f == F_IDENTITY) {
                        ret = set_identity(r, json_string_value(v), json_string_length(v), err);
                } else if (f == F_CSR) {
                        ret = set_csr(r, json_string_value(v), json_string_length(v), false, err);
                } else {
                        ret = set_token(r, json_string_value(v), json_string_length(v), err);
                }
                if (ret < 0)
                        goto out;
        }
        ret = finish(r, err);
out:
        json_decref(root);
        return ret;
}

static int decode_cbor(const uint8_t *data, size_t len, struct enroll_request *r,
                       struct enroll_error *err)
{
        struct floe_wire_error werr = {0};
        struct rd rd = {.buf = data, .len = len, .err = &werr};
        bool seen[F_OTHER] = {false};
        struct item it;
        uint64_t n;
        int ret;

        if (floe_wire_rd_expect(&rd, &it, IT_MAP, "request") < 0)
                return enroll_fail(err, ENROLL_BAD_REQUEST, "CBOR: %s", werr.detail);
        n = it.u;
        if (n > MAP_ENTRIES_MAX)
                return enroll_fail(err, ENROLL_BAD_REQUEST, "more than %d keys", MAP_ENTRIES_MAX);
        for (uint64_t i = 0; i < n; i++) {
                enum field f;

                if (floe_wire_rd_expect(&rd, &it, IT_TSTR, "key") < 0)
                        return enroll_fail(err, ENROLL_BAD_REQUEST, "CBOR: %s", werr.detail);
                f = field_of((const char *)it.p, it.len);
                if (f == F_OTHER) {
                        if (floe_wire_rd_skip(&rd, 0, "value") < 0)
                                return enroll_fail(err, ENROLL_BAD_REQUEST, "CBOR: %s",
                                                   werr.detail);
                        continue;
                }
                if (seen[f])
                        return enroll_fail(err, ENROLL_BAD_REQUEST, "duplicate key \"%.*s\"",
                                           (int)it.len, (const char *)it.p);
                seen[f] = true;
                if (floe_wire_rd_next(&rd, &it, "value") < 0)
                        return enroll_fail(err, ENROLL_BAD_REQUEST, "CBOR: %s", werr.detail);
                if (f == F_VERSION) {
                        if (it.t != IT_UINT || it.u != ENROLL_VERSION)
                                return enroll_fail(err, ENROLL_BAD_REQUEST,
                                                   "v: unsupported version (expected %d)",
                                                   ENROLL_VERSION);
                        continue;
                }
                if (f == F_CSR && it.t == IT_BSTR)
                        ret = set_csr(r, it.p, it.len, true, err);
                else if (it.t != IT_TSTR)
                        ret = enroll_fail(err, ENROLL_BAD_REQUEST, "%s: expected a text string%s",
                                          f == F_IDENTITY ? "identity"
                                          : f == F_CSR    ? "csr"
                                                          : "token",
                                          f == F_CSR ? " or a byte string" : "");
                else if (!floe_utf8_valid((const char *)it.p, it.len))
                        ret = enroll_fail(err, ENROLL_BAD_REQUEST, "invalid UTF-8");
                else if (f == F_IDENTITY)
                        ret = set_identity(r, (const char *)it.p, it.len, err);
                else if (f == F_CSR)
                        ret = set_csr(r, it.p, it.len, false, err);
                else
                        ret = set_token(r, (const char *)it.p, it.len, err);
                if (ret < 0)
                        return ret;
        }
        if (rd.pos != len)
                return enroll_fail(err, ENROLL_BAD_REQUEST, "CBOR: %zu bytes after the map",
                                   len - rd.pos);
        return finish(r, err);
}

int enroll_request_decode(const void *data, size_t len, size_t max, struct enroll_request *ret,
                          struct enroll_error *err)
{
        struct enroll_request r = {0};
        const uint8_t *p = data;
        size_t i = 0;
        int rc;

        if (max > ENROLL_PAYLOAD_MAX)
                max = ENROLL_PAYLOAD_MAX;
        if (len > max) {
                enroll_fail(err, ENROLL_BAD_REQUEST, "larger than %zu bytes", max);
                return -EMSGSIZE;
        }
        if (len == 0)
                return enroll_fail(err, ENROLL_BAD_REQUEST, "empty payload");
        while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
                i++;
        if (i < len && p[i] == '{') {
                r.format = ENROLL_FORMAT_JSON;
                rc = decode_json(data, len, &r, err);
        } else if (p[0] >> 5 == 5) { /* CBOR major type 5: a map */
                r.format = ENROLL_FORMAT_CBOR;
                rc = decode_cbor(p, len, &r, err);
        } else {
                rc = enroll_fail(err, ENROLL_BAD_REQUEST, "neither a JSON object nor a CBOR map");
        }
        if (rc < 0) {
                enroll_request_clear(&r);
                return rc;
        }
        *ret = r;
        return 0;
}

/* -- responses ------------------------------------------------------------------------------ */

static int encode_json(const struct enroll_response *resp, char **ret, size_t *ret_len)
{
        char nb[32], na[32];
        json_t *o;
        char *text;
        int r = -ENOMEM;

        if (resp->reason == ENROLL_OK)
                o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "v", ENROLL_VERSION,
                              "status", "ok", "identity", resp->identity, "serial", resp->serial,
                              "not_before", ca_format_time(resp->not_before, nb, sizeof(nb)),
                              "not_after", ca_format_time(resp->not_after, na, sizeof(na)),
                              "certificate", resp->certificate, "chain", resp->chain, "replay",
                              resp->replay);
        else
                o = json_pack("{s:i, s:s, s:s, s:s}", "v", ENROLL_VERSION, "status", "error",
                              "reason", enroll_reason_name(resp->reason), "message",
                              resp->message ? resp->message : "");
        if (!o)
                return -ENOMEM;
        if (resp->reason == ENROLL_RATE_LIMITED &&
            json_object_set_new(o, "retry_after", json_integer((json_int_t)resp->retry_after_s)) <
                    0)
                goto out;
        text = json_dumps(o, JSON_COMPACT);
        if (!text)
                goto out;
        *ret_len = strlen(text);
        *ret = floe_strdup(text);
        free(text);
        r = *ret ? 0 : -ENOMEM;
out:
        json_decref(o);
        return r;
}

struct out {
        uint8_t *p;
        size_t size, len;
        bool full;
};

static void put(struct out *o, size_t n)
{
        if (n == 0)
                o->full = true;
        o->len += n;
}

static void put_str(struct out *o, const char *s)
{
        size_t n = strlen(s);

        if (o->full)
                return;
        put(o, cbor_encode_string_start(n, o->p + o->len, o->size - o->len));
        if (o->full || o->size - o->len < n) {
                o->full = true;
                return;
        }
        memcpy(o->p + o->len, s, n);
        o->len += n;
}

static void put_uint(struct out *o, uint64_t v)
{
        if (!o->full)
                put(o, cbor_encode_uint(v, o->p + o->len, o->size - o->len));
}

static void put_kv(struct out *o, const char *k, const char *v)
{
        put_str(o, k);
        put_str(o, v);
}

static int encode_cbor(const struct enroll_response *resp, char **ret, size_t *ret_len)
{
        bool ok = resp->reason == ENROLL_OK;
        bool retry = resp->reason == ENROLL_RATE_LIMITED;
        size_t size = 512;
        struct out o;
        char nb[32], na[32];

        if (ok)
                size += strlen(resp->identity) + strlen(resp->serial) + strlen(resp->certificate) +
                        strlen(resp->chain);
        else if (resp->message)
                size += strlen(resp->message);
        o = (struct out){.p = floe_malloc(size), .size = size};
        if (!o.p)
                return -ENOMEM;
        if (!o.full)
                put(&o, cbor_encode_map_start(ok ? 9 : retry ? 5 : 4, o.p, o.size));
        put_str(&o, "v");
        put_uint(&o, ENROLL_VERSION);
        if (ok) {
                put_kv(&o, "status", "ok");
                put_kv(&o, "identity", resp->identity);
                put_kv(&o, "serial", resp->serial);
                put_kv(&o, "not_before", ca_format_time(resp->not_before, nb, sizeof(nb)));
                put_kv(&o, "not_after", ca_format_time(resp->not_after, na, sizeof(na)));
                put_kv(&o, "certificate", resp->certificate);
                put_kv(&o, "chain", resp->chain);
                put_str(&o, "replay");
                if (!o.full)
                        put(&o, cbor_encode_bool(resp->replay, o.p + o.len, o.size - o.len));
        } else {
                put_kv(&o, "status", "error");
                put_kv(&o, "reason", enroll_reason_name(resp->reason));
                put_kv(&o, "message", resp->message ? resp->message : "");
                if (retry) {
                        put_str(&o, "retry_after");
                        put_uint(&o, resp->retry_after_s);
                }
        }
        if (o.full) {
                floe_free(o.p);
                return -ENOSPC;
        }
        *ret = (char *)o.p;
        *ret_len = o.len;
        return 0;
}

int enroll_response_encode(enum enroll_format f, const struct enroll_response *resp, char **ret,
                           size_t *ret_len)
{
        if (!enroll_reason_name(resp->reason))
                return -EINVAL;
        if (resp->reason == ENROLL_OK &&
            (!resp->identity || !resp->serial || !resp->certificate || !resp->chain))
                return -EINVAL;
        return f == ENROLL_FORMAT_CBOR ? encode_cbor(resp, ret, ret_len)
                                       : encode_json(resp, ret, ret_len);
}
