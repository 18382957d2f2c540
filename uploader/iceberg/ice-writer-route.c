/* SPDX-License-Identifier: Apache-2.0 */
/* The table writer's rows: each routed to its partition (the spec's transforms over the source
 * columns), written to the partition's open Parquet file, files rolled at the target size. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "ice-writer-internal.h"
#include "store.h"

#define SLICE_ROWS 4096u /* rows written between two checks of a file's size */
#define VALUE_MAX  (UINT32_C(1) << 30)

size_t ice_writer_width(enum parquet_kind kind)
{
        switch (kind) {
        case PARQUET_KIND_BOOLEAN:
                return sizeof(bool);
        case PARQUET_KIND_INT:
        case PARQUET_KIND_DATE:
                return sizeof(int32_t);
        case PARQUET_KIND_FLOAT:
                return sizeof(float);
        case PARQUET_KIND_DOUBLE:
                return sizeof(double);
        case PARQUET_KIND_STRING:
                return sizeof(struct parquet_str);
        default:
                return sizeof(int64_t);
        }
}

/* ---- partition tuples ---- */

/* Row i of a column as an Iceberg value; bytes borrowed from the caller's batch. */
static void datum_of(const struct ice_writer *w, const struct parquet_values *v, size_t col,
                     size_t i, struct ice_datum *ret)
{
        const struct parquet_column *c = &w->cols[col];

        *ret = (struct ice_datum){.type = w->col_types[col].id};
        if (v->valid && !v->valid[i]) {
                ret->null = true;
                return;
        }
        switch (c->kind) {
        case PARQUET_KIND_BOOLEAN:
                ret->v.b = ((const bool *)v->data)[i];
                break;
        case PARQUET_KIND_INT:
        case PARQUET_KIND_DATE:
                ret->v.i = ((const int32_t *)v->data)[i];
                break;
        case PARQUET_KIND_FLOAT:
                ret->v.f = ((const float *)v->data)[i];
                break;
        case PARQUET_KIND_DOUBLE:
                ret->v.d = ((const double *)v->data)[i];
                break;
        case PARQUET_KIND_STRING: {
                const struct parquet_str *s = &((const struct parquet_str *)v->data)[i];

                ret->bytes = (uint8_t *)(uintptr_t)s->ptr;
                ret->len = s->len;
                break;
        }
        default:
                ret->v.l = ((const int64_t *)v->data)[i];
                break;
        }
}

static int key_put(struct ice_writer *w, size_t *pos, const void *p, size_t n)
{
        if (w->kcap - *pos < n) {
                size_t cap = w->kcap ? w->kcap : 64;
                uint8_t *b;

                while (cap - *pos < n)
                        cap *= 2;
                b = floe_realloc(w->kbuf, cap);
                if (!b)
                        return -ENOMEM;
                w->kbuf = b;
                w->kcap = cap;
        }
        memcpy(w->kbuf + *pos, p, n);
        *pos += n;
        return 0;
}

/* Appends a partition value to the routing key: a null flag, then its bytes. */
static int key_datum(struct ice_writer *w, size_t *pos, const struct ice_datum *d)
{
        uint8_t tag = d->null ? 0 : 1;
        uint32_t len = (uint32_t)d->len;
        int r;

        r = key_put(w, pos, &tag, 1);
        if (r < 0 || d->null)
                return r;
        switch (d->type) {
        case ICE_TYPE_BOOLEAN:
                return key_put(w, pos, &d->v.b, sizeof(d->v.b));
        case ICE_TYPE_INT:
        case ICE_TYPE_DATE:
                return key_put(w, pos, &d->v.i, sizeof(d->v.i));
        case ICE_TYPE_FLOAT:
                return key_put(w, pos, &d->v.f, sizeof(d->v.f));
        case ICE_TYPE_DOUBLE:
                return key_put(w, pos, &d->v.d, sizeof(d->v.d));
        case ICE_TYPE_STRING:
        case ICE_TYPE_BINARY:
        case ICE_TYPE_FIXED:
        case ICE_TYPE_UUID:
        case ICE_TYPE_DECIMAL:
                r = key_put(w, pos, &len, sizeof(len));
                return r < 0 ? r : key_put(w, pos, d->bytes, d->len);
        default:
                return key_put(w, pos, &d->v.l, sizeof(d->v.l));
        }
}

