/* SPDX-License-Identifier: Apache-2.0 */
/* Payload parsers: every rejection reason, limits, all-or-nothing emission,
 * error details. */
#include "parse-test.h"

static const struct reject rejects[] = {
        R("", EMPTY, NULL),
        R(" \n\t\r\n", EMPTY, NULL),
        R("{\"a\":1,}", BAD_JSON, "line 1 column"),
        R("{\"a\":NaN}", BAD_JSON, NULL),
        R("{\"a\":1} x", BAD_JSON, NULL),
        R("[1", BAD_JSON, NULL),
        R("{\"a\":\"\xff\"}", BAD_UTF8, NULL),
        R("{\"\xc3\x28\":1}", BAD_UTF8, NULL),
        R("{\"\":1}", BAD_NAME, "empty metric"),
        R("{\"a\\u0001\":1}", BAD_NAME, "key \"a?\""),
        R("{\"a\\u0000b\":1}", BAD_NAME, NULL),
        R("{\"sensor\":\"\",\"a\":1}", BAD_NAME, "empty sensor"),
        R("{\"a\":1,\"a\":2}", DUPLICATE_KEY, NULL),
        R("{\"metric\":\"t\",\"value\":1,\"unit\":\"C\"}", UNKNOWN_KEY, "key \"unit\""),
        R("{\"metric\":\"t\"}", MISSING_VALUE, NULL),
        R("{\"metric\":\"t\",\"text\":null}", MISSING_VALUE, NULL),
        R("{\"a\":[1]}", BAD_VALUE_TYPE, "array"),
        R("{\"a\":{\"b\":1}}", BAD_VALUE_TYPE, "object"),
        R("{\"sensor\":5,\"a\":1}", BAD_VALUE_TYPE, "sensor"),
        R("{\"metric\":5,\"value\":1}", BAD_VALUE_TYPE, "metric"),
        R("{\"metric\":\"m\",\"value\":[1]}", BAD_VALUE_TYPE, NULL),
        R("{\"metric\":\"m\",\"value\":\"x\",\"text\":\"y\"}", BAD_VALUE_TYPE, NULL),
        R("{\"metric\":\"m\",\"value\":1,\"text\":5}", BAD_VALUE_TYPE, NULL),
        R("[1]", BAD_VALUE_TYPE, "object 1"),
        R("[{\"a\":1},\"x\"]", BAD_VALUE_TYPE, "object 2"),
        R("{\"a\":1e400}", NON_FINITE, NULL),
        R("{\"ts\":\"yesterday\",\"a\":1}", BAD_TIME, "key \"ts\""),
        R("{\"ts\":true,\"a\":1}", BAD_TIME, NULL),
        R("{\"ts\":1,\"time\":2,\"a\":1}", BAD_TIME, "more than one"),
        R("{\"ts\":1e300,\"a\":1}", BAD_TIME, NULL),
        R("{\"ts\":\"2025-02-29T00:00:00Z\",\"a\":1}", BAD_TIME, NULL),
        R("{\"a\":[[[[[[[[1]]]]]]]]}", TOO_DEEP, NULL),
        R("{\"a\":[[[[[[[1]]]]]]]}", BAD_VALUE_TYPE, NULL),
        R("m", BAD_LINE_PROTOCOL, "no field set"),
        R("m ", BAD_LINE_PROTOCOL, "empty field key"),
        R("m f", BAD_LINE_PROTOCOL, NULL),
        R("m f=", BAD_LINE_PROTOCOL, "missing field value"),
        R("m,t f=1", BAD_LINE_PROTOCOL, NULL),
        R("m,t= f=1", BAD_LINE_PROTOCOL, "empty tag value"),
        R("m,=v f=1", BAD_LINE_PROTOCOL, "empty tag key"),
        R("m f=1,", BAD_LINE_PROTOCOL, "empty field key"),
        R("m f=abc", BAD_LINE_PROTOCOL, "key \"f\""),
        R("m f=\"abc", BAD_LINE_PROTOCOL, "unterminated"),
        R("m,t=a=b f=1", BAD_LINE_PROTOCOL, NULL),
        R(",t=1 f=1", BAD_LINE_PROTOCOL, "empty measurement"),
        R("m f=\"a\"x", BAD_LINE_PROTOCOL, NULL),
        R("m  f=1", BAD_LINE_PROTOCOL, NULL),
        R("m f=1 ", BAD_LINE_PROTOCOL, NULL),
        R("m f=1 1 2", BAD_LINE_PROTOCOL, NULL),
        R("m f=1i2", BAD_LINE_PROTOCOL, NULL),
        R("m f=-1u", BAD_LINE_PROTOCOL, NULL),
        R("m f=+1", BAD_LINE_PROTOCOL, NULL),
        R("m f=1e", BAD_LINE_PROTOCOL, NULL),
        R("m value=1\n\nm value=2\nm value=x", BAD_LINE_PROTOCOL, "line 4"),
        R("m f=1 12x", BAD_TIME, NULL),
        R("m f=1 9223372036854775807", BAD_TIME, "out of range"),
        R("m f=1 -9223372036854775807", BAD_TIME, NULL),
        R("m f=9223372036854775808i", BAD_NUMBER, NULL),
        R("m f=-9223372036854775809i", BAD_NUMBER, NULL),
        R("m f=18446744073709551616u", BAD_NUMBER, NULL),
        R("m f=NaN", NON_FINITE, NULL),
        R("m f=-inf", NON_FINITE, NULL),
        R("m f=1e400", NON_FINITE, NULL),
        R("m f=\"\xff\"", BAD_UTF8, "line 1"),
        R("m,sensor=a,sensor=b f=1", DUPLICATE_KEY, NULL),
        R("m f=1,f=2", DUPLICATE_KEY, "key \"f\""),
        R("m\x01 f=1", BAD_NAME, "control character"),
        {"sensors/", "{\"a\":1}", AGENT_PARSE_BAD_NAME, "topic sensor"},
        {"-", "{\"a\":1}", AGENT_PARSE_NO_SENSOR, NULL},
        {"-", "m value=1", AGENT_PARSE_NO_SENSOR, NULL},
        {"-", "hex:a1 61 61 01", AGENT_PARSE_NO_SENSOR, NULL},
        R("hex:a1 61 61", BAD_CBOR, "byte 3"),
        R("hex:a1 61 61 01 00", BAD_CBOR, "1 bytes after"),
        R("hex:a1 61 61 43 010203", BAD_VALUE_TYPE, "byte string"),
        R("hex:a1 01 01", BAD_VALUE_TYPE, "map key"),
        R("hex:a1 61 61 f7", BAD_VALUE_TYPE, "undefined"),
        R("hex:a2 61 61 01 61 61 02", DUPLICATE_KEY, "byte 4"),
        R("hex:a1 61 61 f9 7e00", NON_FINITE, NULL),
        R("hex:a1 61 61 fb 7ff0000000000000", NON_FINITE, NULL),
        R("hex:a1 61 61 61 ff", BAD_UTF8, NULL),
        R("hex:a1 61 61 7f 41 00 ff", BAD_CBOR, "indefinite"),
        R("hex:a1 61 61 81 81 81 81 81 81 81 81 01", TOO_DEEP, NULL),
        R("hex:a1 61 61 81 81 81 81 81 81 81 01", BAD_VALUE_TYPE, "array"),
        R("hex:a1 61 61 c5 c5 c5 c5 c5 c5 c5 c5 c5 c5 c5 c5 01", TOO_DEEP, NULL),
        R("hex:a1 61 61 c6 01", BAD_CBOR, "malformed"),
        R("hex:a1 61 61 c1 c1 01", BAD_VALUE_TYPE, "tag on a tag"),
        R("hex:b9 03e8 61 61 01", BAD_CBOR, "claimed"),
        R("hex:82 a0 01", BAD_VALUE_TYPE, "object 2"),
        R("hex:81 ff", BAD_CBOR, "break"),
        R("hex:d9d9f7 01", BAD_VALUE_TYPE, "not a map"),
        R("hex:a1 61 61 f0", BAD_CBOR, NULL),
        R("hex:a2 62 7473 c1 61 78 61 61 01", BAD_TIME, "tag 1"),
        R("hex:a2 62 7473 1b8000000000000000 61 61 01", BAD_TIME, "range"),
        R("hex:a2 62 7473 c1 1b7fffffffffffffff 61 61 01", BAD_TIME, "range"),
        R("hex:a2 62 7473 c0 01 61 61 01", BAD_TIME, "tag 0"),
        R("hex:a1 61 61 c1 01", BAD_VALUE_TYPE, "tagged number"),
        R("hex:a2 66 6d6574726963 01 65 76616c7565 01", BAD_VALUE_TYPE, "metric"),
        R("hex:bf 61 61 ff", BAD_CBOR, "break"),
        R("hex:a1 61 61 9f 01 02 ff", BAD_VALUE_TYPE, "array"),
        R("hex:a1 61 61 5f 41 00 40 ff", BAD_VALUE_TYPE, "byte string"),
        R("hex:a1 61 61 5f 61 00 ff", BAD_CBOR, "indefinite"),
        R("hex:a1 61 61 81 c1 01", BAD_VALUE_TYPE, "array"),
        R("hex:a1 61 61 7f 61 ff ff", BAD_UTF8, NULL),
        R("hex:a2 62 7473 f9 7e00 61 61 01", BAD_TIME, "not finite"),
        R("hex:a2 62 7473 3b 7fffffffffffffff 61 61 01", BAD_TIME, "range"),
        R("m f=ai", BAD_LINE_PROTOCOL, "integer"),
        R("m f=0.00000000000000000000000000000000000000000000000000000000000000000000000000000"
          "000000000000000000000000000000000000000000000000000000000000001",
          BAD_NUMBER, "127"),
        {"sensors/\xff", "{\"a\":1}", AGENT_PARSE_BAD_UTF8, "topic sensor"},
};

