/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "floe-event.h"

#define MSEC 1000ULL

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* An AF_UNIX datagram socket standing in for systemd's notify socket. */
struct notify_sock {
        int fd;
        char dir[64];
        char path[96];
};

static struct notify_sock ns = {.fd = -1};

static void notify_open(void)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        snprintf(ns.dir, sizeof(ns.dir), "/tmp/floe-test-event-XXXXXX");
        assert_non_null(mkdtemp(ns.dir));
        snprintf(ns.path, sizeof(ns.path), "%s/notify", ns.dir);
        ns.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(ns.fd >= 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ns.path);
        assert_int_equal(bind(ns.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(setenv("NOTIFY_SOCKET", ns.path, 1), 0);
}

static void notify_close(void)
{
        unsetenv("NOTIFY_SOCKET");
        if (ns.fd < 0)
                return;
        close(ns.fd);
        ns.fd = -1;
        unlink(ns.path);
        rmdir(ns.dir);
}

/* Next queued datagram into buf; -EAGAIN when there is none. */
static int notify_recv(char *buf, size_t size)
{
        ssize_t n = recv(ns.fd, buf, size - 1, MSG_DONTWAIT);

        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return (int)n;
}

static void expect_datagram(const char *expect)
{
        char buf[1024];

        assert_true(notify_recv(buf, sizeof(buf)) >= 0);
        assert_string_equal(buf, expect);
}

static void expect_no_datagram(void)
{
        char buf[1024];

        assert_int_equal(notify_recv(buf, sizeof(buf)), -EAGAIN);
}

static void drain_signals(void)
{
        struct timespec zero = {0};
        sigset_t m;

        sigemptyset(&m);
        sigaddset(&m, SIGTERM);
        sigaddset(&m, SIGINT);
        sigaddset(&m, SIGHUP);
        while (sigtimedwait(&m, NULL, &zero) > 0)
                ;
}

/* The loop of the current test; teardown drops it even when an assertion failed. */
static sd_event *loop;
/* A source a test owns (ret != NULL); it pins the loop until dropped. */
static sd_event_source *owned;

static void loop_free(void)
{
        owned = sd_event_source_unref(owned);
        loop = sd_event_unref(loop);
}

static int teardown(void **state)
{
        (void)state;
        loop_free();
        notify_close();
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        floe_alloc_fail_at(0);
        drain_signals();
        return 0;
}

/* The loop for one test, with a safety timer so a broken test fails instead of hanging. */
static sd_event *loop_new(void)
{
        sd_event *e = NULL;

        assert_null(loop);
        assert_int_equal(floe_event_new(&e), 0);
        assert_non_null(e);
        loop = e;
        assert_int_equal(
                floe_event_add_timer(e, 5000 * MSEC, 1, NULL, (void *)(intptr_t)-ETIMEDOUT, NULL),
                0);
        return e;
}

/* Callbacks never assert: a longjmp out of sd_event_loop() would leak the loop. */
static int raise_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)usec;
        if (raise((int)(intptr_t)userdata) != 0)
                return sd_event_exit(sd_event_source_get_event(s), -errno);
        return 0;
}

static int kill_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)usec;
        if (kill(getpid(), (int)(intptr_t)userdata) < 0)
                return sd_event_exit(sd_event_source_get_event(s), -errno);
        return 0;
}

static void at(sd_event *e, uint64_t msec, sd_event_time_handler_t cb, int arg)
{
        assert_int_equal(floe_event_add_timer(e, msec * MSEC, 1, cb, (void *)(intptr_t)arg, NULL),
                         0);
}

struct counters {
        int terminate;
        int reload;
        int terminate_ret;
        int reload_ret;
};

static int on_terminate(void *userdata)
{
        struct counters *c = userdata;

        c->terminate++;
        return c->terminate_ret;
}

static int on_reload(void *userdata)
{
        struct counters *c = userdata;

        c->reload++;
        return c->reload_ret;
}

static bool signal_blocked(int sig)
{
        sigset_t cur;

        assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &cur), 0);
        return sigismember(&cur, sig) == 1;
}

