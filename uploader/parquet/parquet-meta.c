/* SPDX-License-Identifier: Apache-2.0 */
/* The Thrift structures the writer emits: PageHeader and FileMetaData
 * (field ids from parquet.thrift; docs/parquet.md lists what is set). */
#include <errno.h>
#include <string.h>

#include "parquet-internal.h"
#include "parquet-thrift.h"

enum {
        CONVERTED_UTF8 = 0,
        CONVERTED_DATE = 6,
        CONVERTED_TIMESTAMP_MICROS = 10,
};

enum {
        LOGICAL_STRING = 1,
        LOGICAL_DATE = 6,
        LOGICAL_TIMESTAMP = 8,
};

int parquet_meta_page_header(struct parquet_buf *out, int type, uint32_t uncompressed,
                             uint32_t compressed, uint32_t num_values, int encoding)
{
        struct parquet_tenc e;

        parquet_tenc_init(&e, out);
        parquet_tenc_struct_begin(&e, 0);
        parquet_tenc_i32(&e, 1, type);
        parquet_tenc_i32(&e, 2, (int32_t)uncompressed);
        parquet_tenc_i32(&e, 3, (int32_t)compressed);
        if (type == PAGE_DICTIONARY) {
                parquet_tenc_struct_begin(&e, 7); /* DictionaryPageHeader */
                parquet_tenc_i32(&e, 1, (int32_t)num_values);
                parquet_tenc_i32(&e, 2, encoding);
                parquet_tenc_struct_end(&e);
        } else {
                parquet_tenc_struct_begin(&e, 5); /* DataPageHeader */
                parquet_tenc_i32(&e, 1, (int32_t)num_values);
                parquet_tenc_i32(&e, 2, encoding);
                parquet_tenc_i32(&e, 3, PARQUET_ENC_RLE); /* definition levels */
                parquet_tenc_i32(&e, 4, PARQUET_ENC_RLE); /* repetition levels */
                parquet_tenc_struct_end(&e);
        }
        parquet_tenc_struct_end(&e);
        return parquet_tenc_done(&e);
}

static void schema_leaf(struct parquet_tenc *e, const struct parquet_colw *c)
{
        parquet_tenc_struct_begin(e, 0);
        parquet_tenc_i32(e, 1, c->type);
        parquet_tenc_i32(e, 3, c->required ? 0 : 1);
        parquet_tenc_string(e, 4, c->name);
        switch (c->kind) {
        case PARQUET_KIND_STRING:
                parquet_tenc_i32(e, 6, CONVERTED_UTF8);
                break;
        case PARQUET_KIND_DATE:
                parquet_tenc_i32(e, 6, CONVERTED_DATE);
                break;
        case PARQUET_KIND_TIMESTAMP:
        case PARQUET_KIND_TIMESTAMPTZ:
                /* LogicalTypes.md: TIMESTAMP_MICROS for either isAdjustedToUTC */
                parquet_tenc_i32(e, 6, CONVERTED_TIMESTAMP_MICROS);
                break;
        default:
                break;
        }
        parquet_tenc_i32(e, 9, c->field_id);
        switch (c->kind) {
        case PARQUET_KIND_STRING:
                parquet_tenc_struct_begin(e, 10);
                parquet_tenc_struct_begin(e, LOGICAL_STRING);
                parquet_tenc_struct_end(e);
                parquet_tenc_struct_end(e);
                break;
        case PARQUET_KIND_DATE:
                parquet_tenc_struct_begin(e, 10);
                parquet_tenc_struct_begin(e, LOGICAL_DATE);
                parquet_tenc_struct_end(e);
                parquet_tenc_struct_end(e);
                break;
        case PARQUET_KIND_TIMESTAMP:
        case PARQUET_KIND_TIMESTAMPTZ:
                parquet_tenc_struct_begin(e, 10);
                parquet_tenc_struct_begin(e, LOGICAL_TIMESTAMP);
                parquet_tenc_bool(e, 1, c->kind == PARQUET_KIND_TIMESTAMPTZ);
                parquet_tenc_struct_begin(e, 2); /* TimeUnit */
                parquet_tenc_struct_begin(e, 2); /* MICROS */
                parquet_tenc_struct_end(e);
                parquet_tenc_struct_end(e);
                parquet_tenc_struct_end(e);
                parquet_tenc_struct_end(e);
                break;
        default:
                break;
        }
        parquet_tenc_struct_end(e);
}

