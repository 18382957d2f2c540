/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * The one allocator of floe. Every allocation in floe code goes through these
 * wrappers so that tests can fail the Nth allocation (the curl "torture"
 * idea) and count what is live. Not thread-safe by design: floe daemons run
 * one event loop per process.
 */

void *floe_malloc(size_t size);
void *floe_calloc(size_t nmemb, size_t size);
void *floe_realloc(void *ptr, size_t size);
/* Like reallocarray(3): fails on nmemb * size overflow. */
void *floe_reallocarray(void *ptr, size_t nmemb, size_t size);
char *floe_strdup(const char *s);
char *floe_strndup(const char *s, size_t n);
void floe_free(void *ptr);

/* Test hook: make the Nth allocation from now fail (1 = the next one);
 * 0 disables. Also set from FLOE_ALLOC_FAIL_AT at the first allocation. */
void floe_alloc_fail_at(uint64_t nth);
/* Allocations attempted since the last floe_alloc_fail_at()/reset. */
uint64_t floe_alloc_count(void);
/* Whether the injected failure has been delivered. */
int floe_alloc_failed(void);

static inline void floe_freep(void *p)
{
        floe_free(*(void **)p);
}

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(floe_freep)

/* Hand a pointer out of a _cleanup_ scope. */
#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _tp = (p); \
                (p) = NULL;              \
                _tp;                     \
        })

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
