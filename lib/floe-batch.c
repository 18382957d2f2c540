/* SPDX-License-Identifier: Apache-2.0 */
#include "floe-batch.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "floe-alloc.h"

void floe_wire_limits_default(struct floe_wire_limits *ret)
{
        *ret = (struct floe_wire_limits){
                .max_compressed = 4u << 20,
                .max_decompressed = 64u << 20,
                .max_rows = 1u << 20,
                .max_dict = 1u << 16,
                .max_series = 1u << 18,
                .max_name_len = 255,
                .max_text_len = 4096,
        };
}

static uint32_t hash_bytes(const char *s, size_t len)
{
        uint64_t h = 0xcbf29ce484222325ULL;

        for (size_t i = 0; i < len; i++) {
                h ^= (unsigned char)s[i];
                h *= 0x100000001b3ULL;
        }
        return (uint32_t)(h ^ (h >> 32));
}

static uint32_t hash_pair(uint32_t a, uint32_t b)
{
        uint64_t h = ((uint64_t)a << 32 | b) * 0x9e3779b97f4a7c15ULL;

        return (uint32_t)(h >> 32);
}

static uint32_t slots_for(uint32_t entries)
{
        uint32_t n = 16;

        while (n < entries * 2u && n < (1u << 31))
                n <<= 1;
        return n;
}

static void strdict_free(struct floe_strdict *d)
{
        floe_free(d->off);
        floe_free(d->len);
        floe_free(d->buf);
        floe_free(d->slots);
        *d = (struct floe_strdict){0};
}

/* slots come zeroed from calloc, so a large table costs memory only where used */
static void strdict_rehash(struct floe_strdict *d, uint32_t *slots, uint32_t nslots)
{
        for (uint32_t i = 0; i < d->n; i++) {
                uint32_t h = hash_bytes(d->buf + d->off[i], d->len[i]) & (nslots - 1);

                while (slots[h])
                        h = (h + 1) & (nslots - 1);
                slots[h] = i + 1;
        }
}

static int strdict_reserve(struct floe_strdict *d, uint32_t entries, size_t bytes)
{
        if (entries > d->cap) {
                uint32_t *off = floe_reallocarray(d->off, entries, sizeof(*off));

                if (!off)
                        return -ENOMEM;
                d->off = off;
                uint32_t *len = floe_reallocarray(d->len, entries, sizeof(*len));

                if (!len)
                        return -ENOMEM;
                d->len = len;
                d->cap = entries;
        }
        if (slots_for(d->cap) > d->nslots) {
                uint32_t n = slots_for(d->cap);
                uint32_t *slots = floe_calloc(n, sizeof(*slots));

                if (!slots)
                        return -ENOMEM;
                strdict_rehash(d, slots, n);
                floe_free(d->slots);
                d->slots = slots;
                d->nslots = n;
        }
        if (bytes > d->bufcap) {
                char *buf = floe_realloc(d->buf, bytes);

                if (!buf)
                        return -ENOMEM;
                d->buf = buf;
                d->bufcap = bytes;
        }
        return 0;
}

int floe_strdict_add(struct floe_strdict *d, const char *s, size_t len, bool fixed,
                     uint32_t max_entries, uint32_t *ret_index, bool *ret_added)
{
        uint32_t h = hash_bytes(s, len);
        int r;

        if (d->nslots) {
                for (uint32_t i = h & (d->nslots - 1);; i = (i + 1) & (d->nslots - 1)) {
                        uint32_t e = d->slots[i];

                        if (!e)
                                break;
                        if (d->len[e - 1] == len && memcmp(d->buf + d->off[e - 1], s, len) == 0) {
                                *ret_index = e - 1;
                                if (ret_added)
                                        *ret_added = false;
                                return 0;
                        }
                }
        }
        if (d->n >= max_entries)
                return -ENOSPC;
        if (d->n == d->cap || d->used + len > d->bufcap) {
                uint32_t entries = d->cap;
                size_t bytes = d->bufcap;

                if (fixed)
                        return -ENOSPC;
                if (d->n == d->cap)
                        entries =
                                d->cap ? (d->cap > max_entries / 2 ? max_entries : d->cap * 2) : 16;
                if (bytes == 0)
                        bytes = 256;
                while (d->used + len > bytes)
                        bytes *= 2;
                r = strdict_reserve(d, entries, bytes);
                if (r < 0)
                        return r;
        }
        memcpy(d->buf + d->used, s, len);
        d->off[d->n] = (uint32_t)d->used;
        d->len[d->n] = (uint32_t)len;
        d->used += len;
        for (uint32_t i = h & (d->nslots - 1);; i = (i + 1) & (d->nslots - 1)) {
                if (!d->slots[i]) {
                        d->slots[i] = d->n + 1;
                        break;
                }
        }
        *ret_index = d->n++;
        if (ret_added)
                *ret_added = true;
        return 0;
}

