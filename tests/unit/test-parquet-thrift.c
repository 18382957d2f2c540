/* SPDX-License-Identifier: Apache-2.0 */
/* Thrift compact protocol: byte vectors, round trips and malformed input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "parquet-internal.h"
#include "parquet-thrift.h"

static struct parquet_limits limits(void)
{
        struct parquet_limits lim;

        parquet_limits_init(&lim);
        return lim;
}

/* PageHeaders as DuckDB 1.5.6 writes them (reference/parquet.md §2, decoded by hand). */
static void test_page_header_bytes(void **state)
{
        static const uint8_t dict[] = {0x15, 0x04, 0x15, 0xc0, 0x01, 0x15, 0x52,
                                       0x4c, 0x15, 0x10, 0x15, 0x00, 0x00, 0x00};
        static const uint8_t data[] = {0x15, 0x00, 0x15, 0xd2, 0xc7, 0x07, 0x15,
                                       0x46, 0x2c, 0x15, 0x80, 0x80, 0x0f, 0x15,
                                       0x04, 0x15, 0x06, 0x15, 0x06, 0x00, 0x00};
        struct parquet_buf b = {0};

        (void)state;
        assert_int_equal(parquet_meta_page_header(&b, PAGE_DICTIONARY, 96, 41, 8, 0), 0);
        assert_int_equal(b.len, sizeof(dict));
        assert_memory_equal(b.data, dict, sizeof(dict));
        b.len = 0;
        assert_int_equal(parquet_meta_page_header(&b, PAGE_DATA, 61929, 35, 122880,
                                                  PARQUET_ENC_PLAIN_DICTIONARY),
                         0);
        assert_int_equal(b.len, sizeof(data));
        assert_memory_equal(b.data, data, sizeof(data));
        parquet_buf_done(&b);
}

/* Every value type, short and long field headers, nested structs and lists. */
static void encode_sample(struct parquet_buf *b)
{
        struct parquet_tenc e;

        parquet_tenc_init(&e, b);
        parquet_tenc_struct_begin(&e, 0);
        parquet_tenc_i8(&e, 1, -7);
        parquet_tenc_i16(&e, 2, -300);
        parquet_tenc_i32(&e, 3, INT32_MIN);
        parquet_tenc_i64(&e, 4, INT64_MAX);
        parquet_tenc_double(&e, 5, -2.5);
        parquet_tenc_bool(&e, 6, true);
        parquet_tenc_bool(&e, 7, false);
        parquet_tenc_string(&e, 8, "héllo");
        parquet_tenc_struct_begin(&e, 40); /* delta 32: long form */
        parquet_tenc_i32(&e, 1, 42);
        parquet_tenc_struct_end(&e);
        parquet_tenc_list(&e, 41, TT_I32, 20); /* more than 14: long list header */
        for (int i = 0; i < 20; i++)
                parquet_tenc_elem_i32(&e, i - 10);
        parquet_tenc_list(&e, 42, TT_STRUCT, 2);
        for (int i = 0; i < 2; i++) {
                parquet_tenc_struct_begin(&e, 0);
                parquet_tenc_i64(&e, 1, -i);
                parquet_tenc_struct_end(&e);
        }
        parquet_tenc_list(&e, 43, TT_TRUE, 3);
        parquet_tenc_elem_bool(&e, true);
        parquet_tenc_elem_bool(&e, false);
        parquet_tenc_elem_bool(&e, true);
        parquet_tenc_list(&e, 44, TT_BINARY, 1);
        parquet_tenc_elem_binary(&e, "", 0);
        parquet_tenc_i32(&e, 1000, 5);
        parquet_tenc_struct_end(&e);
        assert_int_equal(parquet_tenc_done(&e), 0);
}

