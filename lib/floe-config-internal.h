/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between lib/floe-config*.c only; not an API. */

#include "floe-config.h"

#define CFG_NONE SIZE_MAX
/* Room for floe_config__quote(): 40 bytes of text, escapes, "..." and quotes. */
#define CFG_QUOTE_MAX 64

struct cfg_section {
        char *name;
        size_t file;
        unsigned line;
};

struct cfg_entry {
        char *key;         /* "key\0value\0" in one allocation */
        const char *value; /* points into key */
        size_t section;
        size_t file;
        size_t prev; /* entry of an earlier file this one overrides, or CFG_NONE */
        unsigned line;
        uint32_t hash;
        bool overridden;
};

struct floe_config {
        struct floe_config_limits limits;
        char **files; /* names as given to the loader */
        size_t n_files, alloc_files;
        struct cfg_section *sections;
        size_t n_sections, alloc_sections;
        struct cfg_entry *entries; /* in reading order */
        size_t n_entries, alloc_entries;
};

uint32_t floe_config__hash(const char *s, size_t n);
size_t floe_config__find_section(const struct floe_config *cfg, const char *name, size_t n);
/* The latest entry of section/key, or CFG_NONE. */
size_t floe_config__find_entry(const struct floe_config *cfg, size_t section, const char *key,
                               size_t n, uint32_t hash);
/* Fills err (if not NULL) and returns r. errno is preserved for "%m". */
int floe_config__error(struct floe_config_error *err, const char *file, unsigned line, int r,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Length of the valid UTF-8 sequence at s, 0 if invalid. */
size_t floe_config__utf8_len(const char *s, size_t n);
/* s as a double-quoted, escaped, shortened string for messages; returns buf
 * of CFG_QUOTE_MAX bytes. */
const char *floe_config__quote(const char *s, size_t n, char buf[static CFG_QUOTE_MAX]);
