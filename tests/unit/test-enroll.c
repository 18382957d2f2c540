/* SPDX-License-Identifier: Apache-2.0 */
/* The enrollment protocol (certs/enroll.h): topics, request decoding, responses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <cmocka.h>
#include <jansson.h>

#include "enroll.h"
#include "floe-alloc.h"

#define CSR_PEM "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"

/* -- topics -------------------------------------------------------------------------------- */

static void test_topic_parse(void **state)
{
        static const char *const bad[] = {
                "floe/enroll/v1/claim-gw-1/res",
                "floe/enroll/v1/claim-gw-1/req/x",
                "floe/enroll/v1//req",
                "floe/enroll/v1/req",
                "floe/enroll/v2/claim-gw-1/req",
                "floe/v1/acme.gw-1/req",
                "floe/enroll/v1/Claim-gw-1/req",
                "floe/enroll/v1/acme.GW-1/req",
                "floe/enroll/v1/claim-+/req",
                "floe/enroll/v1/acme/req",
                "floe/enroll/v1/floe-enrolld/req",
                "floe/enroll/v1/acme.gw.1/req",
                "",
        };
        enum enroll_kind kind = ENROLL_KIND_RENEW;
        char id[CA_NAME_MAX + 1], big[400];

        (void)state;
        assert_int_equal(enroll_topic_parse("floe/enroll/v1/claim-gw-1/req", &kind, id, sizeof(id)),
                         0);
        assert_int_equal(kind, ENROLL_KIND_CLAIM);
        assert_string_equal(id, "claim-gw-1");
        assert_int_equal(enroll_topic_parse("floe/enroll/v1/acme.gw-1/req", &kind, id, sizeof(id)),
                         0);
        assert_int_equal(kind, ENROLL_KIND_RENEW);
        assert_string_equal(id, "acme.gw-1");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                snprintf(id, sizeof(id), "unchanged");
                assert_int_equal(enroll_topic_parse(bad[i], &kind, id, sizeof(id)), -EINVAL);
                assert_string_equal(id, "unchanged");
        }
        assert_int_equal(enroll_topic_parse(NULL, &kind, id, sizeof(id)), -EINVAL);
        /* too small a buffer, over-long ids */
        assert_int_equal(enroll_topic_parse("floe/enroll/v1/acme.gw-1/req", &kind, id, 9), -EINVAL);
        snprintf(big, sizeof(big), "floe/enroll/v1/acme.%0300d/req", 1);
        assert_int_equal(enroll_topic_parse(big, &kind, id, sizeof(id)), -EINVAL);
}

static bool rt_valid(const char *id, const char *topic)
{
        return enroll_response_topic_valid(id, topic, strlen(topic));
}