static void test_rejections(void **state)
{
        struct agent_parser *p = parser(0, 0);

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(rejects); i++)
                expect_reject(p, &rejects[i]);
        agent_parser_free(p);
}

static char *repeat(char *buf, size_t size, const char *pre, char c, size_t n, const char *post)
{
        size_t a = strlen(pre), b = strlen(post);

        assert_true(a + n + b < size);
        memcpy(buf, pre, a);
        memset(buf + a, c, n);
        memcpy(buf + a + n, post, b + 1);
        return buf;
}

static void test_limits(void **state)
{
        static char buf[8192];
        struct agent_parser *p = parser(3, 200), *big = parser(0, 0);
        struct sink s;
        struct agent_parse_error e;

        (void)state;
        /* exactly at the limits: accepted */
        assert_int_equal(PARSE(p, "{\"a\":1,\"b\":2,\"c\":3}"), 3);
        assert_int_equal(PARSE(p, repeat(buf, sizeof(buf), "m s=\"", 'x', 194, "\"")), 1);
        expect_reject(p, &(struct reject)R("{\"a\":1,\"b\":2,\"c\":3,\"d\":4}", TOO_MANY_READINGS,
                                           "more than 3"));
        expect_reject(p, &(struct reject)R("m a=1\nm b=1\nm c=1,d=2", TOO_MANY_READINGS, NULL));
        expect_reject(p, &(struct reject)R("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,"
                                           "\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"k\":11,\"l\":12}",
                                           TOO_MANY_READINGS, "object of more than 11"));
        expect_reject(p, &(struct reject)R("hex:bf 6161 01 6162 01 6163 01 6164 01 6165 01 6166 01"
                                           " 6167 01 6168 01 6169 01 616a 01 616b 01 616c 01 ff",
                                           TOO_MANY_READINGS, "more than 11"));
        /* more objects than readings, even empty ones */
        expect_reject(
                p, &(struct reject)R("[{},{},{},{}]", TOO_MANY_READINGS, "array of more than 3"));
        expect_reject(p, &(struct reject)R("hex:9f a0 a0 a0 a0 ff", TOO_MANY_READINGS, "array"));
        expect_reject(p, &(struct reject)R("hex:84 a1 6161 01 a1 6162 01 a1 6163 01 a1 6164 01",
                                           TOO_MANY_READINGS, NULL));
        expect_reject(p, &(struct reject)R("hex:ac 6161 01 6162 01 6163 01 6164 01 6165 01 6166 01"
                                           " 6167 01 6168 01 6169 01 616a 01 616b 01 616c 01",
                                           TOO_MANY_READINGS, "map of 12"));
        expect_reject(p, &(struct reject)R(repeat(buf, sizeof(buf), "m s=\"", 'x', 195, "\""),
                                           TOO_LARGE, "201 bytes"));

        /* names and texts at and past their limits */
        assert_int_equal(PARSE(big, repeat(buf, sizeof(buf), "{\"", 'm', 255, "\":1}")), 1);
        assert_int_equal(s.r[0].metric_len, 255);
        expect_reject(big, &(struct reject)R(repeat(buf, sizeof(buf), "{\"", 'm', 256, "\":1}"),
                                             NAME_TOO_LONG, "256 bytes"));
        expect_reject(big, &(struct reject)R(repeat(buf, sizeof(buf), "m", 'm', 250, " abcde=1"),
                                             NAME_TOO_LONG, "257 bytes"));
        assert_int_equal(PARSE(big, repeat(buf, sizeof(buf), "{\"t\":\"", 'x', 4096, "\"}")), 1);
        assert_int_equal(s.r[0].text_len, 4096);
        expect_reject(big,
                      &(struct reject)R(repeat(buf, sizeof(buf), "{\"t\":\"", 'x', 4097, "\"}"),
                                        TEXT_TOO_LONG, "4097 bytes"));

        /* number literals: 4096 characters at most */
        assert_int_equal(PARSE(big, repeat(buf, sizeof(buf), "{\"a\":0.", '0', 4093, "1}")), 1);
        assert_true(s.r[0].v == 0); /* 1e-4094 underflows */
        expect_reject(big, &(struct reject)R(repeat(buf, sizeof(buf), "{\"a\":0.", '0', 4094, "1}"),
                                             BAD_NUMBER, "4097 characters"));
        agent_parser_free(p);
        agent_parser_free(big);
}

