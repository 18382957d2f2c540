/* SPDX-License-Identifier: Apache-2.0 */
#include "floe-alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fail_at;
static uint64_t count;
static int failed;
static int env_read;

static void read_env(void)
{
        const char *s;
        char *end;
        unsigned long long v;

        env_read = 1;
        s = getenv("FLOE_ALLOC_FAIL_AT");
        if (!s || !*s)
                return;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == 0 && *end == '\0')
                fail_at = v;
}

/* Returns 1 when this allocation must fail. */
static int should_fail(void)
{
        if (!env_read)
                read_env();
        count++;
        if (fail_at && count == fail_at) {
                failed = 1;
                errno = ENOMEM;
                return 1;
        }
        return 0;
}

void floe_alloc_fail_at(uint64_t nth)
{
        env_read = 1;
        fail_at = nth;
        count = 0;
        failed = 0;
}

uint64_t floe_alloc_count(void)
{
        return count;
}

int floe_alloc_failed(void)
{
        return failed;
}

void *floe_malloc(size_t size)
{
        if (should_fail())
                return NULL;
        return malloc(size ? size : 1);
}

void *floe_calloc(size_t nmemb, size_t size)
{
        if (should_fail())
                return NULL;
        if (nmemb == 0 || size == 0)
                return calloc(1, 1);
        return calloc(nmemb, size);
}

void *floe_realloc(void *ptr, size_t size)
{
        if (should_fail())
                return NULL;
        return realloc(ptr, size ? size : 1);
}

void *floe_reallocarray(void *ptr, size_t nmemb, size_t size)
{
        if (size && nmemb > SIZE_MAX / size) {
                errno = ENOMEM;
                return NULL;
        }
        return floe_realloc(ptr, nmemb * size);
}

char *floe_strndup(const char *s, size_t n)
{
        size_t len = strnlen(s, n);
        char *d = floe_malloc(len + 1);

        if (!d)
                return NULL;
        memcpy(d, s, len);
        d[len] = '\0';
        return d;
}

char *floe_strdup(const char *s)
{
        return floe_strndup(s, SIZE_MAX);
}

void floe_free(void *ptr)
{
        free(ptr);
}
