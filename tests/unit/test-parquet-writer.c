/* SPDX-License-Identifier: Apache-2.0 */
/* The Parquet writer: statistics (NaN, zeros, empty and all-null columns),
 * row groups, dictionary fallback, bad input, sink and allocation failures.
 * Files are read back with our footer reader here; tests/system/test_parquet.py
 * reads them with DuckDB and hyparquet. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "parquet.h"

static uint64_t rng = 0x9e3779b97f4a7c15;

static uint64_t next(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

struct mem {
        uint8_t *data;
        size_t len, cap;
        int writes, fail_at; /* fail the fail_at-th write with -EIO */
};

static int mem_write(void *userdata, const void *data, size_t len)
{
        struct mem *m = userdata;

        if (++m->writes == m->fail_at)
                return -EIO;
        if (m->cap - m->len < len) {
                size_t cap = m->cap ? m->cap * 2 : 4096;

                while (cap - m->len < len)
                        cap *= 2;
                m->data = realloc(m->data, cap);
                assert_non_null(m->data);
                m->cap = cap;
        }
        memcpy(m->data + m->len, data, len);
        m->len += len;
        return 0;
}

static struct parquet_footer *read_back(const struct mem *m)
{
        struct parquet_footer *f = NULL;
        struct parquet_error err;
        int r = parquet_footer_read(m->data, m->len, m->len, NULL, &f, &err);

        if (r < 0)
                fail_msg("footer: %s", err.msg);
        return f;
}

static const struct parquet_stats *stats(const struct parquet_footer *f, size_t g, size_t c)
{
        assert_true(g < f->n_row_groups && c < f->row_groups[g].n_columns);
        assert_true(f->row_groups[g].columns[c].has_stats);
        return &f->row_groups[g].columns[c].stats;
}

static double get_double(const struct parquet_bytes *b)
{
        double d;

        assert_int_equal(b->len, 8);
        memcpy(&d, b->ptr, 8);
        return d;
}

static float get_float(const struct parquet_bytes *b)
{
        float v;

        assert_int_equal(b->len, 4);
        memcpy(&v, b->ptr, 4);
        return v;
}

static bool bytes_is(const struct parquet_bytes *b, const char *s)
{
        return b->len == strlen(s) && memcmp(b->ptr, s, b->len) == 0;
}

/* One file of n rows of one double, one float and one string column. */
static struct parquet_footer *write_dfs(const double *d, const float *fl, const uint8_t *valid,
                                        const struct parquet_str *s, size_t n,
                                        struct parquet_report **ret_report, struct mem *m)
{
        static const struct parquet_column cols[] = {
                {"d", 1, PARQUET_KIND_DOUBLE, false},
                {"f", 2, PARQUET_KIND_FLOAT, false},
                {"s", 3, PARQUET_KIND_STRING, false},
        };
        struct parquet_sink sink = {mem_write, m};
        struct parquet_values v[3] = {{d, valid}, {fl, valid}, {s, valid}};
        struct parquet_writer *w;

        assert_int_equal(parquet_writer_new(cols, 3, NULL, &sink, &w), 0);
        assert_int_equal(parquet_writer_write(w, v, n), 0);
        assert_int_equal(parquet_writer_close(w, ret_report), 0);
        parquet_writer_free(w);
        return read_back(m);
}

