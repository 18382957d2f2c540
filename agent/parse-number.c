/* SPDX-License-Identifier: Apache-2.0 */
/* Decimal literals to doubles, correctly rounded. Most sensor values (a few
 * significant digits, a small exponent) take Clinger's exact fast path: an
 * integer mantissa below 2^53 and a power of ten up to 10^22 are both exact
 * doubles, so one IEEE multiplication or division rounds correctly. Everything
 * else goes to strtod_l() in the C locale. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parse-internal.h"

#define FAST_MAX_DIGITS 19   /* significant digits that fit a uint64_t */
#define SLOW_MAX_LEN    4096 /* longer literals are copied to the heap-free scratch */

static bool fast_path(const char *s, size_t n, double *ret)
{
#if FLT_EVAL_METHOD != 0
        /* excess precision would round twice */
        (void)s;
        (void)n;
        (void)ret;
        return false;
#else
        uint64_t w = 0;
        unsigned sig = 0;
        long e10 = 0;
        bool neg = false, in_frac = false;
        size_t i = 0;

        if (i < n && (s[i] == '-' || s[i] == '+'))
                neg = s[i++] == '-';
        for (; i < n; i++) {
                char c = s[i];

                if (c == '.') {
                        in_frac = true;
                        continue;
                }
                if (c < '0' || c > '9')
                        break;
                if (sig || c != '0')
                        if (++sig > FAST_MAX_DIGITS)
                                return false;
                w = w * 10 + (uint64_t)(c - '0');
                if (in_frac)
                        e10--;
        }
        if (i < n) { /* the exponent */
                long x = 0;
                bool xneg = false;
                unsigned nd = 0;

                i++; /* e or E */
                if (i < n && (s[i] == '-' || s[i] == '+'))
                        xneg = s[i++] == '-';
                for (; i < n; i++, nd++) {
                        if (nd >= 6)
                                return false;
                        x = x * 10 + (s[i] - '0');
                }
                e10 += xneg ? -x : x;
        }
        if (w == 0)
                e10 = 0; /* zero whatever the exponent */
        if (e10 < -AGENT_PARSE_POW10_MAX || e10 > AGENT_PARSE_POW10_MAX)
                return false;
        return agent_parse_decimal_fast(w, neg, (int)e10, ret);
#endif
}

int agent_parse_decimal(struct agent_parser *p, const char *s, size_t n, double *ret)
{
        char buf[128], *z;

        if (fast_path(s, n, ret))
                return 0;
        if (n < sizeof(buf)) {
                z = buf;
        } else {
                if (n > SLOW_MAX_LEN)
                        return agent_parse_fail(p, AGENT_PARSE_BAD_NUMBER,
                                                "number literal of %zu characters, limit %d", n,
                                                SLOW_MAX_LEN);
                z = agent_parse_str_alloc(p, n + 1);
                if (!z)
                        return -EMSGSIZE;
        }
        memcpy(z, s, n);
        z[n] = '\0';
        *ret = strtod_l(z, NULL, p->c_locale);
        if (!isfinite(*ret))
                return agent_parse_fail(p, AGENT_PARSE_NON_FINITE,
                                        "number beyond the range of a double");
        return 0;
}
