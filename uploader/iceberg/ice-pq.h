/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Parquet files as the table operations meet them (floe-lake append, verify, compact):
 * footers read from a local file or a store object, their leaf columns matched to a table
 * schema (by field id, or by name for files without ids), and the values of a flat column
 * chunk decoded (compaction): data pages v1 and v2; PLAIN, dictionary, RLE booleans,
 * DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT;
 * uncompressed, Snappy, gzip and ZSTD pages.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iceberg.h"
#include "parquet.h"

struct lake_store;

/* Where a file's bytes are: a local fd or a store key. */
struct ice_pq_src {
        int fd; /* >= 0: a local file */
        struct lake_store *store;
        const char *key;
        uint64_t size;
};

/* Bytes [off, off + len) of the file. */
int ice_pq_read_at(const struct ice_pq_src *src, uint64_t off, size_t len, void *buf);
/* The footer (src->size must be set). err gets the reason. */
int ice_pq_footer(const struct ice_pq_src *src, struct parquet_footer **ret, char *err,
                  size_t errsize);

/*
 * Matches a footer's leaves to a schema: ret_ids[leaf] the field id (by the leaf's field_id,
 * or, when the file has none, by name through the table's name mapping or the schema's names),
 * ret_kinds[leaf] the kind its values are read as. Fails (-EINVAL, the reason in err) for
 * nested columns, ids of only some leaves, ids or names not in the schema, types that cannot
 * be read as the field's type, a required field missing; *ret_by_name says names were used.
 */
int ice_pq_match(const struct parquet_footer *f, const struct ice_metadata *md, int32_t *ret_ids,
                 enum parquet_kind *ret_kinds, bool *ret_by_name, char *err, size_t errsize);

/* A decoded column chunk: rows values in the kind's C type (struct parquet_values form). */
struct ice_pq_column {
        void *data;
        uint8_t *valid; /* NULL: no nulls */
        size_t n;
        uint8_t *heap; /* string bytes */
        size_t heap_len, heap_cap;
};

void ice_pq_column_clear(struct ice_pq_column *c);
/* Decodes leaf `leaf` of row group `rg`, values read as `kind` (a promotion int -> long or
 * float -> double is allowed). -EOPNOTSUPP for codecs and encodings not listed above. */
int ice_pq_read_chunk(const struct ice_pq_src *src, const struct parquet_footer *f, size_t rg,
                      size_t leaf, enum parquet_kind kind, struct ice_pq_column *ret, char *err,
                      size_t errsize);
/* Snappy raw block decompression (tests). */
int ice_snappy_decompress(const uint8_t *in, size_t len, uint8_t *out, size_t out_len);
