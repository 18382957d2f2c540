/* SPDX-License-Identifier: Apache-2.0 */
/* The INI parser on one file from memory, then every getter on every key,
 * the same text again as a drop-in, and one injected allocation failure. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "floe-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const enum_names[] = {"none", "zstd", "gzip", "on", NULL};

struct walk {
        const struct floe_config *cfg;
        const char *file; /* where winning values must come from */
};

static void check(int cond)
{
        if (!cond)
                abort();
}

static bool utf8_valid(const char *s)
{
        const unsigned char *u = (const unsigned char *)s;

        while (*u) {
                size_t n = *u < 0x80 ? 0 : *u >= 0xf0 ? 3 : *u >= 0xe0 ? 2 : *u >= 0xc0 ? 1 : 9;

                if (n == 9)
                        return false;
                for (u++; n > 0; n--, u++)
                        if ((*u & 0xc0) != 0x80)
                                return false;
        }
        return true;
}

static void check_error(int r, const struct floe_config_error *err)
{
        char buf[600];

        check(r < 0);
        check(memchr(err->file, '\0', sizeof(err->file)) != NULL);
        check(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
        check(err->msg[0] != '\0');
        check(utf8_valid(err->msg));
        floe_config_error_format(err, buf, sizeof(buf));
}

/* A value error names the file and line the key was set at. */
static void check_value_error(const struct walk *w, const char *section, const char *key, int r,
                              const struct floe_config_error *err)
{
        const char *file;
        unsigned line;

        check(r == -EINVAL || r == -ERANGE);
        check_error(r, err);
        check(floe_config_locate(w->cfg, section, key, &file, &line) == 0);
        check(strcmp(err->file, file) == 0 && err->line == line && line > 0);
}

/* What the parsers accept, their formatters print back the same. */
static void check_parsers(const char *s)
{
        char buf[64];
        uint64_t u, u2;
        int64_t i;
        double d;
        bool b;

        floe_parse_bool(s, &b);
        floe_parse_int64(s, &i);
        floe_parse_double(s, &d);
        if (floe_parse_uint64(s, &u) == 0)
                check(floe_parse_int64(s, &i) < 0 || (uint64_t)i == u);
        if (floe_parse_size(s, &u) == 0) {
                check(floe_parse_size(floe_format_size(u, buf, sizeof(buf)), &u2) == 0);
                check(u == u2);
        }
        if (floe_parse_duration(s, &u) == 0) {
                check(floe_parse_duration(floe_format_duration(u, buf, sizeof(buf)), &u2) == 0);
                check(u == u2);
        }
}

static int on_key(const char *section, const char *key, const char *value, void *userdata)
{
        const struct walk *w = userdata;
        const struct floe_config *cfg = w->cfg;
        struct floe_config_error err;
        const char *s, *file;
        unsigned line;
        uint64_t u;
        int64_t i;
        double d;
        bool b;
        int r, e;

        check(floe_config_get_string(cfg, section, key, NULL, &s) == 0 && s == value);
        check(floe_config_locate(cfg, section, key, &file, &line) == 0);
        check(strcmp(file, w->file) == 0);
        check_parsers(value);

        r = floe_config_get_bool(cfg, section, key, false, &b, &err);
        if (r < 0)
                check_value_error(w, section, key, r, &err);
        r = floe_config_get_int64(cfg, section, key, 0, INT64_MIN, INT64_MAX, &i, &err);
        if (r < 0)
                check_value_error(w, section, key, r, &err);
        r = floe_config_get_int64(cfg, section, key, 0, -10, 10, &i, &err);
        if (r == 0)
                check(i >= -10 && i <= 10);
        else
                check_value_error(w, section, key, r, &err);
        r = floe_config_get_uint64(cfg, section, key, 0, 1, 1000, &u, &err);
        if (r == 0)
                check(u >= 1 && u <= 1000);
        else
                check_value_error(w, section, key, r, &err);
        r = floe_config_get_double(cfg, section, key, 0, -1, 1, &d, &err);
        if (r == 0)
                check(d >= -1 && d <= 1);
        else
                check_value_error(w, section, key, r, &err);
        r = floe_config_get_size(cfg, section, key, 0, 1024, 1ULL << 30, &u, &err);
        if (r == 0)
                check(u >= 1024 && u <= 1ULL << 30);
        else
                check_value_error(w, section, key, r, &err);
        r = floe_config_get_duration(cfg, section, key, 0, 1000, 3600000000ULL, &u, &err);
        if (r == 0)
                check(u >= 1000 && u <= 3600000000ULL);
        else
                check_value_error(w, section, key, r, &err);
        r = floe_config_get_enum(cfg, section, key, enum_names, -1, &e, &err);
        if (r == 0)
                check(e >= 0 && e < 4 && strcmp(enum_names[e], value) == 0);
        else
                check_value_error(w, section, key, r, &err);
        return 0;
}

static int on_section(const char *section, void *userdata)
{
        return floe_config_foreach_key(((struct walk *)userdata)->cfg, section, on_key, userdata);
}

static void walk(const struct floe_config *cfg, const char *file)
{
        static const struct floe_config_key known[] = {
                {"agent", "name"}, {"uplink", "url"}, {"uplink", "keepalive"}, {NULL, NULL}};
        struct floe_config_error err;
        struct walk w = {cfg, file};
        int r;

        check(floe_config_foreach_section(cfg, NULL, on_section, &w) == 0);
        r = floe_config_check_known(cfg, known, &err);
        if (r < 0) {
                check(r == -EINVAL);
                check_error(r, &err);
                check(err.line > 0);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data;
        struct floe_config_error err;
        struct floe_config *cfg = NULL;
        char value[128];
        uint64_t allocs;
        int r;

        /* The value parsers on the raw input. */
        snprintf(value, sizeof(value), "%.*s", (int)(size < 127 ? size : 127), text);
        check_parsers(value);

        floe_alloc_fail_at(0);
        r = floe_config_load_string("fuzz.conf", text, size, &cfg, &err);
        allocs = floe_alloc_count();
        if (r < 0) {
                check(cfg == NULL);
                check(r == -EINVAL || r == -EEXIST || r == -E2BIG || r == -EFBIG);
                check_error(r, &err);
                check(strcmp(err.file, "fuzz.conf") == 0);
        } else {
                walk(cfg, "fuzz.conf");
                /* The same text as a drop-in overrides every key, or hits
                 * max_keys and leaves the config as it was. */
                r = floe_config_add_string(cfg, "dropin.conf", text, size, &err);
                if (r == 0) {
                        walk(cfg, "dropin.conf");
                } else {
                        check(r == -E2BIG);
                        check_error(r, &err);
                        walk(cfg, "fuzz.conf");
                }
                cfg = floe_config_free(cfg);
        }

        /* One allocation failure, chosen by the input, fails cleanly: every
         * allocation up to the end or the first error is on an error path. */
        if (allocs > 0) {
                floe_alloc_fail_at(1 + size % allocs);
                r = floe_config_load_string("fuzz.conf", text, size, &cfg, &err);
                floe_alloc_fail_at(0);
                check(r == -ENOMEM && cfg == NULL);
                check_error(r, &err);
        }
        return 0;
}
