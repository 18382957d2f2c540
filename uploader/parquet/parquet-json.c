/* SPDX-License-Identifier: Apache-2.0 */
/* Footers and reports as JSON, for floe-lake and its tests (docs/parquet.md). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "floe-alloc.h"
#include "parquet-cli.h"

/* Adds key: value, taking the value's reference; NULL values are skipped. */
static void set(json_t *o, const char *key, json_t *v)
{
        if (v)
                json_object_set_new(o, key, v);
}

static json_t *hex(const struct parquet_bytes *b)
{
        static const char digits[] = "0123456789abcdef";
        _cleanup_free_ char *s = floe_malloc(b->len * 2 + 1);

        if (!s)
                return NULL;
        for (size_t i = 0; i < b->len; i++) {
                s[2 * i] = digits[b->ptr[i] >> 4];
                s[2 * i + 1] = digits[b->ptr[i] & 15];
        }
        s[b->len * 2] = '\0';
        return json_string(s);
}

static json_t *real(double v)
{
        if (isnan(v))
                return json_string("NaN");
        if (isinf(v))
                return json_string(v > 0 ? "Infinity" : "-Infinity");
        return json_real(v);
}

/* A PLAIN value of a physical type as JSON; NULL when it cannot be shown. */
static json_t *value(int32_t type, const struct parquet_bytes *b)
{
        switch (type) {
        case PARQUET_BOOLEAN:
                return b->len == 1 ? json_boolean(b->ptr[0] != 0) : NULL;
        case PARQUET_INT32:
                if (b->len == 4) {
                        int32_t v;

                        memcpy(&v, b->ptr, 4);
                        return json_integer(v);
                }
                return NULL;
        case PARQUET_INT64:
                if (b->len == 8) {
                        int64_t v;

                        memcpy(&v, b->ptr, 8);
                        return json_integer(v);
                }
                return NULL;
        case PARQUET_FLOAT:
                if (b->len == 4) {
                        float v;

                        memcpy(&v, b->ptr, 4);
                        return real(v);
                }
                return NULL;
        case PARQUET_DOUBLE:
                if (b->len == 8) {
                        double v;

                        memcpy(&v, b->ptr, 8);
                        return real(v);
                }
                return NULL;
        case PARQUET_BYTE_ARRAY:
                /* NULL unless valid UTF-8 */
                return json_stringn((const char *)b->ptr, b->len);
        default:
                return NULL;
        }
}

static void set_value(json_t *o, const char *key, int32_t type, const struct parquet_bytes *b)
{
        char hkey[64];

        snprintf(hkey, sizeof(hkey), "%s_hex", key);
        set(o, key, value(type, b));
        if (!json_object_get(o, key))
                set(o, key, json_null());
        set(o, hkey, hex(b));
}

static json_t *report_column(const struct parquet_column_report *c, const char *name)
{
        json_t *o = json_object();

        if (!o)
                return NULL;
        if (name)
                set(o, "name", json_string(name));
        set(o, "field_id", c->field_id >= 0 ? json_integer(c->field_id) : json_null());
        set(o, "type", json_string(parquet_physical_name(c->type)));
        set(o, "value_count", json_integer((json_int_t)c->value_count));
        set(o, "null_count",
            c->has_null_count ? json_integer((json_int_t)c->null_count) : json_null());
        if (c->type == PARQUET_FLOAT || c->type == PARQUET_DOUBLE)
                set(o, "nan_count",
                    c->has_nan_count ? json_integer((json_int_t)c->nan_count) : json_null());
        set(o, "compressed_size", json_integer((json_int_t)c->compressed_size));
        set(o, "uncompressed_size", json_integer((json_int_t)c->uncompressed_size));
        if (c->has_bounds) {
                set_value(o, "lower", c->type, &c->lower);
                set_value(o, "upper", c->type, &c->upper);
                set(o, "lower_exact", json_boolean(c->lower_exact));
                set(o, "upper_exact", json_boolean(c->upper_exact));
        } else {
                set(o, "lower", json_null());
                set(o, "upper", json_null());
        }
        return o;
}