/* The partition value of field k for row i; *ret owns bytes only when *owned. */
static int part_value(struct ice_writer *w, const struct parquet_values *cols, size_t k, size_t i,
                      struct ice_datum *ret, bool *owned)
{
        const struct ice_partition_field *pf = &w->spec.fields[k];
        int col = w->pf_col[k];
        struct ice_datum src;

        datum_of(w, &cols[col], (size_t)col, i, &src);
        *owned = false;
        if (pf->transform.kind == ICE_TRANSFORM_IDENTITY) {
                *ret = src; /* borrowed: no copy per row */
                return 0;
        }
        *owned = true;
        return ice_transform_apply(&pf->transform, &w->col_types[col], &src, ret);
}

/* The routing key of row i in w->kbuf[0..*ret_len). */
static int row_key(struct ice_writer *w, const struct parquet_values *cols, size_t i,
                   size_t *ret_len)
{
        size_t pos = 0;
        int r = 0;

        for (size_t k = 0; r == 0 && k < w->spec.n_fields; k++) {
                struct ice_datum d;
                bool owned;

                r = part_value(w, cols, k, i, &d, &owned);
                if (r < 0)
                        return ice_writer_fail(w, r, "partition %s: transform failed",
                                               w->spec.fields[k].name);
                r = key_datum(w, &pos, &d);
                if (owned)
                        ice_datum_clear(&d);
        }
        *ret_len = pos;
        return r;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
        uint64_t h = 1469598103934665603ull;

        for (size_t i = 0; i < n; i++)
                h = (h ^ p[i]) * 1099511628211ull;
        return h;
}

static int index_grow(struct ice_writer *w)
{
        size_t n = w->n_slots ? w->n_slots * 2 : 64;
        uint32_t *slots = floe_calloc(n, sizeof(*slots));

        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < w->n_parts; i++) {
                size_t s = w->parts[i]->hash & (n - 1);

                while (slots[s])
                        s = (s + 1) & (n - 1);
                slots[s] = (uint32_t)i + 1;
        }
        floe_free(w->slots);
        w->slots = slots;
        w->n_slots = n;
        return 0;
}

/* A new partition for row i (its key in w->kbuf): values computed again, owned. */
static int part_new(struct ice_writer *w, const struct parquet_values *cols, size_t i,
                    size_t key_len, uint64_t hash, size_t *ret)
{
        struct wpart *p = floe_calloc(1, sizeof(*p));
        char path[2048];
        int r = -ENOMEM;

        if (!p)
                return -ENOMEM;
        p->hash = hash;
        p->key_len = key_len;
        p->key = floe_malloc(key_len + 1);
        p->values = floe_calloc(w->spec.n_fields + 1, sizeof(*p->values));
        if (!p->key || !p->values)
                goto fail;
        memcpy(p->key, w->kbuf, key_len);
        for (size_t k = 0; k < w->spec.n_fields; k++) {
                struct ice_datum d;
                bool owned;

                r = part_value(w, cols, k, i, &d, &owned);
                if (r == 0 && !owned) {
                        r = ice_datum_copy(&d, &p->values[k]);
                } else if (r == 0) {
                        p->values[k] = d;
                }
                if (r < 0)
                        goto fail;
        }
        r = ice_partition_path(&w->spec, p->values, w->spec.n_fields, path, sizeof(path));
        if (r < 0) {
                ice_writer_fail(w, r, "partition path too long");
                goto fail;
        }
        p->path = floe_strdup(path);
        r = -ENOMEM;
        if (!p->path)
                goto fail;
        if (w->n_parts == w->cap_parts) {
                size_t cap = w->cap_parts ? 2 * w->cap_parts : 16;
                struct wpart **v = floe_reallocarray(w->parts, cap, sizeof(*v));

                if (!v)
                        goto fail;
                w->parts = v;
                w->cap_parts = cap;
        }
        if ((w->n_parts + 1) * 2 > w->n_slots && index_grow(w) < 0)
                goto fail;
        w->parts[w->n_parts] = p;
        {
                size_t s = hash & (w->n_slots - 1);

                while (w->slots[s])
                        s = (s + 1) & (w->n_slots - 1);
                w->slots[s] = (uint32_t)w->n_parts + 1;
        }
        *ret = w->n_parts++;
        return 0;
fail:
        for (size_t k = 0; p->values && k < w->spec.n_fields; k++)
                ice_datum_clear(&p->values[k]);
        floe_free(p->values);
        floe_free(p->key);
        floe_free(p->path);
        floe_free(p);
        return r;
}

