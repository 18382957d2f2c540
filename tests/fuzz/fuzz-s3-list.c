/* SPDX-License-Identifier: Apache-2.0 */
/* The S3 XML reader (uploader/store/s3-util.h) on arbitrary bytes: ListObjectsV2 pages, error
 * documents and lookups must never read out of bounds, and what a page yields must hold the
 * promises of s3_list_parse: non-empty NUL-terminated keys, sizes within int64, a token
 * whenever the page says it is truncated, and the same answer every time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct tally {
        uint64_t n, hash;
};

static int entry(void *ud, const char *key, uint64_t size, int64_t mtime_ms)
{
        struct tally *t = ud;
        size_t len = strlen(key);

        if (len == 0 || size > INT64_MAX)
                abort();
        t->n++;
        for (size_t i = 0; i < len; i++)
                t->hash = t->hash * 1099511628211ULL + (uint8_t)key[i];
        t->hash = t->hash * 31 + size + (uint64_t)mtime_ms;
        return 0;
}

static int any(void *ud, const char *const *path, size_t depth, const char *text, size_t len)
{
        (void)ud;
        if (depth == 0 || depth > S3_XML_DEPTH || !path[0][0])
                abort();
        if (text && strlen(text) > len)
                abort(); /* a raw NUL byte in the input may make it shorter, never longer */
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *xml = (const char *)data;
        struct tally a = {0, 0}, b = {0, 0};
        char token[1024], token2[1024], code[64], out[256];
        bool trunc = false, trunc2 = false;
        int r1, r2;

        r1 = s3_list_parse(xml, size, entry, &a, &trunc, token, sizeof(token));
        r2 = s3_list_parse(xml, size, entry, &b, &trunc2, token2, sizeof(token2));
        if (r1 != r2 || a.n != b.n || a.hash != b.hash)
                abort();
        if (r1 == 0 && (trunc != trunc2 || strcmp(token, token2) != 0 || (trunc && !token[0])))
                abort();
        (void)s3_xml_walk(xml, size, any, NULL);
        s3_error_code(xml, size, code, sizeof(code));
        if (strlen(code) >= sizeof(code))
                abort();
        (void)s3_xml_find(xml, size, "InitiateMultipartUploadResult/UploadId", out, sizeof(out));
        (void)s3_xml_root(xml, size, out, sizeof(out));
        return 0;
}
