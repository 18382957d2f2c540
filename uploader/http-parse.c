/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 request heads (RFC 9112 §2-§6), strictly, for the metrics endpoint. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* tchar (RFC 9110 §5.6.2) */
static bool is_tchar(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The end of the line starting at p (the LF), or NULL when none within [p, end). */
static const char *line_end(const char *p, const char *end)
{
        return memchr(p, '\n', (size_t)(end - p));
}

static int parse_request_line(const char *p, const char *eol, struct upl_http_request *r)
{
        const char *sp1, *sp2, *target, *q;
        size_t mlen, tlen;

        if (eol > p && eol[-1] == '\r')
                eol--;
        sp1 = memchr(p, ' ', (size_t)(eol - p));
        if (!sp1 || sp1 == p)
                return -EBADMSG;
        mlen = (size_t)(sp1 - p);
        for (const char *c = p; c < sp1; c++)
                if (!is_tchar((unsigned char)*c))
                        return -EBADMSG;
        target = sp1 + 1;
        sp2 = memchr(target, ' ', (size_t)(eol - target));
        if (!sp2 || sp2 == target)
                return -EBADMSG;
        if ((size_t)(eol - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] < '0' ||
            sp2[8] > '9')
                return eol - sp2 - 1 >= 5 && memcmp(sp2 + 1, "HTTP/", 5) == 0 ? -EPROTONOSUPPORT
                                                                              : -EBADMSG;
        if (sp2[8] > '1')
                return -EPROTONOSUPPORT;
        if (*target != '/')
                return -EBADMSG; /* origin form only */
        for (const char *c = target; c < sp2; c++)
                if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
                        return -EBADMSG;
        q = memchr(target, '?', (size_t)(sp2 - target));
        tlen = (size_t)((q ? q : sp2) - target);
        if (tlen >= sizeof(r->path))
                tlen = sizeof(r->path) - 1; /* a long path is no known path anyway */
        memcpy(r->path, target, tlen);
        r->path[tlen] = '\0';
        if (mlen == 3 && memcmp(p, "GET", 3) == 0)
                r->method = UPL_HTTP_GET;
        else if (mlen == 4 && memcmp(p, "HEAD", 4) == 0)
                r->method = UPL_HTTP_HEAD;
        else
                r->method = UPL_HTTP_OTHER;
        return 0;
}

/* One field line "name: value" (no obsolete line folding). */
static int parse_field(const char *p, const char *eol)
{
        const char *colon, *v;

        if (eol > p && eol[-1] == '\r')
                eol--;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
                return -EBADMSG;
        for (const char *c = p; c < colon; c++)
                if (!is_tchar((unsigned char)*c))
                        return -EBADMSG;
        for (v = colon + 1; v < eol; v++)
                if (((unsigned char)*v < ' ' && *v != '\t') || (unsigned char)*v == 0x7f)
                        return -EBADMSG;
        v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
        /* no bodies: Transfer-Encoding, or a Content-Length other than 0 */
        if ((size_t)(colon - p) == 17 && strncasecmp(p, "transfer-encoding", 17) == 0)
                return -EBADMSG;
        if ((size_t)(colon - p) == 14 && strncasecmp(p, "content-length", 14) == 0) {
                const char *e = eol;

                while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
                if (e - v != 1 || *v != '0')
                        return -EBADMSG;
        }
        return 0;
}

int upl_http_parse(const char *buf, size_t len, size_t max, struct upl_http_request *ret)
{
        struct upl_http_request r = {0};
        const char *p = buf, *end = buf + (len < max ? len : max), *eol;
        unsigned fields = 0;
        int rc;

        /* RFC 9112 §2.2: empty lines before the request line may be ignored */
        while (p < end && (*p == '\r' || *p == '\n')) {
                if (*p == '\r' && (p + 1 >= end || p[1] != '\n'))
                        return p + 1 >= end ? (len >= max ? -EMSGSIZE : -EAGAIN) : -EBADMSG;
                p += *p == '\r' ? 2 : 1;
        }
        eol = line_end(p, end);
        if (!eol)
                return len >= max ? -EMSGSIZE : -EAGAIN;
        rc = parse_request_line(p, eol, &r);
        if (rc < 0)
                return rc;
        p = eol + 1;
        for (;;) {
                eol = line_end(p, end);
                if (!eol)
                        return len >= max ? -EMSGSIZE : -EAGAIN;
                if (eol == p || (eol == p + 1 && *p == '\r'))
                        break;
                if (*p == ' ' || *p == '\t')
                        return -EBADMSG; /* obsolete folding */
                if (++fields > UPL_HTTP_HEADERS_MAX)
                        return -EMSGSIZE;
                rc = parse_field(p, eol);
                if (rc < 0)
                        return rc;
                p = eol + 1;
        }
        r.head_len = (size_t)(eol + 1 - buf);
        *ret = r;
        return 0;
}

static const char *reason(int status)
{
        switch (status) {
        case 200:
                return "OK";
        case 400:
                return "Bad Request";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 408:
                return "Request Timeout";
        case 431:
                return "Request Header Fields Too Large";
        case 503:
                return "Service Unavailable";
        case 505:
                return "HTTP Version Not Supported";
        default:
                return "Internal Server Error";
        }
}

int upl_http_head(int status, const char *content_type, size_t body_len, bool allow_get, char *buf,
                  size_t size, size_t *ret_len)
{
        int n;

        n = snprintf(buf, size,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "%sCache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason(status), content_type ? content_type : "text/plain", body_len,
                     allow_get ? "Allow: GET, HEAD\r\n" : "");
        if (n < 0 || (size_t)n >= size)
                return -ENOSPC;
        *ret_len = (size_t)n;
        return 0;
}
