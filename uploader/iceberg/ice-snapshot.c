/* SPDX-License-Identifier: Apache-2.0 */
/* Pure parts of producing a snapshot: its summary (spec Appendix F) and which manifests to
 * merge. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

static const char *const TOTALS[] = {
        "total-data-files", "total-delete-files",     "total-records",
        "total-files-size", "total-position-deletes", "total-equality-deletes",
};

int ice_summary_build(const char *operation, const struct ice_summary_delta *d,
                      const struct ice_snapshot *prev, const struct ice_kv *extra, size_t n_extra,
                      struct ice_kvs *ret)
{
        struct ice_kvs m = {0};
        int64_t tot[ELEMENTSOF(TOTALS)] = {0};
        bool totals = true;
        int r;

        /* totals carry forward only when the previous snapshot has all of them */
        for (size_t i = 0; prev && i < ELEMENTSOF(TOTALS); i++)
                if (ice_kvs_get_i64(&prev->summary, TOTALS[i], -1, &tot[i]) < 0 || tot[i] < 0)
                        totals = false;
        tot[0] += d->added_files - d->deleted_files;
        tot[1] += d->added_delete_files - d->removed_delete_files;
        tot[2] += d->added_records - d->deleted_records;
        tot[3] += d->added_size - d->removed_size;

        r = ice_kvs_set(&m, "operation", operation);
        if (r == 0 && d->added_files)
                r = ice_kvs_set_i64(&m, "added-data-files", d->added_files);
        if (r == 0 && d->deleted_files)
                r = ice_kvs_set_i64(&m, "deleted-data-files", d->deleted_files);
        if (r == 0 && d->added_delete_files)
                r = ice_kvs_set_i64(&m, "added-delete-files", d->added_delete_files);
        if (r == 0 && d->removed_delete_files)
                r = ice_kvs_set_i64(&m, "removed-delete-files", d->removed_delete_files);
        if (r == 0 && d->added_records)
                r = ice_kvs_set_i64(&m, "added-records", d->added_records);
        if (r == 0 && d->deleted_records)
                r = ice_kvs_set_i64(&m, "deleted-records", d->deleted_records);
        if (r == 0 && d->added_size)
                r = ice_kvs_set_i64(&m, "added-files-size", d->added_size);
        if (r == 0 && d->removed_size)
                r = ice_kvs_set_i64(&m, "removed-files-size", d->removed_size);
        if (r == 0)
                r = ice_kvs_set_i64(&m, "changed-partition-count", d->changed_partitions);
        if (r == 0)
                r = ice_kvs_set_i64(&m, "manifests-created", d->manifests_created);
        if (r == 0)
                r = ice_kvs_set_i64(&m, "manifests-kept", d->manifests_kept);
        if (r == 0)
                r = ice_kvs_set_i64(&m, "manifests-replaced", d->manifests_replaced);
        for (size_t i = 0; r == 0 && totals && i < ELEMENTSOF(TOTALS); i++)
                r = ice_kvs_set_i64(&m, TOTALS[i], tot[i]);
        for (size_t i = 0; r == 0 && i < n_extra; i++) {
                if (strcmp(extra[i].key, "operation") == 0)
                        r = -EINVAL;
                else
                        r = ice_kvs_set(&m, extra[i].key, extra[i].value);
        }
        if (r < 0) {
                ice_kvs_clear(&m);
                return r;
        }
        *ret = m;
        return 0;
}

/* Size tiers of a factor of 4 from 16 KiB: manifests merge with others of about their size. */
static unsigned tier(int64_t length)
{
        unsigned t = 0;

        for (int64_t l = length / 4096; l >= 4 && t < 31; l /= 4)
                t++;
        return t;
}

static bool candidate(const struct ice_manifest_file *f, int32_t spec_id, int64_t target)
{
        return f->content == 0 && f->spec_id == spec_id && f->length < target;
}

void ice_merge_plan(const struct ice_manifest_file *files, size_t n, int32_t spec_id,
                    size_t min_count, int64_t target_bytes, bool *ret, size_t *ret_n)
{
        size_t count[32] = {0}, chosen = 0;
        unsigned t;
        int64_t total = 0;

        *ret_n = 0;
        for (size_t i = 0; i < n; i++) {
                ret[i] = false;
                if (candidate(&files[i], spec_id, target_bytes))
                        count[tier(files[i].length)]++;
        }
        if (min_count < 2)
                min_count = 2;
        for (t = 0; t < ELEMENTSOF(count) && count[t] < min_count; t++)
                ;
        if (t == ELEMENTSOF(count))
                return;
        /* the lowest full tier, newest first, while the merged manifest stays within the target:
         * every entry is rewritten a few times on its way to a full-size manifest, not once per
         * merge, so a commit's cost stays independent of the table's size */
        for (size_t i = 0; i < n; i++) {
                if (!candidate(&files[i], spec_id, target_bytes) || tier(files[i].length) != t)
                        continue;
                if (chosen >= 2 && total + files[i].length > target_bytes)
                        break;
                ret[i] = true;
                total += files[i].length;
                chosen++;
        }
        *ret_n = chosen;
}

