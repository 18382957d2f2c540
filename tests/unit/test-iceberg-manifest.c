/* SPDX-License-Identifier: Apache-2.0 */
/* Manifests and manifest lists: what we write (schema, field ids, header keys, values) read
 * back by our reader, inheritance, malformed input; and the reference tables' manifests. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "floe-alloc.h"
#include "ice-table.h"
#include "iceberg.h"
#include "test-iceberg-io.h"

#define T0 INT64_C(1763676000000)

static struct ice_metadata *table(void)
{
        static const struct ice_field fields[] = {
                {.id = 1, .name = "tenant", .required = true, .type = {ICE_TYPE_STRING}},
                {.id = 5, .name = "ts", .required = true, .type = {ICE_TYPE_TIMESTAMPTZ}},
                {.id = 6, .name = "value", .type = {ICE_TYPE_DOUBLE}},
                {.id = 9, .name = "batch_epoch", .required = true, .type = {ICE_TYPE_LONG}},
                {.id = 11, .name = "price", .type = {ICE_TYPE_DECIMAL, 0, 10, 2}},
        };
        struct ice_partition_field part[] = {
                {.source_id = 1, .transform = {ICE_TRANSFORM_IDENTITY, 0}},
                {.source_id = 5, .transform = {ICE_TRANSFORM_DAY, 0}},
                {.source_id = 9, .transform = {ICE_TRANSFORM_BUCKET, 8}},
                {.source_id = 11, .transform = {ICE_TRANSFORM_IDENTITY, 0}},
                {.source_id = 6, .name = "value raw", .transform = {ICE_TRANSFORM_IDENTITY, 0}},
        };
        struct ice_table_def def = {.location = "file:///w/t",
                                    .fields = fields,
                                    .n_fields = ELEMENTSOF(fields),
                                    .partition = part,
                                    .n_partition = ELEMENTSOF(part)};
        struct ice_metadata *md;

        assert_int_equal(ice_metadata_new(&def, T0, &md), 0);
        return md;
}

/* Data file i: partition (tenant-i, day 20778+i, bucket i, price i.00 or null, value NaN for
 * i == 2), metrics for columns 1 and 6. */
static void make_file(struct ice_data_file *f, int i)
{
        char path[64], tenant[24];
        struct ice_column_metrics m = {.field_id = 6,
                                       .column_size = 100 + i,
                                       .value_count = 10,
                                       .null_count = i,
                                       .nan_count = i == 2,
                                       .lower_len = 8,
                                       .upper_len = 8};
        double lo = -1.5, hi = 2.5 + i;

        snprintf(path, sizeof(path), "file:///w/t/data/f-%d.parquet", i);
        snprintf(tenant, sizeof(tenant), "tenant-%d", i);
        *f = (struct ice_data_file){.sort_order_id = i % 2 ? 0 : -1};
        f->path = floe_strdup(path);
        f->format = floe_strdup("PARQUET");
        f->record_count = 10 + i;
        f->file_size = 1000 + i;
        f->n_partition = 5;
        f->partition = floe_calloc(5, sizeof(*f->partition));
        f->partition[0] = (struct ice_datum){.type = ICE_TYPE_STRING,
                                             .len = strlen(tenant),
                                             .bytes = (uint8_t *)floe_strdup(tenant)};
        f->partition[1] = (struct ice_datum){.type = ICE_TYPE_DATE, .v.i = 20778 + i};
        f->partition[2] = (struct ice_datum){.type = ICE_TYPE_INT, .v.i = i};
        f->partition[3] = (struct ice_datum){.type = ICE_TYPE_DECIMAL, .null = i == 1};
        if (i != 1) {
                f->partition[3].bytes = floe_malloc(2);
                f->partition[3].bytes[0] = (uint8_t)((i * 100) >> 8);
                f->partition[3].bytes[1] = (uint8_t)(i * 100);
                f->partition[3].len = 2;
        }
        f->partition[4] =
                (struct ice_datum){.type = ICE_TYPE_DOUBLE, .v.d = i == 2 ? NAN : i * 0.5};
        m.lower = (uint8_t *)&lo;
        m.upper = (uint8_t *)&hi;
        assert_int_equal(ice_data_file_add_column(f, &m), 0);
        m = (struct ice_column_metrics){.field_id = 1,
                                        .column_size = -1,
                                        .value_count = 10,
                                        .null_count = 0,
                                        .nan_count = -1,
                                        .lower = (uint8_t *)tenant,
                                        .lower_len = strlen(tenant),
                                        .upper = (uint8_t *)tenant,
                                        .upper_len = strlen(tenant)};
        assert_int_equal(ice_data_file_add_column(f, &m), 0);
        f->split_offsets = floe_malloc(2 * sizeof(int64_t));
        f->split_offsets[0] = 4;
        f->split_offsets[1] = 500 + i;
        f->n_split_offsets = 2;
}

