/* SPDX-License-Identifier: Apache-2.0 */
/* The values of a flat Parquet column chunk (parquet.thrift PageHeader, Encodings.md), for
 * compaction: every page decompressed and decoded, nulls from the definition levels. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "floe-alloc.h"
#include "ice-pq.h"
#include "ice-writer.h"
#include "parquet-rle.h"
#include "parquet-thrift.h"

#define PAGE_MAX (UINT32_C(256) << 20) /* bytes of a page, decompressed */
#define ROWS_MAX (UINT32_C(16) << 20)  /* rows of a row group read at once */

enum {
        PAGE_DATA = 0,
        PAGE_INDEX = 1,
        PAGE_DICT = 2,
        PAGE_DATA_V2 = 3,
};

struct page_hdr {
        int32_t type, uncompressed, compressed;
        int32_t num_values, encoding, def_encoding; /* v1, and num_values/encoding of v2 */
        int32_t def_len, rep_len;                   /* v2 */
        bool is_compressed;                         /* v2 */
        int32_t dict_num, dict_encoding;
        bool has_data, has_dict;
};

struct chunk_ctx {
        const struct parquet_chunk *meta;
        int32_t phys;
        bool optional;
        struct ice_pq_column *out;
        uint8_t *vals; /* decoded non-null values of the current page, physical form */
        size_t vals_cap;
        uint8_t *dict; /* dictionary entries, physical form */
        size_t n_dict;
        uint32_t *idx; /* levels or dictionary indices */
        size_t idx_cap;
        uint8_t *page; /* a decompressed page body */
        size_t page_cap;
        char *err;
        size_t errsize;
};

void ice_pq_column_clear(struct ice_pq_column *c)
{
        floe_free(c->data);
        floe_free(c->valid);
        floe_free(c->heap);
        *c = (struct ice_pq_column){0};
}

static int fail(struct chunk_ctx *x, int r, const char *what)
{
        snprintf(x->err, x->errsize, "%s", what);
        return r;
}

/* ---- Snappy (google/snappy format_description.txt) ---- */

int ice_snappy_decompress(const uint8_t *in, size_t len, uint8_t *out, size_t out_len)
{
        size_t pos = 0, o = 0;
        uint64_t n = 0;

        for (unsigned shift = 0;; shift += 7) {
                if (pos >= len || shift > 28)
                        return -EBADMSG;
                n |= (uint64_t)(in[pos] & 0x7f) << shift;
                if (!(in[pos++] & 0x80))
                        break;
        }
        if (n != out_len)
                return -EBADMSG;
        while (pos < len) {
                uint8_t tag = in[pos++];
                size_t l, off = 0;

                if ((tag & 3) == 0) {
                        l = (size_t)(tag >> 2) + 1;
                        if (l > 60) {
                                size_t nb = l - 60;

                                if (len - pos < nb)
                                        return -EBADMSG;
                                l = 0;
                                for (size_t i = 0; i < nb; i++)
                                        l |= (size_t)in[pos + i] << (8 * i);
                                l++;
                                pos += nb;
                        }
                        if (len - pos < l || out_len - o < l)
                                return -EBADMSG;
                        memcpy(out + o, in + pos, l);
                        pos += l;
                        o += l;
                        continue;
                }
                if ((tag & 3) == 1) {
                        if (pos >= len)
                                return -EBADMSG;
                        l = ((tag >> 2) & 7) + 4;
                        off = (size_t)(tag >> 5) << 8 | in[pos++];
                } else {
                        size_t nb = (tag & 3) == 2 ? 2 : 4;

                        if (len - pos < nb)
                                return -EBADMSG;
                        l = (size_t)(tag >> 2) + 1;
                        for (size_t i = 0; i < nb; i++)
                                off |= (size_t)in[pos + i] << (8 * i);
                        pos += nb;
                }
                if (off == 0 || off > o || out_len - o < l)
                        return -EBADMSG;
                for (size_t i = 0; i < l; i++, o++)
                        out[o] = out[o - off]; /* may overlap: byte by byte */
        }
        return o == out_len ? 0 : -EBADMSG;
}

