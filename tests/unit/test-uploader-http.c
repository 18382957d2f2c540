/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics endpoint: the request-head parser on good and bad heads, and the server on a
 * real loopback socket driven by a real sd-event loop: answers, errors, HEAD, timeouts,
 * the connection limit, and a client that reads slowly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "http.h"

static int parse(const char *s, struct upl_http_request *r)
{
        return upl_http_parse(s, strlen(s), UPL_HTTP_HEAD_MAX, r);
}

static void test_parse_good(void **state)
{
        struct upl_http_request r;

        (void)state;
        assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
        assert_int_equal(r.method, UPL_HTTP_GET);
        assert_string_equal(r.path, "/metrics");
        assert_int_equal(r.head_len, 34);
        assert_int_equal(parse("HEAD /metrics?x=1 HTTP/1.0\n\n", &r), 0);
        assert_int_equal(r.method, UPL_HTTP_HEAD);
        assert_string_equal(r.path, "/metrics");
        assert_int_equal(parse("\r\nPOST /a HTTP/1.1\r\nContent-Length: 0\r\nX:\r\n\r\nbody", &r),
                         0);
        assert_int_equal(r.method, UPL_HTTP_OTHER);
        assert_string_equal(r.path, "/a");
        assert_int_equal(r.head_len,
                         strlen("\r\nPOST /a HTTP/1.1\r\nContent-Length: 0\r\nX:\r\n\r\n"));
        assert_int_equal(parse("GET / HTTP/1.1\r\nUser-Agent: Prometheus/2.45\tx\r\n\r\n", &r), 0);
}

static void test_parse_bad(void **state)
{
        static const struct {
                const char *head;
                int r;
        } cases[] = {
                {"", -EAGAIN},
                {"GET /metrics HTTP/1.1\r\n", -EAGAIN},
                {"GET /metrics HTTP/1.1\r\nHost: x\r\n", -EAGAIN},
                {"\r", -EAGAIN},
                {"GET /metrics\r\n\r\n", -EBADMSG},
                {"GET  /metrics HTTP/1.1\r\n\r\n", -EBADMSG},
                {"GET metrics HTTP/1.1\r\n\r\n", -EBADMSG},
                {"GET http://a/metrics HTTP/1.1\r\n\r\n", -EBADMSG},
                {"G(T /metrics HTTP/1.1\r\n\r\n", -EBADMSG},
                {"GET /me\x01trics HTTP/1.1\r\n\r\n", -EBADMSG},
                {"GET /metrics HTTP/2.0\r\n\r\n", -EPROTONOSUPPORT},
                {"GET /metrics HTTP/1.1x\r\n\r\n", -EPROTONOSUPPORT},
                {"GET /metrics FTP/1.1\r\n\r\n", -EBADMSG},
                {"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n", -EBADMSG},
                {"GET /metrics HTTP/1.1\r\nHo st: x\r\n\r\n", -EBADMSG},
                {"GET /metrics HTTP/1.1\r\n: x\r\n\r\n", -EBADMSG},
                {"GET /metrics HTTP/1.1\r\nA: b\r\n c\r\n\r\n", -EBADMSG},
                {"GET /metrics HTTP/1.1\r\nA: b\x7f\r\n\r\n", -EBADMSG},
                {"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n", -EBADMSG},
                {"GET /metrics HTTP/1.1\r\ncontent-length: 00\r\n\r\n", -EBADMSG},
                {"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", -EBADMSG},
                {"\rGET / HTTP/1.1\r\n\r\n", -EBADMSG},
        };
        struct upl_http_request r;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (parse(cases[i].head, &r) != cases[i].r)
                        fail_msg("case %zu: %d, not %d", i, parse(cases[i].head, &r), cases[i].r);
}

static void test_parse_limits(void **state)
{
        char buf[UPL_HTTP_HEAD_MAX + 100];
        struct upl_http_request r;
        size_t n;

        (void)state;
        /* a head that does not end within max */
        n = (size_t)snprintf(buf, sizeof(buf), "GET /metrics HTTP/1.1\r\nX: ");
        memset(buf + n, 'a', sizeof(buf) - n);
        assert_int_equal(upl_http_parse(buf, sizeof(buf), UPL_HTTP_HEAD_MAX, &r), -EMSGSIZE);
        assert_int_equal(upl_http_parse(buf, 100, UPL_HTTP_HEAD_MAX, &r), -EAGAIN);
        /* too many fields */
        n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
        for (int i = 0; i <= UPL_HTTP_HEADERS_MAX; i++)
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "A: b\r\n");
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
        assert_int_equal(upl_http_parse(buf, n, UPL_HTTP_HEAD_MAX, &r), -EMSGSIZE);
        /* a long path is cut, and matches nothing */
        n = (size_t)snprintf(buf, sizeof(buf), "GET /metrics");
        memset(buf + n, 'x', 1000);
        n += 1000;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " HTTP/1.1\r\n\r\n");
        assert_int_equal(upl_http_parse(buf, n, UPL_HTTP_HEAD_MAX, &r), 0);
        assert_int_equal(strlen(r.path), UPL_HTTP_PATH_MAX - 1);
}

/* -- the server ------------------------------------------------------------------------------ */

static const char BODY[] = "# TYPE x gauge\nx 1\n";
static int renders;

static int render(void *ud, const char **ret, size_t *ret_len)
{
        (void)ud;
        renders++;
        *ret = BODY;
        *ret_len = sizeof(BODY) - 1;
        return 0;
}