static const struct avro_field *field_named(const struct avro_schema *rec, const char *name)
{
        for (size_t i = 0; i < rec->n_fields; i++)
                if (strcmp(rec->fields[i].name, name) == 0)
                        return &rec->fields[i];
        fail_msg("no field %s", name);
        return NULL;
}

/* The schema carries the spec's field ids, names and the map representation. */
static void check_schema(const struct avro_schema *root)
{
        static const struct {
                const char *name;
                int32_t id;
        } entry[] = {{"status", 0},
                     {"snapshot_id", 1},
                     {"sequence_number", 3},
                     {"file_sequence_number", 4},
                     {"data_file", 2}},
          df[] = {{"content", 134},          {"file_path", 100},     {"file_format", 101},
                  {"partition", 102},        {"record_count", 103},  {"file_size_in_bytes", 104},
                  {"column_sizes", 108},     {"value_counts", 109},  {"null_value_counts", 110},
                  {"nan_value_counts", 137}, {"lower_bounds", 125},  {"upper_bounds", 128},
                  {"key_metadata", 131},     {"split_offsets", 132}, {"equality_ids", 135},
                  {"sort_order_id", 140}};
        static const int32_t kv[][3] = {{108, 117, 118}, {109, 119, 120}, {110, 121, 122},
                                        {137, 138, 139}, {125, 126, 127}, {128, 129, 130}};
        const struct avro_schema *d, *m, *p;

        assert_string_equal(root->name, "manifest_entry");
        for (size_t i = 0; i < ELEMENTSOF(entry); i++)
                assert_int_equal(field_named(root, entry[i].name)->field_id, entry[i].id);
        d = field_named(root, "data_file")->type;
        assert_string_equal(d->name, "r2");
        for (size_t i = 0; i < ELEMENTSOF(df); i++) {
                assert_true(field_named(d, df[i].name)->has_field_id);
                assert_int_equal(field_named(d, df[i].name)->field_id, df[i].id);
        }
        for (size_t i = 0; i < ELEMENTSOF(kv); i++) {
                m = avro_schema_nonnull(avro_schema_field_by_id(d, kv[i][0], NULL)->type);
                assert_int_equal(m->type, AVRO_ARRAY);
                assert_string_equal(m->logical_type, "map");
                assert_int_equal(m->items->fields[0].field_id, kv[i][1]);
                assert_int_equal(m->items->fields[1].field_id, kv[i][2]);
                assert_string_equal(m->items->fields[0].name, "key");
        }
        m = avro_schema_nonnull(avro_schema_field_by_id(d, 132, NULL)->type);
        assert_int_equal(m->element_id, 133);
        p = avro_schema_field_by_id(d, 102, NULL)->type;
        assert_string_equal(p->name, "r102");
        assert_int_equal(p->n_fields, 5);
        assert_string_equal(p->fields[0].name, "tenant");
        assert_int_equal(p->fields[0].field_id, 1000);
        assert_string_equal(p->fields[1].name, "ts_day");
        assert_string_equal(avro_schema_nonnull(p->fields[1].type)->logical_type, "date");
        assert_string_equal(p->fields[2].name, "batch_epoch_bucket");
        assert_int_equal(avro_schema_nonnull(p->fields[3].type)->type, AVRO_FIXED);
        assert_int_equal(avro_schema_nonnull(p->fields[3].type)->size, 5); /* decimal(10,2) */
        assert_string_equal(p->fields[4].name, "value_x20raw");
}

