/* SPDX-License-Identifier: Apache-2.0 */
/* Existing Parquet files as data files of a table: their footers' statistics, columns matched
 * by field id or by name (with the table's name mapping). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "floe-alloc.h"
#include "ice-maint.h"

#define NAME_MAPPING "schema.name-mapping.default"

/* A 4-byte int or float bound as the 8-byte long or double of a promoted column. */
static int widen(struct ice_column_metrics *m, int32_t phys)
{
        uint8_t *b[] = {m->lower, m->upper};
        size_t *l[] = {&m->lower_len, &m->upper_len};

        for (size_t k = 0; k < 2; k++) {
                uint8_t *n;

                if (!b[k] || *l[k] != 4)
                        continue;
                n = floe_malloc(8);
                if (!n)
                        return -ENOMEM;
                if (phys == PARQUET_INT32) {
                        int32_t v;
                        int64_t w;

                        memcpy(&v, b[k], 4);
                        w = v;
                        memcpy(n, &w, 8);
                } else {
                        float v;
                        double w;

                        memcpy(&v, b[k], 4);
                        w = v;
                        memcpy(n, &w, 8);
                }
                floe_free(b[k]);
                if (k == 0)
                        m->lower = n;
                else
                        m->upper = n;
                *l[k] = 8;
        }
        return 0;
}

int ice_register_describe(const struct ice_metadata *md, const struct ice_pq_src *src,
                          const char *location, struct ice_data_file *ret, bool *ret_by_name,
                          char *err, size_t errsize)
{
        struct parquet_footer *f = NULL;
        struct parquet_report *rep = NULL;
        _cleanup_free_ int32_t *ids = NULL;
        _cleanup_free_ enum parquet_kind *kinds = NULL;
        struct ice_data_file df = {.sort_order_id = -1};
        bool by_name = false;
        int r;

        r = ice_pq_footer(src, &f, err, errsize);
        if (r < 0)
                return r;
        ids = floe_calloc(f->n_leaves + 1, sizeof(*ids));
        kinds = floe_calloc(f->n_leaves + 1, sizeof(*kinds));
        if (!ids || !kinds) {
                r = -ENOMEM;
                goto out;
        }
        r = ice_pq_match(f, md, ids, kinds, &by_name, err, errsize);
        if (r == 0)
                r = parquet_footer_report(f, src->size, &rep);
        if (r < 0)
                goto out;
        df.content = ICE_CONTENT_DATA;
        df.path = floe_strdup(location);
        df.format = floe_strdup("PARQUET");
        df.record_count = (int64_t)rep->num_rows;
        df.file_size = (int64_t)src->size;
        df.split_offsets = floe_calloc(rep->n_row_groups + 1, sizeof(int64_t));
        if (!df.path || !df.format || !df.split_offsets) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t g = 0; g < rep->n_row_groups; g++)
                df.split_offsets[df.n_split_offsets++] = (int64_t)rep->row_group_offsets[g];
        r = ice_metrics_from_report(rep, ids, &df);
        for (size_t i = 0; r == 0 && i < df.n_columns; i++)
                for (size_t k = 0; k < f->n_leaves; k++)
                        if (ids[k] == df.columns[i].field_id &&
                            ((f->schema[f->leaves[k]].type == PARQUET_INT32 &&
                              kinds[k] == PARQUET_KIND_LONG) ||
                             (f->schema[f->leaves[k]].type == PARQUET_FLOAT &&
                              kinds[k] == PARQUET_KIND_DOUBLE)))
                                r = widen(&df.columns[i], f->schema[f->leaves[k]].type);
        if (r == 0)
                r = ice_data_file_partition_from_bounds(md, &df, err, errsize);
        if (r == 0)
                r = ice_metrics_apply_modes(md, &df);
out:
        parquet_report_free(rep);
        parquet_footer_free(f);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, errsize, "out of memory");
                ice_data_file_clear(&df);
                return r;
        }
        *ret = df;
        *ret_by_name = by_name;
        return 0;
}

int ice_table_ensure_name_mapping(struct ice_table *t)
{
        for (int attempt = 0;; attempt++) {
                const struct ice_schema *s = ice_metadata_current_schema(t->md);
                struct ice_metadata *md = NULL;
                json_t *map = json_array();
                char *text = NULL;
                int r = 0;

                if (ice_kvs_get(&t->md->properties, NAME_MAPPING)) {
                        json_decref(map);
                        return 0;
                }
                for (size_t i = 0; map && r == 0 && i < s->n_fields; i++)
                        r = json_array_append_new(map, json_pack("{s:i,s:[s]}", "field-id",
                                                                 (int)s->fields[i].id, "names",
                                                                 s->fields[i].name));
                text = map && r == 0 ? json_dumps(map, JSON_COMPACT) : NULL;
                json_decref(map);
                if (!text)
                        return -ENOMEM;
                r = ice_metadata_copy(t->md, &md);
                if (r == 0)
                        r = ice_kvs_set(&md->properties, NAME_MAPPING, text);
                free(text);
                if (r < 0) {
                        ice_metadata_free(md);
                        return r;
                }
                md->last_updated_ms = t->clock_ms();
                r = ice_table_commit(t, md);
                if (r != -ESTALE || attempt >= 4)
                        return r;
                ice_table_retry_wait(t, attempt + 1);
                r = ice_table_refresh(t);
                if (r < 0)
                        return r;
        }
}