/* Signed-order types may also carry the deprecated min/max (parquet.thrift Statistics). */
static bool legacy_stats_safe(enum parquet_physical t)
{
        return t == PARQUET_INT32 || t == PARQUET_INT64 || t == PARQUET_FLOAT ||
               t == PARQUET_DOUBLE;
}

static void statistics(struct parquet_tenc *e, const struct parquet_colw *c,
                       const struct parquet_wchunk *k)
{
        bool legacy = legacy_stats_safe(c->type);

        parquet_tenc_struct_begin(e, 12);
        if (legacy && k->has_max)
                parquet_tenc_binary(e, 1, k->max.ptr, k->max.len);
        if (legacy && k->has_min)
                parquet_tenc_binary(e, 2, k->min.ptr, k->min.len);
        parquet_tenc_i64(e, 3, (int64_t)k->null_count);
        if (k->has_max)
                parquet_tenc_binary(e, 5, k->max.ptr, k->max.len);
        if (k->has_min)
                parquet_tenc_binary(e, 6, k->min.ptr, k->min.len);
        if (k->has_max)
                parquet_tenc_bool(e, 7, k->max_exact);
        if (k->has_min)
                parquet_tenc_bool(e, 8, k->min_exact);
        if (c->type == PARQUET_FLOAT || c->type == PARQUET_DOUBLE)
                parquet_tenc_i64(e, 9, (int64_t)k->nan_count);
        parquet_tenc_struct_end(e);
}

static void column_chunk(struct parquet_tenc *e, const struct parquet_colw *c,
                         const struct parquet_wchunk *k, int codec)
{
        uint32_t n_enc = (uint32_t)__builtin_popcount(k->encodings), n_stats = k->has_dict;

        for (unsigned i = 0; i < _PARQUET_ENC_MAX; i++)
                n_stats += k->data_pages[i] > 0;
        parquet_tenc_struct_begin(e, 0);
        parquet_tenc_i64(e, 2, 0); /* file_offset: deprecated, 0 */
        parquet_tenc_struct_begin(e, 3);
        parquet_tenc_i32(e, 1, c->type);
        parquet_tenc_list(e, 2, TT_I32, n_enc);
        for (unsigned i = 0; i < _PARQUET_ENC_MAX; i++)
                if (k->encodings & ENC_BIT(i))
                        parquet_tenc_elem_i32(e, (int32_t)i);
        parquet_tenc_list(e, 3, TT_BINARY, 1);
        parquet_tenc_elem_binary(e, c->name, strlen(c->name));
        parquet_tenc_i32(e, 4, codec);
        parquet_tenc_i64(e, 5, (int64_t)k->num_values);
        parquet_tenc_i64(e, 6, (int64_t)k->total_uncompressed);
        parquet_tenc_i64(e, 7, (int64_t)k->total_compressed);
        parquet_tenc_i64(e, 9, (int64_t)k->data_page_offset);
        if (k->has_dict)
                parquet_tenc_i64(e, 11, (int64_t)k->offset);
        statistics(e, c, k);
        /* encoding_stats: lets readers prove every data page is dictionary encoded */
        parquet_tenc_list(e, 13, TT_STRUCT, n_stats);
        if (k->has_dict) {
                parquet_tenc_struct_begin(e, 0);
                parquet_tenc_i32(e, 1, PAGE_DICTIONARY);
                parquet_tenc_i32(e, 2, PARQUET_ENC_PLAIN);
                parquet_tenc_i32(e, 3, 1);
                parquet_tenc_struct_end(e);
        }
        for (unsigned i = 0; i < _PARQUET_ENC_MAX; i++) {
                if (k->data_pages[i] == 0)
                        continue;
                parquet_tenc_struct_begin(e, 0);
                parquet_tenc_i32(e, 1, PAGE_DATA);
                parquet_tenc_i32(e, 2, (int32_t)i);
                parquet_tenc_i32(e, 3, (int32_t)k->data_pages[i]);
                parquet_tenc_struct_end(e);
        }
        parquet_tenc_struct_end(e); /* ColumnMetaData */
        parquet_tenc_struct_end(e); /* ColumnChunk */
}

