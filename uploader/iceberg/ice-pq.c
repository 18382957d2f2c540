/* SPDX-License-Identifier: Apache-2.0 */
/* Footers of Parquet files from a local file or the store, and their columns matched to a
 * table schema (by field id, or by name through the table's name mapping). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "ice-pq.h"
#include "ice-writer.h"
#include "store.h"

#define TAIL (64u * 1024)

/* parquet.thrift LogicalType members and ConvertedType values used below. */
enum {
        LT_STRING = 1,
        LT_ENUM = 4,
        LT_DATE = 6,
        LT_TIMESTAMP = 8,
        LT_INTEGER = 10,
        LT_JSON = 12,
        CT_UTF8 = 0,
        CT_ENUM = 4,
        CT_DATE = 6,
        CT_TIMESTAMP_MICROS = 10,
        CT_INT_8 = 15,
        CT_INT_16 = 16,
        CT_INT_32 = 17,
        CT_INT_64 = 18,
        CT_JSON = 19,
        UNIT_MICROS = 2,
};

int ice_pq_read_at(const struct ice_pq_src *src, uint64_t off, size_t len, void *buf)
{
        size_t got = 0;
        int r;

        if (off > src->size || len > src->size - off)
                return -EINVAL;
        if (src->fd < 0) {
                r = lake_store_get_range(src->store, src->key, off, len, buf, &got);
                if (r < 0)
                        return r;
                return got == len ? 0 : -EIO;
        }
        while (got < len) {
                ssize_t n = pread(src->fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));

                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                got += (size_t)n;
        }
        return 0;
}

int ice_pq_footer(const struct ice_pq_src *src, struct parquet_footer **ret, char *err,
                  size_t errsize)
{
        struct parquet_limits lim;
        struct parquet_error perr = {0};
        _cleanup_free_ uint8_t *tail = NULL;
        size_t len = src->size < TAIL ? (size_t)src->size : TAIL;
        uint32_t mlen;
        int r;

        if (src->size < 12) {
                snprintf(err, errsize, "%llu bytes: not a Parquet file",
                         (unsigned long long)src->size);
                return -EBADMSG;
        }
        tail = floe_malloc(len);
        if (!tail)
                return -ENOMEM;
        r = ice_pq_read_at(src, src->size - len, len, tail);
        if (r < 0) {
                snprintf(err, errsize, "cannot read: %s", strerror(-r));
                return r;
        }
        r = parquet_footer_length(tail + len - 8, &mlen);
        if (r < 0) {
                snprintf(err, errsize, "no Parquet footer (no PAR1 at the end)");
                return r;
        }
        if ((uint64_t)mlen + 8 > src->size - 4) {
                snprintf(err, errsize, "footer of %u bytes in a file of %llu", mlen,
                         (unsigned long long)src->size);
                return -EBADMSG;
        }
        if ((size_t)mlen + 8 > len) {
                floe_free(tail);
                len = (size_t)mlen + 8;
                tail = floe_malloc(len);
                if (!tail)
                        return -ENOMEM;
                r = ice_pq_read_at(src, src->size - len, len, tail);
                if (r < 0) {
                        snprintf(err, errsize, "cannot read: %s", strerror(-r));
                        return r;
                }
        }
        parquet_limits_init(&lim);
        r = parquet_footer_read(tail, len, src->size, &lim, ret, &perr);
        if (r < 0)
                snprintf(err, errsize, "bad footer: %s", perr.msg);
        return r;
}

/* The id of a column name in a name mapping (Iceberg spec "Column Projection"): top level. */
static int32_t mapped_id(json_t *mapping, const char *name)
{
        size_t i, k;
        json_t *m, *n;

        json_array_foreach(mapping, i, m)
        {
                json_array_foreach(json_object_get(m, "names"), k, n)
                {
                        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0 &&
                            json_is_integer(json_object_get(m, "field-id")))
                                return (int32_t)json_integer_value(json_object_get(m, "field-id"));
                }
        }
        return -1;
}

/* Whether a leaf's values can be read as the field's type; *ret the kind they are read as. */
static int readable(const struct parquet_schema_element *e, const struct ice_field *f,
                    enum parquet_kind *ret, char *why, size_t size)
{
        const struct parquet_logical *l = &e->logical;
        int ct = e->converted_type;
        enum parquet_kind kind;
        bool ok = false;

