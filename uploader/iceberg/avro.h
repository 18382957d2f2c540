/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Apache Avro 1.11, as much as Iceberg manifests need: the binary encoding,
 * schemas (parsed from their JSON form, with the Iceberg "field-id" and
 * "element-id" attributes) and object container files. Writers encode
 * straight into an avro_buf; readers decode whole datums, schema-driven and
 * bounded, into values that live until the next datum. docs/iceberg.md says
 * what we write and what we read.
 *
 * Return values: 0 or a negative errno. Readers: -EBADMSG for malformed
 * input, -EOPNOTSUPP for a codec we do not decompress (snappy, bzip2, xz),
 * -E2BIG when input exceeds a limit, -ENOMEM; avro_reader_error() has the
 * reason as text.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Growable output buffer. The put functions never fail: the first failed
 * allocation sets err (-ENOMEM) and later puts do nothing; check err once. */
struct avro_buf {
        uint8_t *data;
        size_t len, cap;
        int err;
};

void avro_buf_release(struct avro_buf *b); /* frees data; the struct may be reused */
void avro_put_raw(struct avro_buf *b, const void *p, size_t len);
void avro_put_long(struct avro_buf *b, int64_t v); /* zigzag varint; also int, enum, union index */
void avro_put_bool(struct avro_buf *b, bool v);
void avro_put_float(struct avro_buf *b, float v);
void avro_put_double(struct avro_buf *b, double v);
void avro_put_bytes(struct avro_buf *b, const void *p, size_t len); /* long length + bytes */
void avro_put_string(struct avro_buf *b, const char *s);            /* NULL puts "" */

/* Decoding primitives over [p, p + len); each advances *pos and returns 0 or -EBADMSG. */
int avro_get_long(const uint8_t *p, size_t len, size_t *pos, int64_t *ret);
int avro_get_int(const uint8_t *p, size_t len, size_t *pos, int32_t *ret);
int avro_get_bytes(const uint8_t *p, size_t len, size_t *pos, const uint8_t **ret, size_t *ret_len);

enum avro_type {
        AVRO_NULL,
        AVRO_BOOLEAN,
        AVRO_INT,
        AVRO_LONG,
        AVRO_FLOAT,
        AVRO_DOUBLE,
        AVRO_BYTES,
        AVRO_STRING,
        AVRO_RECORD,
        AVRO_ENUM,
        AVRO_ARRAY,
        AVRO_MAP,
        AVRO_UNION,
        AVRO_FIXED,
};

struct avro_schema;

struct avro_field {
        char *name;
        struct avro_schema *type;
        int32_t field_id; /* Iceberg "field-id"; valid if has_field_id */
        bool has_field_id;
};

struct avro_schema {
        enum avro_type type;
        char *name;                /* full name of a record, enum or fixed */
        char *logical_type;        /* "logicalType", or NULL */
        struct avro_field *fields; /* record */
        size_t n_fields;
        struct avro_schema **branches; /* union */
        size_t n_branches;
        struct avro_schema *items; /* array items, map values */
        int32_t element_id;        /* Iceberg "element-id" of an array */
        bool has_element_id;
        size_t size;       /* fixed */
        size_t n_symbols;  /* enum */
        bool may_be_empty; /* a datum of this type can take zero bytes */
};

struct avro_schema_tree; /* owns every node of one parsed schema */

#define AVRO_SCHEMA_MAX_DEPTH 64

int avro_schema_parse(const char *json, size_t len, struct avro_schema_tree **ret);
struct avro_schema_tree *avro_schema_tree_free(struct avro_schema_tree *t);
const struct avro_schema *avro_schema_root(const struct avro_schema_tree *t);
/* The field of a record with this Iceberg field id, or NULL; *ret_index its position. */
const struct avro_field *avro_schema_field_by_id(const struct avro_schema *record, int32_t id,
                                                 size_t *ret_index);
/* The non-null branch of ["null", T] / [T, "null"], or s itself when s is no union. */
const struct avro_schema *avro_schema_nonnull(const struct avro_schema *s);

/*
 * A decoded datum. Unions are resolved: a value's schema is the branch's
 * schema and branch its index. Records: u.list has one value per field in
 * schema order; arrays: one per item; maps: 2n values, key (a string) then
 * value. bytes, string and fixed point into the decoded block.
 */