static void test_stats_nan_and_zeros(void **state)
{
        const double d[] = {NAN, -0.0, 0.0, 3.0, -NAN, 7.0, -2.5};
        const float fl[] = {NAN, 0.0f, -0.0f, 1.0f, NAN, INFINITY, -1.0f};
        const uint8_t valid[] = {1, 1, 1, 1, 1, 1, 0};
        const struct parquet_str s[] = {{"b", 1}, {"", 0},  {"a", 1}, {"ü", 2},
                                        {"b", 1}, {"z", 1}, {NULL, 0}};
        struct parquet_report *rep;
        struct mem m = {0};
        struct parquet_footer *f = write_dfs(d, fl, valid, s, 7, &rep, &m);
        const struct parquet_stats *st;

        (void)state;
        /* double: NaN not a bound, counted; a zero max is +0.0 (the min is -2.5 here, a null) */
        st = stats(f, 0, 0);
        assert_true(st->has_nan_count && st->nan_count == 2);
        assert_true(st->has_null_count && st->null_count == 1);
        assert_true(get_double(&st->min_value) == -0.0 && signbit(get_double(&st->min_value)));
        assert_true(get_double(&st->max_value) == 7.0);
        assert_true(st->has_min && st->has_max); /* deprecated fields: signed order is safe */
        assert_memory_equal(st->min.ptr, st->min_value.ptr, 8);
        assert_true(st->min_exact && st->max_exact);
        /* float: infinity is a value */
        st = stats(f, 0, 1);
        assert_true(st->nan_count == 2);
        assert_true(get_float(&st->min_value) == 0.0f && signbit(get_float(&st->min_value)));
        assert_true(isinf(get_float(&st->max_value)));
        /* strings: unsigned byte order, the empty string is the min; no deprecated fields */
        st = stats(f, 0, 2);
        assert_true(bytes_is(&st->min_value, "") && bytes_is(&st->max_value, "ü"));
        assert_false(st->has_min || st->has_max || st->has_nan_count);
        /* the report says the same */
        assert_int_equal(rep->num_rows, 7);
        assert_int_equal(rep->file_size, m.len);
        assert_true(rep->columns[0].has_nan_count && rep->columns[0].nan_count == 2);
        assert_true(signbit(get_double(&rep->columns[0].lower)));
        assert_true(get_double(&rep->columns[0].upper) == 7.0);
        assert_true(bytes_is(&rep->columns[2].upper, "ü"));
        assert_int_equal(rep->columns[2].null_count, 1);
        assert_false(rep->columns[2].has_nan_count);
        parquet_report_free(rep);
        parquet_footer_free(f);
        free(m.data);
}

static void test_stats_only_zeros_nan_null(void **state)
{
        const double zeros[] = {0.0, 0.0}, nans[] = {NAN, NAN};
        const float fz[] = {-0.0f, -0.0f}, fn[] = {NAN, NAN};
        const uint8_t none[] = {0, 0};
        const struct parquet_str s[] = {{"", 0}, {"", 0}};
        struct parquet_report *rep;
        const struct parquet_stats *st;
        struct parquet_footer *f;
        struct mem m = {0};

        (void)state;
        /* only zeros: min -0.0, max +0.0 whatever their signs */
        f = write_dfs(zeros, fz, NULL, s, 2, &rep, &m);
        st = stats(f, 0, 0);
        assert_true(signbit(get_double(&st->min_value)) && !signbit(get_double(&st->max_value)));
        st = stats(f, 0, 1);
        assert_true(signbit(get_float(&st->min_value)) && !signbit(get_float(&st->max_value)));
        st = stats(f, 0, 2);
        assert_true(bytes_is(&st->min_value, "") && bytes_is(&st->max_value, ""));
        parquet_report_free(rep);
        parquet_footer_free(f);
        /* only NaN: no min/max at all, nan_count = values */
        m.len = 0;
        f = write_dfs(nans, fn, NULL, s, 2, &rep, &m);
        st = stats(f, 0, 0);
        assert_false(st->has_min_value || st->has_max_value || st->has_min || st->has_max);
        assert_true(st->nan_count == 2 && st->null_count == 0);
        assert_false(rep->columns[0].has_bounds);
        assert_int_equal(rep->columns[1].nan_count, 2);
        parquet_report_free(rep);
        parquet_footer_free(f);
        /* only nulls: no min/max, no dictionary page */
        m.len = 0;
        f = write_dfs(nans, fn, none, s, 2, &rep, &m);
        for (size_t c = 0; c < 3; c++) {
                st = stats(f, 0, c);
                assert_false(st->has_min_value || st->has_max_value);
                assert_true(st->null_count == 2);
                assert_false(rep->columns[c].has_bounds);
                assert_int_equal(rep->columns[c].value_count, 2);
        }
        assert_false(f->row_groups[0].columns[2].has_dictionary_page_offset);
        assert_int_equal(stats(f, 0, 0)->nan_count, 0);
        parquet_report_free(rep);
        parquet_footer_free(f);
        free(m.data);
}

