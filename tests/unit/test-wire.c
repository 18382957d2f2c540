/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <cmocka.h>
#include <zstd.h>

#include "floe-alloc.h"
#include "floe-batch.h"
#include "floe-wire.h"

static uint64_t rnd(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

static const char *const SENSORS[] = {"boiler-3", "door", "pump-1"};
static const char *const METRICS[] = {"temp", "pressure", "state"};

/* A batch that exercises every column feature. */
static struct floe_batch *make_events(const struct floe_wire_limits *lim)
{
        static const double values[] = {21.5,
                                        1013,
                                        0.1,
                                        -0.0,
                                        3.141592653589793,
                                        1e300,
                                        -7.25,
                                        5e-324,
                                        9007199254740991.0,
                                        12345.678,
                                        0,
                                        -2};
        struct floe_batch *b;

        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, lim, &b), 0);
        assert_int_equal(floe_batch_set_identity(b, "acme.gw-0001"), 0);
        b->epoch = 0xfedcba9876543210ULL;
        b->seq = 42;
        b->created_us = 1763676000123456;
        for (int i = 0; i < 60; i++) {
                const char *s = SENSORS[i % 3], *m = METRICS[(i / 3) % 3];
                uint32_t series;
                bool isnull = i % 11 == 5;
                const char *text = i % 7 == 3 ? (i % 2 ? "open" : "clöséd") : NULL;

                assert_int_equal(floe_batch_intern_series(b, s, strlen(s), m, strlen(m), &series),
                                 0);
                assert_int_equal(floe_batch_add_event(b, series,
                                                      1763676000000000LL + i * 1000037LL -
                                                              (i == 7 ? 5000000000LL : 0),
                                                      values[i % 12] * (1 + i / 12), isnull, text,
                                                      text ? strlen(text) : 0),
                                 0);
        }
        return b;
}

static struct floe_batch *make_aggregates(void)
{
        struct floe_batch *b;

        assert_int_equal(floe_batch_new(FLOE_KIND_AGGREGATES, NULL, &b), 0);
        assert_int_equal(floe_batch_set_identity(b, "t1.d-2"), 0);
        b->epoch = 1;
        b->seq = UINT64_MAX;
        b->created_us = -1;
        for (int i = 0; i < 40; i++) {
                struct floe_agg_row row = {
                        .window_start_us = 1763676000000000LL + (i / 4) * 60000000LL,
                        .window_s = i == 9 ? UINT32_MAX : 60,
                        .count = i == 3 ? 0 : (uint64_t)(50 + i),
                        .v = {i * 10.5, -i * 0.01, i + 0.3, 1.0 / (i + 1), i},
                };
                uint32_t series;

                for (int c = 0; c < FLOE_AGG_NCOLS; c++)
                        row.null[c] = i == 3;
                assert_int_equal(floe_batch_intern_series(b, SENSORS[i % 3], strlen(SENSORS[i % 3]),
                                                          METRICS[i % 2], strlen(METRICS[i % 2]),
                                                          &series),
                                 0);
                assert_int_equal(floe_batch_add_aggregate(b, series, &row), 0);
        }
        return b;
}

static void assert_same_strings(const struct floe_strdict *a, const struct floe_strdict *b)
{
        assert_int_equal(a->n, b->n);
        for (uint32_t i = 0; i < a->n; i++) {
                size_t la, lb;
                const char *sa = floe_strdict_get(a, i, &la), *sb = floe_strdict_get(b, i, &lb);

                assert_int_equal(la, lb);
                assert_memory_equal(sa, sb, la);
        }
}

static void assert_same_batch(const struct floe_batch *a, const struct floe_batch *b)
{
        uint32_t n = a->nrows;

        assert_int_equal(a->kind, b->kind);
        assert_string_equal(a->identity, b->identity);
        assert_true(a->epoch == b->epoch);
        assert_true(a->seq == b->seq);
        assert_true(a->created_us == b->created_us);
        assert_int_equal(a->nrows, b->nrows);
        assert_int_equal(a->nseries, b->nseries);
        assert_same_strings(&a->sensors, &b->sensors);
        assert_same_strings(&a->metrics, &b->metrics);
        if (n == 0)
                return;
        assert_memory_equal(a->series, b->series, a->nseries * sizeof(*a->series));
        assert_memory_equal(a->row_series, b->row_series, n * sizeof(uint32_t));
        assert_memory_equal(a->ts, b->ts, n * sizeof(int64_t));
        if (a->kind == FLOE_KIND_EVENTS) {
                assert_same_strings(&a->texts, &b->texts);
                assert_memory_equal(a->value_null, b->value_null, n);
                /* bitwise: -0.0 and 5e-324 must survive */
                assert_memory_equal(a->value, b->value, n * sizeof(double));
                assert_memory_equal(a->text, b->text, n * sizeof(uint32_t));
        } else {
                assert_memory_equal(a->window_s, b->window_s, n * sizeof(uint32_t));
                assert_memory_equal(a->count, b->count, n * sizeof(uint64_t));
                for (int c = 0; c < FLOE_AGG_NCOLS; c++) {
                        assert_memory_equal(a->agg_null[c], b->agg_null[c], n);
                        assert_memory_equal(a->agg[c], b->agg[c], n * sizeof(double));
                }
        }
}

