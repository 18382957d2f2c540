/* SPDX-License-Identifier: Apache-2.0 */
/* Value parsers and formatters of floe-config.h (syntax in docs/config.md),
 * and the UTF-8 helpers the syntax parser and messages share. */
#include "floe-config.h"
#include "floe-alloc.h"
#include "floe-config-internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static char ascii_lower(char c)
{
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Locale-independent ASCII strcasecmp() == 0. */
static bool ascii_case_equal(const char *a, const char *b)
{
        for (; *a && *b; a++, b++)
                if (ascii_lower(*a) != ascii_lower(*b))
                        return false;
        return *a == *b;
}

int floe_parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = {"1", "yes", "true", "on"};
        static const char *const no[] = {"0", "no", "false", "off"};

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (ascii_case_equal(s, yes[i])) {
                        *ret = true;
                        return 0;
                }
                if (ascii_case_equal(s, no[i])) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* Accumulates decimal digits at *p into *v; -ERANGE on overflow. The digits
 * after an overflow are still consumed so syntax errors win over range. */
static int scan_digits(const char **p, uint64_t *v)
{
        int r = 0;

        for (; is_digit(**p); (*p)++) {
                unsigned d = (unsigned)(**p - '0');

                if (*v > (UINT64_MAX - d) / 10)
                        r = -ERANGE;
                else
                        *v = *v * 10 + d;
        }
        return r;
}

int floe_parse_uint64(const char *s, uint64_t *ret)
{
        const char *p = s;
        uint64_t v = 0;
        int r;

        if (*p == '+')
                p++;
        if (!is_digit(*p))
                return -EINVAL;
        r = scan_digits(&p, &v);
        if (*p)
                return -EINVAL;
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int floe_parse_int64(const char *s, int64_t *ret)
{
        const char *p = s;
        bool neg = false;
        uint64_t v = 0;
        int r;

        if (*p == '+' || *p == '-') {
                neg = *p == '-';
                p++;
        }
        if (!is_digit(*p))
                return -EINVAL;
        r = scan_digits(&p, &v);
        if (*p)
                return -EINVAL;
        if (r < 0)
                return r;
        if (neg) {
                if (v > (uint64_t)INT64_MAX + 1)
                        return -ERANGE;
                *ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        } else {
                if (v > (uint64_t)INT64_MAX)
                        return -ERANGE;
                *ret = (int64_t)v;
        }
        return 0;
}

int floe_parse_double(const char *s, double *ret)
{
        const char *p = s;
        char *end;
        double v;

        /* strtod() alone would also take spaces, hex, "inf" and "nan". */
        if (*p == '+' || *p == '-')
                p++;
        if (!is_digit(*p))
                return -EINVAL;
        while (is_digit(*p))
                p++;
        if (*p == '.') {
                p++;
                if (!is_digit(*p))
                        return -EINVAL;
                while (is_digit(*p))
                        p++;
        }
        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '+' || *p == '-')
                        p++;
                if (!is_digit(*p))
                        return -EINVAL;
                while (is_digit(*p))
                        p++;
        }
        if (*p)
                return -EINVAL;

        errno = 0;
        v = strtod(s, &end);
        /* A non-"." LC_NUMERIC decimal point stops strtod early: fail closed. */
        if (end != p)
                return -EINVAL;
        if (errno == ERANGE || !isfinite(v))
                return -ERANGE;
        *ret = v;
        return 0;
}

/* floor(mult * 0.<digits>) for the n digits at frac, exact for any n:
 * Horner from the last digit, floor((d * mult + x) / 10) at each step. */
static uint64_t scale_fraction(const char *frac, size_t n, uint64_t mult)
{
        uint64_t x = 0;

        while (n > 0) {
                n--;
                x = ((uint64_t)(frac[n] - '0') * mult + x) / 10;
        }
        return x;
}

/* Parses "<digits>[.<digits>]" at *p into integer part and fraction span;
 * on -ERANGE (integer part overflow) the outputs are still written. */
