/* SPDX-License-Identifier: Apache-2.0 */
/* Payload parsers: what each format accepts, read exactly; allocation. */
#include <ctype.h>
#include <jansson.h>
#include <locale.h>
#include <stdlib.h>

#include "parse-internal.h"
#include "parse-test.h"

/* ---- JSON ---- */

/* ---- numbers ---- */

static uint64_t rng_next(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* The wire format's encoder rule (docs/wire-format.md §7) by its definition:
 * the smallest k with round(v·10^k) ÷ 10^k == v, 16 if none. */
static unsigned smallest_scale(double v)
{
        static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

        for (unsigned k = 0; k < 16; k++) {
                double x = v * p10[k], back;
                int64_t m;

                if (!(x > -9007199254740993.0 && x < 9007199254740993.0))
                        continue;
                m = (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
                back = (double)m / p10[k];
                if (back == v && signbit(back) == signbit(v))
                        return k;
        }
        return 16;
}

/* The decimal fast path agrees bit for bit with glibc's correctly rounded strtod_l on
 * random literals of every shape it takes, and on the edges where it must hand over. */
static void test_decimal_exact(void **state)
{
        static const char *const edges[] = {
                "0",
                "-0",
                "0.0",
                "-0.0e5",
                "9007199254740992",
                "9007199254740993",
                "18446744073709551615",
                "1e22",
                "1e23",
                "1e-22",
                "1e-23",
                "123456789012345678",
                "1234567890123456789",
                "12345678901234567890",
                "0.1",
                "0.3",
                "2.2250738585072014e-308",
                "4.9e-324",
                "1.7976931348623157e308",
                "1e-400",
                "0.000000000000000000000000000001",
                "100000000000000000000000e-10",
                "-21.5",
                "+3.25",
                "1E5",
                "1e+5",
                "7.0e-10",
        };
        struct agent_parser *p = parser(0, 0), *jp = parser(0, 0);
        locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        struct agent_parse_error e = {0};
        uint64_t seed = 0x9e3779b97f4a7c15ull;
        char buf[64];

        (void)state;
        assert_non_null(c);
        p->err = &e;
        for (size_t i = 0; i < ELEMENTSOF(edges) + 2000000; i++) {
                const char *lit = buf;
                double got, want;

                if (i < ELEMENTSOF(edges)) {
                        lit = edges[i];
                } else {
                        unsigned nd = 1 + rng_next(&seed) % 20, dot = rng_next(&seed) % (nd + 1);
                        int x = (int)(rng_next(&seed) % 61) - 30;
                        size_t n = 0;

                        if (rng_next(&seed) & 1)
                                buf[n++] = '-';
                        for (unsigned k = 0; k < nd; k++) {
                                if (k == dot && k > 0)
                                        buf[n++] = '.';
                                buf[n++] = (char)('0' + rng_next(&seed) % 10);
                        }
                        if (rng_next(&seed) % 3 == 0)
                                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "e%d", x);
                        buf[n] = '\0';
                }
                want = strtod_l(lit, NULL, c);
                if (!isfinite(want))
                        continue;
                assert_int_equal(agent_parse_decimal(p, lit, strlen(lit), &got), 0);
                if (memcmp(&got, &want, sizeof(got)) != 0)
                        fail_msg("\"%s\": %.17g, strtod says %.17g", lit, got, want);
                /* and the JSON reader's own fast path, on what JSON allows */
                if (i % 4 == 0 && lit[0] != '+' &&
                    !(lit[lit[0] == '-'] == '0' &&
                      isdigit((unsigned char)lit[1 + (lit[0] == '-')]))) {
                        struct agent_parse_error je;
                        struct sink s;
                        char doc[96];

                        /* with bytes after it too: the reader takes numbers by words then */
                        snprintf(doc, sizeof(doc),
                                 i % 8 ? "{\"x\":%s}" : "{\"x\":%s,\"p\":\"0123456789abcdef\"}",
                                 lit);
                        assert_int_equal(parse(jp, TOPIC, doc, strlen(doc), &s, &je),
                                         i % 8 ? 1 : 2);
                        if (memcmp(&s.r[0].v, &want, sizeof(want)) != 0)
                                fail_msg("%s: %.17g, strtod says %.17g", doc, s.r[0].v, want);
                        /* a decimals hint is the smallest scale of docs/wire-format.md §7,
                         * and there is one for every short plain literal but -0 */
                        if (s.r[0].decimals != 0 && s.r[0].decimals != 1 + smallest_scale(want))
                                fail_msg("%s: decimals %u, smallest scale %u", doc,
                                         s.r[0].decimals - 1, smallest_scale(want));
                        if (s.r[0].decimals == 0 && strlen(lit) <= 15 && !strpbrk(lit, "eE") &&
                            !(want == 0 && signbit(want)))
                                fail_msg("%s: no decimals hint", doc);
                }
        }
        freelocale(c);
        agent_parser_free(p);
        agent_parser_free(jp);
}

/* JSON read by jansson, an independent parser (RFC 8259, duplicate keys rejected): every
 * payload it rejects is rejected, and for flat maps of numbers, strings and literals the
 * readings carry exactly its values, in order. */
static void test_json_against_jansson(void **state)
{
        static const char *const docs[] = {
                "{\"a\":1,\"b\":-2.5e-3,\"c\":true,\"d\":false,\"e\":null,\"f\":\"x\"}",
                " \n{ \"a\" : 1 ,\r\n\t\"b\":[ ] , \"c\" : { } }\n",
                "{\"a\\u00e9\\ud83d\\ude00\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\"}",
                "{\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\":\"\xe2\x82\xac\"}",
                "{\"a\":\"\\ud800\"}",
                "{\"a\":\"\\udc00\\ud800\"}",
                "{\"a\":\"\\ud800\\u0041\"}",
                "{\"a\":\"\\u12\"}",
                "{\"a\":\"\\x\"}",
                "{\"a\":\"\t\"}",
                "{\"a\":01}",
                "{\"a\":1.}",
                "{\"a\":.5}",
                "{\"a\":-}",
                "{\"a\":1e}",
                "{\"a\":1e+}",
                "{\"a\":+1}",
                "{\"a\":0x10}",
                "{\"a\":Infinity}",
                "{\"a\":-0}",
                "{\"a\":tru}",
                "{\"a\":nulll}",
                "{\"a\" 1}",
                "{\"a\":1 \"b\":2}",
                "{,}",
                "{\"a\":1,}",
                "[{\"a\":1},]",
                "[{\"a\":1}",
                "{\"a\":1}}",
                "{\"a\":[1,2,]}",
                "{\"a\":[1 2]}",
                "{\"a\":{\"b\"}}",
                "{'a':1}",
                "{\"a\":\"\xed\xa0\x80\"}",
                "{\"a\":\"\xc0\xaf\"}",
                "{\"a\":\"\xf4\x90\x80\x80\"}",
                "{\"a\":\"\xe2\x82\"}",
                "{\"a\":1e400}",
                "{\"a\":-1e400}",
                "{\"a\":1e-400}",
                "{\"a\":123456789012345678901234567890}",
                "{\"a\":0.1,\"b\":1.7976931348623157e308,\"c\":4.9e-324,\"d\":1E2}",
                "{\"a\":1,\"a\":2}",
                "{\"a\":{\"x\":1,\"x\":2}}",
                "[]",
                "{}",
                "[{}]",
                "{\"a\":\"unterminated}",
                "{\"a\":\"\\u0000\"}",
        };
        struct agent_parser *p = parser(0, 0);
        struct agent_parse_error e;
        struct sink s;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                const size_t flags =
                        JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL;
                json_t *j = json_loadb(docs[i], strlen(docs[i]), flags, NULL);
                int r = PARSE(p, docs[i]);
                const char *k;
                json_t *v;
                uint32_t n = 0;
                bool flat = true;

                if (!j) {
                        if (r >= 0)
                                fail_msg("\"%s\": jansson rejects it, we accept it", docs[i]);
                        continue;
                }
                if (json_is_object(j)) {
                        json_object_foreach(j, k, v) flat =
                                flat && !json_is_object(v) && !json_is_array(v);
                }
                if (!json_is_object(j) || !flat || json_object_size(j) == 0) {
                        json_decref(j);
                        continue;
                }
                if (r < 0)
                        fail_msg("\"%s\": jansson accepts it, we reject it: %s (%s)", docs[i],
                                 agent_parse_reason_name(e.reason), e.detail);
                json_object_foreach(j, k, v)
                {
                        struct got *g = &s.r[n++];

                        assert_string_equal(g->metric, k);
                        if (json_is_real(v)) {
                                double d = json_real_value(v);

                                if (memcmp(&g->v, &d, sizeof(d)) != 0)
                                        fail_msg("\"%s\" %s: %.17g, jansson %.17g", docs[i], k,
                                                 g->v, d);
                        } else if (json_is_string(v)) {
                                assert_true(g->has_text);
                                assert_int_equal(g->text_len, json_string_length(v));
                                assert_memory_equal(g->text, json_string_value(v),
                                                    json_string_length(v));
                        } else if (json_is_boolean(v)) {
                                assert_true(g->v == (json_is_true(v) ? 1 : 0));
                        } else {
                                assert_true(g->null);
                        }
                }
                assert_int_equal((uint32_t)r, n);
                json_decref(j);
        }
        agent_parser_free(p);
}

