/* SPDX-License-Identifier: Apache-2.0 */
/* The warehouse and catalog of the uploader, its two tables and their schema evolution. */
#include "lake.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "floe-alloc.h"
#include "ice-floe.h"
#include "ice-table.h"
#include "ice-writer.h"
#include "store.h"

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int upl_lake_open(struct upl_lake *l, const struct lake_conf *conf)
{
        char why[400] = "";
        int r;

        l->conf = conf;
        if (!l->store) {
                r = lake_store_open_explain(conf->warehouse, &conf->store, why, sizeof(why),
                                            &l->store);
                if (r < 0) {
                        snprintf(l->why, sizeof(l->why), "warehouse %s: %s", conf->warehouse,
                                 why[0] ? why : strerror(-r));
                        return r;
                }
        }
        if (!l->catalog) {
                r = lake_catalog_open_explain(conf->catalog, conf->catalog_name, why, sizeof(why),
                                              &l->catalog);
                if (r < 0) {
                        /* the location may hold a password: never printed */
                        snprintf(l->why, sizeof(l->why), "catalog: %s",
                                 why[0] ? why : strerror(-r));
                        return r;
                }
        }
        return 0;
}

void upl_lake_close(struct upl_lake *l)
{
        l->catalog = lake_catalog_close(l->catalog);
        l->store = lake_store_close(l->store);
}

/* The table's directory: <warehouse>/<namespace as directories>/<table>, as the writer has it. */
static int table_location(struct upl_lake *l, const char *table, char *buf, size_t size)
{
        char key[600];

        if (snprintf(key, sizeof(key), "%s/%s", l->conf->ns, table) >= (int)sizeof(key))
                return -ENAMETOOLONG;
        for (char *p = key; *p; p++)
                if (*p == '.')
                        *p = '/';
        return lake_store_location(l->store, key, buf, size);
}

static int open_or_create(struct upl_lake *l, enum floe_batch_kind kind, struct ice_io *io,
                          struct ice_catalog_sql *sql, struct ice_table **ret)
{
        const char *name = ice_floe_table_name(kind);
        char loc[2048], why[400] = "";
        int r;

        r = table_location(l, name, loc, sizeof(loc));
        if (r < 0) {
                snprintf(l->why, sizeof(l->why), "%s.%s: bad location", l->conf->ns, name);
                return r;
        }
        r = ice_table_open(io, &sql->ops, loc, ret, why, sizeof(why));
        if (r == -ENOENT) {
                r = ice_floe_table_create(l->store, l->catalog, l->conf->ns, name, kind, now_ms(),
                                          why, sizeof(why));
                /* -EEXIST: another uploader made it meanwhile */
                if (r == 0 || r == -EEXIST)
                        r = ice_table_open(io, &sql->ops, loc, ret, why, sizeof(why));
        }
        if (r < 0)
                snprintf(l->why, sizeof(l->why), "%s.%s: %s", l->conf->ns, name,
                         why[0] ? why : strerror(-r));
        return r;
}

static bool has_column(const struct ice_table *t, const char *name)
{
        return ice_schema_field_by_name(ice_metadata_current_schema(t->md), name) != NULL;
}

int upl_lake_ensure_table(struct upl_lake *l, enum floe_batch_kind kind,
                          const struct upl_column *add, unsigned n_add, unsigned *ret_added)
{
        struct ice_catalog_sql sql;
        struct ice_table *t = NULL;
        unsigned added = 0;
        struct ice_io io;
        int r;

        if (!l->store || !l->catalog)
                return -ENOTCONN;
        ice_io_store(l->store, &io);
        ice_catalog_sql(&sql, l->catalog, l->conf->ns, ice_floe_table_name(kind));
        r = open_or_create(l, kind, &io, &sql, &t);
        for (unsigned i = 0; r == 0 && i < n_add; i++) {
                struct ice_type type;

                if (has_column(t, add[i].name))
                        continue;
                r = ice_type_parse(add[i].type, &type);
                if (r == 0)
                        r = ice_table_add_column(t, add[i].name, &type, "added by floe-uploader");
                if (r < 0 && ice_table_refresh(t) == 0 && has_column(t, add[i].name))
                        r = 0; /* another uploader added it */
                else if (r == 0)
                        added++;
                if (r < 0)
                        snprintf(l->why, sizeof(l->why), "%s.%s: add column %s %s: %s", l->conf->ns,
                                 ice_floe_table_name(kind), add[i].name, add[i].type,
                                 t->error[0] ? t->error : strerror(-r));
        }
        ice_table_free(t);
        if (r == 0 && ret_added)
                *ret_added = added;
        return r;
}

int upl_lake_open_writer(struct upl_lake *l, enum floe_batch_kind kind, struct ice_writer **ret)
{
        const char *name = ice_floe_table_name(kind);
        char why[400] = "";
        int r;

        if (!l->store || !l->catalog)
                return -ENOTCONN;
        r = ice_writer_open(l->store, l->catalog, l->conf->ns, name, &l->conf->writer, ret, why,
                            sizeof(why));
        if (r < 0)
                snprintf(l->why, sizeof(l->why), "%s", why[0] ? why : strerror(-r));
        return r;
}

/* floe's optional columns, and what a batch needs of them */
static bool batch_has(const struct floe_batch *b, const char *col)
{
        for (uint32_t i = 0; i < b->nrows; i++) {
                if (b->kind == FLOE_KIND_EVENTS) {
                        if (strcmp(col, "value") == 0 && !b->value_null[i])
                                return true;
                        if (strcmp(col, "text") == 0 && b->text[i] != FLOE_NO_TEXT)
                                return true;
                        continue;
                }
                for (int c = 0; c < FLOE_AGG_NCOLS; c++)
                        if (strcmp(col, floe_agg_col_name((enum floe_agg_col)c)) == 0 &&
                            !b->agg_null[c][i])
                                return true;
        }
        return false;
}

int upl_lake_missing_column(const struct ice_writer *w, const struct floe_batch *b,
                            struct upl_column *ret)
{
        static const char *const events[] = {"value", "text"};
        static const char *const aggs[] = {"sum", "min", "max", "first", "last"};
        const char *const *cols = b->kind == FLOE_KIND_EVENTS ? events : aggs;
        size_t n = b->kind == FLOE_KIND_EVENTS ? ELEMENTSOF(events) : ELEMENTSOF(aggs);

        for (size_t i = 0; i < n; i++) {
                if (ice_writer_column_index(w, cols[i]) >= 0 || !batch_has(b, cols[i]))
                        continue;
                *ret = (struct upl_column){0};
                snprintf(ret->name, sizeof(ret->name), "%s", cols[i]);
                snprintf(ret->type, sizeof(ret->type), "%s",
                         strcmp(cols[i], "text") == 0 ? "string" : "double");
                return 1;
        }
        return 0;
}