/* Clears only the slots in use: a reserved dictionary of 64k entries must
 * not cost a 512 KiB memset per batch. */
static void strdict_reset(struct floe_strdict *d)
{
        if (d->slots && d->n < d->nslots / 8) {
                for (uint32_t e = 0; e < d->n; e++) {
                        uint32_t i = hash_bytes(d->buf + d->off[e], d->len[e]) & (d->nslots - 1);

                        while (d->slots[i] != e + 1)
                                i = (i + 1) & (d->nslots - 1);
                        d->slots[i] = 0;
                }
        } else if (d->slots) {
                memset(d->slots, 0, sizeof(*d->slots) * d->nslots);
        }
        d->n = 0;
        d->used = 0;
}

bool floe_utf8_valid(const char *str, size_t len)
{
        const unsigned char *s = (const unsigned char *)str;
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i];
                uint32_t cp;
                int n;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                } else {
                        return false;
                }
                if (len - i <= (size_t)n)
                        return false;
                for (int k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += (size_t)n + 1;
        }
        return true;
}

int floe_name_check(const char *s, size_t len, uint32_t max)
{
        if (len == 0)
                return -EINVAL;
        if (len > max)
                return -ENAMETOOLONG;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c < 0x20 || c == 0x7f)
                        return -EILSEQ;
        }
        return floe_utf8_valid(s, len) ? 0 : -EILSEQ;
}

static bool identity_part_valid(const char *s, size_t len)
{
        if (len == 0 || len > FLOE_IDENTITY_PART_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');

                if (!ok)
                        return false;
        }
        return true;
}

bool floe_identity_valid(const char *s, size_t len)
{
        const char *dot = memchr(s, '.', len);

        if (!dot)
                return false;
        return identity_part_valid(s, (size_t)(dot - s)) &&
               identity_part_valid(dot + 1, len - (size_t)(dot - s) - 1);
}

static const char *const kind_names[] = {
        [FLOE_KIND_EVENTS] = "events",
        [FLOE_KIND_AGGREGATES] = "aggregates",
};

const char *floe_batch_kind_name(enum floe_batch_kind kind)
{
        if (kind == FLOE_KIND_EVENTS || kind == FLOE_KIND_AGGREGATES)
                return kind_names[kind];
        return "invalid";
}

int floe_batch_kind_from_name(const char *name, enum floe_batch_kind *ret)
{
        for (int k = FLOE_KIND_EVENTS; k <= FLOE_KIND_AGGREGATES; k++) {
                if (strcmp(name, kind_names[k]) == 0) {
                        *ret = (enum floe_batch_kind)k;
                        return 0;
                }
        }
        return -EINVAL;
}

const char *floe_agg_col_name(enum floe_agg_col c)
{
        static const char *const names[FLOE_AGG_NCOLS] = {"sum", "min", "max", "first", "last"};

        return (unsigned)c < FLOE_AGG_NCOLS ? names[c] : "invalid";
}

int floe_batch_new(enum floe_batch_kind kind, const struct floe_wire_limits *lim,
                   struct floe_batch **ret)
{
        struct floe_batch *b;

        if (kind != FLOE_KIND_EVENTS && kind != FLOE_KIND_AGGREGATES)
                return -EINVAL;
        b = floe_calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->version = FLOE_WIRE_VERSION;
        b->kind = kind;
        if (lim)
                b->lim = *lim;
        else
                floe_wire_limits_default(&b->lim);
        *ret = b;
        return 0;
}

struct floe_batch *floe_batch_free(struct floe_batch *b)
{
        if (!b)
                return NULL;
        strdict_free(&b->sensors);
        strdict_free(&b->metrics);
        strdict_free(&b->texts);
        floe_free(b->series);
        floe_free(b->series_slots);
        floe_free(b->row_series);
        floe_free(b->ts);
        floe_free(b->value);
        floe_free(b->value_null);
        floe_free(b->text);
        floe_free(b->decimals);
        floe_free(b->window_s);
        floe_free(b->count);
        for (int c = 0; c < FLOE_AGG_NCOLS; c++) {
                floe_free(b->agg[c]);
                floe_free(b->agg_null[c]);
        }
        floe_free(b);
        return NULL;
}

