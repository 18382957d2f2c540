/* SPDX-License-Identifier: Apache-2.0 */
#include "floe-alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The test hook is shared by every thread (the uploader's maintenance worker allocates
 * beside the event loop): relaxed atomics, so the counters race with nothing. */
static _Atomic uint64_t fail_at;
static _Atomic uint64_t count;
static _Atomic int failed;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void read_env(void)
{
        const char *s;
        char *end;
        unsigned long long v;

        s = getenv("FLOE_ALLOC_FAIL_AT");
        if (!s || !*s)
                return;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == 0 && *end == '\0')
                atomic_store_explicit(&fail_at, v, memory_order_relaxed);
}

/* Returns 1 when this allocation must fail. */
static int should_fail(void)
{
        uint64_t at, n;

        (void)pthread_once(&env_once, read_env);
        n = atomic_fetch_add_explicit(&count, 1, memory_order_relaxed) + 1;
        at = atomic_load_explicit(&fail_at, memory_order_relaxed);
        if (at && n == at) {
                atomic_store_explicit(&failed, 1, memory_order_relaxed);
                errno = ENOMEM;
                return 1;
        }
        return 0;
}

void floe_alloc_fail_at(uint64_t nth)
{
        (void)pthread_once(&env_once, read_env); /* the environment cannot override it later */
        atomic_store_explicit(&fail_at, nth, memory_order_relaxed);
        atomic_store_explicit(&count, 0, memory_order_relaxed);
        atomic_store_explicit(&failed, 0, memory_order_relaxed);
}

uint64_t floe_alloc_count(void)
{
        return atomic_load_explicit(&count, memory_order_relaxed);
}

int floe_alloc_failed(void)
{
        return atomic_load_explicit(&failed, memory_order_relaxed);
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