/* A payload with one bad reading emits nothing, in every format. */
static void test_all_or_nothing(void **state)
{
        static const char *const bad[] = {
                "{\"a\":1,\"b\":2,\"c\":3,\"d\":[1]}",
                "[{\"a\":1},{\"b\":2},{\"\":3}]",
                "m a=1\nm b=2\nm c=3\nm d=x",
                "hex:83 a1 6161 01 a1 6162 02 a1 6163 f7",
        };
        struct agent_parser *p = parser(0, 0);
        struct agent_parse_error e;
        struct cb c = {.n = 0};
        struct sink s;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const void *in = bad[i];
                size_t len = strlen(bad[i]);

                if (strncmp(bad[i], "hex:", 4) == 0) {
                        c.n = 0;
                        put_hex(&c, bad[i] + 4);
                        in = c.b;
                        len = c.n;
                }
                assert_true(parse(p, TOPIC, in, len, &s, &e) < 0);
                assert_int_equal(s.total, 0);
        }
        agent_parser_free(p);
}

static void test_callback_failure(void **state)
{
        struct agent_parser *p = parser(0, 0);
        struct agent_parse_error e;
        struct sink s = {.fail_at = 2};

        (void)state;
        assert_int_equal(agent_parse_payload(p, TOPIC, (const uint8_t *)"{\"a\":1,\"b\":2,\"c\":3}",
                                             strlen("{\"a\":1,\"b\":2,\"c\":3}"), collect, &s, &e),
                         -ENOSPC);
        assert_int_equal(e.reason, AGENT_PARSE_CALLBACK);
        assert_int_equal(e.emitted, 1);
        assert_int_equal(s.total, 1);
        assert_string_equal(s.r[0].metric, "a");
        assert_non_null(strstr(e.detail, "reading 2 of 3"));
        agent_parser_free(p);
}