/* Encodes, decodes, compares, and checks that re-encoding is byte-identical. */
static void roundtrip(const struct floe_batch *b)
{
        struct floe_wire_encoder *enc;
        struct floe_wire_decoder *dec;
        struct floe_batch *out;
        struct floe_wire_error err;
        const uint8_t *data;
        uint8_t *copy;
        size_t len, len2;

        assert_int_equal(floe_wire_encoder_new(FLOE_WIRE_LEVEL_DEFAULT, NULL, &enc), 0);
        assert_int_equal(floe_wire_decoder_new(NULL, &dec), 0);
        assert_int_equal(floe_wire_encode(enc, b, &data, &len), 0);
        copy = malloc(len);
        memcpy(copy, data, len);
        assert_int_equal(floe_wire_decode(dec, copy, len, &out, &err), 0);
        assert_same_batch(b, out);
        assert_int_equal(floe_wire_encode(enc, out, &data, &len2), 0);
        assert_int_equal(len, len2);
        assert_memory_equal(copy, data, len);
        free(copy);
        floe_batch_free(out);
        floe_wire_encoder_free(enc);
        floe_wire_decoder_free(dec);
}

static void test_roundtrip_events(void **state)
{
        struct floe_batch *b = make_events(NULL);

        (void)state;
        roundtrip(b);
        floe_batch_free(b);
}

static void test_roundtrip_aggregates(void **state)
{
        struct floe_batch *b = make_aggregates();

        (void)state;
        roundtrip(b);
        floe_batch_free(b);
}

static void test_roundtrip_empty(void **state)
{
        struct floe_batch *b;

        (void)state;
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &b), 0);
        assert_int_equal(floe_batch_set_identity(b, "a.b"), 0);
        roundtrip(b);
        floe_batch_free(b);
}

/* Decoding into a batch of the other kind, and reusing it, must work. */
static void test_decoder_reuse(void **state)
{
        struct floe_batch *ev = make_events(NULL), *agg = make_aggregates(), *out;
        struct floe_wire_encoder *enc;
        struct floe_wire_decoder *dec;
        struct floe_wire_error err;
        const uint8_t *data;
        size_t len;

        (void)state;
        assert_int_equal(floe_wire_encoder_new(1, NULL, &enc), 0);
        assert_int_equal(floe_wire_decoder_new(NULL, &dec), 0);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &out), 0);
        for (int i = 0; i < 4; i++) {
                const struct floe_batch *b = i % 2 ? agg : ev;

                assert_int_equal(floe_wire_encode(enc, b, &data, &len), 0);
                assert_int_equal(floe_wire_decode_into(dec, data, len, out, &err), 0);
                assert_same_batch(b, out);
        }
        floe_batch_free(out);
        floe_batch_free(ev);
        floe_batch_free(agg);
        floe_wire_encoder_free(enc);
        floe_wire_decoder_free(dec);
}

/* A decimal-coded series is smaller than float64, and mixed scales work. */
static void test_decimal_encoding_is_smaller(void **state)
{
        struct floe_wire_encoder *enc;
        struct floe_batch *dec_b, *f64_b;
        const uint8_t *data;
        size_t dec_len, f64_len;

        (void)state;
        assert_int_equal(floe_wire_encoder_new(FLOE_WIRE_LEVEL_DEFAULT, NULL, &enc), 0);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &dec_b), 0);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &f64_b), 0);
        floe_batch_set_identity(dec_b, "a.b");
        floe_batch_set_identity(f64_b, "a.b");
        for (int i = 0; i < 2000; i++) {
                uint32_t s1, s2;
                double v = (double)((i * 7919) % 4001) / 100.0; /* 2 decimals */
                double w = M_PI / (i + 3);                      /* needs all 17 digits */

                floe_batch_intern_series(dec_b, "s", 1, "m", 1, &s1);
                floe_batch_intern_series(f64_b, "s", 1, "m", 1, &s2);
                assert_int_equal(floe_batch_add_event(dec_b, s1, i, v, false, NULL, 0), 0);
                assert_int_equal(floe_batch_add_event(f64_b, s2, i, w, false, NULL, 0), 0);
        }
        assert_int_equal(floe_wire_encode_raw(enc, dec_b, &data, &dec_len), 0);
        assert_int_equal(floe_wire_encode_raw(enc, f64_b, &data, &f64_len), 0);
        /* 2-byte mantissa deltas instead of 8-byte floats */
        assert_true(f64_len > dec_len + 2000 * 5);
        roundtrip(dec_b);
        roundtrip(f64_b);
        floe_batch_free(dec_b);
        floe_batch_free(f64_b);
        floe_wire_encoder_free(enc);
}

/* ---- builder limits ---- */

