/* SPDX-License-Identifier: Apache-2.0 */
/* InfluxDB line protocol payloads: one point per line; each field of a point
 * is one reading. Grammar and mapping: docs/ingest.md. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

#include "floe-batch.h"
#include "parse-internal.h"

#define NUM_MAX 127 /* characters of a float literal */

/* What a backslash escapes in a name-like element. */
enum lp_ctx {
        LP_MEASUREMENT, /* comma, space */
        LP_KEY,         /* tag key, tag value, field key: comma, equals sign, space */
};

struct span {
        const char *s;
        size_t len;
        bool esc;
};

static bool escapable(enum lp_ctx ctx, char c)
{
        return c == ',' || c == ' ' || c == '\\' || (ctx == LP_KEY && c == '=');
}

/* Scans from *pos up to an unescaped ',', ' ' or (for keys) '='. */
static void scan(const char *s, size_t n, size_t *pos, enum lp_ctx ctx, struct span *ret)
{
        size_t i = *pos;

        *ret = (struct span){.s = s + i};
        while (i < n) {
                char c = s[i];

                if (c == '\\' && i + 1 < n && escapable(ctx, s[i + 1])) {
                        ret->esc = true;
                        i += 2;
                        continue;
                }
                if (c == ',' || c == ' ' || (ctx == LP_KEY && c == '='))
                        break;
                i++;
        }
        ret->len = (size_t)(s + i - ret->s);
        *pos = i;
}

/* The unescaped text of a span: the payload itself when nothing is escaped. */
static int unescape(struct agent_parser *p, const struct span *sp, enum lp_ctx ctx,
                    const char **ret_s, size_t *ret_len)
{
        size_t o = 0;
        char *d;

        if (!sp->esc) {
                *ret_s = sp->s;
                *ret_len = sp->len;
                return 0;
        }
        d = agent_parse_str_alloc(p, sp->len);
        if (!d)
                return -EMSGSIZE;
        for (size_t i = 0; i < sp->len; i++) {
                if (sp->s[i] == '\\' && i + 1 < sp->len && escapable(ctx, sp->s[i + 1]))
                        i++;
                d[o++] = sp->s[i];
        }
        p->str_used -= sp->len - o;
        *ret_s = d;
        *ret_len = o;
        return 0;
}

static int bad(struct agent_parser *p, const char *what)
{
        return agent_parse_fail(p, AGENT_PARSE_BAD_LINE_PROTOCOL, "%s", what);
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool word_is(const char *s, size_t n, const char *w)
{
        return agent_parse_key_is(s, n, w);
}

static bool word_in(const char *s, size_t n, const char *const *words)
{
        for (; *words; words++)
                if (word_is(s, n, *words))
                        return true;
        return false;
}

/* -?[0-9]+ into int64; false on syntax, *ret_overflow on range. */
static bool parse_int(const char *s, size_t n, int64_t *ret, bool *ret_overflow)
{
        bool neg = n > 0 && s[0] == '-';
        uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        size_t i = neg;

        *ret_overflow = false;
        if (i == n)
                return false;
        for (; i < n; i++) {
                unsigned d;

                if (!is_digit(s[i]))
                        return false;
                d = (unsigned)(s[i] - '0');
                if (v > (lim - d) / 10)
                        *ret_overflow = true;
                else
                        v = v * 10 + d;
        }
        *ret = neg ? (int64_t)(0 - v) : (int64_t)v;
        return true;
}

static bool parse_uint(const char *s, size_t n, uint64_t *ret, bool *ret_overflow)
{
        uint64_t v = 0;

        *ret_overflow = false;
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned d;

                if (!is_digit(s[i]))
                        return false;
                d = (unsigned)(s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        *ret_overflow = true;
                else
                        v = v * 10 + d;
        }
        *ret = v;
        return true;
}

/* -?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)? */
static bool float_syntax(const char *s, size_t n)
{
        size_t i = 0, mant = 0;

        if (i < n && s[i] == '-')
                i++;
        for (; i < n && is_digit(s[i]); i++)
                mant++;
        if (i < n && s[i] == '.')
                for (i++; i < n && is_digit(s[i]); i++)
                        mant++;
        if (mant == 0)
                return false;
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
                size_t exp = 0;

                i++;
                if (i < n && (s[i] == '+' || s[i] == '-'))
                        i++;
                for (; i < n && is_digit(s[i]); i++)
                        exp++;
                if (exp == 0)
                        return false;
        }
        return i == n;
}

static const char *const true_words[] = {"t", "T", "true", "True", "TRUE", NULL};
static const char *const false_words[] = {"f", "F", "false", "False", "FALSE", NULL};

