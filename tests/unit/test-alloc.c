/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "floe-alloc.h"

static void test_fail_nth(void **state)
{
        void *p[5];

        (void)state;
        floe_alloc_fail_at(3);
        p[0] = floe_malloc(8);
        p[1] = floe_calloc(2, 8);
        errno = 0;
        p[2] = floe_strdup("x");
        assert_null(p[2]);
        assert_int_equal(errno, ENOMEM);
        assert_true(floe_alloc_failed());
        p[3] = floe_realloc(NULL, 4); /* only the 3rd fails */
        p[4] = floe_malloc(1);
        assert_non_null(p[0]);
        assert_non_null(p[1]);
        assert_non_null(p[3]);
        assert_non_null(p[4]);
        assert_int_equal(floe_alloc_count(), 5);
        for (int i = 0; i < 5; i++)
                floe_free(p[i]);
        floe_alloc_fail_at(0);
        assert_false(floe_alloc_failed());
}

static void test_reallocarray_overflow(void **state)
{
        (void)state;
        floe_alloc_fail_at(0);
        assert_null(floe_reallocarray(NULL, SIZE_MAX / 2, 4));
        assert_int_equal(errno, ENOMEM);
}

static void test_cleanup_and_take(void **state)
{
        char *kept;

        (void)state;
        {
                _cleanup_free_ char *a = floe_strndup("abcdef", 3);
                _cleanup_free_ char *b = floe_strdup("kept");

                assert_string_equal(a, "abc");
                kept = TAKE_PTR(b);
                assert_null(b);
        }
        assert_string_equal(kept, "kept"); /* valgrind/ASan see a use-after-free otherwise */
        floe_free(kept);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fail_nth),
                cmocka_unit_test(test_reallocarray_overflow),
                cmocka_unit_test(test_cleanup_and_take),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
