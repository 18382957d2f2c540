/* SPDX-License-Identifier: Apache-2.0 */
/* Table metadata: new tables, JSON round trips, schema evolution, snapshots, logs, summaries,
 * merge plans, snapshot expiry; and the metadata of the reference tables. */
#include <dirent.h>
#include <errno.h>
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
#include "iceberg.h"
#include "test-iceberg-io.h"

#define T0 INT64_C(1763676000000)

/* floe.events (DESIGN.md): identity(tenant), hour(ts). */
static struct ice_metadata *events_table(const char *transform)
{
        static const struct ice_field fields[] = {
                {.id = 1, .name = "tenant", .required = true, .type = {ICE_TYPE_STRING}},
                {.id = 2, .name = "device", .required = true, .type = {ICE_TYPE_STRING}},
                {.id = 3, .name = "sensor", .required = true, .type = {ICE_TYPE_STRING}},
                {.id = 4, .name = "metric", .required = true, .type = {ICE_TYPE_STRING}},
                {.id = 5, .name = "ts", .required = true, .type = {ICE_TYPE_TIMESTAMPTZ}},
                {.id = 6, .name = "value", .type = {ICE_TYPE_DOUBLE}},
                {.id = 7, .name = "text", .type = {ICE_TYPE_STRING}},
        };
        struct ice_partition_field part[2] = {
                {.source_id = 1, .transform = {ICE_TRANSFORM_IDENTITY, 0}},
                {.source_id = 5},
        };
        struct ice_sort_field sort[] = {
                {.source_id = 5, .transform = {ICE_TRANSFORM_IDENTITY, 0}, .nulls_first = true}};
        struct ice_kv props[] = {{"write.parquet.compression-codec", "zstd"}};
        struct ice_table_def def = {
                .location = "file:///w/floe/events/",
                .fields = fields,
                .n_fields = ELEMENTSOF(fields),
                .partition = part,
                .n_partition = 2,
                .sort = sort,
                .n_sort = 1,
                .properties = props,
                .n_properties = 1,
        };
        struct ice_metadata *md;

        assert_int_equal(ice_transform_parse(transform, &part[1].transform), 0);
        assert_int_equal(ice_metadata_new(&def, T0, &md), 0);
        return md;
}

static json_t *to_json(const struct ice_metadata *md)
{
        char *text;
        json_t *j;

        assert_int_equal(ice_metadata_format(md, &text), 0);
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        floe_free(text);
        return j;
}