struct srv {
        sd_event *e;
        struct upl_http *h;
        int port;
};

static int srv_setup(void **state)
{
        struct srv *s = calloc(1, sizeof(*s));

        assert_int_equal(sd_event_new(&s->e), 0);
        assert_int_equal(upl_http_new(s->e, "127.0.0.1", 0, 300000, render, NULL, &s->h), 0);
        s->port = upl_http_port(s->h);
        assert_true(s->port > 0);
        *state = s;
        return 0;
}

static int srv_teardown(void **state)
{
        struct srv *s = *state;

        upl_http_free(s->h);
        sd_event_unref(s->e);
        free(s);
        return 0;
}

static int client(const struct srv *s)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        assert_true(fd >= 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_true(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS);
        return fd;
}

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop until the server closed fd (EOF), collecting the answer. */
static size_t answer(struct srv *s, int fd, char *buf, size_t size, int timeout_ms)
{
        uint64_t end = now_ms() + (uint64_t)timeout_ms;
        size_t len = 0;

        for (;;) {
                ssize_t n = recv(fd, buf + len, size - 1 - len, 0);

                if (n == 0)
                        break;
                if (n > 0) {
                        len += (size_t)n;
                        continue;
                }
                assert_true(errno == EAGAIN || errno == ECONNRESET);
                if (errno == ECONNRESET)
                        break;
                assert_true(now_ms() < end);
                assert_true(sd_event_run(s->e, 10000) >= 0);
        }
        buf[len] = '\0';
        return len;
}

static void request(struct srv *s, const char *req, char *buf, size_t size)
{
        int fd = client(s);

        for (int i = 0; i < 100; i++) {
                if (send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req))
                        break;
                assert_true(sd_event_run(s->e, 10000) >= 0);
        }
        answer(s, fd, buf, size, 3000);
        close(fd);
}

static void test_server_answers(void **state)
{
        struct srv *s = *state;
        char buf[4096];

        renders = 0;
        request(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
        assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
        assert_non_null(strstr(buf, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert_non_null(strstr(buf, "Content-Length: 19\r\n"));
        assert_non_null(strstr(buf, "Connection: close\r\n"));
        assert_string_equal(strstr(buf, "\r\n\r\n") + 4, BODY);
        assert_int_equal(renders, 1);
        request(s, "HEAD /metrics HTTP/1.1\r\n\r\n", buf, sizeof(buf));
        assert_non_null(strstr(buf, "Content-Length: 19\r\n"));
        assert_string_equal(strstr(buf, "\r\n\r\n") + 4, "");
        request(s, "GET / HTTP/1.1\r\n\r\n", buf, sizeof(buf));
        assert_memory_equal(buf, "HTTP/1.1 404 ", 13);
        request(s, "POST /metrics HTTP/1.1\r\n\r\n", buf, sizeof(buf));
        assert_memory_equal(buf, "HTTP/1.1 405 ", 13);
        assert_non_null(strstr(buf, "Allow: GET, HEAD\r\n"));
        request(s, "GET /metrics HTTP/3.0\r\n\r\n", buf, sizeof(buf));
        assert_memory_equal(buf, "HTTP/1.1 505 ", 13);
        request(s, "GET /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", buf, sizeof(buf));
        assert_memory_equal(buf, "HTTP/1.1 400 ", 13);
        assert_int_equal(renders, 2);
}

static void test_server_limits(void **state)
{
        struct srv *s = *state;
        struct upl_http_stats st;
        char big[UPL_HTTP_HEAD_MAX + 64], buf[4096];
        int fds[UPL_HTTP_CONN_MAX + 2];
        size_t n;

        /* a head too large */
        n = (size_t)snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\nX: ");
        memset(big + n, 'a', sizeof(big) - n - 1);
        big[sizeof(big) - 1] = '\0';
        request(s, big, buf, sizeof(buf));
        assert_memory_equal(buf, "HTTP/1.1 431 ", 13);
        /* a client that never completes its head is closed after the timeout */
        {
                int fd = client(s);

                assert_int_equal(send(fd, "GET /met", 8, MSG_NOSIGNAL), 8);
                assert_int_equal(answer(s, fd, buf, sizeof(buf), 3000), 0);
                close(fd);
        }
        upl_http_stats(s->h, &st);
        assert_int_equal(st.timeouts, 1);
        /* more connections than allowed: the extra ones are closed at once, the others served */
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = client(s);
        for (int i = 0; i < 300; i++) {
                sd_event_run(s->e, 10000);
                upl_http_stats(s->h, &st);
                if (st.refused == 2)
                        break;
        }
        assert_int_equal(st.open, UPL_HTTP_CONN_MAX);
        assert_int_equal(st.refused, 2);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        for (int i = 0; i < 20; i++)
                sd_event_run(s->e, 10000);
        upl_http_stats(s->h, &st);
        assert_int_equal(st.open, 0);
        request(s, "GET /metrics HTTP/1.1\r\n\r\n", buf, sizeof(buf));
        assert_memory_equal(buf, "HTTP/1.1 200 ", 13);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_good),
                cmocka_unit_test(test_parse_bad),
                cmocka_unit_test(test_parse_limits),
                cmocka_unit_test_setup_teardown(test_server_answers, srv_setup, srv_teardown),
                cmocka_unit_test_setup_teardown(test_server_limits, srv_setup, srv_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
