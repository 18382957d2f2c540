/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Parquet for floe's lake (docs/parquet.md): a streaming writer for flat
 * schemas of Iceberg primitive columns, and a bounded footer reader for files
 * written by anyone. Formats: apache/parquet-format parquet.thrift,
 * Encodings.md, LogicalTypes.md.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "floe-version.h"

/* Physical types: the values of parquet.thrift's Type. */
enum parquet_physical {
        PARQUET_BOOLEAN = 0,
        PARQUET_INT32 = 1,
        PARQUET_INT64 = 2,
        PARQUET_INT96 = 3,
        PARQUET_FLOAT = 4,
        PARQUET_DOUBLE = 5,
        PARQUET_BYTE_ARRAY = 6,
        PARQUET_FIXED_LEN_BYTE_ARRAY = 7,
};

/* Encodings: the values of parquet.thrift's Encoding. */
enum parquet_encoding {
        PARQUET_ENC_PLAIN = 0,
        PARQUET_ENC_PLAIN_DICTIONARY = 2,
        PARQUET_ENC_RLE = 3,
        PARQUET_ENC_BIT_PACKED = 4,
        PARQUET_ENC_DELTA_BINARY_PACKED = 5,
        PARQUET_ENC_DELTA_LENGTH_BYTE_ARRAY = 6,
        PARQUET_ENC_DELTA_BYTE_ARRAY = 7,
        PARQUET_ENC_RLE_DICTIONARY = 8,
        PARQUET_ENC_BYTE_STREAM_SPLIT = 9,
        _PARQUET_ENC_MAX = 32,
};

/* Compression codecs: the values of parquet.thrift's CompressionCodec. */
enum parquet_codec {
        PARQUET_CODEC_UNCOMPRESSED = 0,
        PARQUET_CODEC_SNAPPY = 1,
        PARQUET_CODEC_GZIP = 2,
        PARQUET_CODEC_LZO = 3,
        PARQUET_CODEC_BROTLI = 4,
        PARQUET_CODEC_LZ4 = 5,
        PARQUET_CODEC_ZSTD = 6,
        PARQUET_CODEC_LZ4_RAW = 7,
};

/* What the writer can store: Iceberg primitive types and their Parquet form. */
enum parquet_kind {
        PARQUET_KIND_BOOLEAN,     /* BOOLEAN */
        PARQUET_KIND_INT,         /* INT32 */
        PARQUET_KIND_LONG,        /* INT64 */
        PARQUET_KIND_FLOAT,       /* FLOAT */
        PARQUET_KIND_DOUBLE,      /* DOUBLE */
        PARQUET_KIND_DATE,        /* INT32 DATE: days since 1970-01-01 */
        PARQUET_KIND_TIMESTAMP,   /* INT64 TIMESTAMP(MICROS, isAdjustedToUTC=false) */
        PARQUET_KIND_TIMESTAMPTZ, /* INT64 TIMESTAMP(MICROS, isAdjustedToUTC=true) */
        PARQUET_KIND_STRING,      /* BYTE_ARRAY STRING: UTF-8 */
        _PARQUET_KIND_MAX,
};

/* Iceberg's name of a kind ("timestamptz"), and back. */
const char *parquet_kind_name(enum parquet_kind kind);
int parquet_kind_from_name(const char *name, enum parquet_kind *ret);
enum parquet_physical parquet_kind_physical(enum parquet_kind kind);

/* One leaf column of a flat schema. */
struct parquet_column {
        const char *name;
        int32_t field_id; /* the Iceberg field id, >= 0 */
        enum parquet_kind kind;
        bool required;
};

/* parquet-java's VersionParser reads this as application "floe", version FLOE_VERSION. */
#define PARQUET_CREATED_BY "floe version " FLOE_VERSION " (build " FLOE_BUILD ")"

struct parquet_options {
        enum parquet_codec codec; /* UNCOMPRESSED or ZSTD (default) */
        int zstd_level;           /* default 3, as parquet-java, DuckDB and Iceberg */
        uint64_t row_group_bytes; /* close a row group at this many buffered bytes (128 MiB) */
        uint64_t row_group_rows;  /* ... or rows (1 Mi; 0: no limit) */
        uint32_t page_bytes;      /* close a data page at this many value bytes (1 MiB) */
        uint32_t page_rows;       /* ... or rows (0: no limit) */
        uint32_t dict_bytes;      /* dictionary size before PLAIN fallback (1 MiB; 0: none) */
        bool int_delta;           /* DELTA_BINARY_PACKED for int/long/date/timestamp */
        bool float_split;         /* BYTE_STREAM_SPLIT for float/double */
        uint32_t stats_max_bytes; /* string min/max longer than this are truncated (256) */
        const char *created_by;   /* NULL: PARQUET_CREATED_BY */
};

