/* SPDX-License-Identifier: Apache-2.0 */
/* Iceberg types, single-value serialisation, partition transforms (spec Appendix B test
 * vectors) and partition paths. */
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
#include "iceberg.h"

static struct ice_datum lng(enum ice_type_id t, int64_t v)
{
        return (struct ice_datum){.type = t, .v.l = v};
}

static struct ice_datum in(enum ice_type_id t, int32_t v)
{
        return (struct ice_datum){.type = t, .v.i = v};
}

static struct ice_datum bytes(enum ice_type_id t, const void *p, size_t n)
{
        return (struct ice_datum){.type = t, .bytes = (uint8_t *)p, .len = n};
}

static int32_t hash(struct ice_datum d)
{
        int32_t h;

        assert_int_equal(ice_bucket_hash(&d, &h), 0);
        return h;
}

static void test_murmur3_vectors(void **state)
{
        static const uint8_t uuid[16] = {0xf7, 0x9c, 0x3e, 0x09, 0x67, 0x7c, 0x4b, 0xbd,
                                         0xa4, 0x79, 0x3f, 0x34, 0x9c, 0xb7, 0x85, 0xe7};
        static const uint8_t dec[] = {0x05, 0x8c}; /* 14.20: unscaled 1420 */
        static const uint8_t dec_padded[] = {0x00, 0x00, 0x05, 0x8c};

        (void)state;
        /* spec Appendix B */
        assert_int_equal(hash(in(ICE_TYPE_INT, 34)), 2017239379);
        assert_int_equal(hash(lng(ICE_TYPE_LONG, 34)), 2017239379);
        assert_int_equal(hash(bytes(ICE_TYPE_DECIMAL, dec, 2)), -500754589);
        assert_int_equal(hash(bytes(ICE_TYPE_DECIMAL, dec_padded, 4)), -500754589);
        assert_int_equal(hash(in(ICE_TYPE_DATE, 17486)), -653330422); /* 2017-11-16 */
        assert_int_equal(hash(lng(ICE_TYPE_TIME, INT64_C(81068000000))), -662762989);
        assert_int_equal(hash(lng(ICE_TYPE_TIMESTAMP, INT64_C(1510871468000000))), -2047944441);
        assert_int_equal(hash(lng(ICE_TYPE_TIMESTAMP, INT64_C(1510871468000001))), -1207196810);
        assert_int_equal(hash(lng(ICE_TYPE_TIMESTAMPTZ, INT64_C(1510871468000001))), -1207196810);
        assert_int_equal(hash(lng(ICE_TYPE_TIMESTAMP_NS, INT64_C(1510871468000001001))),
                         -1207196810);
        assert_int_equal(hash(bytes(ICE_TYPE_STRING, "iceberg", 7)), 1210000089);
        assert_int_equal(hash(bytes(ICE_TYPE_UUID, uuid, 16)), 1488055340);
        assert_int_equal(hash(bytes(ICE_TYPE_FIXED, "\0\1\2\3", 4)), -188683207);
        assert_int_equal(hash(bytes(ICE_TYPE_BINARY, "\0\1\2\3", 4)), -188683207);
        /* the raw function on the empty input and every tail length */
        assert_int_equal(ice_murmur3_32("", 0), 0);
        assert_int_equal((int32_t)ice_murmur3_32("iceberg", 7), 1210000089);
}

static struct ice_datum apply(const char *transform, struct ice_type src, struct ice_datum v)
{
        struct ice_transform t;
        struct ice_datum out;

        assert_int_equal(ice_transform_parse(transform, &t), 0);
        assert_int_equal(ice_transform_apply(&t, &src, &v, &out), 0);
        return out;
}