static int inflate_gzip(const uint8_t *in, size_t len, uint8_t *out, size_t out_len)
{
        z_stream zs = {0};
        int z;

        if (inflateInit2(&zs, 15 + 32) != Z_OK) /* gzip or zlib header */
                return -ENOMEM;
        zs.next_in = (Bytef *)(uintptr_t)in;
        zs.avail_in = (uInt)len;
        zs.next_out = out;
        zs.avail_out = (uInt)out_len;
        z = inflate(&zs, Z_FINISH);
        inflateEnd(&zs);
        return z == Z_STREAM_END && zs.total_out == out_len ? 0 : -EBADMSG;
}

static int decompress(struct chunk_ctx *x, const uint8_t *in, size_t len, size_t out_len,
                      const uint8_t **ret)
{
        int codec = x->meta->codec, r;

        if (codec == PARQUET_CODEC_UNCOMPRESSED) {
                if (len != out_len)
                        return fail(x, -EBADMSG, "uncompressed page of the wrong size");
                *ret = in;
                return 0;
        }
        if (out_len > x->page_cap) {
                uint8_t *p = floe_realloc(x->page, out_len);

                if (!p)
                        return -ENOMEM;
                x->page = p;
                x->page_cap = out_len;
        }
        if (codec == PARQUET_CODEC_ZSTD) {
                size_t n = ZSTD_decompress(x->page, out_len, in, len);

                r = ZSTD_isError(n) || n != out_len ? -EBADMSG : 0;
        } else if (codec == PARQUET_CODEC_SNAPPY) {
                r = ice_snappy_decompress(in, len, x->page, out_len);
        } else if (codec == PARQUET_CODEC_GZIP) {
                r = inflate_gzip(in, len, x->page, out_len);
        } else {
                snprintf(x->err, x->errsize, "%s pages are not supported",
                         parquet_codec_name(codec));
                return -EOPNOTSUPP;
        }
        if (r < 0)
                return fail(x, r, "a page does not decompress");
        *ret = x->page;
        return 0;
}

/* ---- page headers ---- */

static int sub_header(struct parquet_tdec *d, unsigned t, struct page_hdr *h, int which)
{
        unsigned ft;
        int16_t id;

        if (parquet_tdec_expect(d, t, TT_STRUCT) < 0 || parquet_tdec_struct_begin(d, "page") < 0)
                return d->err;
        for (;;) {
                int32_t v = 0;
                bool b = true;

                if (parquet_tdec_field(d, &ft, &id) < 0)
                        return d->err;
                if (ft == TT_STOP)
                        break;
                if (which == PAGE_DATA_V2 && id == 7) {
                        if (parquet_tdec_bool(d, ft, &b) < 0)
                                return d->err;
                        h->is_compressed = b;
                        continue;
                }
                if (id < 1 ||
                    (which == PAGE_DICT   ? id > 2
                     : which == PAGE_DATA ? id > 4
                                          : id > 6) ||
                    ft != TT_I32) {
                        if (parquet_tdec_skip(d, ft) < 0)
                                return d->err;
                        continue;
                }
                if (parquet_tdec_i32(d, ft, &v) < 0)
                        return d->err;
                if (which == PAGE_DICT) {
                        if (id == 1)
                                h->dict_num = v;
                        else
                                h->dict_encoding = v;
                } else if (which == PAGE_DATA) {
                        if (id == 1)
                                h->num_values = v;
                        else if (id == 2)
                                h->encoding = v;
                        else if (id == 3)
                                h->def_encoding = v;
                } else {
                        int32_t *f[] = {NULL,         &h->num_values, NULL,       NULL,
                                        &h->encoding, &h->def_len,    &h->rep_len};

                        if (f[id])
                                *f[id] = v;
                }
        }
        parquet_tdec_struct_end(d);
        return 0;
}

