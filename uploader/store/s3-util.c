/* SPDX-License-Identifier: Apache-2.0 */
/* S3 helpers without I/O: encoding, query strings, URLs, times, credentials files, retries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "s3-util.h"

#define QUERY_MAX 16

static bool unreserved(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_' || c == '~';
}

int s3_uri_encode(const char *s, size_t len, bool keep_slash, char *out, size_t size)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t w = 0;

        if (size == 0)
                return -ENOBUFS;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                if (unreserved(c) || (keep_slash && c == '/')) {
                        if (w + 1 >= size)
                                return -ENOBUFS;
                        out[w++] = (char)c;
                } else {
                        if (w + 3 >= size)
                                return -ENOBUFS;
                        out[w++] = '%';
                        out[w++] = hex[c >> 4];
                        out[w++] = hex[c & 15];
                }
        }
        out[w] = '\0';
        return 0;
}

struct enc_param {
        char *name, *value;
};

static int enc_param_cmp(const void *a, const void *b)
{
        const struct enc_param *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c ? c : strcmp(x->value, y->value);
}

int s3_query_format(const struct s3_param *params, size_t n, char *out, size_t size)
{
        struct enc_param enc[QUERY_MAX];
        size_t w = 0;
        char *buf;
        int r = 0;

        if (n > QUERY_MAX)
                return -E2BIG;
        if (size == 0)
                return -ENOBUFS;
        out[0] = '\0';
        if (n == 0)
                return 0;
        /* each encoded part fits in 3 * its length + 1; one scratch block for all */
        size_t need = 0;
        for (size_t i = 0; i < n; i++)
                need += 3 * (strlen(params[i].name) +
                             (params[i].value ? strlen(params[i].value) : 0)) +
                        2;
        buf = floe_malloc(need);
        if (!buf)
                return -ENOMEM;
        char *p = buf;
        for (size_t i = 0; i < n && r == 0; i++) {
                const char *v = params[i].value ? params[i].value : "";
                size_t nl = 3 * strlen(params[i].name) + 1, vl = 3 * strlen(v) + 1;

                enc[i].name = p;
                r = s3_uri_encode(params[i].name, strlen(params[i].name), false, p, nl);
                p += nl;
                enc[i].value = p;
                if (r == 0)
                        r = s3_uri_encode(v, strlen(v), false, p, vl);
                p += vl;
        }
        if (r == 0) {
                qsort(enc, n, sizeof(enc[0]), enc_param_cmp);
                for (size_t i = 0; i < n; i++) {
                        int k = snprintf(out + w, size - w, "%s%s=%s", i ? "&" : "", enc[i].name,
                                         enc[i].value);

                        if (k < 0 || (size_t)k >= size - w) {
                                r = -ENOBUFS;
                                break;
                        }
                        w += (size_t)k;
                }
        }
        floe_free(buf);
        if (r < 0)
                out[0] = '\0';
        return r;
}

bool s3_bucket_valid(const char *b)
{
        size_t n = strlen(b);
        int dots = 0, digits_only = 1;

        if (n < 3 || n > 63)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = b[i];

                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
                        return false;
                if (c == '.') {
                        dots++;
                        if (i == 0 || b[i - 1] == '.' || b[i - 1] == '-' ||
                            (i + 1 < n && b[i + 1] == '-'))
                                return false;
                } else if (!(c >= '0' && c <= '9')) {
                        digits_only = 0;
                }
        }
        if (!((b[0] >= 'a' && b[0] <= 'z') || (b[0] >= '0' && b[0] <= '9')))
                return false;
        if (!((b[n - 1] >= 'a' && b[n - 1] <= 'z') || (b[n - 1] >= '0' && b[n - 1] <= '9')))
                return false;
        if (dots == 3 && digits_only)
                return false; /* formatted like an IPv4 address */
        return true;
}

int s3_parse_url(const char *rest, char *bucket, size_t bucket_size, char *prefix,
                 size_t prefix_size)
{
        size_t blen = strcspn(rest, "/?#"), plen;
        const char *p;

        if (rest[blen] == '?' || rest[blen] == '#' || blen == 0 || blen >= bucket_size)
                return -EINVAL;
        memcpy(bucket, rest, blen);
        bucket[blen] = '\0';
        if (!s3_bucket_valid(bucket))
                return -EINVAL;
        p = rest + blen;
        while (*p == '/')
                p++;
        plen = strlen(p);
        while (plen > 0 && p[plen - 1] == '/')
                plen--;
        if (plen >= prefix_size || strcspn(p, "?#") < plen)
                return -EINVAL;
        memcpy(prefix, p, plen);
        prefix[plen] = '\0';
        /* no empty, "." or ".." levels */
        if (strstr(prefix, "//") || strcmp(prefix, ".") == 0 || strcmp(prefix, "..") == 0 ||
            strncmp(prefix, "./", 2) == 0 || strncmp(prefix, "../", 3) == 0 ||
            strstr(prefix, "/./") || strstr(prefix, "/../") ||
            (plen >= 2 && strcmp(prefix + plen - 2, "/.") == 0) ||
            (plen >= 3 && strcmp(prefix + plen - 3, "/..") == 0))
                return -EINVAL;
        for (size_t i = 0; i < plen; i++)
                if ((unsigned char)prefix[i] < 0x20 || prefix[i] == 0x7f)
                        return -EINVAL;
        return 0;
}

