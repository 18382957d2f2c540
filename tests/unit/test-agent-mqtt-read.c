/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's local broker connection reads through floe-mqtt's buffer (buffered_reads,
 * floe_mqtt_read(), agent/main.c): against a real mosquitto, a publisher in another process
 * sends messages of 4 bytes to 100 KiB (larger than the buffer, so packets straddle refills)
 * at QoS 0 and 1; every message must arrive whole and in order, with fewer read system
 * calls than libmosquitto makes alone. After a broker restart in the middle of a stream,
 * what arrives on the new connection is whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <mosquitto.h>
#include <systemd/sd-event.h>

#include "floe-mqtt.h"

/* As agent/main.c: libmosquitto's read() calls go through floe-mqtt's buffer. */
ssize_t read(int fd, void *buf, size_t n)
{
        return floe_mqtt_read(fd, buf, n);
}

#define BIG 100000 /* > the 64 KiB read buffer */

struct broker {
        char dir[64];
        char conf[96];
        int port;
        pid_t pid;
};

static uint64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int free_port(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

static bool port_open(int port)
{
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                .sin_port = htons((uint16_t)port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok;

        assert_true(fd >= 0);
        ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        return ok;
}

static void broker_start(struct broker *b)
{
        b->pid = fork();
        assert_true(b->pid >= 0);
        if (b->pid == 0) {
                const char *bin = getenv("MOSQUITTO"); /* as tests/system/conftest.py */
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
                        _exit(126);
                close_range(3, ~0U, 0);
                execl(bin ? bin : "/usr/sbin/mosquitto", "mosquitto", "-c", b->conf, (char *)NULL);
                _exit(127);
        }
        for (uint64_t end = mono_us() + 10000000; !port_open(b->port); usleep(20000))
                assert_true(mono_us() < end);
}

static void broker_stop(struct broker *b)
{
        int st;

        kill(b->pid, SIGKILL);
        assert_int_equal(waitpid(b->pid, &st, 0), b->pid);
        b->pid = 0;
}

static void broker_new(struct broker *b)
{
        FILE *f;

        snprintf(b->dir, sizeof(b->dir), "/tmp/floe-test-mqtt-read-XXXXXX");
        assert_non_null(mkdtemp(b->dir));
        snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir);
        b->port = free_port();
        f = fopen(b->conf, "we");
        assert_non_null(f);
        fprintf(f,
                "%slistener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "max_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n",
                geteuid() == 0 ? "user root\n" : "", b->port);
        fclose(f);
        broker_start(b);
}

static void broker_free(struct broker *b)
{
        if (b->pid > 0)
                broker_stop(b);
        unlink(b->conf);
        rmdir(b->dir);
}

/* Message i: its size and its bytes. */
static size_t msg_size(unsigned i)
{
        return i % 97 == 13 ? BIG + i % 1000 : i % 5 == 0 ? 4 : 20 + (i * 37) % 400;
}

static void msg_fill(unsigned i, uint8_t *p, size_t n)
{
        uint32_t x = i * 2654435761u + 1;

        for (size_t k = 0; k < n; k++) {
                x = x * 1103515245u + 12345u;
                p[k] = (uint8_t)(x >> 16);
        }
        memcpy(p, &i, 4); /* every message names itself */
}

static unsigned pub_acked; /* QoS 0: written; QoS 1: acknowledged */
static int pub_done_mid;
static bool pub_done;

static void on_pub_ack(struct mosquitto *p, void *ud, int mid)
{
        (void)p;
        (void)ud;
        pub_acked++;
        pub_done |= mid == pub_done_mid;
}

/* A publisher process: messages from..to-1 on t/a, t/aa, t/aaa in turn, then exits. */
static pid_t publish(int port, int qos, unsigned from, unsigned to)
{
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                static uint8_t buf[BIG + 1000];
                struct mosquitto *p;
                uint64_t end = mono_us() + 30000000;
                int ok = 1;

                /* never back into the test runner, whose handlers catch these; none of the
                 * parent's sockets, which would outlive their close there (and stay in its
                 * epoll set) */
                signal(SIGSEGV, SIG_DFL);
                signal(SIGABRT, SIG_DFL);
                signal(SIGBUS, SIG_DFL);
                close_range(3, ~0U, 0);
                mosquitto_lib_init();
                p = mosquitto_new(NULL, true, NULL);
                if (!p || mosquitto_connect(p, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS)
                        _exit(2);
                mosquitto_publish_callback_set(p, on_pub_ack);
                for (unsigned i = from; i < to && ok; i++) {
                        char topic[16] = "t/aaa";
                        size_t n = msg_size(i);

                        topic[2 + i % 3 + 1] = '\0';
                        msg_fill(i, buf, n);
                        ok = mosquitto_publish(p, NULL, topic, (int)n, buf, qos, false) ==
                             MOSQ_ERR_SUCCESS;
                        /* write it; at QoS 1 keep at most 16 unacknowledged */
                        while (ok && (mosquitto_want_write(p) ||
                                      (qos > 0 && i + 1 - from - pub_acked >= 16)))
                                ok = mosquitto_loop(p, 10, 1) == MOSQ_ERR_SUCCESS &&
                                     mono_us() < end;
                }
                /* the broker has taken everything once it acknowledges a last message (a
                 * close with its CONNACK unread would reset the connection and could drop
                 * what the broker had not read yet) */
                ok = ok && mosquitto_publish(p, &pub_done_mid, "x/done", 1, "", 1, false) ==
                                   MOSQ_ERR_SUCCESS;
                while (ok && !pub_done)
                        ok = mosquitto_loop(p, 10, 1) == MOSQ_ERR_SUCCESS && mono_us() < end;
                mosquitto_disconnect(p);
                while (mosquitto_want_write(p) && mosquitto_loop(p, 10, 1) == MOSQ_ERR_SUCCESS)
                        ;
                mosquitto_destroy(p);
                mosquitto_lib_cleanup();
                _exit(ok ? 0 : 3);
        }
        return pid;
}

struct sub {
        struct floe_mqtt *m;
        bool subscribed;
        bool gaps_ok;  /* messages may be lost (QoS 0 across a reconnect) */
        unsigned next; /* the index expected next */
        unsigned got;
        unsigned bad;
        unsigned connects;
        int qos;
        uint8_t want[BIG + 1000];
};

static void on_connect(void *ud, int rc)
{
        struct sub *s = ud;

        if (rc == 0) {
                s->connects++;
                assert_int_equal(floe_mqtt_subscribe(s->m, "t/#", s->qos), 0);
        }
}

static void on_subscribe(void *ud, int mid, int granted)
{
        struct sub *s = ud;

        (void)mid;
        s->subscribed = granted < 0x80;
}

static void on_message(void *ud, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
        struct sub *s = ud;
        char topic[16] = "t/aaa";
        unsigned i;
        size_t n;

        (void)props;
        s->got++;
        if (msg->payloadlen < 4) {
                s->bad++;
                return;
        }
        memcpy(&i, msg->payload, 4);
        n = msg_size(i);
        topic[2 + i % 3 + 1] = '\0';
        if (i < s->next || (i > s->next && !s->gaps_ok) || (size_t)msg->payloadlen != n ||
            strcmp(msg->topic, topic) != 0 || (msg_fill(i, s->want, n), 0) ||
            memcmp(msg->payload, s->want, n) != 0) {
                if (s->bad++ < 5)
                        print_message("message %u (expected %u): %d bytes on %s, want %zu on %s\n",
                                      i, s->next, msg->payloadlen, msg->topic, n, topic);
        }
        s->next = i + 1;
}

static uint64_t read_syscalls(void)
{
        char line[128];
        uint64_t n = 0;
        FILE *f = fopen("/proc/self/io", "re");

        assert_non_null(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "syscr: %" SCNu64, &n) == 1)
                        break;
        fclose(f);
        return n;
}

