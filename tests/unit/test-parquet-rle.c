/* SPDX-License-Identifier: Apache-2.0 */
/* The RLE/bit-packed hybrid, DELTA_BINARY_PACKED and BYTE_STREAM_SPLIT:
 * vectors from Encodings.md and DuckDB's files, round trips over every bit
 * width and run shape, and malformed input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "parquet-rle.h"

static uint64_t rng = 0x1234567;

static uint64_t next(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

/* Encodings.md, RLE: "For example, the values 0 through 7 with bit width 3". */
static void test_spec_bitpacked(void **state)
{
        static const uint32_t v[8] = {0, 1, 2, 3, 4, 5, 6, 7};
        static const uint8_t want[] = {0x03, 0x88, 0xc6, 0xfa};
        struct parquet_buf b = {0};
        uint32_t back[8];

        (void)state;
        assert_int_equal(parquet_rle_encode(&b, v, 8, 3), 0);
        assert_int_equal(b.len, sizeof(want));
        assert_memory_equal(b.data, want, sizeof(want));
        assert_int_equal(parquet_rle_decode(b.data, b.len, 3, back, 8, NULL), 0);
        assert_memory_equal(back, v, sizeof(v));
        parquet_buf_done(&b);
}

/* DuckDB: 122,880 non-null values of a flat optional column -> one RLE run. */
static void test_duckdb_levels(void **state)
{
        static const uint8_t want[] = {0x80, 0x80, 0x0f, 0x01};
        uint8_t *ones = malloc(122880);
        struct parquet_buf b = {0};

        (void)state;
        memset(ones, 1, 122880);
        assert_int_equal(parquet_rle_encode_u8(&b, ones, 122880, 1), 0);
        assert_int_equal(b.len, sizeof(want));
        assert_memory_equal(b.data, want, sizeof(want));
        parquet_buf_done(&b);
        free(ones);
}

static void round_trip(const uint32_t *v, size_t n, unsigned bw)
{
        struct parquet_buf b = {0};
        uint32_t *back = calloc(n + 1, sizeof(*back));
        size_t used;

        assert_int_equal(parquet_rle_encode(&b, v, n, bw), 0);
        assert_true(b.len <= parquet_rle_max_size(n, bw));
        assert_int_equal(parquet_rle_decode(b.data, b.len, bw, back, n, &used), 0);
        assert_int_equal(used, b.len);
        assert_memory_equal(back, v, n * sizeof(*v));
        parquet_buf_done(&b);
        free(back);
}

/* Every width 0..32 with random runs: lengths around the 8-value group size,
 * long runs, and literal stretches longer than one indicator byte holds. */
static void test_widths_and_runs(void **state)
{
        enum { N = 5000 };
        uint32_t *v = malloc(N * sizeof(*v));

        (void)state;
        for (unsigned bw = 0; bw <= 32; bw++) {
                uint32_t mask = bw == 32 ? UINT32_MAX : (1u << bw) - 1;

                for (int shape = 0; shape < 4; shape++) {
                        size_t i = 0;

                        while (i < N) {
                                size_t run = shape == 0   ? 1 + next() % 10
                                             : shape == 1 ? 1
                                             : shape == 2 ? 7 + next() % 3
                                                          : 600 + next() % 3000;
                                uint32_t x = (uint32_t)next() & mask;

                                for (size_t k = 0; k < run && i < N; k++)
                                        v[i++] = shape == 1 ? ((uint32_t)next() & mask) : x;
                        }
                        for (size_t n = 0; n < 20; n++)
                                round_trip(v, n, bw);
                        round_trip(v, N, bw);
                        round_trip(v, N - 3, bw);
                }
        }
        free(v);
}