static const struct ice_column_metrics *metrics_of(const struct ice_data_file *f, int32_t id)
{
        for (size_t i = 0; i < f->n_columns; i++)
                if (f->columns[i].field_id == id)
                        return &f->columns[i];
        return NULL;
}

/* The partition value of one field from the source column's bounds. */
static int value_from_bounds(const struct ice_partition_field *pf, const struct ice_field *col,
                             const struct ice_column_metrics *m, struct ice_datum *ret, char *err,
                             size_t errsize)
{
        struct ice_datum lo = {0}, hi = {0}, a = {0}, b = {0};
        struct ice_type rt;
        int r;

        r = ice_transform_result_type(&pf->transform, &col->type, &rt);
        if (r < 0 || pf->transform.kind == ICE_TRANSFORM_UNKNOWN) {
                snprintf(err, errsize, "%s: transform does not apply", pf->name);
                return -EINVAL;
        }
        if (pf->transform.kind == ICE_TRANSFORM_VOID ||
            (m && m->value_count >= 0 && m->null_count == m->value_count)) {
                *ret = (struct ice_datum){.type = rt.id, .null = true};
                return 0;
        }
        if (!m || !m->lower || !m->upper || m->null_count != 0) {
                snprintf(err, errsize, "%s: column %s has %s", pf->name, col->name,
                         !m || !m->lower || !m->upper ? "no bounds" : "nulls and values");
                return -EINVAL;
        }
        r = ice_value_deserialize(&col->type, m->lower, m->lower_len, &lo);
        if (r == 0)
                r = ice_value_deserialize(&col->type, m->upper, m->upper_len, &hi);
        if (r == 0)
                r = ice_transform_apply(&pf->transform, &col->type, &lo, &a);
        if (r == 0)
                r = ice_transform_apply(&pf->transform, &col->type, &hi, &b);
        /* a file holds one partition: both bounds give the same value (a bucket is no range:
         * there the bounds must be one value) */
        if (r == 0 &&
            (ice_datum_compare(&a, &b) != 0 ||
             (pf->transform.kind == ICE_TRANSFORM_BUCKET && ice_datum_compare(&lo, &hi) != 0))) {
                snprintf(err, errsize, "%s: the file spans more than one partition", pf->name);
                r = -EINVAL;
        } else if (r < 0) {
                snprintf(err, errsize, "%s: bad bounds of column %s", pf->name, col->name);
        }
        ice_datum_clear(&lo);
        ice_datum_clear(&hi);
        ice_datum_clear(&b);
        if (r < 0) {
                ice_datum_clear(&a);
                return r;
        }
        *ret = a;
        return 0;
}

int ice_data_file_partition_from_bounds(const struct ice_metadata *md, struct ice_data_file *f,
                                        char *err, size_t errsize)
{
        const struct ice_partition_spec *spec = ice_metadata_spec(md, md->default_spec_id);
        const struct ice_schema *schema = ice_metadata_current_schema(md);
        struct ice_datum *vals;
        char dummy[8];
        int r = 0;

        if (!err || !errsize) {
                err = dummy;
                errsize = sizeof(dummy);
        }
        vals = floe_calloc(spec->n_fields + 1, sizeof(*vals));
        if (!vals)
                return -ENOMEM;
        for (size_t i = 0; r == 0 && i < spec->n_fields; i++) {
                const struct ice_partition_field *pf = &spec->fields[i];
                const struct ice_field *col = ice_schema_field(schema, pf->source_id);

                if (!col) {
                        snprintf(err, errsize, "%s: no source column", pf->name);
                        r = -EINVAL;
                        break;
                }
                r = value_from_bounds(pf, col, metrics_of(f, pf->source_id), &vals[i], err,
                                      errsize);
        }
        if (r < 0) {
                for (size_t i = 0; i < spec->n_fields; i++)
                        ice_datum_clear(&vals[i]);
                floe_free(vals);
                return r;
        }
        for (size_t i = 0; i < f->n_partition; i++)
                ice_datum_clear(&f->partition[i]);
        floe_free(f->partition);
        f->partition = vals;
        f->n_partition = spec->n_fields;
        f->spec_id = spec->spec_id;
        return 0;
}