static void test_string_truncation(void **state)
{
        static const struct parquet_column col = {"s", 9, PARQUET_KIND_STRING, true};
        const struct parquet_str s[] = {{"abcdefghijk", 11}, {"ééééé", 10}, {"abcdefgh", 8}};
        struct parquet_options o;
        struct mem m = {0};
        struct parquet_sink sink = {mem_write, &m};
        struct parquet_values v = {s, NULL};
        struct parquet_writer *w;
        struct parquet_footer *f;
        const struct parquet_stats *st;

        (void)state;
        parquet_options_init(&o);
        o.stats_max_bytes = 8;
        assert_int_equal(parquet_writer_new(&col, 1, &o, &sink, &w), 0);
        assert_int_equal(parquet_writer_write(w, &v, 3), 0);
        assert_int_equal(parquet_writer_close(w, NULL), 0);
        parquet_writer_free(w);
        f = read_back(&m);
        st = stats(f, 0, 0);
        /* the min "abcdefgh" fits: exact; the max is cut on a character and incremented */
        assert_true(bytes_is(&st->min_value, "abcdefgh") && st->min_exact);
        assert_true(bytes_is(&st->max_value, "éééê") && !st->max_exact);
        parquet_footer_free(f);
        free(m.data);
}

static const struct parquet_column wide[] = {
        {"ts", 1, PARQUET_KIND_TIMESTAMPTZ, true}, {"s", 2, PARQUET_KIND_STRING, false},
        {"d", 3, PARQUET_KIND_DOUBLE, false},      {"i", 4, PARQUET_KIND_INT, false},
        {"b", 5, PARQUET_KIND_BOOLEAN, false},     {"day", 6, PARQUET_KIND_DATE, true},
        {"f", 7, PARQUET_KIND_FLOAT, false},       {"l", 8, PARQUET_KIND_LONG, true},
};

#define WIDE_ROWS 2500

struct wide_rows {
        int64_t ts[WIDE_ROWS], l[WIDE_ROWS];
        struct parquet_str s[WIDE_ROWS];
        char text[WIDE_ROWS][16];
        double d[WIDE_ROWS];
        int32_t i[WIDE_ROWS], day[WIDE_ROWS];
        bool b[WIDE_ROWS];
        float f[WIDE_ROWS];
        uint8_t valid[WIDE_ROWS];
};

static void make_wide(struct wide_rows *r)
{
        for (int k = 0; k < WIDE_ROWS; k++) {
                r->ts[k] = 1763676000000000 + k * 1000;
                r->l[k] = (int64_t)k * k - 7;
                snprintf(r->text[k], sizeof(r->text[k]), "v%d", k / 3);
                r->s[k] = (struct parquet_str){r->text[k], (uint32_t)strlen(r->text[k])};
                r->d[k] = k * 0.5 - 100;
                r->i[k] = -k;
                r->day[k] = 20000 + k % 50;
                r->b[k] = k % 3 == 0;
                r->f[k] = (float)k / 8;
                r->valid[k] = k % 10 != 0;
        }
}

/* A file exercising row groups, dictionary fallback, delta, split and both codecs. */
static int write_wide(const struct wide_rows *r, const struct parquet_options *o, struct mem *m,
                      struct parquet_report **ret_report)
{
        struct parquet_sink sink = {mem_write, m};
        struct parquet_writer *w = NULL;
        int ret;

        ret = parquet_writer_new(wide, 8, o, &sink, &w);
        if (ret < 0)
                return ret;
        ret = parquet_writer_set_metadata(w, "iceberg.schema", "{}");
        if (ret == 0)
                ret = parquet_writer_set_metadata(w, "iceberg.schema", "{\"x\":1}");
        if (ret < 0) {
                parquet_writer_free(w);
                return ret;
        }
        for (size_t at = 0; ret == 0 && at < WIDE_ROWS; at += 700) {
                size_t n = WIDE_ROWS - at < 700 ? WIDE_ROWS - at : 700;
                struct parquet_values v[8] = {
                        {r->ts + at, NULL},         {r->s + at, r->valid + at},
                        {r->d + at, r->valid + at}, {r->i + at, r->valid + at},
                        {r->b + at, r->valid + at}, {r->day + at, NULL},
                        {r->f + at, r->valid + at}, {r->l + at, NULL},
                };

                ret = parquet_writer_write(w, v, n);
        }
        if (ret == 0)
                ret = parquet_writer_close(w, ret_report);
        if (ret < 0) {
                /* a failed writer keeps failing the same way */
                int again = parquet_writer_close(w, NULL);

                assert_true(again < 0);
                assert_true(parquet_writer_error(w)[0] != '\0' || ret == -ENOMEM);
        }
        parquet_writer_free(w);
        return ret;
}