static void test_new_table(void **state)
{
        static const char *const required[] = {"format-version",
                                               "table-uuid",
                                               "location",
                                               "last-sequence-number",
                                               "last-updated-ms",
                                               "last-column-id",
                                               "schemas",
                                               "current-schema-id",
                                               "partition-specs",
                                               "default-spec-id",
                                               "last-partition-id",
                                               "sort-orders",
                                               "default-sort-order-id"};
        struct ice_metadata *md = events_table("hour");
        json_t *j, *spec, *f;

        (void)state;
        j = to_json(md);
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                assert_non_null(json_object_get(j, required[i]));
        assert_int_equal(json_integer_value(json_object_get(j, "format-version")), 2);
        assert_string_equal(json_string_value(json_object_get(j, "location")),
                            "file:///w/floe/events");
        assert_int_equal(json_integer_value(json_object_get(j, "current-snapshot-id")), -1);
        assert_int_equal(json_integer_value(json_object_get(j, "last-column-id")), 7);
        assert_int_equal(json_integer_value(json_object_get(j, "last-partition-id")), 1001);
        assert_null(json_object_get(j, "schema"));
        assert_null(json_object_get(j, "partition-spec"));
        assert_int_equal(strlen(json_string_value(json_object_get(j, "table-uuid"))), 36);
        spec = json_array_get(json_object_get(j, "partition-specs"), 0);
        f = json_array_get(json_object_get(spec, "fields"), 1);
        assert_string_equal(json_string_value(json_object_get(f, "name")), "ts_hour");
        assert_string_equal(json_string_value(json_object_get(f, "transform")), "hour");
        assert_int_equal(json_integer_value(json_object_get(f, "field-id")), 1001);
        assert_int_equal(json_integer_value(json_object_get(f, "source-id")), 5);
        f = json_array_get(json_object_get(spec, "fields"), 0);
        assert_string_equal(json_string_value(json_object_get(f, "name")), "tenant");
        assert_int_equal(json_integer_value(json_object_get(j, "default-sort-order-id")), 1);
        f = json_array_get(
                json_object_get(json_array_get(json_object_get(j, "sort-orders"), 0), "fields"), 0);
        assert_string_equal(json_string_value(json_object_get(f, "null-order")), "nulls-first");
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "properties"),
                                                              "write.parquet.compression-codec")),
                            "zstd");
        json_decref(j);
        ice_metadata_free(md);

        /* day(ts) and names given; a transform the source type does not allow */
        md = events_table("day");
        assert_string_equal(md->specs[0].fields[1].name, "ts_day");
        ice_metadata_free(md);
        {
                struct ice_field f1 = {.name = "a", .type = {ICE_TYPE_STRING}};
                struct ice_partition_field p1 = {.source_id = 1,
                                                 .transform = {ICE_TRANSFORM_HOUR, 0}};
                struct ice_table_def def = {.location = "file:///x",
                                            .fields = &f1,
                                            .n_fields = 1,
                                            .partition = &p1,
                                            .n_partition = 1};

                assert_int_equal(ice_metadata_new(&def, T0, &md), -EINVAL);
                p1.source_id = 9;
                assert_int_equal(ice_metadata_new(&def, T0, &md), -ENOENT);
        }
}

static void assert_same_json(const struct ice_metadata *a, const struct ice_metadata *b)
{
        char *x, *y;

        assert_int_equal(ice_metadata_format(a, &x), 0);
        assert_int_equal(ice_metadata_format(b, &y), 0);
        assert_string_equal(x, y);
        floe_free(x);
        floe_free(y);
}

static struct ice_snapshot snap(const struct ice_metadata *md, int64_t id, int64_t ts)
{
        struct ice_snapshot s = {
                .snapshot_id = id,
                .has_parent = md->current_snapshot_id != -1,
                .parent_id = md->current_snapshot_id,
                .sequence_number = md->last_sequence_number + 1,
                .timestamp_ms = ts,
                .manifest_list = "file:///w/floe/events/metadata/snap.avro",
                .has_schema_id = true,
        };

        assert_int_equal(ice_kvs_set(&s.summary, "operation", "append"), 0);
        assert_int_equal(ice_kvs_set_i64(&s.summary, "total-records", id), 0);
        return s;
}

static struct ice_metadata *add(struct ice_metadata *md, int64_t id, int64_t ts)
{
        struct ice_snapshot s = snap(md, id, ts);
        struct ice_metadata *n;

        assert_int_equal(ice_metadata_add_snapshot(md, &s, ts, &n), 0);
        ice_kvs_clear(&s.summary);
        ice_metadata_free(md);
        return n;
}