static void test_response_topic(void **state)
{
        char nonce[128];

        (void)state;
        assert_true(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/res"));
        assert_true(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/res/abc-DEF_1.2"));
        assert_true(rt_valid("acme.gw-1", "floe/enroll/v1/acme.gw-1/res/n"));
        assert_false(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-2/res/n"));
        assert_false(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/res/"));
        assert_false(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/res/a/b"));
        assert_false(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/res/+"));
        assert_false(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/res/#"));
        assert_false(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/resx"));
        assert_false(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/re"));
        assert_false(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/res/a b"));
        assert_false(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/req"));
        assert_false(rt_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1"));
        assert_false(rt_valid("claim-gw-1", ""));
        assert_false(enroll_response_topic_valid(NULL, "x", 1));
        /* an embedded NUL: the length is the MQTT property's, not strlen's */
        assert_false(enroll_response_topic_valid("claim-gw-1", "floe/enroll/v1/claim-gw-1/res/a\0b",
                                                 33));
        snprintf(nonce, sizeof(nonce), "floe/enroll/v1/claim-gw-1/res/%064d", 7);
        assert_true(rt_valid("claim-gw-1", nonce));
        snprintf(nonce, sizeof(nonce), "floe/enroll/v1/claim-gw-1/res/%065d", 7);
        assert_false(rt_valid("claim-gw-1", nonce));
}

/* -- decoding: JSON -------------------------------------------------------------------------- */

static int decode(const char *text, struct enroll_request *r, struct enroll_error *e)
{
        return enroll_request_decode(text, strlen(text), 16384, r, e);
}

/* The request is refused with reason and a message containing what. */
static void refuse(const char *text, size_t len, enum enroll_reason reason, const char *what)
{
        struct enroll_request r = {0};
        struct enroll_error e = {0};
        int rc = enroll_request_decode(text, len, 16384, &r, &e);

        if (rc != -EBADMSG && rc != -EMSGSIZE)
                fail_msg("accepted: %.*s", (int)(len > 80 ? 80 : len), text);
        if (e.reason != reason || !strstr(e.message, what))
                fail_msg("%.*s: %s: %s (wanted %s, \"%s\")", (int)(len > 80 ? 80 : len), text,
                         enroll_reason_name(e.reason), e.message, enroll_reason_name(reason), what);
        assert_null(r.csr);
}

static void refuse_s(const char *text, enum enroll_reason reason, const char *what)
{
        refuse(text, strlen(text), reason, what);
}

static void test_decode_json(void **state)
{
        struct enroll_request r = {0};
        struct enroll_error e = {0};
        json_t *o;
        char *text;

        (void)state;
        o = json_pack("{s:i, s:s, s:s, s:s, s:[i], s:{s:s}}", "v", 1, "identity", "acme.gw-1",
                      "csr", CSR_PEM, "token", "floe-et1-0123456789abcdef0123456789abcdef", "extra",
                      1, "more", "a", "b");
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        assert_non_null(text);
        assert_int_equal(decode(text, &r, &e), 0);
        assert_int_equal(r.format, ENROLL_FORMAT_JSON);
        assert_string_equal(r.identity, "acme.gw-1");
        assert_string_equal(r.csr, CSR_PEM);
        assert_int_equal(r.csr_len, strlen(CSR_PEM));
        assert_false(r.csr_der);
        assert_string_equal(r.token, "floe-et1-0123456789abcdef0123456789abcdef");
        enroll_request_clear(&r);
        assert_null(r.csr);
        assert_string_equal(r.token, "");
        free(text);
        /* identity and token are optional for the decoder; white space before the object */
        assert_int_equal(decode(" \n\t{\"csr\":\"x\"}", &r, &e), 0);
        assert_string_equal(r.identity, "");
        assert_string_equal(r.token, "");
        enroll_request_clear(&r);
}

static void test_decode_json_errors(void **state)
{
        char big[300], many[400];
        size_t n = 0;

        (void)state;
        refuse_s("{", ENROLL_BAD_REQUEST, "JSON");
        refuse_s("{\"csr\":\"x\"} x", ENROLL_BAD_REQUEST, "JSON");
        refuse_s("[1]", ENROLL_BAD_REQUEST, "neither");
        refuse_s("\"{\"", ENROLL_BAD_REQUEST, "neither");
        refuse_s("", ENROLL_BAD_REQUEST, "empty");
        refuse_s("   ", ENROLL_BAD_REQUEST, "neither");
        refuse_s("{\"identity\":\"acme.gw-1\"}", ENROLL_BAD_REQUEST, "missing key \"csr\"");
        refuse_s("{\"csr\":\"x\",\"csr\":\"y\"}", ENROLL_BAD_REQUEST, "duplicate");
        refuse_s("{\"csr\":5}", ENROLL_BAD_REQUEST, "csr: expected a string");
        refuse_s("{\"csr\":\"x\",\"identity\":null}", ENROLL_BAD_REQUEST, "identity");
        refuse_s("{\"csr\":\"x\",\"token\":[]}", ENROLL_BAD_REQUEST, "token");
        refuse_s("{\"csr\":\"x\",\"v\":2}", ENROLL_BAD_REQUEST, "version");
        refuse_s("{\"csr\":\"x\",\"v\":\"1\"}", ENROLL_BAD_REQUEST, "version");
        refuse_s("{\"csr\":\"x\",\"identity\":\"acme.gw\\u0000-1\"}", ENROLL_BAD_IDENTITY, "NUL");
        refuse_s("{\"csr\":\"x\",\"identity\":\"\"}", ENROLL_BAD_IDENTITY, "empty");
        refuse_s("{\"csr\":\"\"}", ENROLL_BAD_CSR, "empty");
        refuse_s("{\"csr\":\"a\\u0000b\"}", ENROLL_BAD_CSR, "NUL");
        refuse_s("{\"csr\":\"x\",\"token\":\"\"}", ENROLL_BAD_REQUEST, "token");
        refuse_s("{\"csr\":\"x\",\"token\":\"t\\u0000\"}", ENROLL_BAD_REQUEST, "token");
        snprintf(big, sizeof(big), "{\"csr\":\"x\",\"identity\":\"acme.%0200d\"}", 1);
        refuse_s(big, ENROLL_BAD_IDENTITY, "longer than 127");
        snprintf(big, sizeof(big), "{\"csr\":\"x\",\"token\":\"%065d\"}", 1);
        refuse_s(big, ENROLL_BAD_REQUEST, "token");
        n += (size_t)snprintf(many, sizeof(many), "{\"csr\":\"x\"");
        for (int i = 0; i < 16; i++)
                n += (size_t)snprintf(many + n, sizeof(many) - n, ",\"k%d\":%d", i, i);
        snprintf(many + n, sizeof(many) - n, "}");
        refuse_s(many, ENROLL_BAD_REQUEST, "more than 16 keys");
}

static void test_errors_never_quote_the_input(void **state)
{
        static const char *const texts[] = {
                "{\"csr\":\"x\",\"token\":\"floe-et1-secret",
                "{\"csr\":\"x\",\"token\":\"floe-et1-secret\" garbage}",
                "{\"token\":floe-et1-secret}",
        };
        struct enroll_request r = {0};
        struct enroll_error e = {0};

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                assert_int_equal(decode(texts[i], &r, &e), -EBADMSG);
                assert_int_equal(e.reason, ENROLL_BAD_REQUEST);
                assert_null(strstr(e.message, "secret"));
                for (const char *p = e.message; *p; p++)
                        assert_true(*p >= ' ' && *p <= '~');
        }
        enroll_fail(&e, ENROLL_INTERNAL,
                    "a\nb\x01"
                    "c\xc3\xa9");
        assert_string_equal(e.message, "a?b?c??");
}

static void test_decode_limits(void **state)
{
        struct enroll_request r = {0};
        struct enroll_error e = {0};
        size_t len = CA_CSR_MAX + 64;
        char *text = malloc(len + 1);

        (void)state;
        assert_non_null(text);
        /* larger than max: -EMSGSIZE, before parsing anything */
        memset(text, ' ', len);
        text[len] = '\0';
        assert_int_equal(enroll_request_decode(text, 2000, 1999, &r, &e), -EMSGSIZE);
        assert_int_equal(e.reason, ENROLL_BAD_REQUEST);
        assert_non_null(strstr(e.message, "larger than 1999 bytes"));
        /* max itself is capped at ENROLL_PAYLOAD_MAX */
        assert_int_equal(enroll_request_decode(text, ENROLL_PAYLOAD_MAX + 1, SIZE_MAX, &r, &e),
                         -EMSGSIZE);
        /* a CSR over CA_CSR_MAX inside an allowed payload */
        memcpy(text, "{\"csr\":\"", 8);
        memset(text + 8, 'A', len - 10);
        memcpy(text + len - 2, "\"}", 2);
        assert_int_equal(enroll_request_decode(text, len, ENROLL_PAYLOAD_MAX, &r, &e), -EBADMSG);
        assert_int_equal(e.reason, ENROLL_BAD_CSR);
        assert_non_null(strstr(e.message, "larger than 65536"));
        free(text);
}

/* -- decoding: CBOR ------------------------------------------------------------------------- */

struct buf {
        uint8_t b[512];
        size_t n;
};

static void cb_map(struct buf *b, size_t n)
{
        b->n += cbor_encode_map_start(n, b->b + b->n, sizeof(b->b) - b->n);
}

static void cb_text(struct buf *b, const char *s, size_t len)
{
        b->n += cbor_encode_string_start(len, b->b + b->n, sizeof(b->b) - b->n);
        memcpy(b->b + b->n, s, len);
        b->n += len;
}

static void cb_str(struct buf *b, const char *s)
{
        cb_text(b, s, strlen(s));
}

static void cb_bytes(struct buf *b, const void *p, size_t len)
{
        b->n += cbor_encode_bytestring_start(len, b->b + b->n, sizeof(b->b) - b->n);
        memcpy(b->b + b->n, p, len);
        b->n += len;
}

static void cb_uint(struct buf *b, uint64_t v)
{
        b->n += cbor_encode_uint(v, b->b + b->n, sizeof(b->b) - b->n);
}

static void cb_raw(struct buf *b, const char *bytes, size_t len)
{
        memcpy(b->b + b->n, bytes, len);
        b->n += len;
}

static void test_decode_cbor(void **state)
{
        static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x00};
        struct enroll_request r = {0};
        struct enroll_error e = {0};
        struct buf b = {0};

        (void)state;
        cb_map(&b, 5);
        cb_str(&b, "v");
        cb_uint(&b, 1);
        cb_str(&b, "identity");
        cb_str(&b, "acme.gw-1");
        cb_str(&b, "x-nested"); /* unknown keys are skipped, whatever they hold */
        cb_raw(&b, "\x82\xa1\x61k\x80\xc1\x01", 7);
        cb_str(&b, "csr");
        cb_bytes(&b, der, sizeof(der));
        cb_str(&b, "token");
        cb_str(&b, "tok");
        assert_int_equal(enroll_request_decode(b.b, b.n, 4096, &r, &e), 0);
        assert_int_equal(r.format, ENROLL_FORMAT_CBOR);
        assert_string_equal(r.identity, "acme.gw-1");
        assert_true(r.csr_der);
        assert_int_equal(r.csr_len, sizeof(der));
        assert_memory_equal(r.csr, der, sizeof(der));
        assert_string_equal(r.token, "tok");
        enroll_request_clear(&r);
        /* a PEM text CSR */
        b.n = 0;
        cb_map(&b, 1);
        cb_str(&b, "csr");
        cb_str(&b, CSR_PEM);
        assert_int_equal(enroll_request_decode(b.b, b.n, 4096, &r, &e), 0);
        assert_false(r.csr_der);
        assert_string_equal(r.csr, CSR_PEM);
        enroll_request_clear(&r);
}

static void refuse_cbor(const struct buf *b, enum enroll_reason reason, const char *what)
{
        refuse((const char *)b->b, b->n, reason, what);
}

static void test_decode_cbor_errors(void **state)
{
        struct buf b = {0};

        (void)state;
        /* truncated: a map of 2 with one entry */
        cb_map(&b, 2);
        cb_str(&b, "csr");
        cb_str(&b, "x");
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "CBOR");
        /* trailing bytes */
        b.n = 0;
        cb_map(&b, 1);
        cb_str(&b, "csr");
        cb_str(&b, "x");
        cb_uint(&b, 0);
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "after the map");
        /* indefinite-length map */
        b.n = 0;
        cb_raw(&b, "\xbf\x63\x63sr\x61x\xff", 8);
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "indefinite");
        /* a key that is not text */
        b.n = 0;
        cb_map(&b, 1);
        cb_uint(&b, 1);
        cb_str(&b, "x");
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "key");
        /* duplicate keys */
        b.n = 0;
        cb_map(&b, 2);
        cb_str(&b, "csr");
        cb_str(&b, "x");
        cb_str(&b, "csr");
        cb_str(&b, "y");
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "duplicate key \"csr\"");
        /* wrong types */
        b.n = 0;
        cb_map(&b, 1);
        cb_str(&b, "csr");
        cb_uint(&b, 3);
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "csr: expected a text string or a byte string");
        b.n = 0;
        cb_map(&b, 2);
        cb_str(&b, "csr");
        cb_str(&b, "x");
        cb_str(&b, "identity");
        cb_bytes(&b, "acme.gw-1", 9);
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "identity: expected a text string");
        b.n = 0;
        cb_map(&b, 2);
        cb_str(&b, "csr");
        cb_str(&b, "x");
        cb_str(&b, "v");
        cb_uint(&b, 2);
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "version");
        /* a tagged value, invalid UTF-8, NUL in the identity */
        b.n = 0;
        cb_map(&b, 1);
        cb_str(&b, "csr");
        cb_raw(&b, "\xc0\x61x", 3);
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "csr");
        b.n = 0;
        cb_map(&b, 2);
        cb_str(&b, "csr");
        cb_str(&b, "x");
        cb_str(&b, "identity");
        cb_text(&b, "acme.g\xc3", 7);
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "UTF-8");
        b.n = 0;
        cb_map(&b, 2);
        cb_str(&b, "csr");
        cb_str(&b, "x");
        cb_str(&b, "identity");
        cb_text(&b, "acme.g\0w", 8);
        refuse_cbor(&b, ENROLL_BAD_IDENTITY, "NUL");
        /* an empty DER CSR, an unknown value nested too deeply */
        b.n = 0;
        cb_map(&b, 1);
        cb_str(&b, "csr");
        cb_bytes(&b, "", 0);
        refuse_cbor(&b, ENROLL_BAD_CSR, "empty");
        b.n = 0;
        cb_map(&b, 2);
        cb_str(&b, "csr");
        cb_str(&b, "x");
        cb_str(&b, "deep");
        for (int i = 0; i < 40; i++)
                cb_raw(&b, "\x81", 1);
        cb_uint(&b, 0);
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "nested");
        /* 17 entries */
        b.n = 0;
        cb_map(&b, 17);
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "more than 16 keys");
        /* no CSR */
        b.n = 0;
        cb_map(&b, 0);
        refuse_cbor(&b, ENROLL_BAD_REQUEST, "missing key \"csr\"");
}

