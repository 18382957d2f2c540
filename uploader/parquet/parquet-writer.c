/* SPDX-License-Identifier: Apache-2.0 */
/* The file writer: schema and options, batches into row groups, the footer,
 * and the per-file report. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "floe-alloc.h"
#include "parquet-internal.h"

/* Rows per pass over the columns: bounds how far a row group overshoots. */
#define SLICE_ROWS 4096

static const struct {
        const char *name;
        enum parquet_physical type;
        unsigned width;
} kinds[_PARQUET_KIND_MAX] = {
        [PARQUET_KIND_BOOLEAN] = {"boolean", PARQUET_BOOLEAN, 1},
        [PARQUET_KIND_INT] = {"int", PARQUET_INT32, 4},
        [PARQUET_KIND_LONG] = {"long", PARQUET_INT64, 8},
        [PARQUET_KIND_FLOAT] = {"float", PARQUET_FLOAT, 4},
        [PARQUET_KIND_DOUBLE] = {"double", PARQUET_DOUBLE, 8},
        [PARQUET_KIND_DATE] = {"date", PARQUET_INT32, 4},
        [PARQUET_KIND_TIMESTAMP] = {"timestamp", PARQUET_INT64, 8},
        [PARQUET_KIND_TIMESTAMPTZ] = {"timestamptz", PARQUET_INT64, 8},
        [PARQUET_KIND_STRING] = {"string", PARQUET_BYTE_ARRAY, 0},
};

const char *parquet_kind_name(enum parquet_kind kind)
{
        return (unsigned)kind < _PARQUET_KIND_MAX ? kinds[kind].name : NULL;
}

int parquet_kind_from_name(const char *name, enum parquet_kind *ret)
{
        for (unsigned i = 0; i < _PARQUET_KIND_MAX; i++) {
                if (strcmp(kinds[i].name, name) == 0) {
                        *ret = (enum parquet_kind)i;
                        return 0;
                }
        }
        return -EINVAL;
}

enum parquet_physical parquet_kind_physical(enum parquet_kind kind)
{
        return kinds[kind].type;
}

void parquet_options_init(struct parquet_options *opts)
{
        *opts = (struct parquet_options){
                .codec = PARQUET_CODEC_ZSTD,
                .zstd_level = 3,
                .row_group_bytes = UINT64_C(128) << 20,
                .row_group_rows = UINT64_C(1) << 20,
                .page_bytes = UINT32_C(1) << 20,
                .page_rows = 0,
                .dict_bytes = UINT32_C(1) << 20,
                .stats_max_bytes = 256,
        };
}