static void test_transforms(void **state)
{
        struct ice_type ts = {.id = ICE_TYPE_TIMESTAMPTZ}, date = {.id = ICE_TYPE_DATE};
        struct ice_type i32 = {.id = ICE_TYPE_INT}, i64 = {.id = ICE_TYPE_LONG};
        struct ice_type str = {.id = ICE_TYPE_STRING},
                        dec = {.id = ICE_TYPE_DECIMAL, .precision = 9, .scale = 2};
        /* 2026-11-21T13:45:00Z */
        int64_t us = INT64_C(1795268700) * 1000000;
        struct ice_datum d, n = {.type = ICE_TYPE_TIMESTAMPTZ, .null = true};
        struct ice_transform t;
        struct ice_type rt;

        (void)state;
        d = apply("hour", ts, lng(ICE_TYPE_TIMESTAMPTZ, us));
        assert_int_equal(d.type, ICE_TYPE_INT);
        assert_int_equal(d.v.i, 498685);
        d = apply("day", ts, lng(ICE_TYPE_TIMESTAMPTZ, us));
        assert_int_equal(d.type, ICE_TYPE_DATE);
        assert_int_equal(d.v.i, 20778);
        assert_int_equal(apply("month", ts, lng(ICE_TYPE_TIMESTAMPTZ, us)).v.i, 56 * 12 + 10);
        assert_int_equal(apply("year", ts, lng(ICE_TYPE_TIMESTAMPTZ, us)).v.i, 56);
        /* before the epoch: floors, not truncation towards zero */
        assert_int_equal(apply("hour", ts, lng(ICE_TYPE_TIMESTAMPTZ, -1)).v.i, -1);
        assert_int_equal(apply("day", ts, lng(ICE_TYPE_TIMESTAMPTZ, -1)).v.i, -1);
        assert_int_equal(apply("month", ts, lng(ICE_TYPE_TIMESTAMPTZ, -1)).v.i, -1);
        assert_int_equal(apply("year", ts, lng(ICE_TYPE_TIMESTAMPTZ, -1)).v.i, -1);
        assert_int_equal(apply("month", date, in(ICE_TYPE_DATE, 17486)).v.i, 47 * 12 + 10);
        assert_int_equal(apply("day", date, in(ICE_TYPE_DATE, -3)).v.i, -3);
        /* nulls stay null */
        d = apply("hour", ts, n);
        assert_true(d.null);
        /* bucket */
        assert_int_equal(apply("bucket[16]", i32, in(ICE_TYPE_INT, 34)).v.i, 2017239379 % 16);
        assert_int_equal(apply("bucket[7]", str, bytes(ICE_TYPE_STRING, "iceberg", 7)).v.i,
                         1210000089 % 7);
        /* truncate: positive remainders */
        assert_int_equal(apply("truncate[10]", i32, in(ICE_TYPE_INT, 1)).v.i, 0);
        assert_int_equal(apply("truncate[10]", i32, in(ICE_TYPE_INT, -1)).v.i, -10);
        assert_true(apply("truncate[10]", i64, lng(ICE_TYPE_LONG, -11)).v.l == -20);
        d = apply("truncate[3]", str, bytes(ICE_TYPE_STRING, "iceberg", 7));
        assert_int_equal(d.len, 3);
        assert_memory_equal(d.bytes, "ice", 3);
        ice_datum_clear(&d);
        d = apply("truncate[2]", str, bytes(ICE_TYPE_STRING, "\xc3\xbc\xe2\x82\xac!", 6));
        assert_int_equal(d.len, 5); /* two code points: ü€ */
        ice_datum_clear(&d);
        /* decimal(9,2) 10.65 truncate[50] = 10.50 */
        d = apply("truncate[50]", dec, bytes(ICE_TYPE_DECIMAL, "\x04\x29", 2));
        assert_int_equal(d.bytes[6], 0x04);
        assert_int_equal(d.bytes[7], 0x1a); /* 1050 */
        ice_datum_clear(&d);
        /* what does not apply */
        assert_int_equal(ice_transform_parse("hour", &t), 0);
        assert_int_equal(ice_transform_result_type(&t, &date, &rt), -EINVAL);
        assert_int_equal(ice_transform_parse("bucket[0]", &t), -EINVAL);
        assert_int_equal(ice_transform_parse("truncate[x]", &t), -EINVAL);
        assert_int_equal(ice_transform_parse("zorder", &t), 0);
        assert_int_equal(t.kind, ICE_TRANSFORM_UNKNOWN);
}