static int read_header(const uint8_t *p, size_t len, struct page_hdr *h, size_t *ret_used)
{
        struct parquet_limits lim;
        struct parquet_tdec d;
        unsigned t;
        int16_t id;

        parquet_limits_init(&lim);
        parquet_tdec_init(&d, p, len, &lim, NULL);
        *h = (struct page_hdr){.type = -1, .is_compressed = true, .def_encoding = 3};
        if (parquet_tdec_struct_begin(&d, "PageHeader") < 0)
                return d.err;
        for (;;) {
                if (parquet_tdec_field(&d, &t, &id) < 0)
                        return d.err;
                if (t == TT_STOP)
                        break;
                if (id >= 1 && id <= 3) {
                        int32_t v;

                        if (parquet_tdec_i32(&d, t, &v) < 0)
                                return d.err;
                        if (id == 1)
                                h->type = v;
                        else if (id == 2)
                                h->uncompressed = v;
                        else
                                h->compressed = v;
                } else if (id == 5 || id == 8) {
                        h->has_data = true;
                        if (sub_header(&d, t, h, id == 5 ? PAGE_DATA : PAGE_DATA_V2) < 0)
                                return d.err;
                } else if (id == 7) {
                        h->has_dict = true;
                        if (sub_header(&d, t, h, PAGE_DICT) < 0)
                                return d.err;
                } else if (parquet_tdec_skip(&d, t) < 0) {
                        return d.err;
                }
        }
        parquet_tdec_struct_end(&d);
        if (h->uncompressed < 0 || h->compressed < 0 || (uint32_t)h->uncompressed > PAGE_MAX ||
            h->num_values < 0 || h->dict_num < 0 || h->def_len < 0 || h->rep_len < 0)
                return -EBADMSG;
        *ret_used = d.pos;
        return 0;
}

/* ---- values ---- */

static size_t phys_width(int32_t phys)
{
        switch (phys) {
        case PARQUET_BOOLEAN:
                return 1;
        case PARQUET_INT32:
        case PARQUET_FLOAT:
                return 4;
        case PARQUET_BYTE_ARRAY:
                return sizeof(struct parquet_str);
        default:
                return 8;
        }
}

static int grow(void **p, size_t *cap, size_t need)
{
        void *n;

        if (need <= *cap)
                return 0;
        n = floe_realloc(*p, need);
        if (!n)
                return -ENOMEM;
        *p = n;
        *cap = need;
        return 0;
}

/* Appends bytes to the string heap: their offset (as a parquet_str pointer) in *ret. */
static int heap_put(struct ice_pq_column *c, const void *p, size_t n, struct parquet_str *ret)
{
        size_t need = c->heap_len + n;

        if (n > UINT32_MAX || need < n)
                return -EBADMSG;
        if (need > c->heap_cap) {
                size_t cap = c->heap_cap ? c->heap_cap : 4096;

                while (cap < need)
                        cap *= 2;
                if (grow((void **)&c->heap, &c->heap_cap, cap) < 0)
                        return -ENOMEM;
        }
        if (n)
                memmove(c->heap + c->heap_len, p, n);
        ret->ptr = (const char *)(uintptr_t)c->heap_len;
        ret->len = (uint32_t)n;
        c->heap_len = need;
        return 0;
}

