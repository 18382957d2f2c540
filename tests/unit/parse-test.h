/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by test-parse.c and test-parse-reject.c: a sink that copies readings,
 * expectations, a small CBOR builder. */

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <cmocka.h>

#include "floe-alloc.h"
#include "parse-internal.h"
#include "parse.h"

#define NONE  AGENT_TS_NONE
#define T0    1763676000LL /* 2025-11-20T22:00:00Z */
#define T0_US (T0 * 1000000)
#define TOPIC "sensors/boiler-3"

/* ---- a sink that copies what it is given ---- */

struct got {
        char sensor[64], metric[64], text[64]; /* truncated copies */
        size_t metric_len, text_len;
        bool has_text;
        int64_t ts;
        double v;
        bool null;
        uint8_t decimals;
};

struct sink {
        struct got r[16];
        unsigned n;
        unsigned total;
        unsigned fail_at; /* 1-based reading to refuse with -ENOSPC, 0 never */
};

static inline void copy(char *dst, size_t size, const char *s, size_t len)
{
        if (len >= size)
                len = size - 1;
        memcpy(dst, s, len);
        dst[len] = '\0';
}

static inline int collect(void *ud, const struct agent_reading *r)
{
        struct sink *s = ud;
        struct got *g;

        if (s->fail_at && s->total + 1 == s->fail_at)
                return -ENOSPC;
        s->total++;
        if (s->n == ELEMENTSOF(s->r))
                return 0;
        g = &s->r[s->n++];
        copy(g->sensor, sizeof(g->sensor), r->sensor, r->sensor_len);
        copy(g->metric, sizeof(g->metric), r->metric, r->metric_len);
        g->metric_len = r->metric_len;
        g->text_len = r->text_len;
        g->has_text = r->text != NULL;
        if (r->text)
                copy(g->text, sizeof(g->text), r->text, r->text_len);
        g->ts = r->ts_us;
        g->v = r->value;
        g->null = r->value_null;
        g->decimals = r->decimals;
        return 0;
}

static inline struct agent_parser *parser(uint32_t max_readings, size_t max_payload)
{
        struct agent_parse_opts o;
        struct agent_parser *p;

        agent_parse_opts_default(&o);
        o.max_readings = max_readings;
        o.max_payload = max_payload;
        assert_int_equal(agent_parser_new(&o, &p), 0);
        return p;
}

static inline int parse(struct agent_parser *p, const char *topic, const void *data, size_t len,
                        struct sink *s, struct agent_parse_error *e)
{
        memset(s, 0, sizeof(*s));
        return agent_parse_payload(p, topic, data, len, collect, s, e);
}

/* A text payload on TOPIC, into the caller's s and e. */
#define PARSE(p, str) parse(p, TOPIC, str, strlen(str), &s, &e)

/* ---- expectations ---- */

struct exp {
        const char *sensor, *metric;
        int64_t ts;
        double v;
        bool null;
        const char *text;
};

struct accept {
        const char *topic;
        const char *in;
        unsigned n;
        struct exp e[12];
};

static inline void check_got(const char *what, const struct got *g, const struct exp *e)
{
        if (strcmp(g->sensor, e->sensor) != 0 || strcmp(g->metric, e->metric) != 0)
                fail_msg("%s: got %s/%s, want %s/%s", what, g->sensor, g->metric, e->sensor,
                         e->metric);
        if (g->ts != e->ts)
                fail_msg("%s: %s ts %lld, want %lld", what, e->metric, (long long)g->ts,
                         (long long)e->ts);
        if (g->null != e->null || memcmp(&g->v, &e->v, sizeof(double)) != 0)
                fail_msg("%s: %s value %.17g%s, want %.17g%s", what, e->metric, g->v,
                         g->null ? " null" : "", e->v, e->null ? " null" : "");
        if (g->has_text != (e->text != NULL) || (e->text && strcmp(g->text, e->text) != 0))
                fail_msg("%s: %s text \"%s\", want \"%s\"", what, e->metric,
                         g->has_text ? g->text : "(none)", e->text ? e->text : "(none)");
}