static int digits(const char *s, int n, int *ret)
{
        int v = 0;

        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

        return era * 146097 + doe - 719468;
}

int s3_parse_time(const char *s, int64_t *ret_ms)
{
        static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int y, mo, d, h, mi, sec, ms = 0;
        const char *p;

        if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
            s[16] != ':')
                return -EINVAL;
        if (digits(s, 4, &y) < 0 || digits(s + 5, 2, &mo) < 0 || digits(s + 8, 2, &d) < 0 ||
            digits(s + 11, 2, &h) < 0 || digits(s + 14, 2, &mi) < 0 || digits(s + 17, 2, &sec) < 0)
                return -EINVAL;
        p = s + 19;
        if (*p == '.') {
                int n = 0, scale = 100;

                for (p++; *p >= '0' && *p <= '9'; p++, n++) {
                        ms += (*p - '0') * scale;
                        scale /= 10;
                }
                if (n == 0 || n > 9)
                        return -EINVAL;
        }
        if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
                return -EINVAL;
        if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
                return -EINVAL;
        if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
                return -EINVAL;
        *ret_ms = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000 + ms;
        return 0;
}

/* s (n bytes) trimmed of blanks at both ends: start in *b, length returned. */
static size_t trim(const char *s, size_t n, const char **b)
{
        while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\r'))
                s++, n--;
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                n--;
        *b = s;
        return n;
}

static int set_value(char *dst, size_t size, const char *v, size_t n)
{
        if (n >= size)
                return -ENOBUFS;
        memcpy(dst, v, n);
        dst[n] = '\0';
        return 0;
}

/* Whether the section header text (between the brackets, trimmed) names profile. */
static bool section_is(const char *s, size_t n, const char *profile)
{
        size_t plen = strlen(profile);

        if (n == plen && memcmp(s, profile, n) == 0)
                return true;
        if (n > 8 && memcmp(s, "profile", 7) == 0 && (s[7] == ' ' || s[7] == '\t')) {
                const char *b;
                size_t m = trim(s + 7, n - 7, &b);

                return m == plen && memcmp(b, profile, m) == 0;
        }
        return false;
}

int s3_creds_parse(const char *text, size_t len, const char *profile, struct s3_creds *ret)
{
        struct s3_creds c;
        bool in = false, seen = false;
        const char *p = text, *end = text + len;
        int r = 0;

        memset(&c, 0, sizeof(c));
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p)), *line;
                size_t n = trim(p, nl ? (size_t)(nl - p) : (size_t)(end - p), &line);

                p = nl ? nl + 1 : end;
                if (n == 0 || line[0] == '#' || line[0] == ';')
                        continue;
                if (line[0] == '[') {
                        const char *b;
                        size_t m;

                        if (line[n - 1] != ']') {
                                r = -EINVAL;
                                break;
                        }
                        m = trim(line + 1, n - 2, &b);
                        in = section_is(b, m, profile);
                        seen |= in;
                        continue;
                }
                if (!in)
                        continue;
                const char *eq = memchr(line, '=', n), *k, *v;
                if (!eq)
                        continue;
                size_t kl = trim(line, (size_t)(eq - line), &k);
                size_t vl = trim(eq + 1, n - (size_t)(eq + 1 - line), &v);

                r = 0;
                if (kl == 17 && memcmp(k, "aws_access_key_id", kl) == 0)
                        r = set_value(c.key_id, sizeof(c.key_id), v, vl);
                else if (kl == 21 && memcmp(k, "aws_secret_access_key", kl) == 0)
                        r = set_value(c.secret, sizeof(c.secret), v, vl);
                else if (kl == 17 && memcmp(k, "aws_session_token", kl) == 0)
                        r = set_value(c.token, sizeof(c.token), v, vl);
                if (r < 0)
                        break;
        }
        if (r >= 0 && (!seen || !c.key_id[0] || !c.secret[0]))
                r = -ENOENT;
        if (r >= 0)
                *ret = c;
        explicit_bzero(&c, sizeof(c));
        return r < 0 ? r : 0;
}

uint64_t s3_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint64_t rnd)
{
        uint64_t ceiling = base_ms;

        if (attempt == 0)
                return 0;
        for (unsigned i = 1; i < attempt && ceiling < cap_ms; i++)
                ceiling *= 2;
        if (ceiling > cap_ms)
                ceiling = cap_ms;
        return rnd % (ceiling + 1);
}

bool s3_status_retryable(long status, const char *code)
{
        if (status >= 500 || status == 429)
                return true;
        if (!code)
                return false;
        return strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
               strcmp(code, "InternalError") == 0 ||
               strcmp(code, "ConditionalRequestConflict") == 0;
}