static void test_snapshots_and_logs(void **state)
{
        struct ice_metadata *md = events_table("hour"), *n, *back;
        struct ice_snapshot s;
        json_t *j, *refs;
        char *text;

        (void)state;
        md = add(md, 11, T0 + 1);
        md = add(md, 22, T0 + 2);
        assert_int_equal(md->current_snapshot_id, 22);
        assert_int_equal(md->last_sequence_number, 2);
        assert_int_equal(md->n_snapshot_log, 2);
        assert_true(md->snapshots[1].has_parent);
        assert_int_equal(md->snapshots[1].parent_id, 11);
        j = to_json(md);
        refs = json_object_get(json_object_get(j, "refs"), "main");
        assert_int_equal(json_integer_value(json_object_get(refs, "snapshot-id")), 22);
        assert_string_equal(json_string_value(json_object_get(refs, "type")), "branch");
        /* summaries are strings; the first snapshot has no parent key */
        assert_true(json_is_string(json_object_get(
                json_object_get(json_array_get(json_object_get(j, "snapshots"), 0), "summary"),
                "total-records")));
        assert_null(json_object_get(json_array_get(json_object_get(j, "snapshots"), 0),
                                    "parent-snapshot-id"));
        json_decref(j);

        /* a snapshot built on a stale base, or with a used id */
        s = snap(md, 33, T0 + 3);
        s.parent_id = 11;
        assert_int_equal(ice_metadata_add_snapshot(md, &s, T0, &n), -ESTALE);
        s.parent_id = 22;
        s.sequence_number = 2;
        assert_int_equal(ice_metadata_add_snapshot(md, &s, T0, &n), -ESTALE);
        s.sequence_number = 3;
        s.snapshot_id = 11;
        assert_int_equal(ice_metadata_add_snapshot(md, &s, T0, &n), -EINVAL);
        ice_kvs_clear(&s.summary);

        /* metadata-log kept to previous-versions-max, oldest dropped */
        assert_int_equal(ice_kvs_set(&md->properties, ICE_PROP_PREVIOUS_VERSIONS_MAX, "3"), 0);
        for (int i = 1; i <= 5; i++) {
                char loc[64];

                snprintf(loc, sizeof(loc), "file:///w/floe/events/metadata/v%d.metadata.json", i);
                assert_int_equal(ice_metadata_log_previous(md, loc, T0 + i), 0);
        }
        assert_int_equal(md->n_metadata_log, 3);
        assert_string_equal(md->metadata_log[0].file,
                            "file:///w/floe/events/metadata/v3.metadata.json");
        assert_true(md->metadata_log[2].timestamp_ms == T0 + 5);

        /* JSON round trip is exact */
        assert_int_equal(ice_metadata_format(md, &text), 0);
        assert_int_equal(ice_metadata_parse(text, strlen(text), &back, NULL, 0), 0);
        assert_same_json(md, back);
        floe_free(text);
        ice_metadata_free(back);
        ice_metadata_free(md);
}

static void test_add_column(void **state)
{
        struct ice_metadata *md = events_table("hour"), *n, *m;
        struct ice_type dbl = {.id = ICE_TYPE_DOUBLE};
        const struct ice_schema *s;

        (void)state;
        assert_int_equal(ice_metadata_add_column(md, "humidity", &dbl, "percent", T0 + 5, &n), 0);
        s = ice_metadata_current_schema(n);
        assert_int_equal(n->n_schemas, 2);
        assert_int_equal(s->schema_id, 1);
        assert_int_equal(s->n_fields, 8);
        assert_int_equal(s->fields[7].id, 8);
        assert_false(s->fields[7].required);
        assert_string_equal(s->fields[7].doc, "percent");
        assert_int_equal(n->last_column_id, 8);
        assert_true(n->last_updated_ms == T0 + 5);
        /* the old schema stays as it was */
        assert_int_equal(ice_metadata_schema(n, 0)->n_fields, 7);
        assert_int_equal(ice_metadata_add_column(n, "humidity", &dbl, NULL, T0, &m), -EEXIST);
        assert_int_equal(ice_metadata_add_column(n, "pressure", &dbl, NULL, T0, &m), 0);
        assert_int_equal(ice_metadata_current_schema(m)->fields[8].id, 9);
        assert_int_equal(m->current_schema_id, 2);
        ice_metadata_free(m);
        ice_metadata_free(n);
        ice_metadata_free(md);
}