static inline void run_accepts(const struct accept *cases, size_t ncases)
{
        struct agent_parser *p = parser(0, 0);
        struct agent_parse_error e;
        struct sink s;

        for (size_t i = 0; i < ncases; i++) {
                const struct accept *c = &cases[i];
                int r = parse(p, c->topic ? c->topic : TOPIC, c->in, strlen(c->in), &s, &e);

                if (r != (int)c->n)
                        fail_msg("case %zu %s: returned %d (%s: %s), want %u", i, c->in, r,
                                 agent_parse_reason_name(e.reason), e.detail, c->n);
                assert_int_equal(e.reason, AGENT_PARSE_OK);
                assert_int_equal(s.n, c->n);
                for (unsigned k = 0; k < c->n; k++)
                        check_got(c->in, &s.r[k], &c->e[k]);
        }
        agent_parser_free(p);
}

/* ---- CBOR ---- */

struct cb {
        uint8_t b[8192];
        size_t n;
};

#define PUT(c, fn, ...) ((c)->n += fn(__VA_ARGS__, (c)->b + (c)->n, sizeof((c)->b) - (c)->n))
#define PUT0(c, fn)     ((c)->n += fn((c)->b + (c)->n, sizeof((c)->b) - (c)->n))

static inline void put_text(struct cb *c, const char *s)
{
        PUT(c, cbor_encode_string_start, strlen(s));
        memcpy(c->b + c->n, s, strlen(s));
        c->n += strlen(s);
}

static inline void put_hex(struct cb *c, const char *hex)
{
        for (; *hex; hex++) {
                unsigned v;

                if (*hex == ' ')
                        continue;
                assert_int_equal(sscanf(hex, "%2x", &v), 1);
                c->b[c->n++] = (uint8_t)v;
                hex++;
        }
}

static inline void expect_cbor(struct agent_parser *p, const struct cb *c, unsigned n,
                               const struct exp *e)
{
        struct agent_parse_error err;
        struct sink s;
        int r = parse(p, TOPIC, c->b, c->n, &s, &err);

        if (r != (int)n)
                fail_msg("returned %d (%s: %s), want %u", r, agent_parse_reason_name(err.reason),
                         err.detail, n);
        assert_int_equal(err.format, AGENT_PARSE_FORMAT_CBOR);
        for (unsigned k = 0; k < n; k++)
                check_got("cbor", &s.r[k], &e[k]);
}

/* ---- rejections: each input triggers exactly one reason, and nothing is emitted ---- */

struct reject {
        const char *topic; /* "-": NULL */
        const char *in;    /* "hex:...": CBOR bytes */
        enum agent_parse_reason reason;
        const char *detail; /* a substring of the detail, or NULL */
};

static inline int want_errno(enum agent_parse_reason r)
{
        switch (r) {
        case AGENT_PARSE_EMPTY:
                return -ENODATA;
        case AGENT_PARSE_TOO_LARGE:
        case AGENT_PARSE_TOO_MANY_READINGS:
        case AGENT_PARSE_TOO_COMPLEX:
        case AGENT_PARSE_TOO_DEEP:
        case AGENT_PARSE_NAME_TOO_LONG:
        case AGENT_PARSE_TEXT_TOO_LONG:
                return -EMSGSIZE;
        default:
                return -EBADMSG;
        }
}

static inline void expect_reject(struct agent_parser *p, const struct reject *c)
{
        struct agent_parse_error e;
        struct cb bin = {.n = 0};
        const void *in = c->in;
        size_t len = strlen(c->in);
        struct sink s;
        int r;

        if (strncmp(c->in, "hex:", 4) == 0) {
                put_hex(&bin, c->in + 4);
                in = bin.b;
                len = bin.n;
        }
        r = parse(p,
                  c->topic && strcmp(c->topic, "-") == 0 ? NULL
                  : c->topic                             ? c->topic
                                                         : TOPIC,
                  in, len, &s, &e);
        if (r >= 0 || e.reason != c->reason)
                fail_msg("\"%s\": returned %d, reason %s (%s), want %s", c->in, r,
                         agent_parse_reason_name(e.reason), e.detail,
                         agent_parse_reason_name(c->reason));
        assert_int_equal(s.total, 0);
        assert_true(e.detail[0] != '\0');
        if (c->detail && !strstr(e.detail, c->detail))
                fail_msg("\"%s\": detail \"%s\" lacks \"%s\"", c->in, e.detail, c->detail);
        assert_int_equal(r, want_errno(c->reason));
}

#define R(in, reason, detail)                          \
        {                                              \
                NULL, in, AGENT_PARSE_##reason, detail \
        }
