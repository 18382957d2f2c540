/* SPDX-License-Identifier: Apache-2.0 */
/* The table writer: opening a table for writing (columns, partition spec, Parquet options from
 * the table's properties) and committing what was written in one snapshot. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "floe-alloc.h"
#include "ice-writer-internal.h"
#include "store.h"

#define DEFAULT_TARGET    (UINT64_C(512) << 20)
#define DEFAULT_ROW_GROUP (UINT64_C(128) << 20)
#define DEFAULT_PAGE      (UINT32_C(1) << 20)
#define DEFAULT_DICT      (UINT32_C(2) << 20)
#define DEFAULT_MAX_OPEN  16u

int ice_writer_fail(struct ice_writer *w, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(w->error, sizeof(w->error), fmt, ap);
        va_end(ap);
        return r;
}

static int64_t prop(const struct ice_metadata *md, const char *key, int64_t def, int64_t min,
                    int64_t max)
{
        int64_t v;

        if (ice_kvs_get_i64(&md->properties, key, def, &v) < 0 || v < min || v > max)
                return def;
        return v;
}

static void spec_free(struct ice_partition_spec *s)
{
        for (size_t i = 0; i < s->n_fields; i++) {
                floe_free(s->fields[i].name);
                floe_free(s->fields[i].transform_text);
        }
        floe_free(s->fields);
        *s = (struct ice_partition_spec){0};
}

static int spec_copy(const struct ice_partition_spec *src, struct ice_partition_spec *ret)
{
        *ret = (struct ice_partition_spec){.spec_id = src->spec_id};
        ret->fields = floe_calloc(src->n_fields + 1, sizeof(*ret->fields));
        if (!ret->fields)
                return -ENOMEM;
        for (size_t i = 0; i < src->n_fields; i++) {
                ret->fields[i] = src->fields[i];
                ret->fields[i].name = floe_strdup(src->fields[i].name);
                ret->fields[i].transform_text = NULL;
                ret->n_fields++;
                if (!ret->fields[i].name)
                        return -ENOMEM;
        }
        return 0;
}

struct ice_writer *ice_writer_free(struct ice_writer *w)
{
        if (!w)
                return NULL;
        ice_writer_abort(w);
        ice_writer_drop_parts(w);
        for (size_t c = 0; c < w->n_cols; c++) {
                floe_free((char *)w->cols[c].name);
                if (w->gather)
                        floe_free(w->gather[c]);
                if (w->gvalid)
                        floe_free(w->gvalid[c]);
        }
        floe_free(w->cols);
        floe_free(w->col_types);
        floe_free(w->gather);
        floe_free(w->gvalid);
        floe_free(w->slice);
        spec_free(&w->spec);
        floe_free(w->pf_col);
        floe_free(w->schema_json);
        floe_free(w->data_key);
        floe_free(w->parts);
        floe_free(w->slots);
        floe_free(w->done);
        floe_free(w->kbuf);
        floe_free(w->prev_key);
        floe_free(w->row_part);
        floe_free(w->order);
        ice_strv_clear(&w->orphans);
        ice_table_free(w->t);
        floe_free(w->ns);
        floe_free(w->name);
        floe_free(w);
        return NULL;
}

/* The columns Parquet stores, from the current schema. */
static int setup_columns(struct ice_writer *w, const struct ice_schema *s)
{
        w->cols = floe_calloc(s->n_fields + 1, sizeof(*w->cols));
        w->col_types = floe_calloc(s->n_fields + 1, sizeof(*w->col_types));
        if (!w->cols || !w->col_types)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_fields; i++) {
                const struct ice_field *f = &s->fields[i];
                enum parquet_kind kind;
                char type[64] = "nested";

                if (f->nested || ice_parquet_kind(&f->type, &kind) < 0) {
                        if (!f->nested)
                                ice_type_format(&f->type, type, sizeof(type));
                        if (f->required)
                                return ice_writer_fail(w, -EOPNOTSUPP,
                                                       "required column %s of type %s cannot "
                                                       "be written",
                                                       f->name, type);
                        continue; /* optional: stays null */
                }
                w->cols[w->n_cols] = (struct parquet_column){
                        .name = floe_strdup(f->name),
                        .field_id = f->id,
                        .kind = kind,
                        .required = f->required,
                };
                w->col_types[w->n_cols] = f->type;
                if (!w->cols[w->n_cols].name)
                        return -ENOMEM;
                w->n_cols++;
        }
        w->gather = floe_calloc(w->n_cols + 1, sizeof(*w->gather));
        w->gvalid = floe_calloc(w->n_cols + 1, sizeof(*w->gvalid));
        w->slice = floe_calloc(w->n_cols + 1, sizeof(*w->slice));
        return w->gather && w->gvalid && w->slice ? 0 : -ENOMEM;
}