static void test_json_shapes(void **state)
{
        static const struct accept cases[] = {
                {NULL,
                 "{\"metric\":\"temp\",\"value\":21.5,\"ts\":1763676000,\"sensor\":\"x\","
                 "\"text\":\"hi\"}",
                 1,
                 {{"x", "temp", T0_US, 21.5, false, "hi"}}},
                {NULL, "{\"value\":3}", 1, {{"boiler-3", "value", NONE, 3, false, NULL}}},
                {NULL,
                 "{\"metric\":\"on\",\"value\":true}",
                 1,
                 {{"boiler-3", "on", NONE, 1, false, NULL}}},
                {NULL,
                 "{\"metric\":\"door\",\"value\":\"open\"}",
                 1,
                 {{"boiler-3", "door", NONE, 0, true, "open"}}},
                {NULL,
                 "{\"metric\":\"door\",\"text\":\"open\",\"value\":null}",
                 1,
                 {{"boiler-3", "door", NONE, 0, true, "open"}}},
                {NULL,
                 "{\"metric\":\"m\",\"value\":null}",
                 1,
                 {{"boiler-3", "m", NONE, 0, true, NULL}}},
                {NULL,
                 "{\"temp\":21.5,\"hum\":40,\"on\":true,\"off\":false,\"state\":\"ok\","
                 "\"gone\":null,\"ts\":\"2025-11-20T22:00:00.5Z\"}",
                 6,
                 {{"boiler-3", "temp", T0_US + 500000, 21.5, false, NULL},
                  {"boiler-3", "hum", T0_US + 500000, 40, false, NULL},
                  {"boiler-3", "on", T0_US + 500000, 1, false, NULL},
                  {"boiler-3", "off", T0_US + 500000, 0, false, NULL},
                  {"boiler-3", "state", T0_US + 500000, 0, true, "ok"},
                  {"boiler-3", "gone", T0_US + 500000, 0, true, NULL}}},
                {"sensors/hall/door", "{\"a\":1}", 1, {{"hall/door", "a", NONE, 1, false, NULL}}},
                {"other/x", "{\"a\":1}", 1, {{"other/x", "a", NONE, 1, false, NULL}}},
                {NULL,
                 "[{\"a\":1},{\"metric\":\"b\",\"value\":2,\"sensor\":\"s2\","
                 "\"time\":1763676000123}]",
                 2,
                 {{"boiler-3", "a", NONE, 1, false, NULL},
                  {"s2", "b", T0_US + 123000, 2, false, NULL}}},
                {NULL, "{}", 0, {{0}}},
                {NULL, "[]", 0, {{0}}},
                {NULL, "{\"ts\":5}", 0, {{0}}},
                {NULL,
                 "{\"sensor\":\"pump-1\",\"rpm\":1200,\"timestamp\":1763676000123456}",
                 1,
                 {{"pump-1", "rpm", T0_US + 123456, 1200, false, NULL}}},
                {NULL, " \r\n\t{\"a\":\"NaN\"}\n", 1, {{"boiler-3", "a", NONE, 0, true, "NaN"}}},
                {NULL,
                 "{\"big\":18446744073709551615,\"neg\":-2.5e-3,\"tiny\":1e-400}",
                 3,
                 {{"boiler-3", "big", NONE, 18446744073709551615.0, false, NULL},
                  {"boiler-3", "neg", NONE, -0.0025, false, NULL},
                  {"boiler-3", "tiny", NONE, 0, false, NULL}}},
                {NULL,
                 "{\"temp\xc2\xb0\":1,\"sensor\":\"k\xc3\xbc\x63he\"}",
                 1,
                 {{"k\xc3\xbc\x63he", "temp\xc2\xb0", NONE, 1, false, NULL}}},
                {NULL, "{\"t\":1,\"ts\":-1}", 1, {{"boiler-3", "t", -1000000, 1, false, NULL}}},
                {NULL,
                 "{\"text\":\"hello\",\"x\":2}",
                 2,
                 {{"boiler-3", "text", NONE, 0, true, "hello"},
                  {"boiler-3", "x", NONE, 2, false, NULL}}},
                {NULL,
                 "{\"s\":\"a\\u0000b\",\"u\":\"\\u00e9\\ud83d\\ude80\"}",
                 2,
                 {{"boiler-3", "s", NONE, 0, true, "a"}, /* the NUL ends the C copy */
                  {"boiler-3", "u", NONE, 0, true, "\xc3\xa9\xf0\x9f\x9a\x80"}}},
        };

        (void)state;
        run_accepts(cases, ELEMENTSOF(cases));
}