static void wide_options(struct parquet_options *o)
{
        parquet_options_init(o);
        o->row_group_rows = 1000;
        o->page_bytes = 256;
        o->dict_bytes = 2048;
        o->int_delta = true;
        o->float_split = true;
}

static void test_row_groups_and_encodings(void **state)
{
        static struct wide_rows r;
        struct parquet_report *rep, *rep2;
        struct parquet_options o;
        struct parquet_footer *f;
        struct mem m = {0};

        (void)state;
        make_wide(&r);
        wide_options(&o);
        assert_int_equal(write_wide(&r, &o, &m, &rep), 0);
        f = read_back(&m);
        assert_int_equal(f->num_rows, WIDE_ROWS);
        assert_int_equal(f->n_row_groups, 3);
        assert_int_equal(f->row_groups[0].num_rows, 1000);
        assert_int_equal(f->row_groups[2].num_rows, 500);
        assert_string_equal(parquet_footer_get(f, "iceberg.schema"), "{\"x\":1}");
        assert_int_equal(f->n_kv, 1);
        assert_string_equal(f->created_by, PARQUET_CREATED_BY);
        for (size_t g = 0; g < 3; g++) {
                const struct parquet_chunk *s = &f->row_groups[g].columns[1];

                /* the string dictionary outgrew 2 KiB after serving some pages */
                assert_true(s->encodings & (1u << PARQUET_ENC_RLE_DICTIONARY));
                assert_true(s->has_encoding_stats && s->dict_data_pages > 0);
                assert_true(f->row_groups[g].columns[0].encodings &
                            (1u << PARQUET_ENC_DELTA_BINARY_PACKED));
                assert_true(f->row_groups[g].columns[2].encodings &
                            (1u << PARQUET_ENC_BYTE_STREAM_SPLIT));
                assert_true(f->row_groups[g].columns[2].encodings & (1u << PARQUET_ENC_RLE));
                assert_int_equal(f->row_groups[g].columns[4].encodings,
                                 (1u << PARQUET_ENC_PLAIN) | (1u << PARQUET_ENC_RLE));
                assert_true(rep->row_group_offsets[g] == (uint64_t)f->row_groups[g].file_offset);
                for (size_t c = 0; c < 8; c++)
                        assert_int_equal(f->row_groups[g].columns[c].codec, PARQUET_CODEC_ZSTD);
        }
        assert_true(f->row_groups[0].columns[1].other_data_pages > 0);
        /* the footer reader derives the writer's report */
        assert_int_equal(parquet_footer_report(f, m.len, &rep2), 0);
        assert_int_equal(rep2->n_columns, rep->n_columns);
        for (size_t c = 0; c < rep->n_columns; c++) {
                const struct parquet_column_report *a = &rep->columns[c], *b = &rep2->columns[c];

                assert_int_equal(a->field_id, b->field_id);
                assert_int_equal(a->value_count, WIDE_ROWS);
                assert_int_equal(a->value_count, b->value_count);
                assert_int_equal(a->null_count, b->null_count);
                assert_int_equal(a->nan_count, b->nan_count);
                assert_int_equal(a->compressed_size, b->compressed_size);
                assert_true(a->has_bounds && b->has_bounds);
                assert_int_equal(a->lower.len, b->lower.len);
                assert_memory_equal(a->lower.ptr, b->lower.ptr, a->lower.len);
                assert_memory_equal(a->upper.ptr, b->upper.ptr, a->upper.len);
        }
        assert_int_equal(rep->columns[1].null_count, WIDE_ROWS / 10);
        assert_true(bytes_is(&rep->columns[1].lower, "v0") &&
                    bytes_is(&rep->columns[1].upper, "v99"));
        parquet_report_free(rep2);
        parquet_report_free(rep);
        parquet_footer_free(f);
        free(m.data);
}