static void test_run_boundaries(void **state)
{
        uint32_t v[2000];
        struct parquet_buf b = {0};

        (void)state;
        /* 8 equal values are one RLE run: header 8<<1, value */
        for (int i = 0; i < 8; i++)
                v[i] = 5;
        assert_int_equal(parquet_rle_encode(&b, v, 8, 3), 0);
        assert_int_equal(b.len, 2);
        assert_int_equal(b.data[0], 16);
        assert_int_equal(b.data[1], 5);
        /* 7 distinct then 9 equal: a literal group (indicator 0x03), then an RLE run
         * of the 8 values after the group boundary */
        for (int i = 0; i < 16; i++)
                v[i] = i < 8 ? (uint32_t)i : 3;
        b.len = 0;
        assert_int_equal(parquet_rle_encode(&b, v, 16, 3), 0);
        assert_int_equal(b.data[0], 0x03);
        assert_int_equal(b.data[4], 16);
        assert_int_equal(b.data[5], 3);
        assert_int_equal(b.len, 6);
        /* 1000 alternating values: literal runs of at most 63 groups each */
        for (int i = 0; i < 1000; i++)
                v[i] = (uint32_t)i & 1;
        b.len = 0;
        assert_int_equal(parquet_rle_encode(&b, v, 1000, 1), 0);
        assert_int_equal(b.data[0], 63 << 1 | 1);
        round_trip(v, 1000, 1);
        /* 32-bit values in RLE runs take 4 bytes */
        for (int i = 0; i < 100; i++)
                v[i] = UINT32_MAX;
        b.len = 0;
        assert_int_equal(parquet_rle_encode(&b, v, 100, 32), 0);
        assert_int_equal(b.len, 1 + 1 + 4);
        round_trip(v, 100, 32);
        parquet_buf_done(&b);
}

static void test_decode_rejects(void **state)
{
        uint32_t out[16];
        static const uint8_t empty_rle[] = {0x00, 0x01};
        static const uint8_t empty_packed[] = {0x01};
        static const uint8_t big_value[] = {0x10, 0x09}; /* 8 x 9 with bw 3 */
        static const uint8_t short_packed[] = {0x03, 0xff};
        static const uint8_t no_value[] = {0x10};

        (void)state;
        assert_int_equal(parquet_rle_decode(empty_rle, 2, 1, out, 1, NULL), -EBADMSG);
        assert_int_equal(parquet_rle_decode(empty_packed, 1, 1, out, 1, NULL), -EBADMSG);
        assert_int_equal(parquet_rle_decode(big_value, 2, 3, out, 8, NULL), -EBADMSG);
        assert_int_equal(parquet_rle_decode(short_packed, 2, 3, out, 8, NULL), -EBADMSG);
        assert_int_equal(parquet_rle_decode(no_value, 1, 3, out, 8, NULL), -EBADMSG);
        assert_int_equal(parquet_rle_decode(big_value, 2, 33, out, 8, NULL), -EINVAL);
        /* more values asked than the runs hold */
        assert_int_equal(parquet_rle_decode(big_value, 2, 4, out, 9, NULL), -EBADMSG);
        /* fewer: fine, the run is cut */
        assert_int_equal(parquet_rle_decode(big_value, 2, 4, out, 3, NULL), 0);
        assert_int_equal(out[2], 9);
}

/* Encodings.md DELTA_BINARY_PACKED examples 1 and 2. */
static void test_delta_spec(void **state)
{
        static const int64_t ex1[] = {1, 2, 3, 4, 5};
        static const uint8_t want1[] = {0x80, 0x01, 0x04, 0x05, 0x02, 0x02, 0, 0, 0, 0};
        static const int32_t ex2[] = {7, 5, 3, 1, 2, 3, 4, 5};
        static const uint8_t want2[] = {0x80, 0x01, 0x04, 0x08, 0x0e, 0x03, 0x02, 0x00, 0x00,
                                        0x00, 0xc0, 0x3f, 0,    0,    0,    0,    0,    0};
        struct parquet_buf b = {0};
        int32_t back2[8];
        int64_t back1[5];

        (void)state;
        assert_int_equal(parquet_delta_encode(&b, ex1, 5, 8), 0);
        assert_int_equal(b.len, sizeof(want1));
        assert_memory_equal(b.data, want1, sizeof(want1));
        assert_int_equal(parquet_delta_decode(b.data, b.len, 8, back1, 5, NULL), 0);
        assert_memory_equal(back1, ex1, sizeof(ex1));
        b.len = 0;
        assert_int_equal(parquet_delta_encode(&b, ex2, 8, 4), 0);
        assert_int_equal(b.len, sizeof(want2));
        assert_memory_equal(b.data, want2, sizeof(want2));
        assert_int_equal(parquet_delta_decode(b.data, b.len, 4, back2, 8, NULL), 0);
        assert_memory_equal(back2, ex2, sizeof(ex2));
        parquet_buf_done(&b);
}