static const char V1_TABLE[] =
        "{\"format-version\":1,\"location\":\"s3://b/t\",\"last-updated-ms\":1,"
        "\"last-column-id\":2,\"schema\":{\"type\":\"struct\",\"fields\":["
        "{\"id\":1,\"name\":\"a\",\"required\":true,\"type\":\"long\"},"
        "{\"id\":2,\"name\":\"m\",\"required\":false,\"type\":{\"type\":\"map\",\"key-id\":3,"
        "\"key\":\"string\",\"value-id\":4,\"value-required\":false,\"value\":\"int\"}}]},"
        "\"partition-spec\":[{\"name\":\"a_bucket\",\"transform\":\"bucket[8]\",\"source-id\":1}],"
        "\"snapshots\":[{\"snapshot-id\":5,\"timestamp-ms\":2,\"manifest-list\":\"s3://b/l\"}],"
        "\"current-snapshot-id\":5,\"statistics\":[]}";

static void test_parse_errors_and_v1(void **state)
{
        struct {
                const char *from, *to;
        } breaks[] = {
                {"\"last-sequence-number\":0,", ""},
                {"\"current-schema-id\":0", "\"current-schema-id\":7"},
                {"\"format-version\":2", "\"format-version\":3"},
                {"\"last-column-id\":7", "\"last-column-id\":\"7\""},
                {"\"type\":\"timestamptz\"", "\"type\":7"},
                {"\"default-spec-id\":0", "\"default-spec-id\":9"},
        };
        struct ice_metadata *md = events_table("hour"), *p;
        char *text, err[200];

        (void)state;
        assert_int_equal(ice_metadata_format(md, &text), 0);
        for (size_t i = 0; i < ELEMENTSOF(breaks); i++) {
                json_t *j = json_loads(text, 0, NULL);
                char *compact = json_dumps(j, JSON_COMPACT), *at, buf[8192];

                at = strstr(compact, breaks[i].from);
                assert_non_null(at);
                snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - compact), compact, breaks[i].to,
                         at + strlen(breaks[i].from));
                assert_int_equal(ice_metadata_parse(buf, strlen(buf), &p, err, sizeof(err)),
                                 -EBADMSG);
                assert_true(err[0] != '\0');
                free(compact);
                json_decref(j);
        }
        assert_int_equal(ice_metadata_parse("{", 1, &p, err, sizeof(err)), -EBADMSG);
        floe_free(text);
        ice_metadata_free(md);

        /* v1: one schema, one spec with ids from 1000, main from current-snapshot-id */
        assert_int_equal(ice_metadata_parse(V1_TABLE, strlen(V1_TABLE), &md, err, sizeof(err)), 0);
        assert_int_equal(md->format_version, 1);
        assert_int_equal(md->last_sequence_number, 0);
        assert_int_equal(md->specs[0].fields[0].field_id, 1000);
        assert_int_equal(md->specs[0].fields[0].transform.kind, ICE_TRANSFORM_BUCKET);
        assert_int_equal(md->last_partition_id, 1000);
        assert_int_equal(md->n_refs, 1);
        assert_int_equal(md->refs[0].snapshot_id, 5);
        assert_int_equal(md->schemas[0].fields[1].type.id, ICE_TYPE_MAP);
        assert_non_null(md->schemas[0].fields[1].nested);
        assert_non_null(json_object_get(md->extra, "statistics"));
        ice_metadata_free(md);
}