static struct sub *sub_new(sd_event *e, int port, int qos)
{
        static const struct floe_mqtt_callbacks cb = {
                .on_connect = on_connect,
                .on_message = on_message,
                .on_subscribe = on_subscribe,
        };
        struct floe_mqtt_opts o = {
                .name = "local",
                .host = "127.0.0.1",
                .port = port,
                .keepalive_s = 60,
                .backoff_min_us = 1000,
                .backoff_max_us = 50000,
                .receive_max = 100,
                .buffered_reads = true,
        };
        struct sub *s = calloc(1, sizeof(*s));

        assert_non_null(s);
        s->qos = qos;
        assert_int_equal(floe_mqtt_new(e, &o, &cb, s, &s->m), 0);
        assert_int_equal(floe_mqtt_start(s->m), 0);
        for (uint64_t end = mono_us() + 10000000; !s->subscribed;)
                assert_true(sd_event_run(e, 100000) >= 0 && mono_us() < end);
        return s;
}

static void sub_free(struct sub *s)
{
        floe_mqtt_stop(s->m);
        floe_mqtt_free(s->m);
        free(s);
}

static void run_until(sd_event *e, const struct sub *s, unsigned n)
{
        for (uint64_t end = mono_us() + 30000000; s->next < n && mono_us() < end;)
                assert_true(sd_event_run(e, 100000) >= 0);
        if (s->next < n)
                print_message("stuck at %u of %u (%u received, %u bad)\n", s->next, n, s->got,
                              s->bad);
        assert_true(s->next >= n);
}