static int plain(struct chunk_ctx *x, const uint8_t *p, size_t len, size_t n, uint8_t *out)
{
        size_t w = phys_width(x->phys);
        struct parquet_str *s = (struct parquet_str *)out;
        size_t pos = 0;

        if (x->phys == PARQUET_BOOLEAN) {
                if (len < (n + 7) / 8)
                        return -EBADMSG;
                for (size_t i = 0; i < n; i++)
                        out[i] = (p[i / 8] >> (i % 8)) & 1;
                return 0;
        }
        if (x->phys != PARQUET_BYTE_ARRAY) {
                if (len / w < n)
                        return -EBADMSG;
                if (n) /* an empty page may have no bytes at all */
                        memcpy(out, p, n * w);
                return 0;
        }
        for (size_t i = 0; i < n; i++) {
                uint32_t l;
                int r;

                if (len - pos < 4)
                        return -EBADMSG;
                memcpy(&l, p + pos, 4);
                pos += 4;
                if (len - pos < l)
                        return -EBADMSG;
                r = heap_put(x->out, p + pos, l, &s[i]);
                if (r < 0)
                        return r;
                pos += l;
        }
        return 0;
}

static int delta_strings(struct chunk_ctx *x, const uint8_t *p, size_t len, size_t n, uint8_t *out,
                         bool prefixed)
{
        struct parquet_str *s = (struct parquet_str *)out;
        _cleanup_free_ int32_t *pre = floe_calloc(n + 1, sizeof(int32_t));
        _cleanup_free_ int32_t *lens = floe_calloc(n + 1, sizeof(int32_t));
        struct parquet_str tmp;
        size_t pos = 0, used = 0;
        int r;

        if (!pre || !lens)
                return -ENOMEM;
        if (prefixed) {
                if (parquet_delta_decode(p, len, 4, pre, n, &used) < 0)
                        return -EBADMSG;
                pos += used;
        }
        if (parquet_delta_decode(p + pos, len - pos, 4, lens, n, &used) < 0)
                return -EBADMSG;
        pos += used;
        for (size_t i = 0; i < n; i++) {
                struct parquet_str prev = i ? s[i - 1] : (struct parquet_str){0};
                size_t pl = (size_t)pre[i], start;

                if (pre[i] < 0 || lens[i] < 0 || pl > prev.len || len - pos < (size_t)lens[i])
                        return -EBADMSG;
                /* the prefix from the previous value, already in the heap, then the suffix */
                r = heap_put(x->out, "", 0, &s[i]);
                if (r < 0)
                        return r;
                start = (size_t)(uintptr_t)s[i].ptr;
                if (pl) {
                        r = grow((void **)&x->out->heap, &x->out->heap_cap,
                                 x->out->heap_len + pl + 1);
                        if (r >= 0)
                                r = heap_put(x->out, x->out->heap + (uintptr_t)prev.ptr, pl, &tmp);
                        if (r < 0)
                                return r;
                }
                r = heap_put(x->out, p + pos, (size_t)lens[i], &tmp);
                if (r < 0)
                        return r;
                pos += (size_t)lens[i];
                s[i].ptr = (const char *)(uintptr_t)start;
                s[i].len = (uint32_t)(pl + (size_t)lens[i]);
        }
        return 0;
}

static int ensure_idx(struct chunk_ctx *x, size_t n)
{
        size_t cap = x->idx_cap * sizeof(uint32_t);
        int r = grow((void **)&x->idx, &cap, (n + 1) * sizeof(uint32_t));

        x->idx_cap = cap / sizeof(uint32_t);
        return r;
}