static void test_details(void **state)
{
        struct agent_parser *p = parser(0, 0);
        struct agent_parse_error e;
        struct sink s;

        (void)state;
        /* control characters of the payload never reach the detail */
        assert_true(PARSE(p, "{\"a\\n\\u001b[31m\":1}") < 0);
        assert_int_equal(e.reason, AGENT_PARSE_BAD_NAME);
        for (const char *c = e.detail; *c; c++)
                assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
        assert_non_null(strstr(e.detail, "key \"a??[31m\""));
        /* invalid UTF-8 in a key quoted by the detail is replaced */
        assert_true(PARSE(p, "m,t=1 \xc3=1") < 0);
        assert_int_equal(e.reason, AGENT_PARSE_BAD_UTF8);
        assert_true(PARSE(p, "m,t=1 f\xc3\xa9=\"\"x") < 0);
        assert_int_equal(e.reason, AGENT_PARSE_BAD_LINE_PROTOCOL);
        assert_non_null(strstr(e.detail, "key \"f\xc3\xa9\""));
        /* reason and format names are stable and distinct */
        for (int i = 0; i < AGENT_PARSE_REASON_MAX; i++) {
                const char *n = agent_parse_reason_name(i);

                assert_string_not_equal(n, "invalid");
                assert_null(strpbrk(n, " _ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
                for (int k = 0; k < i; k++)
                        assert_string_not_equal(n, agent_parse_reason_name(k));
        }
        assert_string_equal(agent_parse_reason_name(AGENT_PARSE_REASON_MAX), "invalid");
        assert_string_equal(agent_parse_reason_name(AGENT_PARSE_BAD_LINE_PROTOCOL),
                            "bad-line-protocol");
        assert_string_equal(agent_parse_format_name(AGENT_PARSE_FORMAT_LINE), "line-protocol");
        agent_parser_free(p);
}

static uint64_t rnd(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* Duplicate keys are found whatever came before: objects that repeat the
 * last one's keys, drift from them, grow past what is remembered, in JSON,
 * CBOR and line protocol, against a plain pairwise check. */
static void test_duplicate_keys(void **state)
{
        static char longkey[251], longkey2[201];
        static const char *const pool[] = {"a",   "b",  "c",  "d",   "ab", "ba",    "temp",
                                           "hum", "m0", "m1", "m10", "vx", longkey, longkey2};
        struct agent_parser *p = parser(0, 0);
        struct agent_parse_error e;
        uint64_t x = 7;
        unsigned keys[80], n = 5;
        struct sink s;
        char doc[40000];

        (void)state;
        /* a few of them fill the 1 KiB of remembered key bytes */
        memset(longkey, 'k', sizeof(longkey) - 1);
        memset(longkey2, 'q', sizeof(longkey2) - 1);
        for (unsigned i = 0; i < n; i++)
                keys[i] = i;
        for (int round = 0; round < 6000; round++) {
                uint64_t op = rnd(&x) % 10;
                size_t len = 0;
                bool dup = false;
                int r;

                /* mostly the same shape again; else a change */
                if (op == 1 && n < ELEMENTSOF(keys))
                        keys[n++] = (unsigned)(rnd(&x) % ELEMENTSOF(pool));
                else if (op == 2 && n > 1)
                        n--;
                else if (op == 3)
                        keys[rnd(&x) % n] = (unsigned)(rnd(&x) % ELEMENTSOF(pool));
                else if (op == 4 && n > 1)
                        keys[rnd(&x) % n] = keys[rnd(&x) % n];
                else if (op == 5) /* many keys, past the 64 remembered */
                        while (n < 70)
                                keys[n++] = (unsigned)(rnd(&x) % ELEMENTSOF(pool));
                else if (op == 6)
                        for (n = 0; n < 5; n++)
                                keys[n] = n;
                for (unsigned i = 0; i < n; i++)
                        for (unsigned k = 0; k < i; k++)
                                dup |= keys[i] == keys[k];
                len += (size_t)snprintf(doc + len, sizeof(doc) - len, "{");
                for (unsigned i = 0; i < n; i++)
                        len += (size_t)snprintf(doc + len, sizeof(doc) - len, "%s\"%s\":%u",
                                                i ? "," : "", pool[keys[i]], i);
                len += (size_t)snprintf(doc + len, sizeof(doc) - len, "}");
                assert_true(len < sizeof(doc));
                r = PARSE(p, doc);
                if (dup) {
                        assert_int_equal(r, -EBADMSG);
                        assert_int_equal(e.reason, AGENT_PARSE_DUPLICATE_KEY);
                } else if (r < 0) {
                        fail_msg("round %d: %s rejected: %s", round, doc, e.detail);
                }
                /* line protocol fields, every few rounds: the same detector */
                if (round % 7 == 0 && n <= 20) {
                        len = (size_t)snprintf(doc, sizeof(doc), "m ");
                        for (unsigned i = 0; i < n; i++)
                                len += (size_t)snprintf(doc + len, sizeof(doc) - len, "%s%s=%u",
                                                        i ? "," : "", pool[keys[i]], i);
                        r = PARSE(p, doc);
                        assert_true(dup ? r == -EBADMSG && e.reason == AGENT_PARSE_DUPLICATE_KEY
                                        : r >= 0);
                }
        }
        agent_parser_free(p);
}

/* Every prefix of payloads the fast paths take is read without a byte past
 * its end (the buffer is exactly its size: ASan and valgrind see overreads)
 * and rejected, and a time short enough for the word-wise number reader
 * gives the right time. */
static void test_truncated_and_times(void **state)
{
        static const char *const docs[] = {
                "{\"ts\":1234567,\"a\":-21.5,\"b\":0.25,\"c\":1234567.1234567,\"d\":7}",
                "{\"a\":1,\"time\":1700000,\"bb\":\"text\",\"c\":-0,\"d\":12e3,\"e\":true}",
                "[{\"m\":1.5,\"ts\":12345},{\"m\":2.5,\"ts\":12345},{\"m\":3.5,\"ts\":99}]",
        };
        static const int64_t ts[] = {1234567000000LL, 1700000000000LL, 12345000000LL};
        struct agent_parser *p = parser(0, 0);
        struct agent_parse_error e;
        struct sink s;

        (void)state;
        for (size_t d = 0; d < ELEMENTSOF(docs); d++) {
                size_t len = strlen(docs[d]);

                for (size_t n = 0; n <= len; n++) {
                        char *buf = malloc(n ? n : 1);
                        int r;

                        assert_non_null(buf);
                        memcpy(buf, docs[d], n);
                        r = parse(p, TOPIC, buf, n, &s, &e);
                        if (n < len)
                                assert_true(r < 0);
                        else
                                assert_true(r > 0 && s.r[0].ts == ts[d]);
                        free(buf);
                }
        }
        agent_parser_free(p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rejections),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_all_or_nothing),
                cmocka_unit_test(test_callback_failure),
                cmocka_unit_test(test_details),
                cmocka_unit_test(test_duplicate_keys),
                cmocka_unit_test(test_truncated_and_times),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
