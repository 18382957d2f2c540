/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON payloads (RFC 8259) read in one pass straight into object members, with
 * no tree and no allocation: strings without escapes point into the payload,
 * unescaped ones go to the parser's string scratch, numbers take the exact
 * fast path of parse-number.c. Every byte is checked: grammar, UTF-8, escapes
 * and surrogate pairs, nesting depth.
 *
 * A payload is rejected for its first syntax error wherever that is, as a tree
 * parser would: once a semantic rejection (an unknown key, a non-object array
 * element, ...) is recorded, the rest is still read for syntax only and a
 * later syntax error replaces it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "bytes.h"
#include "parse-internal.h"
#include "parse-json.h"

/* A syntax error at the cursor: replaces any deferred rejection. */
int agent_json_syntax(struct jr *j, enum agent_parse_reason reason, const char *fmt, ...)
{
        char msg[128];
        unsigned line = 1;
        size_t col = 1, off = (size_t)(j->c - j->s);
        va_list ap;

        for (const char *q = j->s; q < j->c; q++) {
                if (*q == '\n') {
                        line++;
                        col = 1;
                } else {
                        col++;
                }
        }
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        j->p->loc = (struct agent_parse_loc){.byte = SIZE_MAX};
        return agent_parse_fail(j->p, reason, "%s at line %u column %zu (byte %zu)", msg, line, col,
                                off);
}

static inline void ws(struct jr *j)
{
        /* compact JSON has none: one test for the usual case */
        if (j->c < j->e && (unsigned char)*j->c > ' ')
                return;
        while (j->c < j->e && (*j->c == ' ' || *j->c == '\n' || *j->c == '\r' || *j->c == '\t'))
                j->c++;
}

static inline bool at(struct jr *j, char ch)
{
        return j->c < j->e && *j->c == ch;
}

/* Length of the valid UTF-8 sequence (2 to 4 bytes) at s, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
        unsigned char c = s[0];
        uint32_t cp;
        size_t n;

        if (c >= 0xc2 && c <= 0xdf) {
                n = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                cp = c & 0x07;
        } else {
                return 0;
        }
        if (avail < n)
                return 0;
        for (size_t k = 1; k < n; k++) {
                if ((s[k] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[k] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

static int hex4(struct jr *j, const char *q, uint32_t *ret)
{
        uint32_t v = 0;

        if (j->e - q < 4)
                return -1;
        for (int k = 0; k < 4; k++) {
                char h = q[k];

                v <<= 4;
                if (h >= '0' && h <= '9')
                        v |= (uint32_t)(h - '0');
                else if (h >= 'a' && h <= 'f')
                        v |= (uint32_t)(h - 'a' + 10);
                else if (h >= 'A' && h <= 'F')
                        v |= (uint32_t)(h - 'A' + 10);
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

static char *put_utf8(char *d, uint32_t cp)
{
        if (cp < 0x80) {
                *d++ = (char)cp;
        } else if (cp < 0x800) {
                *d++ = (char)(0xc0 | cp >> 6);
                *d++ = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
                *d++ = (char)(0xe0 | cp >> 12);
                *d++ = (char)(0x80 | (cp >> 6 & 0x3f));
                *d++ = (char)(0x80 | (cp & 0x3f));
        } else {
                *d++ = (char)(0xf0 | cp >> 18);
                *d++ = (char)(0x80 | (cp >> 12 & 0x3f));
                *d++ = (char)(0x80 | (cp >> 6 & 0x3f));
                *d++ = (char)(0x80 | (cp & 0x3f));
        }
        return d;
}

/* The rest of a string with escapes, from the cursor at a backslash; start is
 * the first byte of its contents. Unescaped text is never longer than the
 * escaped text, so the scratch needs at most the string's length in the payload. */