static int fail(struct parquet_writer *w, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(struct parquet_writer *w, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(w->error, sizeof(w->error), fmt, ap);
        va_end(ap);
        return err;
}

/* An error after bytes may have been taken: the writer is done for. */
static int broken(struct parquet_writer *w, int err, const char *what)
{
        w->failed = err;
        return fail(w, err, "%s: %s", what, strerror(-err));
}

static int check_options(const struct parquet_options *o)
{
        if (o->codec != PARQUET_CODEC_UNCOMPRESSED && o->codec != PARQUET_CODEC_ZSTD)
                return -EOPNOTSUPP;
        if (o->codec == PARQUET_CODEC_ZSTD &&
            (o->zstd_level < ZSTD_minCLevel() || o->zstd_level > ZSTD_maxCLevel()))
                return -ERANGE;
        if (o->page_bytes == 0 || o->page_bytes > PARQUET_MAX_PAGE ||
            o->page_rows > PARQUET_MAX_PAGE_ROWS || o->row_group_bytes == 0 ||
            o->dict_bytes > PARQUET_MAX_PAGE || o->stats_max_bytes < 8)
                return -ERANGE;
        return 0;
}

static int init_column(struct parquet_writer *w, struct parquet_colw *c,
                       const struct parquet_column *def)
{
        if ((unsigned)def->kind >= _PARQUET_KIND_MAX || !def->name || !def->name[0] ||
            def->field_id < 0)
                return fail(w, -EINVAL, "invalid column");
        c->name = floe_strdup(def->name);
        if (!c->name)
                return -ENOMEM;
        c->field_id = def->field_id;
        c->kind = def->kind;
        c->required = def->required;
        c->type = kinds[def->kind].type;
        c->width = kinds[def->kind].width;
        c->value_enc = PARQUET_ENC_PLAIN;
        if (w->opts.int_delta && (c->type == PARQUET_INT32 || c->type == PARQUET_INT64))
                c->value_enc = PARQUET_ENC_DELTA_BINARY_PACKED;
        if (w->opts.float_split && (c->type == PARQUET_FLOAT || c->type == PARQUET_DOUBLE))
                c->value_enc = PARQUET_ENC_BYTE_STREAM_SPLIT;
        c->dict_mode = c->type == PARQUET_BYTE_ARRAY && w->opts.dict_bytes > 0;
        return 0;
}

int parquet_writer_new(const struct parquet_column *columns, size_t n_columns,
                       const struct parquet_options *opts, const struct parquet_sink *sink,
                       struct parquet_writer **ret)
{
        struct parquet_options defaults;
        struct parquet_writer *w;
        int r;

        if (!opts) {
                parquet_options_init(&defaults);
                opts = &defaults;
        }
        if (!sink || !sink->write || n_columns == 0 || n_columns > INT32_MAX - 1)
                return -EINVAL;
        r = check_options(opts);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_columns; i++)
                for (size_t j = 0; j < i; j++)
                        if ((columns[i].name && columns[j].name &&
                             strcmp(columns[i].name, columns[j].name) == 0) ||
                            columns[i].field_id == columns[j].field_id)
                                return -EEXIST;
        w = floe_calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->opts = *opts;
        if (w->opts.page_rows == 0)
                w->opts.page_rows = PARQUET_MAX_PAGE_ROWS;
        w->sink = *sink;
        w->created_by = floe_strdup(opts->created_by ? opts->created_by : PARQUET_CREATED_BY);
        w->opts.created_by = NULL;
        w->cols = floe_calloc(n_columns, sizeof(*w->cols));
        if (!w->created_by || !w->cols) {
                r = -ENOMEM;
                goto out;
        }
        w->n_cols = n_columns;
        for (size_t i = 0; i < n_columns; i++) {
                r = init_column(w, &w->cols[i], &columns[i]);
                if (r < 0)
                        goto out;
        }
        if (w->opts.codec == PARQUET_CODEC_ZSTD) {
                w->cctx = ZSTD_createCCtx();
                if (!w->cctx) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        *ret = w;
        return 0;
out:
        parquet_writer_free(w);
        return r;
}

int parquet_writer_set_metadata(struct parquet_writer *w, const char *key, const char *value)
{
        char *k, *v, **kv;

        if (!key || !value)
                return -EINVAL;
        if (w->closed)
                return -EBADF;
        v = floe_strdup(value);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < w->n_kv; i++) {
                if (strcmp(w->kv[2 * i], key) == 0) {
                        floe_free(w->kv[2 * i + 1]);
                        w->kv[2 * i + 1] = v;
                        return 0;
                }
        }
        k = floe_strdup(key);
        kv = k ? floe_reallocarray(w->kv, 2 * (w->n_kv + 1), sizeof(*kv)) : NULL;
        if (!kv) {
                floe_free(k);
                floe_free(v);
                return -ENOMEM;
        }
        w->kv = kv;
        w->kv[2 * w->n_kv] = k;
        w->kv[2 * w->n_kv + 1] = v;
        w->n_kv++;
        return 0;
}

int parquet_writer_emit(struct parquet_writer *w, const void *p, size_t n)
{
        int r;

        if (n == 0)
                return 0;
        r = w->sink.write(w->sink.userdata, p, n);
        if (r < 0)
                return r;
        w->offset += n;
        return 0;
}

int parquet_writer_compress(struct parquet_writer *w, const uint8_t *body, size_t len,
                            const uint8_t **ret, size_t *ret_len)
{
        struct parquet_buf *out = &w->scratch[SCRATCH_COMP];
        size_t n;
        int r;

        if (w->opts.codec == PARQUET_CODEC_UNCOMPRESSED) {
                *ret = body;
                *ret_len = len;
                return 0;
        }
        out->len = 0;
        r = parquet_buf_reserve(out, ZSTD_compressBound(len));
        if (r < 0)
                return r;
        /* one frame per page, its content size in the header */
        n = ZSTD_compressCCtx(w->cctx, out->data, out->cap, body, len, w->opts.zstd_level);
        if (ZSTD_isError(n))
                return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
        *ret = out->data;
        *ret_len = n;
        return 0;
}

uint64_t parquet_writer_buffered(const struct parquet_writer *w)
{
        uint64_t n = 0;

        for (size_t i = 0; i < w->n_cols; i++)
                n += parquet_col_buffered(&w->cols[i]);
        return n;
}

uint64_t parquet_writer_rows(const struct parquet_writer *w)
{
        return w->rows;
}