static void test_decode_allocation_failure(void **state)
{
        struct enroll_request r = {0};
        struct enroll_error e = {0};
        const char *text = "{\"csr\":\"x\"}";

        (void)state;
        floe_alloc_fail_at(1);
        assert_int_equal(decode(text, &r, &e), -ENOMEM);
        floe_alloc_fail_at(0);
        assert_null(r.csr);
        assert_int_equal(decode(text, &r, &e), 0);
        enroll_request_clear(&r);
}

static void test_identity_check(void **state)
{
        static const char *const bad[] = {
                "acme.gw/1",  "acme.gw+1", "acme.#",    "Acme.gw",  "acme", "acme.gw.x",
                "claim-gw-1", "acme.-gw",  "acme.gw_1", "acme. gw", "",
        };
        struct enroll_error e = {0};

        (void)state;
        assert_int_equal(enroll_identity_check("acme.gw-1", &e), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                e = (struct enroll_error){0};
                assert_int_equal(enroll_identity_check(bad[i], &e), -EBADMSG);
                assert_int_equal(e.reason, ENROLL_BAD_IDENTITY);
                assert_true(strncmp(e.message, "identity: ", 10) == 0 && strlen(e.message) > 10);
        }
}

/* -- responses ------------------------------------------------------------------------------ */