static unsigned smallest_scale(double v)
{
        static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

        for (unsigned k = 0; k < 16; k++) {
                double x = v * p10[k], back;
                int64_t m;

                if (!(x > -9007199254740993.0 && x < 9007199254740993.0))
                        continue;
                m = (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
                back = (double)m / p10[k];
                if (back == v && signbit(back) == signbit(v))
                        return k;
        }
        return 16;
}

/* The agent's decimals hints (each value's smallest scale, as its parsers
 * know it) change nothing in the encoding, however the values sit: small,
 * near 2^53 where a larger scale no longer fits, -0, mixed with values
 * without a hint. */
static void test_decimals_hints(void **state)
{
        static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};
        struct floe_wire_encoder *enc;
        uint64_t x = 99;

        (void)state;
        assert_int_equal(floe_wire_encoder_new(1, NULL, &enc), 0);
        for (int round = 0; round < 3000; round++) {
                struct floe_batch *b[2];
                const uint8_t *d0, *d1;
                uint8_t *copy;
                size_t l0, l1;
                uint32_t sid[6];
                int kind[6];

                for (int h = 0; h < 2; h++) {
                        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &b[h]), 0);
                        assert_int_equal(floe_batch_reserve(b[h], 300, 16, 1024, false), 0);
                        assert_int_equal(floe_batch_set_identity(b[h], "acme.gw-1"), 0);
                        for (int s = 0; s < 6; s++) {
                                char m[4] = {'m', (char)('0' + s), 0};

                                assert_int_equal(
                                        floe_batch_intern_series(b[h], "s", 1, m, 2, &sid[s]), 0);
                        }
                }
                assert_int_equal(floe_batch_keep_decimals(b[1]), 0);
                for (int s = 0; s < 6; s++)
                        kind[s] = (int)(rnd(&x) % 4);
                for (int i = 0; i < 200; i++) {
                        int s = (int)(rnd(&x) % 6);
                        int64_t m = (int64_t)(rnd(&x) % 2000001) - 1000000;
                        double v;

                        if (kind[s] == 1) /* near 2^53 */
                                m = (int64_t)((1ULL << 53) - rnd(&x) % 100000);
                        else if (kind[s] == 2) /* around 2^50 */
                                m = (int64_t)((1ULL << 50) + rnd(&x) % (1ULL << 52));
                        v = (double)m / p10[rnd(&x) % 11];
                        if (rnd(&x) % 50 == 0)
                                v = -0.0;
                        for (int h = 0; h < 2; h++)
                                assert_int_equal(floe_batch_add_event(b[h], sid[s], i, v,
                                                                      kind[s] == 3 && i % 9 == 0,
                                                                      NULL, 0),
                                                 0);
                        if (rnd(&x) % 5 && smallest_scale(v) < 16)
                                b[1]->decimals[b[1]->nrows - 1] = (uint8_t)(1 + smallest_scale(v));
                }
                assert_int_equal(floe_wire_encode_raw(enc, b[0], &d0, &l0), 0);
                copy = malloc(l0);
                assert_non_null(copy);
                memcpy(copy, d0, l0);
                assert_int_equal(floe_wire_encode_raw(enc, b[1], &d1, &l1), 0);
                assert_int_equal(l0, l1);
                assert_memory_equal(copy, d1, l0);
                free(copy);
                floe_batch_free(b[0]);
                floe_batch_free(b[1]);
        }
        floe_wire_encoder_free(enc);
}

static void test_builder_limits(void **state)
{
        struct floe_wire_limits lim;
        struct floe_batch *b;
        uint32_t s;
        char name[300];

        (void)state;
        floe_wire_limits_default(&lim);
        lim.max_rows = 3;
        lim.max_dict = 2;
        lim.max_series = 3;
        lim.max_name_len = 8;
        lim.max_text_len = 4;
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, &lim, &b), 0);
        assert_int_equal(floe_batch_intern_series(b, "a", 1, "x", 1, &s), 0);
        assert_int_equal(floe_batch_intern_series(b, "b", 1, "x", 1, &s), 0);
        assert_int_equal(floe_batch_intern_series(b, "c", 1, "x", 1, &s), -ENOSPC); /* dict */
        assert_int_equal(floe_batch_intern_series(b, "a", 1, "y", 1, &s), 0);
        assert_int_equal(floe_batch_intern_series(b, "b", 1, "y", 1, &s), -ENOSPC); /* series */
        memset(name, 'n', sizeof(name));
        assert_int_equal(floe_batch_intern_series(b, name, 9, "x", 1, &s), -ENAMETOOLONG);
        assert_int_equal(floe_batch_intern_series(b, "", 0, "x", 1, &s), -EINVAL);
        assert_int_equal(floe_batch_intern_series(b, "a\n", 2, "x", 1, &s), -EILSEQ);
        assert_int_equal(floe_batch_intern_series(b, "\xc3\x28", 2, "x", 1, &s), -EILSEQ);
        assert_int_equal(floe_batch_add_event(b, 0, 1, NAN, false, NULL, 0), -EDOM);
        assert_int_equal(floe_batch_add_event(b, 0, 1, INFINITY, false, NULL, 0), -EDOM);
        assert_int_equal(floe_batch_add_event(b, 0, 1, 1, false, "12345", 5), -ENAMETOOLONG);
        assert_int_equal(floe_batch_add_event(b, 0, 1, 1, false, "a\0b", 3), -EILSEQ);
        assert_int_equal(floe_batch_add_event(b, 9, 1, 1, false, NULL, 0), -EINVAL);
        for (int i = 0; i < 3; i++)
                assert_int_equal(floe_batch_add_event(b, 0, i, i, false, NULL, 0), 0);
        assert_int_equal(floe_batch_add_event(b, 0, 9, 9, false, NULL, 0), -ENOSPC);
        floe_batch_free(b);
}

/* A reserved and fixed batch never allocates when adding rows. */
static void test_fixed_batch_does_not_allocate(void **state)
{
        struct floe_batch *b;
        uint32_t s;

        (void)state;
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &b), 0);
        assert_int_equal(floe_batch_reserve(b, 1000, 64, 4096, true), 0);
        floe_alloc_fail_at(1);
        for (int round = 0; round < 3; round++) {
                floe_batch_reset(b);
                for (int i = 0; i < 1000; i++) {
                        char sn[16];
                        int n = snprintf(sn, sizeof(sn), "s%d", i % 50);

                        assert_int_equal(floe_batch_intern_series(b, sn, (size_t)n, "m", 1, &s), 0);
                        assert_int_equal(floe_batch_add_event(b, s, i, i, false, "t", 1), 0);
                }
                assert_int_equal(floe_batch_add_event(b, s, 0, 0, false, NULL, 0), -ENOSPC);
        }
        assert_int_equal(floe_alloc_count(), 0);
        floe_alloc_fail_at(0);
        floe_batch_free(b);
}