static void check_file(const struct ice_data_file *f, int i)
{
        char path[64];

        snprintf(path, sizeof(path), "file:///w/t/data/f-%d.parquet", i);
        assert_string_equal(f->path, path);
        assert_string_equal(f->format, "PARQUET");
        assert_int_equal(f->record_count, 10 + i);
        assert_int_equal(f->file_size, 1000 + i);
        assert_int_equal(f->n_partition, 5);
        assert_int_equal(f->partition[1].type, ICE_TYPE_DATE);
        assert_int_equal(f->partition[1].v.i, 20778 + i);
        assert_int_equal(f->partition[2].v.i, i);
        assert_int_equal(f->partition[3].null, i == 1);
        if (i != 1) {
                /* sign-extended to fixed(5) on the wire, the value is the same */
                struct ice_datum want = {
                        .type = ICE_TYPE_DECIMAL,
                        .bytes = (uint8_t[]){(uint8_t)((i * 100) >> 8), (uint8_t)(i * 100)},
                        .len = 2};

                assert_int_equal(f->partition[3].len, 5);
                assert_int_equal(ice_datum_compare(&f->partition[3], &want), 0);
        }
        assert_int_equal(f->n_columns, 2);
        for (size_t k = 0; k < 2; k++) {
                const struct ice_column_metrics *c = &f->columns[k];

                if (c->field_id == 6) {
                        assert_int_equal(c->column_size, 100 + i);
                        assert_int_equal(c->null_count, i);
                        assert_int_equal(c->nan_count, i == 2);
                        assert_int_equal(c->upper_len, 8);
                } else {
                        assert_int_equal(c->field_id, 1);
                        assert_int_equal(c->column_size, -1);
                        assert_int_equal(c->nan_count, -1);
                        assert_int_equal(c->lower_len, 8);
                        assert_memory_equal(c->lower, "tenant-", 7);
                }
        }
        assert_int_equal(f->n_split_offsets, 2);
        assert_int_equal(f->split_offsets[1], 500 + i);
        assert_int_equal(f->sort_order_id, i % 2 ? 0 : -1);
}

static void write_manifest(const struct ice_metadata *md, int n, int status, uint8_t **ret,
                           size_t *ret_len, struct ice_manifest_file *ret_mf)
{
        struct ice_manifest_writer *w;

        assert_int_equal(ice_manifest_writer_new(md, &md->specs[0], ICE_CONTENT_DATA,
                                                 AVRO_CODEC_DEFLATE, &w),
                         0);
        for (int i = 0; i < n; i++) {
                struct ice_manifest_entry e = {
                        .status = status, .has_snapshot_id = true, .snapshot_id = 77};

                if (status != ICE_STATUS_ADDED) {
                        e.has_sequence_number = e.has_file_sequence_number = true;
                        e.sequence_number = 3 + i;
                        e.file_sequence_number = 4 + i;
                }
                make_file(&e.file, i);
                assert_int_equal(ice_manifest_writer_add(w, &e), 0);
                ice_data_file_clear(&e.file);
        }
        assert_int_equal(ice_manifest_writer_count(w), n);
        assert_int_equal(ice_manifest_writer_finish(w, ret, ret_len, ret_mf), 0);
        ice_manifest_writer_free(w);
}