/* One broker, event loop and subscriber per test, gone after it even when it fails. */
struct fixture {
        struct broker b;
        sd_event *e;
        struct sub *s;
        pid_t pub;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        broker_new(&f->b);
        assert_true(sd_event_new(&f->e) >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        int st;

        if (f->pub > 0) {
                kill(f->pub, SIGKILL);
                waitpid(f->pub, &st, 0);
        }
        if (f->s)
                sub_free(f->s);
        sd_event_unref(f->e);
        broker_free(&f->b);
        free(f);
        return 0;
}

/* Waits for the publisher, which must have sent everything. */
static void publish_wait(struct fixture *f, bool must_succeed)
{
        int st;

        assert_int_equal(waitpid(f->pub, &st, 0), f->pub);
        f->pub = 0;
        if (must_succeed)
                assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void burst(struct fixture *f, int qos)
{
        const unsigned n = 3000;
        uint64_t r0, reads;

        f->s = sub_new(f->e, f->b.port, qos);
        r0 = read_syscalls();
        f->pub = publish(f->b.port, qos, 0, n);
        run_until(f->e, f->s, n);
        reads = read_syscalls() - r0;
        publish_wait(f, true);
        assert_int_equal(f->s->next, n);
        assert_int_equal(f->s->bad, 0);
        /* libmosquitto alone makes three or four read() calls per message; the buffer
         * takes all that has arrived per call (at worst one message, and a call that finds
         * nothing, when the publisher waits for acknowledgements at QoS 1) */
        print_message("qos %d: %u messages, %" PRIu64 " read system calls\n", qos, n, reads);
        assert_true(reads < (qos ? 5 * n / 2 : n));
}

static void test_burst_qos0(void **state)
{
        burst(*state, 0);
}

static void test_burst_qos1(void **state)
{
        burst(*state, 1);
}

/* The broker dies while messages stream in; the connection comes back to a new broker on
 * the same port, and what arrives there is whole. */
static void test_broker_restart(void **state)
{
        struct fixture *f = *state;
        struct sub *s;

        s = f->s = sub_new(f->e, f->b.port, 0);
        s->gaps_ok = true; /* QoS 0 in flight is lost with the broker */
        f->pub = publish(f->b.port, 0, 0, 2000);
        run_until(f->e, s, 300);
        broker_stop(&f->b);
        publish_wait(f, false);
        s->subscribed = false;
        broker_start(&f->b);
        for (uint64_t end = mono_us() + 20000000; !s->subscribed;)
                assert_true(sd_event_run(f->e, 100000) >= 0 && mono_us() < end);
        assert_int_equal(s->connects, 2);
        f->pub = publish(f->b.port, 0, 5000, 6000);
        run_until(f->e, s, 6000);
        publish_wait(f, true);
        assert_int_equal(s->bad, 0);
        assert_int_equal(s->next, 6000);
}

/* Reads of other file descriptors go to the kernel as they are. */
static void test_other_fds(void **state)
{
        int p[2];
        char buf[8] = {0};

        (void)state;
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], "abcdef", 6), 6);
        assert_int_equal(read(p[0], buf, 4), 4);
        assert_memory_equal(buf, "abcd", 4);
        assert_int_equal(read(p[0], buf, sizeof(buf)), 2);
        assert_memory_equal(buf, "ef", 2);
        close(p[1]);
        assert_int_equal(read(p[0], buf, sizeof(buf)), 0);
        close(p[0]);
        errno = 0;
        assert_int_equal(read(-1, buf, 1), -1);
        assert_int_equal(errno, EBADF);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_other_fds),
                cmocka_unit_test_setup_teardown(test_burst_qos0, setup, teardown),
                cmocka_unit_test_setup_teardown(test_burst_qos1, setup, teardown),
                cmocka_unit_test_setup_teardown(test_broker_restart, setup, teardown),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
