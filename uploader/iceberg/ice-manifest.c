/* SPDX-License-Identifier: Apache-2.0 */
/* Writing manifests (manifest_entry, spec "Manifests") and manifest lists (manifest_file,
 * spec "Manifest Lists") as Avro object container files with the spec's field ids. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

/* Schema building: every json_* result is checked once, through *ok. */
static json_t *chk(json_t *v, bool *ok)
{
        if (!v)
                *ok = false;
        return v;
}

static json_t *field(const char *name, json_t *type, int32_t id, bool optional, bool *ok)
{
        if (optional)
                return chk(json_pack("{s:s,s:[s,o*],s:n,s:i}", "name", name, "type", "null", type,
                                     "default", "field-id", (int)id),
                           ok);
        return chk(json_pack("{s:s,s:o*,s:i}", "name", name, "type", type, "field-id", (int)id),
                   ok);
}

/* map<int, long|bytes> as Iceberg writes maps with non-string keys. */
static json_t *int_map(int32_t map_id, int32_t key_id, int32_t value_id, const char *vtype,
                       const char *name, bool *ok)
{
        char rec[32];
        json_t *kv;

        snprintf(rec, sizeof(rec), "k%" PRId32 "_v%" PRId32, key_id, value_id);
        kv = chk(json_pack("{s:s,s:s,s:[o*,o*]}", "type", "record", "name", rec, "fields",
                           field("key", json_string("int"), key_id, false, ok),
                           field("value", json_string(vtype), value_id, false, ok)),
                 ok);
        return field(
                name,
                chk(json_pack("{s:s,s:o*,s:s}", "type", "array", "items", kv, "logicalType", "map"),
                    ok),
                map_id, true, ok);
}

static json_t *array_of(const char *items, int32_t element_id, bool *ok)
{
        return chk(json_pack("{s:s,s:s,s:i}", "type", "array", "items", items, "element-id",
                             (int)element_id),
                   ok);
}

static size_t decimal_bytes(unsigned precision)
{
        return (size_t)ceil((precision * 3.321928094887362 + 1) / 8);
}

/* The Avro type of a partition value of Iceberg type t (spec Appendix A). */
static json_t *avro_type(const struct ice_type *t, int32_t field_id, bool *ok)
{
        char name[48];

        switch (t->id) {
        case ICE_TYPE_DATE:
                return chk(json_pack("{s:s,s:s}", "type", "int", "logicalType", "date"), ok);
        case ICE_TYPE_TIME:
                return chk(json_pack("{s:s,s:s}", "type", "long", "logicalType", "time-micros"),
                           ok);
        case ICE_TYPE_TIMESTAMP:
        case ICE_TYPE_TIMESTAMPTZ:
                return chk(json_pack("{s:s,s:s,s:b}", "type", "long", "logicalType",
                                     "timestamp-micros", "adjust-to-utc",
                                     t->id == ICE_TYPE_TIMESTAMPTZ),
                           ok);
        case ICE_TYPE_UUID:
                snprintf(name, sizeof(name), "uuid_fixed_%" PRId32, field_id);
                return chk(json_pack("{s:s,s:s,s:i,s:s}", "type", "fixed", "name", name, "size", 16,
                                     "logicalType", "uuid"),
                           ok);
        case ICE_TYPE_FIXED:
                snprintf(name, sizeof(name), "fixed_%" PRIu32 "_%" PRId32, t->length, field_id);
                return chk(json_pack("{s:s,s:s,s:i}", "type", "fixed", "name", name, "size",
                                     (int)t->length),
                           ok);
        case ICE_TYPE_DECIMAL:
                snprintf(name, sizeof(name), "decimal_%u_%u_%" PRId32, t->precision, t->scale,
                         field_id);
                return chk(json_pack("{s:s,s:s,s:i,s:s,s:i,s:i}", "type", "fixed", "name", name,
                                     "size", (int)decimal_bytes(t->precision), "logicalType",
                                     "decimal", "precision", t->precision, "scale", t->scale),
                           ok);
        case ICE_TYPE_BOOLEAN:
                return chk(json_string("boolean"), ok);
        case ICE_TYPE_INT:
                return chk(json_string("int"), ok);
        case ICE_TYPE_LONG:
                return chk(json_string("long"), ok);
        case ICE_TYPE_FLOAT:
                return chk(json_string("float"), ok);
        case ICE_TYPE_DOUBLE:
                return chk(json_string("double"), ok);
        case ICE_TYPE_STRING:
                return chk(json_string("string"), ok);
        case ICE_TYPE_BINARY:
                return chk(json_string("bytes"), ok);
        default:
                *ok = false; /* nanosecond timestamps are v3 */
                return NULL;
        }
}

