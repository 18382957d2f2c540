/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/floe-mqtt.c against peers that are not brokers: a TCP listener that never answers
 * (the connect completes in the kernel's backlog, no CONNACK ever comes) must not hold an
 * attempt forever: it is given up after connect_timeout_us and tried again.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <mosquitto.h>
#include <systemd/sd-event.h>

#include "floe-mqtt.h"

struct seen {
        unsigned failures;
        int last_rc;
};

static void on_connect_failed(void *ud, int rc)
{
        struct seen *s = ud;

        s->failures++;
        s->last_rc = rc;
}

/* A listening socket on a loopback port nobody accepts on: its port. */
static int silent_listener(int *ret_fd)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 16), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        *ret_fd = fd;
        return ntohs(a.sin_port);
}

static uint64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void test_connect_without_connack_times_out(void **state)
{
        struct seen seen = {0};
        struct floe_mqtt_callbacks cb = {.on_connect_failed = on_connect_failed};
        struct floe_mqtt_stats st;
        struct floe_mqtt *m = NULL;
        sd_event *e = NULL;
        int fd, port = silent_listener(&fd);
        struct floe_mqtt_opts o = {
                .name = "test",
                .host = "127.0.0.1",
                .port = port,
                .client_id = "test-timeout",
                .keepalive_s = 60,
                .backoff_min_us = 1000,
                .backoff_max_us = 2000,
                .connect_timeout_us = 300000,
        };

        (void)state;
        assert_true(sd_event_new(&e) >= 0);
        assert_int_equal(floe_mqtt_new(e, &o, &cb, &seen, &m), 0);
        assert_int_equal(floe_mqtt_start(m), 0);
        /* the misc timer looks once a second: two timeouts need a little over two seconds,
         * more on a loaded machine */
        for (uint64_t end = mono_us() + 10000000; seen.failures < 2 && mono_us() < end;)
                assert_true(sd_event_run(e, 100000) >= 0);
        floe_mqtt_stats(m, &st);
        assert_true(seen.failures >= 2);
        assert_int_equal(seen.last_rc, MOSQ_ERR_TIMEOUT);
        assert_int_equal(st.connects, 0);
        assert_true(st.connect_failures >= 2);
        floe_mqtt_stop(m);
        floe_mqtt_free(m);
        sd_event_unref(e);
        close(fd);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_connect_without_connack_times_out),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
