/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A benchmark's figures as JSON in $FLOE_BENCH_JSON/<name>.json, when that is set
 * (scripts/run-bench collects them, scripts/perf-report writes docs/performance.md). */

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

/* Takes o (NULL: it could not be built). 0, or -1 after saying what could not be written. */
static inline int bench_json_write(const char *name, json_t *o)
{
        const char *dir = getenv("FLOE_BENCH_JSON");
        char path[4096];
        int r = 0;

        snprintf(path, sizeof(path), "%s/%s.json", dir ? dir : "", name);
        if (!o || (dir && *dir && json_dump_file(o, path, JSON_INDENT(1)) < 0)) {
                fprintf(stderr, "%s: cannot write %s\n", name, path);
                r = -1;
        }
        json_decref(o);
        return r;
}