static const struct enroll_response ok_resp = {
        .reason = ENROLL_OK,
        .identity = "acme.gw-1",
        .serial = "0123ABCD",
        .not_before = 1800000000,
        .not_after = 1800086400,
        .certificate = "LEAF",
        .chain = "CHAIN",
        .replay = true,
};

static void test_response_json(void **state)
{
        struct enroll_response err = {
                .reason = ENROLL_RATE_LIMITED, .message = "slow down", .retry_after_s = 42};
        json_error_t je;
        json_t *o;
        char *buf = NULL;
        size_t len = 0;

        (void)state;
        assert_int_equal(enroll_response_encode(ENROLL_FORMAT_JSON, &ok_resp, &buf, &len), 0);
        o = json_loadb(buf, len, 0, &je);
        assert_non_null(o);
        assert_int_equal(json_integer_value(json_object_get(o, "v")), 1);
        assert_string_equal(json_string_value(json_object_get(o, "status")), "ok");
        assert_string_equal(json_string_value(json_object_get(o, "identity")), "acme.gw-1");
        assert_string_equal(json_string_value(json_object_get(o, "serial")), "0123ABCD");
        assert_string_equal(json_string_value(json_object_get(o, "not_before")),
                            "2027-01-15T08:00:00Z");
        assert_string_equal(json_string_value(json_object_get(o, "not_after")),
                            "2027-01-16T08:00:00Z");
        assert_string_equal(json_string_value(json_object_get(o, "certificate")), "LEAF");
        assert_string_equal(json_string_value(json_object_get(o, "chain")), "CHAIN");
        assert_true(json_is_true(json_object_get(o, "replay")));
        assert_null(json_object_get(o, "reason"));
        json_decref(o);
        floe_free(buf);
        assert_int_equal(enroll_response_encode(ENROLL_FORMAT_JSON, &err, &buf, &len), 0);
        o = json_loadb(buf, len, 0, &je);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "status")), "error");
        assert_string_equal(json_string_value(json_object_get(o, "reason")), "rate-limited");
        assert_string_equal(json_string_value(json_object_get(o, "message")), "slow down");
        assert_int_equal(json_integer_value(json_object_get(o, "retry_after")), 42);
        assert_null(json_object_get(o, "certificate"));
        json_decref(o);
        floe_free(buf);
        /* no retry_after but for rate limits; an OK response needs its fields */
        err.reason = ENROLL_TOKEN_USED;
        assert_int_equal(enroll_response_encode(ENROLL_FORMAT_JSON, &err, &buf, &len), 0);
        assert_null(strstr(buf, "retry_after"));
        assert_non_null(strstr(buf, "\"token-used\""));
        floe_free(buf);
        err = ok_resp;
        err.chain = NULL;
        assert_int_equal(enroll_response_encode(ENROLL_FORMAT_JSON, &err, &buf, &len), -EINVAL);
        err.reason = _ENROLL_REASON_MAX;
        assert_int_equal(enroll_response_encode(ENROLL_FORMAT_CBOR, &err, &buf, &len), -EINVAL);
}

