/* SPDX-License-Identifier: Apache-2.0 */
#include <cbor.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "floe-alloc.h"
#include "floe-varint.h"
#include "floe-wire-internal.h"
#include "floe-wire.h"

#define ZSTD_MAGIC 0xFD2FB528u

struct floe_wire_decoder {
        ZSTD_DCtx *dctx;
        struct floe_wire_limits lim;
        uint8_t *raw;
        size_t raw_cap;
        int64_t *last; /* per-series mantissa */
        uint32_t last_cap;
};

/* ---- the map's fields ---- */

struct bytes {
        const uint8_t *p;
        size_t len;
        bool present;
};

struct dcol {
        bool present;
        bool scale_is_bytes;
        uint64_t scale;
        struct bytes scale_b;
        struct bytes dec;
        struct bytes f64;
        struct bytes null;
};

enum key {
        K_V,
        K_KIND,
        K_ID,
        K_EPOCH,
        K_SEQ,
        K_CREATED,
        K_ROWS,
        K_SENSORS,
        K_METRICS,
        K_SERIES,
        K_S,
        K_T,
        K_VAL,
        K_TEXT,
        K_W,
        K_N,
        K_SUM,
        K_MIN,
        K_MAX,
        K_FIRST,
        K_LAST,
        K_MAX_,
};

static const char *const key_names[K_MAX_] = {
        "v", "kind", "id",   "epoch", "seq", "created", "rows", "sensors", "metrics", "series", "s",
        "t", "val",  "text", "w",     "n",   "sum",     "min",  "max",     "first",   "last",
};

/* Keys each kind requires (1) or allows (2). */
static const uint8_t key_use[3][K_MAX_] = {
        [FLOE_KIND_EVENTS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0, 0, 0, 0, 0, 0, 0},
        [FLOE_KIND_AGGREGATES] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1},
};

struct fields {
        bool seen[K_MAX_];
        uint64_t rows;
        struct bytes series, s, t, w, n, text_idx;
        struct dcol val;
        struct dcol agg[FLOE_AGG_NCOLS];
};

static int key_lookup(const struct item *it)
{
        for (int k = 0; k < K_MAX_; k++)
                if (strlen(key_names[k]) == it->len && memcmp(key_names[k], it->p, it->len) == 0)
                        return k;
        return -1;
}

static int get_bytes(struct rd *r, struct bytes *ret, const char *what)
{
        struct item it;
        int ret_ = floe_wire_rd_expect(r, &it, IT_BSTR, what);

        if (ret_ < 0)
                return ret_;
        *ret = (struct bytes){.p = it.p, .len = it.len, .present = true};
        return 0;
}

static int get_dcol(struct rd *r, struct dcol *c, const char *col)
{
        static const char *const names[] = {"scale", "dec", "f64", "null"};
        bool seen[4] = {false};
        struct item it;
        int ret;

        ret = floe_wire_rd_expect(r, &it, IT_MAP, col);
        if (ret < 0)
                return ret;
        if (it.u > 4)
                return floe_wire_fail(r->err, FLOE_WIRE_UNKNOWN_KEY,
                                      "%s: %" PRIu64 " keys, at most 4", col, it.u);
        c->present = true;
        for (uint64_t i = 0, n = it.u; i < n; i++) {
                int k = -1;

                ret = floe_wire_rd_expect(r, &it, IT_TSTR, col);
                if (ret < 0)
                        return ret;
                for (int j = 0; j < 4; j++)
                        if (strlen(names[j]) == it.len && memcmp(names[j], it.p, it.len) == 0)
                                k = j;
                if (k < 0)
                        return floe_wire_fail(r->err, FLOE_WIRE_UNKNOWN_KEY, "%s: key \"%.*s\"",
                                              col, (int)(it.len > 32 ? 32 : it.len),
                                              (const char *)it.p);
                if (seen[k])
                        return floe_wire_fail(r->err, FLOE_WIRE_DUPLICATE_KEY, "%s.%s", col,
                                              names[k]);
                seen[k] = true;
                switch (k) {
                case 0:
                        ret = floe_wire_rd_next(r, &it, col);
                        if (ret < 0)
                                return ret;
                        if (it.t == IT_UINT) {
                                c->scale = it.u;
                        } else if (it.t == IT_BSTR) {
                                c->scale_is_bytes = true;
                                c->scale_b =
                                        (struct bytes){.p = it.p, .len = it.len, .present = true};
                        } else {
                                return floe_wire_fail(
                                        r->err, FLOE_WIRE_BAD_TYPE,
                                        "%s.scale: expected unsigned integer or byte string", col);
                        }
                        break;
                case 1:
                        ret = get_bytes(r, &c->dec, col);
                        break;
                case 2:
                        ret = floe_wire_rd_expect(r, &it, IT_TAG, col);
                        if (ret == 0 && it.u != FLOE_WIRE_TAG_F64LE)
                                return floe_wire_fail(r->err, FLOE_WIRE_BAD_TYPE,
                                                      "%s.f64: tag %" PRIu64 ", expected %d", col,
                                                      it.u, FLOE_WIRE_TAG_F64LE);
                        ret = ret ?: get_bytes(r, &c->f64, col);
                        break;
                default:
                        ret = get_bytes(r, &c->null, col);
                        break;
                }
                if (ret < 0)
                        return ret;
        }
        if (!seen[0])
                return floe_wire_fail(r->err, FLOE_WIRE_MISSING_KEY, "%s.scale", col);
        return 0;
}