static void test_summary(void **state)
{
        struct ice_summary_delta d = {.added_files = 3,
                                      .added_records = 30,
                                      .added_size = 3000,
                                      .changed_partitions = 2,
                                      .manifests_created = 1};
        struct ice_snapshot prev = {0};
        struct ice_kv extra[] = {{"uploader.gw-1.last-batch-seq", "41"}};
        struct ice_kvs m;

        (void)state;
        /* the first snapshot: totals from zero */
        assert_int_equal(ice_summary_build("append", &d, NULL, extra, 1, &m), 0);
        assert_string_equal(m.items[0].key, "operation");
        assert_string_equal(ice_kvs_get(&m, "added-data-files"), "3");
        assert_string_equal(ice_kvs_get(&m, "total-records"), "30");
        assert_string_equal(ice_kvs_get(&m, "total-delete-files"), "0");
        assert_string_equal(ice_kvs_get(&m, "uploader.gw-1.last-batch-seq"), "41");
        assert_null(ice_kvs_get(&m, "deleted-data-files"));
        prev.summary = m;
        /* a replace on top */
        d = (struct ice_summary_delta){.added_files = 1,
                                       .added_records = 30,
                                       .added_size = 2500,
                                       .deleted_files = 3,
                                       .deleted_records = 30,
                                       .removed_size = 3000,
                                       .changed_partitions = 2};
        assert_int_equal(ice_summary_build("replace", &d, &prev, NULL, 0, &m), 0);
        assert_string_equal(ice_kvs_get(&m, "total-data-files"), "1");
        assert_string_equal(ice_kvs_get(&m, "total-records"), "30");
        assert_string_equal(ice_kvs_get(&m, "total-files-size"), "2500");
        assert_string_equal(ice_kvs_get(&m, "deleted-data-files"), "3");
        assert_string_equal(ice_kvs_get(&m, "removed-files-size"), "3000");
        ice_kvs_clear(&prev.summary);
        /* a previous summary without totals: none are guessed */
        prev.summary = m;
        assert_int_equal(ice_kvs_set(&prev.summary, "total-records", "x"), 0);
        assert_int_equal(ice_summary_build("append", &d, &prev, NULL, 0, &m), 0);
        assert_null(ice_kvs_get(&m, "total-records"));
        ice_kvs_clear(&m);
        ice_kvs_clear(&prev.summary);
        assert_int_equal(
                ice_summary_build("append", &d, NULL, (struct ice_kv[]){{"operation", "x"}}, 1, &m),
                -EINVAL);
}

static void test_merge_plan(void **state)
{
        struct ice_manifest_file f[6] = {0};
        bool merge[6];
        size_t n;

        (void)state;
        for (int i = 0; i < 6; i++)
                f[i].length = 100;
        f[2].length = 10000; /* big: never merged */
        f[4].content = 1;    /* deletes: never merged */
        ice_merge_plan(f, 6, 0, 5, 1000, merge, &n);
        assert_int_equal(n, 0); /* 4 candidates < 5 */
        ice_merge_plan(f, 6, 0, 4, 1000, merge, &n);
        assert_int_equal(n, 4);
        assert_true(merge[0] && merge[1] && !merge[2] && merge[3] && !merge[4] && merge[5]);
        /* the merged size stays within the target: newest first */
        ice_merge_plan(f, 6, 0, 2, 250, merge, &n);
        assert_int_equal(n, 2);
        assert_true(merge[0] && merge[1] && !merge[3]);
        /* another spec's manifests stay */
        f[1].spec_id = 1;
        ice_merge_plan(f, 6, 0, 3, 1000, merge, &n);
        assert_int_equal(n, 3);
        assert_false(merge[1]);
        /* size tiers: big manifests merge among themselves, not with every small one */
        for (int i = 0; i < 6; i++)
                f[i] = (struct ice_manifest_file){.length = i % 2 ? 200000 : 5000};
        ice_merge_plan(f, 6, 0, 3, 8 << 20, merge, &n);
        assert_int_equal(n, 3);
        assert_true(merge[0] && !merge[1] && merge[2] && !merge[3] && merge[4] && !merge[5]);
        f[4].length = 300000;
        ice_merge_plan(f, 6, 0, 3, 8 << 20, merge, &n);
        assert_int_equal(n, 3);
        assert_true(!merge[0] && merge[1] && merge[3] && merge[5]);
        ice_merge_plan(f, 6, 0, 4, 8 << 20, merge, &n);
        assert_int_equal(n, 0);
}

