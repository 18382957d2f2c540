/* SPDX-License-Identifier: Apache-2.0 */
/* Statistics: min/max in each type's order (parquet.thrift ColumnOrder), their
 * PLAIN form, truncation of long strings, and merging into file reports. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "floe-alloc.h"
#include "parquet-internal.h"

void parquet_minmax_reset(struct parquet_minmax *m)
{
        m->has = false;
        m->smin.len = 0;
        m->smax.len = 0;
}

void parquet_minmax_done(struct parquet_minmax *m)
{
        parquet_buf_done(&m->smin);
        parquet_buf_done(&m->smax);
        m->has = false;
}

/* Unsigned byte-wise order; a prefix sorts first. */
static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
        size_t n = alen < blen ? alen : blen;
        int c = n > 0 ? memcmp(a, b, n) : 0;

        if (c != 0)
                return c;
        return alen < blen ? -1 : alen > blen;
}

static int set_buf(struct parquet_buf *b, const void *p, size_t n)
{
        b->len = 0;
        return parquet_buf_append(b, p, n);
}

int parquet_minmax_str(struct parquet_minmax *m, const char *p, uint32_t len)
{
        const uint8_t *u = (const uint8_t *)p;
        int r;

        if (!m->has) {
                r = set_buf(&m->smin, u, len);
                if (r == 0)
                        r = set_buf(&m->smax, u, len);
                if (r == 0)
                        m->has = true;
                return r;
        }
        if (bytes_cmp(u, len, m->smin.data, m->smin.len) < 0)
                return set_buf(&m->smin, u, len);
        if (bytes_cmp(u, len, m->smax.data, m->smax.len) > 0)
                return set_buf(&m->smax, u, len);
        return 0;
}

static int dup_bytes(struct parquet_bytes *b, const void *p, size_t n)
{
        b->ptr = floe_malloc(n > 0 ? n : 1);
        if (!b->ptr)
                return -ENOMEM;
        if (n > 0)
                memcpy(b->ptr, p, n);
        b->len = n;
        return 0;
}

/* Length of a UTF-8 sequence from its lead byte; 0 if not a lead byte. */
static unsigned utf8_len(uint8_t c)
{
        return c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
}

static unsigned utf8_put(uint32_t cp, uint8_t *o)
{
        if (cp < 0x80) {
                o[0] = (uint8_t)cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (uint8_t)(0xc0 | cp >> 6);
                o[1] = (uint8_t)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (uint8_t)(0xe0 | cp >> 12);
                o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
                o[2] = (uint8_t)(0x80 | (cp & 0x3f));
                return 3;
        }
        o[0] = (uint8_t)(0xf0 | cp >> 18);
        o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        o[3] = (uint8_t)(0x80 | (cp & 0x3f));
        return 4;
}

/*
 * Cuts s to at most max bytes on character boundaries. For an upper bound
 * the last kept character is incremented (dropping characters that cannot
 * be), so the result still sorts after s. Returns the new length, or 0 when
 * no shorter bound exists (the caller keeps s whole). out holds max bytes.
 */
static size_t utf8_truncate(const uint8_t *s, size_t len, size_t max, bool upper, uint8_t *out)
{
        size_t pos = 0, end;

        while (pos < len) {
                unsigned k = utf8_len(s[pos]);

                if (k == 0 || pos + k > len)
                        return 0; /* not UTF-8: keep it whole */
                for (unsigned i = 1; i < k; i++)
                        if ((s[pos + i] & 0xc0) != 0x80)
                                return 0;
                if (pos + k > max)
                        break;
                pos += k;
        }
        if (pos == 0)
                return 0;
        memcpy(out, s, pos);
        if (!upper)
                return pos;
        for (end = pos; end > 0;) {
                size_t start = end - 1;
                uint32_t cp;
                unsigned k;

                while (start > 0 && (s[start] & 0xc0) == 0x80)
                        start--;
                k = (unsigned)(end - start);
                cp = k == 1 ? s[start] : s[start] & (0x7fu >> k);
                for (unsigned j = 1; j < k; j++)
                        cp = cp << 6 | (s[start + j] & 0x3f);
                cp++;
                if (cp >= 0xd800 && cp < 0xe000)
                        cp = 0xe000;
                if (cp <= 0x10ffff && start + (cp < 0x80      ? 1
                                               : cp < 0x800   ? 2
                                               : cp < 0x10000 ? 3
                                                              : 4) <=
                                              max)
                        return start + utf8_put(cp, out + start);
                end = start; /* drop this character, increment the one before */
        }
        return 0;
}

static int finish_str(const struct parquet_minmax *m, uint32_t max_bytes, struct parquet_wchunk *c)
{
        _cleanup_free_ uint8_t *tmp = NULL;
        size_t n;
        int r;

        if (m->smin.len > max_bytes || m->smax.len > max_bytes) {
                tmp = floe_malloc(max_bytes > 0 ? max_bytes : 1);
                if (!tmp)
                        return -ENOMEM;
        }
        n = m->smin.len > max_bytes
                    ? utf8_truncate(m->smin.data, m->smin.len, max_bytes, false, tmp)
                    : 0;
        r = n > 0 ? dup_bytes(&c->min, tmp, n) : dup_bytes(&c->min, m->smin.data, m->smin.len);
        if (r < 0)
                return r;
        c->min_exact = n == 0;
        n = m->smax.len > max_bytes ? utf8_truncate(m->smax.data, m->smax.len, max_bytes, true, tmp)
                                    : 0;
        r = n > 0 ? dup_bytes(&c->max, tmp, n) : dup_bytes(&c->max, m->smax.data, m->smax.len);
        if (r < 0)
                return r;
        c->max_exact = n == 0;
        return 0;
}