static int string_escaped(struct jr *j, const char *start, const char **ret, size_t *ret_len)
{
        const char *q = j->c;
        char *out, *d;

        while (q < j->e && *q != '"')
                q += *q == '\\' ? 2 : 1;
        if (q >= j->e) {
                j->c = j->e;
                return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "unterminated string");
        }
        out = agent_parse_str_alloc(j->p, (size_t)(q - start));
        if (!out)
                return -EMSGSIZE;
        memcpy(out, start, (size_t)(j->c - start));
        d = out + (j->c - start);
        for (;;) {
                unsigned char u = (unsigned char)*j->c;
                uint32_t cp, lo;

                if (u == '"')
                        break;
                if (u < 0x20)
                        return agent_json_syntax(j, AGENT_PARSE_BAD_JSON,
                                                 "control character in string");
                if (u >= 0x80) {
                        size_t k = utf8_seq((const unsigned char *)j->c, (size_t)(j->e - j->c));

                        if (!k)
                                return agent_json_syntax(j, AGENT_PARSE_BAD_UTF8,
                                                         "invalid UTF-8 in string");
                        memcpy(d, j->c, k);
                        d += k;
                        j->c += k;
                        continue;
                }
                if (u != '\\') {
                        *d++ = (char)u;
                        j->c++;
                        continue;
                }
                switch (j->c[1]) {
                case '"':
                case '\\':
                case '/':
                        *d++ = j->c[1];
                        break;
                case 'b':
                        *d++ = '\b';
                        break;
                case 'f':
                        *d++ = '\f';
                        break;
                case 'n':
                        *d++ = '\n';
                        break;
                case 'r':
                        *d++ = '\r';
                        break;
                case 't':
                        *d++ = '\t';
                        break;
                case 'u':
                        if (hex4(j, j->c + 2, &cp) < 0)
                                return agent_json_syntax(j, AGENT_PARSE_BAD_JSON,
                                                         "invalid \\u escape");
                        if (cp >= 0xdc00 && cp <= 0xdfff)
                                return agent_json_syntax(j, AGENT_PARSE_BAD_JSON,
                                                         "invalid Unicode '\\u%04" PRIX32 "'", cp);
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                if (j->e - j->c < 12 || j->c[6] != '\\' || j->c[7] != 'u' ||
                                    hex4(j, j->c + 8, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                                        return agent_json_syntax(
                                                j, AGENT_PARSE_BAD_JSON,
                                                "invalid Unicode '\\u%04" PRIX32 "'", cp);
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                j->c += 6;
                        }
                        d = put_utf8(d, cp);
                        j->c += 4;
                        break;
                default:
                        return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "invalid escape");
                }
                j->c += 2;
        }
        j->c++; /* the closing quote */
        *ret = out;
        *ret_len = (size_t)(d - out);
        return 0;
}

/* Bytes a string scan stops at: 1 for '"', '\\', control characters and
 * non-ASCII; 2 for DEL, which JSON allows but a name does not. */
static const uint8_t str_stop[256] = {
        [0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x7f] = 2, [0x80 ... 0xff] = 1,
};

/* A string at the cursor (on its opening quote). *ret_clean: printable ASCII
 * without escapes, so a valid name if its length is. */
static int string(struct jr *j, const char **ret, size_t *ret_len, bool *ret_clean)
{
        const char *start = ++j->c, *c = start, *e = j->e;
        bool clean = true;

        for (;;) {
                unsigned char u;

                while (c < e && !str_stop[(unsigned char)*c])
                        c++;
                if (c >= e)
                        break;
                u = (unsigned char)*c;
                if (u == '"') {
                        *ret = start;
                        *ret_len = (size_t)(c - start);
                        *ret_clean = clean;
                        j->c = c + 1;
                        return 0;
                }
                clean = false;
                if (u == 0x7f) {
                        c++;
                        continue;
                }
                j->c = c;
                if (u == '\\') {
                        *ret_clean = false;
                        return string_escaped(j, start, ret, ret_len);
                }
                if (u < 0x20)
                        return agent_json_syntax(j, AGENT_PARSE_BAD_JSON,
                                                 "control character in string");
                {
                        size_t k = utf8_seq((const unsigned char *)c, (size_t)(e - c));

                        if (!k)
                                return agent_json_syntax(j, AGENT_PARSE_BAD_UTF8,
                                                         "invalid UTF-8 in string");
                        c += k;
                }
        }
        j->c = c;
        return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "unterminated string");
}

static bool literal(struct jr *j, const char *word, size_t n)
{
        if ((size_t)(j->e - j->c) < n || memcmp(j->c, word, n) != 0)
                return false;
        j->c += n;
        return true;
}

static int skip_container(struct jr *j);