static void test_deterministic_and_uncompressed(void **state)
{
        static struct wide_rows r;
        struct parquet_options o;
        struct mem a = {0}, b = {0};
        struct parquet_footer *f;

        (void)state;
        make_wide(&r);
        wide_options(&o);
        assert_int_equal(write_wide(&r, &o, &a, NULL), 0);
        assert_int_equal(write_wide(&r, &o, &b, NULL), 0);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        o.codec = PARQUET_CODEC_UNCOMPRESSED;
        b.len = 0;
        assert_int_equal(write_wide(&r, &o, &b, NULL), 0);
        f = read_back(&b);
        for (size_t c = 0; c < 8; c++) {
                const struct parquet_chunk *k = &f->row_groups[1].columns[c];

                assert_int_equal(k->codec, PARQUET_CODEC_UNCOMPRESSED);
                assert_int_equal(k->total_compressed_size, k->total_uncompressed_size);
        }
        parquet_footer_free(f);
        free(a.data);
        free(b.data);
}

static void test_bad_input(void **state)
{
        static const struct parquet_column dup[] = {{"a", 1, PARQUET_KIND_LONG, true},
                                                    {"a", 2, PARQUET_KIND_LONG, true}};
        static const struct parquet_column dup_id[] = {{"a", 1, PARQUET_KIND_LONG, true},
                                                       {"b", 1, PARQUET_KIND_LONG, true}};
        static const struct parquet_column cols[] = {{"a", 1, PARQUET_KIND_LONG, true},
                                                     {"s", 2, PARQUET_KIND_STRING, false}};
        const int64_t a[3] = {1, 2, 3};
        const uint8_t holes[3] = {1, 0, 1};
        const struct parquet_str s[3] = {{"x", 1}, {NULL, 5}, {"z", 1}};
        struct mem m = {0};
        struct parquet_sink sink = {mem_write, &m};
        struct parquet_values v[2] = {{a, holes}, {s, holes}};
        struct parquet_options o;
        struct parquet_report *rep;
        struct parquet_writer *w;

        (void)state;
        parquet_options_init(&o);
        o.codec = PARQUET_CODEC_SNAPPY;
        assert_int_equal(parquet_writer_new(cols, 2, &o, &sink, &w), -EOPNOTSUPP);
        parquet_options_init(&o);
        o.zstd_level = 99;
        assert_int_equal(parquet_writer_new(cols, 2, &o, &sink, &w), -ERANGE);
        parquet_options_init(&o);
        o.page_bytes = 0;
        assert_int_equal(parquet_writer_new(cols, 2, &o, &sink, &w), -ERANGE);
        assert_int_equal(parquet_writer_new(dup, 2, NULL, &sink, &w), -EEXIST);
        assert_int_equal(parquet_writer_new(dup_id, 2, NULL, &sink, &w), -EEXIST);
        assert_int_equal(parquet_writer_new(cols, 0, NULL, &sink, &w), -EINVAL);

        assert_int_equal(parquet_writer_new(cols, 2, NULL, &sink, &w), 0);
        /* a null in the required column: refused whole, nothing taken */
        assert_int_equal(parquet_writer_write(w, v, 3), -EINVAL);
        assert_non_null(strstr(parquet_writer_error(w), "column a: null in a required column"));
        v[0].valid = NULL;
        assert_int_equal(parquet_writer_write(w, v, 3), 0); /* s[1] is null: its NULL ptr is fine */
        v[1].valid = NULL;
        assert_int_equal(parquet_writer_write(w, v, 3), -EINVAL); /* now it is a value */
        assert_non_null(strstr(parquet_writer_error(w), "column s: string of 5 bytes at row 1"));
        assert_int_equal(parquet_writer_rows(w), 3);
        assert_int_equal(parquet_writer_close(w, &rep), 0);
        assert_int_equal(rep->num_rows, 3);
        assert_int_equal(rep->columns[1].null_count, 1);
        assert_int_equal(parquet_writer_write(w, v, 1), -EBADF);
        assert_int_equal(parquet_writer_close(w, NULL), -EBADF);
        parquet_report_free(rep);
        parquet_writer_free(w);
        free(m.data);
}

