/* SPDX-License-Identifier: Apache-2.0 */
/* Column metrics of data files: from a Parquet report, then cut down per the table's metrics
 * modes (Iceberg's MetricsConfig: none, counts, truncate(N), full). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "ice-writer.h"

#define PROP_DEFAULT      "write.metadata.metrics.default"
#define PROP_COLUMN       "write.metadata.metrics.column."
#define PROP_MAX_INFERRED "write.metadata.metrics.max-inferred-column-defaults"

enum mode {
        MODE_NONE,
        MODE_COUNTS,
        MODE_TRUNCATE,
        MODE_FULL,
};

int ice_parquet_kind(const struct ice_type *t, enum parquet_kind *ret)
{
        static const struct {
                enum ice_type_id type;
                enum parquet_kind kind;
        } map[] = {
                {ICE_TYPE_BOOLEAN, PARQUET_KIND_BOOLEAN},
                {ICE_TYPE_INT, PARQUET_KIND_INT},
                {ICE_TYPE_LONG, PARQUET_KIND_LONG},
                {ICE_TYPE_FLOAT, PARQUET_KIND_FLOAT},
                {ICE_TYPE_DOUBLE, PARQUET_KIND_DOUBLE},
                {ICE_TYPE_DATE, PARQUET_KIND_DATE},
                {ICE_TYPE_TIMESTAMP, PARQUET_KIND_TIMESTAMP},
                {ICE_TYPE_TIMESTAMPTZ, PARQUET_KIND_TIMESTAMPTZ},
                {ICE_TYPE_STRING, PARQUET_KIND_STRING},
        };

        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (map[i].type == t->id) {
                        *ret = map[i].kind;
                        return 0;
                }
        return -EOPNOTSUPP;
}

/* "none", "counts", "full", "truncate(N)" with N > 0. */
static int parse_mode(const char *s, enum mode *ret, long *ret_n)
{
        char *end;
        long n;

        if (strcmp(s, "none") == 0) {
                *ret = MODE_NONE;
        } else if (strcmp(s, "counts") == 0) {
                *ret = MODE_COUNTS;
        } else if (strcmp(s, "full") == 0) {
                *ret = MODE_FULL;
        } else if (strncmp(s, "truncate(", 9) == 0) {
                errno = 0;
                n = strtol(s + 9, &end, 10);
                if (errno || n <= 0 || n > 1 << 20 || strcmp(end, ")") != 0)
                        return -EINVAL;
                *ret = MODE_TRUNCATE;
                *ret_n = n;
        } else {
                return -EINVAL;
        }
        return 0;
}

/* The mode of a column (position pos among the schema's fields). A bad property value counts
 * as unset, as in Java (which logs and ignores it). */
static void column_mode(const struct ice_metadata *md, const struct ice_field *f, size_t pos,
                        enum mode *ret, long *ret_n)
{
        const char *def = ice_kvs_get(&md->properties, PROP_DEFAULT);
        char key[320];
        const char *v;
        int64_t max_inferred = 100;

        *ret = MODE_TRUNCATE;
        *ret_n = 16;
        snprintf(key, sizeof(key), "%s%s", PROP_COLUMN, f->name);
        v = ice_kvs_get(&md->properties, key);
        if (v && parse_mode(v, ret, ret_n) == 0)
                return;
        if (def && parse_mode(def, ret, ret_n) == 0)
                return;
        if (ice_kvs_get_i64(&md->properties, PROP_MAX_INFERRED, 100, &max_inferred) < 0)
                max_inferred = 100;
        if ((int64_t)pos >= max_inferred)
                *ret = MODE_NONE;
}

static void drop_bounds(struct ice_column_metrics *c)
{
        floe_free(c->lower);
        floe_free(c->upper);
        c->lower = c->upper = NULL;
        c->lower_len = c->upper_len = 0;
}

