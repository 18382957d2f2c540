/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "floe-metrics.h"

static void test_text(void **state)
{
        struct floe_metrics *m;
        const char *text;
        size_t len;

        (void)state;
        assert_int_equal(floe_metrics_new(4096, &m), 0);
        floe_metrics_family(m, "floe_x_total", "counter", "Things.");
        floe_metrics_u64(m, "floe_x_total", (const char *const[]){"reason", "bad \"json\"\n", NULL},
                         18446744073709551615ULL);
        floe_metrics_double(m, "floe_y", NULL, 0.5);
        floe_metrics_double(m, "floe_y", (const char *const[]){"a", "1", "b", "2", NULL},
                            1.0 / 0.0);
        assert_int_equal(floe_metrics_text(m, &text, &len), 0);
        assert_string_equal(text, "# HELP floe_x_total Things.\n"
                                  "# TYPE floe_x_total counter\n"
                                  "floe_x_total{reason=\"bad \\\"json\\\"\\n\"} "
                                  "18446744073709551615\n"
                                  "floe_y 0.5\n"
                                  "floe_y{a=\"1\",b=\"2\"} +Inf\n");
        assert_int_equal(len, strlen(text));
        floe_metrics_free(m);
}

static void test_overflow_and_file(void **state)
{
        struct floe_metrics *m;
        const char *text;
        size_t len;
        char dir[] = "/tmp/floe-test-metrics-XXXXXX", path[64], buf[64];
        FILE *f;

        (void)state;
        assert_int_equal(floe_metrics_new(16, &m), 0);
        floe_metrics_u64(m, "a_very_long_metric_name", NULL, 1);
        assert_int_equal(floe_metrics_text(m, &text, &len), -ENOSPC);
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/agent.prom", dir);
        assert_int_equal(floe_metrics_write_file(m, path), -ENOSPC);
        assert_int_equal(access(path, F_OK), -1); /* nothing half-written */
        floe_metrics_reset(m);
        floe_metrics_u64(m, "b", NULL, 42);
        assert_int_equal(floe_metrics_write_file(m, path), 0);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(buf, sizeof(buf), f));
        fclose(f);
        assert_string_equal(buf, "b 42\n");
        unlink(path);
        rmdir(dir);
        floe_metrics_free(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_text),
                cmocka_unit_test(test_overflow_and_file),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
