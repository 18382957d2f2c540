/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * INI configuration: one main file plus optional drop-ins, typed getters
 * that report the file and line a bad value came from. The format is
 * specified in docs/config.md.
 *
 * Every function taking a `struct floe_config_error *err` fills it only when
 * it fails; err may be NULL.
 */

struct floe_config;

struct floe_config_limits {
        size_t max_line;     /* bytes per line, without the line break (4096) */
        size_t max_file;     /* bytes per file (1 MiB) */
        size_t max_keys;     /* key assignments over all files (10000) */
        size_t max_sections; /* distinct sections (1024) */
        size_t max_dropins;  /* *.conf files in the drop-in directory (256) */
};

struct floe_config_error {
        char file[256]; /* as given to the loader; "" if no file is involved */
        unsigned line;  /* 1-based; 0 for errors about a whole file */
        char msg[256];
};

/* A known key for floe_config_check_known(); arrays end with section NULL. */
struct floe_config_key {
        const char *section;
        const char *key;
};

struct floe_config_limits floe_config_limits_default(void);

/* "FILE:LINE: msg", "FILE: msg" when line is 0, "msg" without a file.
 * Always NUL-terminates (size > 0) and returns buf. */
char *floe_config_error_format(const struct floe_config_error *err, char *buf, size_t size);

/* Loading. limits NULL means floe_config_limits_default(). A failed add
 * leaves cfg as it was before the call. */
int floe_config_new(const struct floe_config_limits *limits, struct floe_config **ret);
int floe_config_add_string(struct floe_config *cfg, const char *name, const char *text, size_t len,
                           struct floe_config_error *err);
int floe_config_add_file(struct floe_config *cfg, const char *path, struct floe_config_error *err);
/* Every *.conf in dir, in strcmp() order, skipping names starting with '.';
 * a missing dir is not an error. */
int floe_config_add_dropins(struct floe_config *cfg, const char *dir,
                            struct floe_config_error *err);
/* new + add_file(path) + add_dropins(dropin_dir) if dropin_dir is not NULL. */
int floe_config_load(const char *path, const char *dropin_dir, struct floe_config **ret,
                     struct floe_config_error *err);
/* A daemon's configuration: path plus the drop-ins in "<path>.d/". */
int floe_config_load_daemon(const char *path, struct floe_config **ret,
                            struct floe_config_error *err);
int floe_config_load_string(const char *name, const char *text, size_t len,
                            struct floe_config **ret, struct floe_config_error *err);
struct floe_config *floe_config_free(struct floe_config *cfg);

/*
 * Typed getters. A key that is not set yields def (not range-checked) and 0;
 * a bad value yields -EINVAL, a value out of [min, max] -ERANGE, with err
 * naming the file and line of the winning assignment. cfg may be NULL (all
 * keys unset). Strings are borrowed and live until floe_config_free().
 */
int floe_config_get_string(const struct floe_config *cfg, const char *section, const char *key,
                           const char *def, const char **ret);
int floe_config_get_bool(const struct floe_config *cfg, const char *section, const char *key,
                         bool def, bool *ret, struct floe_config_error *err);
int floe_config_get_int64(const struct floe_config *cfg, const char *section, const char *key,
                          int64_t def, int64_t min, int64_t max, int64_t *ret,
                          struct floe_config_error *err);
int floe_config_get_uint64(const struct floe_config *cfg, const char *section, const char *key,
                           uint64_t def, uint64_t min, uint64_t max, uint64_t *ret,
                           struct floe_config_error *err);
int floe_config_get_double(const struct floe_config *cfg, const char *section, const char *key,
                           double def, double min, double max, double *ret,
                           struct floe_config_error *err);
/* Bytes. */
int floe_config_get_size(const struct floe_config *cfg, const char *section, const char *key,
                         uint64_t def, uint64_t min, uint64_t max, uint64_t *ret,
                         struct floe_config_error *err);
/* Microseconds. */
int floe_config_get_duration(const struct floe_config *cfg, const char *section, const char *key,
                             uint64_t def, uint64_t min, uint64_t max, uint64_t *ret_us,
                             struct floe_config_error *err);
/* *ret is the index of the value in names (NULL-terminated, case-sensitive). */
int floe_config_get_enum(const struct floe_config *cfg, const char *section, const char *key,
                         const char *const *names, int def, int *ret,
                         struct floe_config_error *err);

/* Where the winning assignment of section/key was read; -ENOENT if unset. */
int floe_config_locate(const struct floe_config *cfg, const char *section, const char *key,
                       const char **ret_file, unsigned *ret_line);
/* For checks the getters cannot do: fills err with the location of
 * section/key and "[section] key: <fmt>", returns error (a negative errno). */
int floe_config_key_error(const struct floe_config *cfg, const char *section, const char *key,
                          int error, struct floe_config_error *err, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));

/* path (the value of section/key) names a regular file that exists; else the error with the
 * key's location. A file this user may not look at (EACCES: `status` or `--check-config` run
 * by an operator) passes: the daemon's own user may read it. */
int floe_config_check_file(const struct floe_config *cfg, const char *section, const char *key,
                           const char *path, struct floe_config_error *err);

/* -EINVAL with the location of the first key (in reading order) not listed
 * in known, or of the first empty section not named in known. */
int floe_config_check_known(const struct floe_config *cfg, const struct floe_config_key *known,
                            struct floe_config_error *err);
/* The same for the keys of the named sections only (NULL-terminated): a tool that reads its
 * sections from another program's configuration ignores the rest. */
int floe_config_check_known_in(const struct floe_config *cfg, const struct floe_config_key *known,
                               const char *const *sections, struct floe_config_error *err);

/* Iteration stops at the first non-zero return of fn, which is returned. */
typedef int (*floe_config_section_fn)(const char *section, void *userdata);
typedef int (*floe_config_key_fn)(const char *section, const char *key, const char *value,
                                  void *userdata);
/* Sections whose name starts with prefix (NULL: all), in order of first appearance. */
int floe_config_foreach_section(const struct floe_config *cfg, const char *prefix,
                                floe_config_section_fn fn, void *userdata);
/* Winning assignments of a section, in the order they were read. */
int floe_config_foreach_key(const struct floe_config *cfg, const char *section,
                            floe_config_key_fn fn, void *userdata);

/*
 * Value parsers, also for command-line flags: 0, -EINVAL on bad syntax,
 * -ERANGE on overflow. The whole string must match, no surrounding spaces.
 */
int floe_parse_bool(const char *s, bool *ret);
int floe_parse_int64(const char *s, int64_t *ret);
int floe_parse_uint64(const char *s, uint64_t *ret);
int floe_parse_double(const char *s, double *ret);
int floe_parse_size(const char *s, uint64_t *ret);
int floe_parse_duration(const char *s, uint64_t *ret_us);

/* Inverse of the parsers, for messages: "64MiB", "1500B", "1h30m", "0".
 * Always NUL-terminate (size > 0) and return buf. */
char *floe_format_size(uint64_t bytes, char *buf, size_t size);
char *floe_format_duration(uint64_t us, char *buf, size_t size);