/* Epoch numbers: seconds below 1e11, milliseconds below 1e14, microseconds above. */
static void test_time_numbers(void **state)
{
        static const struct {
                const char *ts;
                int64_t us;
        } cases[] = {
                {"1763676000", T0_US},
                {"1763676000.25", T0_US + 250000},
                {"1763676000.123456", T0_US + 123456},
                {"99999999999", 99999999999000000LL},
                {"100000000000", 100000000000000LL},
                {"99999999999999", 99999999999999000LL},
                {"100000000000000", 100000000000000LL},
                {"-99999999999", -99999999999000000LL},
                {"0", 0},
                {"1763676000123.5", T0_US + 123500},
                {"null", NONE},
                {"\"2025-11-20T23:00:00+01:00\"", T0_US},
                {"\"2025-11-20T16:30:00-05:30\"", T0_US},
                {"\"2025-11-20t22:00:00.000001z\"", T0_US + 1},
                {"\"2025-11-20T22:00:00.123456789Z\"", T0_US + 123456},
                {"\"2025-11-20T22:00:00.1Z\"", T0_US + 100000},
                {"\"2025-11-20T22:00:00-00:00\"", T0_US},
                {"\"2016-12-31T23:59:60Z\"", 1483228800000000LL},
                {"\"2017-01-01T00:59:60+01:00\"", 1483228800000000LL},
                {"\"2000-02-29T00:00:00Z\"", 951782400000000LL},
                {"\"1969-12-31T00:00:00Z\"", -86400000000LL},
                {"\"0000-01-01T00:00:00Z\"", -62167219200000000LL},
        };
        struct agent_parser *p = parser(0, 0);
        struct agent_parse_error e;
        struct sink s;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char buf[128];
                int n = snprintf(buf, sizeof(buf), "{\"a\":1,\"ts\":%s}", cases[i].ts);

                assert_int_equal(parse(p, TOPIC, buf, (size_t)n, &s, &e), 1);
                if (s.r[0].ts != cases[i].us)
                        fail_msg("ts %s: got %lld, want %lld", cases[i].ts, (long long)s.r[0].ts,
                                 (long long)cases[i].us);
        }
        agent_parser_free(p);
}

