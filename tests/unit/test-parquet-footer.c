/* SPDX-License-Identifier: Apache-2.0 */
/* The footer reader on hand-built FileMetaData: what it accepts (nested
 * schemas, unknown fields, legacy statistics), what it refuses and why. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "parquet-thrift.h"
#include "parquet.h"

#define DATA 200 /* bytes of "pages" between the magic and the footer */

/* Deviations from a valid two-column file (a: INT64 required, s: string optional). */
struct variant {
        bool rg_before_schema, dup_field, no_name, unknown_fields, trailing_byte;
        bool no_column_orders, legacy_stats_only, nested, bad_root;
        int orders;          /* column_orders entries (default 2) */
        int chunks;          /* columns in the row group (default 2) */
        int64_t num_rows;    /* FileMetaData.num_rows (default 10) */
        int64_t rg_rows;     /* RowGroup.num_rows (default 10) */
        int64_t values;      /* num_values of column a (default 10) */
        int64_t offset;      /* data_page_offset of column a (default 4) */
        int64_t size;        /* total_compressed_size of column a (default 50) */
        int64_t dict_offset; /* of column s: -1 none (default), 0 written as 0 */
        int64_t null_count;  /* of column s (default 2) */
        const char *path;    /* path_in_schema of column s (default "s") */
        int children;        /* root num_children (default 2) */
        double dmin, dmax;   /* when set (dmin != dmax), a is a DOUBLE with these bounds */
};

static void v_init(struct variant *v)
{
        *v = (struct variant){.orders = 2,
                              .chunks = 2,
                              .num_rows = 10,
                              .rg_rows = 10,
                              .values = 10,
                              .offset = 4,
                              .size = 50,
                              .dict_offset = -1,
                              .null_count = 2,
                              .path = "s",
                              .children = 2};
}

static void leaf(struct parquet_tenc *e, const char *name, int type, int rep, int id, bool utf8)
{
        parquet_tenc_struct_begin(e, 0);
        parquet_tenc_i32(e, 1, type);
        parquet_tenc_i32(e, 3, rep);
        parquet_tenc_string(e, 4, name);
        if (utf8)
                parquet_tenc_i32(e, 6, 0);
        parquet_tenc_i32(e, 9, id);
        parquet_tenc_struct_end(e);
}

static void schema(struct parquet_tenc *e, const struct variant *v)
{
        if (v->nested) {
                /* root { a INT64 required; g optional group { s repeated string } } */
                parquet_tenc_list(e, 2, TT_STRUCT, 4);
                parquet_tenc_struct_begin(e, 0);
                parquet_tenc_string(e, 4, "root");
                parquet_tenc_i32(e, 5, 2);
                parquet_tenc_struct_end(e);
                leaf(e, "a", PARQUET_INT64, 0, 1, false);
                parquet_tenc_struct_begin(e, 0);
                parquet_tenc_i32(e, 3, 1);
                parquet_tenc_string(e, 4, "g");
                parquet_tenc_i32(e, 5, 1);
                parquet_tenc_struct_end(e);
                leaf(e, "s", PARQUET_BYTE_ARRAY, 2, 2, true);
                return;
        }
        parquet_tenc_list(e, 2, TT_STRUCT, 3);
        parquet_tenc_struct_begin(e, 0);
        if (v->bad_root)
                parquet_tenc_i32(e, 1, PARQUET_INT32);
        if (!v->no_name)
                parquet_tenc_string(e, 4, "schema");
        parquet_tenc_i32(e, 5, v->children);
        parquet_tenc_struct_end(e);
        leaf(e, "a", v->dmin != v->dmax ? PARQUET_DOUBLE : PARQUET_INT64, 0, 1, false);
        leaf(e, "s", PARQUET_BYTE_ARRAY, 1, 2, true);
}

