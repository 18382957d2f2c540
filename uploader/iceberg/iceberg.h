/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Iceberg format v2 table metadata, manifests and manifest lists, partition transforms, and
 * the table operations floe needs (create, add column, fast append with manifest merging,
 * replace, snapshot expiry, orphan detection). docs/iceberg.md describes what is written.
 *
 * The metadata functions are pure: they build the next metadata from the current one and
 * the change, with the time passed in. ice-table.h does the I/O.
 *
 * Return values: 0 or a negative errno; -EBADMSG for malformed metadata or manifests, with
 * the reason in the caller's err buffer where one is taken.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avro.h"
#include "ice-types.h"

#define ICE_PARTITION_FIELD_ID_START 1000
#define ICE_SNAPSHOT_ID_MAX          ((INT64_C(1) << 53) - 1)

/* Table properties and their defaults (the names Java uses). */
#define ICE_PROP_PREVIOUS_VERSIONS_MAX "write.metadata.previous-versions-max" /* 100 */
#define ICE_PROP_MERGE_ENABLED         "commit.manifest-merge.enabled"        /* true */
#define ICE_PROP_MERGE_MIN_COUNT       "commit.manifest.min-count-to-merge"   /* 100 */
#define ICE_PROP_MANIFEST_TARGET_SIZE  "commit.manifest.target-size-bytes"    /* 8 MiB */
#define ICE_PROP_MANIFEST_CODEC        "write.manifest.compression-codec"     /* gzip=deflate */
#define ICE_PROP_COMMIT_RETRIES        "commit.retry.num-retries"             /* 4 */
#define ICE_PROP_MAX_SNAPSHOT_AGE      "history.expire.max-snapshot-age-ms"   /* 5 days */
#define ICE_PROP_MIN_SNAPSHOTS         "history.expire.min-snapshots-to-keep" /* 1 */
#define ICE_PROP_MAX_REF_AGE           "history.expire.max-ref-age-ms"        /* forever */
#define ICE_PROP_GC_ENABLED            "gc.enabled"                           /* true */

struct ice_kv {
        char *key, *value;
};

/* A string map in insertion order. */
struct ice_kvs {
        struct ice_kv *items;
        size_t n;
};

void ice_kvs_clear(struct ice_kvs *m);
const char *ice_kvs_get(const struct ice_kvs *m, const char *key);
int ice_kvs_set(struct ice_kvs *m, const char *key, const char *value); /* replaces */
int ice_kvs_set_i64(struct ice_kvs *m, const char *key, int64_t value);
int ice_kvs_copy(const struct ice_kvs *src, struct ice_kvs *ret);
/* The value as an int64: def if absent, -EINVAL if not a number. */
int ice_kvs_get_i64(const struct ice_kvs *m, const char *key, int64_t def, int64_t *ret);

/* Types as written in metadata JSON ("long", "decimal(10, 2)", "fixed[16]"). */
int ice_type_parse(const char *s, struct ice_type *ret);
int ice_type_format(const struct ice_type *t, char *buf, size_t size);
bool ice_type_is_primitive(const struct ice_type *t);

struct ice_field {
        int32_t id;
        char *name;
        bool required;
        struct ice_type type;
        char *doc;
        json_t *nested; /* struct/list/map/other types: their JSON, kept verbatim */
};

struct ice_schema {
        int32_t schema_id;
        struct ice_field *fields;
        size_t n_fields;
        int32_t *identifier_ids;
        size_t n_identifier_ids;
};

/* A schema's JSON (Appendix C), or a bare list of its fields. */
int ice_schema_parse(const char *json, size_t len, struct ice_schema *ret, char *err,
                     size_t errsize);
void ice_schema_clear(struct ice_schema *s);

enum ice_transform_kind {
        ICE_TRANSFORM_IDENTITY,
        ICE_TRANSFORM_BUCKET,   /* param: N */
        ICE_TRANSFORM_TRUNCATE, /* param: W */
        ICE_TRANSFORM_YEAR,
        ICE_TRANSFORM_MONTH,
        ICE_TRANSFORM_DAY,
        ICE_TRANSFORM_HOUR,
        ICE_TRANSFORM_VOID,
        ICE_TRANSFORM_UNKNOWN, /* read and kept; never written to */
};

struct ice_transform {
        enum ice_transform_kind kind;
        int32_t param;
};