static int get_dict(struct rd *r, struct floe_strdict *d, const struct floe_wire_limits *lim,
                    bool text, const char *what)
{
        struct item it;
        uint64_t n;
        int ret;

        ret = floe_wire_rd_expect(r, &it, IT_ARRAY, what);
        if (ret < 0)
                return ret;
        n = it.u;
        if (n > lim->max_dict)
                return floe_wire_fail(r->err, FLOE_WIRE_DICT_TOO_LARGE,
                                      "%s: %" PRIu64 " entries, limit %u", what, n, lim->max_dict);
        for (uint64_t i = 0; i < n; i++) {
                uint32_t idx;
                bool added;

                ret = floe_wire_rd_expect(r, &it, IT_TSTR, what);
                if (ret < 0)
                        return ret;
                if (text) {
                        if (it.len > lim->max_text_len)
                                return floe_wire_fail(r->err, FLOE_WIRE_STRING_TOO_LONG,
                                                      "%s[%" PRIu64 "]: %zu bytes, limit %u", what,
                                                      i, it.len, lim->max_text_len);
                        if (memchr(it.p, 0, it.len) || !floe_utf8_valid((const char *)it.p, it.len))
                                return floe_wire_fail(r->err, FLOE_WIRE_BAD_STRING,
                                                      "%s[%" PRIu64 "]: NUL or invalid UTF-8", what,
                                                      i);
                } else {
                        ret = floe_name_check((const char *)it.p, it.len, lim->max_name_len);
                        if (ret == -ENAMETOOLONG)
                                return floe_wire_fail(r->err, FLOE_WIRE_STRING_TOO_LONG,
                                                      "%s[%" PRIu64 "]: %zu bytes, limit %u", what,
                                                      i, it.len, lim->max_name_len);
                        if (ret < 0)
                                return floe_wire_fail(
                                        r->err, FLOE_WIRE_BAD_STRING, "%s[%" PRIu64 "]: %s", what,
                                        i,
                                        ret == -EINVAL ? "empty"
                                                       : "invalid UTF-8 or control character");
                }
                ret = floe_strdict_add(d, (const char *)it.p, it.len, false, lim->max_dict, &idx,
                                       &added);
                if (ret < 0)
                        return floe_wire_fail(r->err, FLOE_WIRE_NOMEM, "%s", what);
                if (!added)
                        return floe_wire_fail(r->err, FLOE_WIRE_DUPLICATE_ENTRY,
                                              "%s[%" PRIu64 "] repeats [%u]", what, i, idx);
        }
        return 0;
}

static int get_text(struct rd *r, struct fields *f, struct floe_batch *b,
                    const struct floe_wire_limits *lim)
{
        bool seen_dict = false, seen_idx = false;
        struct item it;
        int ret;

        ret = floe_wire_rd_expect(r, &it, IT_MAP, "text");
        if (ret < 0)
                return ret;
        if (it.u != 2)
                return floe_wire_fail(r->err, FLOE_WIRE_BAD_TYPE,
                                      "text: %" PRIu64 " keys, expected 2", it.u);
        for (int i = 0; i < 2; i++) {
                ret = floe_wire_rd_expect(r, &it, IT_TSTR, "text");
                if (ret < 0)
                        return ret;
                if (it.len == 4 && memcmp(it.p, "dict", 4) == 0 && !seen_dict) {
                        seen_dict = true;
                        ret = get_dict(r, &b->texts, lim, true, "text.dict");
                } else if (it.len == 3 && memcmp(it.p, "idx", 3) == 0 && !seen_idx) {
                        seen_idx = true;
                        ret = get_bytes(r, &f->text_idx, "text.idx");
                } else {
                        return floe_wire_fail(r->err, FLOE_WIRE_UNKNOWN_KEY,
                                              "text: unexpected key");
                }
                if (ret < 0)
                        return ret;
        }
        return 0;
}