static void stats(struct parquet_tenc *e, const void *min, const void *max, size_t len, bool legacy,
                  int64_t nulls)
{
        parquet_tenc_struct_begin(e, 12);
        parquet_tenc_binary(e, 1, max, len);
        parquet_tenc_binary(e, 2, min, len);
        parquet_tenc_i64(e, 3, nulls);
        if (!legacy) {
                parquet_tenc_binary(e, 5, max, len);
                parquet_tenc_binary(e, 6, min, len);
        }
        parquet_tenc_struct_end(e);
}

static void chunk(struct parquet_tenc *e, const struct variant *v, int i)
{
        int64_t lo = -5, hi = 70;
        bool dbl = v->dmin != v->dmax;

        parquet_tenc_struct_begin(e, 0);
        parquet_tenc_i64(e, 2, 0);
        parquet_tenc_struct_begin(e, 3);
        parquet_tenc_i32(e, 1,
                         i == 0 ? (dbl ? PARQUET_DOUBLE : PARQUET_INT64) : PARQUET_BYTE_ARRAY);
        parquet_tenc_list(e, 2, TT_I32, 1);
        parquet_tenc_elem_i32(e, PARQUET_ENC_PLAIN);
        if (v->nested && i == 1) {
                parquet_tenc_list(e, 3, TT_BINARY, 2);
                parquet_tenc_elem_binary(e, "g", 1);
                parquet_tenc_elem_binary(e, "s", 1);
        } else {
                parquet_tenc_list(e, 3, TT_BINARY, 1);
                parquet_tenc_elem_binary(e, i == 0 ? "a" : v->path, strlen(i == 0 ? "a" : v->path));
        }
        parquet_tenc_i32(e, 4, PARQUET_CODEC_ZSTD);
        parquet_tenc_i64(e, 5, i == 0 ? v->values : (v->nested ? 25 : 10));
        parquet_tenc_i64(e, 6, 80);
        parquet_tenc_i64(e, 7, i == 0 ? v->size : 50);
        parquet_tenc_i64(e, 9, i == 0 ? v->offset : 100);
        if (i == 1 && v->dict_offset >= 0)
                parquet_tenc_i64(e, 11, v->dict_offset);
        if (i == 0 && dbl)
                stats(e, &v->dmin, &v->dmax, 8, v->legacy_stats_only, 0);
        else if (i == 0)
                stats(e, &lo, &hi, 8, v->legacy_stats_only, 0);
        else
                stats(e, "abc", "abd", 3, v->legacy_stats_only, v->null_count);
        if (v->unknown_fields) {
                parquet_tenc_list(e, 200, TT_STRUCT, 1); /* a future field */
                parquet_tenc_struct_begin(e, 0);
                parquet_tenc_double(e, 3, 1.5);
                parquet_tenc_struct_end(e);
        }
        parquet_tenc_struct_end(e);
        parquet_tenc_struct_end(e);
}

static void row_groups(struct parquet_tenc *e, const struct variant *v)
{
        parquet_tenc_list(e, 4, TT_STRUCT, 1);
        parquet_tenc_struct_begin(e, 0);
        parquet_tenc_list(e, 1, TT_STRUCT, (uint32_t)v->chunks);
        for (int i = 0; i < v->chunks; i++)
                chunk(e, v, i);
        parquet_tenc_i64(e, 2, 160);
        parquet_tenc_i64(e, 3, v->rg_rows);
        parquet_tenc_struct_end(e);
}