/* ---- every allocation of the codec fails in turn ---- */

static int codec_cycle(void)
{
        struct floe_wire_encoder *enc = NULL;
        struct floe_wire_decoder *dec = NULL;
        struct floe_batch *b = NULL, *out = NULL;
        struct floe_wire_error err;
        const uint8_t *data;
        size_t len;
        int r;

        r = floe_batch_new(FLOE_KIND_EVENTS, NULL, &b);
        for (int i = 0; r == 0 && i < 300; i++) {
                char sn[16], text[8];
                int n = snprintf(sn, sizeof(sn), "sensor-%d", i % 40);
                int tn = snprintf(text, sizeof(text), "t%d", i % 9);
                uint32_t s;

                r = floe_batch_intern_series(b, sn, (size_t)n, METRICS[i % 3],
                                             strlen(METRICS[i % 3]), &s);
                r = r
                            ?: floe_batch_add_event(b, s, i, i * 0.5, i % 17 == 0,
                                                    i % 5 ? NULL : text, (size_t)tn);
        }
        r = r ?: floe_batch_set_identity(b, "a.b");
        r = r ?: floe_wire_encoder_new(1, NULL, &enc);
        r = r ?: floe_wire_decoder_new(NULL, &dec);
        r = r ?: floe_wire_encode(enc, b, &data, &len);
        r = r ?: floe_wire_decode(dec, data, len, &out, &err);
        if (r == 0)
                assert_same_batch(b, out);
        else if (r != -ENOMEM)
                assert_int_equal(err.reason, FLOE_WIRE_NOMEM);
        floe_batch_free(out);
        floe_batch_free(b);
        floe_wire_encoder_free(enc);
        floe_wire_decoder_free(dec);
        return r;
}

static void test_alloc_failure_every_allocation(void **state)
{
        uint64_t n;

        (void)state;
        for (n = 1;; n++) {
                int r;

                floe_alloc_fail_at(n);
                r = codec_cycle();
                if (!floe_alloc_failed()) {
                        assert_int_equal(r, 0);
                        break;
                }
                assert_int_equal(r, -ENOMEM);
        }
        floe_alloc_fail_at(0);
        assert_true(n > 20); /* the loop really walked the allocations */
}

/* ---- truncation and corruption at every byte ---- */

static void encode_copy(const struct floe_batch *b, bool raw, uint8_t **ret, size_t *ret_len)
{
        struct floe_wire_encoder *enc;
        const uint8_t *data;

        assert_int_equal(floe_wire_encoder_new(FLOE_WIRE_LEVEL_DEFAULT, NULL, &enc), 0);
        if (raw)
                assert_int_equal(floe_wire_encode_raw(enc, b, &data, ret_len), 0);
        else
                assert_int_equal(floe_wire_encode(enc, b, &data, ret_len), 0);
        *ret = malloc(*ret_len);
        memcpy(*ret, data, *ret_len);
        floe_wire_encoder_free(enc);
}

static void test_truncated_every_byte(void **state)
{
        struct floe_batch *b = make_events(NULL), *out;
        struct floe_wire_decoder *dec;
        uint8_t *frame, *raw;
        size_t flen, rlen;

        (void)state;
        encode_copy(b, false, &frame, &flen);
        encode_copy(b, true, &raw, &rlen);
        assert_int_equal(floe_wire_decoder_new(NULL, &dec), 0);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &out), 0);
        for (size_t n = 0; n < flen; n++) {
                struct floe_wire_error err = {0};
                uint8_t *p = malloc(n + 1); /* exact-size copy: ASan sees overreads */

                memcpy(p, frame, n);
                assert_true(floe_wire_decode_into(dec, p, n, out, &err) < 0);
                assert_true(err.reason > FLOE_WIRE_OK && err.reason < FLOE_WIRE_REASON_MAX);
                assert_int_equal(out->nrows, 0);
                free(p);
        }
        for (size_t n = 0; n < rlen; n++) {
                struct floe_wire_error err = {0};
                uint8_t *p = malloc(n + 1);

                memcpy(p, raw, n);
                assert_true(floe_wire_decode_raw(dec, p, n, out, &err) < 0);
                assert_true(err.reason > FLOE_WIRE_OK && err.reason < FLOE_WIRE_REASON_MAX);
                free(p);
        }
        free(frame);
        free(raw);
        floe_batch_free(out);
        floe_batch_free(b);
        floe_wire_decoder_free(dec);
}