static bool non_finite_word(const char *s, size_t n)
{
        static const char *const words[] = {"nan", "inf", "infinity", NULL};

        if (n > 0 && (s[0] == '-' || s[0] == '+')) {
                s++;
                n--;
        }
        for (const char *const *w = words; *w; w++)
                if (n == strlen(*w) && strncasecmp(s, *w, n) == 0)
                        return true;
        return false;
}

/* A field value other than a string: float, integer, uinteger, boolean. */
static int number(struct agent_parser *p, const char *s, size_t n, double *ret)
{
        bool overflow;

        if (n == 0)
                return bad(p, "missing field value");
        if (word_in(s, n, true_words)) {
                *ret = 1;
                return 0;
        }
        if (word_in(s, n, false_words)) {
                *ret = 0;
                return 0;
        }
        if (s[n - 1] == 'i') {
                int64_t i;

                if (!parse_int(s, n - 1, &i, &overflow))
                        return bad(p, "invalid integer field value");
                if (overflow)
                        return agent_parse_fail(p, AGENT_PARSE_BAD_NUMBER,
                                                "integer field value out of range");
                *ret = (double)i;
                return 0;
        }
        if (s[n - 1] == 'u') {
                uint64_t u;

                if (!parse_uint(s, n - 1, &u, &overflow))
                        return bad(p, "invalid uinteger field value");
                if (overflow)
                        return agent_parse_fail(p, AGENT_PARSE_BAD_NUMBER,
                                                "uinteger field value out of range");
                *ret = (double)u;
                return 0;
        }
        if (non_finite_word(s, n))
                return agent_parse_fail(p, AGENT_PARSE_NON_FINITE, "field value is not finite");
        if (!float_syntax(s, n))
                return bad(p, "invalid field value");
        if (n > NUM_MAX)
                return agent_parse_fail(p, AGENT_PARSE_BAD_NUMBER,
                                        "float field value longer than %d characters", NUM_MAX);
        return agent_parse_decimal(p, s, n, ret);
}

/* The metric of a field: "<measurement>.<field>", or the measurement for "value". */
static int metric_name(struct agent_parser *p, const char *m, size_t mlen, const char *f,
                       size_t flen, const char **ret_s, size_t *ret_len)
{
        size_t total = mlen + 1 + flen;
        char *d;

        if (word_is(f, flen, "value")) {
                *ret_s = m;
                *ret_len = mlen;
                return 0;
        }
        if (total > p->o.max_name_len)
                return agent_parse_fail(p, AGENT_PARSE_NAME_TOO_LONG,
                                        "metric name of %zu bytes, limit %" PRIu32, total,
                                        p->o.max_name_len);
        d = agent_parse_str_alloc(p, total);
        if (!d)
                return -EMSGSIZE;
        memcpy(d, m, mlen);
        d[mlen] = '.';
        memcpy(d + mlen + 1, f, flen);
        *ret_s = d;
        *ret_len = total;
        return 0;
}

static int timestamp(struct agent_parser *p, const char *s, size_t n, int64_t *ret_us)
{
        int64_t ns;
        bool overflow;

        p->loc.key = NULL;
        if (n == 0)
                return bad(p, "space without a timestamp");
        if (memchr(s, ' ', n))
                return bad(p, "unexpected data after the timestamp");
        if (!parse_int(s, n, &ns, &overflow))
                return agent_parse_fail(p, AGENT_PARSE_BAD_TIME, "invalid timestamp");
        if (overflow || ns < -INT64_MAX + 1 || ns > INT64_MAX - 1)
                return agent_parse_fail(p, AGENT_PARSE_BAD_TIME, "timestamp out of range");
        /* nanoseconds to microseconds, rounded down (towards the past) */
        *ret_us = ns / 1000 - (ns % 1000 < 0);
        return 0;
}