/* A whole file: "PAR1", DATA bytes, the FileMetaData, its length, "PAR1". */
static void build(const struct variant *v, struct parquet_buf *out)
{
        struct parquet_tenc e;
        size_t start;
        uint8_t tail[8];

        out->len = 0;
        assert_int_equal(parquet_buf_append(out, "PAR1", 4), 0);
        assert_int_equal(parquet_buf_reserve(out, DATA), 0);
        memset(out->data + 4, 0xee, DATA);
        out->len += DATA;
        start = out->len;
        parquet_tenc_init(&e, out);
        parquet_tenc_struct_begin(&e, 0);
        parquet_tenc_i32(&e, 1, 1);
        if (v->rg_before_schema) {
                /* out of order: field 4, then 2 (a long-form header) */
                row_groups(&e, v);
                schema(&e, v);
        } else {
                schema(&e, v);
        }
        parquet_tenc_i64(&e, 3, v->num_rows);
        if (v->dup_field)
                parquet_tenc_i64(&e, 3, v->num_rows);
        if (!v->rg_before_schema)
                row_groups(&e, v);
        if (v->unknown_fields) {
                parquet_tenc_field(&e, TT_MAP, 50);
                parquet_tenc_elem_i32(&e, 0); /* an empty map: size 0 */
                parquet_tenc_field(&e, TT_SET, 51);
                assert_int_equal(parquet_buf_append(out, "\x25\x02\x04", 3), 0); /* {1, 2} */
        }
        parquet_tenc_string(&e, 6, "test version 1.0 (build x)");
        if (!v->no_column_orders) {
                parquet_tenc_list(&e, 7, TT_STRUCT, (uint32_t)v->orders);
                for (int i = 0; i < v->orders; i++) {
                        parquet_tenc_struct_begin(&e, 0);
                        parquet_tenc_struct_begin(&e, 1);
                        parquet_tenc_struct_end(&e);
                        parquet_tenc_struct_end(&e);
                }
        }
        parquet_tenc_struct_end(&e);
        assert_int_equal(parquet_tenc_done(&e), 0);
        if (v->trailing_byte)
                assert_int_equal(parquet_buf_append(out, "", 1), 0);
        parquet_put_le32(tail, (uint32_t)(out->len - start));
        memcpy(tail + 4, "PAR1", 4);
        assert_int_equal(parquet_buf_append(out, tail, 8), 0);
}

static int read_variant(const struct variant *v, struct parquet_footer **ret,
                        struct parquet_error *err)
{
        struct parquet_buf b = {0};
        int r;

        build(v, &b);
        r = parquet_footer_read(b.data, b.len, b.len, NULL, ret, err);
        parquet_buf_done(&b);
        return r;
}

static void expect_error(const struct variant *v, int want, const char *msg)
{
        struct parquet_footer *f = NULL;
        struct parquet_error err;
        int r = read_variant(v, &f, &err);

        if (r != want || !strstr(err.msg, msg))
                fail_msg("got %d \"%s\", wanted %d \"%s\"", r, err.msg, want, msg);
        assert_null(f);
}

static void test_valid_and_report(void **state)
{
        struct parquet_footer *f;
        struct parquet_report *rep;
        struct parquet_error err;
        struct variant v;
        int64_t lo, hi;

        (void)state;
        v_init(&v);
        v.unknown_fields = true;
        v.dict_offset = 0; /* some writers' "no dictionary" */
        assert_int_equal(read_variant(&v, &f, &err), 0);
        assert_int_equal(f->n_leaves, 2);
        assert_int_equal(f->num_rows, 10);
        assert_string_equal(f->schema[2].name, "s");
        assert_true(f->schema[2].has_field_id && f->schema[2].field_id == 2);
        assert_int_equal(f->schema[2].converted_type, 0);
        assert_int_equal(f->max_def[1], 1);
        assert_false(f->row_groups[0].columns[1].has_dictionary_page_offset);
        assert_int_equal(f->column_orders[1], 1);
        assert_int_equal(parquet_footer_report(f, f->metadata_offset + f->metadata_len + 8, &rep),
                         0);
        assert_true(rep->columns[0].has_bounds && rep->columns[1].has_bounds);
        memcpy(&lo, rep->columns[0].lower.ptr, 8);
        memcpy(&hi, rep->columns[0].upper.ptr, 8);
        assert_true(lo == -5 && hi == 70);
        assert_int_equal(rep->columns[1].null_count, 2);
        assert_int_equal(rep->row_group_offsets[0], 4);
        parquet_report_free(rep);
        parquet_footer_free(f);

        /* without column_orders: the deprecated fields serve signed types only */
        v_init(&v);
        v.no_column_orders = true;
        v.legacy_stats_only = true;
        assert_int_equal(read_variant(&v, &f, &err), 0);
        assert_null(f->column_orders);
        assert_int_equal(parquet_footer_report(f, f->metadata_offset + f->metadata_len + 8, &rep),
                         0);
        assert_true(rep->columns[0].has_bounds);
        assert_false(rep->columns[1].has_bounds);
        parquet_report_free(rep);
        parquet_footer_free(f);
}

