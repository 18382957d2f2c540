/* SPDX-License-Identifier: Apache-2.0 */
/* Typed getters, unknown-key check and iteration of floe-config.h. */
#include "floe-config.h"
#include "floe-alloc.h"
#include "floe-config-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const struct cfg_entry *lookup(const struct floe_config *cfg, const char *section,
                                      const char *key)
{
        size_t s, i, n = strlen(key);

        if (!cfg)
                return NULL;
        s = floe_config__find_section(cfg, section, strlen(section));
        if (s == CFG_NONE)
                return NULL;
        i = floe_config__find_entry(cfg, s, key, n, floe_config__hash(key, n));
        return i == CFG_NONE ? NULL : &cfg->entries[i];
}

static int verror(const char *file, unsigned line, const char *section, const char *key, int r,
                  struct floe_config_error *err, const char *fmt, va_list ap)
{
        char msg[sizeof(err->msg)];
        int k;

        if (!err)
                return r;
        k = snprintf(msg, sizeof(msg), "[%s] %s: ", section, key);
        if (k >= 0 && (size_t)k < sizeof(msg))
                vsnprintf(msg + k, sizeof(msg) - (size_t)k, fmt, ap);
        return floe_config__error(err, file, line, r, "%s", msg);
}

/* "[section] key: <fmt>" at the location of entry e. */
static int value_error(const struct floe_config *cfg, const struct cfg_entry *e, int r,
                       struct floe_config_error *err, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static int value_error(const struct floe_config *cfg, const struct cfg_entry *e, int r,
                       struct floe_config_error *err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        r = verror(cfg->files[e->file], e->line, cfg->sections[e->section].name, e->key, r, err,
                   fmt, ap);
        va_end(ap);
        return r;
}

int floe_config_key_error(const struct floe_config *cfg, const char *section, const char *key,
                          int error, struct floe_config_error *err, const char *fmt, ...)
{
        const struct cfg_entry *e = lookup(cfg, section, key);
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = verror(e ? cfg->files[e->file] : "", e ? e->line : 0, section, key, error, err, fmt,
                   ap);
        va_end(ap);
        return r;
}

int floe_config_check_file(const struct floe_config *cfg, const char *section, const char *key,
                           const char *path, struct floe_config_error *err)
{
        struct stat st;
        int r;

        if (stat(path, &st) < 0) {
                if (errno == EACCES)
                        return 0;
                r = -errno;
                return floe_config_key_error(cfg, section, key, r, err, "%s: %s", path,
                                             strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return floe_config_key_error(cfg, section, key, -EINVAL, err,
                                             "%s: not a regular file", path);
        return 0;
}

int floe_config_locate(const struct floe_config *cfg, const char *section, const char *key,
                       const char **ret_file, unsigned *ret_line)
{
        const struct cfg_entry *e = lookup(cfg, section, key);

        if (!e)
                return -ENOENT;
        if (ret_file)
                *ret_file = cfg->files[e->file];
        if (ret_line)
                *ret_line = e->line;
        return 0;
}

static const char *quote_value(const struct cfg_entry *e, char buf[static CFG_QUOTE_MAX])
{
        return floe_config__quote(e->value, strlen(e->value), buf);
}

int floe_config_get_string(const struct floe_config *cfg, const char *section, const char *key,
                           const char *def, const char **ret)
{
        const struct cfg_entry *e = lookup(cfg, section, key);

        *ret = e ? e->value : def;
        return 0;
}

int floe_config_get_bool(const struct floe_config *cfg, const char *section, const char *key,
                         bool def, bool *ret, struct floe_config_error *err)
{
        const struct cfg_entry *e = lookup(cfg, section, key);
        char q[CFG_QUOTE_MAX];
        bool v = def;

        if (e && floe_parse_bool(e->value, &v) < 0)
                return value_error(cfg, e, -EINVAL, err,
                                   "expected a boolean (yes/no, true/false, on/off, 1/0), got %s",
                                   quote_value(e, q));
        *ret = v;
        return 0;
}

int floe_config_get_int64(const struct floe_config *cfg, const char *section, const char *key,
                          int64_t def, int64_t min, int64_t max, int64_t *ret,
                          struct floe_config_error *err)
{
        const struct cfg_entry *e = lookup(cfg, section, key);
        char q[CFG_QUOTE_MAX];
        int64_t v;
        int r;

        if (!e) {
                *ret = def;
                return 0;
        }
        r = floe_parse_int64(e->value, &v);
        if (r == -EINVAL)
                return value_error(cfg, e, r, err, "expected an integer, got %s",
                                   quote_value(e, q));
        if (r < 0 || v < min || v > max)
                return value_error(cfg, e, -ERANGE, err, "%s out of range %" PRId64 "..%" PRId64,
                                   quote_value(e, q), min, max);
        *ret = v;
        return 0;
}

int floe_config_get_uint64(const struct floe_config *cfg, const char *section, const char *key,
                           uint64_t def, uint64_t min, uint64_t max, uint64_t *ret,
                           struct floe_config_error *err)
{
        const struct cfg_entry *e = lookup(cfg, section, key);
        char q[CFG_QUOTE_MAX];
        uint64_t v;
        int r;

        if (!e) {
                *ret = def;
                return 0;
        }
        r = floe_parse_uint64(e->value, &v);
        if (r == -EINVAL)
                return value_error(cfg, e, r, err, "expected a non-negative integer, got %s",
                                   quote_value(e, q));
        if (r < 0 || v < min || v > max)
                return value_error(cfg, e, -ERANGE, err, "%s out of range %" PRIu64 "..%" PRIu64,
                                   quote_value(e, q), min, max);
        *ret = v;
        return 0;
}

int floe_config_get_double(const struct floe_config *cfg, const char *section, const char *key,
                           double def, double min, double max, double *ret,
                           struct floe_config_error *err)
{
        const struct cfg_entry *e = lookup(cfg, section, key);
        char q[CFG_QUOTE_MAX];
        double v;
        int r;

        if (!e) {
                *ret = def;
                return 0;
        }
        r = floe_parse_double(e->value, &v);
        if (r == -EINVAL)
                return value_error(cfg, e, r, err, "expected a number like 0.25 or 1e-3, got %s",
                                   quote_value(e, q));
        if (r < 0 || !(v >= min && v <= max))
                return value_error(cfg, e, -ERANGE, err, "%s out of range %g..%g",
                                   quote_value(e, q), min, max);
        *ret = v;
        return 0;
}

int floe_config_get_size(const struct floe_config *cfg, const char *section, const char *key,
                         uint64_t def, uint64_t min, uint64_t max, uint64_t *ret,
                         struct floe_config_error *err)
{
        const struct cfg_entry *e = lookup(cfg, section, key);
        char q[CFG_QUOTE_MAX], a[32], b[32];
        uint64_t v;
        int r;

        if (!e) {
                *ret = def;
                return 0;
        }
        r = floe_parse_size(e->value, &v);
        if (r == -EINVAL)
                return value_error(cfg, e, r, err, "expected a size like 64MiB or 10kB, got %s",
                                   quote_value(e, q));
        if (r < 0 || v < min || v > max)
                return value_error(cfg, e, -ERANGE, err, "%s out of range %s..%s",
                                   quote_value(e, q), floe_format_size(min, a, sizeof(a)),
                                   floe_format_size(max, b, sizeof(b)));
        *ret = v;
        return 0;
}

int floe_config_get_duration(const struct floe_config *cfg, const char *section, const char *key,
                             uint64_t def, uint64_t min, uint64_t max, uint64_t *ret_us,
                             struct floe_config_error *err)
{
        const struct cfg_entry *e = lookup(cfg, section, key);
        char q[CFG_QUOTE_MAX], a[64], b[64];
        uint64_t v;
        int r;

        if (!e) {
                *ret_us = def;
                return 0;
        }
        r = floe_parse_duration(e->value, &v);
        if (r == -EINVAL)
                return value_error(cfg, e, r, err, "expected a duration like 500ms or 15m, got %s",
                                   quote_value(e, q));
        if (r < 0 || v < min || v > max)
                return value_error(cfg, e, -ERANGE, err, "%s out of range %s..%s",
                                   quote_value(e, q), floe_format_duration(min, a, sizeof(a)),
                                   floe_format_duration(max, b, sizeof(b)));
        *ret_us = v;
        return 0;
}

int floe_config_get_enum(const struct floe_config *cfg, const char *section, const char *key,
                         const char *const *names, int def, int *ret, struct floe_config_error *err)
{
        const struct cfg_entry *e = lookup(cfg, section, key);
        char q[CFG_QUOTE_MAX], list[160];
        size_t off = 0;

        if (!e) {
                *ret = def;
                return 0;
        }
        for (int i = 0; names[i]; i++) {
                if (strcmp(names[i], e->value) == 0) {
                        *ret = i;
                        return 0;
                }
        }
        list[0] = '\0';
        for (size_t i = 0; names[i] && off < sizeof(list); i++) {
                int k = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", names[i]);

                if (k < 0)
                        break;
                off += (size_t)k;
        }
        return value_error(cfg, e, -EINVAL, err, "expected one of %s; got %s", list,
                           quote_value(e, q));
}

static bool is_known(const struct floe_config_key *known, const char *section, const char *key)
{
        for (; known->section; known++)
                if (strcmp(known->section, section) == 0 &&
                    (!key || (known->key && strcmp(known->key, key) == 0)))
                        return true;
        return false;
}

static bool is_listed(const char *const *sections, const char *name)
{
        for (; sections && *sections; sections++)
                if (strcmp(*sections, name) == 0)
                        return true;
        return !sections;
}

static int check_known(const struct floe_config *cfg, const struct floe_config_key *known,
                       const char *const *sections, struct floe_config_error *err)
{
        if (!cfg)
                return 0;
        for (size_t i = 0; i < cfg->n_entries; i++) {
                const struct cfg_entry *e = &cfg->entries[i];
                const char *section = cfg->sections[e->section].name;

                if (is_listed(sections, section) && !is_known(known, section, e->key))
                        return floe_config__error(err, cfg->files[e->file], e->line, -EINVAL,
                                                  "unknown key [%s] %s", section, e->key);
        }
        /* All keys are known, so only sections without keys can be left. */
        for (size_t i = 0; i < cfg->n_sections; i++) {
                const struct cfg_section *s = &cfg->sections[i];

                if (is_listed(sections, s->name) && !is_known(known, s->name, NULL))
                        return floe_config__error(err, cfg->files[s->file], s->line, -EINVAL,
                                                  "unknown section [%s]", s->name);
        }
        return 0;
}

int floe_config_check_known(const struct floe_config *cfg, const struct floe_config_key *known,
                            struct floe_config_error *err)
{
        return check_known(cfg, known, NULL, err);
}

int floe_config_check_known_in(const struct floe_config *cfg, const struct floe_config_key *known,
                               const char *const *sections, struct floe_config_error *err)
{
        static const char *const none[] = {NULL};

        return check_known(cfg, known, sections ? sections : none, err);
}

int floe_config_foreach_section(const struct floe_config *cfg, const char *prefix,
                                floe_config_section_fn fn, void *userdata)
{
        size_t n = prefix ? strlen(prefix) : 0;

        if (!cfg)
                return 0;
        for (size_t i = 0; i < cfg->n_sections; i++) {
                const char *name = cfg->sections[i].name;
                int r;

                if (strncmp(name, prefix ? prefix : "", n) != 0)
                        continue;
                r = fn(name, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}

int floe_config_foreach_key(const struct floe_config *cfg, const char *section,
                            floe_config_key_fn fn, void *userdata)
{
        size_t s;

        if (!cfg)
                return 0;
        s = floe_config__find_section(cfg, section, strlen(section));
        if (s == CFG_NONE)
                return 0;
        for (size_t i = 0; i < cfg->n_entries; i++) {
                const struct cfg_entry *e = &cfg->entries[i];
                int r;

                if (e->section != s || e->overridden)
                        continue;
                r = fn(cfg->sections[s].name, e->key, e->value, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}