int parquet_meta_encode(struct parquet_buf *out, const struct parquet_colw *cols, size_t n_cols,
                        const struct parquet_wrowgroup *rgs, size_t n_rgs, uint64_t num_rows,
                        const char *const *kv, size_t n_kv, const char *created_by, int codec)
{
        struct parquet_tenc e;

        if (n_cols >= INT32_MAX || n_rgs >= INT32_MAX || n_kv >= INT32_MAX)
                return -E2BIG;
        parquet_tenc_init(&e, out);
        parquet_tenc_struct_begin(&e, 0);
        parquet_tenc_i32(&e, 1, 1); /* version */
        parquet_tenc_list(&e, 2, TT_STRUCT, (uint32_t)n_cols + 1);
        parquet_tenc_struct_begin(&e, 0); /* root: no type, no repetition */
        parquet_tenc_string(&e, 4, "schema");
        parquet_tenc_i32(&e, 5, (int32_t)n_cols);
        parquet_tenc_struct_end(&e);
        for (size_t i = 0; i < n_cols; i++)
                schema_leaf(&e, &cols[i]);
        parquet_tenc_i64(&e, 3, (int64_t)num_rows);
        parquet_tenc_list(&e, 4, TT_STRUCT, (uint32_t)n_rgs);
        for (size_t g = 0; g < n_rgs; g++) {
                const struct parquet_wrowgroup *rg = &rgs[g];

                parquet_tenc_struct_begin(&e, 0);
                parquet_tenc_list(&e, 1, TT_STRUCT, (uint32_t)n_cols);
                for (size_t i = 0; i < n_cols; i++)
                        column_chunk(&e, &cols[i], &rg->chunks[i], codec);
                parquet_tenc_i64(&e, 2, (int64_t)rg->total_byte_size);
                parquet_tenc_i64(&e, 3, (int64_t)rg->num_rows);
                parquet_tenc_i64(&e, 5, (int64_t)rg->offset);
                parquet_tenc_i64(&e, 6, (int64_t)rg->total_compressed);
                if (g <= INT16_MAX)
                        parquet_tenc_i16(&e, 7, (int16_t)g);
                parquet_tenc_struct_end(&e);
        }
        if (n_kv > 0) {
                parquet_tenc_list(&e, 5, TT_STRUCT, (uint32_t)n_kv);
                for (size_t i = 0; i < n_kv; i++) {
                        parquet_tenc_struct_begin(&e, 0);
                        parquet_tenc_string(&e, 1, kv[2 * i]);
                        parquet_tenc_string(&e, 2, kv[2 * i + 1]);
                        parquet_tenc_struct_end(&e);
                }
        }
        parquet_tenc_string(&e, 6, created_by);
        parquet_tenc_list(&e, 7, TT_STRUCT, (uint32_t)n_cols);
        for (size_t i = 0; i < n_cols; i++) {
                parquet_tenc_struct_begin(&e, 0); /* ColumnOrder */
                parquet_tenc_struct_begin(&e, 1); /* TYPE_ORDER: TypeDefinedOrder {} */
                parquet_tenc_struct_end(&e);
                parquet_tenc_struct_end(&e);
        }
        parquet_tenc_struct_end(&e);
        return parquet_tenc_done(&e);
}