static void test_round_trip(void **state)
{
        struct parquet_limits lim = limits();
        struct parquet_buf b = {0};
        struct parquet_error err;
        struct parquet_tdec d;
        const uint8_t *p;
        unsigned t, et;
        uint32_t n;
        int16_t id, i16;
        int32_t i32;
        int64_t i64;
        int8_t i8;
        double dbl;
        size_t len;
        bool bl;

        (void)state;
        encode_sample(&b);
        parquet_tdec_init(&d, b.data, b.len, &lim, &err);
        assert_int_equal(parquet_tdec_struct_begin(&d, "Sample"), 0);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_true(t == TT_I8 && id == 1);
        assert_int_equal(parquet_tdec_i8(&d, t, &i8), 0);
        assert_int_equal(i8, -7);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_i16(&d, t, &i16), 0);
        assert_int_equal(i16, -300);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_i32(&d, t, &i32), 0);
        assert_int_equal(i32, INT32_MIN);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_i64(&d, t, &i64), 0);
        assert_true(i64 == INT64_MAX);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_double(&d, t, &dbl), 0);
        assert_true(dbl == -2.5);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_bool(&d, t, &bl), 0);
        assert_true(bl && id == 6);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_bool(&d, t, &bl), 0);
        assert_true(!bl && id == 7);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_binary(&d, t, &p, &len), 0);
        assert_true(len == strlen("héllo") && memcmp(p, "héllo", len) == 0);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_true(t == TT_STRUCT && id == 40);
        assert_int_equal(parquet_tdec_struct_begin(&d, "Inner"), 0);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_i32(&d, t, &i32), 0);
        assert_true(i32 == 42 && id == 1);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(t, TT_STOP);
        parquet_tdec_struct_end(&d);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(id, 41);
        assert_int_equal(parquet_tdec_list(&d, t, &et, &n), 0);
        assert_true(et == TT_I32 && n == 20);
        for (int i = 0; i < 20; i++) {
                assert_int_equal(parquet_tdec_i32(&d, et, &i32), 0);
                assert_int_equal(i32, i - 10);
        }
        /* the list of structs and the bools are skipped whole */
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_skip(&d, t), 0);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(id, 43);
        assert_int_equal(parquet_tdec_list(&d, t, &et, &n), 0);
        assert_true(n == 3 && (et == TT_TRUE || et == TT_FALSE));
        for (int i = 0; i < 3; i++) {
                assert_int_equal(parquet_tdec_elem_bool(&d, &bl), 0);
                assert_int_equal(bl, i != 1);
        }
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_skip(&d, t), 0);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_true(t == TT_I32 && id == 1000);
        assert_int_equal(parquet_tdec_skip(&d, t), 0);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(t, TT_STOP);
        assert_int_equal(d.pos, b.len);
        parquet_buf_done(&b);
}

/* Every proper prefix of a valid encoding fails, with an offset inside the input. */
static void test_truncated(void **state)
{
        struct parquet_limits lim = limits();
        struct parquet_buf b = {0};

        (void)state;
        encode_sample(&b);
        for (size_t len = 0; len < b.len; len++) {
                struct parquet_error err;
                struct parquet_tdec d;

                parquet_tdec_init(&d, b.data, len, &lim, &err);
                assert_int_equal(parquet_tdec_skip(&d, TT_STRUCT), -EBADMSG);
                assert_true(err.offset <= len);
                assert_true(strstr(err.msg, "input ends inside") || strstr(err.msg, "left"));
                assert_non_null(strstr(err.msg, " at offset "));
        }
        parquet_buf_done(&b);
}

static int skip_bytes(const uint8_t *p, size_t len, const struct parquet_limits *lim,
                      struct parquet_error *err)
{
        struct parquet_tdec d;

        parquet_tdec_init(&d, p, len, lim, err);
        return parquet_tdec_skip(&d, TT_STRUCT);
}

static void test_over_deep(void **state)
{
        struct parquet_limits lim = limits();
        struct parquet_error err;
        uint8_t deep[200];

        (void)state;
        /* field 1 of type struct, nested 100 times */
        memset(deep, 0x1c, 100);
        memset(deep + 100, 0, 100);
        assert_int_equal(skip_bytes(deep, sizeof(deep), &lim, &err), -E2BIG);
        assert_string_equal(err.msg, "nesting deeper than 32 in ...(skipped).(skipped)."
                                     "(skipped).(skipped) field 1 at offset 32");
        assert_int_equal(err.field_id, 1);
        assert_int_equal(err.offset, 32);
        /* 31 levels are fine */
        memset(deep, 0, sizeof(deep));
        memset(deep, 0x1c, 30);
        assert_int_equal(skip_bytes(deep, 61, &lim, &err), 0);
        /* lists count as nesting too: field 1 a list, then "1 element of type list" headers */
        memset(deep, 0x19, 100);
        assert_int_equal(skip_bytes(deep, 100, &lim, &err), -E2BIG);
}