/* The text value of key in a CBOR map, "" if absent (a small walk with libcbor). */
static char *cbor_text(cbor_item_t *map, const char *key, char *out, size_t size)
{
        struct cbor_pair *p = cbor_map_handle(map);

        out[0] = '\0';
        for (size_t i = 0; i < cbor_map_size(map); i++) {
                if (cbor_string_length(p[i].key) != strlen(key) ||
                    memcmp(cbor_string_handle(p[i].key), key, strlen(key)) != 0)
                        continue;
                if (cbor_isa_string(p[i].value))
                        snprintf(out, size, "%.*s", (int)cbor_string_length(p[i].value),
                                 (const char *)cbor_string_handle(p[i].value));
                else if (cbor_isa_uint(p[i].value))
                        snprintf(out, size, "%llu", (unsigned long long)cbor_get_int(p[i].value));
                else if (cbor_is_bool(p[i].value))
                        snprintf(out, size, "%s", cbor_get_bool(p[i].value) ? "true" : "false");
        }
        return out;
}

static void test_response_cbor(void **state)
{
        struct enroll_response err = {
                .reason = ENROLL_RATE_LIMITED, .message = "slow", .retry_after_s = 7};
        struct cbor_load_result res;
        cbor_item_t *m;
        char *buf = NULL, v[64];
        size_t len = 0;

        (void)state;
        assert_int_equal(enroll_response_encode(ENROLL_FORMAT_CBOR, &ok_resp, &buf, &len), 0);
        m = cbor_load((const unsigned char *)buf, len, &res);
        assert_non_null(m);
        assert_int_equal(res.read, len);
        assert_int_equal(cbor_map_size(m), 9);
        assert_string_equal(cbor_text(m, "v", v, sizeof(v)), "1");
        assert_string_equal(cbor_text(m, "status", v, sizeof(v)), "ok");
        assert_string_equal(cbor_text(m, "identity", v, sizeof(v)), "acme.gw-1");
        assert_string_equal(cbor_text(m, "not_after", v, sizeof(v)), "2027-01-16T08:00:00Z");
        assert_string_equal(cbor_text(m, "certificate", v, sizeof(v)), "LEAF");
        assert_string_equal(cbor_text(m, "chain", v, sizeof(v)), "CHAIN");
        assert_string_equal(cbor_text(m, "replay", v, sizeof(v)), "true");
        cbor_decref(&m);
        floe_free(buf);
        assert_int_equal(enroll_response_encode(ENROLL_FORMAT_CBOR, &err, &buf, &len), 0);
        m = cbor_load((const unsigned char *)buf, len, &res);
        assert_non_null(m);
        assert_int_equal(cbor_map_size(m), 5);
        assert_string_equal(cbor_text(m, "reason", v, sizeof(v)), "rate-limited");
        assert_string_equal(cbor_text(m, "message", v, sizeof(v)), "slow");
        assert_string_equal(cbor_text(m, "retry_after", v, sizeof(v)), "7");
        cbor_decref(&m);
        floe_free(buf);
        err.reason = ENROLL_INTERNAL;
        assert_int_equal(enroll_response_encode(ENROLL_FORMAT_CBOR, &err, &buf, &len), 0);
        m = cbor_load((const unsigned char *)buf, len, &res);
        assert_int_equal(cbor_map_size(m), 4);
        cbor_decref(&m);
        floe_free(buf);
}