static void test_sigterm_default_exits_0(void **state)
{
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_install_signals(e, NULL), 0);
        assert_true(signal_blocked(SIGTERM));
        assert_true(signal_blocked(SIGINT));
        assert_true(signal_blocked(SIGHUP));
        at(e, 10, raise_cb, SIGTERM);
        assert_int_equal(sd_event_loop(e), 0);
        loop_free();
}

static void test_sighup_calls_reload(void **state)
{
        struct counters c = {0};
        struct floe_event_handlers h = {on_terminate, on_reload, &c};
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_install_signals(e, &h), 0);
        at(e, 10, raise_cb, SIGHUP);
        at(e, 40, kill_cb, SIGHUP);
        at(e, 80, raise_cb, SIGTERM);
        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(c.reload, 2);
        assert_int_equal(c.terminate, 1);
        loop_free();
}

static void test_sigint_terminates(void **state)
{
        struct counters c = {0};
        struct floe_event_handlers h = {.on_terminate = on_terminate, .userdata = &c};
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_install_signals(e, &h), 0);
        at(e, 10, kill_cb, SIGINT);
        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(c.terminate, 1);
        assert_int_equal(c.reload, 0);
        loop_free();
}

static void test_sighup_ignored_without_handler(void **state)
{
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_install_signals(e, NULL), 0);
        at(e, 10, raise_cb, SIGHUP);
        /* Only this timer ends the loop, with 3; SIGHUP must neither kill nor exit. */
        assert_int_equal(floe_event_add_timer(e, 60 * MSEC, 1, NULL, (void *)(intptr_t)3, NULL), 0);
        assert_int_equal(sd_event_loop(e), 3);
        loop_free();
}

static void test_terminate_error_is_exit_code(void **state)
{
        struct counters c = {.terminate_ret = -EIO};
        struct floe_event_handlers h = {.on_terminate = on_terminate, .userdata = &c};
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_install_signals(e, &h), 0);
        at(e, 10, raise_cb, SIGTERM);
        assert_int_equal(sd_event_loop(e), -EIO);
        loop_free();
}

static void test_terminate_defer(void **state)
{
        struct counters c = {.terminate_ret = FLOE_EVENT_TERMINATE_DEFER};
        struct floe_event_handlers h = {.on_terminate = on_terminate, .userdata = &c};
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_install_signals(e, &h), 0);
        at(e, 10, raise_cb, SIGTERM);
        at(e, 30, raise_cb, SIGTERM);
        assert_int_equal(floe_event_add_timer(e, 80 * MSEC, 1, NULL, (void *)(intptr_t)7, NULL), 0);
        assert_int_equal(sd_event_loop(e), 7);
        assert_int_equal(c.terminate, 2);
        loop_free();
}

static void test_reload_error_is_exit_code(void **state)
{
        struct counters c = {.reload_ret = -EBADMSG};
        struct floe_event_handlers h = {.on_reload = on_reload, .userdata = &c};
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_install_signals(e, &h), 0);
        at(e, 10, raise_cb, SIGHUP);
        assert_int_equal(sd_event_loop(e), -EBADMSG);
        assert_int_equal(c.reload, 1);
        loop_free();
}

static void test_install_all_or_nothing(void **state)
{
        sigset_t m;
        sd_event *e;

        (void)state;
        /* Start unblocked (earlier tests blocked them; nothing is pending after teardown). */
        drain_signals();
        sigemptyset(&m);
        sigaddset(&m, SIGTERM);
        sigaddset(&m, SIGINT);
        sigaddset(&m, SIGHUP);
        assert_int_equal(sigprocmask(SIG_UNBLOCK, &m, NULL), 0);

        e = loop_new();
        for (uint64_t n = 1; n <= 3; n++) {
                floe_alloc_fail_at(n);
                assert_int_equal(floe_event_install_signals(e, NULL), -ENOMEM);
                assert_true(floe_alloc_failed());
                /* The mask is restored and no source was left behind... */
                assert_false(signal_blocked(SIGTERM));
                assert_false(signal_blocked(SIGHUP));
        }
        floe_alloc_fail_at(0);
        /* ...otherwise this would fail with -EBUSY. */
        assert_int_equal(floe_event_install_signals(e, NULL), 0);
        assert_true(signal_blocked(SIGTERM));
        /* One handler per signal. */
        assert_int_equal(floe_event_install_signals(e, NULL), -EBUSY);
        assert_true(signal_blocked(SIGTERM));
        at(e, 10, raise_cb, SIGTERM);
        assert_int_equal(sd_event_loop(e), 0);
        loop_free();

        assert_int_equal(floe_event_install_signals(NULL, NULL), -EINVAL);
}

