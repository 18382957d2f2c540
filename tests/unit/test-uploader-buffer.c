/* SPDX-License-Identifier: Apache-2.0 */
/* Buffered batches: per tenant, flush order, merging generations, the index of all of them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buffer.h"
#include "floe-alloc.h"

static struct upl_item *item(const char *id, uint64_t epoch, uint64_t seq, int64_t ts,
                             uint64_t mono)
{
        struct upl_item *it = NULL;

        assert_int_equal(upl_item_new(id, epoch, seq, FLOE_KIND_EVENTS, "abcdef", 6, &it), 0);
        it->ts_min = ts;
        it->received_mono = mono;
        it->received_us = (int64_t)mono;
        it->rows = 3;
        return it;
}

static void test_order_and_merge(void **state)
{
        struct upl_buffer a = {0}, b = {0};
        struct upl_item **order = NULL;
        static const char *const want[] = {"acme.gw-2/1/9", "acme.gw-1/1/2", "acme.gw-1/1/1",
                                           "beta.x/4/1", "beta.x/5/1"};
        char got[64];

        (void)state;
        assert_int_equal(upl_buffer_add(&a, item("beta.x", 5, 1, 100, 50)), 0);
        assert_int_equal(upl_buffer_add(&a, item("acme.gw-1", 1, 1, 300, 40)), 0);
        assert_int_equal(upl_buffer_add(&b, item("acme.gw-1", 1, 2, 200, 30)), 0);
        assert_int_equal(upl_buffer_add(&b, item("acme.gw-2", 1, 9, 100, 70)), 0);
        assert_int_equal(upl_buffer_add(&b, item("beta.x", 4, 1, 100, 60)), 0);
        assert_int_equal(a.n_tenants, 2);
        assert_int_equal(a.first_mono, 40);
        assert_int_equal(upl_buffer_tenant_oldest(&b, "acme"), 30);
        assert_int_equal(upl_buffer_tenant_oldest(&b, "nobody"), 0);
        assert_int_equal(upl_buffer_merge(&a, &b), 0);
        assert_int_equal(b.n_items, 0);
        assert_int_equal(b.bytes, 0);
        assert_int_equal(a.n_items, 5);
        assert_int_equal(a.rows, 15);
        assert_int_equal(a.first_mono, 30);
        assert_int_equal(upl_buffer_tenant_oldest(&a, "acme"), 30);
        /* tenant by tenant; in a tenant by time, then identity, epoch, seq */
        assert_int_equal(upl_buffer_order(&a, &order), 0);
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                snprintf(got, sizeof(got), "%s/%llu/%llu", order[i]->identity,
                         (unsigned long long)order[i]->epoch, (unsigned long long)order[i]->seq);
                assert_string_equal(got, want[i]);
        }
        floe_free(order);
        upl_buffer_clear(&a);
        upl_buffer_clear(&b);
}

static void test_index(void **state)
{
        struct upl_index x;
        struct upl_item *its[5000];

        (void)state;
        assert_int_equal(upl_index_init(&x), 0);
        for (int i = 0; i < 5000; i++) {
                char id[32];

                snprintf(id, sizeof(id), "t%d.d%d", i % 7, i % 100);
                its[i] = item(id, (uint64_t)i % 3, (uint64_t)i, 0, 0);
                assert_null(upl_index_find(&x, id, (uint64_t)i % 3, (uint64_t)i));
                upl_index_add(&x, its[i]);
        }
        assert_int_equal(x.n, 5000);
        assert_ptr_equal(upl_index_find(&x, "t1.d1", 1, 1), its[1]);
        assert_null(upl_index_find(&x, "t1.d1", 2, 1)); /* another epoch */
        assert_null(upl_index_find(&x, "t1.d2", 1, 1)); /* another identity */
        for (int i = 0; i < 5000; i += 2)
                upl_index_remove(&x, its[i]);
        assert_int_equal(x.n, 2500);
        for (int i = 0; i < 5000; i++)
                assert_true((upl_index_find(&x, its[i]->identity, its[i]->epoch, its[i]->seq) !=
                             NULL) == (i % 2 == 1));
        for (int i = 0; i < 5000; i++)
                upl_item_free(its[i]);
        upl_index_clear(&x);
}

static void test_alloc_failures(void **state)
{
        (void)state;
        for (uint64_t n = 1; n < 20; n++) {
                struct upl_buffer a = {0};
                struct upl_item *it = NULL;
                int r;

                floe_alloc_fail_at(n);
                r = upl_item_new("acme.gw-1", 1, 1, FLOE_KIND_EVENTS, "x", 1, &it);
                if (r == 0) {
                        r = upl_buffer_add(&a, it);
                        if (r < 0)
                                upl_item_free(it);
                }
                floe_alloc_fail_at(0);
                assert_true(r == 0 || r == -ENOMEM);
                upl_buffer_clear(&a);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_order_and_merge),
                cmocka_unit_test(test_index),
                cmocka_unit_test(test_alloc_failures),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