static void test_manifest_round_trip(void **state)
{
        struct ice_metadata *md = table();
        struct ice_manifest_file mf;
        struct ice_manifest_reader *r;
        struct ice_manifest_entry e;
        struct avro_reader *ar;
        uint8_t *data;
        size_t len;
        json_t *j;

        (void)state;
        write_manifest(md, 4, ICE_STATUS_ADDED, &data, &len, &mf);
        assert_int_equal(mf.length, (int64_t)len);
        assert_int_equal(mf.added_files, 4);
        assert_int_equal(mf.added_rows, 10 + 11 + 12 + 13);
        assert_int_equal(mf.existing_files, 0);
        assert_true(mf.sequence_number < 0);              /* assigned by the list */
        assert_true(mf.min_sequence_number == INT64_MAX); /* all inherited */
        assert_int_equal(mf.n_partitions, 5);
        assert_false(mf.partitions[0].contains_null);
        assert_int_equal(mf.partitions[0].contains_nan, -1);
        assert_memory_equal(mf.partitions[0].lower, "tenant-0", 8);
        assert_memory_equal(mf.partitions[0].upper, "tenant-3", 8);
        assert_memory_equal(mf.partitions[1].lower, "\x2a\x51\0\0", 4); /* day 20778 */
        assert_memory_equal(mf.partitions[1].upper, "\x2d\x51\0\0", 4);
        assert_true(mf.partitions[3].contains_null);
        assert_memory_equal(mf.partitions[3].lower, "\x00", 1);     /* 0.00, minimal */
        assert_memory_equal(mf.partitions[3].upper, "\x01\x2c", 2); /* 3.00 */
        assert_int_equal(mf.partitions[4].contains_nan, 1);
        assert_int_equal(mf.partitions[4].lower_len, 8);

        /* header keys */
        assert_int_equal(avro_reader_open(data, len, NULL, &ar, NULL, 0), 0);
        check_schema(avro_reader_schema(ar));
        {
                static const char *const keys[] = {
                        "schema",         "schema-id", "partition-spec", "partition-spec-id",
                        "format-version", "content",   "avro.codec"};
                char *v;

                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        assert_int_equal(avro_reader_meta_dup(ar, keys[i], &v), 0);
                        floe_free(v);
                }
                assert_int_equal(avro_reader_meta_dup(ar, "partition-spec", &v), 0);
                j = json_loads(v, 0, NULL);
                assert_true(json_is_array(j));
                assert_int_equal(
                        json_integer_value(json_object_get(json_array_get(j, 1), "field-id")),
                        1001);
                json_decref(j);
                floe_free(v);
                assert_int_equal(avro_reader_meta_dup(ar, "content", &v), 0);
                assert_string_equal(v, "data");
                floe_free(v);
                assert_int_equal(avro_reader_meta_dup(ar, "avro.codec", &v), 0);
                assert_string_equal(v, "deflate");
                floe_free(v);
                assert_int_equal(avro_reader_meta_dup(ar, "schema", &v), 0);
                j = json_loads(v, 0, NULL);
                assert_string_equal(json_string_value(json_object_get(j, "type")), "struct");
                json_decref(j);
                floe_free(v);
        }
        avro_reader_free(ar);

        /* entries: inheritance from the list's record */
        mf.sequence_number = 9;
        mf.added_snapshot_id = 77;
        mf.path = floe_strdup("file:///w/t/metadata/m.avro");
        assert_int_equal(ice_manifest_reader_open(data, len, &mf, md, &r), 0);
        assert_string_equal(ice_manifest_reader_meta(r, "format-version"), "2");
        for (int i = 0; i < 4; i++) {
                assert_int_equal(ice_manifest_reader_next(r, &e), 1);
                assert_int_equal(e.status, ICE_STATUS_ADDED);
                assert_int_equal(e.snapshot_id, 77);
                assert_int_equal(e.sequence_number, 9);
                assert_int_equal(e.file_sequence_number, 9);
                check_file(&e.file, i);
                ice_manifest_entry_clear(&e);
        }
        assert_int_equal(ice_manifest_reader_next(r, &e), 0);
        ice_manifest_reader_free(r);
        /* without table metadata: types from the Avro schema */
        assert_int_equal(ice_manifest_reader_open(data, len, &mf, NULL, &r), 0);
        assert_int_equal(ice_manifest_reader_next(r, &e), 1);
        assert_int_equal(e.file.partition[1].type, ICE_TYPE_DATE);
        assert_int_equal(e.file.partition[3].type, ICE_TYPE_DECIMAL);
        ice_manifest_entry_clear(&e);
        ice_manifest_reader_free(r);
        ice_manifest_file_clear(&mf);
        floe_free(data);

        /* existing entries keep explicit numbers; without them they are refused */
        write_manifest(md, 2, ICE_STATUS_EXISTING, &data, &len, &mf);
        assert_int_equal(mf.min_sequence_number, 3);
        assert_int_equal(mf.existing_files, 2);
        mf.sequence_number = 9;
        mf.path = floe_strdup("m");
        assert_int_equal(ice_manifest_reader_open(data, len, &mf, md, &r), 0);
        assert_int_equal(ice_manifest_reader_next(r, &e), 1);
        assert_int_equal(e.sequence_number, 3);
        assert_int_equal(e.file_sequence_number, 4);
        ice_manifest_entry_clear(&e);
        ice_manifest_reader_free(r);
        ice_manifest_file_clear(&mf);
        floe_free(data);
        {
                struct ice_manifest_writer *w;
                struct ice_manifest_entry x = {.status = ICE_STATUS_DELETED};

                assert_int_equal(ice_manifest_writer_new(md, &md->specs[0], ICE_CONTENT_DATA,
                                                         AVRO_CODEC_NULL, &w),
                                 0);
                make_file(&x.file, 0);
                assert_int_equal(ice_manifest_writer_add(w, &x), -EINVAL);
                /* a partition value of the wrong type */
                x.status = ICE_STATUS_ADDED;
                x.file.partition[1].type = ICE_TYPE_INT;
                assert_int_equal(ice_manifest_writer_add(w, &x), -EINVAL);
                assert_int_equal(ice_manifest_writer_count(w), 0);
                ice_data_file_clear(&x.file);
                ice_manifest_writer_free(w);
        }
        ice_metadata_free(md);
}