/* Avro names: invalid characters become "_x<HEX>", a leading digit gets "_" (Java's
 * AvroSchemaUtil.makeCompatibleName). */
static int avro_name(const char *s, char *buf, size_t size)
{
        size_t o = 0;

        for (size_t i = 0; s[i]; i++) {
                unsigned char c = (unsigned char)s[i];
                bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
                bool digit = c >= '0' && c <= '9';
                int n;

                if (alpha || (digit && i > 0))
                        n = snprintf(buf + o, size - o, "%c", c);
                else if (digit)
                        n = snprintf(buf + o, size - o, "_%c", c);
                else
                        n = snprintf(buf + o, size - o, "_x%X", c);
                if (n < 0 || (size_t)n >= size - o)
                        return -ENOSPC;
                o += (size_t)n;
        }
        return o ? 0 : -EINVAL;
}

static json_t *partition_record(const struct ice_partition_spec *spec, const struct ice_type *rt,
                                bool *ok)
{
        json_t *fields = chk(json_array(), ok);

        for (size_t i = 0; fields && i < spec->n_fields; i++) {
                const struct ice_partition_field *f = &spec->fields[i];
                char name[512];

                if (avro_name(f->name, name, sizeof(name)) < 0) {
                        *ok = false;
                        break;
                }
                if (json_array_append_new(fields, field(name, avro_type(&rt[i], f->field_id, ok),
                                                        f->field_id, true, ok)) < 0)
                        *ok = false;
        }
        return chk(json_pack("{s:s,s:s,s:o*}", "type", "record", "name", "r102", "fields", fields),
                   ok);
}

static int dump_schema(json_t *schema, bool ok, char **ret)
{
        char *text = NULL, *copy = NULL;

        if (ok && schema)
                text = json_dumps(schema, JSON_COMPACT);
        json_decref(schema);
        if (text)
                copy = floe_strdup(text);
        free(text);
        if (!copy)
                return ok ? -ENOMEM : -EINVAL;
        *ret = copy;
        return 0;
}

static int manifest_schema(const struct ice_partition_spec *spec, const struct ice_type *rt,
                           char **ret)
{
        bool ok = true;
        json_t *df, *schema;

        df = chk(json_pack("{s:s,s:s,s:[o*,o*,o*,o*,o*,o*,o*,o*,o*,o*,o*,o*,o*,o*,o*,o*,o*]}",
                           "type", "record", "name", "r2", "fields",
                           field("content", json_string("int"), 134, false, &ok),
                           field("file_path", json_string("string"), 100, false, &ok),
                           field("file_format", json_string("string"), 101, false, &ok),
                           field("partition", partition_record(spec, rt, &ok), 102, false, &ok),
                           field("record_count", json_string("long"), 103, false, &ok),
                           field("file_size_in_bytes", json_string("long"), 104, false, &ok),
                           int_map(108, 117, 118, "long", "column_sizes", &ok),
                           int_map(109, 119, 120, "long", "value_counts", &ok),
                           int_map(110, 121, 122, "long", "null_value_counts", &ok),
                           int_map(137, 138, 139, "long", "nan_value_counts", &ok),
                           int_map(125, 126, 127, "bytes", "lower_bounds", &ok),
                           int_map(128, 129, 130, "bytes", "upper_bounds", &ok),
                           field("key_metadata", json_string("bytes"), 131, true, &ok),
                           field("split_offsets", array_of("long", 133, &ok), 132, true, &ok),
                           field("equality_ids", array_of("int", 136, &ok), 135, true, &ok),
                           field("sort_order_id", json_string("int"), 140, true, &ok),
                           field("referenced_data_file", json_string("string"), 143, true, &ok)),
                 &ok);
        schema = chk(json_pack("{s:s,s:s,s:[o*,o*,o*,o*,o*]}", "type", "record", "name",
                               "manifest_entry", "fields",
                               field("status", json_string("int"), 0, false, &ok),
                               field("snapshot_id", json_string("long"), 1, true, &ok),
                               field("sequence_number", json_string("long"), 3, true, &ok),
                               field("file_sequence_number", json_string("long"), 4, true, &ok),
                               field("data_file", df, 2, false, &ok)),
                     &ok);
        return dump_schema(schema, ok, ret);
}