static void test_rfc3339_invalid(void **state)
{
        static const char *const bad[] = {
                "2025-11-20T22:00:00",
                "2025-11-20 22:00:00Z",
                "2025-11-20T22:00Z",
                "2025-02-29T00:00:00Z",
                "2025-13-01T00:00:00Z",
                "2025-00-10T00:00:00Z",
                "2025-11-31T00:00:00Z",
                "2025-11-20T24:00:00Z",
                "2025-11-20T22:60:00Z",
                "2025-11-20T22:00:61Z",
                "2025-11-20T22:00:60Z",
                "2025-11-20T22:00:00.Z",
                "2025-11-20T22:00:00.1234567890Z",
                "2025-11-20T22:00:00+0100",
                "2025-11-20T22:00:00+24:00",
                "2025-11-20T22:00:00+01:60",
                "2025-11-20T22:00:00Zx",
                "25-11-20T22:00:00Z",
                "2025-1-20T22:00:00Z",
                "+2025-11-20T22:00:00Z",
                "2025-11-20T22:00:00+01:00 ",
                "",
        };
        int64_t us = 42;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (agent_parse_rfc3339(bad[i], strlen(bad[i]), &us) != -EINVAL)
                        fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(us, 42);
}

/* ---- line protocol ---- */

static void test_line_shapes(void **state)
{
        static const struct accept cases[] = {
                {NULL,
                 "weather,loc=us,sensor=s1 temperature=82,humidity=71i,ok=t,"
                 "note=\"a \\\"q\\\" \\\\ b\",cnt=5u 1465839830100400200",
                 5,
                 {{"s1", "weather.temperature", 1465839830100400, 82, false, NULL},
                  {"s1", "weather.humidity", 1465839830100400, 71, false, NULL},
                  {"s1", "weather.ok", 1465839830100400, 1, false, NULL},
                  {"s1", "weather.note", 1465839830100400, 0, true, "a \"q\" \\ b"},
                  {"s1", "weather.cnt", 1465839830100400, 5, false, NULL}}},
                {NULL, "temp value=21.5", 1, {{"boiler-3", "temp", NONE, 21.5, false, NULL}}},
                {NULL,
                 "# comment\n\n  temp value=1 1000\r\nhum value=2,x=3 -1\n\t\n",
                 3,
                 {{"boiler-3", "temp", 1, 1, false, NULL},
                  {"boiler-3", "hum", -1, 2, false, NULL},
                  {"boiler-3", "hum.x", -1, 3, false, NULL}}},
                {NULL,
                 "my\\ meas,sensor=a\\,b\\ c\\=d f\\=x\\ y=1",
                 1,
                 {{"a,b c=d", "my meas.f=x y", NONE, 1, false, NULL}}},
                {NULL,
                 "a\\\\b,sensor=x\\\\y v=1\na\\b c=2",
                 2,
                 {{"x\\y", "a\\b.v", NONE, 1, false, NULL},
                  {"boiler-3", "a\\b.c", NONE, 2, false, NULL}}},
                {NULL,
                 "b a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE",
                 10,
                 {{"boiler-3", "b.a", NONE, 1, false, NULL},
                  {"boiler-3", "b.b", NONE, 1, false, NULL},
                  {"boiler-3", "b.c", NONE, 1, false, NULL},
                  {"boiler-3", "b.d", NONE, 1, false, NULL},
                  {"boiler-3", "b.e", NONE, 1, false, NULL},
                  {"boiler-3", "b.f", NONE, 0, false, NULL},
                  {"boiler-3", "b.g", NONE, 0, false, NULL},
                  {"boiler-3", "b.h", NONE, 0, false, NULL},
                  {"boiler-3", "b.i", NONE, 0, false, NULL},
                  {"boiler-3", "b.j", NONE, 0, false, NULL}}},
                {NULL,
                 "n a=1,b=1.0,c=-1.234456e+78,d=.5,e=5.,f=1E3,g=-0,h=2e-3",
                 8,
                 {{"boiler-3", "n.a", NONE, 1, false, NULL},
                  {"boiler-3", "n.b", NONE, 1, false, NULL},
                  {"boiler-3", "n.c", NONE, -1.234456e+78, false, NULL},
                  {"boiler-3", "n.d", NONE, 0.5, false, NULL},
                  {"boiler-3", "n.e", NONE, 5, false, NULL},
                  {"boiler-3", "n.f", NONE, 1000, false, NULL},
                  {"boiler-3", "n.g", NONE, -0.0, false, NULL},
                  {"boiler-3", "n.h", NONE, 0.002, false, NULL}}},
                {NULL,
                 "n a=-9223372036854775808i,b=9223372036854775807i,c=18446744073709551615u,"
                 "d=0u",
                 4,
                 {{"boiler-3", "n.a", NONE, -9223372036854775808.0, false, NULL},
                  {"boiler-3", "n.b", NONE, 9223372036854775807.0, false, NULL},
                  {"boiler-3", "n.c", NONE, 18446744073709551615.0, false, NULL},
                  {"boiler-3", "n.d", NONE, 0, false, NULL}}},
                {NULL,
                 "n value=1 -1001\nn value=2 -9223372036854775806\nn value=3 "
                 "9223372036854775806",
                 3,
                 {{"boiler-3", "n", -2, 1, false, NULL},
                  {"boiler-3", "n", -9223372036854776LL, 2, false, NULL},
                  {"boiler-3", "n", 9223372036854775LL, 3, false, NULL}}},
                {NULL,
                 "n s=\"a, b=c d\",e=\"\",l=\"a\\nb\"",
                 3,
                 {{"boiler-3", "n.s", NONE, 0, true, "a, b=c d"},
                  {"boiler-3", "n.e", NONE, 0, true, ""},
                  {"boiler-3", "n.l", NONE, 0, true, "a\\nb"}}},
                {NULL, "# only a comment\n", 0, {{0}}},
                {"sensors/hall/door",
                 "m,host=h1 value=-7",
                 1,
                 {{"hall/door", "m", NONE, -7, false, NULL}}},
        };

        (void)state;
        run_accepts(cases, ELEMENTSOF(cases));
}