static void test_corrupted_every_byte(void **state)
{
        static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x20};
        struct floe_batch *b = make_events(NULL), *out;
        struct floe_wire_decoder *dec;
        uint8_t *frame, *raw;
        size_t flen, rlen;
        unsigned raw_rejected = 0;

        (void)state;
        encode_copy(b, false, &frame, &flen);
        encode_copy(b, true, &raw, &rlen);
        assert_int_equal(floe_wire_decoder_new(NULL, &dec), 0);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &out), 0);
        for (size_t i = 0; i < flen; i++) {
                for (size_t m = 0; m < sizeof(masks); m++) {
                        struct floe_wire_error err = {0};

                        frame[i] ^= masks[m];
                        /* the content checksum catches whatever zstd itself does not */
                        if (floe_wire_decode_into(dec, frame, flen, out, &err) == 0)
                                assert_same_batch(b, out);
                        else
                                assert_true(err.reason > FLOE_WIRE_OK &&
                                            err.reason < FLOE_WIRE_REASON_MAX);
                        frame[i] ^= masks[m];
                }
        }
        for (size_t i = 0; i < rlen; i++) {
                for (size_t m = 0; m < sizeof(masks); m++) {
                        struct floe_wire_error err = {0};

                        raw[i] ^= masks[m];
                        if (floe_wire_decode_raw(dec, raw, rlen, out, &err) < 0) {
                                assert_true(err.reason > FLOE_WIRE_OK &&
                                            err.reason < FLOE_WIRE_REASON_MAX);
                                raw_rejected++;
                        }
                        raw[i] ^= masks[m];
                }
        }
        /* both paths ran: changes that break a rule, and changed values */
        assert_true(raw_rejected > 0 && raw_rejected < rlen * sizeof(masks));
        free(frame);
        free(raw);
        floe_batch_free(out);
        floe_batch_free(b);
        floe_wire_decoder_free(dec);
}

/* ---- decoder limits ---- */

static int decode_with(const struct floe_batch *b, const struct floe_wire_limits *lim,
                       enum floe_wire_reason *ret_reason)
{
        struct floe_wire_decoder *dec;
        struct floe_batch *out = NULL;
        struct floe_wire_error err = {0};
        uint8_t *frame;
        size_t len;
        int r;

        encode_copy(b, false, &frame, &len);
        assert_int_equal(floe_wire_decoder_new(lim, &dec), 0);
        r = floe_wire_decode(dec, frame, len, &out, &err);
        *ret_reason = err.reason;
        floe_batch_free(out);
        floe_wire_decoder_free(dec);
        free(frame);
        return r;
}

static void test_decoder_limits(void **state)
{
        struct floe_batch *b = make_events(NULL);
        struct floe_wire_limits lim;
        enum floe_wire_reason reason;
        struct {
                size_t off;
                uint64_t value;
                enum floe_wire_reason reason;
        } cases[] = {
                {offsetof(struct floe_wire_limits, max_compressed), 100, FLOE_WIRE_TOO_LARGE},
                {offsetof(struct floe_wire_limits, max_decompressed), 300,
                 FLOE_WIRE_INFLATED_TOO_LARGE},
                {offsetof(struct floe_wire_limits, max_rows), 59, FLOE_WIRE_TOO_MANY_ROWS},
                {offsetof(struct floe_wire_limits, max_dict), 2, FLOE_WIRE_DICT_TOO_LARGE},
                {offsetof(struct floe_wire_limits, max_series), 8, FLOE_WIRE_TOO_MANY_SERIES},
                {offsetof(struct floe_wire_limits, max_name_len), 7, FLOE_WIRE_STRING_TOO_LONG},
                {offsetof(struct floe_wire_limits, max_text_len), 6, FLOE_WIRE_STRING_TOO_LONG},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                floe_wire_limits_default(&lim);
                if (cases[i].off < offsetof(struct floe_wire_limits, max_rows))
                        *(size_t *)((char *)&lim + cases[i].off) = cases[i].value;
                else
                        *(uint32_t *)((char *)&lim + cases[i].off) = (uint32_t)cases[i].value;
                assert_int_equal(decode_with(b, &lim, &reason), -EMSGSIZE);
                assert_int_equal(reason, cases[i].reason);
                /* one more than needed passes */
                floe_wire_limits_default(&lim);
        }
        /* exactly at the limits passes */
        floe_wire_limits_default(&lim);
        lim.max_rows = 60;
        lim.max_dict = 3;
        lim.max_series = 9;
        lim.max_name_len = 8;
        lim.max_text_len = 7; /* "clöséd" is 8 bytes: use the real need below */
        lim.max_text_len = 8;
        assert_int_equal(decode_with(b, &lim, &reason), 0);
        floe_batch_free(b);
}

/* ---- hand-built CBOR, independent of the encoder ---- */

struct cb {
        uint8_t p[4096];
        size_t n;
};

static void cb_raw(struct cb *c, size_t w)
{
        assert_true(w > 0);
        c->n += w;
}
static void cb_map(struct cb *c, size_t n)
{
        cb_raw(c, cbor_encode_map_start(n, c->p + c->n, sizeof(c->p) - c->n));
}
static void cb_arr(struct cb *c, size_t n)
{
        cb_raw(c, cbor_encode_array_start(n, c->p + c->n, sizeof(c->p) - c->n));
}
static void cb_uint(struct cb *c, uint64_t v)
{
        cb_raw(c, cbor_encode_uint(v, c->p + c->n, sizeof(c->p) - c->n));
}
static void cb_str(struct cb *c, const char *s)
{
        cb_raw(c, cbor_encode_string_start(strlen(s), c->p + c->n, sizeof(c->p) - c->n));
        memcpy(c->p + c->n, s, strlen(s));
        c->n += strlen(s);
}
static void cb_bytes(struct cb *c, const void *p, size_t n)
{
        cb_raw(c, cbor_encode_bytestring_start(n, c->p + c->n, sizeof(c->p) - c->n));
        memcpy(c->p + c->n, p, n);
        c->n += n;
}

