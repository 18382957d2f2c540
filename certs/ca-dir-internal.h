/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the ca-dir*.c files; not part of the API. */

#include <limits.h>

#include "ca-dir.h"

struct ca_dir {
        char path[PATH_MAX];
        struct ca_settings settings;
        struct registry *reg;
};

/* "a/b" (c NULL) or "a/b/c" into buf; -ENAMETOOLONG. */
int ca_path(char *buf, size_t size, const char *a, const char *b, const char *c);
