/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dead letters: (epoch, seq) read from batches that do not decode (upl_peek_seq, a parser of
 * hostile input), and the letters written to a file:// warehouse (names, the JSON record,
 * overwriting on a second rejection).
 */
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cmocka.h>

#include "deadletter.h"
#include "floe-alloc.h"
#include "floe-wire.h"
#include "store.h"

static size_t frame(const uint8_t *cbor, size_t len, uint8_t *out, size_t size)
{
        ZSTD_CCtx *c = ZSTD_createCCtx();
        size_t n;

        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
        n = ZSTD_compress2(c, out, size, cbor, len);
        ZSTD_freeCCtx(c);
        assert_false(ZSTD_isError(n));
        return n;
}

static void test_peek_cbor(void **state)
{
        /* {"v": 1, "x": [1, {"a": h'00'}, 6(2)], "seq": 7, "epoch": 2^40} */
        static const uint8_t good[] = {0xa4, 0x61, 'v',  0x01, 0x61, 'x',  0x83, 0x01, 0xa1,
                                       0x61, 'a',  0x41, 0x00, 0xc6, 0x02, 0x63, 's',  'e',
                                       'q',  0x07, 0x65, 'e',  'p',  'o',  'c',  'h',  0x1b,
                                       0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00};
        const struct {
                const uint8_t *p;
                size_t len;
        } bad[] = {
                {(const uint8_t[]){0x80}, 1},                            /* not a map */
                {(const uint8_t[]){0xbf, 0xff}, 2},                      /* indefinite */
                {(const uint8_t[]){0xa1, 0x63, 's', 'e', 'q', 0x07}, 6}, /* no epoch */
                {(const uint8_t[]){0xa2, 0x63, 's', 'e', 'q', 0x20, 0x65, 'e', 'p', 'o', 'c', 'h',
                                   0x01},
                 13},                                     /* seq negative */
                {(const uint8_t[]){0xa1, 0x01, 0x02}, 3}, /* key not text */
                {(const uint8_t[]){0xa1, 0x61, 'x', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff},
                 12}, /* array of 2^64-1 */
                {(const uint8_t[]){0xa1, 0x61, 'x', 0x5a, 0xff, 0xff, 0xff, 0xff}, 8}, /* bstr */
                {(const uint8_t[]){0xa1, 0x61, 'x', 0xc6}, 4}, /* tag without content */
                {(const uint8_t[]){0xa1, 0x61, 'x', 0x1c}, 4}, /* reserved */
                {(const uint8_t[]){0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9},
                {(const uint8_t[]){0xa1, 0x65}, 2}, /* key cut short */
        };
        uint64_t epoch = 0, seq = 0;

        (void)state;
        assert_int_equal(upl_peek_seq_cbor(good, sizeof(good), &epoch, &seq), 0);
        assert_int_equal(epoch, UINT64_C(1) << 40);
        assert_int_equal(seq, 7);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (upl_peek_seq_cbor(bad[i].p, bad[i].len, &epoch, &seq) != -EBADMSG)
                        fail_msg("case %zu read", i);
        /* every prefix of the good one fails cleanly */
        for (size_t n = 0; n < sizeof(good); n++)
                assert_int_equal(upl_peek_seq_cbor(good, n, &epoch, &seq), -EBADMSG);
}

static void test_peek_frames(void **state)
{
        static const uint8_t cbor[] = {0xa3, 0x61, 'v', 0x02, 0x63, 's', 'e', 'q', 0x18,
                                       0x2a, 0x65, 'e', 'p',  'o',  'c', 'h', 0x03};
        struct floe_wire_decoder *d = NULL;
        struct floe_wire_error err;
        struct floe_batch *b = NULL;
        uint8_t z[256];
        uint64_t epoch = 0, seq = 0;
        size_t n;

        (void)state;
        n = frame(cbor, sizeof(cbor), z, sizeof(z));
        /* the decoder refuses it (version 2), the peek reads it */
        assert_int_equal(floe_wire_decoder_new(NULL, &d), 0);
        assert_true(floe_wire_decode(d, z, n, &b, &err) < 0);
        assert_int_equal(err.reason, FLOE_WIRE_UNSUPPORTED_VERSION);
        assert_int_equal(upl_peek_seq(z, n, 1 << 20, &epoch, &seq), 0);
        assert_int_equal(epoch, 3);
        assert_int_equal(seq, 42);
        /* content size over the limit, not zstd, cut short */
        assert_int_equal(upl_peek_seq(z, n, sizeof(cbor) - 1, &epoch, &seq), -EBADMSG);
        assert_int_equal(upl_peek_seq("hello", 5, 1 << 20, &epoch, &seq), -EBADMSG);
        assert_int_equal(upl_peek_seq(z, n - 3, 1 << 20, &epoch, &seq), -EBADMSG);
        floe_wire_decoder_free(d);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf = calloc(1, 65536);

        assert_non_null(f);
        assert_true(fread(buf, 1, 65535, f) > 0);
        fclose(f);
        return buf;
}

static void test_write(void **state)
{
        char dir[64], url[128], key[1100], path[1300];
        struct lake_store *s = NULL;
        struct upl_dead_letter d = {
                .topic = "floe/v1/acme.gw-1/batch",
                .identity = "acme.gw-1",
                .have_seq = true,
                .epoch = UINT64_MAX,
                .seq = 12,
                .reason = "identity-mismatch",
                .detail = "the batch names acme.gw-2 \"quoted\"",
                .uploader = "up-1",
                .received_us = 1763676000123456,
                .data = "payload",
                .len = 7,
        };
        json_t *j;
        char *text;

        (void)state;
        snprintf(dir, sizeof(dir), "/tmp/test-uploader-dl-XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(url, sizeof(url), "file://%s", dir);
        assert_int_equal(lake_store_open(url, NULL, &s), 0);
        assert_int_equal(upl_dead_letter_write(s, "_dead_letters", &d, key, sizeof(key)), 0);
        assert_string_equal(key, "_dead_letters/2025-11-20/acme.gw-1/18446744073709551615-12-"
                                 "identity-mismatch.batch");
        snprintf(path, sizeof(path), "%s/%s", dir, key);
        text = slurp(path);
        assert_string_equal(text, "payload");
        free(text);
        memcpy(path + strlen(path) - 6, ".json", 6);
        text = slurp(path);
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "reason")), "identity-mismatch");
        assert_string_equal(json_string_value(json_object_get(j, "epoch")), "18446744073709551615");
        assert_string_equal(json_string_value(json_object_get(j, "seq")), "12");
        assert_string_equal(json_string_value(json_object_get(j, "received_at")),
                            "2025-11-20T22:00:00.123456Z");
        assert_string_equal(json_string_value(json_object_get(j, "detail")),
                            "the batch names acme.gw-2 \"quoted\"");
        assert_int_equal(json_integer_value(json_object_get(j, "bytes")), 7);
        assert_string_equal(json_string_value(json_object_get(j, "sha256")),
                            "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5");
        json_decref(j);
        free(text);
        /* without (epoch, seq) and without an identity: named by the payload's hash */
        d.have_seq = false;
        d.identity = NULL;
        d.reason = "not-zstd";
        assert_int_equal(upl_dead_letter_write(s, "dl", &d, key, sizeof(key)), 0);
        assert_string_equal(key, "dl/2025-11-20/_invalid/x239f59ed55e737c7-not-zstd.batch");
        lake_store_close(s);
        nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_peek_cbor),
                cmocka_unit_test(test_peek_frames),
                cmocka_unit_test(test_write),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
