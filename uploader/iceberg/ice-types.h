/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Iceberg primitive types, single values and the description of one data file: what a file
 * writer (uploader/parquet/) hands to the Iceberg layer so it can be listed in a manifest.
 * No dependency on anything but libc: include it from either side.
 *
 * Bounds are Iceberg's binary single-value serialisation (spec Appendix D): build them with
 * ice_value_serialize() from a struct ice_datum, or in place (4/8-byte little-endian
 * numbers, UTF-8 strings without length, ...).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ice_type_id {
        ICE_TYPE_BOOLEAN,
        ICE_TYPE_INT,
        ICE_TYPE_LONG,
        ICE_TYPE_FLOAT,
        ICE_TYPE_DOUBLE,
        ICE_TYPE_DATE,         /* int days since 1970-01-01 */
        ICE_TYPE_TIME,         /* long µs since midnight */
        ICE_TYPE_TIMESTAMP,    /* long µs since the epoch, no zone */
        ICE_TYPE_TIMESTAMPTZ,  /* long µs since the epoch, UTC */
        ICE_TYPE_TIMESTAMP_NS, /* long ns (v3 types: read only) */
        ICE_TYPE_TIMESTAMPTZ_NS,
        ICE_TYPE_STRING, /* bytes: UTF-8 */
        ICE_TYPE_UUID,   /* bytes: 16, big-endian */
        ICE_TYPE_FIXED,  /* bytes: length */
        ICE_TYPE_BINARY,
        ICE_TYPE_DECIMAL, /* bytes: unscaled value, two's complement big-endian, minimal */
        ICE_TYPE_STRUCT,  /* nested types: kept as JSON, never partitioned on */
        ICE_TYPE_LIST,
        ICE_TYPE_MAP,
        ICE_TYPE_OTHER, /* unknown, variant, geometry, ...: kept as text */
};

struct ice_type {
        enum ice_type_id id;
        uint32_t length;   /* fixed[L] */
        uint8_t precision; /* decimal(P,S) */
        uint8_t scale;
};

/* One value of a primitive type. bytes are owned (floe_malloc) by whoever holds the datum. */
struct ice_datum {
        enum ice_type_id type;
        bool null;
        union {
                bool b;
                int32_t i; /* int, date */
                int64_t l; /* long, time, timestamp* */
                float f;
                double d;
        } v;
        uint8_t *bytes; /* string, uuid, fixed, binary, decimal */
        size_t len;
};

enum ice_content {
        ICE_CONTENT_DATA = 0,
        ICE_CONTENT_POSITION_DELETES = 1,
        ICE_CONTENT_EQUALITY_DELETES = 2,
};

/* Per-column metrics of one file, by Iceberg field id. -1 (or NULL) means unknown / omitted. */
struct ice_column_metrics {
        int32_t field_id;
        int64_t column_size; /* compressed bytes of the column's chunks */
        int64_t value_count; /* including nulls and NaNs */
        int64_t null_count;
        int64_t nan_count;      /* float and double only */
        uint8_t *lower, *upper; /* single-value serialisation, owned */
        size_t lower_len, upper_len;
};

struct ice_data_file {
        enum ice_content content;
        char *path;   /* absolute URI with scheme: "s3://b/t/data/...", "file:///..." */
        char *format; /* "PARQUET" */
        int32_t spec_id;
        struct ice_datum *partition; /* one per field of the partition spec, in spec order */
        size_t n_partition;
        int64_t record_count;
        int64_t file_size; /* exact bytes */
        struct ice_column_metrics *columns;
        size_t n_columns;
        int64_t *split_offsets; /* row group starts, ascending */
        size_t n_split_offsets;
        int32_t *equality_ids;
        size_t n_equality_ids;
        int32_t sort_order_id; /* -1: none */
        uint8_t *key_metadata;
        size_t key_metadata_len;
        char *referenced_data_file;
};

void ice_datum_clear(struct ice_datum *d);
int ice_datum_copy(const struct ice_datum *src, struct ice_datum *ret);
/* -1, 0, 1 in Iceberg's order (floats: -NaN < -inf < ... < -0 < 0 < ... < inf < NaN; strings and
 * binary unsigned bytewise, which is code-point order for UTF-8); nulls first. */
int ice_datum_compare(const struct ice_datum *a, const struct ice_datum *b);

/* Single-value serialisation (spec Appendix D). */
int ice_value_serialize(const struct ice_datum *v, uint8_t **ret, size_t *ret_len);
int ice_value_deserialize(const struct ice_type *t, const uint8_t *p, size_t len,
                          struct ice_datum *ret);

/* String bounds cut to at most n code points: the lower bound is a prefix; the upper bound is
 * the prefix with its last code point incremented (-ERANGE if none can be, then omit it). */
int ice_bound_truncate_lower(const uint8_t *s, size_t len, size_t n, size_t *ret_len);
int ice_bound_truncate_upper(const uint8_t *s, size_t len, size_t n, uint8_t **ret,
                             size_t *ret_len);

void ice_data_file_clear(struct ice_data_file *f);
int ice_data_file_copy(const struct ice_data_file *src, struct ice_data_file *ret);
/* Adds metrics for one column (copies the bounds). */
int ice_data_file_add_column(struct ice_data_file *f, const struct ice_column_metrics *m);