static int scan_number(const char **p, uint64_t *ret_int, const char **ret_frac, size_t *ret_nfrac)
{
        const char *frac = NULL;
        size_t nfrac = 0;
        uint64_t v = 0;
        int r;

        if (!is_digit(**p))
                return -EINVAL;
        r = scan_digits(p, &v);
        if (**p == '.') {
                (*p)++;
                frac = *p;
                while (is_digit(**p))
                        (*p)++;
                nfrac = (size_t)(*p - frac);
                if (nfrac == 0)
                        return -EINVAL;
        }
        *ret_int = v;
        *ret_frac = frac;
        *ret_nfrac = nfrac;
        return r;
}

/* v * mult + fraction, -ERANGE on overflow. */
static int scale(uint64_t v, uint64_t mult, const char *frac, size_t nfrac, uint64_t *ret)
{
        uint64_t f = frac ? scale_fraction(frac, nfrac, mult) : 0;

        if (v > UINT64_MAX / mult || v * mult > UINT64_MAX - f)
                return -ERANGE;
        *ret = v * mult + f;
        return 0;
}

struct unit {
        const char *name;
        uint64_t mult;
};

static const struct unit size_units[] = {
        {"", 1},
        {"B", 1},
        {"K", 1ULL << 10},
        {"KiB", 1ULL << 10},
        {"M", 1ULL << 20},
        {"MiB", 1ULL << 20},
        {"G", 1ULL << 30},
        {"GiB", 1ULL << 30},
        {"T", 1ULL << 40},
        {"TiB", 1ULL << 40},
        {"kB", 1000ULL},
        {"MB", 1000ULL * 1000},
        {"GB", 1000ULL * 1000 * 1000},
        {"TB", 1000ULL * 1000 * 1000 * 1000},
};

int floe_parse_size(const char *s, uint64_t *ret)
{
        const char *p = s, *frac;
        size_t nfrac;
        uint64_t v;
        int r;

        r = scan_number(&p, &v, &frac, &nfrac);
        if (r == -EINVAL)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(size_units); i++) {
                if (strcmp(p, size_units[i].name) != 0)
                        continue;
                /* Fractions of a byte make no sense. */
                if (frac && size_units[i].mult == 1)
                        return -EINVAL;
                if (r < 0)
                        return r;
                return scale(v, size_units[i].mult, frac, nfrac, ret);
        }
        return -EINVAL;
}

/* Largest first; a duration lists each unit at most once, in this order. */
static const struct unit duration_units[] = {
        {"d", 86400ULL * 1000000},
        {"h", 3600ULL * 1000000},
        {"min", 60ULL * 1000000},
        {"m", 60ULL * 1000000},
        {"s", 1000000ULL},
        {"ms", 1000ULL},
        {"us", 1ULL},
};

static int duration_unit(const char **p, size_t *ret_rank)
{
        const char *start = *p;
        size_t n;

        while ((**p >= 'a' && **p <= 'z') || (**p >= 'A' && **p <= 'Z'))
                (*p)++;
        n = (size_t)(*p - start);
        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
                if (strlen(duration_units[i].name) == n &&
                    memcmp(duration_units[i].name, start, n) == 0) {
                        /* "min" and "m" are one unit. */
                        *ret_rank = i >= 3 ? i - 1 : i;
                        return (int)i;
                }
        }
        return -EINVAL;
}

int floe_parse_duration(const char *s, uint64_t *ret_us)
{
        const char *p = s;
        size_t last_rank = SIZE_MAX;
        uint64_t total = 0;
        bool overflow = false;

        if (strcmp(s, "0") == 0) {
                *ret_us = 0;
                return 0;
        }
        do {
                const char *frac;
                size_t nfrac, rank;
                uint64_t v, part;
                int r, u;

                r = scan_number(&p, &v, &frac, &nfrac);
                if (r == -EINVAL)
                        return r;
                u = duration_unit(&p, &rank);
                if (u < 0)
                        return u;
                if (last_rank != SIZE_MAX && rank <= last_rank)
                        return -EINVAL;
                last_rank = rank;
                if (r < 0 || scale(v, duration_units[u].mult, frac, nfrac, &part) < 0 ||
                    part > UINT64_MAX - total)
                        overflow = true;
                else
                        total += part;
        } while (*p);

        if (overflow)
                return -ERANGE;
        *ret_us = total;
        return 0;
}