static void test_float_bounds(void **state)
{
        struct parquet_footer *f;
        struct parquet_report *rep;
        struct parquet_error err;
        struct variant v;
        double lo;

        (void)state;
        v_init(&v);
        v.dmin = 0.0; /* +0.0 min: the chunk may hold -0.0 */
        v.dmax = 5.0;
        assert_int_equal(read_variant(&v, &f, &err), 0);
        assert_int_equal(parquet_footer_report(f, f->metadata_offset + f->metadata_len + 8, &rep),
                         0);
        memcpy(&lo, rep->columns[0].lower.ptr, 8);
        assert_true(lo == 0 && signbit(lo));
        parquet_report_free(rep);
        parquet_footer_free(f);
        v.dmax = NAN;
        assert_int_equal(read_variant(&v, &f, &err), 0);
        assert_int_equal(parquet_footer_report(f, f->metadata_offset + f->metadata_len + 8, &rep),
                         0);
        assert_false(rep->columns[0].has_bounds);
        parquet_report_free(rep);
        parquet_footer_free(f);
}

static void test_nested(void **state)
{
        struct parquet_footer *f;
        struct parquet_error err;
        struct variant v;

        (void)state;
        v_init(&v);
        v.nested = true;
        assert_int_equal(read_variant(&v, &f, &err), 0);
        assert_int_equal(f->n_leaves, 2);
        assert_int_equal(f->leaves[1], 3);
        assert_int_equal(f->max_def[1], 2);
        assert_int_equal(f->max_rep[1], 1);
        assert_int_equal(f->row_groups[0].columns[1].path_len, 2);
        parquet_footer_free(f);
}

static void test_refused(void **state)
{
        struct variant v;

        (void)state;
#define CASE(field, value, err, msg)        \
        do {                                \
                v_init(&v);                 \
                v.field = value;            \
                expect_error(&v, err, msg); \
        } while (0)
        CASE(rg_before_schema, true, -EBADMSG, "row_groups before schema");
        CASE(dup_field, true, -EBADMSG, "duplicate field in FileMetaData field 3");
        CASE(no_name, true, -EBADMSG, "missing required field 4 (name)");
        CASE(trailing_byte, true, -EBADMSG, "1 bytes after FileMetaData");
        CASE(orders, 1, -EBADMSG, "1 column_orders for 2 columns");
        CASE(chunks, 1, -EBADMSG, "row group 0: 1 columns, the schema has 2");
        CASE(num_rows, 11, -EBADMSG, "num_rows 11, the row groups hold 10");
        CASE(values, 9, -EBADMSG, "9 values in 10 rows");
        CASE(offset, 2, -EBADMSG, "outside the data");
        CASE(size, DATA + 1, -EBADMSG, "outside the data");
        CASE(null_count, 11, -EBADMSG, "null or NaN count out of range");
        CASE(path, "t", -EBADMSG, "path_in_schema does not match");
        CASE(children, 3, -EBADMSG, "num_children asks for more");
        CASE(children, 1, -EBADMSG, "3 elements, the tree from the root has 2");
        CASE(bad_root, true, -EBADMSG, "the root is not a group");
#undef CASE
}