static void test_delta_round_trip(void **state)
{
        static const size_t sizes[] = {0, 1, 2, 31, 32, 33, 127, 128, 129, 130, 1000, 4097};
        int64_t *v = malloc(5000 * sizeof(*v)), *back = malloc(5000 * sizeof(*back));
        int32_t *v32 = malloc(5000 * sizeof(*v32)), *back32 = malloc(5000 * sizeof(*back32));
        struct parquet_buf b = {0};

        (void)state;
        for (int shape = 0; shape < 4; shape++) {
                for (size_t i = 0; i < 5000; i++) {
                        uint64_t r = next();

                        /* extremes wrap around; sorted; constant; random */
                        v[i] = shape == 0 ? (i % 2 ? INT64_MIN : INT64_MAX)
                               : shape == 1
                                       ? 1763676000000000 + (int64_t)i * 1000 + (int64_t)(r % 7)
                               : shape == 2 ? -5
                                            : (int64_t)r;
                        v32[i] = shape == 0 ? (i % 2 ? INT32_MIN : INT32_MAX) : (int32_t)v[i];
                }
                for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                        size_t n = sizes[k], used;

                        b.len = 0;
                        assert_int_equal(parquet_delta_encode(&b, v, n, 8), 0);
                        assert_int_equal(parquet_delta_decode(b.data, b.len, 8, back, n, &used), 0);
                        assert_int_equal(used, b.len);
                        assert_memory_equal(back, v, n * 8);
                        b.len = 0;
                        assert_int_equal(parquet_delta_encode(&b, v32, n, 4), 0);
                        assert_int_equal(parquet_delta_decode(b.data, b.len, 4, back32, n, &used),
                                         0);
                        assert_int_equal(used, b.len);
                        assert_memory_equal(back32, v32, n * 4);
                        /* INT32 miniblocks never need more than 32 bits */
                        assert_true(n < 2 || b.len <= 16 + (n / 128 + 1) * (5 + 4 + 128 * 4));
                }
        }
        /* a count that disagrees with the header is refused */
        b.len = 0;
        assert_int_equal(parquet_delta_encode(&b, v, 10, 8), 0);
        assert_int_equal(parquet_delta_decode(b.data, b.len, 8, back, 11, NULL), -EBADMSG);
        assert_int_equal(parquet_delta_decode(b.data, b.len - 1, 8, back, 10, NULL), -EBADMSG);
        parquet_buf_done(&b);
        free(v);
        free(back);
        free(v32);
        free(back32);
}

static void test_byte_stream_split(void **state)
{
        static const float f[3] = {1.0f, -2.0f, 0.5f};
        static const uint8_t want[12] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                         0x80, 0x00, 0x00, 0x3f, 0xc0, 0x3f};
        struct parquet_buf b = {0};
        double d[100], back[100];
        float fb[3];

        (void)state;
        assert_int_equal(parquet_split_encode(&b, f, 3, 4), 0);
        assert_memory_equal(b.data, want, sizeof(want));
        parquet_split_decode(b.data, 3, 4, fb);
        assert_memory_equal(fb, f, sizeof(f));
        for (int i = 0; i < 100; i++)
                d[i] = (double)next() / 3.0;
        b.len = 0;
        assert_int_equal(parquet_split_encode(&b, d, 100, 8), 0);
        assert_int_equal(b.len, 800);
        parquet_split_decode(b.data, 100, 8, back);
        assert_memory_equal(back, d, sizeof(d));
        parquet_buf_done(&b);
}

static void test_alloc_failure(void **state)
{
        static const uint32_t v[4] = {1, 2, 3, 4};
        struct parquet_buf b = {0};

        (void)state;
        floe_alloc_fail_at(1);
        assert_int_equal(parquet_rle_encode(&b, v, 4, 3), -ENOMEM);
        floe_alloc_fail_at(1);
        assert_int_equal(parquet_delta_encode(&b, v, 4, 4), -ENOMEM);
        floe_alloc_fail_at(1);
        assert_int_equal(parquet_split_encode(&b, v, 4, 4), -ENOMEM);
        floe_alloc_fail_at(0);
        assert_int_equal(b.len, 0);
        parquet_buf_done(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_spec_bitpacked),   cmocka_unit_test(test_duckdb_levels),
                cmocka_unit_test(test_widths_and_runs),  cmocka_unit_test(test_run_boundaries),
                cmocka_unit_test(test_decode_rejects),   cmocka_unit_test(test_delta_spec),
                cmocka_unit_test(test_delta_round_trip), cmocka_unit_test(test_byte_stream_split),
                cmocka_unit_test(test_alloc_failure),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
