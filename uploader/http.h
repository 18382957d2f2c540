/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The metrics endpoint: a tiny HTTP/1.1 responder on the daemon's sd-event loop (loopback
 * only). GET (and HEAD) of /metrics, nothing else; one request per connection ("Connection:
 * close"); requests without a body, their head at most UPL_HTTP_HEAD_MAX bytes; a connection
 * that has not sent a complete head or taken its answer within the timeout is closed; at most
 * UPL_HTTP_CONN_MAX connections at once (more are closed at accept).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define UPL_HTTP_HEAD_MAX    8192
#define UPL_HTTP_HEADERS_MAX 64
#define UPL_HTTP_CONN_MAX    16
#define UPL_HTTP_PATH_MAX    256

enum upl_http_method {
        UPL_HTTP_GET,
        UPL_HTTP_HEAD,
        UPL_HTTP_OTHER,
};

struct upl_http_request {
        enum upl_http_method method;
        char path[UPL_HTTP_PATH_MAX]; /* without the query */
        size_t head_len;              /* bytes of the request line and headers, final CRLF too */
};

/*
 * Parses a request head (RFC 9112: request line, header fields, empty line; LF alone is
 * accepted as a line end). 0 with *ret filled once the head is complete; -EAGAIN when more
 * bytes are needed; -EMSGSIZE when no complete head fits in max bytes or there are more than
 * UPL_HTTP_HEADERS_MAX fields (431); -EPROTONOSUPPORT for a version other than HTTP/1.0 or
 * 1.1 (505); -EBADMSG for anything malformed, a body (Content-Length other than 0,
 * Transfer-Encoding) or a target not in origin form (400).
 */
int upl_http_parse(const char *buf, size_t len, size_t max, struct upl_http_request *ret);

/* The response's status line and headers for status (200, 400, 404, ...) with a body of
 * body_len bytes of content_type (NULL: text/plain); -ENOSPC if it does not fit. */
int upl_http_head(int status, const char *content_type, size_t body_len, bool allow_get, char *buf,
                  size_t size, size_t *ret_len);

/* The body of GET /metrics: borrowed until the next call. */
typedef int (*upl_http_render_fn)(void *ud, const char **ret_body, size_t *ret_len);

struct upl_http;

/* Listens on host:port (a numeric address). timeout_us: per connection. */
int upl_http_new(sd_event *e, const char *host, int port, uint64_t timeout_us,
                 upl_http_render_fn render, void *ud, struct upl_http **ret);
struct upl_http *upl_http_free(struct upl_http *h);
/* The port it listens on (port 0 at new: the one the kernel chose). */
int upl_http_port(const struct upl_http *h);

struct upl_http_stats {
        uint64_t requests, errors, refused, timeouts;
        size_t open;
};
void upl_http_stats(const struct upl_http *h, struct upl_http_stats *ret);
