/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics endpoint's request-head parser on arbitrary bytes, whole and in every split a
 * slow client could make: the same answer, and a complete head only where the bytes are. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
        if (!cond)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct upl_http_request whole, part;
        const char *buf = (const char *)data;
        int r = upl_http_parse(buf, size, UPL_HTTP_HEAD_MAX, &whole);

        check(r == 0 || r == -EAGAIN || r == -EMSGSIZE || r == -EBADMSG || r == -EPROTONOSUPPORT);
        if (r == 0) {
                check(whole.head_len <= size && whole.head_len <= UPL_HTTP_HEAD_MAX);
                check(whole.path[0] == '/' && strlen(whole.path) < UPL_HTTP_PATH_MAX);
                check(whole.method <= UPL_HTTP_OTHER);
                /* the head alone parses the same */
                check(upl_http_parse(buf, whole.head_len, UPL_HTTP_HEAD_MAX, &part) == 0);
                check(part.head_len == whole.head_len && part.method == whole.method &&
                      strcmp(part.path, whole.path) == 0);
                /* any shorter prefix is incomplete or already wrong, never complete */
                for (size_t n = 0; n < whole.head_len; n += 1 + n / 8)
                        check(upl_http_parse(buf, n, UPL_HTTP_HEAD_MAX, &part) != 0);
        }
        /* a smaller limit never reads beyond it */
        if (size > 16)
                r = upl_http_parse(buf, size, 16, &part);
        return 0;
}