struct ticks {
        int n;
        int stop_at;
        uint64_t when[16];
};

static int tick_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct ticks *t = userdata;

        if (t->n < (int)ELEMENTSOF(t->when))
                t->when[t->n] = usec;
        t->n++;
        if (t->n == t->stop_at)
                return sd_event_exit(sd_event_source_get_event(s), 0);
        return 0;
}

static void test_periodic_fires_n_times(void **state)
{
        struct ticks t = {.stop_at = 5};
        sd_event *e = loop_new();
        uint64_t start = now_usec();

        (void)state;
        assert_int_equal(floe_event_add_periodic(e, 10 * MSEC, 1, tick_cb, &t, NULL), 0);
        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(t.n, 5);
        assert_true(now_usec() - start >= 50 * MSEC);
        /* Fixed phase: scheduled times stay on the 10 ms grid, no drift from dispatch
         * latency (a tick late by a whole interval on a loaded machine is skipped). */
        for (int i = 1; i < 5; i++) {
                assert_true(t.when[i] - t.when[i - 1] >= 10 * MSEC);
                assert_int_equal((t.when[i] - t.when[i - 1]) % (10 * MSEC), 0);
        }
        loop_free();
}

static int stop_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct ticks *t = userdata;

        (void)usec;
        if (++t->n == t->stop_at)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

static void test_periodic_stops_when_disabled(void **state)
{
        struct ticks t = {.stop_at = 3};
        sd_event *e = loop_new();
        int enabled = -1;

        (void)state;
        assert_int_equal(floe_event_add_periodic(e, 5 * MSEC, 1, stop_cb, &t, &owned), 0);
        assert_non_null(owned);
        assert_int_equal(sd_event_source_get_floating(owned), 0); /* the caller owns it */
        assert_int_equal(floe_event_add_timer(e, 100 * MSEC, 1, NULL, (void *)(intptr_t)0, NULL),
                         0);
        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(t.n, 3);
        assert_int_equal(sd_event_source_get_enabled(owned, &enabled), 0);
        assert_int_equal(enabled, SD_EVENT_OFF);
        loop_free();
}

static int stall_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct ticks *t = userdata;

        if (t->n == 0)
                usleep(35 * MSEC); /* a stalled loop: ticks at +10, +20, +30 ms are missed */
        return tick_cb(s, usec, userdata);
}

static void test_periodic_skips_missed_ticks(void **state)
{
        struct ticks t = {.stop_at = 4};
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_add_periodic(e, 10 * MSEC, 1, stall_cb, &t, NULL), 0);
        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(t.n, 4);
        /* The tick armed before the stall fires (late) once; the ones missed during the
         * stall are skipped rather than fired in a burst, and the phase is kept. */
        assert_true(t.when[2] - t.when[0] >= 40 * MSEC);
        for (int i = 1; i < 4; i++) {
                assert_true(t.when[i] > t.when[i - 1]);
                assert_int_equal((t.when[i] - t.when[0]) % (10 * MSEC), 0);
        }
        loop_free();
}

static int fail_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct ticks *t = userdata;

        (void)s;
        (void)usec;
        t->n++;
        return -EIO;
}

static void test_periodic_error_disables(void **state)
{
        struct ticks t = {0};
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_add_periodic(e, 5 * MSEC, 1, fail_cb, &t, NULL), 0);
        assert_int_equal(floe_event_add_timer(e, 60 * MSEC, 1, NULL, (void *)(intptr_t)0, NULL), 0);
        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(t.n, 1);
        loop_free();
}

static void test_periodic_jitter(void **state)
{
        const uint64_t iv = 40 * MSEC, jitter = 5 * MSEC;
        struct ticks t = {.stop_at = 8};
        bool varied = false;
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_add_periodic_full(e, iv, jitter, 1, tick_cb, &t, NULL), 0);
        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(t.n, 8);
        /* Every tick lies in [phase + k * iv, phase + k * iv + jitter] for one phase,
         * so distances are whole intervals give or take the jitter. */
        for (int i = 1; i < 8; i++) {
                uint64_t d = t.when[i] - t.when[i - 1], off = d % iv;

                assert_true(d >= iv - jitter);
                assert_true(off <= jitter || off >= iv - jitter);
                if (off != 0)
                        varied = true;
        }
        assert_true(varied);
        loop_free();
}