int ice_manifest_schema_json(const struct ice_metadata *md, const struct ice_partition_spec *spec,
                             char **ret)
{
        struct ice_type *rt;
        int r;

        rt = floe_calloc(spec->n_fields ? spec->n_fields : 1, sizeof(*rt));
        if (!rt)
                return -ENOMEM;
        r = ice_spec_result_types(spec, ice_metadata_current_schema(md), rt);
        if (r == 0)
                r = manifest_schema(spec, rt, ret);
        floe_free(rt);
        return r;
}

struct part_stats {
        bool contains_null, contains_nan, has_bounds;
        struct ice_datum lower, upper;
};

struct ice_manifest_writer {
        struct avro_writer *avro;
        const struct ice_partition_spec *spec;
        struct ice_type *types; /* partition result types */
        struct part_stats *stats;
        enum ice_content content;
        size_t count;
        int32_t added, existing, deleted;
        int64_t added_rows, existing_rows, deleted_rows;
        int64_t min_seq; /* of live entries with explicit numbers; INT64_MAX: none */
};

struct ice_manifest_writer *ice_manifest_writer_free(struct ice_manifest_writer *w)
{
        if (!w)
                return NULL;
        avro_writer_free(w->avro);
        for (size_t i = 0; w->spec && w->stats && i < w->spec->n_fields; i++) {
                ice_datum_clear(&w->stats[i].lower);
                ice_datum_clear(&w->stats[i].upper);
        }
        floe_free(w->stats);
        floe_free(w->types);
        floe_free(w);
        return NULL;
}

int ice_manifest_writer_new(const struct ice_metadata *md, const struct ice_partition_spec *spec,
                            enum ice_content content, enum avro_codec codec,
                            struct ice_manifest_writer **ret)
{
        const struct ice_schema *schema = ice_metadata_current_schema(md);
        _cleanup_free_ char *avsc = NULL, *sjson = NULL, *pjson = NULL;
        struct ice_manifest_writer *w;
        char num[16];
        int r;