void parquet_options_init(struct parquet_options *opts);

/*
 * Where the file's bytes go, in order: write() gets every byte exactly once
 * and returns 0 or a negative errno (the writer fails with it). What becomes of
 * the bytes after close (fsync, rename, complete a multipart upload) is the
 * sink owner's business; parquet_writer_close() reports the final size.
 */
struct parquet_sink {
        int (*write)(void *userdata, const void *data, size_t len);
        void *userdata;
};

/* A sink writing to an fd (the caller keeps it). */
struct parquet_sink parquet_sink_fd(int fd);

/* A value of a STRING column: UTF-8 bytes, not NUL terminated. */
struct parquet_str {
        const char *ptr;
        uint32_t len;
};

/*
 * One column of a batch: n_rows values of the column's C type (bool,
 * int32_t for int/date, int64_t for long/timestamps, float, double,
 * struct parquet_str), and valid[i] == 0 where row i is null (the value
 * there is ignored). valid == NULL: no nulls.
 */
struct parquet_values {
        const void *data;
        const uint8_t *valid;
};

/* Bytes, e.g. a bound in Parquet's PLAIN form (little endian; raw string). */
struct parquet_bytes {
        uint8_t *ptr;
        size_t len;
};

/*
 * What an Iceberg data_file entry needs about one column of a file. Bounds
 * are Parquet PLAIN values (= Iceberg single-value serialisation for
 * boolean, int, long, float, double, date, timestamp(tz), string); NaN is
 * never a bound (counted in nan_count instead).
 */
struct parquet_column_report {
        int32_t field_id; /* -1: the leaf has none */
        enum parquet_physical type;
        uint64_t value_count; /* values including nulls */
        bool has_null_count;
        uint64_t null_count;
        bool has_nan_count;
        uint64_t nan_count;
        uint64_t compressed_size; /* all pages with headers */
        uint64_t uncompressed_size;
        bool has_bounds;
        struct parquet_bytes lower, upper;
        bool lower_exact, upper_exact; /* false: truncated string bounds */
};

struct parquet_report {
        uint64_t num_rows;
        uint64_t file_size;
        size_t n_columns;
        struct parquet_column_report *columns;
        size_t n_row_groups;
        uint64_t *row_group_offsets; /* Iceberg split_offsets */
};

struct parquet_report *parquet_report_free(struct parquet_report *r);

struct parquet_writer;

/*
 * A writer of one file. Memory: the current row group's encoded pages, one
 * open page and one dictionary per column, so about row_group_bytes plus
 * (page_bytes + dict_bytes) per column plus the compressor's state.
 */
int parquet_writer_new(const struct parquet_column *columns, size_t n_columns,
                       const struct parquet_options *opts, const struct parquet_sink *sink,
                       struct parquet_writer **ret);
/* Adds a key-value pair to the footer (later values of a key replace earlier ones). */
int parquet_writer_set_metadata(struct parquet_writer *w, const char *key, const char *value);
/*
 * Appends n_rows rows, one struct parquet_values per column in schema order.
 * The batch is checked first (-EINVAL: a null in a required column, a
 * string over 2^31 bytes) and then taken whole; any later error (-ENOMEM,
 * the sink's) leaves the writer failed.
 */
int parquet_writer_write(struct parquet_writer *w, const struct parquet_values *columns,
                         size_t n_rows);
/* Writes the last row group and the footer; ret_report may be NULL. */
int parquet_writer_close(struct parquet_writer *w, struct parquet_report **ret_report);
/* Bytes held for the open row group (encoded pages, open pages, dictionaries). */
uint64_t parquet_writer_buffered(const struct parquet_writer *w);
/* Rows taken so far. */
uint64_t parquet_writer_rows(const struct parquet_writer *w);
/* Why the last call failed, or "". */
const char *parquet_writer_error(const struct parquet_writer *w);
struct parquet_writer *parquet_writer_free(struct parquet_writer *w);

/* ---- footer reader ---- */

/* What went wrong reading a footer: message, and where. */
struct parquet_error {
        char msg[256];
        uint64_t offset;  /* byte offset within the FileMetaData */
        int32_t field_id; /* Thrift field id being read, 0 if none */
};

struct parquet_limits {
        uint32_t max_footer;     /* FileMetaData bytes (64 MiB) */
        uint32_t max_depth;      /* Thrift struct/list nesting (32) */
        uint32_t max_list;       /* elements per Thrift list (1 Mi) */
        uint32_t max_string;     /* bytes per Thrift string/binary (16 MiB) */
        uint32_t max_columns;    /* schema elements (100,000) */
        uint32_t max_row_groups; /* (1 Mi) */
};

void parquet_limits_init(struct parquet_limits *lim);