/* A value at the cursor; objects and arrays are checked and skipped. */
static int value(struct jr *j, struct agent_pv *v)
{
        bool clean;
        int r;

        *v = (struct agent_pv){.kind = AGENT_PV_OTHER};
        if (j->c >= j->e)
                return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "value expected");
        switch (*j->c) {
        case '"':
                v->kind = AGENT_PV_STRING;
                v->utf8 = true; /* string() checks it */
                return string(j, &v->s, &v->len, &clean);
        case '{':
        case '[':
                v->type = *j->c == '{' ? "object" : "array";
                return skip_container(j);
        case 't':
        case 'f':
                if (literal(j, "true", 4) || literal(j, "false", 5)) {
                        v->kind = AGENT_PV_BOOL;
                        v->b = j->c[-1] == 'e' && j->c[-2] == 'u'; /* "true", not "false" */
                        return 0;
                }
                break;
        case 'n':
                if (literal(j, "null", 4)) {
                        v->kind = AGENT_PV_NULL;
                        return 0;
                }
                break;
        default:
                if (*j->c == '-' || (*j->c >= '0' && *j->c <= '9')) {
                        v->kind = AGENT_PV_NUMBER;
                        if (agent_json_number_plain(j, &v->d, &v->decimals))
                                return 0;
                        r = agent_json_number(j, &v->d);
                        return r;
                }
                break;
        }
        return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "invalid token");
}

static int enter(struct jr *j)
{
        if (++j->depth > AGENT_PARSE_MAX_DEPTH)
                return agent_json_syntax(j, AGENT_PARSE_TOO_DEEP, "nested deeper than %d",
                                         AGENT_PARSE_MAX_DEPTH);
        j->c++;
        ws(j);
        return 0;
}

/* After a member or element: a comma (returns 1) or the closing bracket (0). */
static int next(struct jr *j, char close)
{
        ws(j);
        if (at(j, ',')) {
                j->c++;
                ws(j);
                return 1;
        }
        if (at(j, close)) {
                j->c++;
                j->depth--;
                return 0;
        }
        return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "'%c' or ',' expected", close);
}

static int key(struct jr *j, const char **ret, size_t *ret_len, bool *ret_clean)
{
        int r;

        if (!at(j, '"'))
                return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "string or '}' expected");
        r = string(j, ret, ret_len, ret_clean);
        if (r < 0)
                return r;
        ws(j);
        if (!at(j, ':'))
                return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "':' expected");
        j->c++;
        ws(j);
        return 0;
}

/* An object or array nested in a value: syntax only. */
static int skip_container(struct jr *j)
{
        bool obj = *j->c == '{';
        char close = obj ? '}' : ']';
        struct agent_pv v;
        const char *k;
        size_t kn;
        bool clean;
        int r;

        r = enter(j);
        if (r < 0)
                return r;
        if (at(j, close)) {
                j->c++;
                j->depth--;
                return 0;
        }
        do {
                if (obj) {
                        r = key(j, &k, &kn, &clean);
                        if (r < 0)
                                return r;
                }
                r = value(j, &v);
                if (r < 0)
                        return r;
                r = next(j, close);
        } while (r > 0);
        return r;
}

static void defer(struct jr *j, int r)
{
        if (!j->deferred)
                j->deferred = r;
}

/*
 * The usual object, a map of metrics with perhaps a time, read straight into
 * readings. Returns 1, with nothing consumed, for anything else (another
 * shape, a sensor key, an error): object() then reads it the general way and
 * gives the same readings or the same rejection.
 */