static void test_periodic_invalid_and_oom(void **state)
{
        sd_event *e = loop_new();

        (void)state;
        assert_int_equal(floe_event_add_periodic(e, 0, 1, tick_cb, NULL, &owned), -EINVAL);
        assert_int_equal(floe_event_add_periodic(e, 10, 1, NULL, NULL, &owned), -EINVAL);
        assert_int_equal(floe_event_add_periodic(NULL, 10, 1, tick_cb, NULL, &owned), -EINVAL);
        floe_alloc_fail_at(1);
        assert_int_equal(floe_event_add_periodic(e, 10, 1, tick_cb, NULL, &owned), -ENOMEM);
        floe_alloc_fail_at(0);
        assert_null(owned); /* ret untouched on failure */
        loop_free();
}

static void test_oneshot_timer(void **state)
{
        sd_event *e = loop_new();
        uint64_t start = now_usec();

        (void)state;
        assert_int_equal(floe_event_add_timer(e, 20 * MSEC, 1, NULL, (void *)(intptr_t)42, NULL),
                         0);
        assert_int_equal(sd_event_loop(e), 42);
        assert_true(now_usec() - start >= 20 * MSEC);
        loop_free();
}

static void test_notify_noop_without_socket(void **state)
{
        (void)state;
        notify_open();
        unsetenv("NOTIFY_SOCKET");
        assert_int_equal(floe_notify_ready("x"), 0);
        assert_int_equal(floe_notify_status("queue %d", 1), 0);
        assert_int_equal(floe_notify_reloading(), 0);
        assert_int_equal(floe_notify_stopping(), 0);
        assert_int_equal(floe_notify_extend_timeout(1), 0);
        expect_no_datagram();
        setenv("NOTIFY_SOCKET", "", 1);
        assert_int_equal(floe_notify_ready(NULL), 0);
        expect_no_datagram();
}

static void test_notify_messages(void **state)
{
        char buf[256];
        uint64_t before, after, t;
        int n = -1;

        (void)state;
        notify_open();
        assert_int_equal(floe_notify_ready(NULL), 0);
        expect_datagram("READY=1");
        assert_int_equal(floe_notify_ready("Connected to mqtt.local:8883"), 0);
        expect_datagram("READY=1\nSTATUS=Connected to mqtt.local:8883");
        assert_int_equal(floe_notify_status("Queue %u batches, broker %s", 12u, "up"), 0);
        expect_datagram("STATUS=Queue 12 batches, broker up");
        assert_int_equal(floe_notify_stopping(), 0);
        expect_datagram("STOPPING=1");
        assert_int_equal(floe_notify_extend_timeout(30000000), 0);
        expect_datagram("EXTEND_TIMEOUT_USEC=30000000");

        before = now_usec();
        assert_int_equal(floe_notify_reloading(), 0);
        after = now_usec();
        assert_true(notify_recv(buf, sizeof(buf)) > 0);
        assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%" SCNu64 "%n", &t, &n), 1);
        assert_int_equal(n, (int)strlen(buf));
        assert_true(t >= before && t <= after);
        expect_no_datagram();
}

static void test_notify_status_sanitized(void **state)
{
        char expect[512], big[1000];

        (void)state;
        notify_open();
        /* A newline must not smuggle in another assignment. */
        assert_int_equal(floe_notify_status("ok\nREADY=1\tx"), 0);
        expect_datagram("STATUS=ok READY=1 x");
        assert_int_equal(floe_notify_ready("a\nMAINPID=1"), 0);
        expect_datagram("READY=1\nSTATUS=a MAINPID=1");

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(floe_notify_status("%s", big), 0);
        snprintf(expect, sizeof(expect), "STATUS=%.*s\xe2\x80\xa6", FLOE_NOTIFY_STATUS_MAX - 3,
                 big);
        expect_datagram(expect);

        /* Exactly the maximum passes untouched. */
        assert_int_equal(floe_notify_status("%.*s", FLOE_NOTIFY_STATUS_MAX, big), 0);
        snprintf(expect, sizeof(expect), "STATUS=%.*s", FLOE_NOTIFY_STATUS_MAX, big);
        expect_datagram(expect);
}