/* Largest unit that divides v (all: every unit, remainders included). */
static char *format_units(uint64_t v, const struct unit *units, size_t n, bool all,
                          const char *zero, char *buf, size_t size)
{
        size_t off = 0;

        if (size == 0)
                return buf;
        snprintf(buf, size, "%s", v == 0 ? zero : "");
        for (size_t i = 0; i < n && v != 0; i++) {
                uint64_t mult = units[i].mult, q = v / mult;
                int k;

                if (q == 0 || (!all && q * mult != v))
                        continue;
                k = snprintf(buf + off, size - off, "%llu%s", (unsigned long long)q, units[i].name);
                if (k < 0 || (size_t)k >= size - off) {
                        buf[off] = '\0'; /* whole units only */
                        return buf;
                }
                off += (size_t)k;
                v -= q * mult;
                if (!all)
                        return buf;
        }
        return buf;
}

char *floe_format_size(uint64_t bytes, char *buf, size_t size)
{
        static const struct unit units[] = {
                {"TiB", 1ULL << 40}, {"GiB", 1ULL << 30},      {"MiB", 1ULL << 20},
                {"KiB", 1ULL << 10}, {"TB", 1000000000000ULL}, {"GB", 1000000000ULL},
                {"MB", 1000000ULL},  {"kB", 1000ULL},          {"B", 1},
        };

        return format_units(bytes, units, ELEMENTSOF(units), false, "0B", buf, size);
}

char *floe_format_duration(uint64_t us, char *buf, size_t size)
{
        static const struct unit units[] = {
                {"d", 86400ULL * 1000000}, {"h", 3600ULL * 1000000}, {"m", 60ULL * 1000000},
                {"s", 1000000ULL},         {"ms", 1000ULL},          {"us", 1ULL},
        };

        return format_units(us, units, ELEMENTSOF(units), true, "0", buf, size);
}

size_t floe_config__utf8_len(const char *s, size_t n)
{
        const unsigned char *u = (const unsigned char *)s;
        uint32_t cp, min;
        size_t len;

        if (n == 0)
                return 0;
        if (u[0] < 0x80)
                return 1;
        if (u[0] >= 0xc2 && u[0] <= 0xdf) {
                len = 2;
                cp = u[0] & 0x1f;
                min = 0x80;
        } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
                len = 3;
                cp = u[0] & 0x0f;
                min = 0x800;
        } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
                len = 4;
                cp = u[0] & 0x07;
                min = 0x10000;
        } else {
                return 0;
        }
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((u[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (u[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

const char *floe_config__quote(const char *s, size_t n, char buf[static CFG_QUOTE_MAX])
{
        const size_t budget = 1 + 40;
        size_t o = 0;

        buf[o++] = '"';
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char)s[i];
                char piece[8];
                size_t k = 1, len = 1;

                if (c == '"' || c == '\\') {
                        piece[0] = '\\';
                        piece[1] = (char)c;
                        k = 2;
                } else if (c == '\n' || c == '\t') {
                        piece[0] = '\\';
                        piece[1] = c == '\n' ? 'n' : 't';
                        k = 2;
                } else if (c < 0x20 || c == 0x7f ||
                           (c >= 0x80 && floe_config__utf8_len(s + i, n - i) == 0)) {
                        snprintf(piece, sizeof(piece), "\\x%02x", c);
                        k = 4;
                } else {
                        len = c >= 0x80 ? floe_config__utf8_len(s + i, n - i) : 1;
                        memcpy(piece, s + i, len);
                        k = len;
                }
                if (o + k > budget) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                        break;
                }
                memcpy(buf + o, piece, k);
                o += k;
                i += len;
        }
        buf[o++] = '"';
        buf[o] = '\0';
        return buf;
}