struct parquet_logical {
        int32_t kind; /* parquet.thrift LogicalType member id (1 STRING, 8 TIMESTAMP...), 0: none */
        bool utc;     /* TIMESTAMP, TIME: isAdjustedToUTC */
        int32_t unit; /* TIMESTAMP, TIME: TimeUnit member id: 1 MILLIS, 2 MICROS, 3 NANOS */
        int32_t bit_width, scale, precision; /* INTEGER, DECIMAL */
        bool is_signed;
};

struct parquet_schema_element {
        char *name;
        int32_t type;        /* enum parquet_physical, -1 for groups */
        int32_t type_length; /* -1: absent */
        int32_t repetition;  /* 0 REQUIRED, 1 OPTIONAL, 2 REPEATED, -1 absent */
        int32_t num_children;
        int32_t converted_type; /* -1: absent */
        int32_t scale, precision;
        bool has_field_id;
        int32_t field_id;
        struct parquet_logical logical;
};

struct parquet_stats {
        bool has_min, has_max, has_min_value, has_max_value;
        struct parquet_bytes min, max; /* deprecated, signed order */
        struct parquet_bytes min_value, max_value;
        bool has_null_count, has_distinct_count, has_nan_count;
        int64_t null_count, distinct_count, nan_count;
        bool has_min_exact, has_max_exact, min_exact, max_exact;
};

struct parquet_chunk {
        char *file_path; /* NULL: this file */
        int64_t file_offset;
        int32_t type, codec;
        uint32_t encodings; /* bit (1 << enum parquet_encoding) per listed encoding */
        char **path;
        size_t path_len;
        int64_t num_values, total_uncompressed_size, total_compressed_size;
        int64_t data_page_offset;
        bool has_dictionary_page_offset;
        int64_t dictionary_page_offset;
        bool has_stats;
        struct parquet_stats stats;
        bool has_encoding_stats;
        uint32_t dict_data_pages, other_data_pages; /* from encoding_stats */
};

struct parquet_row_group {
        struct parquet_chunk *columns;
        size_t n_columns;
        int64_t total_byte_size, num_rows;
        bool has_file_offset, has_total_compressed_size, has_ordinal;
        int64_t file_offset, total_compressed_size;
        int16_t ordinal;
};

struct parquet_kv {
        char *key;
        char *value; /* NULL: absent */
};

struct parquet_arena;

struct parquet_footer {
        int32_t version;
        struct parquet_schema_element *schema;
        size_t n_schema;
        size_t n_leaves;
        size_t *leaves;   /* schema index of each leaf column, in column order */
        int32_t *max_def; /* per leaf */
        int32_t *max_rep; /* per leaf */
        int64_t num_rows;
        struct parquet_row_group *row_groups;
        size_t n_row_groups;
        struct parquet_kv *kv;
        size_t n_kv;
        char *created_by;       /* NULL: absent */
        int32_t *column_orders; /* per leaf, ColumnOrder member id (1 TYPE_ORDER), NULL: absent */
        uint64_t metadata_offset, metadata_len; /* where the FileMetaData is in the file */
        struct parquet_arena *arena;
};

/* The FileMetaData length from a file's last 8 bytes: -EBADMSG without "PAR1". */
int parquet_footer_length(const uint8_t *tail8, uint32_t *ret_len);

/*
 * Decodes the footer from the last len bytes of a file of file_size bytes
 * (len <= file_size; at least metadata + 8 bytes; the whole file works too).
 * Checks every length, count and offset; err says what and where.
 * -EBADMSG: malformed; -E2BIG: over a limit; -ENOMEM.
 */
int parquet_footer_read(const uint8_t *tail, size_t len, uint64_t file_size,
                        const struct parquet_limits *lim, struct parquet_footer **ret,
                        struct parquet_error *err);
struct parquet_footer *parquet_footer_free(struct parquet_footer *f);
/* The value of a key-value pair, NULL when absent. */
const char *parquet_footer_get(const struct parquet_footer *f, const char *key);

/*
 * Per-leaf counts, sizes and bounds as the writer reports them, from a
 * footer: bounds from min_value/max_value under TYPE_ORDER, or from the
 * deprecated min/max for signed-order types (parquet-java's rules,
 * docs/parquet.md), only when every row group with values has them, and only
 * where the PLAIN form is Iceberg's (not for decimals, times, timestamps
 * other than micros, unsigned ints, INT96); never NaN.
 */
int parquet_footer_report(const struct parquet_footer *f, uint64_t file_size,
                          struct parquet_report **ret);

/* Names for JSON output; "?" when unknown. */
const char *parquet_physical_name(int32_t type);
const char *parquet_encoding_name(int32_t enc);
const char *parquet_codec_name(int32_t codec);
const char *parquet_converted_name(int32_t converted);
