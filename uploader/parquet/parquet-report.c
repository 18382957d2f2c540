/* SPDX-License-Identifier: Apache-2.0 */
/* A file's per-column report from its footer (for registering files written
 * elsewhere), and names of the format's enums. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "floe-alloc.h"
#include "parquet-internal.h"

const char *parquet_physical_name(int32_t type)
{
        static const char *const names[] = {
                "BOOLEAN", "INT32",  "INT64",      "INT96",
                "FLOAT",   "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};

        return type >= 0 && type < (int32_t)ELEMENTSOF(names) ? names[type] : "?";
}

const char *parquet_encoding_name(int32_t enc)
{
        static const char *const names[] = {"PLAIN",
                                            "GROUP_VAR_INT",
                                            "PLAIN_DICTIONARY",
                                            "RLE",
                                            "BIT_PACKED",
                                            "DELTA_BINARY_PACKED",
                                            "DELTA_LENGTH_BYTE_ARRAY",
                                            "DELTA_BYTE_ARRAY",
                                            "RLE_DICTIONARY",
                                            "BYTE_STREAM_SPLIT",
                                            "ALP"};

        return enc >= 0 && enc < (int32_t)ELEMENTSOF(names) ? names[enc] : "?";
}

const char *parquet_codec_name(int32_t codec)
{
        static const char *const names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO",
                                            "BROTLI",       "LZ4",    "ZSTD", "LZ4_RAW"};

        return codec >= 0 && codec < (int32_t)ELEMENTSOF(names) ? names[codec] : "?";
}

const char *parquet_converted_name(int32_t converted)
{
        static const char *const names[] = {"UTF8",
                                            "MAP",
                                            "MAP_KEY_VALUE",
                                            "LIST",
                                            "ENUM",
                                            "DECIMAL",
                                            "DATE",
                                            "TIME_MILLIS",
                                            "TIME_MICROS",
                                            "TIMESTAMP_MILLIS",
                                            "TIMESTAMP_MICROS",
                                            "UINT_8",
                                            "UINT_16",
                                            "UINT_32",
                                            "UINT_64",
                                            "INT_8",
                                            "INT_16",
                                            "INT_32",
                                            "INT_64",
                                            "JSON",
                                            "BSON",
                                            "INTERVAL"};

        return converted >= 0 && converted < (int32_t)ELEMENTSOF(names) ? names[converted] : "?";
}

/*
 * Whether the leaf's bounds can be reported: parquet_value_cmp orders its values
 * as its ColumnOrder does, and the PLAIN form is the Iceberg single-value form
 * (no decimals, times, timestamps in other units than micros, unsigned ints).
 */
static bool reportable(const struct parquet_schema_element *e)
{
        int32_t lk = e->logical.kind, ct = e->converted_type;

        if (lk == 5 || ct == 5 || lk == 7 || ct == 7 || ct == 8 || lk == 15 || ct == 21 ||
            (lk >= 16 && lk <= 19))
                return false; /* decimal, time, float16, interval, variant, geo, file */
        if ((lk == 8 && e->logical.unit != 2) || (lk != 8 && ct == 9))
                return false; /* timestamps in millis or nanos */
        if ((lk == 10 && !e->logical.is_signed) || (ct >= 11 && ct <= 14))
                return false; /* unsigned integers sort unsigned */
        return e->type != PARQUET_INT96;
}

static size_t fixed_width(int32_t type)
{
        switch (type) {
        case PARQUET_BOOLEAN:
                return 1;
        case PARQUET_INT32:
        case PARQUET_FLOAT:
                return 4;
        case PARQUET_INT64:
        case PARQUET_DOUBLE:
                return 8;
        default:
                return 0;
        }
}

static bool is_nan(int32_t type, const uint8_t *p)
{
        if (type == PARQUET_FLOAT) {
                float v;

                memcpy(&v, p, 4);
                return isnan(v);
        }
        double v;

        memcpy(&v, p, 8);
        return isnan(v);
}

/* Puts a zero of the given sign into a float bound (TYPE_ORDER reading rules). */
static void fix_zero(int32_t type, uint8_t *p, bool negative)
{
        if (type == PARQUET_FLOAT) {
                float v;

                memcpy(&v, p, 4);
                if (v == 0) {
                        v = negative ? -0.0f : 0.0f;
                        memcpy(p, &v, 4);
                }
                return;
        }
        double v;

        memcpy(&v, p, 8);
        if (v == 0) {
                v = negative ? -0.0 : 0.0;
                memcpy(p, &v, 8);
        }
}

struct bounds {
        struct parquet_bytes lo, hi;
        bool lo_exact, hi_exact;
        uint8_t lo_buf[8], hi_buf[8];
};

/* The trustworthy min/max of chunk i, as parquet-java reads them. */
static bool chunk_bounds(const struct parquet_footer *f, size_t i, const struct parquet_chunk *c,
                         struct bounds *b)
{
        const struct parquet_schema_element *e = &f->schema[f->leaves[i]];
        const struct parquet_stats *s = &c->stats;
        int32_t order = f->column_orders ? f->column_orders[i] : 0;
        bool is_float = e->type == PARQUET_FLOAT || e->type == PARQUET_DOUBLE;
        bool is_signed = e->type == PARQUET_INT32 || e->type == PARQUET_INT64 || is_float;
        size_t w = fixed_width(e->type);

