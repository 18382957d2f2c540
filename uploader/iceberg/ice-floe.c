/* SPDX-License-Identifier: Apache-2.0 */
/* floe.events and floe.aggregates: their definitions and a batch's rows as their columns. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "ice-floe.h"
#include "ice-table.h"
#include "ice-writer.h"
#include "store.h"

enum src {
        SRC_TENANT,
        SRC_DEVICE,
        SRC_SENSOR,
        SRC_METRIC,
        SRC_TIME, /* ts, window_start */
        SRC_VALUE,
        SRC_TEXT,
        SRC_RECEIVED,
        SRC_EPOCH,
        SRC_SEQ,
        SRC_WINDOW_S,
        SRC_COUNT,
        SRC_AGG, /* + enum floe_agg_col */
};

struct col {
        const char *name;
        enum parquet_kind kind;
        int src;
};

#define S(n)                                                                                     \
        {                                                                                        \
                .id = 0, .name = (char *)(n), .required = true, .type = {.id = ICE_TYPE_STRING } \
        }
#define TZ(n)                                                                                \
        {                                                                                    \
                .name = (char *)(n), .required = true, .type = {.id = ICE_TYPE_TIMESTAMPTZ } \
        }
#define D(n)                                                                             \
        {                                                                                \
                .name = (char *)(n), .required = false, .type = {.id = ICE_TYPE_DOUBLE } \
        }
#define L(n)                                                                          \
        {                                                                             \
                .name = (char *)(n), .required = true, .type = {.id = ICE_TYPE_LONG } \
        }

static const struct ice_field EVENTS[] = {
        S("tenant"),
        S("device"),
        S("sensor"),
        S("metric"),
        TZ("ts"),
        D("value"),
        {.name = (char *)"text", .required = false, .type = {.id = ICE_TYPE_STRING}},
        TZ("received_at"),
        L("batch_epoch"),
        L("batch_seq"),
};

static const struct ice_field AGGREGATES[] = {
        S("tenant"),
        S("device"),
        S("sensor"),
        S("metric"),
        TZ("window_start"),
        {.name = (char *)"window_s", .required = true, .type = {.id = ICE_TYPE_INT}},
        L("count"),
        D("sum"),
        D("min"),
        D("max"),
        D("first"),
        D("last"),
        TZ("received_at"),
        L("batch_epoch"),
        L("batch_seq"),
};

static const struct col EVENT_COLS[] = {
        {"tenant", PARQUET_KIND_STRING, SRC_TENANT},
        {"device", PARQUET_KIND_STRING, SRC_DEVICE},
        {"sensor", PARQUET_KIND_STRING, SRC_SENSOR},
        {"metric", PARQUET_KIND_STRING, SRC_METRIC},
        {"ts", PARQUET_KIND_TIMESTAMPTZ, SRC_TIME},
        {"value", PARQUET_KIND_DOUBLE, SRC_VALUE},
        {"text", PARQUET_KIND_STRING, SRC_TEXT},
        {"received_at", PARQUET_KIND_TIMESTAMPTZ, SRC_RECEIVED},
        {"batch_epoch", PARQUET_KIND_LONG, SRC_EPOCH},
        {"batch_seq", PARQUET_KIND_LONG, SRC_SEQ},
};