static void test_cbor_shapes(void **state)
{
        struct agent_parser *p = parser(0, 0);
        struct cb c = {.n = 0};

        (void)state;
        /* a map of metrics with every number encoding; tag 1 time */
        PUT(&c, cbor_encode_map_start, 9);
        put_text(&c, "temp");
        PUT(&c, cbor_encode_half, 21.5f);
        put_text(&c, "hum");
        PUT(&c, cbor_encode_single, 40.25f);
        put_text(&c, "p");
        PUT(&c, cbor_encode_double, 1013.25);
        put_text(&c, "ts");
        PUT(&c, cbor_encode_tag, 1);
        PUT(&c, cbor_encode_uint, (uint64_t)T0);
        put_text(&c, "n");
        PUT(&c, cbor_encode_uint, 7);
        put_text(&c, "neg");
        PUT(&c, cbor_encode_negint, 2);
        put_text(&c, "on");
        PUT(&c, cbor_encode_bool, true);
        put_text(&c, "gone");
        PUT0(&c, cbor_encode_null);
        put_text(&c, "state");
        put_text(&c, "ok");
        expect_cbor(p, &c, 8,
                    (const struct exp[]){{"boiler-3", "temp", T0_US, 21.5, false, NULL},
                                         {"boiler-3", "hum", T0_US, 40.25, false, NULL},
                                         {"boiler-3", "p", T0_US, 1013.25, false, NULL},
                                         {"boiler-3", "n", T0_US, 7, false, NULL},
                                         {"boiler-3", "neg", T0_US, -3, false, NULL},
                                         {"boiler-3", "on", T0_US, 1, false, NULL},
                                         {"boiler-3", "gone", T0_US, 0, true, NULL},
                                         {"boiler-3", "state", T0_US, 0, true, "ok"}});

        /* one reading; tag 0 time */
        c.n = 0;
        PUT(&c, cbor_encode_map_start, 4);
        put_text(&c, "metric");
        put_text(&c, "temp");
        put_text(&c, "value");
        PUT(&c, cbor_encode_double, 1.5);
        put_text(&c, "sensor");
        put_text(&c, "s");
        put_text(&c, "time");
        PUT(&c, cbor_encode_tag, 0);
        put_text(&c, "2025-11-20T22:00:00.25Z");
        expect_cbor(p, &c, 1,
                    (const struct exp[]){{"s", "temp", T0_US + 250000, 1.5, false, NULL}});

        /* self-described array of a map and an indefinite map; µs integer time */
        c.n = 0;
        put_hex(&c, "d9d9f7 82 a1 61 61 01 bf 61 62 02 62 7473 1b");
        for (int i = 7; i >= 0; i--)
                c.b[c.n++] = (uint8_t)((uint64_t)(T0_US + 123456) >> (8 * i));
        put_hex(&c, "ff");
        expect_cbor(p, &c, 2,
                    (const struct exp[]){{"boiler-3", "a", NONE, 1, false, NULL},
                                         {"boiler-3", "b", T0_US + 123456, 2, false, NULL}});

        /* indefinite array; indefinite text key and value; float tag 1 time */
        c.n = 0;
        put_hex(&c, "9f a2 7f 62 7465 62 6d70 ff 7f 61 6f 61 6b ff 62 7473 c1 fb");
        {
                double t = 1763676000.5;
                uint64_t u;

                memcpy(&u, &t, 8);
                for (int i = 7; i >= 0; i--)
                        c.b[c.n++] = (uint8_t)(u >> (8 * i));
        }
        put_hex(&c, "ff");
        expect_cbor(p, &c, 1,
                    (const struct exp[]){{"boiler-3", "temp", T0_US + 500000, 0, true, "ok"}});

        /* integers beyond int64; negative epoch */
        c.n = 0;
        put_hex(&c, "a3 61 75 1bffffffffffffffff 61 6e 3bffffffffffffffff 62 7473 20");
        expect_cbor(p, &c, 2,
                    (const struct exp[]){
                            {"boiler-3", "u", -1000000, 18446744073709551615.0, false, NULL},
                            {"boiler-3", "n", -1000000, -18446744073709551616.0, false, NULL}});
        agent_parser_free(p);
}