static int grow(void **p, uint32_t n, size_t size)
{
        void *q = floe_reallocarray(*p, n, size);

        if (!q)
                return -ENOMEM;
        *p = q;
        return 0;
}

static int rows_alloc(struct floe_batch *b, uint32_t n)
{
        int r = 0;

        r = r ?: grow((void **)&b->row_series, n, sizeof(uint32_t));
        r = r ?: grow((void **)&b->ts, n, sizeof(int64_t));
        if (b->kind == FLOE_KIND_EVENTS) {
                r = r ?: grow((void **)&b->value, n, sizeof(double));
                r = r ?: grow((void **)&b->value_null, n, sizeof(uint8_t));
                r = r ?: grow((void **)&b->text, n, sizeof(uint32_t));
                if (b->decimals)
                        r = r ?: grow((void **)&b->decimals, n, sizeof(uint8_t));
        } else {
                r = r ?: grow((void **)&b->window_s, n, sizeof(uint32_t));
                r = r ?: grow((void **)&b->count, n, sizeof(uint64_t));
                for (int c = 0; c < FLOE_AGG_NCOLS; c++) {
                        r = r ?: grow((void **)&b->agg[c], n, sizeof(double));
                        r = r ?: grow((void **)&b->agg_null[c], n, sizeof(uint8_t));
                }
        }
        if (r == 0)
                b->cap = n;
        return r;
}

int floe_batch_ensure_rows(struct floe_batch *b, uint32_t rows)
{
        uint32_t n;

        if (rows > b->lim.max_rows)
                return -ENOSPC;
        if (rows <= b->cap)
                return 0;
        if (b->fixed)
                return -ENOSPC;
        n = b->cap < 64 ? 64 : b->cap;
        while (n < rows)
                n = n > b->lim.max_rows / 2 ? b->lim.max_rows : n * 2;
        if (n > b->lim.max_rows)
                n = b->lim.max_rows;
        return rows_alloc(b, n);
}