int ice_transform_parse(const char *s, struct ice_transform *ret);
int ice_transform_format(const struct ice_transform *t, char *buf, size_t size);
/* The result type of t over a source column type; -EINVAL if t does not apply to it. */
int ice_transform_result_type(const struct ice_transform *t, const struct ice_type *source,
                              struct ice_type *ret);
/* Applies t to a source value (nulls give nulls). ret's bytes are owned by the caller. */
int ice_transform_apply(const struct ice_transform *t, const struct ice_type *source,
                        const struct ice_datum *in, struct ice_datum *ret);
/* Murmur3 x86 32-bit, seed 0; and the bucket hash of a value (spec Appendix B). */
uint32_t ice_murmur3_32(const void *data, size_t len);
int ice_bucket_hash(const struct ice_datum *v, int32_t *ret);
/* The human string of a partition value ("2026-11-21", "2026-11-21-13", "acme", "null"). */
int ice_partition_human(const struct ice_transform *t, const struct ice_datum *v, char *buf,
                        size_t size);

struct ice_partition_field {
        int32_t source_id;
        int32_t field_id;
        char *name;
        struct ice_transform transform;
        char *transform_text; /* as read; kept for unknown transforms */
};

struct ice_partition_spec {
        int32_t spec_id;
        struct ice_partition_field *fields;
        size_t n_fields;
};

/* "tenant=acme/ts_hour=2026-11-21-13": names and values form-URL-encoded as Java does. */
int ice_partition_path(const struct ice_partition_spec *spec, const struct ice_datum *values,
                       size_t n, char *buf, size_t size);

struct ice_sort_field {
        struct ice_transform transform;
        char *transform_text;
        int32_t source_id;
        bool descending;
        bool nulls_first;
};

struct ice_sort_order {
        int32_t order_id;
        struct ice_sort_field *fields;
        size_t n_fields;
};

struct ice_snapshot {
        int64_t snapshot_id;
        bool has_parent;
        int64_t parent_id;
        int64_t sequence_number;
        int64_t timestamp_ms;
        char *manifest_list;
        struct ice_kvs summary; /* "operation" first */
        bool has_schema_id;
        int32_t schema_id;
};

struct ice_ref {
        char *name;
        int64_t snapshot_id;
        bool tag;
        int32_t min_snapshots_to_keep; /* 0: unset */
        int64_t max_snapshot_age_ms;   /* 0: unset */
        int64_t max_ref_age_ms;        /* 0: unset */
};

struct ice_snapshot_log_entry {
        int64_t timestamp_ms;
        int64_t snapshot_id;
};

struct ice_metadata_log_entry {
        int64_t timestamp_ms;
        char *file;
};

struct ice_metadata {
        int format_version;
        char table_uuid[37];
        char *location;
        int64_t last_sequence_number;
        int64_t last_updated_ms;
        int32_t last_column_id;
        struct ice_schema *schemas;
        size_t n_schemas;
        int32_t current_schema_id;
        struct ice_partition_spec *specs;
        size_t n_specs;
        int32_t default_spec_id;
        int32_t last_partition_id;
        struct ice_sort_order *sort_orders;
        size_t n_sort_orders;
        int32_t default_sort_order_id;
        struct ice_kvs properties;
        int64_t current_snapshot_id; /* -1: none */
        struct ice_snapshot *snapshots;
        size_t n_snapshots;
        struct ice_ref *refs;
        size_t n_refs;
        struct ice_snapshot_log_entry *snapshot_log;
        size_t n_snapshot_log;
        struct ice_metadata_log_entry *metadata_log;
        size_t n_metadata_log;
        json_t *extra; /* other top-level keys (statistics, partition-statistics, ...) verbatim */
};

struct ice_metadata *ice_metadata_free(struct ice_metadata *md);
/* Parses v1 and v2 metadata JSON (v1 defaults per spec Appendix E); err gets the reason. */
int ice_metadata_parse(const char *json, size_t len, struct ice_metadata **ret, char *err,
                       size_t errsize);
/* v2 JSON, floe_malloc'd and NUL-terminated. */
int ice_metadata_format(const struct ice_metadata *md, char **ret);
int ice_metadata_copy(const struct ice_metadata *md, struct ice_metadata **ret);
/* Compact JSON of a schema, and of a spec's fields only (manifest header keys). */
int ice_schema_format(const struct ice_schema *s, char **ret);
int ice_spec_fields_format(const struct ice_partition_spec *s, char **ret);