        w = floe_calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->spec = spec;
        w->content = content;
        w->min_seq = INT64_MAX;
        w->types = floe_calloc(spec->n_fields + 1, sizeof(*w->types));
        w->stats = floe_calloc(spec->n_fields + 1, sizeof(*w->stats));
        r = w->types && w->stats ? 0 : -ENOMEM;
        if (r == 0)
                r = ice_spec_result_types(spec, schema, w->types);
        if (r == 0)
                r = manifest_schema(spec, w->types, &avsc);
        if (r == 0)
                r = ice_schema_format(schema, &sjson);
        if (r == 0)
                r = ice_spec_fields_format(spec, &pjson);
        if (r == 0)
                r = avro_writer_new(avsc, codec, &w->avro);
        if (r == 0)
                r = avro_writer_set_meta(w->avro, "schema", sjson);
        if (r == 0) {
                snprintf(num, sizeof(num), "%" PRId32, schema->schema_id);
                r = avro_writer_set_meta(w->avro, "schema-id", num);
        }
        if (r == 0)
                r = avro_writer_set_meta(w->avro, "partition-spec", pjson);
        if (r == 0) {
                snprintf(num, sizeof(num), "%" PRId32, spec->spec_id);
                r = avro_writer_set_meta(w->avro, "partition-spec-id", num);
        }
        if (r == 0)
                r = avro_writer_set_meta(w->avro, "format-version", "2");
        if (r == 0)
                r = avro_writer_set_meta(w->avro, "content",
                                         content == ICE_CONTENT_DATA ? "data" : "deletes");
        if (r < 0) {
                ice_manifest_writer_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

void ice_manifest_writer_set_sync(struct ice_manifest_writer *w, const uint8_t sync[16])
{
        avro_writer_set_sync(w->avro, sync);
}

size_t ice_manifest_writer_count(const struct ice_manifest_writer *w)
{
        return w->count;
}

static void put_opt_long(struct avro_buf *b, bool has, int64_t v)
{
        avro_put_long(b, has);
        if (has)
                avro_put_long(b, v);
}

static void put_fixed_decimal(struct avro_buf *b, const struct ice_datum *d, size_t size)
{
        uint8_t pad = d->len && (d->bytes[0] & 0x80) ? 0xff : 0;

        for (size_t i = d->len; i < size; i++)
                avro_put_raw(b, &pad, 1);
        avro_put_raw(b, d->bytes + (d->len > size ? d->len - size : 0),
                     d->len > size ? size : d->len);
}

static int put_partition_value(struct avro_buf *b, const struct ice_type *t,
                               const struct ice_datum *d)
{
        if (d->null) {
                avro_put_long(b, 0);
                return 0;
        }
        if (d->type != t->id)
                return -EINVAL;
        avro_put_long(b, 1);
        switch (t->id) {
        case ICE_TYPE_BOOLEAN:
                avro_put_bool(b, d->v.b);
                break;
        case ICE_TYPE_INT:
        case ICE_TYPE_DATE:
                avro_put_long(b, d->v.i);
                break;
        case ICE_TYPE_FLOAT:
                avro_put_float(b, d->v.f);
                break;
        case ICE_TYPE_DOUBLE:
                avro_put_double(b, d->v.d);
                break;
        case ICE_TYPE_STRING:
        case ICE_TYPE_BINARY:
                avro_put_bytes(b, d->bytes, d->len);
                break;
        case ICE_TYPE_UUID:
        case ICE_TYPE_FIXED:
                if (d->len != (t->id == ICE_TYPE_UUID ? 16 : t->length))
                        return -EINVAL;
                avro_put_raw(b, d->bytes, d->len);
                break;
        case ICE_TYPE_DECIMAL:
                if (d->len == 0 || d->len > decimal_bytes(t->precision))
                        return -EINVAL;
                put_fixed_decimal(b, d, decimal_bytes(t->precision));
                break;
        default:
                avro_put_long(b, d->v.l);
        }
        return 0;
}

static int cmp_metrics(const void *a, const void *b)
{
        const struct ice_column_metrics *x = *(const struct ice_column_metrics *const *)a;
        const struct ice_column_metrics *y = *(const struct ice_column_metrics *const *)b;

        return (x->field_id > y->field_id) - (x->field_id < y->field_id);
}

/* One metrics map: which = 0 sizes, 1 values, 2 nulls, 3 NaNs, 4 lower, 5 upper. */
static void put_metrics_map(struct avro_buf *b, struct ice_column_metrics **cols, size_t n,
                            int which)
{
        size_t count = 0;

        for (size_t i = 0; i < n; i++) {
                const struct ice_column_metrics *c = cols[i];
                int64_t v[] = {c->column_size, c->value_count, c->null_count, c->nan_count};

                count += which < 4 ? v[which] >= 0 : which == 4 ? !!c->lower : !!c->upper;
        }
        avro_put_long(b, count > 0); /* no entries: null */
        if (!count)
                return;
        avro_put_long(b, (int64_t)count);
        for (size_t i = 0; i < n; i++) {
                const struct ice_column_metrics *c = cols[i];
                int64_t v[] = {c->column_size, c->value_count, c->null_count, c->nan_count};

                if (which < 4 && v[which] >= 0) {
                        avro_put_long(b, c->field_id);
                        avro_put_long(b, v[which]);
                } else if (which == 4 && c->lower) {
                        avro_put_long(b, c->field_id);
                        avro_put_bytes(b, c->lower, c->lower_len);
                } else if (which == 5 && c->upper) {
                        avro_put_long(b, c->field_id);
                        avro_put_bytes(b, c->upper, c->upper_len);
                }
        }
        avro_put_long(b, 0);
}

static int update_stats(struct ice_manifest_writer *w, const struct ice_data_file *f)
{
        for (size_t i = 0; i < w->spec->n_fields; i++) {
                struct part_stats *s = &w->stats[i];
                const struct ice_datum *d = &f->partition[i];
                bool nan = (d->type == ICE_TYPE_FLOAT && isnan(d->v.f)) ||
                           (d->type == ICE_TYPE_DOUBLE && isnan(d->v.d));
                int r;

                if (d->null) {
                        s->contains_null = true;
                        continue;
                }
                if (nan) {
                        s->contains_nan = true;
                        continue;
                }
                if (!s->has_bounds || ice_datum_compare(d, &s->lower) < 0) {
                        ice_datum_clear(&s->lower);
                        r = ice_datum_copy(d, &s->lower);
                        if (r < 0)
                                return r;
                }
                if (!s->has_bounds || ice_datum_compare(d, &s->upper) > 0) {
                        ice_datum_clear(&s->upper);
                        r = ice_datum_copy(d, &s->upper);
                        if (r < 0)
                                return r;
                }
                s->has_bounds = true;
        }
        return 0;
}

int ice_manifest_writer_add(struct ice_manifest_writer *w, const struct ice_manifest_entry *e)
{
        const struct ice_data_file *f = &e->file;
        struct ice_column_metrics *stack[64], **cols = stack;
        struct avro_buf *b = avro_writer_datum(w->avro);
        size_t start = b->len;
        int r = 0;

        if (f->n_partition != w->spec->n_fields || !f->path || f->record_count < 0 ||
            f->file_size < 0 ||
            (f->content == ICE_CONTENT_DATA) != (w->content == ICE_CONTENT_DATA))
                return -EINVAL;
        /* existing and deleted entries carry their sequence numbers (spec: inheritance) */
        if (e->status != ICE_STATUS_ADDED &&
            (!e->has_sequence_number || !e->has_file_sequence_number))
                return -EINVAL;
        if (f->n_columns > ELEMENTSOF(stack)) {
                cols = floe_reallocarray(NULL, f->n_columns, sizeof(*cols));
                if (!cols)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < f->n_columns; i++)
                cols[i] = &f->columns[i];
        qsort(cols, f->n_columns, sizeof(*cols), cmp_metrics);

        avro_put_long(b, e->status);
        put_opt_long(b, e->has_snapshot_id, e->snapshot_id);
        put_opt_long(b, e->has_sequence_number, e->sequence_number);
        put_opt_long(b, e->has_file_sequence_number, e->file_sequence_number);
        avro_put_long(b, f->content);
        avro_put_string(b, f->path);
        avro_put_string(b, f->format ? f->format : "PARQUET");
        for (size_t i = 0; r == 0 && i < f->n_partition; i++)
                r = put_partition_value(b, &w->types[i], &f->partition[i]);
        avro_put_long(b, f->record_count);
        avro_put_long(b, f->file_size);
        for (int m = 0; m < 6; m++)
                put_metrics_map(b, cols, f->n_columns, m);
        avro_put_long(b, !!f->key_metadata);
        if (f->key_metadata)
                avro_put_bytes(b, f->key_metadata, f->key_metadata_len);
        avro_put_long(b, f->n_split_offsets > 0);
        if (f->n_split_offsets) {
                avro_put_long(b, (int64_t)f->n_split_offsets);
                for (size_t i = 0; i < f->n_split_offsets; i++)
                        avro_put_long(b, f->split_offsets[i]);
                avro_put_long(b, 0);
        }
        avro_put_long(b, f->n_equality_ids > 0);
        if (f->n_equality_ids) {
                avro_put_long(b, (int64_t)f->n_equality_ids);
                for (size_t i = 0; i < f->n_equality_ids; i++)
                        avro_put_long(b, f->equality_ids[i]);
                avro_put_long(b, 0);
        }
        put_opt_long(b, f->sort_order_id >= 0, f->sort_order_id);
        avro_put_long(b, !!f->referenced_data_file);
        if (f->referenced_data_file)
                avro_put_string(b, f->referenced_data_file);
        if (cols != stack)
                floe_free(cols);
        if (r == 0)
                r = b->err;
        if (r == 0)
                r = update_stats(w, f);
        if (r < 0) {
                b->len = start; /* drop the half-written datum */
                return r;
        }
        r = avro_writer_end_datum(w->avro);
        if (r < 0)
                return r;
        w->count++;
        if (e->status == ICE_STATUS_ADDED) {
                w->added++;
                w->added_rows += f->record_count;
        } else if (e->status == ICE_STATUS_EXISTING) {
                w->existing++;
                w->existing_rows += f->record_count;
        } else {
                w->deleted++;
                w->deleted_rows += f->record_count;
        }
        if (e->status != ICE_STATUS_DELETED && e->has_sequence_number &&
            e->sequence_number < w->min_seq)
                w->min_seq = e->sequence_number;
        return 0;
}

int ice_manifest_writer_finish(struct ice_manifest_writer *w, uint8_t **ret, size_t *ret_len,
                               struct ice_manifest_file *ret_file)
{
        struct ice_manifest_file mf = {
                .spec_id = w->spec->spec_id,
                .content = w->content == ICE_CONTENT_DATA ? 0 : 1,
                .sequence_number = -1, /* assigned by the manifest list */
                .min_sequence_number = w->min_seq,
                .added_snapshot_id = -1,
                .added_files = w->added,
                .existing_files = w->existing,
                .deleted_files = w->deleted,
                .added_rows = w->added_rows,
                .existing_rows = w->existing_rows,
                .deleted_rows = w->deleted_rows,
                .has_partitions = true,
        };
        uint8_t *data;
        size_t len;
        int r = 0;

        if (w->spec->n_fields) {
                mf.partitions = floe_calloc(w->spec->n_fields, sizeof(*mf.partitions));
                if (!mf.partitions)
                        return -ENOMEM;
                mf.n_partitions = w->spec->n_fields;
        }
        for (size_t i = 0; r == 0 && i < w->spec->n_fields; i++) {
                struct ice_field_summary *p = &mf.partitions[i];
                const struct part_stats *s = &w->stats[i];
                bool floaty = w->types[i].id == ICE_TYPE_FLOAT || w->types[i].id == ICE_TYPE_DOUBLE;

                p->contains_null = s->contains_null;
                p->contains_nan = floaty ? s->contains_nan : -1;
                if (s->has_bounds) {
                        r = ice_value_serialize(&s->lower, &p->lower, &p->lower_len);
                        if (r == 0)
                                r = ice_value_serialize(&s->upper, &p->upper, &p->upper_len);
                }
        }
        if (r == 0)
                r = avro_writer_finish(w->avro, &data, &len);
        if (r < 0) {
                ice_manifest_file_clear(&mf);
                return r;
        }
        mf.length = (int64_t)len;
        *ret = data;
        *ret_len = len;
        *ret_file = mf;
        return 0;
}