static const struct col AGG_COLS[] = {
        {"tenant", PARQUET_KIND_STRING, SRC_TENANT},
        {"device", PARQUET_KIND_STRING, SRC_DEVICE},
        {"sensor", PARQUET_KIND_STRING, SRC_SENSOR},
        {"metric", PARQUET_KIND_STRING, SRC_METRIC},
        {"window_start", PARQUET_KIND_TIMESTAMPTZ, SRC_TIME},
        {"window_s", PARQUET_KIND_INT, SRC_WINDOW_S},
        {"count", PARQUET_KIND_LONG, SRC_COUNT},
        {"sum", PARQUET_KIND_DOUBLE, SRC_AGG + FLOE_AGG_SUM},
        {"min", PARQUET_KIND_DOUBLE, SRC_AGG + FLOE_AGG_MIN},
        {"max", PARQUET_KIND_DOUBLE, SRC_AGG + FLOE_AGG_MAX},
        {"first", PARQUET_KIND_DOUBLE, SRC_AGG + FLOE_AGG_FIRST},
        {"last", PARQUET_KIND_DOUBLE, SRC_AGG + FLOE_AGG_LAST},
        {"received_at", PARQUET_KIND_TIMESTAMPTZ, SRC_RECEIVED},
        {"batch_epoch", PARQUET_KIND_LONG, SRC_EPOCH},
        {"batch_seq", PARQUET_KIND_LONG, SRC_SEQ},
};

/* Spec fields: identity(tenant), then hour(ts) or day(window_start); default names. */
static const struct ice_partition_field EVENTS_SPEC[] = {
        {.source_id = 1, .transform = {ICE_TRANSFORM_IDENTITY, 0}},
        {.source_id = 5, .transform = {ICE_TRANSFORM_HOUR, 0}},
};

static const struct ice_partition_field AGG_SPEC[] = {
        {.source_id = 1, .transform = {ICE_TRANSFORM_IDENTITY, 0}},
        {.source_id = 5, .transform = {ICE_TRANSFORM_DAY, 0}},
};

/* A daemon commits often: old metadata files go with the log (100 kept). */
static const struct ice_kv PROPS[] = {
        {(char *)"write.metadata.delete-after-commit.enabled", (char *)"true"},
        {(char *)"write.metadata.previous-versions-max", (char *)"100"},
};

const char *ice_floe_table_name(enum floe_batch_kind kind)
{
        return kind == FLOE_KIND_AGGREGATES ? "aggregates" : "events";
}

int ice_floe_table_def(enum floe_batch_kind kind, const char *location, struct ice_table_def *ret)
{
        bool agg = kind == FLOE_KIND_AGGREGATES;

        if (kind != FLOE_KIND_EVENTS && !agg)
                return -EINVAL;
        *ret = (struct ice_table_def){
                .location = location,
                .fields = agg ? AGGREGATES : EVENTS,
                .n_fields = agg ? ELEMENTSOF(AGGREGATES) : ELEMENTSOF(EVENTS),
                .partition = agg ? AGG_SPEC : EVENTS_SPEC,
                .n_partition = 2,
                .properties = PROPS,
                .n_properties = ELEMENTSOF(PROPS),
        };
        return 0;
}

int ice_floe_table_create(struct lake_store *store, struct lake_catalog *catalog, const char *ns,
                          const char *name, enum floe_batch_kind kind, int64_t now_ms, char *err,
                          size_t errsize)
{
        struct ice_catalog_sql sql;
        struct ice_table_def def;
        struct ice_metadata *md = NULL;
        struct ice_table *t = NULL;
        struct ice_io io;
        char key[1024], loc[4096], why[256] = "";
        int r;

        if (snprintf(key, sizeof(key), "%s/%s", ns, name) >= (int)sizeof(key))
                return -ENAMETOOLONG;
        for (char *p = key; *p; p++)
                if (*p == '.')
                        *p = '/'; /* nested namespaces are directories */
        r = lake_store_location(store, key, loc, sizeof(loc));
        if (r == 0)
                r = ice_floe_table_def(kind, loc, &def);
        if (r == 0)
                r = ice_metadata_new(&def, now_ms, &md);
        if (r == 0) {
                ice_io_store(store, &io);
                if (catalog)
                        ice_catalog_sql(&sql, catalog, ns, name);
                r = ice_table_create(&io, catalog ? &sql.ops : NULL, md, &t, why, sizeof(why));
        }
        if (r < 0 && err && errsize)
                snprintf(err, errsize, "%s.%s: %s", ns, name, why[0] ? why : strerror(-r));
        ice_table_free(t);
        ice_metadata_free(md);
        return r;
}