static int get_int64(struct rd *r, int64_t *ret, const char *what)
{
        struct item it;
        int ret_ = floe_wire_rd_next(r, &it, what);

        if (ret_ < 0)
                return ret_;
        if (it.t == IT_UINT && it.u <= INT64_MAX)
                *ret = (int64_t)it.u;
        else if (it.t == IT_NEGINT && it.u <= INT64_MAX)
                *ret = -(int64_t)it.u - 1;
        else
                return floe_wire_fail(r->err,
                                      it.t == IT_UINT || it.t == IT_NEGINT ? FLOE_WIRE_BAD_VALUE
                                                                           : FLOE_WIRE_BAD_TYPE,
                                      "%s: expected a 64-bit signed integer", what);
        return 0;
}

static int get_field(struct rd *r, int k, struct fields *f, struct floe_batch *b,
                     const struct floe_wire_limits *lim)
{
        struct item it;
        int ret = 0;

        switch (k) {
        case K_ID:
                ret = floe_wire_rd_expect(r, &it, IT_TSTR, "id");
                if (ret < 0)
                        return ret;
                if (it.len > FLOE_IDENTITY_MAX || !floe_identity_valid((const char *)it.p, it.len))
                        return floe_wire_fail(r->err, FLOE_WIRE_BAD_IDENTITY, "id \"%.*s\"",
                                              (int)(it.len > 64 ? 64 : it.len), (const char *)it.p);
                memcpy(b->identity, it.p, it.len);
                b->identity[it.len] = '\0';
                return 0;
        case K_EPOCH:
        case K_SEQ:
        case K_ROWS:
                ret = floe_wire_rd_expect(r, &it, IT_UINT, key_names[k]);
                if (ret < 0)
                        return ret;
                if (k == K_EPOCH)
                        b->epoch = it.u;
                else if (k == K_SEQ)
                        b->seq = it.u;
                else
                        f->rows = it.u;
                return 0;
        case K_CREATED:
                return get_int64(r, &b->created_us, "created");
        case K_SENSORS:
                return get_dict(r, &b->sensors, lim, false, "sensors");
        case K_METRICS:
                return get_dict(r, &b->metrics, lim, false, "metrics");
        case K_SERIES:
                return get_bytes(r, &f->series, "series");
        case K_S:
                return get_bytes(r, &f->s, "s");
        case K_T:
                return get_bytes(r, &f->t, "t");
        case K_W:
                return get_bytes(r, &f->w, "w");
        case K_N:
                return get_bytes(r, &f->n, "n");
        case K_VAL:
                return get_dcol(r, &f->val, "val");
        case K_TEXT:
                return get_text(r, f, b, lim);
        default:
                return get_dcol(r, &f->agg[k - K_SUM], key_names[k]);
        }
}

