/* SPDX-License-Identifier: Apache-2.0 */
/* Column chunks: values into open pages, pages into data page v1 bodies
 * (levels, values; compressed whole), chunks into the file. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "floe-alloc.h"
#include "floe-varint.h"
#include "parquet-internal.h"
#include "parquet-rle.h"

static unsigned dict_bw(const struct parquet_colw *c)
{
        /* width 1 for a one-entry dictionary, as Arrow writes it */
        return c->dict.n <= 2 ? 1 : parquet_bit_width(c->dict.n - 1);
}

/* Encoded size of the open page, roughly; dictionary indices are held as u32,
 * so their buffer also counts at a quarter. */
static uint64_t page_size(const struct parquet_colw *c)
{
        uint64_t n = c->values.len + c->levels.len / 8;

        if (c->dict_mode) {
                uint64_t enc = (uint64_t)c->page_nonnull * dict_bw(c) / 8 + c->levels.len / 8;

                n = enc > n / 4 ? enc : n / 4;
        }
        return n;
}

uint64_t parquet_col_buffered(const struct parquet_colw *c)
{
        return c->pages.len + c->values.len + c->levels.len + c->dict.plain.len;
}

static int put_levels(struct parquet_colw *c, const uint8_t *valid, size_t n, size_t *ret_nonnull)
{
        size_t nonnull = n;
        uint8_t *l;
        int r;

        if (c->required) {
                *ret_nonnull = n;
                return 0;
        }
        r = parquet_buf_reserve(&c->levels, n);
        if (r < 0)
                return r;
        l = c->levels.data + c->levels.len;
        if (!valid) {
                memset(l, 1, n);
        } else {
                for (size_t i = 0; i < n; i++) {
                        l[i] = valid[i] != 0;
                        nonnull -= valid[i] == 0;
                }
        }
        c->levels.len += n;
        *ret_nonnull = nonnull;
        return 0;
}

static void minmax_int32(struct parquet_minmax *m, const int32_t *v, size_t n)
{
        int32_t lo = m->has ? (int32_t)m->imin : INT32_MAX;
        int32_t hi = m->has ? (int32_t)m->imax : INT32_MIN;

        for (size_t i = 0; i < n; i++) {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
        }
        m->imin = lo;
        m->imax = hi;
        m->has = true;
}

static void minmax_int64(struct parquet_minmax *m, const int64_t *v, size_t n)
{
        int64_t lo = m->has ? m->imin : INT64_MAX;
        int64_t hi = m->has ? m->imax : INT64_MIN;

        for (size_t i = 0; i < n; i++) {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
        }
        m->imin = lo;
        m->imax = hi;
        m->has = true;
}

/* NaN is counted, never a bound. */
#define MINMAX_FLOAT(name, type)                                                \
        static uint64_t name(struct parquet_minmax *m, const void *p, size_t n) \
        {                                                                       \
                const type *v = p;                                              \
                double lo = m->has ? m->dmin : INFINITY;                        \
                double hi = m->has ? m->dmax : -INFINITY;                       \
                uint64_t nan = 0;                                               \
                                                                                \
                for (size_t i = 0; i < n; i++) {                                \
                        double x = v[i];                                        \
                                                                                \
                        if (isnan(x)) {                                         \
                                nan++;                                          \
                                continue;                                       \
                        }                                                       \
                        lo = x < lo ? x : lo;                                   \
                        hi = x > hi ? x : hi;                                   \
                }                                                               \
                if (nan < n) {                                                  \
                        m->dmin = lo;                                           \
                        m->dmax = hi;                                           \
                        m->has = true;                                          \
                }                                                               \
                return nan;                                                     \
        }

MINMAX_FLOAT(minmax_float, float)
MINMAX_FLOAT(minmax_double, double)

static void minmax_bool(struct parquet_minmax *m, const uint8_t *v, size_t n)
{
        int64_t lo = m->has ? m->imin : 1, hi = m->has ? m->imax : 0;

        for (size_t i = 0; i < n; i++) {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
        }
        m->imin = lo;
        m->imax = hi;
        m->has = true;
}