static void test_trailer_and_limits(void **state)
{
        struct parquet_footer *f = NULL;
        struct parquet_limits lim;
        struct parquet_error err;
        struct parquet_buf b = {0};
        struct variant v;
        uint32_t mlen;

        (void)state;
        v_init(&v);
        build(&v, &b);
        assert_int_equal(parquet_footer_length(b.data + b.len - 8, &mlen), 0);
        /* the tail alone is enough */
        assert_int_equal(
                parquet_footer_read(b.data + b.len - mlen - 8, mlen + 8, b.len, NULL, &f, &err), 0);
        f = parquet_footer_free(f);
        /* too little of it */
        assert_int_equal(parquet_footer_read(b.data + b.len - mlen, mlen, b.len, NULL, &f, &err),
                         -ENODATA);
        /* limits */
        parquet_limits_init(&lim);
        lim.max_columns = 2;
        assert_int_equal(parquet_footer_read(b.data, b.len, b.len, &lim, &f, &err), -E2BIG);
        assert_non_null(strstr(err.msg, "schema: 3 over limit 2"));
        parquet_limits_init(&lim);
        lim.max_footer = mlen - 1;
        assert_int_equal(parquet_footer_read(b.data, b.len, b.len, &lim, &f, &err), -E2BIG);
        /* a length beyond the file */
        parquet_put_le32(b.data + b.len - 8, (uint32_t)b.len);
        assert_int_equal(parquet_footer_read(b.data, b.len, b.len, NULL, &f, &err), -EBADMSG);
        /* encrypted footers and other magic */
        memcpy(b.data + b.len - 4, "PARE", 4);
        assert_int_equal(parquet_footer_read(b.data, b.len, b.len, NULL, &f, &err), -EOPNOTSUPP);
        memcpy(b.data + b.len - 4, "PAR2", 4);
        assert_int_equal(parquet_footer_read(b.data, b.len, b.len, NULL, &f, &err), -EBADMSG);
        /* the head of a whole file must be PAR1 too */
        build(&v, &b);
        b.data[0] = 'X';
        assert_int_equal(parquet_footer_read(b.data, b.len, b.len, NULL, &f, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "start"));
        assert_null(f);
        parquet_buf_done(&b);
}

/* Every prefix cut out of the FileMetaData fails cleanly, naming an offset. */
static void test_truncated_metadata(void **state)
{
        struct parquet_buf b = {0}, cut = {0};
        struct parquet_footer *f = NULL;
        struct parquet_error err;
        struct variant v;
        uint32_t mlen;

        (void)state;
        v_init(&v);
        build(&v, &b);
        assert_int_equal(parquet_footer_length(b.data + b.len - 8, &mlen), 0);
        for (uint32_t keep = 0; keep < mlen; keep++) {
                uint8_t tail[8];

                cut.len = 0;
                assert_int_equal(parquet_buf_append(&cut, b.data, 4 + DATA + keep), 0);
                parquet_put_le32(tail, keep);
                memcpy(tail + 4, "PAR1", 4);
                assert_int_equal(parquet_buf_append(&cut, tail, 8), 0);
                assert_int_equal(parquet_footer_read(cut.data, cut.len, cut.len, NULL, &f, &err),
                                 -EBADMSG);
                assert_null(f);
                assert_true(err.offset <= keep);
                assert_non_null(strstr(err.msg, " at offset "));
        }
        parquet_buf_done(&b);
        parquet_buf_done(&cut);
}

static void test_alloc_failures(void **state)
{
        struct parquet_buf b = {0};
        struct parquet_footer *f = NULL;
        struct parquet_error err;
        struct variant v;
        uint64_t n;

        (void)state;
        v_init(&v);
        v.nested = true;
        build(&v, &b);
        for (n = 1;; n++) {
                int r;

                floe_alloc_fail_at(n);
                r = parquet_footer_read(b.data, b.len, b.len, NULL, &f, &err);
                if (!floe_alloc_failed()) {
                        floe_alloc_fail_at(0);
                        assert_int_equal(r, 0);
                        f = parquet_footer_free(f);
                        break;
                }
                floe_alloc_fail_at(0);
                assert_int_equal(r, -ENOMEM);
                assert_null(f);
                assert_non_null(strstr(err.msg, "out of memory"));
        }
        assert_true(n > 1);
        parquet_buf_done(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_and_report),
                cmocka_unit_test(test_float_bounds),
                cmocka_unit_test(test_nested),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_trailer_and_limits),
                cmocka_unit_test(test_truncated_metadata),
                cmocka_unit_test(test_alloc_failures),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