struct avro_value {
        const struct avro_schema *schema;
        uint32_t branch;
        union {
                bool b;
                int32_t i; /* int, enum */
                int64_t l; /* long */
                float f;
                double d;
                struct {
                        const uint8_t *ptr;
                        size_t len;
                } bytes;
                struct {
                        struct avro_value *items;
                        size_t n;
                } list;
        } u;
};

static inline bool avro_value_is_null(const struct avro_value *v)
{
        return !v || v->schema->type == AVRO_NULL;
}

/* The value of the record field with this field id; NULL if the schema has no such field. */
const struct avro_value *avro_value_field_by_id(const struct avro_value *record, int32_t id);

struct avro_limits {
        size_t max_block_bytes;  /* decompressed size of one block */
        size_t max_datum_values; /* values decoded for one datum */
        size_t max_meta_entries; /* header metadata pairs */
};

void avro_limits_default(struct avro_limits *l);

/* Decodes one datum of schema s from p[*pos..len) into values allocated from arena-backed
 * storage owned by the decoder. */
struct avro_decoder;
int avro_decoder_new(const struct avro_limits *lim, struct avro_decoder **ret);
struct avro_decoder *avro_decoder_free(struct avro_decoder *d);
/* The previous datum's values are released first. */
int avro_decode(struct avro_decoder *d, const struct avro_schema *s, const uint8_t *p, size_t len,
                size_t *pos, const struct avro_value **ret);
const char *avro_decoder_error(const struct avro_decoder *d);

/* Object container files. */
enum avro_codec {
        AVRO_CODEC_NULL,
        AVRO_CODEC_DEFLATE,
        AVRO_CODEC_ZSTANDARD, /* read only */
};

#define AVRO_SYNC_SIZE 16

struct avro_writer;
/* schema_json is copied; the codec is always written to avro.codec. */
int avro_writer_new(const char *schema_json, enum avro_codec codec, struct avro_writer **ret);
struct avro_writer *avro_writer_free(struct avro_writer *w);
/* Metadata pairs, in the order added, after avro.schema and avro.codec; before any datum. */
int avro_writer_set_meta(struct avro_writer *w, const char *key, const char *value);
/* Tests: a fixed sync marker instead of a random one. */
void avro_writer_set_sync(struct avro_writer *w, const uint8_t sync[AVRO_SYNC_SIZE]);
/* Objects per block (default 1000) and the block's uncompressed size bound (default 1 MiB). */
void avro_writer_set_block(struct avro_writer *w, size_t max_count, size_t max_bytes);
/* Encode one datum into the returned buffer, then call avro_writer_end_datum(). */
struct avro_buf *avro_writer_datum(struct avro_writer *w);
int avro_writer_end_datum(struct avro_writer *w);
/* The whole file; *ret allocated with floe_malloc. The writer is done afterwards. */
int avro_writer_finish(struct avro_writer *w, uint8_t **ret, size_t *ret_len);

struct avro_reader;
/* data must stay valid (and unchanged) while the reader lives; lim may be NULL; err (may be
 * NULL) gets the reason of a failure. */
int avro_reader_open(const uint8_t *data, size_t len, const struct avro_limits *lim,
                     struct avro_reader **ret, char *err, size_t errsize);
struct avro_reader *avro_reader_free(struct avro_reader *r);
/* A metadata value (not NUL-terminated: see *ret_len), or NULL. */
const uint8_t *avro_reader_meta(const struct avro_reader *r, const char *key, size_t *ret_len);
/* A metadata value as a new NUL-terminated string (floe_malloc), -ENOENT if absent. */
int avro_reader_meta_dup(const struct avro_reader *r, const char *key, char **ret);
const struct avro_schema *avro_reader_schema(const struct avro_reader *r);
enum avro_codec avro_reader_codec(const struct avro_reader *r);
/* 1 and *ret: the next datum, valid until the next call; 0 at the end; < 0 on error. */
int avro_reader_next(struct avro_reader *r, const struct avro_value **ret);
const char *avro_reader_error(const struct avro_reader *r);