/* Which field of the hand-built batch to spoil. */
enum spoil {
        OK,
        V2,
        V_NOT_FIRST,
        BAD_ID,
        BAD_KIND,
        DUP_KEY,
        UNKNOWN_KEY,
        EXTENSION_KEY,
        MISSING_T,
        AGG_KEY_IN_EVENTS,
        DUP_SENSOR,
        EMPTY_SENSOR,
        SERIES_INDEX,
        DUP_SERIES,
        SERIES_NEGATIVE,
        ROW_INDEX,
        S_SHORT,
        S_LONG,
        VARINT_OVERLONG,
        SCALE_16,
        SCALE_BYTES_SHORT,
        MANTISSA_BIG,
        F64_NAN,
        F64_UNTAGGED,
        F64_PARTIAL,
        NULL_PADDING,
        DEC_LEFTOVER,
        INDEFINITE,
        TRAILING_CBOR,
        TEXT_INDEX,
        ROWS_HUGE,
        EPOCH_NEGATIVE,
        NOT_MAP,
};

/* 3 rows, 2 series: (s0,m0) decimal scale 1, (s1,m0) float64; row 2 null. */
static void build(struct cb *c, enum spoil sp)
{
        static const uint8_t s_col[] = {0x00, 0x02, 0x01}; /* series 0, 1, 0 */
        static const uint8_t t_col[] = {0x80, 0xe0, 0xd4, 0x97, 0xba, 0x83, 0xa2, 0x06, 0x02, 0x02};
        uint8_t f64[8], null = 0x04;
        double pi = sp == F64_NAN ? NAN : 3.25;
        uint8_t scale[2] = {1, 255};

        memcpy(f64, &pi, 8);
        if (sp == NOT_MAP) {
                cb_arr(c, 1);
                cb_uint(c, 1);
                return;
        }
        cb_map(c, 14 +
                          (sp == DUP_KEY || sp == UNKNOWN_KEY || sp == EXTENSION_KEY ||
                           sp == AGG_KEY_IN_EVENTS) -
                          (sp == MISSING_T));
        if (sp == V_NOT_FIRST) {
                cb_str(c, "kind");
                cb_str(c, "events");
                cb_str(c, "v");
                cb_uint(c, 1);
        } else {
                cb_str(c, "v");
                cb_uint(c, sp == V2 ? 2 : 1);
                cb_str(c, "kind");
                cb_str(c, sp == BAD_KIND ? "event" : "events");
        }
        cb_str(c, "id");
        cb_str(c, sp == BAD_ID ? "Acme.gw" : "acme.gw-1");
        if (sp == DUP_KEY) {
                cb_str(c, "id");
                cb_str(c, "acme.gw-1");
        }
        if (sp == UNKNOWN_KEY) {
                cb_str(c, "colour");
                cb_uint(c, 3);
        }
        if (sp == EXTENSION_KEY) {
                cb_str(c, "x-note");
                cb_map(c, 1);
                cb_str(c, "a");
                cb_arr(c, 2);
                cb_uint(c, 1);
                cb_str(c, "b");
        }
        if (sp == AGG_KEY_IN_EVENTS) {
                cb_str(c, "w");
                cb_bytes(c, "\x3c\x3c\x3c", 3);
        }
        cb_str(c, "epoch");
        if (sp == EPOCH_NEGATIVE)
                cb_raw(c, cbor_encode_negint(0, c->p + c->n, 9));
        else
                cb_uint(c, 7);
        cb_str(c, "seq");
        cb_uint(c, 1);
        cb_str(c, "created");
        cb_uint(c, 1763676000000000ULL);
        cb_str(c, "rows");
        cb_uint(c, sp == ROWS_HUGE ? 1ULL << 40 : 3);
        cb_str(c, "sensors");
        cb_arr(c, 2);
        cb_str(c, sp == EMPTY_SENSOR ? "" : "s0");
        cb_str(c, sp == DUP_SENSOR ? "s0" : "s1");
        cb_str(c, "metrics");
        cb_arr(c, 1);
        cb_str(c, "m0");
        cb_str(c, "series");
        if (sp == SERIES_INDEX)
                cb_bytes(c, "\x00\x00\x04\x00", 4); /* (0,0) (2,0) */
        else if (sp == DUP_SERIES)
                cb_bytes(c, "\x00\x00\x00\x00", 4);
        else if (sp == SERIES_NEGATIVE)
                cb_bytes(c, "\x00\x00\x01\x00", 4); /* (0,0) (-1,0) */
        else
                cb_bytes(c, "\x00\x00\x02\x00", 4); /* (0,0) (1,0) */
        cb_str(c, "s");
        if (sp == ROW_INDEX)
                cb_bytes(c, "\x00\x04\x01", 3);
        else if (sp == S_SHORT)
                cb_bytes(c, s_col, 2);
        else if (sp == S_LONG)
                cb_bytes(c, "\x00\x02\x01\x00", 4);
        else if (sp == VARINT_OVERLONG)
                cb_bytes(c, "\x80\x00\x02\x01", 4);
        else if (sp == INDEFINITE)
                cb_raw(c, cbor_encode_indef_bytestring_start(c->p + c->n, 9));
        else
                cb_bytes(c, s_col, sizeof(s_col));
        if (sp != MISSING_T) {
                cb_str(c, "t");
                cb_bytes(c, t_col, sizeof(t_col));
        }
        cb_str(c, "val");
        cb_map(c, 4);
        cb_str(c, "scale");
        if (sp == SCALE_16)
                cb_uint(c, 16);
        else
                cb_bytes(c, scale, sp == SCALE_BYTES_SHORT ? 1 : 2);
        cb_str(c, "dec");
        if (sp == MANTISSA_BIG)
                cb_bytes(c, "\x80\x80\x80\x80\x80\x80\x80\x80\x02", 9);
        else if (sp == DEC_LEFTOVER)
                cb_bytes(c, "\xd7\x01\x00", 3);
        else
                cb_bytes(c, "\xd7\x01", 2); /* zigzag(-108) → -10.8 */
        cb_str(c, "f64");
        if (sp != F64_UNTAGGED)
                cb_raw(c, cbor_encode_tag(86, c->p + c->n, 9));
        cb_bytes(c, f64, sp == F64_PARTIAL ? 7 : 8);
        cb_str(c, "null");
        null |= sp == NULL_PADDING ? 0x80 : 0;
        cb_bytes(c, &null, 1);
        cb_str(c, "text");
        cb_map(c, 2);
        cb_str(c, "dict");
        cb_arr(c, 1);
        cb_str(c, "on");
        cb_str(c, "idx");
        cb_bytes(c, sp == TEXT_INDEX ? "\x00\x02\x00" : "\x00\x01\x00", 3);
        if (sp == TRAILING_CBOR)
                cb_uint(c, 0);
}

