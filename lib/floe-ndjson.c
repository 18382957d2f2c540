/* SPDX-License-Identifier: Apache-2.0 */
#include "floe-ndjson.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int floe_fmt_double(double v, char *buf, size_t size)
{
        char tmp[32];
        int n = 0;

        /* "-0" would read back as the integer 0 in most JSON parsers */
        if (v == 0.0 && signbit(v)) {
                if (size < 5)
                        return -ENOSPC;
                memcpy(buf, "-0.0", 5);
                return 4;
        }
        for (int prec = 15; prec <= 17; prec++) {
                n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
                if (strtod(tmp, NULL) == v)
                        break;
        }
        if (n < 0 || (size_t)n >= size)
                return -ENOSPC;
        memcpy(buf, tmp, (size_t)n + 1);
        return n;
}

struct out {
        char *p;
        size_t size;
        size_t len;
        int err;
};

static void put(struct out *o, const char *s, size_t n)
{
        if (o->err || o->len + n >= o->size) {
                o->err = -ENOSPC;
                return;
        }
        memcpy(o->p + o->len, s, n);
        o->len += n;
}

static void puts_(struct out *o, const char *s)
{
        put(o, s, strlen(s));
}

/* A JSON string: escapes quote, backslash and control characters. */
static void put_json_str(struct out *o, const char *s, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        size_t run = 0;

        put(o, "\"", 1);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                put(o, s + run, i - run);
                run = i + 1;
                if (c == '"' || c == '\\') {
                        esc[1] = (char)c;
                        put(o, esc, 2);
                } else if (c == '\n') {
                        put(o, "\\n", 2);
                } else if (c == '\t') {
                        put(o, "\\t", 2);
                } else {
                        put(o, esc, 6);
                }
        }
        put(o, s + run, n - run);
        put(o, "\"", 1);
}

static void put_double(struct out *o, double v, bool isnull)
{
        char tmp[32];
        int n;

        if (isnull) {
                puts_(o, "null");
                return;
        }
        n = floe_fmt_double(v, tmp, sizeof(tmp));
        if (n < 0)
                o->err = n;
        else
                put(o, tmp, (size_t)n);
}

static void put_i64(struct out *o, const char *key, int64_t v)
{
        char tmp[48];
        int n = snprintf(tmp, sizeof(tmp), ",\"%s\":%" PRId64, key, v);

        put(o, tmp, (size_t)n);
}

int floe_ndjson_format_row(const struct floe_batch *b, uint32_t i, char *buf, size_t size)
{
        const struct floe_series *s = &b->series[b->row_series[i]];
        const char *dot = strchr(b->identity, '.');
        struct out o = {.p = buf, .size = size};
        const char *str;
        size_t n;

        if (!dot)
                return -EINVAL;
        puts_(&o, "{\"tenant\":");
        put_json_str(&o, b->identity, (size_t)(dot - b->identity));
        puts_(&o, ",\"device\":");
        put_json_str(&o, dot + 1, strlen(dot + 1));
        puts_(&o, ",\"sensor\":");
        str = floe_strdict_get(&b->sensors, s->sensor, &n);
        put_json_str(&o, str, n);
        puts_(&o, ",\"metric\":");
        str = floe_strdict_get(&b->metrics, s->metric, &n);
        put_json_str(&o, str, n);
        if (b->kind == FLOE_KIND_EVENTS) {
                put_i64(&o, "ts", b->ts[i]);
                puts_(&o, ",\"value\":");
                put_double(&o, b->value[i], b->value_null[i]);
                if (b->text[i] != FLOE_NO_TEXT) {
                        puts_(&o, ",\"text\":");
                        str = floe_strdict_get(&b->texts, b->text[i], &n);
                        put_json_str(&o, str, n);
                }
        } else {
                put_i64(&o, "window_start", b->ts[i]);
                put_i64(&o, "window_s", b->window_s[i]);
                put_i64(&o, "count", (int64_t)b->count[i]);
                for (int c = 0; c < FLOE_AGG_NCOLS; c++) {
                        put(&o, ",\"", 2);
                        puts_(&o, floe_agg_col_name((enum floe_agg_col)c));
                        put(&o, "\":", 2);
                        put_double(&o, b->agg[c][i], b->agg_null[c][i]);
                }
        }
        puts_(&o, "}\n");
        if (o.err)
                return o.err;
        o.p[o.len] = '\0';
        return (int)o.len;
}

/* ---- parsing ---- */

__attribute__((format(printf, 3, 4))) static int perr(char *err, size_t size, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static int get_str(json_t *o, const char *key, bool required, const char **ret, size_t *ret_len,
                   char *err, size_t errsize)
{
        json_t *v = json_object_get(o, key);

        if (!v) {
                if (required)
                        return perr(err, errsize, "missing \"%s\"", key);
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return perr(err, errsize, "\"%s\": expected a string", key);
        *ret = json_string_value(v);
        *ret_len = json_string_length(v);
        return 0;
}

static int get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *ret, char *err,
                   size_t errsize)
{
        json_t *v = json_object_get(o, key);

        if (!v)
                return perr(err, errsize, "missing \"%s\"", key);
        if (!json_is_integer(v))
                return perr(err, errsize, "\"%s\": expected an integer", key);
        if (json_integer_value(v) < min || json_integer_value(v) > max)
                return perr(err, errsize,
                            "\"%s\": %" JSON_INTEGER_FORMAT " outside %" PRId64 "..%" PRId64, key,
                            json_integer_value(v), min, max);
        *ret = json_integer_value(v);
        return 0;
}

/* A number or null; a missing key is null. */
static int get_num(json_t *o, const char *key, double *ret, bool *ret_null, char *err,
                   size_t errsize)
{
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v)) {
                *ret = 0.0;
                *ret_null = true;
                return 0;
        }
        if (!json_is_number(v))
                return perr(err, errsize, "\"%s\": expected a number or null", key);
        *ret = json_number_value(v);
        *ret_null = false;
        if (!isfinite(*ret))
                return perr(err, errsize, "\"%s\": not a finite number", key);
        return 0;
}

