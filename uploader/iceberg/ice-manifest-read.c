/* SPDX-License-Identifier: Apache-2.0 */
/* Reading manifests (ours and other engines', v1 and v2) by field id, with sequence-number and
 * snapshot-id inheritance (spec "Sequence Number Inheritance"). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

struct ice_manifest_reader {
        struct avro_reader *avro;
        struct ice_manifest_file mf;
        const struct avro_schema *data_file; /* r2 */
        const struct avro_schema *partition; /* r102 */
        size_t n_part;                       /* partition values per entry */
        size_t *part_index;                  /* spec field i -> r102 field index */
        struct ice_type *part_types;         /* NULL: inferred from the Avro types */
        char *meta[6];
        char error[240];
};

static const char *const META_KEYS[] = {
        "schema", "schema-id", "partition-spec", "partition-spec-id", "format-version", "content",
};

static int fail(struct ice_manifest_reader *r, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(struct ice_manifest_reader *r, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(r->error, sizeof(r->error), fmt, ap);
        va_end(ap);
        return err;
}

struct ice_manifest_reader *ice_manifest_reader_free(struct ice_manifest_reader *r)
{
        if (!r)
                return NULL;
        avro_reader_free(r->avro);
        ice_manifest_file_clear(&r->mf);
        floe_free(r->part_index);
        floe_free(r->part_types);
        for (size_t i = 0; i < ELEMENTSOF(r->meta); i++)
                floe_free(r->meta[i]);
        floe_free(r);
        return NULL;
}

const char *ice_manifest_reader_error(const struct ice_manifest_reader *r)
{
        return r->error[0] ? r->error : avro_reader_error(r->avro);
}

const char *ice_manifest_reader_meta(const struct ice_manifest_reader *r, const char *key)
{
        for (size_t i = 0; i < ELEMENTSOF(META_KEYS); i++)
                if (strcmp(META_KEYS[i], key) == 0)
                        return r->meta[i];
        return NULL;
}

/* Types the partition values by the spec when md knows it; maps spec order to r102 order. */
static int setup_partition(struct ice_manifest_reader *r, const struct ice_metadata *md)
{
        const struct ice_partition_spec *spec = md ? ice_metadata_spec(md, r->mf.spec_id) : NULL;
        size_t n = r->partition->n_fields;

        r->part_index = floe_calloc(n + 1, sizeof(*r->part_index));
        if (!r->part_index)
                return -ENOMEM;
        r->n_part = n;
        for (size_t i = 0; i < n; i++)
                r->part_index[i] = i;
        if (!spec || spec->n_fields != n)
                return 0;
        r->part_types = floe_calloc(n + 1, sizeof(*r->part_types));
        if (!r->part_types)
                return -ENOMEM;
        /* the schema the manifest was written with may be older: look the source up in all */
        for (size_t i = 0; i < n; i++) {
                const struct ice_partition_field *pf = &spec->fields[i];
                const struct ice_field *col = NULL;
                size_t idx;

                for (size_t s = md->n_schemas; !col && s > 0; s--)
                        col = ice_schema_field(&md->schemas[s - 1], pf->source_id);
                if (!col || !avro_schema_field_by_id(r->partition, pf->field_id, &idx) ||
                    ice_transform_result_type(&pf->transform, &col->type, &r->part_types[i]) < 0) {
                        floe_free(r->part_types);
                        r->part_types = NULL;
                        for (size_t k = 0; k < n; k++)
                                r->part_index[k] = k;
                        return 0;
                }
                r->part_index[i] = idx;
        }
        return 0;
}

int ice_manifest_reader_open(const uint8_t *data, size_t len, const struct ice_manifest_file *mf,
                             const struct ice_metadata *md, struct ice_manifest_reader **ret)
{
        struct ice_manifest_reader *r;
        const struct avro_field *f;
        const struct avro_schema *root;
        int e;

        r = floe_calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        e = ice_manifest_file_copy(mf, &r->mf);
        if (e < 0) {
                floe_free(r);
                return e;
        }
        e = avro_reader_open(data, len, NULL, &r->avro, r->error, sizeof(r->error));
        if (e < 0)
                goto fail;
        for (size_t i = 0; i < ELEMENTSOF(META_KEYS); i++) {
                e = avro_reader_meta_dup(r->avro, META_KEYS[i], &r->meta[i]);
                if (e == -ENOMEM)
                        goto fail;
        }
        root = avro_reader_schema(r->avro);
        f = avro_schema_field_by_id(root, 2, NULL);
        if (root->type != AVRO_RECORD || !f || f->type->type != AVRO_RECORD ||
            !avro_schema_field_by_id(root, 0, NULL)) {
                e = fail(r, -EBADMSG, "not a manifest (no status or data_file)");
                goto fail;
        }
        r->data_file = f->type;
        f = avro_schema_field_by_id(r->data_file, 102, NULL);
        if (!f || f->type->type != AVRO_RECORD) {
                e = fail(r, -EBADMSG, "manifest has no partition record");
                goto fail;
        }
        r->partition = f->type;
        e = setup_partition(r, md);
        if (e < 0)
                goto fail;
        *ret = r;
        return 0;
fail:
        ice_manifest_reader_free(r);
        return e;
}

static bool num(const struct avro_value *v, int64_t *ret)
{
        if (avro_value_is_null(v))
                return false;
        if (v->schema->type == AVRO_INT)
                *ret = v->u.i;
        else if (v->schema->type == AVRO_LONG)
                *ret = v->u.l;
        else
                return false;
        return true;
}

static int copy_string(const struct avro_value *v, char **ret)
{
        if (avro_value_is_null(v) || v->schema->type != AVRO_STRING ||
            memchr(v->u.bytes.ptr, 0, v->u.bytes.len))
                return -EBADMSG;
        *ret = floe_strndup((const char *)v->u.bytes.ptr, v->u.bytes.len);
        return *ret ? 0 : -ENOMEM;
}

static int copy_bytes(const struct avro_value *v, uint8_t **ret, size_t *ret_len)
{
        *ret = floe_malloc(v->u.bytes.len ? v->u.bytes.len : 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, v->u.bytes.ptr, v->u.bytes.len);
        *ret_len = v->u.bytes.len;
        return 0;
}

/* The Iceberg type an Avro partition value stands for when the spec is unknown. */
static enum ice_type_id infer(const struct avro_schema *s)
{
        const char *lt = s->logical_type ? s->logical_type : "";

        switch (s->type) {
        case AVRO_BOOLEAN:
                return ICE_TYPE_BOOLEAN;
        case AVRO_INT:
                return strcmp(lt, "date") == 0 ? ICE_TYPE_DATE : ICE_TYPE_INT;
        case AVRO_LONG:
                return strcmp(lt, "timestamp-micros") == 0 ? ICE_TYPE_TIMESTAMP
                       : strcmp(lt, "time-micros") == 0    ? ICE_TYPE_TIME
                                                           : ICE_TYPE_LONG;
        case AVRO_FLOAT:
                return ICE_TYPE_FLOAT;
        case AVRO_DOUBLE:
                return ICE_TYPE_DOUBLE;
        case AVRO_STRING:
                return ICE_TYPE_STRING;
        case AVRO_FIXED:
                return strcmp(lt, "uuid") == 0      ? ICE_TYPE_UUID
                       : strcmp(lt, "decimal") == 0 ? ICE_TYPE_DECIMAL
                                                    : ICE_TYPE_FIXED;
        default:
                return ICE_TYPE_BINARY;
        }
}

static int partition_value(const struct avro_value *v, const struct ice_type *want,
                           struct ice_datum *d)
{
        enum ice_type_id t = want ? want->id : infer(avro_schema_nonnull(v->schema));

        *d = (struct ice_datum){.type = t, .null = avro_value_is_null(v)};
        if (d->null)
                return 0;
        switch (v->schema->type) {
        case AVRO_BOOLEAN:
                if (t != ICE_TYPE_BOOLEAN)
                        return -EBADMSG;
                d->v.b = v->u.b;
                return 0;
        case AVRO_INT:
                if (t != ICE_TYPE_INT && t != ICE_TYPE_DATE)
                        return -EBADMSG;
                d->v.i = v->u.i;
                return 0;
        case AVRO_LONG:
                if (t == ICE_TYPE_INT || t == ICE_TYPE_DATE || t == ICE_TYPE_BOOLEAN ||
                    t == ICE_TYPE_FLOAT || t == ICE_TYPE_DOUBLE || t >= ICE_TYPE_STRING)
                        return -EBADMSG;
                d->v.l = v->u.l;
                return 0;
        case AVRO_FLOAT:
                if (t != ICE_TYPE_FLOAT)
                        return -EBADMSG;
                d->v.f = v->u.f;
                return 0;
        case AVRO_DOUBLE:
                if (t != ICE_TYPE_DOUBLE)
                        return -EBADMSG;
                d->v.d = v->u.d;
                return 0;
        case AVRO_STRING:
        case AVRO_BYTES:
        case AVRO_FIXED:
                if (t < ICE_TYPE_STRING || t > ICE_TYPE_DECIMAL)
                        return -EBADMSG;
                return copy_bytes(v, &d->bytes, &d->len);
        default:
                return -EBADMSG;
        }
}

static struct ice_column_metrics *column(struct ice_data_file *f, int32_t id)
{
        struct ice_column_metrics *c;

        for (size_t i = 0; i < f->n_columns; i++)
                if (f->columns[i].field_id == id)
                        return &f->columns[i];
        c = floe_reallocarray(f->columns, f->n_columns + 1, sizeof(*c));
        if (!c)
                return NULL;
        f->columns = c;
        c[f->n_columns] = (struct ice_column_metrics){.field_id = id,
                                                      .column_size = -1,
                                                      .value_count = -1,
                                                      .null_count = -1,
                                                      .nan_count = -1};
        return &c[f->n_columns++];
}

/* One metrics map (array of key/value records): which = 0..3 counts, 4 lower, 5 upper. */
static int read_metrics(const struct avro_value *df, int32_t id, int which, struct ice_data_file *f)
{
        const struct avro_value *a = avro_value_field_by_id(df, id);

        if (avro_value_is_null(a))
                return 0;
        if (a->schema->type != AVRO_ARRAY || a->schema->items->type != AVRO_RECORD ||
            a->schema->items->n_fields != 2)
                return -EBADMSG;
        for (size_t i = 0; i < a->u.list.n; i++) {
                const struct avro_value *kv = &a->u.list.items[i];
                const struct avro_value *val = &kv->u.list.items[1];
                struct ice_column_metrics *c;
                int64_t key, n = 0;
                int r;

                if (!num(&kv->u.list.items[0], &key) || key < INT32_MIN || key > INT32_MAX)
                        return -EBADMSG;
                c = column(f, (int32_t)key);
                if (!c)
                        return -ENOMEM;
                if (which < 4) {
                        if (!num(val, &n))
                                return -EBADMSG;
                        if (which == 0)
                                c->column_size = n;
                        else if (which == 1)
                                c->value_count = n;
                        else if (which == 2)
                                c->null_count = n;
                        else
                                c->nan_count = n;
                        continue;
                }
                if (avro_value_is_null(val) || val->schema->type != AVRO_BYTES)
                        return -EBADMSG;
                if (which == 4 && !c->lower)
                        r = copy_bytes(val, &c->lower, &c->lower_len);
                else if (which == 5 && !c->upper)
                        r = copy_bytes(val, &c->upper, &c->upper_len);
                else
                        r = -EBADMSG; /* a key twice */
                if (r < 0)
                        return r;
        }
        return 0;
}

static int read_longs(const struct avro_value *df, int32_t id, bool ints, void **ret, size_t *ret_n)
{
        const struct avro_value *a = avro_value_field_by_id(df, id);
        void *out;

        if (avro_value_is_null(a) || a->u.list.n == 0)
                return 0;
        if (a->schema->type != AVRO_ARRAY)
                return -EBADMSG;
        out = floe_reallocarray(NULL, a->u.list.n, ints ? sizeof(int32_t) : sizeof(int64_t));
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < a->u.list.n; i++) {
                int64_t v;

                if (!num(&a->u.list.items[i], &v)) {
                        floe_free(out);
                        return -EBADMSG;
                }
                if (ints)
                        ((int32_t *)out)[i] = (int32_t)v;
                else
                        ((int64_t *)out)[i] = v;
        }
        *ret = out;
        *ret_n = a->u.list.n;
        return 0;
}