/* One field: key=value at *pos; stages its reading. */
static int field(struct agent_parser *p, const char *s, size_t n, size_t *pos, const char *sensor,
                 size_t sensor_len, const char *meas, size_t meas_len)
{
        const char *key = NULL, *metric = NULL, *text = NULL;
        size_t key_len = 0, metric_len = 0, text_len = 0, i;
        struct span k;
        double v = 0;
        int r;

        scan(s, n, pos, LP_KEY, &k);
        i = *pos;
        if (k.len == 0)
                return bad(p, "empty field key");
        if (i == n || s[i] != '=')
                return bad(p, "field without '='");
        r = unescape(p, &k, LP_KEY, &key, &key_len);
        if (r < 0)
                return r;
        p->loc.key = key;
        p->loc.key_len = key_len;
        if (agent_parse_dup_add(p, key, key_len))
                return agent_parse_fail(p, AGENT_PARSE_DUPLICATE_KEY, "duplicate field key");
        i++;
        if (i < n && s[i] == '"') {
                struct span t = {.s = s + i + 1};
                size_t j = i + 1;

                while (j < n && s[j] != '"') {
                        if (s[j] == '\\' && j + 1 < n && (s[j + 1] == '"' || s[j + 1] == '\\')) {
                                t.esc = true;
                                j++;
                        }
                        j++;
                }
                if (j >= n)
                        return bad(p, "unterminated string field value");
                t.len = (size_t)(s + j - t.s);
                i = j + 1;
                if (t.esc) {
                        char *d = agent_parse_str_alloc(p, t.len);
                        size_t o = 0;

                        if (!d)
                                return -EMSGSIZE;
                        for (size_t q = 0; q < t.len; q++) {
                                if (t.s[q] == '\\' && q + 1 < t.len &&
                                    (t.s[q + 1] == '"' || t.s[q + 1] == '\\'))
                                        q++;
                                d[o++] = t.s[q];
                        }
                        p->str_used -= t.len - o;
                        text = d;
                        text_len = o;
                } else {
                        text = t.s;
                        text_len = t.len;
                }
                if (i < n && s[i] != ',' && s[i] != ' ')
                        return bad(p, "unexpected character after a string field value");
        } else {
                size_t start = i;

                while (i < n && s[i] != ',' && s[i] != ' ')
                        i++;
                r = number(p, s + start, i - start, &v);
                if (r < 0)
                        return r;
        }
        *pos = i;
        r = metric_name(p, meas, meas_len, key, key_len, &metric, &metric_len);
        if (r < 0)
                return r;
        return agent_parse_stage(p, sensor, sensor_len, metric, metric_len, AGENT_TS_NONE, v,
                                 text != NULL, text, text_len, 0);
}

static int line(struct agent_parser *p, const char *s, size_t n)
{
        const char *sensor = NULL, *meas = NULL;
        size_t sensor_len = 0, meas_len = 0, i = 0;
        uint32_t first = p->n;
        int64_t ts = AGENT_TS_NONE;
        struct span m;
        int r;

        if (!floe_utf8_valid(s, n))
                return agent_parse_fail(p, AGENT_PARSE_BAD_UTF8, "line is not UTF-8");
        scan(s, n, &i, LP_MEASUREMENT, &m);
        if (m.len == 0)
                return bad(p, "empty measurement");
        while (i < n && s[i] == ',') {
                struct span k, v;
                const char *key = NULL;
                size_t key_len = 0;

                i++;
                scan(s, n, &i, LP_KEY, &k);
                if (k.len == 0)
                        return bad(p, "empty tag key");
                if (i == n || s[i] != '=')
                        return bad(p, "tag without '='");
                i++;
                scan(s, n, &i, LP_KEY, &v);
                if (v.len == 0)
                        return bad(p, "empty tag value");
                if (i < n && s[i] == '=')
                        return bad(p, "unescaped '=' in a tag value");
                r = unescape(p, &k, LP_KEY, &key, &key_len);
                if (r < 0)
                        return r;
                if (word_is(key, key_len, "sensor")) {
                        if (sensor)
                                return agent_parse_fail(p, AGENT_PARSE_DUPLICATE_KEY,
                                                        "more than one sensor tag");
                        r = unescape(p, &v, LP_KEY, &sensor, &sensor_len);
                        if (r < 0)
                                return r;
                }
        }
        if (i == n)
                return bad(p, "no field set");
        i++; /* the space after measurement and tags */
        r = unescape(p, &m, LP_MEASUREMENT, &meas, &meas_len);
        if (r < 0)
                return r;
        agent_parse_dup_reset(p);
        for (;;) {
                r = field(p, s, n, &i, sensor, sensor_len, meas, meas_len);
                if (r < 0)
                        return r;
                if (i == n)
                        break;
                if (s[i] == ' ') {
                        r = timestamp(p, s + i + 1, n - i - 1, &ts);
                        if (r < 0)
                                return r;
                        break;
                }
                i++; /* a comma */
        }
        for (uint32_t k = first; k < p->n; k++)
                p->rd[k].ts_us = ts;
        p->loc.key = NULL;
        return 0;
}

int agent_parse_influx(struct agent_parser *p, const uint8_t *data, size_t len)
{
        const char *s = (const char *)data;
        size_t pos = 0;
        uint32_t no = 0;

        while (pos < len) {
                const char *l = s + pos;
                const char *nl = memchr(l, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - l) : len - pos;
                int r;

                pos += n + (nl ? 1 : 0);
                p->loc.line = ++no;
                if (n > 0 && l[n - 1] == '\r')
                        n--;
                while (n > 0 && (*l == ' ' || *l == '\t')) {
                        l++;
                        n--;
                }
                if (n == 0 || *l == '#')
                        continue;
                r = line(p, l, n);
                if (r < 0)
                        return r;
        }
        return 0;
}