static int append_fixed(struct parquet_colw *c, const struct parquet_values *v, size_t start,
                        size_t n)
{
        const uint8_t *valid = v->valid ? v->valid + start : NULL;
        const uint8_t *src = (const uint8_t *)v->data + start * c->width;
        size_t nonnull;
        uint8_t *dst;
        int r;

        r = put_levels(c, valid, n, &nonnull);
        if (r == 0)
                r = parquet_buf_reserve(&c->values, n * c->width);
        if (r < 0)
                return r;
        dst = c->values.data + c->values.len;
        if (!valid || nonnull == n) {
                memcpy(dst, src, n * c->width);
        } else if (c->width == 8) {
                for (size_t i = 0, j = 0; i < n; i++)
                        if (valid[i])
                                memcpy(dst + 8 * j++, src + 8 * i, 8);
        } else if (c->width == 4) {
                for (size_t i = 0, j = 0; i < n; i++)
                        if (valid[i])
                                memcpy(dst + 4 * j++, src + 4 * i, 4);
        } else {
                for (size_t i = 0, j = 0; i < n; i++)
                        if (valid[i])
                                dst[j++] = src[i];
        }
        c->values.len += nonnull * c->width;
        c->page_values += (uint32_t)n;
        c->page_nonnull += (uint32_t)nonnull;
        if (nonnull == 0)
                return 0;
        switch (c->type) {
        case PARQUET_BOOLEAN:
                minmax_bool(&c->mm, dst, nonnull);
                break;
        case PARQUET_INT32:
                minmax_int32(&c->mm, (const int32_t *)dst, nonnull);
                break;
        case PARQUET_INT64:
                minmax_int64(&c->mm, (const int64_t *)dst, nonnull);
                break;
        case PARQUET_FLOAT:
                c->chunk.nan_count += minmax_float(&c->mm, dst, nonnull);
                break;
        case PARQUET_DOUBLE:
                c->chunk.nan_count += minmax_double(&c->mm, dst, nonnull);
                break;
        default:
                return -EINVAL;
        }
        return 0;
}

/* Every dictionary entry occurs in the chunk, so the entries bound it. */
static int fold_dict(struct parquet_colw *c)
{
        for (uint32_t i = 0; i < c->dict.n; i++) {
                uint32_t len;
                const char *p = parquet_dict_entry(&c->dict, i, &len);
                int r = parquet_minmax_str(&c->mm, p, len);

                if (r < 0)
                        return r;
        }
        return 0;
}

/*
 * The dictionary got too big (or does not pay): the open page and the rest of
 * the chunk become PLAIN, as parquet-java's fallback does. A dictionary that
 * no finished page uses is dropped.
 */
static int fallback(struct parquet_writer *w, struct parquet_colw *c)
{
        struct parquet_buf *swap = &w->scratch[SCRATCH_SWAP], tmp;
        const uint32_t *idx = (const uint32_t *)c->values.data;
        int r;

        r = fold_dict(c);
        if (r == 0)
                r = parquet_buf_reserve(swap, c->page_raw);
        if (r < 0)
                return r;
        swap->len = 0;
        for (uint32_t i = 0; i < c->page_nonnull; i++) {
                uint32_t len;
                const char *p = parquet_dict_entry(&c->dict, idx[i], &len);
                uint8_t *o = swap->data + swap->len;

                parquet_put_le32(o, len);
                memcpy(o + 4, p, len);
                swap->len += 4 + (size_t)len;
        }
        tmp = c->values;
        c->values = *swap;
        *swap = tmp;
        if (!c->dict_used)
                parquet_dict_reset(&c->dict);
        c->dict_mode = false;
        parquet_col_forget(c);
        c->page_raw = 0;
        return 0;
}