/* The examples of docs/ingest.md read as the document says. */
static void test_doc_examples(void **state)
{
        static const struct accept cases[] = {
                {NULL,
                 "{\"temp\": 21.5, \"hum\": 40, \"pump\": true, \"state\": \"open\", \"ts\": "
                 "1763676000}",
                 4,
                 {{"boiler-3", "temp", T0_US, 21.5, false, NULL},
                  {"boiler-3", "hum", T0_US, 40, false, NULL},
                  {"boiler-3", "pump", T0_US, 1, false, NULL},
                  {"boiler-3", "state", T0_US, 0, true, "open"}}},
                {NULL,
                 "[{\"temp\": 21.5}, {\"metric\": \"hum\", \"value\": 40, \"sensor\": \"hall\", "
                 "\"ts\": 1763676000123}]",
                 2,
                 {{"boiler-3", "temp", NONE, 21.5, false, NULL},
                  {"hall", "hum", T0_US + 123000, 40, false, NULL}}},
                {NULL,
                 "# measurement \"boiler\", three readings of sensor boiler-3 at "
                 "2025-11-20T22:00:00Z\n"
                 "boiler,sensor=boiler-3,site=north temp=21.5,pressure=1013i,burner=t "
                 "1763676000000000000\n"
                 "temp value=19.25\n"
                 "door,sensor=hall\\ door state=\"open\"\n",
                 5,
                 {{"boiler-3", "boiler.temp", T0_US, 21.5, false, NULL},
                  {"boiler-3", "boiler.pressure", T0_US, 1013, false, NULL},
                  {"boiler-3", "boiler.burner", T0_US, 1, false, NULL},
                  {"boiler-3", "temp", NONE, 19.25, false, NULL},
                  {"hall door", "door.state", NONE, 0, true, "open"}}},
        };
        struct agent_parser *p = parser(0, 0);
        struct cb c = {.n = 0};

        (void)state;
        run_accepts(cases, ELEMENTSOF(cases));
        put_hex(&c, "A3 64 74656D70 F9 4D60 63 68756D 18 28 62 7473 C1 1A 691F8F60");
        expect_cbor(p, &c, 2,
                    (const struct exp[]){{"boiler-3", "temp", T0_US, 21.5, false, NULL},
                                         {"boiler-3", "hum", T0_US, 40, false, NULL}});
        agent_parser_free(p);
}