/* The map's head, "v" first (the versioning rule), then the kind. */
static int get_head(struct rd *r, uint64_t *ret_n, enum floe_batch_kind *ret_kind)
{
        enum floe_batch_kind kind;
        struct item it;
        char name[16];
        int ret;

        ret = floe_wire_rd_next(r, &it, "batch");
        if (ret < 0)
                return ret;
        if (it.t != IT_MAP)
                return floe_wire_fail(r->err, FLOE_WIRE_NOT_A_MAP, "top level is a %s",
                                      floe_wire_type_names[it.t]);
        *ret_n = it.u;
        if (it.u < 2)
                return floe_wire_fail(r->err, FLOE_WIRE_MISSING_KEY, "v");
        ret = floe_wire_rd_expect(r, &it, IT_TSTR, "first key");
        if (ret < 0)
                return ret;
        if (it.len != 1 || it.p[0] != 'v')
                return floe_wire_fail(r->err, FLOE_WIRE_MISSING_KEY, "the first key must be \"v\"");
        ret = floe_wire_rd_expect(r, &it, IT_UINT, "v");
        if (ret < 0)
                return ret;
        if (it.u != FLOE_WIRE_VERSION)
                return floe_wire_fail(r->err, FLOE_WIRE_UNSUPPORTED_VERSION,
                                      "version %" PRIu64 ", this decoder reads %d", it.u,
                                      FLOE_WIRE_VERSION);
        ret = floe_wire_rd_expect(r, &it, IT_TSTR, "second key");
        if (ret < 0)
                return ret;
        if (it.len != 4 || memcmp(it.p, "kind", 4) != 0)
                return floe_wire_fail(r->err, FLOE_WIRE_MISSING_KEY,
                                      "the second key must be \"kind\"");
        ret = floe_wire_rd_expect(r, &it, IT_TSTR, "kind");
        if (ret < 0)
                return ret;
        if (it.len >= sizeof(name))
                return floe_wire_fail(r->err, FLOE_WIRE_BAD_KIND, "kind is %zu bytes long", it.len);
        memcpy(name, it.p, it.len);
        name[it.len] = '\0';
        if (floe_batch_kind_from_name(name, &kind) < 0)
                return floe_wire_fail(r->err, FLOE_WIRE_BAD_KIND, "kind \"%s\"", name);
        *ret_kind = kind;
        return 0;
}

static int get_fields(struct rd *r, struct fields *f, struct floe_batch *b,
                      const struct floe_wire_limits *lim)
{
        enum floe_batch_kind kind = FLOE_KIND_EVENTS;
        struct item it;
        uint64_t n = 0;
        int ret;

        ret = get_head(r, &n, &kind);
        if (ret < 0)
                return ret;
        floe_batch_set_kind(b, kind);
        f->seen[K_V] = f->seen[K_KIND] = true;
        for (uint64_t i = 2; i < n; i++) {
                int k;

                ret = floe_wire_rd_expect(r, &it, IT_TSTR, "key");
                if (ret < 0)
                        return ret;
                k = key_lookup(&it);
                if (k < 0 && it.len >= 2 && memcmp(it.p, "x-", 2) == 0) {
                        ret = floe_wire_rd_skip(r, 0, "extension");
                        if (ret < 0)
                                return ret;
                        continue;
                }
                if (k < 0 || !key_use[kind][k])
                        return floe_wire_fail(r->err, FLOE_WIRE_UNKNOWN_KEY,
                                              "\"%.*s\" in a %s batch",
                                              (int)(it.len > 32 ? 32 : it.len), (const char *)it.p,
                                              floe_batch_kind_name(kind));
                if (f->seen[k])
                        return floe_wire_fail(r->err, FLOE_WIRE_DUPLICATE_KEY, "\"%s\"",
                                              key_names[k]);
                f->seen[k] = true;
                ret = get_field(r, k, f, b, lim);
                if (ret < 0)
                        return ret;
        }
        if (r->pos != r->len)
                return floe_wire_fail(r->err, FLOE_WIRE_CBOR_TRAILING, "%zu bytes after the map",
                                      r->len - r->pos);
        for (int k = 0; k < K_MAX_; k++)
                if (key_use[kind][k] == 1 && !f->seen[k])
                        return floe_wire_fail(r->err, FLOE_WIRE_MISSING_KEY, "\"%s\"",
                                              key_names[k]);
        return 0;
}

/* ---- columns ---- */

static int col_end(struct floe_wire_error *err, const struct bytes *c, size_t pos, const char *what)
{
        if (pos != c->len)
                return floe_wire_fail(err, FLOE_WIRE_COLUMN_LENGTH,
                                      "%s: %zu bytes left after the last row", what, c->len - pos);
        return 0;
}

static int bad_varint(struct floe_wire_error *err, const char *what, uint32_t row)
{
        return floe_wire_fail(err, FLOE_WIRE_BAD_VARINT,
                              "%s: row %u: truncated or non-canonical varint", what, row);
}