static int read_data_file(struct ice_manifest_reader *r, const struct avro_value *df,
                          struct ice_data_file *f)
{
        const struct avro_value *part = avro_value_field_by_id(df, 102), *v;
        static const int32_t ids[] = {108, 109, 110, 137, 125, 128};
        int64_t n;
        int e;

        f->content = num(avro_value_field_by_id(df, 134), &n) ? (enum ice_content)n : 0;
        if (f->content > ICE_CONTENT_EQUALITY_DELETES)
                return fail(r, -EBADMSG, "bad content %d", f->content);
        f->spec_id = r->mf.spec_id;
        e = copy_string(avro_value_field_by_id(df, 100), &f->path);
        if (e == 0)
                e = copy_string(avro_value_field_by_id(df, 101), &f->format);
        if (e < 0)
                return e == -ENOMEM ? e : fail(r, e, "file_path or file_format missing");
        if (!num(avro_value_field_by_id(df, 103), &f->record_count) ||
            !num(avro_value_field_by_id(df, 104), &f->file_size) || f->record_count < 0 ||
            f->file_size < 0)
                return fail(r, -EBADMSG, "%s: bad record_count or file_size", f->path);
        if (r->n_part) {
                f->partition = floe_calloc(r->n_part, sizeof(*f->partition));
                if (!f->partition)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < r->n_part; i++) {
                e = partition_value(&part->u.list.items[r->part_index[i]],
                                    r->part_types ? &r->part_types[i] : NULL, &f->partition[i]);
                f->n_partition = i + 1;
                if (e < 0)
                        return e == -ENOMEM ? e : fail(r, e, "%s: bad partition value", f->path);
        }
        for (int m = 0; m < 6; m++) {
                e = read_metrics(df, ids[m], m, f);
                if (e < 0)
                        return e == -ENOMEM ? e : fail(r, e, "%s: bad metrics", f->path);
        }
        v = avro_value_field_by_id(df, 131);
        if (!avro_value_is_null(v) && v->schema->type == AVRO_BYTES) {
                e = copy_bytes(v, &f->key_metadata, &f->key_metadata_len);
                if (e < 0)
                        return e;
        }
        e = read_longs(df, 132, false, (void **)&f->split_offsets, &f->n_split_offsets);
        if (e == 0)
                e = read_longs(df, 135, true, (void **)&f->equality_ids, &f->n_equality_ids);
        if (e < 0)
                return e == -ENOMEM ? e : fail(r, e, "%s: bad list", f->path);
        f->sort_order_id = num(avro_value_field_by_id(df, 140), &n) ? (int32_t)n : -1;
        v = avro_value_field_by_id(df, 143);
        if (!avro_value_is_null(v))
                return copy_string(v, &f->referenced_data_file);
        return 0;
}