static int setup_spec(struct ice_writer *w, const struct ice_partition_spec *spec)
{
        int r;

        w->spec_id = spec->spec_id;
        r = spec_copy(spec, &w->spec);
        if (r < 0)
                return r;
        w->pf_col = floe_calloc(spec->n_fields + 1, sizeof(*w->pf_col));
        if (!w->pf_col)
                return -ENOMEM;
        for (size_t k = 0; k < spec->n_fields; k++) {
                const struct ice_partition_field *pf = &spec->fields[k];
                struct ice_type rt;

                w->pf_col[k] = -1;
                for (size_t c = 0; c < w->n_cols; c++)
                        if (w->cols[c].field_id == pf->source_id)
                                w->pf_col[k] = (int)c;
                if (w->pf_col[k] < 0 || pf->transform.kind == ICE_TRANSFORM_UNKNOWN ||
                    ice_transform_result_type(&pf->transform, &w->col_types[w->pf_col[k]], &rt) < 0)
                        return ice_writer_fail(w, -EOPNOTSUPP,
                                               "partition field %s cannot be computed", pf->name);
        }
        return 0;
}

static int setup_options(struct ice_writer *w, const struct ice_writer_opts *o)
{
        const struct ice_metadata *md = w->t->md;
        const char *codec = ice_kvs_get(&md->properties, "write.parquet.compression-codec");
        const char *data = ice_kvs_get(&md->properties, "write.data.path");
        char key[2048];
        int r;

        parquet_options_init(&w->popts);
        if (codec && (strcmp(codec, "uncompressed") == 0 || strcmp(codec, "none") == 0))
                w->popts.codec = PARQUET_CODEC_UNCOMPRESSED;
        else if (codec && strcmp(codec, "zstd") != 0)
                return ice_writer_fail(w, -EOPNOTSUPP,
                                       "write.parquet.compression-codec %s: only zstd and "
                                       "uncompressed are written",
                                       codec);
        w->popts.zstd_level = o->zstd_level
                                      ? o->zstd_level
                                      : (int)prop(md, "write.parquet.compression-level", 3, -7, 22);
        w->popts.row_group_bytes =
                o->row_group_bytes ? o->row_group_bytes
                                   : (uint64_t)prop(md, "write.parquet.row-group-size-bytes",
                                                    DEFAULT_ROW_GROUP, 4096, INT64_MAX);
        w->popts.page_bytes = o->page_bytes ? o->page_bytes
                                            : (uint32_t)prop(md, "write.parquet.page-size-bytes",
                                                             DEFAULT_PAGE, 1024, 256 << 20);
        w->popts.dict_bytes = o->dict_bytes ? o->dict_bytes
                                            : (uint32_t)prop(md, "write.parquet.dict-size-bytes",
                                                             DEFAULT_DICT, 0, 256 << 20);
        w->target = o->target_file_bytes ? o->target_file_bytes
                                         : (uint64_t)prop(md, "write.target-file-size-bytes",
                                                          DEFAULT_TARGET, 1, INT64_MAX);
        w->max_open = o->max_open_files ? o->max_open_files : DEFAULT_MAX_OPEN;
        if (data) {
                r = lake_store_key(w->store, data, key, sizeof(key));
        } else {
                r = lake_store_key(w->store, md->location, key, sizeof(key) - 5);
                if (r == 0)
                        memcpy(key + strlen(key), "/data", 6);
        }
        if (r < 0)
                return ice_writer_fail(w, r, "%s: not in the warehouse's store",
                                       data ? data : md->location);
        w->data_key = floe_strdup(key);
        return w->data_key ? 0 : -ENOMEM;
}