/* A binary upper bound cut to n bytes: the prefix with its last byte that can be incremented
 * incremented (trailing 0xff dropped); -ERANGE if none can. */
static int binary_upper(uint8_t *p, size_t len, size_t n, size_t *ret_len)
{
        if (len <= n) {
                *ret_len = len;
                return 0;
        }
        for (size_t l = n; l > 0; l--)
                if (p[l - 1] != 0xff) {
                        p[l - 1]++;
                        *ret_len = l;
                        return 0;
                }
        return -ERANGE;
}

static int truncate_bounds(struct ice_column_metrics *c, const struct ice_field *f, size_t n)
{
        uint8_t *up = NULL;
        size_t l;
        int r;

        if (f->type.id == ICE_TYPE_BINARY) {
                if (c->lower && c->lower_len > n)
                        c->lower_len = n;
                if (c->upper && binary_upper(c->upper, c->upper_len, n, &l) == 0) {
                        c->upper_len = l;
                } else if (c->upper) {
                        floe_free(c->upper);
                        c->upper = NULL;
                        c->upper_len = 0;
                }
                return 0;
        }
        if (f->type.id != ICE_TYPE_STRING)
                return 0;
        /* malformed UTF-8 has no code points to cut at: no bound rather than a wrong one */
        if (c->lower && ice_bound_truncate_lower(c->lower, c->lower_len, n, &l) == 0)
                c->lower_len = l;
        else if (c->lower)
                drop_bounds(c);
        if (!c->upper)
                return 0;
        r = ice_bound_truncate_upper(c->upper, c->upper_len, n, &up, &l);
        if (r == -ENOMEM)
                return r;
        floe_free(c->upper);
        c->upper = r == 0 ? up : NULL;
        c->upper_len = r == 0 ? l : 0;
        return 0;
}

int ice_metrics_apply_modes(const struct ice_metadata *md, struct ice_data_file *f)
{
        const struct ice_schema *s = ice_metadata_current_schema(md);
        size_t out = 0;
        int r = 0;

        for (size_t i = 0; i < f->n_columns; i++) {
                struct ice_column_metrics *c = &f->columns[i];
                const struct ice_field *field = NULL;
                enum mode mode = MODE_FULL;
                long n = 0;

                for (size_t k = 0; s && k < s->n_fields; k++)
                        if (s->fields[k].id == c->field_id) {
                                field = &s->fields[k];
                                column_mode(md, field, k, &mode, &n);
                                break;
                        }
                if (mode == MODE_NONE) {
                        drop_bounds(c);
                        continue;
                }
                if (mode == MODE_COUNTS)
                        drop_bounds(c);
                else if (mode == MODE_TRUNCATE && r == 0)
                        r = truncate_bounds(c, field, (size_t)n);
                f->columns[out++] = *c;
        }
        f->n_columns = out;
        return r;
}

int ice_metrics_from_report(const struct parquet_report *report, const int32_t *field_ids,
                            struct ice_data_file *f)
{
        for (size_t i = 0; i < report->n_columns; i++) {
                const struct parquet_column_report *rc = &report->columns[i];
                struct ice_column_metrics m = {
                        .field_id = field_ids ? field_ids[i] : rc->field_id,
                        .column_size = (int64_t)rc->compressed_size,
                        .value_count = (int64_t)rc->value_count,
                        .null_count = rc->has_null_count ? (int64_t)rc->null_count : -1,
                        .nan_count = rc->has_nan_count ? (int64_t)rc->nan_count : -1,
                };
                int r;

                if (m.field_id <= 0)
                        continue;
                /* an inexact (cut and incremented) upper bound is still an upper bound */
                if (rc->has_bounds) {
                        m.lower = rc->lower.ptr;
                        m.lower_len = rc->lower.len;
                        m.upper = rc->upper.ptr;
                        m.upper_len = rc->upper.len;
                }
                r = ice_data_file_add_column(f, &m);
                if (r < 0)
                        return r;
        }
        return 0;
}