static void test_manifest_list(void **state)
{
        struct ice_manifest_file in[2] = {0}, *out;
        int64_t parent = 41;
        uint8_t *data;
        size_t len, n;
        char err[200];
        struct avro_reader *ar;
        char *v;

        (void)state;
        /* a new manifest (numbers to assign) and a carried one */
        in[0] = (struct ice_manifest_file){.path = "file:///w/t/metadata/new-m0.avro",
                                           .length = 4000,
                                           .sequence_number = -1,
                                           .min_sequence_number = INT64_MAX,
                                           .added_snapshot_id = -1,
                                           .added_files = 2,
                                           .added_rows = 20,
                                           .has_partitions = true};
        in[0].partitions = (struct ice_field_summary[]){{.contains_null = true,
                                                         .contains_nan = -1,
                                                         .lower = (uint8_t *)"a",
                                                         .lower_len = 1,
                                                         .upper = (uint8_t *)"b",
                                                         .upper_len = 1}};
        in[0].n_partitions = 1;
        in[1] = (struct ice_manifest_file){.path = "file:///w/t/metadata/old-m0.avro",
                                           .length = 5000,
                                           .sequence_number = 3,
                                           .min_sequence_number = 2,
                                           .added_snapshot_id = 40,
                                           .existing_files = 7,
                                           .existing_rows = 70,
                                           .deleted_files = 1,
                                           .deleted_rows = 3};
        assert_int_equal(
                ice_manifest_list_write(42, &parent, 4, in, 2, AVRO_CODEC_DEFLATE, &data, &len), 0);
        assert_int_equal(avro_reader_open(data, len, NULL, &ar, NULL, 0), 0);
        assert_int_equal(avro_reader_meta_dup(ar, "snapshot-id", &v), 0);
        assert_string_equal(v, "42");
        floe_free(v);
        assert_int_equal(avro_reader_meta_dup(ar, "parent-snapshot-id", &v), 0);
        assert_string_equal(v, "41");
        floe_free(v);
        assert_int_equal(avro_reader_meta_dup(ar, "sequence-number", &v), 0);
        assert_string_equal(v, "4");
        floe_free(v);
        assert_int_equal(avro_reader_meta_dup(ar, "format-version", &v), 0);
        assert_string_equal(v, "2");
        floe_free(v);
        {
                const struct avro_schema *s = avro_reader_schema(ar), *p;

                assert_string_equal(s->name, "manifest_file");
                assert_string_equal(avro_schema_field_by_id(s, 504, NULL)->name,
                                    "added_files_count");
                p = avro_schema_nonnull(avro_schema_field_by_id(s, 507, NULL)->type);
                assert_int_equal(p->element_id, 508);
                assert_string_equal(p->items->name, "r508");
                assert_non_null(avro_schema_field_by_id(p->items, 518, NULL));
        }
        avro_reader_free(ar);
        assert_int_equal(ice_manifest_list_read(data, len, &out, &n, err, sizeof(err)), 0);
        assert_int_equal(n, 2);
        assert_string_equal(out[0].path, in[0].path);
        assert_int_equal(out[0].sequence_number, 4);
        assert_int_equal(out[0].min_sequence_number, 4);
        assert_int_equal(out[0].added_snapshot_id, 42);
        assert_int_equal(out[0].added_files, 2);
        assert_true(out[0].partitions[0].contains_null);
        assert_int_equal(out[0].partitions[0].contains_nan, -1);
        assert_memory_equal(out[0].partitions[0].upper, "b", 1);
        assert_int_equal(out[1].sequence_number, 3);
        assert_int_equal(out[1].min_sequence_number, 2);
        assert_int_equal(out[1].added_snapshot_id, 40);
        assert_int_equal(out[1].existing_rows, 70);
        assert_int_equal(out[1].deleted_files, 1);
        assert_false(out[1].has_partitions);
        ice_manifest_files_free(out, n);
        /* every truncation is refused or short */
        for (size_t k = 0; k < len; k++) {
                int r = ice_manifest_list_read(data, k, &out, &n, err, sizeof(err));

                if (r == 0) {
                        assert_true(n < 2);
                        ice_manifest_files_free(out, n);
                }
        }
        floe_free(data);
        assert_int_equal(ice_manifest_list_write(42, NULL, 4, in, 1, AVRO_CODEC_NULL, &data, &len),
                         0);
        assert_int_equal(avro_reader_open(data, len, NULL, &ar, NULL, 0), 0);
        assert_int_equal(avro_reader_meta_dup(ar, "parent-snapshot-id", &v), 0);
        assert_string_equal(v, "null");
        floe_free(v);
        avro_reader_free(ar);
        floe_free(data);
}