        if (!c->has_stats || !reportable(e))
                return false;
        if ((order == 1 || (order == 2 && is_float)) && s->has_min_value && s->has_max_value) {
                b->lo = s->min_value;
                b->hi = s->max_value;
                b->lo_exact = s->has_min_exact && s->min_exact;
                b->hi_exact = s->has_max_exact && s->max_exact;
        } else if (is_signed && s->has_min && s->has_max) {
                /* deprecated fields: signed order, which these types use anyway */
                b->lo = s->min;
                b->hi = s->max;
                b->lo_exact = b->hi_exact = true;
        } else {
                return false;
        }
        if (w > 0 && (b->lo.len != w || b->hi.len != w))
                return false;
        if (is_float) {
                if (is_nan(e->type, b->lo.ptr) || is_nan(e->type, b->hi.ptr))
                        return false;
                memcpy(b->lo_buf, b->lo.ptr, w);
                memcpy(b->hi_buf, b->hi.ptr, w);
                b->lo.ptr = b->lo_buf;
                b->hi.ptr = b->hi_buf;
                fix_zero(e->type, b->lo_buf, true);
                fix_zero(e->type, b->hi_buf, false);
        }
        return parquet_value_cmp(e->type, b->lo.ptr, b->lo.len, b->hi.ptr, b->hi.len) <= 0;
}

static uint64_t chunk_start(const struct parquet_chunk *c)
{
        if (c->has_dictionary_page_offset && c->dictionary_page_offset < c->data_page_offset)
                return (uint64_t)c->dictionary_page_offset;
        return (uint64_t)c->data_page_offset;
}

static int column_report(const struct parquet_footer *f, size_t i, struct parquet_column_report *cr)
{
        const struct parquet_schema_element *e = &f->schema[f->leaves[i]];
        bool dropped = false;
        int r;

        cr->field_id = e->has_field_id ? e->field_id : -1;
        cr->type = (enum parquet_physical)e->type;
        cr->has_null_count = cr->has_nan_count = true;
        for (size_t g = 0; g < f->n_row_groups; g++) {
                const struct parquet_chunk *c = &f->row_groups[g].columns[i];
                const struct parquet_stats *s = &c->stats;
                struct bounds b;

                cr->value_count += (uint64_t)c->num_values;
                cr->compressed_size += (uint64_t)c->total_compressed_size;
                cr->uncompressed_size += (uint64_t)c->total_uncompressed_size;
                if (c->has_stats && s->has_null_count)
                        cr->null_count += (uint64_t)s->null_count;
                else
                        cr->has_null_count = false;
                if (c->has_stats && s->has_nan_count)
                        cr->nan_count += (uint64_t)s->nan_count;
                else
                        cr->has_nan_count = false;
                if (dropped)
                        continue;
                if (chunk_bounds(f, i, c, &b)) {
                        r = parquet_report_add(cr, !cr->has_bounds, e->type, &b.lo, &b.hi,
                                               b.lo_exact, b.hi_exact);
                        if (r < 0)
                                return r;
                } else if (!(c->has_stats && s->has_null_count &&
                             (uint64_t)s->null_count +
                                             (s->has_nan_count ? (uint64_t)s->nan_count : 0) ==
                                     (uint64_t)c->num_values)) {
                        /* values without bounds: the file has none */
                        parquet_report_drop_bounds(cr);
                        dropped = true;
                }
        }
        if (e->type != PARQUET_FLOAT && e->type != PARQUET_DOUBLE) {
                cr->has_nan_count = false;
                cr->nan_count = 0;
        }
        if (!cr->has_null_count)
                cr->null_count = 0;
        return 0;
}

int parquet_footer_report(const struct parquet_footer *f, uint64_t file_size,
                          struct parquet_report **ret)
{
        struct parquet_report *rep;
        int r = -ENOMEM;

        rep = floe_calloc(1, sizeof(*rep));
        if (!rep)
                return -ENOMEM;
        rep->num_rows = (uint64_t)f->num_rows;
        rep->file_size = file_size;
        rep->columns = floe_calloc(f->n_leaves + 1, sizeof(*rep->columns));
        rep->row_group_offsets = floe_calloc(f->n_row_groups + 1, sizeof(uint64_t));
        if (!rep->columns || !rep->row_group_offsets)
                goto out;
        rep->n_columns = f->n_leaves;
        rep->n_row_groups = f->n_row_groups;
        for (size_t g = 0; g < f->n_row_groups; g++)
                rep->row_group_offsets[g] = f->row_groups[g].n_columns > 0
                                                    ? chunk_start(&f->row_groups[g].columns[0])
                                                    : 0;
        for (size_t i = 0; i < f->n_leaves; i++) {
                r = column_report(f, i, &rep->columns[i]);
                if (r < 0)
                        goto out;
        }
        *ret = rep;
        return 0;
out:
        parquet_report_free(rep);
        return r;
}