int ice_manifest_reader_next(struct ice_manifest_reader *r, struct ice_manifest_entry *ret)
{
        struct ice_manifest_entry e = {0};
        const struct avro_value *v;
        bool has_seq_field;
        int64_t n;
        int k;

        k = avro_reader_next(r->avro, &v);
        if (k <= 0)
                return k;
        if (!num(avro_value_field_by_id(v, 0), &n) || n < 0 || n > 2)
                return fail(r, -EBADMSG, "bad entry status");
        e.status = (enum ice_entry_status)n;
        e.file.sort_order_id = -1;
        k = read_data_file(r, avro_value_field_by_id(v, 2), &e.file);
        if (k < 0) {
                ice_manifest_entry_clear(&e);
                return k;
        }
        /* inheritance: null snapshot ids come from the manifest list; null sequence numbers of
         * added files too; v1 manifests have no sequence numbers: 0 */
        e.has_snapshot_id = true;
        if (!num(avro_value_field_by_id(v, 1), &e.snapshot_id))
                e.snapshot_id = r->mf.added_snapshot_id;
        has_seq_field = avro_value_field_by_id(v, 3) != NULL;
        e.has_sequence_number = num(avro_value_field_by_id(v, 3), &e.sequence_number);
        e.has_file_sequence_number = num(avro_value_field_by_id(v, 4), &e.file_sequence_number);
        if (!has_seq_field) {
                e.sequence_number = e.file_sequence_number = 0;
                e.has_sequence_number = e.has_file_sequence_number = true;
        }
        if (!e.has_sequence_number && e.status == ICE_STATUS_ADDED) {
                e.sequence_number = r->mf.sequence_number;
                e.has_sequence_number = true;
        }
        if (!e.has_file_sequence_number && e.status == ICE_STATUS_ADDED) {
                e.file_sequence_number = r->mf.sequence_number;
                e.has_file_sequence_number = true;
        }
        *ret = e;
        return 1;
}

void ice_manifest_entry_clear(struct ice_manifest_entry *e)
{
        ice_data_file_clear(&e->file);
}
