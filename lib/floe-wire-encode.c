/* SPDX-License-Identifier: Apache-2.0 */
#include <cbor.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "floe-alloc.h"
#include "floe-varint.h"
#include "floe-wire-internal.h"
#include "floe-wire.h"

struct floe_wire_encoder {
        ZSTD_CCtx *cctx;
        int level;
        struct floe_wire_limits lim;
        uint8_t *raw; /* the CBOR map */
        size_t raw_cap;
        uint8_t *out; /* the zstd frame */
        size_t out_cap;
        /* per-series scratch for double columns */
        uint8_t *scale;
        uint32_t *cnt;   /* non-null values per series */
        uint8_t *hinted; /* the series has values with a hint */
        int64_t *last;
        double *amax; /* largest magnitude per series */
        uint32_t scratch_series;
};

struct wbuf {
        uint8_t *p;
        size_t len;
};

int floe_wire_encoder_new(int level, const struct floe_wire_limits *lim,
                          struct floe_wire_encoder **ret)
{
        struct floe_wire_encoder *e;

        if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
                return -EINVAL;
        e = floe_calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->level = level;
        if (lim)
                e->lim = *lim;
        else
                floe_wire_limits_default(&e->lim);
        e->cctx = ZSTD_createCCtx();
        if (!e->cctx) {
                floe_free(e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

struct floe_wire_encoder *floe_wire_encoder_free(struct floe_wire_encoder *e)
{
        if (!e)
                return NULL;
        ZSTD_freeCCtx(e->cctx);
        floe_free(e->raw);
        floe_free(e->out);
        floe_free(e->scale);
        floe_free(e->cnt);
        floe_free(e->hinted);
        floe_free(e->last);
        floe_free(e->amax);
        floe_free(e);
        return NULL;
}

static int ensure(uint8_t **p, size_t *cap, size_t need)
{
        uint8_t *q;

        if (need <= *cap)
                return 0;
        q = floe_realloc(*p, need);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = need;
        return 0;
}

static int ensure_scratch(struct floe_wire_encoder *e, uint32_t nseries)
{
        if (nseries > e->scratch_series) {
                uint8_t *s = floe_realloc(e->scale, nseries);

                if (!s)
                        return -ENOMEM;
                e->scale = s;
                uint32_t *c = floe_reallocarray(e->cnt, nseries, sizeof(*c));

                if (!c)
                        return -ENOMEM;
                e->cnt = c;
                s = floe_realloc(e->hinted, nseries);
                if (!s)
                        return -ENOMEM;
                e->hinted = s;
                int64_t *l = floe_reallocarray(e->last, nseries, sizeof(*l));

                if (!l)
                        return -ENOMEM;
                e->last = l;
                double *a = floe_reallocarray(e->amax, nseries, sizeof(*a));

                if (!a)
                        return -ENOMEM;
                e->amax = a;
                e->scratch_series = nseries;
        }
        return 0;
}

/* Heads are written by libcbor into room the bound below guarantees. */
static void put_uint(struct wbuf *w, uint64_t v)
{
        w->len += cbor_encode_uint(v, w->p + w->len, 9);
}

static void put_int(struct wbuf *w, int64_t v)
{
        if (v >= 0)
                w->len += cbor_encode_uint((uint64_t)v, w->p + w->len, 9);
        else
                w->len += cbor_encode_negint((uint64_t)(-(v + 1)), w->p + w->len, 9);
}

static void put_tstr(struct wbuf *w, const char *s, size_t len)
{
        w->len += cbor_encode_string_start(len, w->p + w->len, 9);
        memcpy(w->p + w->len, s, len);
        w->len += len;
}

static void put_cstr(struct wbuf *w, const char *s)
{
        put_tstr(w, s, strlen(s));
}

static void put_key(struct wbuf *w, const char *key)
{
        put_cstr(w, key);
}

static void put_map(struct wbuf *w, size_t n)
{
        w->len += cbor_encode_map_start(n, w->p + w->len, 9);
}

/* A byte string whose length is known only after its content: the content
 * is written after room for the longest head, then moved down. */
static size_t bstr_begin(struct wbuf *w)
{
        w->len += 9;
        return w->len;
}

static void bstr_end(struct wbuf *w, size_t start)
{
        size_t n = w->len - start;
        uint8_t head[9];
        size_t h = cbor_encode_bytestring_start(n, head, sizeof(head));

        memmove(w->p + start - 9 + h, w->p + start, n);
        memcpy(w->p + start - 9, head, h);
        w->len = start - 9 + h + n;
}

static void put_dict(struct wbuf *w, const struct floe_strdict *d)
{
        w->len += cbor_encode_array_start(d->n, w->p + w->len, 9);
        for (uint32_t i = 0; i < d->n; i++)
                put_tstr(w, d->buf + d->off[i], d->len[i]);
}

static size_t dict_bound(const struct floe_strdict *d)
{
        return 9 + d->used + (size_t)d->n * 9;
}

static int check_batch(const struct floe_wire_encoder *e, const struct floe_batch *b)
{
        const struct floe_wire_limits *l = &e->lim;

        if (b->kind != FLOE_KIND_EVENTS && b->kind != FLOE_KIND_AGGREGATES)
                return -EINVAL;
        if (!floe_identity_valid(b->identity, strnlen(b->identity, sizeof(b->identity))))
                return -EINVAL;
        if (b->nrows > l->max_rows || b->nseries > l->max_series || b->sensors.n > l->max_dict ||
            b->metrics.n > l->max_dict || b->texts.n > l->max_dict)
                return -EINVAL;
        return 0;
}

/* round(v·10^k) as docs/wire-format.md §7 computes it; false when beyond ±2^53. */
static inline bool dec_round(double v, unsigned k, int64_t *ret_m)
{
        double x = v * floe_wire_pow10[k];

        if (!(x > -FLOE_WIRE_MANTISSA_MAX - 1.0 && x < FLOE_WIRE_MANTISSA_MAX + 1.0))
                return false;
        *ret_m = (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
        return true;
}

/* The encoder rule of docs/wire-format.md §7 for one value and scale. */
static inline bool dec_fits(double v, unsigned k)
{
        double x = v * floe_wire_pow10[k], back;
        int64_t m;

        if (!dec_round(v, k, &m))
                return false;
        /* a fit leaves x within |x|·2^-51 of m: anything farther fails without
         * the division */
        if (fabs(x - (double)m) > fabs(x) * 0x1p-50)
                return false;
        back = (double)m / floe_wire_pow10[k];
        return back == v && signbit(back) == signbit(v);
}

/*
 * Below this magnitude at scale k (2^49 / 10^k, with room for the rounding of
 * the bound itself), a value that fits some scale j <= k fits k too: v·10^k is
 * within a quarter of the integer m_j·10^(k-j), which rounds back to v. A series
 * whose values all stay below needs no second pass.
 */
static const double dec_safe[FLOE_WIRE_SCALE_MAX + 1] = {
        0x1p49 / 1e0,  0x1p49 / 1e1,  0x1p49 / 1e2,  0x1p49 / 1e3,  0x1p49 / 1e4,  0x1p49 / 1e5,
        0x1p49 / 1e6,  0x1p49 / 1e7,  0x1p49 / 1e8,  0x1p49 / 1e9,  0x1p49 / 1e10, 0x1p49 / 1e11,
        0x1p49 / 1e12, 0x1p49 / 1e13, 0x1p49 / 1e14, 0x1p49 / 1e15,
};

/* One double column: see docs/wire-format.md §6. */
/* One value of pass 1: the series' scale so far raised until it fits. */
static inline void scale_fit(struct floe_wire_encoder *e, uint32_t s, double v)
{
        unsigned k = e->scale[s];

        if (k == FLOE_WIRE_SCALE_F64 || dec_fits(v, k))
                return;
        while (++k <= FLOE_WIRE_SCALE_MAX && !dec_fits(v, k))
                ;
        e->scale[s] = k > FLOE_WIRE_SCALE_MAX ? FLOE_WIRE_SCALE_F64 : (uint8_t)k;
}

/*
 * One double column: see docs/wire-format.md §6. hint (NULL: none) gives per
 * row 1 + the smallest scale of the value when the parser knew it
 * (floe_batch.decimals): below the magnitudes of dec_safe the search would
 * find exactly the largest of them, without a division per value.
 */
static void put_dcol(struct floe_wire_encoder *e, struct wbuf *w, const struct floe_batch *b,
                     const double *v, const uint8_t *isnull, const uint8_t *hint)
{
        uint32_t nrows = b->nrows, nseries = b->nseries;
        uint32_t ndec = 0, nf64 = 0, nnull = 0;
        bool recheck = false, again = false;
        int uniform = -1;
        size_t start;
        int64_t m = 0;

        memset(e->scale, 0, nseries);
        memset(e->amax, 0, sizeof(*e->amax) * nseries);
        memset(e->cnt, 0, sizeof(*e->cnt) * nseries);
        memset(e->hinted, 0, nseries);
        /* Pass 1: the smallest scale that fits every value of a series, the
         * largest magnitude and the number of values of each series. */
        for (uint32_t i = 0; i < nrows; i++) {
                uint32_t s = b->row_series[i];
                double a = fabs(v[i]);

                if (isnull[i]) {
                        nnull++;
                        continue;
                }
                e->cnt[s]++;
                if (a > e->amax[s])
                        e->amax[s] = a;
                if (hint && hint[i]) {
                        if (e->scale[s] != FLOE_WIRE_SCALE_F64 && hint[i] - 1 > e->scale[s])
                                e->scale[s] = (uint8_t)(hint[i] - 1);
                        e->hinted[s] = 1;
                        continue;
                }
                scale_fit(e, s, v[i]);
        }
        /* Pass 2, only for series with large magnitudes: a value that no longer
         * fits at its series' final scale (possible near 2^53) sends the series
         * to float64. Mantissas are computed again when written rather than
         * kept: 8 bytes per row less memory. A series with hints is searched
         * again without them first, value by value. */
        for (uint32_t s = 0; s < nseries; s++) {
                if (e->cnt[s] && e->scale[s] != FLOE_WIRE_SCALE_F64 &&
                    !(e->amax[s] < dec_safe[e->scale[s]])) {
                        e->amax[s] = -1; /* to be checked again */
                        recheck = true;
                        if (e->hinted[s]) {
                                e->scale[s] = 0;
                                again = true;
                        }
                }
        }
        for (uint32_t i = 0; again && i < nrows; i++) {
                uint32_t s = b->row_series[i];

                if (!isnull[i] && e->amax[s] < 0 && e->hinted[s])
                        scale_fit(e, s, v[i]);
        }
        for (uint32_t i = 0; recheck && i < nrows; i++) {
                uint32_t s = b->row_series[i];

                if (isnull[i] || e->amax[s] >= 0 || e->scale[s] == FLOE_WIRE_SCALE_F64)
                        continue;
                if (!dec_fits(v[i], e->scale[s]))
                        e->scale[s] = FLOE_WIRE_SCALE_F64;
        }
        for (uint32_t s = 0; s < nseries; s++) {
                if (!e->cnt[s])
                        continue;
                if (e->scale[s] == FLOE_WIRE_SCALE_F64)
                        nf64 += e->cnt[s];
                else
                        ndec += e->cnt[s];
                if (uniform < 0)
                        uniform = e->scale[s];
                else if (uniform != e->scale[s])
                        uniform = 256;
        }
        if (uniform < 0)
                uniform = 0;

        put_map(w, 1 + (ndec > 0) + (nf64 > 0) + (nnull > 0));
        put_key(w, "scale");
        if (uniform <= 255) {
                put_uint(w, (uint64_t)uniform);
        } else {
                w->len += cbor_encode_bytestring_start(nseries, w->p + w->len, 9);
                memcpy(w->p + w->len, e->scale, nseries);
                w->len += nseries;
        }
        if (ndec) {
                put_key(w, "dec");
                start = bstr_begin(w);
                memset(e->last, 0, sizeof(*e->last) * nseries);
                for (uint32_t i = 0; i < nrows; i++) {
                        uint32_t s = b->row_series[i];

                        if (isnull[i] || e->scale[s] == FLOE_WIRE_SCALE_F64)
                                continue;
                        dec_round(v[i], e->scale[s], &m); /* fits: checked above */
                        w->len += floe_varint_put(w->p + w->len, floe_zigzag(m - e->last[s]));
                        e->last[s] = m;
                }
                bstr_end(w, start);
        }
        if (nf64) {
                put_key(w, "f64");
                w->len += cbor_encode_tag(FLOE_WIRE_TAG_F64LE, w->p + w->len, 9);
                w->len += cbor_encode_bytestring_start((size_t)nf64 * 8, w->p + w->len, 9);
                for (uint32_t i = 0; i < nrows; i++) {
                        if (isnull[i] || e->scale[b->row_series[i]] != FLOE_WIRE_SCALE_F64)
                                continue;
                        floe_wire_put_f64le(w->p + w->len, v[i]);
                        w->len += 8;
                }
        }
        if (nnull) {
                size_t nb = ((size_t)nrows + 7) / 8;

                put_key(w, "null");
                w->len += cbor_encode_bytestring_start(nb, w->p + w->len, 9);
                memset(w->p + w->len, 0, nb);
                for (uint32_t i = 0; i < nrows; i++)
                        if (isnull[i])
                                w->p[w->len + i / 8] |= (uint8_t)(1u << (i % 8));
                w->len += nb;
        }
}

static size_t dcol_bound(const struct floe_batch *b)
{
        return 64 + 9 + b->nseries + 9 + (size_t)b->nrows * FLOE_VARINT_MAX + 9 + 2 + 9 +
               (size_t)b->nrows / 8 + 1;
}

static void put_series(struct wbuf *w, const struct floe_batch *b)
{
        size_t start;
        uint32_t prev = 0;

        put_key(w, "series");
        start = bstr_begin(w);
        for (uint32_t i = 0; i < b->nseries; i++) {
                const struct floe_series *p = i ? &b->series[i - 1] : &(struct floe_series){0};

                w->len += floe_varint_put(w->p + w->len, floe_zigzag((int64_t)b->series[i].sensor -
                                                                     (int64_t)p->sensor));
                w->len += floe_varint_put(w->p + w->len, floe_zigzag((int64_t)b->series[i].metric -
                                                                     (int64_t)p->metric));
        }
        bstr_end(w, start);

        put_key(w, "s");
        start = bstr_begin(w);
        for (uint32_t i = 0; i < b->nrows; i++) {
                uint32_t s = b->row_series[i];

                w->len += floe_varint_put(w->p + w->len, floe_zigzag((int64_t)s - (int64_t)prev));
                prev = s;
        }
        bstr_end(w, start);
}

static void put_ts(struct wbuf *w, const struct floe_batch *b)
{
        uint64_t prev = 0;
        size_t start;

        put_key(w, "t");
        start = bstr_begin(w);
        for (uint32_t i = 0; i < b->nrows; i++) {
                uint64_t t = (uint64_t)b->ts[i];

                w->len += floe_varint_put(w->p + w->len, floe_zigzag((int64_t)(t - prev)));
                prev = t;
        }
        bstr_end(w, start);
}

static void put_uvarints32(struct wbuf *w, const char *key, const uint32_t *v, uint32_t n)
{
        size_t start;

        put_key(w, key);
        start = bstr_begin(w);
        for (uint32_t i = 0; i < n; i++)
                w->len += floe_varint_put(w->p + w->len, v[i]);
        bstr_end(w, start);
}

static void put_events(struct floe_wire_encoder *e, struct wbuf *w, const struct floe_batch *b)
{
        size_t start;

        put_key(w, "val");
        put_dcol(e, w, b, b->value, b->value_null,
                 b->decimals && b->decimals_rows == b->nrows ? b->decimals : NULL);
        if (b->texts.n) {
                put_key(w, "text");
                put_map(w, 2);
                put_key(w, "dict");
                put_dict(w, &b->texts);
                put_key(w, "idx");
                start = bstr_begin(w);
                for (uint32_t i = 0; i < b->nrows; i++) {
                        uint64_t t = b->text[i] == FLOE_NO_TEXT ? 0 : (uint64_t)b->text[i] + 1;

                        w->len += floe_varint_put(w->p + w->len, t);
                }
                bstr_end(w, start);
        }
}

static void put_aggregates(struct floe_wire_encoder *e, struct wbuf *w, const struct floe_batch *b)
{
        size_t start;

        put_uvarints32(w, "w", b->window_s, b->nrows);
        put_key(w, "n");
        start = bstr_begin(w);
        for (uint32_t i = 0; i < b->nrows; i++)
                w->len += floe_varint_put(w->p + w->len, b->count[i]);
        bstr_end(w, start);
        for (int c = 0; c < FLOE_AGG_NCOLS; c++) {
                put_key(w, floe_agg_col_name((enum floe_agg_col)c));
                put_dcol(e, w, b, b->agg[c], b->agg_null[c], NULL);
        }
}

int floe_wire_encode_raw(struct floe_wire_encoder *e, const struct floe_batch *b,
                         const uint8_t **ret_data, size_t *ret_len)
{
        size_t bound, rows = b->nrows;
        struct wbuf w;
        int r;

        r = check_batch(e, b);
        if (r < 0)
                return r;
        bound = 512 + dict_bound(&b->sensors) + dict_bound(&b->metrics) +
                (size_t)b->nseries * 2 * 10 + 9 + rows * (5 + FLOE_VARINT_MAX) + 18;
        if (b->kind == FLOE_KIND_EVENTS)
                bound += dcol_bound(b) + dict_bound(&b->texts) + rows * 5 + 32;
        else
                bound += rows * (5 + FLOE_VARINT_MAX) + 18 + FLOE_AGG_NCOLS * (dcol_bound(b) + 16);
        r = ensure(&e->raw, &e->raw_cap, bound);
        r = r ?: ensure_scratch(e, b->nseries ? b->nseries : 1);
        if (r < 0)
                return r;

        w = (struct wbuf){.p = e->raw};
        put_map(&w, 12 + (b->kind == FLOE_KIND_EVENTS ? 1 + (b->texts.n > 0) : 2 + FLOE_AGG_NCOLS));
        put_key(&w, "v");
        put_uint(&w, FLOE_WIRE_VERSION);
        put_key(&w, "kind");
        put_cstr(&w, floe_batch_kind_name(b->kind));
        put_key(&w, "id");
        put_cstr(&w, b->identity);
        put_key(&w, "epoch");
        put_uint(&w, b->epoch);
        put_key(&w, "seq");
        put_uint(&w, b->seq);
        put_key(&w, "created");
        put_int(&w, b->created_us);
        put_key(&w, "rows");
        put_uint(&w, b->nrows);
        put_key(&w, "sensors");
        put_dict(&w, &b->sensors);
        put_key(&w, "metrics");
        put_dict(&w, &b->metrics);
        put_series(&w, b);
        put_ts(&w, b);
        if (b->kind == FLOE_KIND_EVENTS)
                put_events(e, &w, b);
        else
                put_aggregates(e, &w, b);
        if (w.len > e->lim.max_decompressed)
                return -E2BIG;
        *ret_data = e->raw;
        *ret_len = w.len;
        return 0;
}

int floe_wire_encode(struct floe_wire_encoder *e, const struct floe_batch *b,
                     const uint8_t **ret_data, size_t *ret_len)
{
        const uint8_t *raw;
        size_t raw_len, n;
        int r;

        r = floe_wire_encode_raw(e, b, &raw, &raw_len);
        if (r < 0)
                return r;
        r = ensure(&e->out, &e->out_cap, ZSTD_compressBound(raw_len));
        if (r < 0)
                return r;
        ZSTD_CCtx_reset(e->cctx, ZSTD_reset_session_and_parameters);
        if (ZSTD_isError(ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_compressionLevel, e->level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_checksumFlag, 1)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_contentSizeFlag, 1)))
                return -EINVAL;
        n = ZSTD_compress2(e->cctx, e->out, e->out_cap, raw, raw_len);
        if (ZSTD_isError(n))
                return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
        if (n > e->lim.max_compressed)
                return -E2BIG;
        *ret_data = e->out;
        *ret_len = n;
        return 0;
}