static int decode_values(struct chunk_ctx *x, int enc, const uint8_t *p, size_t len, size_t n)
{
        size_t w = phys_width(x->phys), used;
        uint32_t l;
        int r;

        r = grow((void **)&x->vals, &x->vals_cap, (n + 1) * w);
        if (r < 0)
                return r;
        switch (enc) {
        case PARQUET_ENC_PLAIN:
                return plain(x, p, len, n, x->vals);
        case PARQUET_ENC_PLAIN_DICTIONARY:
        case PARQUET_ENC_RLE_DICTIONARY:
                if (!x->dict)
                        return fail(x, -EBADMSG, "dictionary-encoded page without a dictionary");
                if (len < 1 || p[0] > 32 || ensure_idx(x, n) < 0)
                        return -EBADMSG;
                r = parquet_rle_decode(p + 1, len - 1, p[0], x->idx, n, NULL);
                for (size_t i = 0; r == 0 && i < n; i++) {
                        if (x->idx[i] >= x->n_dict)
                                return fail(x, -EBADMSG, "dictionary index out of range");
                        memcpy(x->vals + i * w, x->dict + (size_t)x->idx[i] * w, w);
                }
                return r;
        case PARQUET_ENC_RLE:
                if (x->phys != PARQUET_BOOLEAN || len < 4 || ensure_idx(x, n) < 0)
                        break;
                memcpy(&l, p, 4);
                if (l > len - 4)
                        return -EBADMSG;
                r = parquet_rle_decode(p + 4, l, 1, x->idx, n, NULL);
                for (size_t i = 0; r == 0 && i < n; i++)
                        x->vals[i] = (uint8_t)x->idx[i];
                return r;
        case PARQUET_ENC_DELTA_BINARY_PACKED:
                if (x->phys != PARQUET_INT32 && x->phys != PARQUET_INT64)
                        break;
                return parquet_delta_decode(p, len, (unsigned)w, x->vals, n, &used);
        case PARQUET_ENC_BYTE_STREAM_SPLIT:
                if (x->phys == PARQUET_BOOLEAN || x->phys == PARQUET_BYTE_ARRAY)
                        break;
                if (len / w < n)
                        return -EBADMSG;
                parquet_split_decode(p, n, (unsigned)w, x->vals);
                return 0;
        case PARQUET_ENC_DELTA_LENGTH_BYTE_ARRAY:
        case PARQUET_ENC_DELTA_BYTE_ARRAY:
                if (x->phys != PARQUET_BYTE_ARRAY)
                        break;
                return delta_strings(x, p, len, n, x->vals, enc == PARQUET_ENC_DELTA_BYTE_ARRAY);
        default:
                break;
        }
        snprintf(x->err, x->errsize, "%s pages of %s are not supported", parquet_encoding_name(enc),
                 parquet_physical_name(x->phys));
        return -EOPNOTSUPP;
}

/* Stores n_vals decoded values at rows [row, row + n_rows) where levels say. */
static int scatter(struct chunk_ctx *x, size_t row, size_t n_rows, const uint32_t *levels,
                   size_t n_vals, enum parquet_kind kind)
{
        struct ice_pq_column *c = x->out;
        size_t ow = ice_writer_width(kind), v = 0;
        uint8_t *o = (uint8_t *)c->data + row * ow;

        for (size_t i = 0; i < n_rows; i++, o += ow) {
                const uint8_t *in;

                if (levels && levels[i] == 0) {
                        c->valid[row + i] = 0;
                        memset(o, 0, ow);
                        continue;
                }
                if (v == n_vals)
                        return -EBADMSG;
                in = x->vals + v++ * phys_width(x->phys);
                c->valid[row + i] = 1;
                if (x->phys == PARQUET_INT32 && kind == PARQUET_KIND_LONG) {
                        int32_t i32;
                        int64_t i64;

                        memcpy(&i32, in, 4);
                        i64 = i32;
                        memcpy(o, &i64, 8);
                } else if (x->phys == PARQUET_FLOAT && kind == PARQUET_KIND_DOUBLE) {
                        float f;
                        double d;

                        memcpy(&f, in, 4);
                        d = f;
                        memcpy(o, &d, 8);
                } else if (x->phys == PARQUET_BOOLEAN) {
                        bool b = *in != 0;

                        memcpy(o, &b, sizeof(b));
                } else {
                        memcpy(o, in, ow);
                }
        }
        return v == n_vals ? 0 : -EBADMSG;
}