static int object_fast(struct jr *j)
{
        struct agent_parser *p = j->p;
        const struct agent_parse_keys *ref;
        const char *start = j->c;
        unsigned depth = j->depth;
        uint32_t n0 = p->n, members = 0;
        size_t str0 = p->str_used;
        uint32_t n_untimed = n0; /* readings staged before the time key */
        /* for the usual reading (stale at worst: then it takes agent_parse_stage()) */
        bool topic_ok = p->topic_sensor_ok == 1;
        const size_t max_name = p->o.max_name_len;
        const uint32_t max_readings = p->o.max_readings;
        bool have_time = false;
        int64_t ts = AGENT_TS_NONE;
        int r;

        if (enter(j) < 0 || at(j, '}'))
                goto general;
        agent_parse_dup_reset(p);
        ref = &p->dup_ref[p->dup_ref_cur];
        do {
                const char *k;
                size_t kn;
                bool clean;
                struct agent_pv v;
                enum agent_key_class c;
                double x = 0;
                bool null = false;
                const char *t = NULL;
                bool same = false;

                /* "key": without space around the colon, or the general way */
                if (!at(j, '"'))
                        goto general;
                k = j->c + 1;
                if (p->dup_matching && p->dup_i < ref->n && ref->raw[p->dup_i]) {
                        /* the previous object's key in this place, unchanged: no scan,
                         * and no duplicate of the keys before */
                        kn = ref->len[p->dup_i];
                        same = (size_t)(j->e - k) > kn && k[kn] == '"' &&
                               agent_bytes_eq(k, ref->bytes + ref->off[p->dup_i], kn);
                }
                if (same) {
                        clean = true;
                        j->c += kn + 2;
                } else {
                        while (k < j->e && !str_stop[(unsigned char)*k])
                                k++;
                        if (k < j->e && *k == '"') {
                                /* printable ASCII without escapes */
                                kn = (size_t)(k - j->c - 1);
                                k = j->c + 1;
                                clean = true;
                                j->c += kn + 2;
                        } else if (string(j, &k, &kn, &clean) < 0) {
                                goto general;
                        }
                }
                if (at(j, ':') && j->c + 1 < j->e && (unsigned char)j->c[1] > ' ')
                        j->c++;
                else if (ws(j), at(j, ':'))
                        j->c++, ws(j);
                else
                        goto general;
                c = agent_parse_key_class(k, kn);
                v = (struct agent_pv){.kind = AGENT_PV_NUMBER};
                if (!agent_json_number_words(j, &v.d, &v.decimals) && value(j, &v) < 0)
                        goto general;
                if (++members > p->ent_cap)
                        goto general;
                /* the same keys as the object before, in order: none twice */
                if (same || (p->dup_matching && p->dup_i < ref->n && ref->len[p->dup_i] == kn &&
                             agent_bytes_eq(ref->bytes + ref->off[p->dup_i], k, kn)))
                        p->dup_i++;
                else if (agent_parse_dup_add(p, k, kn))
                        goto general;
                if (c == KEY_TIME && !have_time) {
                        if (agent_parse_time(p, &v, &ts) < 0)
                                goto general;
                        have_time = true;
                        n_untimed = p->n;
                } else if (c != KEY_METRIC_NAME) {
                        goto general;
                } else if (v.kind == AGENT_PV_NUMBER && clean && topic_ok && kn - 1 < max_name &&
                           p->n < max_readings && isfinite(v.d)) {
                        /* the usual reading, staged as agent_parse_stage() would */
                        struct agent_reading *rd = &p->rd[p->n++];

                        rd->sensor = p->topic_sensor;
                        rd->sensor_len = p->topic_sensor_len;
                        rd->metric = k;
                        rd->metric_len = kn;
                        rd->ts_us = ts;
                        rd->value = v.d;
                        rd->value_null = false;
                        rd->text = NULL;
                        rd->text_len = 0;
                        rd->decimals = v.decimals;
                } else {
                        if (v.kind == AGENT_PV_NUMBER)
                                x = v.d;
                        else if (v.kind == AGENT_PV_BOOL)
                                x = v.b ? 1 : 0;
                        else if (v.kind == AGENT_PV_NULL)
                                null = true;
                        else if (v.kind == AGENT_PV_STRING)
                                null = true, t = v.s;
                        else
                                goto general;
                        if (agent_parse_stage(p, NULL, 0, k, kn, ts, x, null, t, t ? v.len : 0,
                                              (clean ? AGENT_STAGE_METRIC_OK : 0) |
                                                      (t ? AGENT_STAGE_TEXT_UTF8 : 0)) < 0)
                                goto general;
                        if (v.kind == AGENT_PV_NUMBER)
                                p->rd[p->n - 1].decimals = v.decimals;
                        topic_ok = p->topic_sensor_ok == 1; /* checked by the first reading */
                }
                /* ',' and the next key, or the end: without spaces, or the general way */
                if (at(j, ',') && j->c + 1 < j->e && j->c[1] == '"') {
                        j->c++;
                        r = 1;
                } else {
                        r = next(j, '}');
                        if (r < 0)
                                goto general;
                }
        } while (r > 0);
        for (uint32_t i = n0; i < n_untimed; i++)
                p->rd[i].ts_us = ts;
        return 0;
general:
        j->c = start;
        j->depth = depth;
        p->n = n0;
        p->str_used = str0;
        *p->err = (struct agent_parse_error){.reason = AGENT_PARSE_OK, .format = p->err->format};
        return 1;
}