static int decode_series(struct floe_wire_error *err, const struct fields *f, struct floe_batch *b)
{
        const struct bytes *c = &f->series;
        int64_t si = 0, mi = 0;
        size_t pos = 0;

        while (pos < c->len) {
                uint64_t ds, dm;
                uint32_t idx;
                bool added;
                int ret;

                if (floe_varint_get(c->p, c->len, &pos, &ds) < 0 ||
                    floe_varint_get(c->p, c->len, &pos, &dm) < 0)
                        return bad_varint(err, "series", b->nseries);
                /* indexes are below 2^32, so a delta beyond that is out of range anyway */
                si = ds > UINT32_MAX * 2ULL ? -1 : si + floe_unzigzag(ds);
                mi = dm > UINT32_MAX * 2ULL ? -1 : mi + floe_unzigzag(dm);
                if (si < 0 || mi < 0 || si >= b->sensors.n || mi >= b->metrics.n)
                        return floe_wire_fail(err, FLOE_WIRE_BAD_INDEX,
                                              "series[%u]: (%" PRId64 ", %" PRId64
                                              ") outside %u sensors, %u metrics",
                                              b->nseries, si, mi, b->sensors.n, b->metrics.n);
                if (b->nseries >= b->lim.max_series)
                        return floe_wire_fail(err, FLOE_WIRE_TOO_MANY_SERIES, "more than %u series",
                                              b->lim.max_series);
                ret = floe_batch_add_series_raw(b, (uint32_t)si, (uint32_t)mi, &idx, &added);
                if (ret < 0)
                        return floe_wire_fail(err, FLOE_WIRE_NOMEM, "series");
                if (!added)
                        return floe_wire_fail(err, FLOE_WIRE_DUPLICATE_ENTRY,
                                              "series[%u] repeats [%u]", b->nseries, idx);
        }
        return 0;
}

static int decode_rows_index(struct floe_wire_error *err, const struct fields *f,
                             struct floe_batch *b)
{
        const struct bytes *c = &f->s;
        uint32_t prev = 0;
        size_t pos = 0;

        for (uint32_t i = 0; i < b->nrows; i++) {
                uint64_t u;
                int64_t s;

                if (floe_varint_get(c->p, c->len, &pos, &u) < 0)
                        return bad_varint(err, "s", i);
                s = (int64_t)prev + floe_unzigzag(u);
                if (s < 0 || s >= (int64_t)b->nseries)
                        return floe_wire_fail(err, FLOE_WIRE_BAD_INDEX,
                                              "s: row %u: series %" PRId64 " outside %u", i, s,
                                              b->nseries);
                b->row_series[i] = prev = (uint32_t)s;
        }
        return col_end(err, c, pos, "s");
}

static int decode_ts(struct floe_wire_error *err, const struct fields *f, struct floe_batch *b)
{
        const struct bytes *c = &f->t;
        uint64_t prev = 0;
        size_t pos = 0;

        for (uint32_t i = 0; i < b->nrows; i++) {
                uint64_t u;

                if (floe_varint_get(c->p, c->len, &pos, &u) < 0)
                        return bad_varint(err, "t", i);
                prev += (uint64_t)floe_unzigzag(u);
                b->ts[i] = (int64_t)prev;
        }
        return col_end(err, c, pos, "t");
}