static void test_handbuilt_valid(void **state)
{
        struct floe_wire_decoder *dec;
        struct floe_batch *b;
        struct floe_wire_error err = {0};
        struct cb c = {0};

        (void)state;
        build(&c, OK);
        assert_int_equal(floe_wire_decoder_new(NULL, &dec), 0);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &b), 0);
        assert_int_equal(floe_wire_decode_raw(dec, c.p, c.n, b, &err), 0);
        assert_string_equal(b->identity, "acme.gw-1");
        assert_int_equal(b->nrows, 3);
        assert_true(b->ts[0] == 1763676000000000LL);
        assert_true(b->ts[1] == 1763676000000001LL && b->ts[2] == 1763676000000002LL);
        assert_int_equal(b->row_series[1], 1);
        assert_true(b->value[0] == -10.8);
        assert_true(b->value[1] == 3.25);
        assert_int_equal(b->value_null[2], 1);
        assert_int_equal(b->text[0], FLOE_NO_TEXT);
        assert_int_equal(b->text[1], 0);
        /* an x- extension key is skipped */
        c.n = 0;
        build(&c, EXTENSION_KEY);
        assert_int_equal(floe_wire_decode_raw(dec, c.p, c.n, b, &err), 0);
        assert_int_equal(b->nrows, 3);
        floe_batch_free(b);
        floe_wire_decoder_free(dec);
}

static void test_handbuilt_rejections(void **state)
{
        static const struct {
                enum spoil sp;
                enum floe_wire_reason reason;
                int err;
        } cases[] = {
                {V2, FLOE_WIRE_UNSUPPORTED_VERSION, -EPROTONOSUPPORT},
                {V_NOT_FIRST, FLOE_WIRE_MISSING_KEY, -EBADMSG},
                {BAD_ID, FLOE_WIRE_BAD_IDENTITY, -EBADMSG},
                {BAD_KIND, FLOE_WIRE_BAD_KIND, -EBADMSG},
                {DUP_KEY, FLOE_WIRE_DUPLICATE_KEY, -EBADMSG},
                {UNKNOWN_KEY, FLOE_WIRE_UNKNOWN_KEY, -EBADMSG},
                {MISSING_T, FLOE_WIRE_MISSING_KEY, -EBADMSG},
                {AGG_KEY_IN_EVENTS, FLOE_WIRE_UNKNOWN_KEY, -EBADMSG},
                {DUP_SENSOR, FLOE_WIRE_DUPLICATE_ENTRY, -EBADMSG},
                {EMPTY_SENSOR, FLOE_WIRE_BAD_STRING, -EBADMSG},
                {SERIES_INDEX, FLOE_WIRE_BAD_INDEX, -EBADMSG},
                {DUP_SERIES, FLOE_WIRE_DUPLICATE_ENTRY, -EBADMSG},
                {SERIES_NEGATIVE, FLOE_WIRE_BAD_INDEX, -EBADMSG},
                {ROW_INDEX, FLOE_WIRE_BAD_INDEX, -EBADMSG},
                {S_SHORT, FLOE_WIRE_COLUMN_LENGTH, -EBADMSG},
                {S_LONG, FLOE_WIRE_COLUMN_LENGTH, -EBADMSG},
                {VARINT_OVERLONG, FLOE_WIRE_BAD_VARINT, -EBADMSG},
                {SCALE_16, FLOE_WIRE_BAD_VALUE, -EBADMSG},
                {SCALE_BYTES_SHORT, FLOE_WIRE_COLUMN_LENGTH, -EBADMSG},
                {MANTISSA_BIG, FLOE_WIRE_BAD_VALUE, -EBADMSG},
                {F64_NAN, FLOE_WIRE_BAD_VALUE, -EBADMSG},
                {F64_UNTAGGED, FLOE_WIRE_BAD_TYPE, -EBADMSG},
                {F64_PARTIAL, FLOE_WIRE_COLUMN_LENGTH, -EBADMSG},
                {NULL_PADDING, FLOE_WIRE_BAD_VALUE, -EBADMSG},
                {DEC_LEFTOVER, FLOE_WIRE_COLUMN_LENGTH, -EBADMSG},
                {INDEFINITE, FLOE_WIRE_CBOR_INDEFINITE, -EBADMSG},
                {TRAILING_CBOR, FLOE_WIRE_CBOR_TRAILING, -EBADMSG},
                {TEXT_INDEX, FLOE_WIRE_BAD_INDEX, -EBADMSG},
                {ROWS_HUGE, FLOE_WIRE_TOO_MANY_ROWS, -EMSGSIZE},
                {EPOCH_NEGATIVE, FLOE_WIRE_BAD_TYPE, -EBADMSG},
                {NOT_MAP, FLOE_WIRE_NOT_A_MAP, -EBADMSG},
        };
        struct floe_wire_decoder *dec;
        struct floe_batch *b;

        (void)state;
        assert_int_equal(floe_wire_decoder_new(NULL, &dec), 0);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &b), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct floe_wire_error err = {0};
                struct cb c = {0};
                char msg[256];
                int r;

                build(&c, cases[i].sp);
                r = floe_wire_decode_raw(dec, c.p, c.n, b, &err);
                floe_wire_error_format(&err, msg, sizeof(msg));
                if (r != cases[i].err || err.reason != cases[i].reason)
                        fail_msg("case %zu: got %d \"%s\", want %d %s", i, r, msg, cases[i].err,
                                 floe_wire_reason_name(cases[i].reason));
                assert_true(err.detail[0] != '\0');
        }
        floe_batch_free(b);
        floe_wire_decoder_free(dec);
}