static int data_page(struct chunk_ctx *x, const struct page_hdr *h, const uint8_t *body, size_t row,
                     size_t n_rows, enum parquet_kind kind)
{
        const uint8_t *p = body, *vals;
        size_t len, n_vals = n_rows, vlen;
        uint32_t *levels = NULL;
        uint32_t l;
        int r;

        if (h->type == PAGE_DATA) {
                r = decompress(x, body, (size_t)h->compressed, (size_t)h->uncompressed, &p);
                if (r < 0)
                        return r;
                len = (size_t)h->uncompressed;
                if (x->optional) {
                        if (h->def_encoding != PARQUET_ENC_RLE || len < 4)
                                return fail(x, -EOPNOTSUPP, "definition levels not RLE");
                        memcpy(&l, p, 4);
                        r = ensure_idx(x, n_rows);
                        if (r < 0)
                                return r;
                        if (l > len - 4 ||
                            parquet_rle_decode(p + 4, l, 1, x->idx, n_rows, NULL) < 0)
                                return fail(x, -EBADMSG, "bad definition levels");
                        p += 4 + l;
                        len -= 4 + (size_t)l;
                }
                vals = p;
                vlen = len;
        } else {
                size_t lv = (size_t)h->def_len + (size_t)h->rep_len;

                if (lv > (size_t)h->compressed || lv > (size_t)h->uncompressed || h->rep_len)
                        return fail(x, -EBADMSG, "bad level lengths");
                r = x->optional ? ensure_idx(x, n_rows) : 0;
                if (r < 0)
                        return r;
                if (x->optional &&
                    parquet_rle_decode(body, (size_t)h->def_len, 1, x->idx, n_rows, NULL) < 0)
                        return fail(x, -EBADMSG, "bad definition levels");
                vlen = (size_t)h->uncompressed - lv;
                if (h->is_compressed) {
                        r = decompress(x, body + lv, (size_t)h->compressed - lv, vlen, &vals);
                        if (r < 0)
                                return r;
                } else {
                        if ((size_t)h->compressed - lv != vlen)
                                return fail(x, -EBADMSG, "bad page size");
                        vals = body + lv;
                }
        }
        if (x->optional) {
                levels = x->idx;
                n_vals = 0;
                for (size_t i = 0; i < n_rows; i++) {
                        if (levels[i] > 1)
                                return fail(x, -EBADMSG, "bad definition level");
                        n_vals += levels[i];
                }
        }
        /* decode_values may reuse x->idx for dictionary indices: keep the levels apart */
        if (levels) {
                _cleanup_free_ uint32_t *copy = floe_reallocarray(NULL, n_rows + 1, 4);

                if (!copy)
                        return -ENOMEM;
                memcpy(copy, levels, n_rows * 4);
                r = decode_values(x, h->encoding, vals, vlen, n_vals);
                if (r == 0)
                        r = scatter(x, row, n_rows, copy, n_vals, kind);
        } else {
                r = decode_values(x, h->encoding, vals, vlen, n_vals);
                if (r == 0)
                        r = scatter(x, row, n_rows, NULL, n_vals, kind);
        }
        if (r < 0 && !x->err[0])
                fail(x, r, "bad page values");
        return r;
}

static int dict_page(struct chunk_ctx *x, const struct page_hdr *h, const uint8_t *body)
{
        size_t w = phys_width(x->phys), cap = 0;
        const uint8_t *p;
        int r;

        if (x->dict)
                return fail(x, -EBADMSG, "two dictionary pages");
        /* every entry takes a bit at least: no allocation beyond what the page can hold */
        if ((uint64_t)h->dict_num > (uint64_t)h->uncompressed * 8)
                return fail(x, -EBADMSG, "more dictionary entries than bits");
        if (h->dict_encoding != PARQUET_ENC_PLAIN &&
            h->dict_encoding != PARQUET_ENC_PLAIN_DICTIONARY)
                return fail(x, -EOPNOTSUPP, "dictionary not PLAIN");
        r = decompress(x, body, (size_t)h->compressed, (size_t)h->uncompressed, &p);
        if (r < 0)
                return r;
        r = grow((void **)&x->dict, &cap, ((size_t)h->dict_num + 1) * w);
        if (r == 0)
                r = plain(x, p, (size_t)h->uncompressed, (size_t)h->dict_num, x->dict);
        if (r < 0)
                return fail(x, r, "bad dictionary page");
        x->n_dict = (size_t)h->dict_num;
        return 0;
}