int ice_writer_open(struct lake_store *store, struct lake_catalog *catalog, const char *ns,
                    const char *table, const struct ice_writer_opts *opts, struct ice_writer **ret,
                    char *err, size_t errsize)
{
        static const struct ice_writer_opts none = {0};
        struct ice_writer *w = floe_calloc(1, sizeof(*w));
        char key[1024], loc[4096], why[256] = "";
        struct ice_io io;
        int r = -ENOMEM;

        if (!w)
                return -ENOMEM;
        if (!opts)
                opts = &none;
        w->store = store;
        w->catalog = catalog;
        w->ns = floe_strdup(ns);
        w->name = floe_strdup(table);
        if (!w->ns || !w->name)
                goto out;
        if (snprintf(key, sizeof(key), "%s/%s", ns, table) >= (int)sizeof(key)) {
                r = ice_writer_fail(w, -ENAMETOOLONG, "%s.%s: name too long", ns, table);
                goto out;
        }
        for (char *p = key; *p; p++)
                if (*p == '.')
                        *p = '/'; /* nested namespaces are directories */
        r = lake_store_location(store, key, loc, sizeof(loc));
        if (r < 0) {
                ice_writer_fail(w, r, "%s.%s: bad table name", ns, table);
                goto out;
        }
        ice_io_store(store, &io);
        if (catalog)
                ice_catalog_sql(&w->sql, catalog, w->ns, w->name);
        r = ice_table_open(&io, catalog ? &w->sql.ops : NULL, loc, &w->t, why, sizeof(why));
        if (r < 0) {
                ice_writer_fail(w, r, "%s.%s: %s", ns, table, why);
                goto out;
        }
        r = setup_columns(w, ice_metadata_current_schema(w->t->md));
        if (r == 0)
                r = setup_spec(w, ice_metadata_spec(w->t->md, w->t->md->default_spec_id));
        if (r == 0)
                r = ice_schema_format(ice_metadata_current_schema(w->t->md), &w->schema_json);
        if (r == 0)
                r = setup_options(w, opts);
out:
        if (r < 0) {
                if (err && errsize)
                        snprintf(err, errsize, "%s", w->error[0] ? w->error : strerror(-r));
                ice_writer_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

const struct parquet_column *ice_writer_columns(const struct ice_writer *w, size_t *ret_n)
{
        *ret_n = w->n_cols;
        return w->cols;
}

int ice_writer_column_index(const struct ice_writer *w, const char *name)
{
        for (size_t c = 0; c < w->n_cols; c++)
                if (strcmp(w->cols[c].name, name) == 0)
                        return (int)c;
        return -ENOENT;
}

struct ice_table *ice_writer_table(struct ice_writer *w)
{
        return w->t;
}

const char *ice_writer_error(const struct ice_writer *w)
{
        return w->error;
}

const struct ice_strv *ice_writer_orphans(const struct ice_writer *w)
{
        return &w->orphans;
}

void ice_writer_set_retry_fn(struct ice_writer *w,
                             void (*fn)(void *ud, int attempt, const char *why), void *ud)
{
        w->retry_fn = fn;
        w->retry_ud = ud;
}

static void clear_done(struct ice_writer *w, bool delete)
{
        for (size_t i = 0; i < w->n_done; i++) {
                if (delete &&w->t->io.del(w->t->io.ud, w->done[i].path) < 0)
                        ice_strv_add(&w->orphans, w->done[i].path);
                ice_data_file_clear(&w->done[i]);
        }
        w->n_done = 0;
        w->pending_rows = w->done_bytes = 0;
}

void ice_writer_abort(struct ice_writer *w)
{
        ice_writer_drop_parts(w); /* open files: discarded, never visible */
        clear_done(w, true);
        w->failed = 0;
        w->stale = false;
}

static void on_retry(void *ud, int attempt, const char *why)
{
        struct ice_writer *w = ud;

        w->retries++;
        if (w->retry_fn)
                w->retry_fn(w->retry_ud, attempt, why);
}

/* With a catalog, reload when someone committed since: saves a doomed attempt. */
static int sync_table(struct ice_writer *w)
{
        _cleanup_free_ char *loc = NULL;
        int r;

        if (!w->catalog)
                return 0;
        r = lake_catalog_load(w->catalog, w->ns, w->name, &loc);
        if (r < 0)
                return ice_writer_fail(w, r, "%s.%s: catalog: %s", w->ns, w->name,
                                       lake_catalog_error(w->catalog));
        if (strcmp(loc, w->t->metadata_location) == 0)
                return 0;
        r = ice_table_refresh(w->t);
        if (r < 0)
                ice_writer_fail(w, r, "%s.%s: %s", w->ns, w->name, w->t->error);
        return r;
}

int ice_writer_commit(struct ice_writer *w, const struct ice_writer_commit *c,
                      struct ice_writer_result *ret)
{
        static const struct ice_writer_commit none = {0};
        struct ice_writer_result res = {0};
        struct ice_table *t = w->t;
        int64_t id = 0;
        int r;

        if (!c)
                c = &none;
        if (c->txn_fn && !w->catalog)
                return ice_writer_fail(w, -EINVAL, "statements in the commit need a catalog");
        r = ice_writer_finish_files(w);
        if (r < 0)
                return r;
        if (w->n_done == 0 && c->n_removed == 0) {
                if (c->txn_fn) {
                        r = lake_catalog_run(w->catalog, c->txn_fn, c->txn_ud);
                        if (r < 0)
                                return ice_writer_fail(w, r, "catalog: %s",
                                                       lake_catalog_error(w->catalog));
                }
                if (ret)
                        *ret = res;
                return 0;
        }
        if (w->stale) { /* the table moved on since: rebase on what it is now */
                r = ice_table_refresh(t);
                if (r < 0)
                        ice_writer_fail(w, r, "%s.%s: %s", w->ns, w->name, t->error);
        } else {
                r = sync_table(w);
        }
        w->stale = false;
        if (r == 0 && t->md->default_spec_id != w->spec_id)
                r = ice_writer_fail(w, -ESTALE,
                                    "%s.%s: the partition spec changed: reopen the writer", w->ns,
                                    w->name);
        if (r < 0) {
                clear_done(w, true);
                return r;
        }
        w->sql.txn_fn = c->txn_fn;
        w->sql.txn_ud = c->txn_ud;
        t->on_retry = on_retry;
        t->on_retry_ud = w;
        t->no_retries = c->conflict_returns;
        w->retries = 0;
        if (c->n_removed)
                r = ice_table_replace(t, c->removed, c->n_removed, w->done, w->n_done, c->summary,
                                      c->n_summary, &id);
        else
                r = ice_table_append(t, w->done, w->n_done, c->summary, c->n_summary, &id);
        w->sql.txn_fn = NULL;
        w->sql.txn_ud = NULL;
        t->on_retry = NULL;
        t->no_retries = false;
        res.retries = w->retries;
        if (r < 0) {
                size_t n = w->n_done, before = w->orphans.n;

                if (c->conflict_returns && (r == -ESTALE || r == -EEXIST) && !t->commit_unknown) {
                        ice_writer_fail(w, r,
                                        "%s.%s: %s; its %zu files are kept for the next "
                                        "attempt",
                                        w->ns, w->name, t->error[0] ? t->error : strerror(-r), n);
                        w->stale = true;
                        return -EAGAIN;
                }

                if (t->commit_unknown) {
                        ice_writer_fail(w, r, "%s.%s: %s; its %zu files are kept", w->ns, w->name,
                                        t->error, n);
                        clear_done(w, false);
                        return r;
                }
                ice_writer_fail(w, r, "%s.%s: %s", w->ns, w->name,
                                t->error[0] ? t->error : strerror(-r));
                clear_done(w, true);
                if (w->orphans.n > before) {
                        size_t l = strlen(w->error);

                        snprintf(w->error + l, sizeof(w->error) - l,
                                 "; %zu of its %zu files not deleted", w->orphans.n - before, n);
                }
                return r;
        }
        res.snapshot_id = id;
        res.files = w->n_done;
        for (size_t i = 0; i < w->n_done; i++) {
                res.records += (uint64_t)w->done[i].record_count;
                res.bytes += (uint64_t)w->done[i].file_size;
        }
        clear_done(w, false);
        ice_writer_drop_parts(w);
        w->error[0] = '\0';
        if (ret)
                *ret = res;
        return 0;
}