/* ---- the zstd layer ---- */

static void test_frame_rejections(void **state)
{
        struct floe_wire_decoder *dec;
        struct floe_batch *b;
        struct floe_wire_error err;
        struct cb c = {0};
        uint8_t frame[8192];
        size_t n;
        ZSTD_CCtx *cctx = ZSTD_createCCtx();

        (void)state;
        build(&c, OK);
        assert_int_equal(floe_wire_decoder_new(NULL, &dec), 0);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &b), 0);

        /* a plain single-shot frame without checksum */
        n = ZSTD_compress(frame, sizeof(frame), c.p, c.n, 3);
        assert_true(floe_wire_decode_into(dec, frame, n, b, &err) < 0);
        assert_int_equal(err.reason, FLOE_WIRE_NO_CHECKSUM);

        /* checksum on: accepted, then spoiled variants */
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
        n = ZSTD_compress2(cctx, frame, sizeof(frame), c.p, c.n);
        assert_int_equal(floe_wire_decode_into(dec, frame, n, b, &err), 0);
        assert_int_equal(b->nrows, 3);

        memcpy(frame + n, frame, n); /* two frames */
        assert_true(floe_wire_decode_into(dec, frame, 2 * n, b, &err) < 0);
        assert_int_equal(err.reason, FLOE_WIRE_TRAILING_DATA);

        frame[n - 1] ^= 0x55; /* checksum */
        assert_true(floe_wire_decode_into(dec, frame, n, b, &err) < 0);
        assert_int_equal(err.reason, FLOE_WIRE_ZSTD_CORRUPT);

        assert_true(floe_wire_decode_into(dec, (const uint8_t *)"{\"json\":1}", 10, b, &err) < 0);
        assert_int_equal(err.reason, FLOE_WIRE_NOT_ZSTD);

        /* streaming without a pledged size: no content size in the header */
        {
                ZSTD_outBuffer out = {frame, sizeof(frame), 0};
                ZSTD_inBuffer in = {c.p, c.n, 0};

                ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
                ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
                ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_continue);
                while (ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end) != 0)
                        ;
                assert_true(floe_wire_decode_into(dec, frame, out.pos, b, &err) < 0);
                assert_int_equal(err.reason, FLOE_WIRE_NO_CONTENT_SIZE);
        }
        ZSTD_freeCCtx(cctx);
        floe_batch_free(b);
        floe_wire_decoder_free(dec);
}

/* A frame whose header claims a huge content size is refused before any
 * allocation of that size. */
static void test_content_size_checked_first(void **state)
{
        struct floe_wire_decoder *dec;
        struct floe_batch *b;
        struct floe_wire_error err;
        /* magic, FHD: FCS 8 bytes + single segment + checksum, size 2^40 */
        uint8_t frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0xe4, 0, 0, 0, 0, 0x01, 0, 0, 0, 1, 0, 0, 0};

        (void)state;
        assert_int_equal(floe_wire_decoder_new(NULL, &dec), 0);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &b), 0);
        floe_alloc_fail_at(1); /* any allocation would fail the test */
        assert_int_equal(floe_wire_decode_into(dec, frame, sizeof(frame), b, &err), -EMSGSIZE);
        assert_int_equal(err.reason, FLOE_WIRE_INFLATED_TOO_LARGE);
        assert_false(floe_alloc_failed());
        floe_alloc_fail_at(0);
        floe_batch_free(b);
        floe_wire_decoder_free(dec);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip_events),
                cmocka_unit_test(test_roundtrip_aggregates),
                cmocka_unit_test(test_roundtrip_empty),
                cmocka_unit_test(test_decoder_reuse),
                cmocka_unit_test(test_decimal_encoding_is_smaller),
                cmocka_unit_test(test_decimals_hints),
                cmocka_unit_test(test_builder_limits),
                cmocka_unit_test(test_fixed_batch_does_not_allocate),
                cmocka_unit_test(test_alloc_failure_every_allocation),
                cmocka_unit_test(test_truncated_every_byte),
                cmocka_unit_test(test_corrupted_every_byte),
                cmocka_unit_test(test_decoder_limits),
                cmocka_unit_test(test_handbuilt_valid),
                cmocka_unit_test(test_handbuilt_rejections),
                cmocka_unit_test(test_frame_rejections),
                cmocka_unit_test(test_content_size_checked_first),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