static void test_expire_pure(void **state)
{
        struct ice_expire_opts o = {.now_ms = T0 + 100 * 1000, .older_than_ms = -1};
        struct ice_metadata *md = events_table("hour"), *n;
        struct ice_ref *refs;
        int64_t *ids;
        size_t ne;

        (void)state;
        for (int i = 1; i <= 6; i++)
                md = add(md, i, T0 + i * 1000);
        /* defaults: 5 days, keep 1: nothing is that old */
        assert_int_equal(ice_metadata_expire(md, &o, &n, &ids, &ne), 0);
        assert_int_equal(ne, 0);
        floe_free(ids);
        ice_metadata_free(n);
        /* keep the last 2 of everything older than now */
        o.older_than_ms = o.now_ms;
        o.retain_last = 2;
        assert_int_equal(ice_metadata_expire(md, &o, &n, &ids, &ne), 0);
        assert_int_equal(ne, 4);
        assert_int_equal(ids[0], 1);
        assert_int_equal(ids[3], 4);
        assert_int_equal(n->n_snapshots, 2);
        assert_int_equal(n->snapshots[0].snapshot_id, 5);
        assert_int_equal(n->n_snapshot_log, 2);
        assert_int_equal(n->current_snapshot_id, 6);
        assert_true(n->last_updated_ms == o.now_ms);
        floe_free(ids);
        ice_metadata_free(n);
        /* by age: everything before T0 + 3.5 s goes, the head always stays */
        o.older_than_ms = T0 + 3500;
        o.retain_last = 0;
        assert_int_equal(ice_metadata_expire(md, &o, &n, &ids, &ne), 0);
        assert_int_equal(ne, 3);
        floe_free(ids);
        ice_metadata_free(n);
        o.older_than_ms = T0 + 10000;
        assert_int_equal(ice_metadata_expire(md, &o, &n, &ids, &ne), 0);
        assert_int_equal(ne, 5);
        assert_int_equal(n->snapshots[0].snapshot_id, 6);
        floe_free(ids);
        ice_metadata_free(n);
        /* a tag keeps snapshot 2; an old tag past its max-ref-age is dropped */
        refs = floe_reallocarray(md->refs, md->n_refs + 2, sizeof(*refs));
        md->refs = refs;
        refs[md->n_refs++] =
                (struct ice_ref){.name = floe_strdup("audit"), .snapshot_id = 2, .tag = true};
        refs[md->n_refs++] = (struct ice_ref){
                .name = floe_strdup("old"), .snapshot_id = 1, .tag = true, .max_ref_age_ms = 1000};
        assert_int_equal(ice_metadata_expire(md, &o, &n, &ids, &ne), 0);
        assert_int_equal(ne, 4);
        assert_non_null(ice_metadata_snapshot(n, 2));
        assert_null(ice_metadata_snapshot(n, 1));
        assert_int_equal(n->n_refs, 2);
        /* the snapshot-log keeps only the history after the last expired entry */
        assert_int_equal(n->n_snapshot_log, 1);
        assert_int_equal(n->snapshot_log[0].snapshot_id, 6);
        floe_free(ids);
        ice_metadata_free(n);
        ice_metadata_free(md);
}

static void test_snapshot_ids(void **state)
{
        (void)state;
        for (int i = 0; i < 1000; i++) {
                int64_t id;

                assert_int_equal(ice_new_snapshot_id(NULL, &id), 0);
                assert_true(id > 0 && id <= ICE_SNAPSHOT_ID_MAX);
        }
}

static void add_bounds(struct ice_data_file *f, int32_t id, struct ice_datum lo,
                       struct ice_datum hi, int64_t values, int64_t nulls)
{
        struct ice_column_metrics m = {.field_id = id,
                                       .column_size = -1,
                                       .value_count = values,
                                       .null_count = nulls,
                                       .nan_count = -1};

        if (values > nulls) {
                assert_int_equal(ice_value_serialize(&lo, &m.lower, &m.lower_len), 0);
                assert_int_equal(ice_value_serialize(&hi, &m.upper, &m.upper_len), 0);
        }
        assert_int_equal(ice_data_file_add_column(f, &m), 0);
        floe_free(m.lower);
        floe_free(m.upper);
}

static struct ice_datum str(const char *s)
{
        return (struct ice_datum){.type = ICE_TYPE_STRING, .bytes = (uint8_t *)s, .len = strlen(s)};
}