static int check_keys(json_t *o, const char *const *allowed, char *err, size_t errsize)
{
        const char *key;
        json_t *v;

        json_object_foreach(o, key, v)
        {
                bool ok = false;

                for (size_t i = 0; allowed[i]; i++)
                        ok = ok || strcmp(key, allowed[i]) == 0;
                if (!ok)
                        return perr(err, errsize, "unknown key \"%.40s\"", key);
        }
        return 0;
}

static int check_identity(struct floe_batch *b, json_t *o, char *err, size_t errsize)
{
        const char *tenant, *device;
        size_t tl = 0, dl = 0;
        char id[FLOE_IDENTITY_MAX + 2];
        int r;

        r = get_str(o, "tenant", true, &tenant, &tl, err, errsize);
        r = r ?: get_str(o, "device", true, &device, &dl, err, errsize);
        if (r < 0)
                return r;
        if (tl + dl + 1 > FLOE_IDENTITY_MAX)
                return perr(err, errsize, "tenant and device too long");
        memcpy(id, tenant, tl);
        id[tl] = '.';
        memcpy(id + tl + 1, device, dl);
        id[tl + dl + 1] = '\0';
        if (!floe_identity_valid(id, tl + dl + 1) || memchr(id + tl + 1, '.', dl))
                return perr(err, errsize,
                            "tenant \"%.63s\" / device \"%.63s\": not [a-z0-9][a-z0-9-]{0,62}",
                            tenant, device);
        if (!b->identity[0]) {
                memcpy(b->identity, id, tl + dl + 2);
                return 0;
        }
        if (strcmp(b->identity, id) != 0)
                return perr(err, errsize, "row is for %s, the batch for %s", id, b->identity);
        return 0;
}

static const char *const event_keys[] = {"tenant", "device", "sensor", "metric",
                                         "ts",     "value",  "text",   NULL};
static const char *const agg_keys[] = {"tenant",   "device", "sensor", "metric", "window_start",
                                       "window_s", "count",  "sum",    "min",    "max",
                                       "first",    "last",   NULL};

static const char *add_error(int r)
{
        switch (r) {
        case -ENOSPC:
                return "batch full (rows, dictionary or series limit)";
        case -ENAMETOOLONG:
                return "string longer than the limit";
        case -EILSEQ:
                return "invalid UTF-8 or control character";
        case -EINVAL:
                return "empty name";
        case -EDOM:
                return "value not finite";
        case -ENOMEM:
                return "out of memory";
        default:
                return "rejected";
        }
}

static int parse_obj(struct floe_batch *b, json_t *o, char *err, size_t errsize)
{
        const char *sensor, *metric;
        size_t sl = 0, ml = 0;
        uint32_t series;
        int r;

        if (!json_is_object(o))
                return perr(err, errsize, "a row must be a JSON object");
        r = check_keys(o, b->kind == FLOE_KIND_EVENTS ? event_keys : agg_keys, err, errsize);
        r = r ?: check_identity(b, o, err, errsize);
        r = r ?: get_str(o, "sensor", true, &sensor, &sl, err, errsize);
        r = r ?: get_str(o, "metric", true, &metric, &ml, err, errsize);
        if (r < 0)
                return r;
        r = floe_batch_intern_series(b, sensor, sl, metric, ml, &series);
        if (r < 0)
                return perr(err, errsize, "sensor/metric: %s", add_error(r));
        if (b->kind == FLOE_KIND_EVENTS) {
                const char *text = NULL;
                size_t tl = 0;
                int64_t ts;
                double v;
                bool isnull;

                r = get_int(o, "ts", INT64_MIN, INT64_MAX, &ts, err, errsize);
                r = r ?: get_num(o, "value", &v, &isnull, err, errsize);
                r = r ?: get_str(o, "text", false, &text, &tl, err, errsize);
                if (r < 0)
                        return r;
                r = floe_batch_add_event(b, series, ts, v, isnull, text, tl);
        } else {
                struct floe_agg_row row = {0};
                int64_t w, n;

                r = get_int(o, "window_start", INT64_MIN, INT64_MAX, &row.window_start_us, err,
                            errsize);
                r = r ?: get_int(o, "window_s", 0, UINT32_MAX, &w, err, errsize);
                r = r ?: get_int(o, "count", 0, INT64_MAX, &n, err, errsize);
                for (int c = 0; c < FLOE_AGG_NCOLS && r == 0; c++)
                        r = get_num(o, floe_agg_col_name((enum floe_agg_col)c), &row.v[c],
                                    &row.null[c], err, errsize);
                if (r < 0)
                        return r;
                row.window_s = (uint32_t)w;
                row.count = (uint64_t)n;
                r = floe_batch_add_aggregate(b, series, &row);
        }
        if (r < 0) {
                perr(err, errsize, "%s", add_error(r));
                return r;
        }
        return 0;
}

int floe_ndjson_parse_row(struct floe_batch *b, const char *line, size_t len, char *err,
                          size_t errsize)
{
        json_error_t jerr;
        json_t *o;
        int r;

        o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!o)
                return perr(err, errsize, "column %d: %s", jerr.column, jerr.text);
        r = parse_obj(b, o, err, errsize);
        json_decref(o);
        return r;
}