json_t *parquet_json_report(const struct parquet_report *r, const char *const *names)
{
        json_t *o = json_object(), *cols = json_array(), *splits = json_array();

        if (!o || !cols || !splits) {
                json_decref(o);
                json_decref(cols);
                json_decref(splits);
                return NULL;
        }
        set(o, "num_rows", json_integer((json_int_t)r->num_rows));
        set(o, "file_size", json_integer((json_int_t)r->file_size));
        set(o, "row_groups", json_integer((json_int_t)r->n_row_groups));
        for (size_t g = 0; g < r->n_row_groups; g++)
                json_array_append_new(splits, json_integer((json_int_t)r->row_group_offsets[g]));
        set(o, "split_offsets", splits);
        for (size_t i = 0; i < r->n_columns; i++)
                json_array_append_new(cols, report_column(&r->columns[i], names ? names[i] : NULL));
        set(o, "columns", cols);
        return o;
}

static json_t *logical(const struct parquet_logical *l)
{
        static const char *const kinds[] = {
                [1] = "STRING",     [2] = "MAP",      [3] = "LIST",     [4] = "ENUM",
                [5] = "DECIMAL",    [6] = "DATE",     [7] = "TIME",     [8] = "TIMESTAMP",
                [10] = "INTEGER",   [11] = "UNKNOWN", [12] = "JSON",    [13] = "BSON",
                [14] = "UUID",      [15] = "FLOAT16", [16] = "VARIANT", [17] = "GEOMETRY",
                [18] = "GEOGRAPHY", [19] = "FILE"};
        static const char *const units[] = {[1] = "MILLIS", [2] = "MICROS", [3] = "NANOS"};
        json_t *o;

        if (l->kind == 0)
                return json_null();
        o = json_object();
        if (!o)
                return NULL;
        set(o, "type",
            json_string(l->kind > 0 && l->kind < (int32_t)ELEMENTSOF(kinds) && kinds[l->kind]
                                ? kinds[l->kind]
                                : "?"));
        if (l->kind == 7 || l->kind == 8) {
                set(o, "is_adjusted_to_utc", json_boolean(l->utc));
                set(o, "unit", json_string(l->unit > 0 && l->unit < 4 ? units[l->unit] : "?"));
        } else if (l->kind == 10) {
                set(o, "bit_width", json_integer(l->bit_width));
                set(o, "is_signed", json_boolean(l->is_signed));
        } else if (l->kind == 5) {
                set(o, "scale", json_integer(l->scale));
                set(o, "precision", json_integer(l->precision));
        }
        return o;
}

static json_t *schema_element(const struct parquet_schema_element *e)
{
        static const char *const reps[] = {"REQUIRED", "OPTIONAL", "REPEATED"};
        json_t *o = json_object();

        if (!o)
                return NULL;
        set(o, "name", json_string(e->name) ?: json_null());
        set(o, "type", e->type >= 0 ? json_string(parquet_physical_name(e->type)) : json_null());
        set(o, "repetition",
            e->repetition >= 0 && e->repetition < 3 ? json_string(reps[e->repetition])
                                                    : json_null());
        if (e->num_children >= 0)
                set(o, "num_children", json_integer(e->num_children));
        if (e->type_length >= 0)
                set(o, "type_length", json_integer(e->type_length));
        set(o, "converted_type",
            e->converted_type >= 0 ? json_string(parquet_converted_name(e->converted_type))
                                   : json_null());
        set(o, "field_id", e->has_field_id ? json_integer(e->field_id) : json_null());
        set(o, "logical_type", logical(&e->logical));
        return o;
}

static json_t *statistics(const struct parquet_stats *s, int32_t type)
{
        json_t *o = json_object();

        if (!o)
                return NULL;
        set(o, "null_count", s->has_null_count ? json_integer(s->null_count) : json_null());
        if (s->has_nan_count)
                set(o, "nan_count", json_integer(s->nan_count));
        if (s->has_distinct_count)
                set(o, "distinct_count", json_integer(s->distinct_count));
        if (s->has_min_value)
                set_value(o, "min_value", type, &s->min_value);
        if (s->has_max_value)
                set_value(o, "max_value", type, &s->max_value);
        if (s->has_min_exact)
                set(o, "is_min_value_exact", json_boolean(s->min_exact));
        if (s->has_max_exact)
                set(o, "is_max_value_exact", json_boolean(s->max_exact));
        if (s->has_min)
                set_value(o, "min", type, &s->min);
        if (s->has_max)
                set_value(o, "max", type, &s->max);
        return o;
}