static int decode_dcol(struct floe_wire_decoder *d, struct floe_wire_error *err,
                       const struct dcol *c, struct floe_batch *b, double *v, uint8_t *isnull,
                       const char *what)
{
        uint32_t nrows = b->nrows;
        size_t dpos = 0, fpos = 0;
        int uniform = -1;

        if (c->null.present) {
                size_t nb = ((size_t)nrows + 7) / 8;

                if (c->null.len != nb)
                        return floe_wire_fail(err, FLOE_WIRE_COLUMN_LENGTH,
                                              "%s.null: %zu bytes for %u rows", what, c->null.len,
                                              nrows);
                if (nrows % 8 && (c->null.p[nb - 1] >> (nrows % 8)))
                        return floe_wire_fail(err, FLOE_WIRE_BAD_VALUE, "%s.null: padding bits set",
                                              what);
                for (uint32_t i = 0; i < nrows; i++)
                        isnull[i] = (c->null.p[i / 8] >> (i % 8)) & 1;
        } else if (nrows) {
                memset(isnull, 0, nrows);
        }
        if (c->scale_is_bytes) {
                if (c->scale_b.len != b->nseries)
                        return floe_wire_fail(err, FLOE_WIRE_COLUMN_LENGTH,
                                              "%s.scale: %zu bytes for %u series", what,
                                              c->scale_b.len, b->nseries);
                for (uint32_t s = 0; s < b->nseries; s++)
                        if (c->scale_b.p[s] > FLOE_WIRE_SCALE_MAX &&
                            c->scale_b.p[s] != FLOE_WIRE_SCALE_F64)
                                return floe_wire_fail(err, FLOE_WIRE_BAD_VALUE, "%s.scale[%u] = %u",
                                                      what, s, c->scale_b.p[s]);
        } else {
                if (c->scale > FLOE_WIRE_SCALE_MAX && c->scale != FLOE_WIRE_SCALE_F64)
                        return floe_wire_fail(err, FLOE_WIRE_BAD_VALUE, "%s.scale = %" PRIu64, what,
                                              c->scale);
                uniform = (int)c->scale;
        }
        if (c->f64.len % 8)
                return floe_wire_fail(err, FLOE_WIRE_COLUMN_LENGTH,
                                      "%s.f64: %zu bytes, not a multiple of 8", what, c->f64.len);
        if (b->nseries)
                memset(d->last, 0, sizeof(*d->last) * b->nseries);
        for (uint32_t i = 0; i < nrows; i++) {
                uint32_t s = b->row_series[i];
                unsigned k = uniform >= 0 ? (unsigned)uniform : c->scale_b.p[s];

                if (isnull[i]) {
                        v[i] = 0.0;
                        continue;
                }
                if (k == FLOE_WIRE_SCALE_F64) {
                        if (fpos + 8 > c->f64.len)
                                return floe_wire_fail(err, FLOE_WIRE_COLUMN_LENGTH,
                                                      "%s.f64: ends before row %u", what, i);
                        v[i] = floe_wire_get_f64le(c->f64.p + fpos);
                        fpos += 8;
                        if (!isfinite(v[i]))
                                return floe_wire_fail(err, FLOE_WIRE_BAD_VALUE,
                                                      "%s: row %u: not finite", what, i);
                } else {
                        uint64_t u;
                        int64_t m;

                        if (!c->dec.present || floe_varint_get(c->dec.p, c->dec.len, &dpos, &u) < 0)
                                return floe_wire_fail(err, FLOE_WIRE_COLUMN_LENGTH,
                                                      "%s.dec: missing or bad varint at row %u",
                                                      what, i);
                        m = (int64_t)((uint64_t)d->last[s] + (uint64_t)floe_unzigzag(u));
                        if (m > FLOE_WIRE_MANTISSA_MAX_I || m < -FLOE_WIRE_MANTISSA_MAX_I)
                                return floe_wire_fail(err, FLOE_WIRE_BAD_VALUE,
                                                      "%s: row %u: mantissa beyond 2^53", what, i);
                        d->last[s] = m;
                        v[i] = (double)m / floe_wire_pow10[k];
                }
        }
        if (fpos != c->f64.len)
                return floe_wire_fail(err, FLOE_WIRE_COLUMN_LENGTH, "%s.f64: %zu values left over",
                                      what, (c->f64.len - fpos) / 8);
        if (c->dec.present && dpos != c->dec.len)
                return floe_wire_fail(err, FLOE_WIRE_COLUMN_LENGTH, "%s.dec: %zu bytes left over",
                                      what, c->dec.len - dpos);
        return 0;
}

static int decode_events(struct floe_wire_decoder *d, struct floe_wire_error *err,
                         const struct fields *f, struct floe_batch *b)
{
        const struct bytes *c = &f->text_idx;
        size_t pos = 0;
        int ret;

        ret = decode_dcol(d, err, &f->val, b, b->value, b->value_null, "val");
        if (ret < 0)
                return ret;
        if (!f->seen[K_TEXT]) {
                for (uint32_t i = 0; i < b->nrows; i++)
                        b->text[i] = FLOE_NO_TEXT;
                return 0;
        }
        for (uint32_t i = 0; i < b->nrows; i++) {
                uint64_t u;

                if (floe_varint_get(c->p, c->len, &pos, &u) < 0)
                        return bad_varint(err, "text.idx", i);
                if (u > b->texts.n)
                        return floe_wire_fail(err, FLOE_WIRE_BAD_INDEX,
                                              "text.idx: row %u: %" PRIu64 " outside %u", i, u,
                                              b->texts.n);
                b->text[i] = u == 0 ? FLOE_NO_TEXT : (uint32_t)(u - 1);
        }
        return col_end(err, c, pos, "text.idx");
}