static void human(const char *transform, struct ice_datum v, const char *want)
{
        struct ice_transform t;
        char buf[64];

        assert_int_equal(ice_transform_parse(transform, &t), 0);
        assert_int_equal(ice_partition_human(&t, &v, buf, sizeof(buf)), 0);
        assert_string_equal(buf, want);
}

static void test_human_and_path(void **state)
{
        struct ice_partition_field fields[2] = {
                {.source_id = 1,
                 .field_id = 1000,
                 .name = "tenant",
                 .transform = {ICE_TRANSFORM_IDENTITY, 0}},
                {.source_id = 5,
                 .field_id = 1001,
                 .name = "ts_day",
                 .transform = {ICE_TRANSFORM_DAY, 0}},
        };
        struct ice_partition_spec spec = {.spec_id = 0, .fields = fields, .n_fields = 2};
        struct ice_datum v[2] = {bytes(ICE_TYPE_STRING, "acme", 4), in(ICE_TYPE_DATE, 20778)};
        char path[256];

        (void)state;
        human("day", in(ICE_TYPE_DATE, 20778), "2026-11-21");
        human("day", in(ICE_TYPE_DATE, -1), "1969-12-31");
        human("hour", in(ICE_TYPE_INT, 498685), "2026-11-21-13");
        human("hour", in(ICE_TYPE_INT, -1), "1969-12-31-23");
        human("month", in(ICE_TYPE_INT, 682), "2026-11");
        human("month", in(ICE_TYPE_INT, -1), "1969-12");
        human("year", in(ICE_TYPE_INT, 56), "2026");
        human("bucket[4]", in(ICE_TYPE_INT, 3), "3");
        human("identity", lng(ICE_TYPE_TIMESTAMPTZ, INT64_C(1510871468000001)),
              "2017-11-16T22:31:08.000001Z");
        human("identity", lng(ICE_TYPE_TIMESTAMP, INT64_C(1510871460000000)), "2017-11-16T22:31");
        human("identity", (struct ice_datum){.type = ICE_TYPE_STRING, .null = true}, "null");

        assert_int_equal(ice_partition_path(&spec, v, 2, path, sizeof(path)), 0);
        assert_string_equal(path, "tenant=acme/ts_day=2026-11-21");
        /* form-URL-encoding of names and values, as Java's URLEncoder */
        v[0] = bytes(ICE_TYPE_STRING, "a b/\xc3\xbc=1&*-._~", 15);
        fields[0].name = "ten ant";
        assert_int_equal(ice_partition_path(&spec, v, 2, path, sizeof(path)), 0);
        assert_string_equal(path, "ten+ant=a+b%2F%C3%BC%3D1%26*-._%7E/ts_day=2026-11-21");
        v[1].null = true;
        assert_int_equal(ice_partition_path(&spec, v, 2, path, sizeof(path)), 0);
        assert_string_equal(path + strlen(path) - 11, "ts_day=null");
        assert_int_equal(ice_partition_path(&spec, v, 2, path, 10), -ENOSPC);
        assert_int_equal(ice_partition_path(&spec, v, 1, path, sizeof(path)), -EINVAL);
}