static struct ice_datum tstz(int64_t us)
{
        return (struct ice_datum){.type = ICE_TYPE_TIMESTAMPTZ, .v.l = us};
}

static void test_partition_from_bounds(void **state)
{
        struct ice_metadata *md = events_table("hour"), *b;
        int64_t h = INT64_C(3600000000), t13 = INT64_C(1795266000000000); /* 13:00Z */
        struct ice_data_file f = {.sort_order_id = -1};
        char err[128];

        (void)state;
        add_bounds(&f, 1, str("acme"), str("acme"), 10, 0);
        add_bounds(&f, 5, tstz(t13), tstz(t13 + h - 1), 10, 0);
        assert_int_equal(ice_data_file_partition_from_bounds(md, &f, err, sizeof(err)), 0);
        assert_int_equal(f.n_partition, 2);
        assert_memory_equal(f.partition[0].bytes, "acme", 4);
        assert_int_equal(f.partition[1].type, ICE_TYPE_INT);
        assert_int_equal(f.partition[1].v.i, 498685);
        ice_data_file_clear(&f);
        /* one more microsecond is the next hour */
        f = (struct ice_data_file){.sort_order_id = -1};
        add_bounds(&f, 1, str("acme"), str("acme"), 10, 0);
        add_bounds(&f, 5, tstz(t13), tstz(t13 + h), 10, 0);
        assert_int_equal(ice_data_file_partition_from_bounds(md, &f, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "ts_hour"));
        ice_data_file_clear(&f);
        /* two tenants; a column of nulls and values; no statistics */
        f = (struct ice_data_file){.sort_order_id = -1};
        add_bounds(&f, 1, str("acme"), str("zeta"), 10, 0);
        add_bounds(&f, 5, tstz(t13), tstz(t13), 10, 0);
        assert_int_equal(ice_data_file_partition_from_bounds(md, &f, err, sizeof(err)), -EINVAL);
        ice_data_file_clear(&f);
        f = (struct ice_data_file){.sort_order_id = -1};
        add_bounds(&f, 1, str("acme"), str("acme"), 10, 2);
        add_bounds(&f, 5, tstz(t13), tstz(t13), 10, 0);
        assert_int_equal(ice_data_file_partition_from_bounds(md, &f, err, sizeof(err)), -EINVAL);
        ice_data_file_clear(&f);
        f = (struct ice_data_file){.sort_order_id = -1};
        add_bounds(&f, 1, str("acme"), str("acme"), 10, 0);
        assert_int_equal(ice_data_file_partition_from_bounds(md, &f, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "no bounds"));
        ice_data_file_clear(&f);
        /* only nulls: a null partition value */
        f = (struct ice_data_file){.sort_order_id = -1};
        add_bounds(&f, 1, str(""), str(""), 3, 3);
        add_bounds(&f, 5, tstz(t13), tstz(t13), 3, 0);
        assert_int_equal(ice_data_file_partition_from_bounds(md, &f, err, sizeof(err)), 0);
        assert_true(f.partition[0].null);
        ice_data_file_clear(&f);
        ice_metadata_free(md);
        /* a bucket needs one value, not a range that happens to share a bucket */
        {
                static const struct ice_field fields[] = {
                        {.id = 1, .name = "n", .required = true, .type = {ICE_TYPE_LONG}}};
                struct ice_partition_field part = {.source_id = 1,
                                                   .transform = {ICE_TRANSFORM_BUCKET, 1}};
                struct ice_table_def def = {.location = "file:///b",
                                            .fields = fields,
                                            .n_fields = 1,
                                            .partition = &part,
                                            .n_partition = 1};
                struct ice_datum lo = {.type = ICE_TYPE_LONG, .v.l = 1};
                struct ice_datum hi = {.type = ICE_TYPE_LONG, .v.l = 2};

                assert_int_equal(ice_metadata_new(&def, T0, &b), 0);
                f = (struct ice_data_file){.sort_order_id = -1};
                add_bounds(&f, 1, lo, hi, 2, 0);
                assert_int_equal(ice_data_file_partition_from_bounds(b, &f, err, sizeof(err)),
                                 -EINVAL);
                ice_data_file_clear(&f);
                f = (struct ice_data_file){.sort_order_id = -1};
                add_bounds(&f, 1, hi, hi, 2, 0);
                assert_int_equal(ice_data_file_partition_from_bounds(b, &f, err, sizeof(err)), 0);
                assert_int_equal(f.partition[0].v.i, 0);
                ice_data_file_clear(&f);
                ice_metadata_free(b);
        }
}

