/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "floe-ack.h"

static void test_roundtrip(void **state)
{
        static const struct floe_ack acks[] = {
                {.epoch = 0, .seq = 0, .status = FLOE_ACK_OK},
                {.epoch = UINT64_MAX, .seq = 1ULL << 40, .status = FLOE_ACK_DUPLICATE},
                {.epoch = 7, .seq = 9, .status = FLOE_ACK_REJECTED, .reason = "bad-identity"},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(acks) / sizeof(acks[0]); i++) {
                uint8_t buf[FLOE_ACK_MAX];
                struct floe_ack got;
                size_t len;

                assert_int_equal(floe_ack_encode(&acks[i], buf, sizeof(buf), &len), 0);
                assert_int_equal(floe_ack_decode(buf, len, &got), 0);
                assert_true(got.epoch == acks[i].epoch && got.seq == acks[i].seq);
                assert_int_equal(got.status, acks[i].status);
                assert_string_equal(got.reason, acks[i].reason);
                /* every truncation is refused */
                for (size_t n = 0; n < len; n++)
                        assert_int_equal(floe_ack_decode(buf, n, &got), -EBADMSG);
        }
}

/* The bytes of the spec's example, built by hand: {"v":1,"epoch":7,"seq":1,"status":"ok"} */
static void test_spec_bytes(void **state)
{
        static const uint8_t ok[] = {0xa4, 0x61, 'v',  0x01, 0x65, 'e',  'p',  'o',  'c',
                                     'h',  0x07, 0x63, 's',  'e',  'q',  0x01, 0x66, 's',
                                     't',  'a',  't',  'u',  's',  0x62, 'o',  'k'};
        uint8_t buf[64];
        struct floe_ack a = {.epoch = 7, .seq = 1, .status = FLOE_ACK_OK}, got;
        size_t len;

        (void)state;
        assert_int_equal(floe_ack_encode(&a, buf, sizeof(buf), &len), 0);
        assert_int_equal(len, sizeof(ok));
        assert_memory_equal(buf, ok, len);
        assert_int_equal(floe_ack_decode(ok, sizeof(ok), &got), 0);
        assert_true(got.seq == 1);
}

static void test_rejections(void **state)
{
        /* v2 */
        static const uint8_t v2[] = {0xa4, 0x61, 'v',  0x02, 0x65, 'e',  'p',  'o',  'c',
                                     'h',  0x07, 0x63, 's',  'e',  'q',  0x01, 0x66, 's',
                                     't',  'a',  't',  'u',  's',  0x62, 'o',  'k'};
        /* status "maybe" */
        static const uint8_t maybe[] = {0xa4, 0x61, 'v', 0x01, 0x65, 'e',  'p',  'o', 'c', 'h',
                                        0x07, 0x63, 's', 'e',  'q',  0x01, 0x66, 's', 't', 'a',
                                        't',  'u',  's', 0x65, 'm',  'a',  'y',  'b', 'e'};
        /* "rejected" without a reason */
        static const uint8_t noreason[] = {0xa4, 0x61, 'v',  0x01, 0x65, 'e', 'p', 'o',
                                           'c',  'h',  0x07, 0x63, 's',  'e', 'q', 0x01,
                                           0x66, 's',  't',  'a',  't',  'u', 's', 0x68,
                                           'r',  'e',  'j',  'e',  'c',  't', 'e', 'd'};
        uint8_t big[FLOE_ACK_MAX + 1] = {0};
        struct floe_ack got, bad = {.status = FLOE_ACK_REJECTED, .reason = "\xff"};
        size_t len;

        (void)state;
        assert_int_equal(floe_ack_decode(v2, sizeof(v2), &got), -EPROTONOSUPPORT);
        assert_int_equal(floe_ack_decode(maybe, sizeof(maybe), &got), -EBADMSG);
        assert_int_equal(floe_ack_decode(noreason, sizeof(noreason), &got), -EBADMSG);
        assert_int_equal(floe_ack_decode(big, sizeof(big), &got), -EMSGSIZE);
        assert_int_equal(floe_ack_encode(&bad, big, sizeof(big), &len), -EINVAL);
        assert_int_equal(floe_ack_encode(&(struct floe_ack){0}, big, 10, &len), -ENOSPC);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_spec_bytes),
                cmocka_unit_test(test_rejections),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