const char *parquet_writer_error(const struct parquet_writer *w)
{
        return w->error;
}

static int magic(struct parquet_writer *w)
{
        return w->offset == 0 ? parquet_writer_emit(w, "PAR1", 4) : 0;
}

static int flush_row_group(struct parquet_writer *w)
{
        struct parquet_wrowgroup *rg;
        int r;

        if (w->n_rgs == w->cap_rgs) {
                size_t cap = w->cap_rgs ? w->cap_rgs * 2 : 8;
                struct parquet_wrowgroup *p = floe_reallocarray(w->rgs, cap, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                w->rgs = p;
                w->cap_rgs = cap;
        }
        rg = &w->rgs[w->n_rgs];
        *rg = (struct parquet_wrowgroup){.offset = w->offset, .num_rows = w->rg_rows};
        rg->chunks = floe_calloc(w->n_cols, sizeof(*rg->chunks));
        if (!rg->chunks)
                return -ENOMEM;
        w->n_rgs++; /* owns its chunks from here, written or not */
        for (size_t i = 0; i < w->n_cols; i++) {
                r = parquet_col_write_chunk(w, &w->cols[i], &rg->chunks[i]);
                if (r < 0)
                        return r;
                rg->total_byte_size += rg->chunks[i].total_uncompressed;
                rg->total_compressed += rg->chunks[i].total_compressed;
        }
        w->rg_rows = 0;
        return 0;
}

/* Everything the caller can get wrong, before anything is taken. */
static int check_batch(struct parquet_writer *w, const struct parquet_values *columns,
                       size_t n_rows)
{
        for (size_t i = 0; i < w->n_cols; i++) {
                const struct parquet_colw *c = &w->cols[i];
                const uint8_t *valid = columns[i].valid;

                if (!columns[i].data)
                        return fail(w, -EINVAL, "column %s: no values", c->name);
                if (c->required && valid)
                        for (size_t j = 0; j < n_rows; j++)
                                if (!valid[j])
                                        return fail(w, -EINVAL,
                                                    "column %s: null in a required column at "
                                                    "row %zu of the batch",
                                                    c->name, j);
                if (c->type != PARQUET_BYTE_ARRAY)
                        continue;
                for (size_t j = 0; j < n_rows; j++) {
                        const struct parquet_str *s = (const struct parquet_str *)columns[i].data;

                        if (valid && !valid[j])
                                continue;
                        if (s[j].len > PARQUET_MAX_VALUE || (!s[j].ptr && s[j].len > 0))
                                return fail(w, -EINVAL,
                                            "column %s: string of %" PRIu32
                                            " bytes at row %zu of the batch",
                                            c->name, s[j].len, j);
                }
        }
        return 0;
}

int parquet_writer_write(struct parquet_writer *w, const struct parquet_values *columns,
                         size_t n_rows)
{
        const struct parquet_options *o = &w->opts;
        int r;

        if (w->failed)
                return w->failed;
        if (w->closed)
                return fail(w, -EBADF, "writer closed");
        if (n_rows == 0)
                return 0;
        r = check_batch(w, columns, n_rows);
        if (r < 0)
                return r;
        r = magic(w);
        if (r < 0)
                return broken(w, r, "write");
        /* the caller's strings may live at other addresses from now on */
        for (size_t i = 0; i < w->n_cols; i++)
                parquet_col_forget(&w->cols[i]);
        for (size_t done = 0; done < n_rows;) {
                size_t k = n_rows - done < SLICE_ROWS ? n_rows - done : SLICE_ROWS;

                if (o->row_group_rows > 0 && k > o->row_group_rows - w->rg_rows)
                        k = (size_t)(o->row_group_rows - w->rg_rows);
                for (size_t i = 0; i < w->n_cols; i++) {
                        r = parquet_col_append(w, &w->cols[i], &columns[i], done, k);
                        if (r < 0)
                                return broken(w, r, w->cols[i].name);
                }
                w->rg_rows += k;
                w->rows += k;
                done += k;
                if ((o->row_group_rows > 0 && w->rg_rows >= o->row_group_rows) ||
                    parquet_writer_buffered(w) >= o->row_group_bytes) {
                        r = flush_row_group(w);
                        if (r < 0)
                                return broken(w, r, "row group");
                }
        }
        return 0;
}

static int make_report(struct parquet_writer *w, struct parquet_report **ret)
{
        struct parquet_report *rep;
        int r = -ENOMEM;

        rep = floe_calloc(1, sizeof(*rep));
        if (!rep)
                return -ENOMEM;
        rep->num_rows = w->rows;
        rep->file_size = w->offset;
        rep->columns = floe_calloc(w->n_cols, sizeof(*rep->columns));
        rep->row_group_offsets = floe_calloc(w->n_rgs + 1, sizeof(uint64_t));
        if (!rep->columns || !rep->row_group_offsets)
                goto out;
        rep->n_columns = w->n_cols;
        rep->n_row_groups = w->n_rgs;
        for (size_t g = 0; g < w->n_rgs; g++)
                rep->row_group_offsets[g] = w->rgs[g].offset;
        for (size_t i = 0; i < w->n_cols; i++) {
                struct parquet_column_report *cr = &rep->columns[i];
                const struct parquet_colw *c = &w->cols[i];

                cr->field_id = c->field_id;
                cr->type = c->type;
                cr->has_null_count = true;
                cr->has_nan_count = c->type == PARQUET_FLOAT || c->type == PARQUET_DOUBLE;
                for (size_t g = 0; g < w->n_rgs; g++) {
                        const struct parquet_wchunk *k = &w->rgs[g].chunks[i];

                        cr->value_count += k->num_values;
                        cr->null_count += k->null_count;
                        cr->nan_count += k->nan_count;
                        cr->compressed_size += k->total_compressed;
                        cr->uncompressed_size += k->total_uncompressed;
                        /* chunks without min/max hold only nulls and NaN */
                        if (!k->has_min || !k->has_max)
                                continue;
                        r = parquet_report_add(cr, !cr->has_bounds, c->type, &k->min, &k->max,
                                               k->min_exact, k->max_exact);
                        if (r < 0)
                                goto out;
                }
        }
        *ret = rep;
        return 0;
out:
        parquet_report_free(rep);
        return r;
}

int parquet_writer_close(struct parquet_writer *w, struct parquet_report **ret_report)
{
        struct parquet_buf *meta = &w->scratch[SCRATCH_BODY];
        uint8_t tail[8];
        int r;

        if (w->failed)
                return w->failed;
        if (w->closed)
                return fail(w, -EBADF, "writer closed");
        r = magic(w);
        if (r == 0 && w->rg_rows > 0)
                r = flush_row_group(w);
        if (r < 0)
                return broken(w, r, "row group");
        meta->len = 0;
        r = parquet_meta_encode(meta, w->cols, w->n_cols, w->rgs, w->n_rgs, w->rows,
                                (const char *const *)w->kv, w->n_kv, w->created_by, w->opts.codec);
        if (r == 0 && meta->len > UINT32_MAX)
                r = -E2BIG;
        if (r < 0)
                return broken(w, r, "footer");
        parquet_put_le32(tail, (uint32_t)meta->len);
        memcpy(tail + 4, "PAR1", 4);
        r = parquet_writer_emit(w, meta->data, meta->len);
        if (r == 0)
                r = parquet_writer_emit(w, tail, 8);
        if (r < 0)
                return broken(w, r, "footer");
        w->closed = true;
        if (ret_report) {
                r = make_report(w, ret_report);
                if (r < 0)
                        return fail(w, r, "report: %s", strerror(-r));
        }
        return 0;
}

struct parquet_writer *parquet_writer_free(struct parquet_writer *w)
{
        if (!w)
                return NULL;
        for (size_t i = 0; i < w->n_cols; i++) {
                parquet_col_done(&w->cols[i]);
                floe_free(w->cols[i].name);
        }
        floe_free(w->cols);
        for (size_t g = 0; g < w->n_rgs; g++) {
                for (size_t i = 0; i < w->n_cols; i++)
                        parquet_wchunk_done(&w->rgs[g].chunks[i]);
                floe_free(w->rgs[g].chunks);
        }
        floe_free(w->rgs);
        for (size_t i = 0; i < 2 * w->n_kv; i++)
                floe_free(w->kv[i]);
        floe_free(w->kv);
        for (unsigned i = 0; i < _SCRATCH_MAX; i++)
                parquet_buf_done(&w->scratch[i]);
        ZSTD_freeCCtx(w->cctx);
        floe_free(w->created_by);
        floe_free(w);
        return NULL;
}

static int fd_write(void *userdata, const void *data, size_t len)
{
        int fd = (int)(intptr_t)userdata;
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

struct parquet_sink parquet_sink_fd(int fd)
{
        return (struct parquet_sink){.write = fd_write, .userdata = (void *)(intptr_t)fd};
}