static int decode_aggregates(struct floe_wire_decoder *d, struct floe_wire_error *err,
                             const struct fields *f, struct floe_batch *b)
{
        size_t pos = 0;
        int ret;

        for (uint32_t i = 0; i < b->nrows; i++) {
                uint64_t u;

                if (floe_varint_get(f->w.p, f->w.len, &pos, &u) < 0)
                        return bad_varint(err, "w", i);
                if (u > UINT32_MAX)
                        return floe_wire_fail(err, FLOE_WIRE_BAD_VALUE, "w: row %u: %" PRIu64, i,
                                              u);
                b->window_s[i] = (uint32_t)u;
        }
        ret = col_end(err, &f->w, pos, "w");
        if (ret < 0)
                return ret;
        pos = 0;
        for (uint32_t i = 0; i < b->nrows; i++)
                if (floe_varint_get(f->n.p, f->n.len, &pos, &b->count[i]) < 0)
                        return bad_varint(err, "n", i);
        ret = col_end(err, &f->n, pos, "n");
        for (int c = 0; c < FLOE_AGG_NCOLS && ret == 0; c++)
                ret = decode_dcol(d, err, &f->agg[c], b, b->agg[c], b->agg_null[c],
                                  floe_agg_col_name((enum floe_agg_col)c));
        return ret;
}

static int decode_columns(struct floe_wire_decoder *d, struct floe_wire_error *err,
                          const struct fields *f, struct floe_batch *b)
{
        int ret;

        if (f->rows > d->lim.max_rows)
                return floe_wire_fail(err, FLOE_WIRE_TOO_MANY_ROWS, "%" PRIu64 " rows, limit %u",
                                      f->rows, d->lim.max_rows);
        ret = decode_series(err, f, b);
        if (ret < 0)
                return ret;
        /* Every row takes at least one byte in "s": allocation is bounded by
         * the input, not by the claimed row count. */
        if (f->s.len < f->rows || f->t.len < f->rows)
                return floe_wire_fail(err, FLOE_WIRE_COLUMN_LENGTH,
                                      "%" PRIu64 " rows in %zu bytes of s", f->rows,
                                      f->s.len < f->t.len ? f->s.len : f->t.len);
        if (floe_batch_ensure_rows(b, (uint32_t)f->rows) < 0)
                return floe_wire_fail(err, FLOE_WIRE_NOMEM, "%" PRIu64 " rows", f->rows);
        if (b->nseries > d->last_cap) {
                int64_t *l = floe_reallocarray(d->last, b->nseries, sizeof(*l));

                if (!l)
                        return floe_wire_fail(err, FLOE_WIRE_NOMEM, "series state");
                d->last = l;
                d->last_cap = b->nseries;
        }
        b->nrows = (uint32_t)f->rows;
        ret = decode_rows_index(err, f, b);
        ret = ret ?: decode_ts(err, f, b);
        if (ret < 0)
                return ret;
        if (b->kind == FLOE_KIND_EVENTS)
                return decode_events(d, err, f, b);
        return decode_aggregates(d, err, f, b);
}

int floe_wire_decode_raw(struct floe_wire_decoder *d, const uint8_t *cbor, size_t len,
                         struct floe_batch *b, struct floe_wire_error *ret_err)
{
        struct floe_wire_error err = {0};
        struct fields f = {0};
        struct rd r = {.buf = cbor, .len = len, .err = &err};
        int ret;

        floe_batch_reset(b);
        b->lim = d->lim;
        b->fixed = false;
        b->version = FLOE_WIRE_VERSION;
        ret = get_fields(&r, &f, b, &d->lim);
        ret = ret ?: decode_columns(d, &err, &f, b);
        if (ret < 0) {
                floe_batch_reset(b);
                if (ret_err)
                        *ret_err = err;
                return ret;
        }
        return 0;
}

/* ---- zstd ---- */

int floe_wire_decoder_new(const struct floe_wire_limits *lim, struct floe_wire_decoder **ret)
{
        struct floe_wire_decoder *d = floe_calloc(1, sizeof(*d));

        if (!d)
                return -ENOMEM;
        if (lim)
                d->lim = *lim;
        else
                floe_wire_limits_default(&d->lim);
        d->dctx = ZSTD_createDCtx();
        if (!d->dctx) {
                floe_free(d);
                return -ENOMEM;
        }
        ZSTD_DCtx_setParameter(d->dctx, ZSTD_d_windowLogMax, 27);
        *ret = d;
        return 0;
}

struct floe_wire_decoder *floe_wire_decoder_free(struct floe_wire_decoder *d)
{
        if (!d)
                return NULL;
        ZSTD_freeDCtx(d->dctx);
        floe_free(d->raw);
        floe_free(d->last);
        floe_free(d);
        return NULL;
}