int ice_pq_read_chunk(const struct ice_pq_src *src, const struct parquet_footer *f, size_t rg,
                      size_t leaf, enum parquet_kind kind, struct ice_pq_column *ret, char *err,
                      size_t errsize)
{
        const struct parquet_row_group *g = &f->row_groups[rg];
        const struct parquet_chunk *c = &g->columns[leaf];
        struct chunk_ctx x = {.meta = c,
                              .phys = c->type,
                              .optional = f->max_def[leaf] > 0,
                              .out = ret,
                              .err = err,
                              .errsize = errsize};
        uint64_t start = c->data_page_offset;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = (size_t)g->num_rows, row = 0, pos = 0, len;
        int r;

        *ret = (struct ice_pq_column){0};
        err[0] = '\0';
        if (c->has_dictionary_page_offset && c->dictionary_page_offset > 0 &&
            c->dictionary_page_offset < c->data_page_offset)
                start = (uint64_t)c->dictionary_page_offset;
        if (g->num_rows > (int64_t)ROWS_MAX)
                return fail(&x, -EFBIG, "row group of more than 16Mi rows");
        if (c->total_compressed_size <= 0 || (uint64_t)c->total_compressed_size > src->size ||
            start > src->size - (uint64_t)c->total_compressed_size || c->num_values != g->num_rows)
                return fail(&x, -EBADMSG, "column chunk outside the file");
        len = (size_t)c->total_compressed_size;
        buf = floe_malloc(len);
        ret->data = floe_calloc(n + 1, ice_writer_width(kind));
        ret->valid = floe_malloc(n + 1);
        if (!buf || !ret->data || !ret->valid) {
                r = -ENOMEM;
                goto out;
        }
        r = ice_pq_read_at(src, start, len, buf);
        if (r < 0) {
                fail(&x, r, "cannot read a column chunk");
                goto out;
        }
        while (r == 0 && row < n) {
                struct page_hdr h;
                size_t used = 0;

                r = read_header(buf + pos, len - pos, &h, &used);
                if (r < 0 || (size_t)h.compressed > len - pos - used) {
                        r = fail(&x, -EBADMSG, "bad page header");
                        break;
                }
                pos += used;
                if (h.type == PAGE_DICT && h.has_dict) {
                        r = dict_page(&x, &h, buf + pos);
                } else if ((h.type == PAGE_DATA || h.type == PAGE_DATA_V2) && h.has_data) {
                        if ((size_t)h.num_values > n - row) {
                                r = fail(&x, -EBADMSG, "more values than rows");
                                break;
                        }
                        r = data_page(&x, &h, buf + pos, row, (size_t)h.num_values, kind);
                        row += (size_t)h.num_values;
                } else if (h.type != PAGE_INDEX) {
                        r = fail(&x, -EBADMSG, "unknown page type");
                }
                pos += (size_t)h.compressed;
        }
        if (r == 0) {
                bool nulls = false;

                ret->n = n;
                for (size_t i = 0; i < n && !nulls; i++)
                        nulls = !ret->valid[i];
                if (!nulls) {
                        floe_free(ret->valid);
                        ret->valid = NULL;
                }
                if (kind == PARQUET_KIND_STRING) { /* heap offsets become pointers */
                        struct parquet_str *s = ret->data;

                        for (size_t i = 0; i < n; i++)
                                s[i].ptr = ret->heap ? (const char *)ret->heap + (uintptr_t)s[i].ptr
                                                     : "";
                }
        }
out:
        floe_free(x.vals);
        floe_free(x.dict);
        floe_free(x.idx);
        floe_free(x.page);
        if (r < 0)
                ice_pq_column_clear(ret);
        return r;
}