static void test_names(void **state)
{
        (void)state;
        for (int i = 0; i < _ENROLL_REASON_MAX; i++) {
                const char *n = enroll_reason_name((enum enroll_reason)i);

                assert_non_null(n);
                for (int j = 0; j < i; j++)
                        assert_string_not_equal(n, enroll_reason_name((enum enroll_reason)j));
        }
        assert_null(enroll_reason_name(_ENROLL_REASON_MAX));
        assert_string_equal(enroll_reason_name(ENROLL_NOT_ENTITLED), "not-entitled");
        assert_string_equal(enroll_format_content_type(ENROLL_FORMAT_CBOR), "application/cbor");
        assert_string_equal(enroll_format_content_type(ENROLL_FORMAT_JSON), "application/json");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_topic_parse),
                cmocka_unit_test(test_response_topic),
                cmocka_unit_test(test_decode_json),
                cmocka_unit_test(test_decode_json_errors),
                cmocka_unit_test(test_errors_never_quote_the_input),
                cmocka_unit_test(test_decode_limits),
                cmocka_unit_test(test_decode_cbor),
                cmocka_unit_test(test_decode_cbor_errors),
                cmocka_unit_test(test_decode_allocation_failure),
                cmocka_unit_test(test_identity_check),
                cmocka_unit_test(test_response_json),
                cmocka_unit_test(test_response_cbor),
                cmocka_unit_test(test_names),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