static unsigned cache_slot(const char *p)
{
        return (unsigned)(((uint64_t)(uintptr_t)p * UINT64_C(0x9e3779b97f4a7c15)) >> 56) %
               PARQUET_STRCACHE;
}

void parquet_col_forget(struct parquet_colw *c)
{
        if (++c->cache_gen == 0) {
                if (c->cache)
                        memset(c->cache, 0, PARQUET_STRCACHE * sizeof(*c->cache));
                c->cache_gen = 1;
        }
}

static int append_str(struct parquet_writer *w, struct parquet_colw *c,
                      const struct parquet_values *v, size_t start, size_t n)
{
        const struct parquet_str *s = (const struct parquet_str *)v->data + start;
        const uint8_t *valid = v->valid ? v->valid + start : NULL;
        const char *last = NULL;
        uint32_t last_len = 0, last_idx = 0;
        int r;

        if (c->dict_mode && !c->cache) {
                c->cache = floe_calloc(PARQUET_STRCACHE, sizeof(*c->cache));
                if (!c->cache)
                        return -ENOMEM;
                c->cache_gen = 1;
        }
        for (size_t i = 0; i < n; i++) {
                bool present = !valid || valid[i];
                const char *p = s[i].ptr ? s[i].ptr : "";
                uint32_t len = s[i].len;

                if (present && !c->dict_mode && c->page_values > 0 &&
                    c->values.len + 4 + (uint64_t)len > w->opts.page_bytes) {
                        r = parquet_col_flush_page(w, c);
                        if (r < 0)
                                return r;
                }
                if (!c->required) {
                        r = parquet_buf_reserve(&c->levels, 1);
                        if (r < 0)
                                return r;
                        c->levels.data[c->levels.len++] = present;
                }
                c->page_values++;
                if (!present)
                        continue;
                c->page_nonnull++;
                if (c->dict_mode) {
                        struct parquet_strcache *e = &c->cache[cache_slot(p)];
                        uint32_t idx;

                        if (e->gen == c->cache_gen && e->ptr == p && e->len == len) {
                                idx = e->idx;
                        } else if (last && len == last_len && memcmp(p, last, len) == 0) {
                                idx = last_idx;
                        } else {
                                r = parquet_dict_intern(&c->dict, p, len, &idx);
                                if (r < 0)
                                        return r;
                                last = p;
                                last_len = len;
                                last_idx = idx;
                        }
                        *e = (struct parquet_strcache){p, len, idx, c->cache_gen};
                        r = parquet_buf_append(&c->values, &idx, 4);
                        if (r < 0)
                                return r;
                        c->page_raw += 4 + (uint64_t)len;
                        if (c->dict.plain.len > w->opts.dict_bytes) {
                                r = fallback(w, c);
                                if (r < 0)
                                        return r;
                        }
                } else {
                        uint8_t *o;

                        r = parquet_buf_reserve(&c->values, 4 + (size_t)len);
                        if (r < 0)
                                return r;
                        o = c->values.data + c->values.len;
                        parquet_put_le32(o, len);
                        memcpy(o + 4, p, len);
                        c->values.len += 4 + (size_t)len;
                        r = parquet_minmax_str(&c->mm, p, len);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int parquet_col_append(struct parquet_writer *w, struct parquet_colw *c,
                       const struct parquet_values *v, size_t start, size_t n)
{
        const struct parquet_options *o = &w->opts;
        int r;

        while (n > 0) {
                size_t k = o->page_rows - c->page_values;

                if (k > n)
                        k = n;
                if (c->width > 0 && k > (o->page_bytes - c->values.len) / c->width + 1)
                        k = (o->page_bytes - c->values.len) / c->width + 1;
                r = c->type == PARQUET_BYTE_ARRAY ? append_str(w, c, v, start, k)
                                                  : append_fixed(c, v, start, k);
                if (r < 0)
                        return r;
                if (c->page_values >= o->page_rows || page_size(c) >= o->page_bytes) {
                        r = parquet_col_flush_page(w, c);
                        if (r < 0)
                                return r;
                }
                start += k;
                n -= k;
        }
        return 0;
}

/* Header and (compressed) body to dest, or to the sink when dest is NULL. */
static int put_page(struct parquet_writer *w, struct parquet_colw *c, struct parquet_buf *dest,
                    int type, int enc, const uint8_t *body, size_t len, uint32_t num_values)
{
        struct parquet_buf *hdr = &w->scratch[SCRATCH_HDR];
        const uint8_t *payload;
        size_t plen;
        int r;

        if (len > INT32_MAX)
                return -E2BIG;
        r = parquet_writer_compress(w, body, len, &payload, &plen);
        if (r < 0)
                return r;
        if (plen > INT32_MAX)
                return -E2BIG;
        hdr->len = 0;
        r = parquet_meta_page_header(hdr, type, (uint32_t)len, (uint32_t)plen, num_values, enc);
        if (r < 0)
                return r;
        if (dest) {
                r = parquet_buf_reserve(dest, hdr->len + plen);
                if (r < 0)
                        return r;
                memcpy(dest->data + dest->len, hdr->data, hdr->len);
                memcpy(dest->data + dest->len + hdr->len, payload, plen);
                dest->len += hdr->len + plen;
        } else {
                r = parquet_writer_emit(w, hdr->data, hdr->len);
                if (r == 0)
                        r = parquet_writer_emit(w, payload, plen);
                if (r < 0)
                        return r;
        }
        c->chunk.total_uncompressed += hdr->len + len;
        c->chunk.total_compressed += hdr->len + plen;
        return 0;
}

/* v1 data pages: definition levels behind a u32 length. */
static int put_def_levels(struct parquet_colw *c, struct parquet_buf *body)
{
        size_t at = body->len;
        int r;

        r = parquet_buf_reserve(body, 4 + FLOE_VARINT_MAX + 1);
        if (r < 0)
                return r;
        body->len += 4;
        if (c->page_nonnull == c->page_values || c->page_nonnull == 0) {
                /* one RLE run: all present or all null */
                body->len += floe_varint_put(body->data + body->len, (uint64_t)c->page_values << 1);
                body->data[body->len++] = c->page_nonnull > 0;
        } else {
                r = parquet_rle_encode_u8(body, c->levels.data, c->levels.len, 1);
                if (r < 0)
                        return r;
        }
        parquet_put_le32(body->data + at, (uint32_t)(body->len - at - 4));
        return 0;
}

static int put_bools(struct parquet_colw *c, struct parquet_buf *body)
{
        size_t n = c->page_nonnull, bytes = (n + 7) / 8;
        uint8_t *o;
        int r;

        r = parquet_buf_reserve(body, bytes);
        if (r < 0)
                return r;
        o = body->data + body->len;
        memset(o, 0, bytes);
        for (size_t i = 0; i < n; i++)
                o[i / 8] |= (uint8_t)((c->values.data[i] != 0) << (i % 8));
        body->len += bytes;
        return 0;
}

int parquet_col_flush_page(struct parquet_writer *w, struct parquet_colw *c)
{
        struct parquet_buf *body = &w->scratch[SCRATCH_BODY];
        const uint8_t *payload;
        size_t plen;
        int enc, r;

        if (c->page_values == 0)
                return 0;
        /* parquet-java keeps a chunk's dictionary only when its first page gets smaller */
        if (c->dict_mode && !c->dict_checked && c->page_nonnull > 0) {
                c->dict_checked = true;
                if ((uint64_t)c->page_nonnull * dict_bw(c) / 8 + c->dict.plain.len >= c->page_raw) {
                        r = fallback(w, c);
                        if (r < 0)
                                return r;
                }
        }
        body->len = 0;
        if (!c->required) {
                r = put_def_levels(c, body);
                if (r < 0)
                        return r;
        }
        enc = PARQUET_ENC_PLAIN;
        if (c->page_nonnull == 0) {
                /* no values: PLAIN, whatever the column's encoding */
        } else if (c->dict_mode) {
                unsigned bw = dict_bw(c);

                enc = PARQUET_ENC_RLE_DICTIONARY;
                r = parquet_buf_append(body, &(uint8_t){(uint8_t)bw}, 1);
                if (r == 0)
                        r = parquet_rle_encode(body, (const uint32_t *)c->values.data,
                                               c->page_nonnull, bw);
                if (r < 0)
                        return r;
                c->dict_used = true;
        } else if (c->type == PARQUET_BOOLEAN) {
                r = put_bools(c, body);
                if (r < 0)
                        return r;
        } else if (c->value_enc == PARQUET_ENC_DELTA_BINARY_PACKED) {
                enc = c->value_enc;
                r = parquet_delta_encode(body, c->values.data, c->page_nonnull, c->width);
                if (r < 0)
                        return r;
        } else if (c->value_enc == PARQUET_ENC_BYTE_STREAM_SPLIT) {
                enc = c->value_enc;
                r = parquet_split_encode(body, c->values.data, c->page_nonnull, c->width);
                if (r < 0)
                        return r;
        } else if (body->len > 0) {
                r = parquet_buf_append(body, c->values.data, c->values.len);
                if (r < 0)
                        return r;
        }
        if (enc == PARQUET_ENC_PLAIN && body->len == 0) {
                payload = c->values.data; /* PLAIN values alone: no copy */
                plen = c->values.len;
        } else {
                payload = body->data;
                plen = body->len;
        }
        r = put_page(w, c, &c->pages, PAGE_DATA, enc, payload, plen, c->page_values);
        if (r < 0)
                return r;
        c->chunk.num_values += c->page_values;
        c->chunk.null_count += c->page_values - c->page_nonnull;
        c->chunk.encodings |= ENC_BIT(enc);
        c->chunk.data_pages[enc]++;
        c->values.len = 0;
        c->levels.len = 0;
        c->page_values = 0;
        c->page_nonnull = 0;
        c->page_raw = 0;
        return 0;
}

int parquet_col_write_chunk(struct parquet_writer *w, struct parquet_colw *c,
                            struct parquet_wchunk *ret)
{
        int r;

        r = parquet_col_flush_page(w, c);
        if (r == 0 && c->dict_mode)
                r = fold_dict(c);
        if (r < 0)
                return r;
        c->chunk.offset = w->offset;
        if (c->dict_used) {
                r = put_page(w, c, NULL, PAGE_DICTIONARY, PARQUET_ENC_PLAIN, c->dict.plain.data,
                             c->dict.plain.len, c->dict.n);
                if (r < 0)
                        return r;
                c->chunk.has_dict = true;
                c->chunk.encodings |= ENC_BIT(PARQUET_ENC_PLAIN);
        }
        c->chunk.data_page_offset = w->offset;
        r = parquet_writer_emit(w, c->pages.data, c->pages.len);
        if (r < 0)
                return r;
        if (!c->required)
                c->chunk.encodings |= ENC_BIT(PARQUET_ENC_RLE);
        r = parquet_minmax_finish(&c->mm, c->type, w->opts.stats_max_bytes, &c->chunk);
        if (r < 0)
                return r;
        *ret = c->chunk;
        c->chunk = (struct parquet_wchunk){0};
        c->pages.len = 0;
        parquet_dict_reset(&c->dict);
        parquet_col_forget(c);
        c->dict_mode = c->type == PARQUET_BYTE_ARRAY && w->opts.dict_bytes > 0;
        c->dict_used = false;
        c->dict_checked = false;
        parquet_minmax_reset(&c->mm);
        return 0;
}

void parquet_col_done(struct parquet_colw *c)
{
        parquet_buf_done(&c->values);
        parquet_buf_done(&c->levels);
        parquet_buf_done(&c->pages);
        parquet_dict_done(&c->dict);
        floe_free(c->cache);
        parquet_minmax_done(&c->mm);
        parquet_wchunk_done(&c->chunk);
}