static void test_schema_parse(void **state)
{
        static const char list[] = "[{\"id\":1,\"name\":\"a\",\"required\":true,"
                                   "\"type\":\"decimal(9, 2)\"}]";
        struct ice_schema s;
        char err[128], *text;

        (void)state;
        assert_int_equal(ice_schema_parse(list, strlen(list), &s, err, sizeof(err)), 0);
        assert_int_equal(s.n_fields, 1);
        assert_int_equal(s.fields[0].type.id, ICE_TYPE_DECIMAL);
        assert_int_equal(ice_schema_format(&s, &text), 0);
        assert_non_null(strstr(text, "\"decimal(9, 2)\""));
        assert_non_null(strstr(text, "\"schema-id\":0"));
        floe_free(text);
        ice_schema_clear(&s);
        assert_int_equal(ice_schema_parse("[{\"id\":1}]", 10, &s, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "name"));
}

/* Every metadata JSON of the reference tables parses, and formats back to itself. */
static void test_reference_metadata(void **state)
{
        static const char *const tables[] = {"spark/bunnies", "java/bunnies", "spark/rename_column",
                                             "athena/example"};
        const char *ref = test_reference_tables();
        size_t seen = 0;

        (void)state;
        if (!ref)
                skip();
        for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
                char dir[4200];
                struct dirent *e;
                DIR *d;

                snprintf(dir, sizeof(dir), "%s/%s/metadata", ref, tables[i]);
                d = opendir(dir);
                assert_non_null(d);
                while ((e = readdir(d))) {
                        struct test_io tio = {0};
                        struct ice_metadata *md, *back;
                        char loc[4500], err[200], *text;
                        uint8_t *data = NULL;
                        size_t len = 0;

                        if (!strstr(e->d_name, ".metadata.json"))
                                continue;
                        snprintf(loc, sizeof(loc), "file://%s/%s", dir, e->d_name);
                        assert_int_equal(tio_get(&tio, loc, 1 << 20, &data, &len), 0);
                        assert_int_equal(
                                ice_metadata_parse((char *)data, len, &md, err, sizeof(err)), 0);
                        assert_int_equal(md->format_version, 2);
                        assert_true(md->n_snapshots == 0 ||
                                    ice_metadata_current_snapshot(md) != NULL);
                        assert_int_equal(ice_metadata_format(md, &text), 0);
                        assert_int_equal(
                                ice_metadata_parse(text, strlen(text), &back, err, sizeof(err)), 0);
                        assert_same_json(md, back);
                        floe_free(text);
                        floe_free(data);
                        ice_metadata_free(back);
                        ice_metadata_free(md);
                        seen++;
                }
                closedir(d);
        }
        assert_int_equal(seen, 15);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new_table),
                cmocka_unit_test(test_snapshots_and_logs),
                cmocka_unit_test(test_add_column),
                cmocka_unit_test(test_parse_errors_and_v1),
                cmocka_unit_test(test_summary),
                cmocka_unit_test(test_merge_plan),
                cmocka_unit_test(test_expire_pure),
                cmocka_unit_test(test_snapshot_ids),
                cmocka_unit_test(test_partition_from_bounds),
                cmocka_unit_test(test_schema_parse),
                cmocka_unit_test(test_reference_metadata),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