/* A top-level object or an array element, at its '{': read into members, then
 * handed to the object shapes. */
static int object(struct jr *j)
{
        struct agent_parser *p = j->p;
        uint32_t n = 0;
        int r;

        if (!j->deferred && object_fast(j) == 0)
                return 0;

        r = enter(j);
        if (r < 0)
                return r;
        agent_parse_dup_reset(p);
        if (at(j, '}')) {
                j->c++;
                j->depth--;
        } else {
                do {
                        struct agent_pentry *e = &p->ent[n < p->ent_cap ? n : p->ent_cap - 1];

                        r = key(j, &e->key, &e->key_len, &e->clean);
                        if (r < 0)
                                return r;
                        e->off = SIZE_MAX;
                        r = value(j, &e->v);
                        if (r < 0)
                                return r;
                        if (!j->deferred) {
                                if (n >= p->ent_cap) {
                                        defer(j, agent_parse_fail(p, AGENT_PARSE_TOO_MANY_READINGS,
                                                                  "object of more than %" PRIu32
                                                                  " members",
                                                                  p->ent_cap));
                                } else if (agent_parse_dup_add(p, e->key, e->key_len)) {
                                        p->loc.key = e->key;
                                        p->loc.key_len = e->key_len;
                                        defer(j, agent_parse_fail(p, AGENT_PARSE_DUPLICATE_KEY,
                                                                  "duplicate key"));
                                }
                        }
                        n++;
                        r = next(j, '}');
                } while (r > 0);
                if (r < 0)
                        return r;
        }
        if (!j->deferred) {
                r = agent_parse_object(p, p->ent, n);
                if (r < 0)
                        defer(j, r);
        }
        return 0;
}

static int top_array(struct jr *j)
{
        struct agent_parser *p = j->p;
        uint32_t i = 0;
        int r;

        r = enter(j);
        if (r < 0)
                return r;
        if (at(j, ']')) {
                j->c++;
                j->depth--;
                return 0;
        }
        do {
                p->loc.object = ++i;
                if (i > p->o.max_readings && !j->deferred) {
                        p->loc.object = 0;
                        defer(j, agent_parse_fail(p, AGENT_PARSE_TOO_MANY_READINGS,
                                                  "array of more than %" PRIu32 " objects",
                                                  p->o.max_readings));
                }
                if (at(j, '{')) {
                        r = object(j);
                } else {
                        struct agent_pv v;

                        r = value(j, &v);
                        if (r == 0 && !j->deferred)
                                defer(j, agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE,
                                                          "array element is a %s, not an object",
                                                          v.kind == AGENT_PV_OTHER    ? v.type
                                                          : v.kind == AGENT_PV_STRING ? "string"
                                                          : v.kind == AGENT_PV_NUMBER ? "number"
                                                          : v.kind == AGENT_PV_BOOL   ? "boolean"
                                                                                      : "null"));
                }
                if (r < 0)
                        return r;
                r = next(j, ']');
        } while (r > 0);
        return r;
}

int agent_parse_json(struct agent_parser *p, const uint8_t *data, size_t len)
{
        struct jr j = {
                .p = p,
                .s = (const char *)data,
                .c = (const char *)data,
                .e = (const char *)data + len,
        };
        int r;

        ws(&j);
        if (at(&j, '{'))
                r = object(&j);
        else if (at(&j, '['))
                r = top_array(&j);
        else
                r = agent_json_syntax(&j, AGENT_PARSE_BAD_JSON, "'{' or '[' expected");
        if (r < 0)
                return r;
        ws(&j);
        if (j.c != j.e)
                return agent_json_syntax(&j, AGENT_PARSE_BAD_JSON, "end of data expected");
        return j.deferred;
}