static void round_trip(struct ice_type t, struct ice_datum v, const uint8_t *want, size_t n)
{
        struct ice_datum back;
        uint8_t *p;
        size_t len;

        assert_int_equal(ice_value_serialize(&v, &p, &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(p, want, n);
        assert_int_equal(ice_value_deserialize(&t, p, len, &back), 0);
        assert_int_equal(ice_datum_compare(&v, &back), 0);
        ice_datum_clear(&back);
        /* a wrong length is rejected for fixed-size types */
        if (t.id != ICE_TYPE_STRING && t.id != ICE_TYPE_BINARY && t.id != ICE_TYPE_DECIMAL)
                assert_int_equal(ice_value_deserialize(&t, p, len + 1, &back), -EBADMSG);
        floe_free(p);
}

static void test_single_value(void **state)
{
        static const uint8_t uuid[16] = {0xf7, 0x9c, 0x3e, 0x09, 0x67, 0x7c, 0x4b, 0xbd,
                                         0xa4, 0x79, 0x3f, 0x34, 0x9c, 0xb7, 0x85, 0xe7};
        struct ice_datum f = {.type = ICE_TYPE_FLOAT, .v.f = 1.5f};
        struct ice_datum d = {.type = ICE_TYPE_DOUBLE, .v.d = -2.0};
        struct ice_datum b = {.type = ICE_TYPE_BOOLEAN, .v.b = true};
        struct ice_datum nul = {.type = ICE_TYPE_INT, .null = true};
        uint8_t *p;
        size_t len;

        (void)state;
        round_trip((struct ice_type){.id = ICE_TYPE_BOOLEAN}, b, (const uint8_t *)"\x01", 1);
        round_trip((struct ice_type){.id = ICE_TYPE_INT}, in(ICE_TYPE_INT, -2),
                   (const uint8_t *)"\xfe\xff\xff\xff", 4);
        round_trip((struct ice_type){.id = ICE_TYPE_DATE}, in(ICE_TYPE_DATE, 20778),
                   (const uint8_t *)"\x2a\x51\x00\x00", 4);
        round_trip((struct ice_type){.id = ICE_TYPE_LONG}, lng(ICE_TYPE_LONG, 1),
                   (const uint8_t *)"\x01\0\0\0\0\0\0\0", 8);
        round_trip((struct ice_type){.id = ICE_TYPE_TIME}, lng(ICE_TYPE_TIME, 256),
                   (const uint8_t *)"\0\x01\0\0\0\0\0\0", 8);
        round_trip((struct ice_type){.id = ICE_TYPE_TIMESTAMPTZ},
                   lng(ICE_TYPE_TIMESTAMPTZ, INT64_MIN), (const uint8_t *)"\0\0\0\0\0\0\0\x80", 8);
        round_trip((struct ice_type){.id = ICE_TYPE_TIMESTAMP}, lng(ICE_TYPE_TIMESTAMP, -1),
                   (const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff", 8);
        round_trip((struct ice_type){.id = ICE_TYPE_FLOAT}, f, (const uint8_t *)"\0\0\xc0\x3f", 4);
        round_trip((struct ice_type){.id = ICE_TYPE_DOUBLE}, d,
                   (const uint8_t *)"\0\0\0\0\0\0\0\xc0", 8);
        round_trip((struct ice_type){.id = ICE_TYPE_STRING}, bytes(ICE_TYPE_STRING, "ü", 2),
                   (const uint8_t *)"\xc3\xbc", 2);
        round_trip((struct ice_type){.id = ICE_TYPE_STRING}, bytes(ICE_TYPE_STRING, "", 0),
                   (const uint8_t *)"", 0);
        round_trip((struct ice_type){.id = ICE_TYPE_BINARY}, bytes(ICE_TYPE_BINARY, "\0\1", 2),
                   (const uint8_t *)"\0\1", 2);
        round_trip((struct ice_type){.id = ICE_TYPE_FIXED, .length = 3},
                   bytes(ICE_TYPE_FIXED, "abc", 3), (const uint8_t *)"abc", 3);
        round_trip((struct ice_type){.id = ICE_TYPE_UUID}, bytes(ICE_TYPE_UUID, uuid, 16), uuid,
                   16);
        /* decimals: minimal two's complement */
        round_trip((struct ice_type){.id = ICE_TYPE_DECIMAL, .precision = 10, .scale = 2},
                   bytes(ICE_TYPE_DECIMAL, "\x00\x00\x05\x8c", 4), (const uint8_t *)"\x05\x8c", 2);
        round_trip((struct ice_type){.id = ICE_TYPE_DECIMAL, .precision = 10, .scale = 2},
                   bytes(ICE_TYPE_DECIMAL, "\xff\xff\xff\x80", 4), (const uint8_t *)"\x80", 1);
        round_trip((struct ice_type){.id = ICE_TYPE_DECIMAL, .precision = 10, .scale = 2},
                   bytes(ICE_TYPE_DECIMAL, "\x00\x80", 2), (const uint8_t *)"\x00\x80", 2);
        assert_int_equal(ice_value_serialize(&nul, &p, &len), -EINVAL);
        assert_int_equal(
                ice_value_deserialize(&(struct ice_type){.id = ICE_TYPE_UUID}, uuid, 15, &d),
                -EBADMSG);
}

static void test_ordering(void **state)
{
        struct ice_datum a, b;

        (void)state;
        /* -0.0 before +0.0, NaN after infinity; negatives in order */
        a = (struct ice_datum){.type = ICE_TYPE_DOUBLE, .v.d = -0.0};
        b = (struct ice_datum){.type = ICE_TYPE_DOUBLE, .v.d = 0.0};
        assert_int_equal(ice_datum_compare(&a, &b), -1);
        a.v.d = INFINITY;
        b.v.d = NAN;
        assert_int_equal(ice_datum_compare(&a, &b), -1);
        a.v.d = -3;
        b.v.d = -2;
        assert_int_equal(ice_datum_compare(&a, &b), -1);
        a = (struct ice_datum){.type = ICE_TYPE_FLOAT, .v.f = -INFINITY};
        b = (struct ice_datum){.type = ICE_TYPE_FLOAT, .v.f = -1e30f};
        assert_int_equal(ice_datum_compare(&a, &b), -1);
        /* strings: unsigned bytes (code point order), prefixes first */
        a = bytes(ICE_TYPE_STRING, "z", 1);
        b = bytes(ICE_TYPE_STRING, "\xc3\xa9", 2);
        assert_int_equal(ice_datum_compare(&a, &b), -1);
        a = bytes(ICE_TYPE_STRING, "ab", 2);
        b = bytes(ICE_TYPE_STRING, "abc", 3);
        assert_int_equal(ice_datum_compare(&a, &b), -1);
        /* decimals of different lengths */
        a = bytes(ICE_TYPE_DECIMAL, "\xff", 1);
        b = bytes(ICE_TYPE_DECIMAL, "\x00\x01", 2);
        assert_int_equal(ice_datum_compare(&a, &b), -1);
        a = bytes(ICE_TYPE_DECIMAL, "\x01\x00", 2);
        b = bytes(ICE_TYPE_DECIMAL, "\x7f", 1);
        assert_int_equal(ice_datum_compare(&a, &b), 1);
        /* nulls first */
        a = (struct ice_datum){.type = ICE_TYPE_INT, .null = true};
        b = in(ICE_TYPE_INT, INT32_MIN);
        assert_int_equal(ice_datum_compare(&a, &b), -1);
}

static void test_bound_truncation(void **state)
{
        uint8_t *u;
        size_t n;

        (void)state;
        assert_int_equal(ice_bound_truncate_lower((const uint8_t *)"iceberg", 7, 3, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(ice_bound_truncate_upper((const uint8_t *)"iceberg", 7, 3, &u, &n), 0);
        assert_int_equal(n, 3);
        assert_memory_equal(u, "icf", 3);
        floe_free(u);
        /* short enough: unchanged */
        assert_int_equal(ice_bound_truncate_upper((const uint8_t *)"ab", 2, 3, &u, &n), 0);
        assert_int_equal(n, 2);
        assert_memory_equal(u, "ab", 2);
        floe_free(u);
        /* the last code point is U+10FFFF: the one before it is incremented */
        assert_int_equal(ice_bound_truncate_upper((const uint8_t *)"a\xf4\x8f\xbf\xbf"
                                                                   "b",
                                                  6, 2, &u, &n),
                         0);
        assert_int_equal(n, 1);
        assert_memory_equal(u, "b", 1);
        floe_free(u);
        /* U+D7FF + 1 skips the surrogates */
        assert_int_equal(ice_bound_truncate_upper((const uint8_t *)"\xed\x9f\xbfzz", 5, 1, &u, &n),
                         0);
        assert_int_equal(n, 3);
        assert_memory_equal(u, "\xee\x80\x80", 3);
        floe_free(u);
        /* only maximal code points: no upper bound */
        assert_int_equal(ice_bound_truncate_upper((const uint8_t *)"\xf4\x8f\xbf\xbf"
                                                                   "x",
                                                  5, 1, &u, &n),
                         -ERANGE);
        assert_int_equal(ice_bound_truncate_lower((const uint8_t *)"\xc3", 1, 1, &n), -EINVAL);
}

static void test_types(void **state)
{
        static const char *const good[] = {"boolean",     "int",           "long", "float",
                                           "double",      "date",          "time", "timestamp",
                                           "timestamptz", "string",        "uuid", "binary",
                                           "fixed[16]",   "decimal(10, 2)"};
        static const char *const bad[] = {"fixed[0]",   "fixed[]", "decimal(39,1)", "decimal(5,6)",
                                          "decimal(1)", "strin",   "list",          "fixed[16"};
        struct ice_type t;
        char buf[32];

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                assert_int_equal(ice_type_parse(good[i], &t), 0);
                assert_int_equal(ice_type_format(&t, buf, sizeof(buf)), 0);
                assert_string_equal(buf, good[i]);
        }
        assert_int_equal(ice_type_parse("decimal( 9 ,2 )", &t), 0);
        assert_int_equal(t.precision, 9);
        assert_int_equal(t.scale, 2);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(ice_type_parse(bad[i], &t), -EINVAL);
}

static void test_data_file_copy(void **state)
{
        struct ice_column_metrics m = {.field_id = 5,
                                       .column_size = 10,
                                       .value_count = 3,
                                       .null_count = 0,
                                       .nan_count = -1,
                                       .lower = (uint8_t *)"\1\0\0\0",
                                       .lower_len = 4};
        struct ice_data_file f = {.sort_order_id = -1}, c;
        int64_t offs[] = {4, 1000};

        (void)state;
        f.path = floe_strdup("file:///t/data/a.parquet");
        f.format = floe_strdup("PARQUET");
        f.partition = floe_calloc(1, sizeof(*f.partition));
        f.n_partition = 1;
        f.partition[0] = (struct ice_datum){
                .type = ICE_TYPE_STRING, .bytes = (uint8_t *)floe_strdup("acme"), .len = 4};
        f.split_offsets = floe_malloc(sizeof(offs));
        memcpy(f.split_offsets, offs, sizeof(offs));
        f.n_split_offsets = 2;
        assert_int_equal(ice_data_file_add_column(&f, &m), 0);
        assert_int_equal(ice_data_file_copy(&f, &c), 0);
        ice_data_file_clear(&f);
        assert_string_equal(c.path, "file:///t/data/a.parquet");
        assert_memory_equal(c.partition[0].bytes, "acme", 4);
        assert_int_equal(c.columns[0].lower_len, 4);
        assert_null(c.columns[0].upper);
        assert_true(c.split_offsets[1] == 1000);
        ice_data_file_clear(&c);
        assert_int_equal(c.sort_order_id, -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_murmur3_vectors), cmocka_unit_test(test_transforms),
                cmocka_unit_test(test_human_and_path),  cmocka_unit_test(test_single_value),
                cmocka_unit_test(test_ordering),        cmocka_unit_test(test_bound_truncation),
                cmocka_unit_test(test_types),           cmocka_unit_test(test_data_file_copy),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