static int part_find(struct ice_writer *w, const struct parquet_values *cols, size_t i,
                     size_t key_len, size_t *ret)
{
        uint64_t h = fnv1a(w->kbuf, key_len);

        for (size_t s = w->n_slots ? h & (w->n_slots - 1) : 0; w->n_slots && w->slots[s];
             s = (s + 1) & (w->n_slots - 1)) {
                const struct wpart *p = w->parts[w->slots[s] - 1];

                if (p->hash == h && p->key_len == key_len &&
                    memcmp(p->key, w->kbuf, key_len) == 0) {
                        *ret = w->slots[s] - 1;
                        return 0;
                }
        }
        return part_new(w, cols, i, key_len, h, ret);
}

/* Every row's partition into w->row_part; *ret_one: all rows in one. */
static int route(struct ice_writer *w, const struct parquet_values *cols, size_t n, bool *ret_one)
{
        size_t cur = 0, len = 0;
        bool have = false;
        int r;

        *ret_one = true;
        for (size_t i = 0; i < n; i++) {
                r = row_key(w, cols, i, &len);
                if (r < 0)
                        return r;
                if (!have || len != w->prev_len || memcmp(w->kbuf, w->prev_key, len) != 0) {
                        r = part_find(w, cols, i, len, &cur);
                        if (r < 0)
                                return r;
                        if (len > w->prev_cap) {
                                uint8_t *b = floe_realloc(w->prev_key, len);

                                if (!b)
                                        return -ENOMEM;
                                w->prev_key = b;
                                w->prev_cap = len;
                        }
                        if (len)
                                memcpy(w->prev_key, w->kbuf, len);
                        w->prev_len = len;
                        if (have && w->row_part[i - 1] != cur)
                                *ret_one = false;
                        have = true;
                }
                w->row_part[i] = (uint32_t)cur;
        }
        return 0;
}

/* ---- files ---- */

static int sink_write(void *ud, const void *data, size_t len)
{
        struct wfile *f = ud;

        f->sink_bytes += len;
        return lake_store_writer_write(f->sw, data, len);
}

static void file_discard(struct ice_writer *w, struct wpart *p)
{
        struct wfile *f = p->file;

        if (!f)
                return;
        parquet_writer_free(f->pw);
        lake_store_writer_free(f->sw); /* aborts: nothing becomes visible */
        floe_free(f->location);
        floe_free(f);
        p->file = NULL;
        w->n_open--;
}