        if (f->nested || ice_parquet_kind(&f->type, &kind) < 0) {
                snprintf(why, size, "columns of this type are not supported");
                return -EINVAL;
        }
        switch (e->type) {
        case PARQUET_BOOLEAN:
                ok = kind == PARQUET_KIND_BOOLEAN;
                break;
        case PARQUET_INT32:
                if (l->kind == LT_DATE || ct == CT_DATE)
                        ok = kind == PARQUET_KIND_DATE;
                else if ((l->kind == 0 || (l->kind == LT_INTEGER && l->is_signed)) &&
                         (ct < 0 || ct == CT_INT_8 || ct == CT_INT_16 || ct == CT_INT_32))
                        ok = kind == PARQUET_KIND_INT || kind == PARQUET_KIND_LONG;
                break;
        case PARQUET_INT64:
                if (l->kind == LT_TIMESTAMP)
                        ok = l->unit == UNIT_MICROS &&
                             (kind == (l->utc ? PARQUET_KIND_TIMESTAMPTZ : PARQUET_KIND_TIMESTAMP));
                else if (ct == CT_TIMESTAMP_MICROS)
                        ok = kind == PARQUET_KIND_TIMESTAMPTZ || kind == PARQUET_KIND_TIMESTAMP;
                else if ((l->kind == 0 || (l->kind == LT_INTEGER && l->is_signed)) &&
                         (ct < 0 || ct == CT_INT_64))
                        ok = kind == PARQUET_KIND_LONG;
                break;
        case PARQUET_FLOAT:
                ok = kind == PARQUET_KIND_FLOAT || kind == PARQUET_KIND_DOUBLE;
                break;
        case PARQUET_DOUBLE:
                ok = kind == PARQUET_KIND_DOUBLE;
                break;
        case PARQUET_BYTE_ARRAY:
                ok = kind == PARQUET_KIND_STRING &&
                     (l->kind == 0 || l->kind == LT_STRING || l->kind == LT_ENUM ||
                      l->kind == LT_JSON) &&
                     (ct < 0 || ct == CT_UTF8 || ct == CT_ENUM || ct == CT_JSON);
                break;
        default:
                break;
        }
        if (!ok) {
                char t[64] = "?";

                ice_type_format(&f->type, t, sizeof(t));
                snprintf(why, size, "%s%s%s cannot be read as %s", parquet_physical_name(e->type),
                         ct >= 0 ? " " : "", ct >= 0 ? parquet_converted_name(ct) : "", t);
                return -EINVAL;
        }
        *ret = kind;
        return 0;
}

/* Whether leaf i has no nulls in any row group (its statistics say so). */
static bool no_nulls(const struct parquet_footer *f, size_t i)
{
        for (size_t g = 0; g < f->n_row_groups; g++) {
                const struct parquet_chunk *c = &f->row_groups[g].columns[i];

                if (!c->has_stats || !c->stats.has_null_count || c->stats.null_count != 0)
                        return false;
        }
        return true;
}

int ice_pq_match(const struct parquet_footer *f, const struct ice_metadata *md, int32_t *ret_ids,
                 enum parquet_kind *ret_kinds, bool *ret_by_name, char *err, size_t errsize)
{
        const struct ice_schema *s = ice_metadata_current_schema(md);
        const char *map_text = ice_kvs_get(&md->properties, "schema.name-mapping.default");
        json_t *mapping = NULL;
        size_t with_ids = 0;
        int r = 0;

        for (size_t i = 0; i < f->n_leaves; i++)
                with_ids += f->schema[f->leaves[i]].has_field_id;
        if (f->n_schema != f->n_leaves + 1) {
                snprintf(err, errsize, "nested columns are not supported");
                return -EINVAL;
        }
        if (with_ids != 0 && with_ids != f->n_leaves) {
                snprintf(err, errsize, "%zu of %zu columns have field ids: all or none must",
                         with_ids, f->n_leaves);
                return -EINVAL;
        }
        if (with_ids == 0 && map_text) {
                mapping = json_loads(map_text, 0, NULL);
                if (!json_is_array(mapping)) {
                        json_decref(mapping);
                        snprintf(err, errsize, "schema.name-mapping.default: not a name mapping");
                        return -EINVAL;
                }
        }
        for (size_t i = 0; r == 0 && i < f->n_leaves; i++) {
                const struct parquet_schema_element *e = &f->schema[f->leaves[i]];
                const struct ice_field *field = NULL;
                char why[160];

                if (f->max_rep[i] != 0 || f->max_def[i] > 1 || e->repetition == 2) {
                        snprintf(err, errsize, "column %s: repeated columns are not supported",
                                 e->name);
                        r = -EINVAL;
                        break;
                }
                if (with_ids) {
                        field = ice_schema_field(s, e->field_id);
                        if (!field) {
                                snprintf(err, errsize,
                                         "column %s: field id %d is not in the table schema",
                                         e->name, e->field_id);
                                r = -EINVAL;
                                break;
                        }
                } else {
                        int32_t id = mapping ? mapped_id(mapping, e->name) : -1;

                        field = mapping ? ice_schema_field(s, id)
                                        : ice_schema_field_by_name(s, e->name);
                        if (!field) {
                                snprintf(err, errsize,
                                         "column %s: no field ids in the file and no column of "
                                         "that name in the table%s",
                                         e->name, mapping ? "'s name mapping" : "");
                                r = -EINVAL;
                                break;
                        }
                }
                for (size_t k = 0; k < i; k++)
                        if (ret_ids[k] == field->id) {
                                snprintf(err, errsize, "columns %s and %s are both field %d",
                                         f->schema[f->leaves[k]].name, e->name, field->id);
                                r = -EINVAL;
                        }
                if (r == 0 && readable(e, field, &ret_kinds[i], why, sizeof(why)) < 0) {
                        snprintf(err, errsize, "column %s (field %d %s): %s", e->name, field->id,
                                 field->name, why);
                        r = -EINVAL;
                }
                if (r == 0 && field->required && e->repetition != 0 && !no_nulls(f, i)) {
                        snprintf(err, errsize, "column %s may hold nulls: field %s is required",
                                 e->name, field->name);
                        r = -EINVAL;
                }
                ret_ids[i] = field->id;
        }
        json_decref(mapping);
        for (size_t k = 0; r == 0 && k < s->n_fields; k++) {
                bool found = false;

                if (!s->fields[k].required)
                        continue;
                for (size_t i = 0; i < f->n_leaves && !found; i++)
                        found = ret_ids[i] == s->fields[k].id;
                if (!found) {
                        snprintf(err, errsize, "required field %s (id %d) is not in the file",
                                 s->fields[k].name, s->fields[k].id);
                        r = -EINVAL;
                }
        }
        if (r == 0)
                *ret_by_name = with_ids == 0;
        return r;
}