static int series_reserve(struct floe_batch *b, uint32_t n)
{
        uint32_t ns;
        uint32_t *slots;

        if (n > b->series_cap) {
                struct floe_series *s = floe_reallocarray(b->series, n, sizeof(*s));

                if (!s)
                        return -ENOMEM;
                b->series = s;
                b->series_cap = n;
        }
        ns = slots_for(b->series_cap);
        if (ns <= b->series_nslots)
                return 0;
        slots = floe_calloc(ns, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (uint32_t i = 0; i < b->nseries; i++) {
                uint32_t h = hash_pair(b->series[i].sensor, b->series[i].metric) & (ns - 1);

                while (slots[h])
                        h = (h + 1) & (ns - 1);
                slots[h] = i + 1;
        }
        floe_free(b->series_slots);
        b->series_slots = slots;
        b->series_nslots = ns;
        b->series_indexed = b->nseries;
        return 0;
}

int floe_batch_reserve(struct floe_batch *b, uint32_t rows, uint32_t strings, size_t string_bytes,
                       bool fix)
{
        uint32_t series = rows < b->lim.max_series ? rows : b->lim.max_series;
        int r;

        if (rows > b->lim.max_rows)
                rows = b->lim.max_rows;
        if (strings > b->lim.max_dict)
                strings = b->lim.max_dict;
        b->fixed = false;
        r = rows > b->cap ? rows_alloc(b, rows) : 0;
        r = r ?: strdict_reserve(&b->sensors, strings, string_bytes);
        r = r ?: strdict_reserve(&b->metrics, strings, string_bytes);
        if (b->kind == FLOE_KIND_EVENTS)
                r = r ?: strdict_reserve(&b->texts, strings, string_bytes);
        r = r ?: series_reserve(b, series ? series : 1);
        if (r < 0)
                return r;
        b->fixed = fix;
        return 0;
}

void floe_batch_set_kind(struct floe_batch *b, enum floe_batch_kind kind)
{
        if (b->kind == kind)
                return;
        floe_free(b->value);
        floe_free(b->value_null);
        floe_free(b->text);
        floe_free(b->decimals);
        floe_free(b->window_s);
        floe_free(b->count);
        b->value = NULL;
        b->value_null = NULL;
        b->text = NULL;
        b->decimals = NULL;
        b->window_s = NULL;
        b->count = NULL;
        for (int c = 0; c < FLOE_AGG_NCOLS; c++) {
                floe_free(b->agg[c]);
                floe_free(b->agg_null[c]);
                b->agg[c] = NULL;
                b->agg_null[c] = NULL;
        }
        b->cap = 0;
        b->nrows = 0;
        b->kind = kind;
}

void floe_batch_reset(struct floe_batch *b)
{
        strdict_reset(&b->sensors);
        strdict_reset(&b->metrics);
        strdict_reset(&b->texts);
        if (b->series_slots && b->series_indexed < b->series_nslots / 8) {
                for (uint32_t e = 0; e < b->series_indexed; e++) {
                        uint32_t i = hash_pair(b->series[e].sensor, b->series[e].metric) &
                                     (b->series_nslots - 1);

                        while (b->series_slots[i] != e + 1)
                                i = (i + 1) & (b->series_nslots - 1);
                        b->series_slots[i] = 0;
                }
        } else if (b->series_slots) {
                memset(b->series_slots, 0, sizeof(*b->series_slots) * b->series_nslots);
        }
        b->nseries = 0;
        b->series_indexed = 0;
        b->nrows = 0;
        b->decimals_rows = 0;
}

int floe_batch_keep_decimals(struct floe_batch *b)
{
        if (b->kind != FLOE_KIND_EVENTS)
                return -EINVAL;
        if (!b->decimals && b->cap) {
                b->decimals = floe_calloc(b->cap, 1);
                if (!b->decimals)
                        return -ENOMEM;
        }
        return 0;
}

int floe_batch_set_identity(struct floe_batch *b, const char *identity)
{
        size_t len = strlen(identity);

        if (!floe_identity_valid(identity, len))
                return -EINVAL;
        memcpy(b->identity, identity, len + 1);
        return 0;
}

/* Puts series[i] into the open addressing table. */
static void series_index(struct floe_batch *b, uint32_t i)
{
        uint32_t h = hash_pair(b->series[i].sensor, b->series[i].metric);

        for (h &= b->series_nslots - 1; b->series_slots[h]; h = (h + 1) & (b->series_nslots - 1))
                ;
        b->series_slots[h] = i + 1;
}

int floe_batch_push_series(struct floe_batch *b, uint32_t sensor, uint32_t metric,
                           uint32_t *ret_series)
{
        uint32_t i = b->nseries;

        if (i >= b->lim.max_series || i >= b->series_cap)
                return b->fixed || i >= b->lim.max_series
                               ? -ENOSPC
                               : floe_batch_add_series_raw(b, sensor, metric, ret_series, NULL);
        b->series[i] = (struct floe_series){.sensor = sensor, .metric = metric};
        b->nseries++;
        *ret_series = i;
        return 0;
}

int floe_batch_add_series_raw(struct floe_batch *b, uint32_t sensor, uint32_t metric,
                              uint32_t *ret_series, bool *ret_added)
{
        uint32_t h, g = b->series_hint;
        int r;

        /* series pushed without a lookup join the index first */
        while (b->series_indexed < b->nseries)
                series_index(b, b->series_indexed++);

        for (int tries = 0; tries < 2; tries++, g++) {
                if (g < b->nseries && b->series[g].sensor == sensor &&
                    b->series[g].metric == metric) {
                        b->series_hint = *ret_series = g;
                        if (ret_added)
                                *ret_added = false;
                        return 0;
                }
        }
        h = hash_pair(sensor, metric);
        if (b->series_nslots) {
                for (uint32_t i = h & (b->series_nslots - 1);;
                     i = (i + 1) & (b->series_nslots - 1)) {
                        uint32_t e = b->series_slots[i];

                        if (!e)
                                break;
                        if (b->series[e - 1].sensor == sensor &&
                            b->series[e - 1].metric == metric) {
                                *ret_series = b->series_hint = e - 1;
                                if (ret_added)
                                        *ret_added = false;
                                return 0;
                        }
                }
        }
        if (b->nseries >= b->lim.max_series)
                return -ENOSPC;
        if (b->nseries == b->series_cap) {
                uint32_t n = b->series_cap ? b->series_cap * 2 : 64;

                if (b->fixed)
                        return -ENOSPC;
                if (n > b->lim.max_series)
                        n = b->lim.max_series;
                r = series_reserve(b, n);
                if (r < 0)
                        return r;
        }
        b->series[b->nseries] = (struct floe_series){.sensor = sensor, .metric = metric};
        for (uint32_t i = h & (b->series_nslots - 1);; i = (i + 1) & (b->series_nslots - 1)) {
                if (!b->series_slots[i]) {
                        b->series_slots[i] = b->nseries + 1;
                        break;
                }
        }
        b->series_indexed = b->nseries + 1;
        *ret_series = b->series_hint = b->nseries++;
        if (ret_added)
                *ret_added = true;
        return 0;
}

static bool strdict_is(const struct floe_strdict *d, uint32_t e, const char *s, size_t len)
{
        return e < d->n && d->len[e] == len && memcmp(d->buf + d->off[e], s, len) == 0;
}

static int strdict_find(struct floe_strdict *d, const char *s, size_t len, uint32_t *ret)
{
        /* names come in a steady order: the last one again, or the next */
        if (strdict_is(d, d->hint, s, len) || strdict_is(d, d->hint + 1, s, len)) {
                d->hint += !strdict_is(d, d->hint, s, len);
                *ret = d->hint;
                return 0;
        }
        if (!d->nslots)
                return -ENOENT;
        for (uint32_t i = hash_bytes(s, len) & (d->nslots - 1);; i = (i + 1) & (d->nslots - 1)) {
                uint32_t e = d->slots[i];

                if (!e)
                        return -ENOENT;
                if (d->len[e - 1] == len && memcmp(d->buf + d->off[e - 1], s, len) == 0) {
                        *ret = d->hint = e - 1;
                        return 0;
                }
        }
}

/* A name already in the dictionary was checked when it went in. */
static int intern_name(struct floe_batch *b, struct floe_strdict *d, const char *s, size_t len,
                       uint32_t *ret)
{
        int r;

        if (len <= b->lim.max_name_len && strdict_find(d, s, len, ret) == 0)
                return 0;
        r = floe_name_check(s, len, b->lim.max_name_len);
        r = r ?: floe_strdict_add(d, s, len, b->fixed, b->lim.max_dict, ret, NULL);
        if (r == 0)
                d->hint = *ret;
        return r;
}

int floe_batch_intern_name(struct floe_batch *b, struct floe_strdict *d, const char *s, size_t len,
                           uint32_t *ret_index)
{
        return intern_name(b, d, s, len, ret_index);
}

int floe_batch_intern_series(struct floe_batch *b, const char *sensor, size_t sensor_len,
                             const char *metric, size_t metric_len, uint32_t *ret_series)
{
        uint32_t si, mi;
        int r;

        r = intern_name(b, &b->sensors, sensor, sensor_len, &si);
        r = r ?: intern_name(b, &b->metrics, metric, metric_len, &mi);
        if (r < 0)
                return r;
        return floe_batch_add_series_raw(b, si, mi, ret_series, NULL);
}

int floe_batch_add_event(struct floe_batch *b, uint32_t series, int64_t ts_us, double value,
                         bool value_null, const char *text, size_t text_len)
{
        uint32_t ti = FLOE_NO_TEXT;
        int r;

        if (b->kind != FLOE_KIND_EVENTS || series >= b->nseries)
                return -EINVAL;
        if (!value_null && !isfinite(value))
                return -EDOM;
        r = floe_batch_ensure_rows(b, b->nrows + 1);
        if (r < 0)
                return r;
        if (text) {
                if (text_len > b->lim.max_text_len)
                        return -ENAMETOOLONG;
                if (memchr(text, '\0', text_len) || !floe_utf8_valid(text, text_len))
                        return -EILSEQ;
                r = floe_strdict_add(&b->texts, text, text_len, b->fixed, b->lim.max_dict, &ti,
                                     NULL);
                if (r < 0)
                        return r;
        }
        b->row_series[b->nrows] = series;
        b->ts[b->nrows] = ts_us;
        b->value[b->nrows] = value_null ? 0.0 : value;
        b->value_null[b->nrows] = value_null;
        b->text[b->nrows] = ti;
        if (b->decimals) {
                b->decimals[b->nrows] = 0;
                b->decimals_rows++;
        }
        b->nrows++;
        return 0;
}

int floe_batch_add_aggregate(struct floe_batch *b, uint32_t series, const struct floe_agg_row *row)
{
        uint32_t i = b->nrows;
        int r;

        if (b->kind != FLOE_KIND_AGGREGATES || series >= b->nseries)
                return -EINVAL;
        for (int c = 0; c < FLOE_AGG_NCOLS; c++)
                if (!row->null[c] && !isfinite(row->v[c]))
                        return -EDOM;
        r = floe_batch_ensure_rows(b, i + 1);
        if (r < 0)
                return r;
        b->row_series[i] = series;
        b->ts[i] = row->window_start_us;
        b->window_s[i] = row->window_s;
        b->count[i] = row->count;
        for (int c = 0; c < FLOE_AGG_NCOLS; c++) {
                b->agg[c][i] = row->null[c] ? 0.0 : row->v[c];
                b->agg_null[c][i] = row->null[c];
        }
        b->nrows++;
        return 0;
}