/* The sink failing at each of its writes in turn. */
static void test_sink_failure(void **state)
{
        static struct wide_rows r;
        struct parquet_options o;
        int writes;

        (void)state;
        make_wide(&r);
        wide_options(&o);
        {
                struct mem m = {0};

                assert_int_equal(write_wide(&r, &o, &m, NULL), 0);
                writes = m.writes;
                free(m.data);
        }
        assert_true(writes > 10);
        for (int k = 1; k <= writes; k++) {
                struct mem m = {.fail_at = k};

                assert_int_equal(write_wide(&r, &o, &m, NULL), -EIO);
                free(m.data);
        }
}

/* Every allocation of a whole file in turn fails cleanly (ASan/valgrind see leaks). */
static void test_alloc_failures(void **state)
{
        static struct wide_rows r;
        struct parquet_options o;
        uint64_t n;

        (void)state;
        make_wide(&r);
        wide_options(&o);
        for (n = 1;; n++) {
                struct parquet_report *rep = NULL;
                struct mem m = {0};
                int ret;

                floe_alloc_fail_at(n);
                ret = write_wide(&r, &o, &m, &rep);
                if (!floe_alloc_failed()) {
                        floe_alloc_fail_at(0);
                        assert_int_equal(ret, 0);
                        parquet_report_free(rep);
                        free(m.data);
                        break;
                }
                floe_alloc_fail_at(0);
                assert_int_equal(ret, -ENOMEM);
                assert_null(rep);
                free(m.data);
        }
        assert_true(n > 50);
}

static void test_buffered_bound(void **state)
{
        static const struct parquet_column col = {"d", 1, PARQUET_KIND_DOUBLE, true};
        double *d = malloc(200000 * sizeof(*d));
        struct parquet_options o;
        struct mem m = {0};
        struct parquet_sink sink = {mem_write, &m};
        struct parquet_values v = {d, NULL};
        struct parquet_writer *w;
        struct parquet_footer *f;

        (void)state;
        /* random mantissas in [1, 2): zstd cannot shrink them much */
        for (int i = 0; i < 200000; i++) {
                uint64_t bits = UINT64_C(0x3ff) << 52 | (next() & ((UINT64_C(1) << 52) - 1));

                memcpy(&d[i], &bits, 8);
        }
        parquet_options_init(&o);
        o.row_group_bytes = 256 * 1024;
        o.page_bytes = 32 * 1024;
        assert_int_equal(parquet_writer_new(&col, 1, &o, &sink, &w), 0);
        for (int i = 0; i < 200000; i += 10000) {
                assert_int_equal(
                        parquet_writer_write(w, &(struct parquet_values){d + i, NULL}, 10000), 0);
                /* never more than the limit plus one slice of 4096 rows */
                assert_true(parquet_writer_buffered(w) < o.row_group_bytes + 4096 * 8);
        }
        assert_int_equal(parquet_writer_close(w, NULL), 0);
        parquet_writer_free(w);
        (void)v;
        f = read_back(&m);
        assert_true(f->n_row_groups >= 5);
        for (size_t g = 0; g < f->n_row_groups; g++)
                assert_true(f->row_groups[g].total_compressed_size <
                            (int64_t)(o.row_group_bytes + 4096 * 8));
        parquet_footer_free(f);
        free(m.data);
        free(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stats_nan_and_zeros),
                cmocka_unit_test(test_stats_only_zeros_nan_null),
                cmocka_unit_test(test_string_truncation),
                cmocka_unit_test(test_row_groups_and_encodings),
                cmocka_unit_test(test_deterministic_and_uncompressed),
                cmocka_unit_test(test_bad_input),
                cmocka_unit_test(test_sink_failure),
                cmocka_unit_test(test_alloc_failures),
                cmocka_unit_test(test_buffered_bound),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
