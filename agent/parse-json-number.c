/* SPDX-License-Identifier: Apache-2.0 */
/* JSON numbers: the syntax of RFC 8259 checked while the digits are summed,
 * so that a usual sensor value converts without a second pass (and 8 digits
 * at a time when the payload has room to read ahead); anything else goes to
 * agent_parse_decimal(). */
#include <string.h>

#include "parse-json.h"

static inline bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/*
 * A number at the cursor: the syntax of RFC 8259 checked while its digits are
 * summed, so the common literal (up to 19 significant digits, a small exponent)
 * converts without a second pass; anything else goes to agent_parse_decimal().
 */
bool agent_json_number_plain(struct jr *j, double *ret, uint8_t *ret_decimals)
{
        const char *c = j->c, *e = j->e, *d0, *f0;
        uint64_t w = 0;
        unsigned d;
        bool neg;
        long n;

        neg = c < e && *c == '-';
        c += neg;
        d0 = c;
        while (c < e && (d = (unsigned)(*c - '0')) <= 9) {
                w = w * 10 + d;
                c++;
        }
        n = c - d0;
        if (n == 0 || (n > 1 && *d0 == '0'))
                return false;
        f0 = c;
        if (c < e && *c == '.') {
                f0 = ++c;
                while (c < e && (d = (unsigned)(*c - '0')) <= 9) {
                        w = w * 10 + d;
                        c++;
                }
                if (c == f0)
                        return false;
        }
        if ((c < e && (*c == 'e' || *c == 'E')) || n + (c - f0) > 19 ||
            !agent_parse_decimal_fast(w, neg, w ? (int)(f0 - c) : 0, ret))
                return false;
        *ret_decimals = agent_json_decimals(w, neg, (unsigned)n, (unsigned)(c - f0));
        j->c = c;
        return true;
}

int agent_json_number(struct jr *j, double *ret)
{
        const char *start = j->c, *c = j->c, *e = j->e;
        uint64_t w = 0;
        unsigned sig = 0, xd = 0;
        int e10 = 0, x = 0;
        bool neg = false, xneg = false, fast = true;
        int r;

        if (c < e && *c == '-') {
                neg = true;
                c++;
        }
        if (c < e && *c == '0') {
                c++;
        } else if (c < e && is_digit(*c)) {
                for (unsigned d; c < e && (d = (unsigned)(*c - '0')) <= 9; c++) {
                        sig++;
                        w = w * 10 + d;
                }
        } else {
                j->c = c;
                return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "invalid number");
        }
        if (c < e && *c == '.') {
                c++;
                if (!(c < e && is_digit(*c))) {
                        j->c = c;
                        return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "invalid number");
                }
                for (unsigned d; c < e && (d = (unsigned)(*c - '0')) <= 9; c++) {
                        sig += sig || d;
                        w = w * 10 + d;
                        e10--;
                }
        }
        if (c < e && (*c == 'e' || *c == 'E')) {
                c++;
                if (c < e && (*c == '+' || *c == '-'))
                        xneg = *c++ == '-';
                if (!(c < e && is_digit(*c))) {
                        j->c = c;
                        return agent_json_syntax(j, AGENT_PARSE_BAD_JSON, "invalid number");
                }
                for (; c < e && is_digit(*c); c++, xd++)
                        if (xd < 6)
                                x = x * 10 + (*c - '0');
                fast = xd <= 6;
                e10 += xneg ? -x : x;
        }
        j->c = c;
        /* more than 19 significant digits may have wrapped w; past 2^53 or
         * 10^±22 a single IEEE operation is not exact */
        if (fast && sig <= 19 && agent_parse_decimal_fast(w, neg, w ? e10 : 0, ret))
                return 0;
        r = agent_parse_decimal(j->p, start, (size_t)(c - start), ret);
        if (r < 0) {
                /* a range error, located like a syntax error */
                char msg[sizeof(j->p->err->detail)];

                memcpy(msg, j->p->err->detail, sizeof(msg));
                j->c = start;
                return agent_json_syntax(j, j->p->err->reason, "%s", msg);
        }
        return 0;
}