const struct ice_schema *ice_metadata_schema(const struct ice_metadata *md, int32_t schema_id);
const struct ice_schema *ice_metadata_current_schema(const struct ice_metadata *md);
const struct ice_partition_spec *ice_metadata_spec(const struct ice_metadata *md, int32_t spec_id);
const struct ice_snapshot *ice_metadata_snapshot(const struct ice_metadata *md, int64_t id);
const struct ice_snapshot *ice_metadata_current_snapshot(const struct ice_metadata *md);
const struct ice_field *ice_schema_field(const struct ice_schema *s, int32_t id);
const struct ice_field *ice_schema_field_by_name(const struct ice_schema *s, const char *name);
/* The partition values of a data file of the default spec, from its columns' bounds: each
 * source column's lower and upper bound must transform to the same value (a data file holds
 * one partition), a column of only nulls gives null. -EINVAL with the reason in err when
 * they do not. */
int ice_data_file_partition_from_bounds(const struct ice_metadata *md, struct ice_data_file *f,
                                        char *err, size_t errsize);
/* The result types of a spec's fields over a schema (ret: spec->n_fields entries). */
int ice_spec_result_types(const struct ice_partition_spec *spec, const struct ice_schema *schema,
                          struct ice_type *ret);

/* A new table. Fields get ids 1.. in order when their id is 0; partition fields get ids from
 * 1000 when theirs is 0 and names "<col>_<transform>" when theirs is NULL. */
struct ice_table_def {
        const char *location; /* absolute URI of the table directory */
        const struct ice_field *fields;
        size_t n_fields;
        const struct ice_partition_field *partition; /* source_id refers to fields[].id */
        size_t n_partition;
        const struct ice_sort_field *sort; /* empty: unsorted (order id 0) */
        size_t n_sort;
        const struct ice_kv *properties;
        size_t n_properties;
};

int ice_metadata_new(const struct ice_table_def *def, int64_t now_ms, struct ice_metadata **ret);
/* A new schema with one more optional column (id last-column-id + 1), made current. */
int ice_metadata_add_column(const struct ice_metadata *md, const char *name,
                            const struct ice_type *type, const char *doc, int64_t now_ms,
                            struct ice_metadata **ret);
/* A new snapshot (copied) made current on main: refs, snapshot-log, last-sequence-number. */
int ice_metadata_add_snapshot(const struct ice_metadata *md, const struct ice_snapshot *snap,
                              int64_t now_ms, struct ice_metadata **ret);
/* Before writing md as the successor of the metadata file prev_location (written at
 * prev_updated_ms): appends it to metadata-log, trimmed to previous-versions-max. */
int ice_metadata_log_previous(struct ice_metadata *md, const char *prev_location,
                              int64_t prev_updated_ms);
/* A random snapshot id in [1, 2^53) not used by md. */
int ice_new_snapshot_id(const struct ice_metadata *md, int64_t *ret);
int ice_uuid4(char buf[37]);

/* Manifest lists: one manifest_file per manifest (spec "Manifest Lists"). */
struct ice_field_summary {
        bool contains_null;
        int8_t contains_nan; /* -1: unknown */
        uint8_t *lower, *upper;
        size_t lower_len, upper_len;
};

struct ice_manifest_file {
        char *path;
        int64_t length;
        int32_t spec_id;
        int content; /* 0 data, 1 deletes */
        int64_t sequence_number;
        int64_t min_sequence_number;
        int64_t added_snapshot_id;
        int32_t added_files, existing_files, deleted_files;
        int64_t added_rows, existing_rows, deleted_rows;
        bool has_partitions;
        struct ice_field_summary *partitions;
        size_t n_partitions;
        uint8_t *key_metadata;
        size_t key_metadata_len;
};

void ice_manifest_file_clear(struct ice_manifest_file *m);
int ice_manifest_file_copy(const struct ice_manifest_file *src, struct ice_manifest_file *ret);
void ice_manifest_files_free(struct ice_manifest_file *m, size_t n);

enum ice_entry_status {
        ICE_STATUS_EXISTING = 0,
        ICE_STATUS_ADDED = 1,
        ICE_STATUS_DELETED = 2,
};

struct ice_manifest_entry {
        enum ice_entry_status status;
        bool has_snapshot_id, has_sequence_number, has_file_sequence_number;
        int64_t snapshot_id;
        int64_t sequence_number;
        int64_t file_sequence_number;
        struct ice_data_file file;
};

void ice_manifest_entry_clear(struct ice_manifest_entry *e);