int parquet_minmax_finish(const struct parquet_minmax *m, enum parquet_physical type,
                          uint32_t max_bytes, struct parquet_wchunk *c)
{
        uint8_t lo[8], hi[8];
        size_t n = 0;
        int r;

        c->has_min = c->has_max = false;
        c->min_exact = c->max_exact = true;
        if (!m->has)
                return 0; /* all null, or all NaN: no min/max (ColumnOrder rules) */
        switch (type) {
        case PARQUET_BOOLEAN:
                lo[0] = (uint8_t)m->imin;
                hi[0] = (uint8_t)m->imax;
                n = 1;
                break;
        case PARQUET_INT32: {
                int32_t a = (int32_t)m->imin, b = (int32_t)m->imax;

                memcpy(lo, &a, 4);
                memcpy(hi, &b, 4);
                n = 4;
                break;
        }
        case PARQUET_INT64:
                memcpy(lo, &m->imin, 8);
                memcpy(hi, &m->imax, 8);
                n = 8;
                break;
        case PARQUET_FLOAT: {
                /* a zero min is written -0.0, a zero max +0.0 */
                float a = m->dmin == 0 ? -0.0f : (float)m->dmin;
                float b = m->dmax == 0 ? 0.0f : (float)m->dmax;

                memcpy(lo, &a, 4);
                memcpy(hi, &b, 4);
                n = 4;
                break;
        }
        case PARQUET_DOUBLE: {
                double a = m->dmin == 0 ? -0.0 : m->dmin;
                double b = m->dmax == 0 ? 0.0 : m->dmax;

                memcpy(lo, &a, 8);
                memcpy(hi, &b, 8);
                n = 8;
                break;
        }
        case PARQUET_BYTE_ARRAY:
                r = finish_str(m, max_bytes, c);
                if (r < 0) {
                        parquet_wchunk_done(c);
                        return r;
                }
                c->has_min = c->has_max = true;
                return 0;
        default:
                return -EINVAL;
        }
        r = dup_bytes(&c->min, lo, n);
        if (r == 0)
                r = dup_bytes(&c->max, hi, n);
        if (r < 0) {
                parquet_wchunk_done(c);
                return r;
        }
        c->has_min = c->has_max = true;
        return 0;
}

static int64_t get_int(const uint8_t *p, size_t len)
{
        if (len == 4) {
                int32_t v;

                memcpy(&v, p, 4);
                return v;
        }
        int64_t v;

        memcpy(&v, p, 8);
        return v;
}

static double get_float(const uint8_t *p, size_t len)
{
        if (len == 4) {
                float v;

                memcpy(&v, p, 4);
                return v;
        }
        double v;

        memcpy(&v, p, 8);
        return v;
}

int parquet_value_cmp(int32_t type, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
        switch (type) {
        case PARQUET_INT32:
        case PARQUET_INT64: {
                int64_t x = get_int(a, alen), y = get_int(b, blen);

                return x < y ? -1 : x > y;
        }
        case PARQUET_FLOAT:
        case PARQUET_DOUBLE: {
                double x = get_float(a, alen), y = get_float(b, blen);

                /* -0.0 before +0.0, so merged bounds keep the widest zero */
                if (x == y)
                        return signbit(x) && !signbit(y) ? -1 : !signbit(x) && signbit(y);
                return x < y ? -1 : 1;
        }
        default:
                return bytes_cmp(a, alen, b, blen);
        }
}

static void bytes_free(struct parquet_bytes *b)
{
        floe_free(b->ptr);
        *b = (struct parquet_bytes){0};
}

int parquet_report_add(struct parquet_column_report *r, bool first, int32_t type,
                       const struct parquet_bytes *min, const struct parquet_bytes *max,
                       bool min_exact, bool max_exact)
{
        int c, ret;

        c = first ? -1 : parquet_value_cmp(type, min->ptr, min->len, r->lower.ptr, r->lower.len);
        if (c < 0) {
                bytes_free(&r->lower);
                ret = dup_bytes(&r->lower, min->ptr, min->len);
                if (ret < 0)
                        return ret;
                r->lower_exact = min_exact;
        } else if (c == 0) {
                r->lower_exact = r->lower_exact || min_exact;
        }
        c = first ? 1 : parquet_value_cmp(type, max->ptr, max->len, r->upper.ptr, r->upper.len);
        if (c > 0) {
                bytes_free(&r->upper);
                ret = dup_bytes(&r->upper, max->ptr, max->len);
                if (ret < 0)
                        return ret;
                r->upper_exact = max_exact;
        } else if (c == 0) {
                r->upper_exact = r->upper_exact || max_exact;
        }
        r->has_bounds = true;
        return 0;
}

void parquet_report_drop_bounds(struct parquet_column_report *r)
{
        bytes_free(&r->lower);
        bytes_free(&r->upper);
        r->has_bounds = false;
        r->lower_exact = r->upper_exact = false;
}

void parquet_wchunk_done(struct parquet_wchunk *c)
{
        bytes_free(&c->min);
        bytes_free(&c->max);
        c->has_min = c->has_max = false;
}

struct parquet_report *parquet_report_free(struct parquet_report *r)
{
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_columns; i++) {
                bytes_free(&r->columns[i].lower);
                bytes_free(&r->columns[i].upper);
        }
        floe_free(r->columns);
        floe_free(r->row_group_offsets);
        floe_free(r);
        return NULL;
}