static int file_open(struct ice_writer *w, struct wpart *p)
{
        struct parquet_sink sink = {.write = sink_write};
        char uuid[37], key[4096], loc[4600];
        struct wfile *f;
        int n, r;

        if (w->n_open >= w->max_open) {
                struct wpart *lru = NULL;

                for (size_t i = 0; i < w->n_parts; i++)
                        if (w->parts[i]->file && (!lru || w->parts[i]->last_use < lru->last_use))
                                lru = w->parts[i];
                if (lru) {
                        r = ice_writer_finish_file(w, lru);
                        if (r < 0)
                                return r;
                }
        }
        r = ice_uuid4(uuid);
        if (r < 0)
                return ice_writer_fail(w, r, "no random numbers");
        n = snprintf(key, sizeof(key), "%s%s%s/%s.parquet", w->data_key, p->path[0] ? "/" : "",
                     p->path, uuid);
        if (n < 0 || (size_t)n >= sizeof(key) ||
            lake_store_location(w->store, key, loc, sizeof(loc)) < 0)
                return ice_writer_fail(w, -ENAMETOOLONG, "%s: name too long", key);
        f = floe_calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->w = w;
        f->part = p;
        f->location = floe_strdup(loc);
        if (!f->location) {
                floe_free(f);
                return -ENOMEM;
        }
        p->file = f;
        w->n_open++;
        r = lake_store_writer_open(w->store, key, &f->sw);
        if (r < 0) {
                ice_writer_fail(w, r, "%s: %s", key, lake_store_error(w->store));
                file_discard(w, p);
                return r;
        }
        sink.userdata = f;
        r = parquet_writer_new(w->cols, w->n_cols, &w->popts, &sink, &f->pw);
        if (r == 0)
                r = parquet_writer_set_metadata(f->pw, "iceberg.schema", w->schema_json);
        if (r < 0) {
                ice_writer_fail(w, r, "%s: cannot start a Parquet file", loc);
                file_discard(w, p);
        }
        return r;
}