/* Writes one manifest (Avro), entries added one at a time; finish gives the file and its
 * manifest_file record (path and sequence numbers left for the caller). */
struct ice_manifest_writer;
int ice_manifest_writer_new(const struct ice_metadata *md, const struct ice_partition_spec *spec,
                            enum ice_content content, enum avro_codec codec,
                            struct ice_manifest_writer **ret);
struct ice_manifest_writer *ice_manifest_writer_free(struct ice_manifest_writer *w);
/* Tests: fixed sync marker. */
void ice_manifest_writer_set_sync(struct ice_manifest_writer *w, const uint8_t sync[16]);
int ice_manifest_writer_add(struct ice_manifest_writer *w, const struct ice_manifest_entry *e);
size_t ice_manifest_writer_count(const struct ice_manifest_writer *w);
int ice_manifest_writer_finish(struct ice_manifest_writer *w, uint8_t **ret, size_t *ret_len,
                               struct ice_manifest_file *ret_file);

/* The Avro schema JSON of manifest_entry for a spec (result types from md's schemas). */
int ice_manifest_schema_json(const struct ice_metadata *md, const struct ice_partition_spec *spec,
                             char **ret);

int ice_manifest_list_write(int64_t snapshot_id, const int64_t *parent_id, int64_t sequence_number,
                            const struct ice_manifest_file *files, size_t n, enum avro_codec codec,
                            uint8_t **ret, size_t *ret_len);
int ice_manifest_list_read(const uint8_t *data, size_t len, struct ice_manifest_file **ret,
                           size_t *ret_n, char *err, size_t errsize);

/* Reads a manifest's entries with sequence-number and snapshot-id inheritance from mf (its
 * manifest list record). md (optional) types the partition values by the spec. */
struct ice_manifest_reader;
int ice_manifest_reader_open(const uint8_t *data, size_t len, const struct ice_manifest_file *mf,
                             const struct ice_metadata *md, struct ice_manifest_reader **ret);
struct ice_manifest_reader *ice_manifest_reader_free(struct ice_manifest_reader *r);
/* 1 and *ret filled (clear it with ice_manifest_entry_clear), 0 at the end, < 0 error. */
int ice_manifest_reader_next(struct ice_manifest_reader *r, struct ice_manifest_entry *ret);
const char *ice_manifest_reader_error(const struct ice_manifest_reader *r);
/* Header values ("schema", "partition-spec", "content", "format-version", ...). */
const char *ice_manifest_reader_meta(const struct ice_manifest_reader *r, const char *key);

/* Summary accounting for a snapshot (spec Appendix F): counts of added and removed files. */
struct ice_summary_delta {
        int64_t added_files, added_records, added_size;
        int64_t deleted_files, deleted_records, removed_size;
        int64_t added_delete_files, removed_delete_files;
        int64_t changed_partitions;
        int64_t manifests_created, manifests_kept, manifests_replaced;
};

/* The summary of a new snapshot: operation, the delta, totals carried from prev (omitted when
 * prev lacks them), then extra pairs. */
int ice_summary_build(const char *operation, const struct ice_summary_delta *d,
                      const struct ice_snapshot *prev, const struct ice_kv *extra, size_t n_extra,
                      struct ice_kvs *ret);

/* Which of n manifests (in manifest-list order) to merge into one: data manifests of the
 * spec smaller than target_bytes, in size tiers (a factor of 4 apart); the lowest tier holding
 * min_count of them merges, newest first, up to target_bytes. ret[i] set for each manifest to
 * merge; *ret_n their count (0 or >= 2). */
void ice_merge_plan(const struct ice_manifest_file *files, size_t n, int32_t spec_id,
                    size_t min_count, int64_t target_bytes, bool *ret, size_t *ret_n);

/* Snapshot retention (spec "Snapshot Retention Policy"): which snapshots stay, with table
 * properties as defaults. older_than_ms < 0 / retain_last == 0: from the properties. */
struct ice_expire_opts {
        int64_t now_ms;
        int64_t older_than_ms; /* expire snapshots older than this (absolute time) */
        int32_t retain_last;   /* on each branch */
};

/* md without the expired snapshots (refs, snapshot-log and statistics pruned); ret_expired
 * gets their ids (floe_malloc), possibly none. */
int ice_metadata_expire(const struct ice_metadata *md, const struct ice_expire_opts *o,
                        struct ice_metadata **ret, int64_t **ret_expired, size_t *ret_n);