static void test_notify_errors(void **state)
{
        (void)state;
        setenv("NOTIFY_SOCKET", "/nonexistent-floe-dir/notify", 1);
        assert_int_equal(floe_notify_ready(NULL), -ENOENT);
        assert_int_equal(floe_notify_status("x"), -ENOENT);
        setenv("NOTIFY_SOCKET", "relative/path", 1);
        assert_true(floe_notify_stopping() < 0);
}

static void set_watchdog_env(uint64_t usec, pid_t pid)
{
        char b[32];

        snprintf(b, sizeof(b), "%" PRIu64, usec);
        assert_int_equal(setenv("WATCHDOG_USEC", b, 1), 0);
        snprintf(b, sizeof(b), "%ld", (long)pid);
        assert_int_equal(setenv("WATCHDOG_PID", b, 1), 0);
}

static void test_watchdog_pings_from_loop(void **state)
{
        char buf[64];
        bool active = false;
        int pings = 0, r;
        sd_event *e = loop_new();

        (void)state;
        notify_open();
        set_watchdog_env(200 * MSEC, getpid());
        assert_int_equal(floe_event_enable_watchdog(e, &active), 0);
        assert_true(active);
        /* The first ping goes out at once... */
        expect_datagram("WATCHDOG=1");
        expect_no_datagram();

        /* ...then the loop keeps pinging about every half interval. */
        assert_int_equal(floe_event_add_timer(e, 700 * MSEC, 1, NULL, (void *)(intptr_t)0, NULL),
                         0);
        assert_int_equal(sd_event_loop(e), 0);
        while ((r = notify_recv(buf, sizeof(buf))) >= 0) {
                assert_string_equal(buf, "WATCHDOG=1");
                pings++;
        }
        assert_int_equal(r, -EAGAIN);
        assert_true(pings >= 3);
        assert_true(pings <= 14); /* not more often than every quarter interval */
        loop_free();
}

static void test_watchdog_inactive(void **state)
{
        bool active = true;
        sd_event *e = loop_new();

        (void)state;
        notify_open();
        assert_int_equal(floe_event_enable_watchdog(e, &active), 0);
        assert_false(active);

        /* Meant for another process (e.g. the main PID of a forking service). */
        set_watchdog_env(200 * MSEC, getpid() + 1);
        active = true;
        assert_int_equal(floe_event_enable_watchdog(e, &active), 0);
        assert_false(active);
        expect_no_datagram();

        assert_int_equal(floe_event_add_timer(e, 250 * MSEC, 1, NULL, (void *)(intptr_t)0, NULL),
                         0);
        assert_int_equal(sd_event_loop(e), 0);
        expect_no_datagram();
        assert_int_equal(floe_event_enable_watchdog(NULL, &active), -EINVAL);
        loop_free();
}

static void test_default_loop(void **state)
{
        sd_event *a = NULL, *b = NULL;

        (void)state;
        assert_int_equal(floe_event_new(&a), 0);
        assert_int_equal(floe_event_new(&b), 0);
        assert_ptr_equal(a, b); /* the thread's default loop */
        sd_event_unref(b);
        sd_event_unref(a);
        assert_int_equal(floe_event_new(NULL), -EINVAL);
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_default_loop),
                T(test_sigterm_default_exits_0),
                T(test_sighup_calls_reload),
                T(test_sigint_terminates),
                T(test_sighup_ignored_without_handler),
                T(test_terminate_error_is_exit_code),
                T(test_terminate_defer),
                T(test_reload_error_is_exit_code),
                T(test_install_all_or_nothing),
                T(test_periodic_fires_n_times),
                T(test_periodic_stops_when_disabled),
                T(test_periodic_skips_missed_ticks),
                T(test_periodic_error_disables),
                T(test_periodic_jitter),
                T(test_periodic_invalid_and_oom),
                T(test_oneshot_timer),
                T(test_notify_noop_without_socket),
                T(test_notify_messages),
                T(test_notify_status_sanitized),
                T(test_notify_errors),
                T(test_watchdog_pings_from_loop),
                T(test_watchdog_inactive),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