static json_t *chunk(const struct parquet_chunk *c)
{
        json_t *o = json_object(), *path = json_array(), *encs = json_array();

        if (!o || !path || !encs) {
                json_decref(o);
                json_decref(path);
                json_decref(encs);
                return NULL;
        }
        for (size_t i = 0; i < c->path_len; i++)
                json_array_append_new(path, json_string(c->path[i]) ?: json_null());
        set(o, "path", path);
        set(o, "type", json_string(parquet_physical_name(c->type)));
        set(o, "codec", json_string(parquet_codec_name(c->codec)));
        for (int e = 0; e < _PARQUET_ENC_MAX; e++)
                if (c->encodings & (UINT32_C(1) << e))
                        json_array_append_new(encs, json_string(parquet_encoding_name(e)));
        set(o, "encodings", encs);
        set(o, "num_values", json_integer(c->num_values));
        set(o, "total_compressed_size", json_integer(c->total_compressed_size));
        set(o, "total_uncompressed_size", json_integer(c->total_uncompressed_size));
        set(o, "data_page_offset", json_integer(c->data_page_offset));
        set(o, "dictionary_page_offset",
            c->has_dictionary_page_offset ? json_integer(c->dictionary_page_offset) : json_null());
        if (c->has_encoding_stats)
                set(o, "encoding_stats",
                    json_pack("{s:I,s:I}", "dictionary_data_pages", (json_int_t)c->dict_data_pages,
                              "other_data_pages", (json_int_t)c->other_data_pages));
        set(o, "statistics", c->has_stats ? statistics(&c->stats, c->type) : json_null());
        return o;
}

static json_t *row_group(const struct parquet_row_group *g)
{
        json_t *o = json_object(), *cols = json_array();

        if (!o || !cols) {
                json_decref(o);
                json_decref(cols);
                return NULL;
        }
        set(o, "num_rows", json_integer(g->num_rows));
        set(o, "total_byte_size", json_integer(g->total_byte_size));
        if (g->has_file_offset)
                set(o, "file_offset", json_integer(g->file_offset));
        if (g->has_total_compressed_size)
                set(o, "total_compressed_size", json_integer(g->total_compressed_size));
        if (g->has_ordinal)
                set(o, "ordinal", json_integer(g->ordinal));
        for (size_t i = 0; i < g->n_columns; i++)
                json_array_append_new(cols, chunk(&g->columns[i]));
        set(o, "columns", cols);
        return o;
}

json_t *parquet_json_footer(const struct parquet_footer *f, const struct parquet_report *r)
{
        json_t *o = json_object(), *schema = json_array(), *rgs = json_array(), *kv = json_array();

        if (!o || !schema || !rgs || !kv) {
                json_decref(o);
                json_decref(schema);
                json_decref(rgs);
                json_decref(kv);
                return NULL;
        }
        set(o, "version", json_integer(f->version));
        set(o, "num_rows", json_integer(f->num_rows));
        set(o, "created_by", f->created_by ? json_string(f->created_by) : json_null());
        set(o, "metadata_offset", json_integer((json_int_t)f->metadata_offset));
        set(o, "metadata_length", json_integer((json_int_t)f->metadata_len));
        for (size_t i = 0; i < f->n_schema; i++)
                json_array_append_new(schema, schema_element(&f->schema[i]));
        set(o, "schema", schema);
        if (f->column_orders) {
                json_t *orders = json_array();

                for (size_t i = 0; orders && i < f->n_leaves; i++)
                        json_array_append_new(orders,
                                              json_string(f->column_orders[i] == 1 ? "TYPE_ORDER"
                                                          : f->column_orders[i] == 2
                                                                  ? "IEEE_754_TOTAL_ORDER"
                                                                  : "?"));
                set(o, "column_orders", orders);
        } else {
                set(o, "column_orders", json_null());
        }
        for (size_t i = 0; i < f->n_kv; i++)
                json_array_append_new(
                        kv, json_pack("{s:s?,s:s?}", "key", f->kv[i].key, "value", f->kv[i].value));
        set(o, "key_value_metadata", kv);
        for (size_t g = 0; g < f->n_row_groups; g++)
                json_array_append_new(rgs, row_group(&f->row_groups[g]));
        set(o, "row_groups", rgs);
        if (r) {
                json_t *rep = parquet_json_report(r, NULL);
                json_t *cols = rep ? json_object_get(rep, "columns") : NULL;

                for (size_t i = 0; cols && i < f->n_leaves && i < json_array_size(cols); i++)
                        json_object_set_new(json_array_get(cols, i), "name",
                                            json_string(f->schema[f->leaves[i]].name)
                                                    ?: json_null());
                set(o, "report", rep);
        }
        return o;
}