/* After warm-up, parsing allocates nothing, whatever the format. */
static void test_no_allocation(void **state)
{
        static const char *const json =
                "{\"temp\":21.5,\"hum\":40,\"state\":\"ok\",\"ts\":\"2025-11-20T22:00:00Z\"}";
        static const char *const line = "m,sensor=s\\ 1 temp=21.5,hum=40i,s=\"a\\\"b\" "
                                        "1763676000000000000\nm value=1";
        struct agent_parser *p = parser(0, 0);
        struct agent_parse_error e;
        struct cb c = {.n = 0};
        struct sink s;

        (void)state;
        put_hex(&c,
                "bf 64 74656d70 f9 4d60 7f 61 6f 61 6b ff 60 61 6e 01 62 7473 c1 1a 691f8f60 ff");
        for (int round = 0; round < 2; round++) {
                if (round == 1)
                        floe_alloc_fail_at(1);
                for (int i = 0; i < 1000; i++) {
                        assert_int_equal(parse(p, TOPIC, json, strlen(json), &s, &e), 3);
                        assert_int_equal(parse(p, TOPIC, line, strlen(line), &s, &e), 4);
                        assert_int_equal(parse(p, TOPIC, c.b, c.n, &s, &e), 3);
                        assert_true(PARSE(p, "{\"a\":[1]}") < 0);
                }
        }
        assert_int_equal(floe_alloc_count(), 0);
        assert_false(floe_alloc_failed());
        floe_alloc_fail_at(0);
        agent_parser_free(p);
}