void ice_floe_rows_clear(struct ice_floe_rows *rows)
{
        for (size_t c = 0; c < rows->cap_cols; c++) {
                floe_free(rows->buf[c]);
                floe_free(rows->valid[c]);
        }
        floe_free(rows->buf);
        floe_free(rows->valid);
        floe_free(rows->values);
        *rows = (struct ice_floe_rows){0};
}

static int reserve(struct ice_floe_rows *rows, size_t n_cols, size_t n_rows)
{
        if (n_cols > rows->cap_cols) {
                void **b = floe_reallocarray(rows->buf, n_cols, sizeof(*b));
                uint8_t **v;
                struct parquet_values *pv;

                if (!b)
                        return -ENOMEM;
                rows->buf = b;
                v = floe_reallocarray(rows->valid, n_cols, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                rows->valid = v;
                pv = floe_reallocarray(rows->values, n_cols, sizeof(*pv));
                if (!pv)
                        return -ENOMEM;
                rows->values = pv;
                for (size_t c = rows->cap_cols; c < n_cols; c++) {
                        rows->buf[c] = NULL;
                        rows->valid[c] = NULL;
                }
                rows->cap_cols = n_cols;
                rows->cap_rows = 0; /* the new columns have no buffers yet */
        }
        if (n_rows > rows->cap_rows) {
                for (size_t c = 0; c < rows->cap_cols; c++) {
                        void *b = floe_reallocarray(rows->buf[c], n_rows, 8 + 8);
                        uint8_t *v;

                        if (!b)
                                return -ENOMEM;
                        rows->buf[c] = b;
                        v = floe_realloc(rows->valid[c], n_rows);
                        if (!v)
                                return -ENOMEM;
                        rows->valid[c] = v;
                }
                rows->cap_rows = n_rows;
        }
        return 0;
}

static void set_str(struct parquet_str *s, const char *p, size_t len)
{
        s->ptr = p;
        s->len = (uint32_t)len;
}

/* Whether a floe column has any non-null value in the batch. */
static bool has_values(const struct floe_batch *b, int src)
{
        for (uint32_t i = 0; i < b->nrows; i++) {
                if (src == SRC_VALUE && !b->value_null[i])
                        return true;
                if (src == SRC_TEXT && b->text[i] != FLOE_NO_TEXT)
                        return true;
                if (src >= SRC_AGG && !b->agg_null[src - SRC_AGG][i])
                        return true;
        }
        return src != SRC_VALUE && src != SRC_TEXT && src < SRC_AGG && b->nrows > 0;
}

static int fill(const struct floe_batch *b, int src, int64_t received, void *buf, uint8_t *valid,
                bool *ret_nulls)
{
        const char *id = b->identity, *dot = strchr(id, '.');
        struct parquet_str *s = buf;
        int64_t *l = buf;
        double *d = buf;
        int32_t *i32 = buf;
        size_t len;

        *ret_nulls = false;
        if (!dot)
                return -EINVAL;
        for (uint32_t i = 0; i < b->nrows; i++) {
                const struct floe_series *se = &b->series[b->row_series[i]];
                const char *p;

                valid[i] = 1;
                switch (src) {
                case SRC_TENANT:
                        set_str(&s[i], id, (size_t)(dot - id));
                        break;
                case SRC_DEVICE:
                        set_str(&s[i], dot + 1, strlen(dot + 1));
                        break;
                case SRC_SENSOR:
                        p = floe_strdict_get(&b->sensors, se->sensor, &len);
                        set_str(&s[i], p, len);
                        break;
                case SRC_METRIC:
                        p = floe_strdict_get(&b->metrics, se->metric, &len);
                        set_str(&s[i], p, len);
                        break;
                case SRC_TIME:
                        l[i] = b->ts[i];
                        break;
                case SRC_VALUE:
                        d[i] = b->value[i];
                        valid[i] = !b->value_null[i];
                        break;
                case SRC_TEXT:
                        valid[i] = b->text[i] != FLOE_NO_TEXT;
                        if (valid[i]) {
                                p = floe_strdict_get(&b->texts, b->text[i], &len);
                                set_str(&s[i], p, len);
                        } else {
                                set_str(&s[i], NULL, 0);
                        }
                        break;
                case SRC_RECEIVED:
                        l[i] = received;
                        break;
                case SRC_EPOCH:
                        l[i] = (int64_t)b->epoch; /* the u64's bits */
                        break;
                case SRC_SEQ:
                        if (b->seq > INT64_MAX)
                                return -ERANGE;
                        l[i] = (int64_t)b->seq;
                        break;
                case SRC_WINDOW_S:
                        if (b->window_s[i] > INT32_MAX)
                                return -ERANGE;
                        i32[i] = (int32_t)b->window_s[i];
                        break;
                case SRC_COUNT:
                        if (b->count[i] > INT64_MAX)
                                return -ERANGE;
                        l[i] = (int64_t)b->count[i];
                        break;
                default:
                        d[i] = b->agg[src - SRC_AGG][i];
                        valid[i] = !b->agg_null[src - SRC_AGG][i];
                        break;
                }
                *ret_nulls = *ret_nulls || !valid[i];
        }
        return 0;
}

int ice_floe_rows_from_batch(struct ice_floe_rows *rows, const struct floe_batch *b,
                             int64_t received_at_us, const struct parquet_column *cols,
                             size_t n_cols, char *err, size_t errsize)
{
        bool agg = b->kind == FLOE_KIND_AGGREGATES;
        const struct col *fc = agg ? AGG_COLS : EVENT_COLS;
        size_t n_fc = agg ? ELEMENTSOF(AGG_COLS) : ELEMENTSOF(EVENT_COLS);
        char dummy[8];
        int r;

        if (!err || !errsize) {
                err = dummy;
                errsize = sizeof(dummy);
        }
        r = reserve(rows, n_cols, b->nrows ? b->nrows : 1);
        if (r < 0)
                return r;
        rows->n_values = n_cols;
        rows->n_rows = b->nrows;
        /* every floe column with values needs a home */
        for (size_t k = 0; k < n_fc; k++) {
                bool found = false;

                for (size_t c = 0; c < n_cols && !found; c++)
                        found = strcmp(cols[c].name, fc[k].name) == 0;
                if (!found && has_values(b, fc[k].src)) {
                        snprintf(err, errsize, "the table has no column %s", fc[k].name);
                        return -EINVAL;
                }
        }
        for (size_t c = 0; c < n_cols; c++) {
                const struct col *m = NULL;
                bool nulls = false;

                for (size_t k = 0; k < n_fc && !m; k++)
                        if (strcmp(cols[c].name, fc[k].name) == 0)
                                m = &fc[k];
                rows->values[c].data = rows->buf[c];
                rows->values[c].valid = rows->valid[c];
                if (!m) {
                        if (cols[c].required) {
                                snprintf(err, errsize, "required column %s is not in a batch",
                                         cols[c].name);
                                return -EINVAL;
                        }
                        memset(rows->buf[c], 0, b->nrows * 16u);
                        memset(rows->valid[c], 0, b->nrows);
                        continue;
                }
                if (m->kind != cols[c].kind) {
                        snprintf(err, errsize, "column %s is a %s, not a %s", cols[c].name,
                                 parquet_kind_name(cols[c].kind), parquet_kind_name(m->kind));
                        return -EINVAL;
                }
                r = fill(b, m->src, received_at_us, rows->buf[c], rows->valid[c], &nulls);
                if (r < 0) {
                        snprintf(err, errsize, "column %s: value out of range", cols[c].name);
                        return -EINVAL;
                }
                if (!nulls)
                        rows->values[c].valid = NULL;
                if (nulls && cols[c].required) {
                        snprintf(err, errsize, "column %s is required: the batch has nulls",
                                 cols[c].name);
                        return -EINVAL;
                }
        }
        return 0;
}
