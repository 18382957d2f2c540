/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics endpoint's connections on the sd-event loop. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floe-alloc.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct conn {
        struct upl_http *h;
        int fd;
        sd_event_source *io, *timer;
        char in[UPL_HTTP_HEAD_MAX];
        size_t in_len;
        char *out; /* head and body, floe_malloc */
        size_t out_len, sent;
};

struct upl_http {
        sd_event *e;
        int fd;
        sd_event_source *listen;
        uint64_t timeout_us;
        upl_http_render_fn render;
        void *ud;
        struct conn *conns[UPL_HTTP_CONN_MAX];
        struct upl_http_stats st;
};

static void conn_close(struct conn *c)
{
        struct upl_http *h = c->h;

        for (size_t i = 0; i < UPL_HTTP_CONN_MAX; i++)
                if (h->conns[i] == c)
                        h->conns[i] = NULL;
        h->st.open--;
        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
        close(c->fd);
        floe_free(c->out);
        floe_free(c);
}

/* Writes what the socket takes; closes the connection when all is sent. */
static void conn_flush(struct conn *c)
{
        while (c->sent < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->sent, c->out_len - c->sent, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        sd_event_source_set_io_events(c->io, EPOLLOUT);
                        return;
                }
                if (n <= 0) {
                        c->h->st.errors++;
                        conn_close(c);
                        return;
                }
                c->sent += (size_t)n;
        }
        shutdown(c->fd, SHUT_WR);
        conn_close(c);
}

static void respond(struct conn *c, int status, const char *body, size_t body_len, bool head_only,
                    bool allow)
{
        char head[512];
        size_t hlen = 0;

        if (upl_http_head(status, status == 200 ? CONTENT_TYPE : NULL, body_len, allow, head,
                          sizeof(head), &hlen) < 0) {
                conn_close(c);
                return;
        }
        if (head_only)
                body_len = 0;
        c->out = floe_malloc(hlen + body_len + 1);
        if (!c->out) {
                conn_close(c);
                return;
        }
        memcpy(c->out, head, hlen);
        if (body_len)
                memcpy(c->out + hlen, body, body_len);
        c->out_len = hlen + body_len;
        /* the request is read: stop reading, only write */
        sd_event_source_set_io_events(c->io, EPOLLOUT);
        conn_flush(c);
}

static void respond_text(struct conn *c, int status, const char *text, bool allow)
{
        if (status >= 400)
                c->h->st.errors++;
        respond(c, status, text, strlen(text), false, allow);
}

static void handle(struct conn *c, const struct upl_http_request *req)
{
        const char *body = NULL;
        size_t len = 0;

        c->h->st.requests++;
        if (strcmp(req->path, "/metrics") != 0) {
                respond_text(c, 404, "not found: the endpoint is /metrics\n", false);
                return;
        }
        if (req->method == UPL_HTTP_OTHER) {
                respond_text(c, 405, "only GET and HEAD\n", true);
                return;
        }
        if (c->h->render(c->h->ud, &body, &len) < 0) {
                respond_text(c, 503, "metrics unavailable\n", false);
                return;
        }
        respond(c, 200, body, len, req->method == UPL_HTTP_HEAD, false);
}

static void conn_read(struct conn *c)
{
        struct upl_http_request req;
        int r;

        for (;;) {
                ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) { /* closed or failed before a complete head */
                        conn_close(c);
                        return;
                }
                c->in_len += (size_t)n;
                r = upl_http_parse(c->in, c->in_len, sizeof(c->in), &req);
                if (r == -EAGAIN)
                        continue;
                if (r == 0)
                        handle(c, &req);
                else if (r == -EMSGSIZE)
                        respond_text(c, 431, "request head too large\n", false);
                else if (r == -EPROTONOSUPPORT)
                        respond_text(c, 505, "HTTP/1.0 and HTTP/1.1 only\n", false);
                else
                        respond_text(c, 400, "bad request\n", false);
                return;
        }
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
        struct conn *c = ud;

        (void)s;
        (void)fd;
        if (c->out)
                conn_flush(c);
        else if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(c);
        return 0;
}

static int on_conn_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
        struct conn *c = ud;

        (void)s;
        (void)usec;
        c->h->st.timeouts++;
        conn_close(c);
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
        struct upl_http *h = ud;

        (void)s;
        (void)revents;
        for (;;) {
                struct conn *c;
                size_t slot = UPL_HTTP_CONN_MAX;
                int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

                if (cfd < 0)
                        return 0; /* EAGAIN, or a connection that went away */
                for (size_t i = 0; i < UPL_HTTP_CONN_MAX && slot == UPL_HTTP_CONN_MAX; i++)
                        if (!h->conns[i])
                                slot = i;
                c = slot < UPL_HTTP_CONN_MAX ? floe_calloc(1, sizeof(*c)) : NULL;
                if (!c) {
                        h->st.refused++;
                        close(cfd);
                        continue;
                }
                c->h = h;
                c->fd = cfd;
                h->conns[slot] = c;
                h->st.open++;
                if (sd_event_add_io(h->e, &c->io, cfd, EPOLLIN, on_conn_io, c) < 0 ||
                    sd_event_add_time_relative(h->e, &c->timer, CLOCK_MONOTONIC, h->timeout_us,
                                               10000, on_conn_timeout, c) < 0) {
                        h->st.refused++;
                        conn_close(c);
                }
        }
}

int upl_http_new(sd_event *e, const char *host, int port, uint64_t timeout_us,
                 upl_http_render_fn render, void *ud, struct upl_http **ret)
{
        struct sockaddr_storage ss = {0};
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        socklen_t sl;
        struct upl_http *h;
        int one = 1, r;

        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
                in4->sin_family = AF_INET;
                in4->sin_port = htons((uint16_t)port);
                sl = sizeof(*in4);
        } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t)port);
                sl = sizeof(*in6);
        } else {
                return -EINVAL;
        }
        h = floe_calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->e = sd_event_ref(e);
        h->timeout_us = timeout_us;
        h->render = render;
        h->ud = ud;
        h->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (h->fd < 0) {
                r = -errno;
                goto fail;
        }
        setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(h->fd, (struct sockaddr *)&ss, sl) < 0 || listen(h->fd, 64) < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(e, &h->listen, h->fd, EPOLLIN, on_accept, h);
        if (r < 0)
                goto fail;
        *ret = h;
        return 0;
fail:
        upl_http_free(h);
        return r;
}

struct upl_http *upl_http_free(struct upl_http *h)
{
        if (!h)
                return NULL;
        for (size_t i = 0; i < UPL_HTTP_CONN_MAX; i++)
                if (h->conns[i])
                        conn_close(h->conns[i]);
        h->listen = sd_event_source_disable_unref(h->listen);
        if (h->fd >= 0)
                close(h->fd);
        sd_event_unref(h->e);
        floe_free(h);
        return NULL;
}

int upl_http_port(const struct upl_http *h)
{
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        if (getsockname(h->fd, (struct sockaddr *)&ss, &sl) < 0)
                return -errno;
        if (ss.ss_family == AF_INET)
                return ntohs(((struct sockaddr_in *)&ss)->sin_port);
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void upl_http_stats(const struct upl_http *h, struct upl_http_stats *ret)
{
        *ret = h->st;
}