static void test_huge_lengths(void **state)
{
        struct parquet_limits lim = limits();
        struct parquet_error err;
        /* field 1 binary, length 0xffffffff */
        static const uint8_t big_binary[] = {0x18, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x', 0};
        /* field 1 binary, length 20 but 2 bytes left */
        static const uint8_t short_binary[] = {0x18, 20, 'a', 'b'};
        /* field 2 list<i32> of 2^28 elements */
        static const uint8_t big_list[] = {0x29, 0xf5, 0xff, 0xff, 0xff, 0x7f, 0};
        /* list of 100 elements, 3 bytes left */
        static const uint8_t long_list[] = {0x29, 0xf5, 100, 1, 2, 3};
        /* map of 2^31 entries */
        static const uint8_t big_map[] = {0x1b, 0xff, 0xff, 0xff, 0xff, 0x07, 0x55, 0};
        /* varint of 11 bytes */
        static const uint8_t long_varint[] = {0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                              0xff, 0xff, 0xff, 0xff, 0x01, 0};

        (void)state;
        assert_int_equal(skip_bytes(big_binary, sizeof(big_binary), &lim, &err), -E2BIG);
        assert_non_null(strstr(err.msg, "over limit"));
        assert_int_equal(err.field_id, 1);
        assert_int_equal(skip_bytes(short_binary, sizeof(short_binary), &lim, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "binary of 20 bytes, 2 bytes left"));
        assert_int_equal(skip_bytes(big_list, sizeof(big_list), &lim, &err), -E2BIG);
        assert_int_equal(err.field_id, 2);
        assert_int_equal(skip_bytes(long_list, sizeof(long_list), &lim, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "list of 100 elements"));
        assert_int_equal(skip_bytes(big_map, sizeof(big_map), &lim, &err), -E2BIG);
        assert_int_equal(skip_bytes(long_varint, sizeof(long_varint), &lim, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "varint"));
        /* a lower limit applies */
        lim.max_string = 1;
        assert_int_equal(skip_bytes(short_binary, sizeof(short_binary), &lim, &err), -E2BIG);
}

static void test_bad_values(void **state)
{
        struct parquet_limits lim = limits();
        struct parquet_error err;
        struct parquet_tdec d;
        static const uint8_t bad_type[] = {0x1d, 0};                         /* field type 13 */
        static const uint8_t bad_bool[] = {0x19, 0x31, 0x01, 0x03, 0x01, 0}; /* list<bool> */
        static const uint8_t i32_range[] = {0x15, 0x80, 0x80, 0x80, 0x80, 0x10, 0};
        static const uint8_t i32_as_i64[] = {0x16, 0x02, 0};
        unsigned t;
        int16_t id;
        int32_t v;

        (void)state;
        assert_int_equal(skip_bytes(bad_type, sizeof(bad_type), &lim, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "invalid field type 13"));
        assert_int_equal(err.offset, 0);
        assert_int_equal(skip_bytes(bad_bool, sizeof(bad_bool), &lim, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "bool element 0x03"));
        /* an i32 that needs 33 bits */
        parquet_tdec_init(&d, i32_range, sizeof(i32_range), &lim, &err);
        assert_int_equal(parquet_tdec_struct_begin(&d, "S"), 0);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_i32(&d, t, &v), -EBADMSG);
        assert_string_equal(err.msg, "i32 out of range in S field 1 at offset 6");
        /* a type mismatch names both types */
        parquet_tdec_init(&d, i32_as_i64, sizeof(i32_as_i64), &lim, &err);
        assert_int_equal(parquet_tdec_struct_begin(&d, "S"), 0);
        assert_int_equal(parquet_tdec_field(&d, &t, &id), 0);
        assert_int_equal(parquet_tdec_i32(&d, t, &v), -EBADMSG);
        assert_non_null(strstr(err.msg, "expected i32, got i64"));
        assert_int_equal(err.field_id, 1);
        assert_int_equal(err.offset, 1);
}

static void test_encoder_misuse(void **state)
{
        struct parquet_buf b = {0};
        struct parquet_tenc e;

        (void)state;
        parquet_tenc_init(&e, &b);
        parquet_tenc_struct_begin(&e, 0);
        assert_int_equal(parquet_tenc_done(&e), -EINVAL); /* unbalanced */
        parquet_tenc_init(&e, &b);
        parquet_tenc_struct_end(&e);
        assert_int_equal(parquet_tenc_done(&e), -EINVAL);
        /* allocation failure is sticky */
        parquet_buf_done(&b);
        parquet_tenc_init(&e, &b);
        floe_alloc_fail_at(1);
        parquet_tenc_struct_begin(&e, 0);
        parquet_tenc_i32(&e, 1, 1);
        parquet_tenc_struct_end(&e);
        floe_alloc_fail_at(0);
        assert_int_equal(parquet_tenc_done(&e), -ENOMEM);
        parquet_buf_done(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_page_header_bytes), cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_truncated),         cmocka_unit_test(test_over_deep),
                cmocka_unit_test(test_huge_lengths),      cmocka_unit_test(test_bad_values),
                cmocka_unit_test(test_encoder_misuse),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