static void test_construction_failure(void **state)
{
        struct agent_parse_opts o;
        struct agent_parser *p;
        bool done = false;

        (void)state;
        for (uint64_t n = 1; !done; n++) {
                p = (struct agent_parser *)&o; /* must stay untouched on failure */
                floe_alloc_fail_at(n);
                int r = agent_parser_new(NULL, &p);

                if (!floe_alloc_failed()) {
                        assert_int_equal(r, 0);
                        done = true;
                } else {
                        assert_int_equal(r, -ENOMEM);
                        assert_ptr_equal(p, (struct agent_parser *)&o);
                        assert_true(n < 32);
                        continue;
                }
                floe_alloc_fail_at(0);
                agent_parser_free(p);
        }
        floe_alloc_fail_at(0);
        agent_parse_opts_default(&o);
        o.max_readings = (1u << 20) + 1;
        assert_int_equal(agent_parser_new(&o, &p), -EINVAL);
        assert_null(agent_parser_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_shapes),
                cmocka_unit_test(test_decimal_exact),
                cmocka_unit_test(test_json_against_jansson),
                cmocka_unit_test(test_time_numbers),
                cmocka_unit_test(test_rfc3339_invalid),
                cmocka_unit_test(test_line_shapes),
                cmocka_unit_test(test_cbor_shapes),
                cmocka_unit_test(test_doc_examples),
                cmocka_unit_test(test_no_allocation),
                cmocka_unit_test(test_construction_failure),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