struct ref_totals {
        int64_t data_files, delete_files, records;
};

static int count_ref(void *ud, const struct ice_manifest_file *mf,
                     const struct ice_manifest_entry *e)
{
        struct ref_totals *t = ud;

        assert_int_equal(mf->content != 0, e->file.content != ICE_CONTENT_DATA);
        assert_true(e->has_sequence_number && e->sequence_number >= 1);
        if (e->file.content == ICE_CONTENT_DATA) {
                t->data_files++;
                t->records += e->file.record_count;
        } else {
                t->delete_files++;
        }
        return 0;
}

/* Every snapshot of every reference table: live files match the snapshot's summary. */
static void test_reference_snapshots(void **state)
{
        static const struct {
                const char *dir, *metadata, *prefix;
        } tables[] = {
                {"spark/bunnies", "v5.metadata.json", "s3a://hyperparam-iceberg/spark/bunnies"},
                {"java/bunnies", "v5.metadata.json", "s3a://hyperparam-iceberg/java/bunnies"},
                {"spark/rename_column", "v3.metadata.json",
                 "s3a://hyperparam-iceberg/spark/rename_column"},
                {"athena/example", "00001-aaf0d033-d06b-43c7-be60-67f83abd4aca.metadata.json",
                 "s3://hyperparam-iceberg/athena/example"},
        };
        const char *ref = test_reference_tables();
        int snapshots = 0;

        (void)state;
        if (!ref)
                skip();
        for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
                char dir[4200], loc[4300];
                struct test_io tio = {.map_from = tables[i].prefix, .map_to = dir};
                struct ice_io io = test_io_make(&tio);
                struct ice_table *t;

                snprintf(dir, sizeof(dir), "%s/%s", ref, tables[i].dir);
                snprintf(loc, sizeof(loc), "file://%s/metadata/%s", dir, tables[i].metadata);
                assert_int_equal(ice_table_open_metadata(&io, loc, &t, NULL, 0), 0);
                for (size_t s = 0; s < t->md->n_snapshots; s++) {
                        const struct ice_snapshot *sn = &t->md->snapshots[s];
                        struct ref_totals got = {0};
                        int64_t want;

                        assert_int_equal(ice_table_scan(t, sn->snapshot_id, true, count_ref, &got),
                                         0);
                        assert_int_equal(
                                ice_kvs_get_i64(&sn->summary, "total-data-files", -1, &want), 0);
                        assert_int_equal(got.data_files, want);
                        assert_int_equal(
                                ice_kvs_get_i64(&sn->summary, "total-delete-files", -1, &want), 0);
                        assert_int_equal(got.delete_files, want);
                        assert_int_equal(ice_kvs_get_i64(&sn->summary, "total-records", -1, &want),
                                         0);
                        assert_int_equal(got.records, want);
                        snapshots++;
                }
                ice_table_free(t);
        }
        assert_int_equal(snapshots, 3 + 3 + 1 + 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_manifest_round_trip),
                cmocka_unit_test(test_manifest_list),
                cmocka_unit_test(test_reference_snapshots),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