static int done_add(struct ice_writer *w, struct ice_data_file *df)
{
        if (w->n_done == w->cap_done) {
                size_t cap = w->cap_done ? 2 * w->cap_done : 16;
                struct ice_data_file *v = floe_reallocarray(w->done, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                w->done = v;
                w->cap_done = cap;
        }
        w->done[w->n_done++] = *df;
        return 0;
}

/* The data_file of a finished file. */
static int describe(struct ice_writer *w, struct wpart *p, const struct parquet_report *rep,
                    struct ice_data_file *df)
{
        const struct ice_metadata *md = w->t->md;
        int r;

        *df = (struct ice_data_file){
                .content = ICE_CONTENT_DATA,
                .spec_id = w->spec_id,
                .record_count = (int64_t)rep->num_rows,
                .file_size = (int64_t)rep->file_size,
                .sort_order_id = md->default_sort_order_id == 0 ? 0 : -1, /* never sorted */
        };
        df->path = floe_strdup(p->file->location);
        df->format = floe_strdup("PARQUET");
        df->partition = floe_calloc(w->spec.n_fields + 1, sizeof(*df->partition));
        df->split_offsets = floe_calloc(rep->n_row_groups + 1, sizeof(int64_t));
        if (!df->path || !df->format || !df->partition || !df->split_offsets)
                return -ENOMEM;
        df->n_partition = w->spec.n_fields;
        for (size_t k = 0; k < w->spec.n_fields; k++) {
                r = ice_datum_copy(&p->values[k], &df->partition[k]);
                if (r < 0)
                        return r;
        }
        for (size_t g = 0; g < rep->n_row_groups; g++)
                df->split_offsets[g] = (int64_t)rep->row_group_offsets[g];
        df->n_split_offsets = rep->n_row_groups;
        r = ice_metrics_from_report(rep, NULL, df);
        if (r == 0)
                r = ice_metrics_apply_modes(md, df);
        return r;
}

int ice_writer_finish_file(struct ice_writer *w, struct wpart *p)
{
        struct wfile *f = p->file;
        struct parquet_report *rep = NULL;
        struct ice_data_file df = {0};
        uint64_t size = 0;
        int r;

        if (!f)
                return 0;
        if (f->rows == 0) {
                file_discard(w, p); /* nothing in it: no empty file */
                return 0;
        }
        r = parquet_writer_close(f->pw, &rep);
        if (r < 0) {
                ice_writer_fail(w, r, "%s: %s", f->location, parquet_writer_error(f->pw));
                file_discard(w, p);
                return r;
        }
        r = lake_store_writer_commit(f->sw, &size);
        if (r < 0) {
                ice_writer_fail(w, r, "%s: %s", f->location, lake_store_error(w->store));
                parquet_report_free(rep);
                file_discard(w, p);
                return r;
        }
        if (size != rep->file_size)
                r = ice_writer_fail(w, -EIO, "%s: %llu bytes stored, %llu written", f->location,
                                    (unsigned long long)size, (unsigned long long)rep->file_size);
        if (r == 0)
                r = describe(w, p, rep, &df);
        if (r == 0)
                r = done_add(w, &df);
        if (r < 0) {
                ice_data_file_clear(&df);
                /* stored but not listed anywhere: delete it now */
                if (w->t->io.del(w->t->io.ud, f->location) < 0)
                        ice_strv_add(&w->orphans, f->location);
        } else {
                w->done_bytes += size;
        }
        parquet_report_free(rep);
        file_discard(w, p);
        return r;
}

void ice_writer_drop_parts(struct ice_writer *w)
{
        for (size_t i = 0; i < w->n_parts; i++) {
                struct wpart *p = w->parts[i];

                file_discard(w, p);
                for (size_t k = 0; k < w->spec.n_fields; k++)
                        ice_datum_clear(&p->values[k]);
                floe_free(p->values);
                floe_free(p->key);
                floe_free(p->path);
                floe_free(p);
        }
        w->n_parts = 0;
        if (w->slots)
                memset(w->slots, 0, w->n_slots * sizeof(*w->slots));
        w->prev_len = 0;
}

/* Rows [0, n) of cols into p's file, rolled at the target size. */
static int write_part(struct ice_writer *w, struct wpart *p, const struct parquet_values *cols,
                      size_t n)
{
        for (size_t start = 0; start < n;) {
                size_t m = n - start < SLICE_ROWS ? n - start : SLICE_ROWS;
                int r;

                if (p->file && p->file->rows > 0 &&
                    p->file->sink_bytes + parquet_writer_buffered(p->file->pw) >= w->target) {
                        r = ice_writer_finish_file(w, p);
                        if (r < 0)
                                return r;
                }
                if (!p->file) {
                        r = file_open(w, p);
                        if (r < 0)
                                return r;
                }
                p->last_use = ++w->clock;
                for (size_t c = 0; c < w->n_cols; c++) {
                        size_t width = ice_writer_width(w->cols[c].kind);

                        w->slice[c].data = (const uint8_t *)cols[c].data + start * width;
                        w->slice[c].valid = cols[c].valid ? cols[c].valid + start : NULL;
                }
                r = parquet_writer_write(p->file->pw, w->slice, m);
                if (r < 0)
                        return ice_writer_fail(w, r, "%s: %s", p->file->location,
                                               parquet_writer_error(p->file->pw));
                p->file->rows += m;
                w->pending_rows += m;
                start += m;
        }
        return 0;
}

static int ensure_rows(struct ice_writer *w, size_t n)
{
        uint32_t *a, *b;

        if (n <= w->row_cap)
                return 0;
        a = floe_reallocarray(w->row_part, n, sizeof(*a));
        if (a)
                w->row_part = a;
        b = floe_reallocarray(w->order, n, sizeof(*b));
        if (b)
                w->order = b;
        if (!a || !b)
                return -ENOMEM;
        w->row_cap = n;
        return 0;
}

static int ensure_gather(struct ice_writer *w, size_t n)
{
        if (n <= w->gcap)
                return 0;
        for (size_t c = 0; c < w->n_cols; c++) {
                void *d = floe_reallocarray(w->gather[c], n, ice_writer_width(w->cols[c].kind));
                uint8_t *v;

                if (!d)
                        return -ENOMEM;
                w->gather[c] = d;
                v = floe_realloc(w->gvalid[c], n);
                if (!v)
                        return -ENOMEM;
                w->gvalid[c] = v;
        }
        w->gcap = n;
        return 0;
}

/* Rows of several partitions: each partition's rows gathered (in order) and written. */
static int write_scattered(struct ice_writer *w, const struct parquet_values *cols, size_t n)
{
        _cleanup_free_ size_t *start = floe_calloc(w->n_parts + 1, sizeof(size_t));
        _cleanup_free_ struct parquet_values *g = floe_calloc(w->n_cols, sizeof(*g));
        int r;

        if (!start || !g)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                start[w->row_part[i] + 1]++;
        for (size_t p = 0; p < w->n_parts; p++)
                start[p + 1] += start[p];
        for (size_t i = 0; i < n; i++)
                w->order[start[w->row_part[i]]++] = (uint32_t)i;
        /* start[p] is now the end of partition p's rows */
        r = ensure_gather(w, n);
        for (size_t p = 0, from = 0; r == 0 && p < w->n_parts; p++) {
                size_t to = start[p], m = to - from;

                if (m == 0)
                        continue;
                for (size_t c = 0; c < w->n_cols; c++) {
                        size_t width = ice_writer_width(w->cols[c].kind);
                        const uint8_t *src = cols[c].data;
                        uint8_t *dst = w->gather[c];

                        for (size_t k = 0; k < m; k++)
                                memcpy(dst + k * width, src + (size_t)w->order[from + k] * width,
                                       width);
                        g[c].data = dst;
                        g[c].valid = NULL;
                        if (cols[c].valid) {
                                for (size_t k = 0; k < m; k++)
                                        w->gvalid[c][k] = cols[c].valid[w->order[from + k]];
                                g[c].valid = w->gvalid[c];
                        }
                }
                r = write_part(w, w->parts[p], g, m);
                from = to;
        }
        return r;
}

static int validate(struct ice_writer *w, const struct parquet_values *cols, size_t n)
{
        for (size_t c = 0; c < w->n_cols; c++) {
                const struct parquet_column *col = &w->cols[c];

                if (!cols[c].data)
                        return ice_writer_fail(w, -EINVAL, "column %s: no values", col->name);
                if (col->required && cols[c].valid)
                        for (size_t i = 0; i < n; i++)
                                if (!cols[c].valid[i])
                                        return ice_writer_fail(w, -EINVAL,
                                                               "column %s: null in row %zu",
                                                               col->name, i);
                if (col->kind != PARQUET_KIND_STRING)
                        continue;
                for (size_t i = 0; i < n; i++) {
                        const struct parquet_str *s =
                                &((const struct parquet_str *)cols[c].data)[i];

                        if ((!cols[c].valid || cols[c].valid[i]) &&
                            (s->len > VALUE_MAX || (s->len && !s->ptr)))
                                return ice_writer_fail(w, -EINVAL,
                                                       "column %s: bad string in row %zu",
                                                       col->name, i);
                }
        }
        return 0;
}

int ice_writer_write(struct ice_writer *w, const struct parquet_values *columns, size_t n_rows)
{
        bool one;
        int r;

        if (w->failed)
                return w->failed;
        if (n_rows == 0)
                return 0;
        r = validate(w, columns, n_rows);
        if (r < 0)
                return r;
        r = ensure_rows(w, n_rows);
        if (r == 0)
                r = route(w, columns, n_rows, &one);
        if (r == 0 && one)
                r = write_part(w, w->parts[w->row_part[0]], columns, n_rows);
        else if (r == 0)
                r = write_scattered(w, columns, n_rows);
        if (r < 0) {
                if (r == -ENOMEM && !w->error[0])
                        ice_writer_fail(w, r, "out of memory");
                w->failed = r;
        }
        return r;
}

int ice_writer_finish_files(struct ice_writer *w)
{
        int r = w->failed;

        for (size_t i = 0; r == 0 && i < w->n_parts; i++)
                r = ice_writer_finish_file(w, w->parts[i]);
        if (r < 0)
                w->failed = r;
        return r;
}

void ice_writer_pending(const struct ice_writer *w, struct ice_writer_pending *ret)
{
        *ret = (struct ice_writer_pending){
                .files = w->n_done + w->n_open,
                .open_files = w->n_open,
                .rows = w->pending_rows,
                .bytes = w->done_bytes,
        };
        for (size_t i = 0; i < w->n_parts; i++)
                if (w->parts[i]->file)
                        ret->bytes += w->parts[i]->file->sink_bytes +
                                      parquet_writer_buffered(w->parts[i]->file->pw);
}