static int inflate(struct floe_wire_decoder *d, const uint8_t *data, size_t len,
                   struct floe_wire_error *err, size_t *ret_len)
{
        unsigned long long content;
        size_t framelen, n;
        uint32_t magic;

        if (len > d->lim.max_compressed)
                return floe_wire_fail(err, FLOE_WIRE_TOO_LARGE, "%zu bytes, limit %zu", len,
                                      d->lim.max_compressed);
        if (len < 5)
                return floe_wire_fail(err, FLOE_WIRE_NOT_ZSTD, "%zu bytes", len);
        magic = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                (uint32_t)data[3] << 24;
        if (magic != ZSTD_MAGIC)
                return floe_wire_fail(err, FLOE_WIRE_NOT_ZSTD, "magic 0x%08x", magic);
        /* Frame_Header_Descriptor bit 2: Content_Checksum_flag (RFC 8878) */
        if (!(data[4] & 0x04))
                return floe_wire_fail(err, FLOE_WIRE_NO_CHECKSUM, "frame without content checksum");
        content = ZSTD_getFrameContentSize(data, len);
        if (content == ZSTD_CONTENTSIZE_ERROR)
                return floe_wire_fail(err, FLOE_WIRE_NOT_ZSTD, "unreadable frame header");
        if (content == ZSTD_CONTENTSIZE_UNKNOWN)
                return floe_wire_fail(err, FLOE_WIRE_NO_CONTENT_SIZE,
                                      "frame header lacks the content size");
        if (ZSTD_getDictID_fromFrame(data, len) != 0)
                return floe_wire_fail(err, FLOE_WIRE_DICTIONARY, "dictionary %u",
                                      ZSTD_getDictID_fromFrame(data, len));
        if (content > d->lim.max_decompressed)
                return floe_wire_fail(err, FLOE_WIRE_INFLATED_TOO_LARGE,
                                      "content size %llu, limit %zu", content,
                                      d->lim.max_decompressed);
        framelen = ZSTD_findFrameCompressedSize(data, len);
        if (ZSTD_isError(framelen))
                return floe_wire_fail(err, FLOE_WIRE_ZSTD_CORRUPT, "%s",
                                      ZSTD_getErrorName(framelen));
        if (framelen != len)
                return floe_wire_fail(err, FLOE_WIRE_TRAILING_DATA, "%zu bytes after the frame",
                                      len - framelen);
        if (content > d->raw_cap) {
                uint8_t *p = floe_realloc(d->raw, content);

                if (!p)
                        return floe_wire_fail(err, FLOE_WIRE_NOMEM, "%llu bytes", content);
                d->raw = p;
                d->raw_cap = content;
        }
        n = ZSTD_decompressDCtx(d->dctx, d->raw, content, data, len);
        if (ZSTD_isError(n))
                return floe_wire_fail(err, FLOE_WIRE_ZSTD_CORRUPT, "%s", ZSTD_getErrorName(n));
        if (n != content)
                return floe_wire_fail(err, FLOE_WIRE_ZSTD_CORRUPT, "%zu bytes, header said %llu", n,
                                      content);
        *ret_len = n;
        return 0;
}

int floe_wire_decode_into(struct floe_wire_decoder *d, const uint8_t *data, size_t len,
                          struct floe_batch *b, struct floe_wire_error *ret_err)
{
        struct floe_wire_error err = {0};
        size_t n = 0;
        int ret;

        ret = inflate(d, data, len, &err, &n);
        if (ret < 0) {
                floe_batch_reset(b);
                if (ret_err)
                        *ret_err = err;
                return ret;
        }
        return floe_wire_decode_raw(d, d->raw, n, b, ret_err);
}

int floe_wire_decode(struct floe_wire_decoder *d, const uint8_t *data, size_t len,
                     struct floe_batch **ret, struct floe_wire_error *ret_err)
{
        struct floe_batch *b;
        int r;

        r = floe_batch_new(FLOE_KIND_EVENTS, &d->lim, &b);
        if (r < 0) {
                if (ret_err)
                        *ret_err = (struct floe_wire_error){.reason = FLOE_WIRE_NOMEM};
                return r;
        }
        r = floe_wire_decode_into(d, data, len, b, ret_err);
        if (r < 0) {
                floe_batch_free(b);
                return r;
        }
        *ret = b;
        return 0;
}
