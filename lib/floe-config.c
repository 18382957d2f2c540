/* SPDX-License-Identifier: Apache-2.0 */
/* INI syntax, loading and drop-ins (docs/config.md). Getters: floe-config-get.c. */
#include "floe-config.h"
#include "floe-alloc.h"
#include "floe-config-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_CHARS "A-Z a-z 0-9 _ . -"

struct parser {
        struct floe_config *cfg;
        struct floe_config_error *err;
        const char *name;
        size_t file;
        size_t section;
        unsigned line;
};

static void closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

struct floe_config_limits floe_config_limits_default(void)
{
        return (struct floe_config_limits){
                .max_line = 4096,
                .max_file = 1024 * 1024,
                .max_keys = 10000,
                .max_sections = 1024,
                .max_dropins = 256,
        };
}

char *floe_config_error_format(const struct floe_config_error *err, char *buf, size_t size)
{
        if (size == 0)
                return buf;
        if (err->file[0] && err->line > 0)
                snprintf(buf, size, "%s:%u: %s", err->file, err->line, err->msg);
        else if (err->file[0])
                snprintf(buf, size, "%s: %s", err->file, err->msg);
        else
                snprintf(buf, size, "%s", err->msg);
        return buf;
}

int floe_config__error(struct floe_config_error *err, const char *file, unsigned line, int r,
                       const char *fmt, ...)
{
        int saved_errno = errno;
        size_t n, room = sizeof(err->file) - 1;
        va_list ap;

        if (!err)
                return r;
        /* Keep the end of a long path: the file name is what identifies it. */
        n = strlen(file);
        if (n <= room) {
                memcpy(err->file, file, n + 1);
        } else {
                memcpy(err->file, "...", 3);
                memcpy(err->file + 3, file + n - (room - 3), room - 3);
                err->file[room] = '\0';
        }
        err->line = line;
        errno = saved_errno;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        return r;
}

static int parser_error(struct parser *p, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int parser_error(struct parser *p, int r, const char *fmt, ...)
{
        char msg[sizeof(p->err->msg)];
        va_list ap;

        if (!p->err)
                return r;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return floe_config__error(p->err, p->name, p->line, r, "%s", msg);
}

uint32_t floe_config__hash(const char *s, size_t n)
{
        uint32_t h = 2166136261u; /* FNV-1a */

        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char)s[i];
                h *= 16777619u;
        }
        return h;
}

size_t floe_config__find_section(const struct floe_config *cfg, const char *name, size_t n)
{
        for (size_t i = 0; i < cfg->n_sections; i++) {
                const char *s = cfg->sections[i].name;

                if (strncmp(s, name, n) == 0 && s[n] == '\0')
                        return i;
        }
        return CFG_NONE;
}

size_t floe_config__find_entry(const struct floe_config *cfg, size_t section, const char *key,
                               size_t n, uint32_t hash)
{
        for (size_t i = cfg->n_entries; i > 0; i--) {
                const struct cfg_entry *e = &cfg->entries[i - 1];

                if (e->hash == hash && e->section == section && strncmp(e->key, key, n) == 0 &&
                    e->key[n] == '\0')
                        return i - 1;
        }
        return CFG_NONE;
}

/* Grows an array to hold need elements; NULL on failure (array untouched). */
static void *grow(void *array, size_t *alloc, size_t need, size_t elem)
{
        size_t n = *alloc ? *alloc : 8;
        void *p;

        if (need <= *alloc)
                return array;
        while (n < need)
                n = n > SIZE_MAX / 2 ? need : n * 2;
        p = floe_reallocarray(array, n, elem);
        if (!p)
                return NULL;
        *alloc = n;
        return p;
}

int floe_config_new(const struct floe_config_limits *limits, struct floe_config **ret)
{
        struct floe_config *cfg;

        if (limits && limits->max_file > SIZE_MAX / 2)
                return -EINVAL;
        cfg = floe_calloc(1, sizeof(*cfg));
        if (!cfg)
                return -ENOMEM;
        cfg->limits = limits ? *limits : floe_config_limits_default();
        *ret = cfg;
        return 0;
}

struct floe_config *floe_config_free(struct floe_config *cfg)
{
        if (!cfg)
                return NULL;
        for (size_t i = 0; i < cfg->n_entries; i++)
                floe_free(cfg->entries[i].key);
        for (size_t i = 0; i < cfg->n_sections; i++)
                floe_free(cfg->sections[i].name);
        for (size_t i = 0; i < cfg->n_files; i++)
                floe_free(cfg->files[i]);
        floe_free(cfg->entries);
        floe_free(cfg->sections);
        floe_free(cfg->files);
        floe_free(cfg);
        return NULL;
}

static void config_freep(struct floe_config **cfg)
{
        floe_config_free(*cfg);
}

/* Drops everything added after the counts were taken, newest first. */
static void rollback(struct floe_config *cfg, size_t n_files, size_t n_sections, size_t n_entries)
{
        while (cfg->n_entries > n_entries) {
                struct cfg_entry *e = &cfg->entries[--cfg->n_entries];

                if (e->prev != CFG_NONE)
                        cfg->entries[e->prev].overridden = false;
                floe_free(e->key);
        }
        while (cfg->n_sections > n_sections)
                floe_free(cfg->sections[--cfg->n_sections].name);
        while (cfg->n_files > n_files)
                floe_free(cfg->files[--cfg->n_files]);
}

static bool is_name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
}

static bool valid_name(const char *s, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_name_char(s[i]))
                        return false;
        return true;
}

static void trim(const char **s, size_t *n)
{
        while (*n > 0 && (**s == ' ' || **s == '\t')) {
                (*s)++;
                (*n)--;
        }
        while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
                (*n)--;
}

static int parse_section(struct parser *p, const char *s, size_t n)
{
        struct floe_config *cfg = p->cfg;
        struct cfg_section *sections;
        char q[CFG_QUOTE_MAX];
        size_t i;

        if (n < 2 || s[n - 1] != ']')
                return parser_error(p, -EINVAL, "expected \"]\" at the end of the section header");
        s++;
        n -= 2;
        if (!valid_name(s, n))
                return parser_error(p, -EINVAL, "invalid section name %s, allowed: " NAME_CHARS,
                                    floe_config__quote(s, n, q));
        i = floe_config__find_section(cfg, s, n);
        if (i != CFG_NONE) {
                p->section = i;
                return 0;
        }
        if (cfg->n_sections >= cfg->limits.max_sections)
                return parser_error(p, -E2BIG, "too many sections (more than %zu)",
                                    cfg->limits.max_sections);
        sections =
                grow(cfg->sections, &cfg->alloc_sections, cfg->n_sections + 1, sizeof(*sections));
        if (!sections)
                return parser_error(p, -ENOMEM, "out of memory");
        cfg->sections = sections;
        sections[cfg->n_sections].name = floe_strndup(s, n);
        if (!sections[cfg->n_sections].name)
                return parser_error(p, -ENOMEM, "out of memory");
        sections[cfg->n_sections].file = p->file;
        sections[cfg->n_sections].line = p->line;
        p->section = cfg->n_sections++;
        return 0;
}

/* Unescapes the quoted value v (v[0] == '"') into out, NUL-terminated. */
static int unquote(struct parser *p, const char *v, size_t n, char *out)
{
        size_t o = 0;

        for (size_t i = 1; i < n; i++) {
                char c = v[i];

                if (c == '"') {
                        if (i != n - 1)
                                return parser_error(p, -EINVAL,
                                                    "unexpected text after the closing quote");
                        out[o] = '\0';
                        return 0;
                }
                if (c == '\\') {
                        if (++i == n)
                                break;
                        switch (v[i]) {
                        case '"':
                        case '\\':
                                c = v[i];
                                break;
                        case 'n':
                                c = '\n';
                                break;
                        case 't':
                                c = '\t';
                                break;
                        default:
                                if (v[i] > ' ' && v[i] < 0x7f)
                                        return parser_error(p, -EINVAL,
                                                            "invalid escape \"\\%c\", allowed: "
                                                            "\\\" \\\\ \\n \\t",
                                                            v[i]);
                                return parser_error(p, -EINVAL,
                                                    "invalid escape, allowed: \\\" \\\\ \\n \\t");
                        }
                }
                out[o++] = c;
        }
        return parser_error(p, -EINVAL, "missing closing quote");
}

static int parse_assignment(struct parser *p, const char *s, size_t n)
{
        struct floe_config *cfg = p->cfg;
        _cleanup_free_ char *buf = NULL;
        const char *eq = memchr(s, '=', n), *k = s, *v;
        struct cfg_entry *entries;
        char q[CFG_QUOTE_MAX];
        size_t kn, vn, prev;
        uint32_t hash;
        int r;

        if (!eq)
                return parser_error(p, -EINVAL,
                                    "expected \"key = value\", a [section] header or a comment");
        kn = (size_t)(eq - s);
        trim(&k, &kn);
        v = eq + 1;
        vn = n - (size_t)(v - s);
        trim(&v, &vn);
        if (kn == 0)
                return parser_error(p, -EINVAL, "missing key before \"=\"");
        if (!valid_name(k, kn))
                return parser_error(p, -EINVAL, "invalid key %s, allowed: " NAME_CHARS,
                                    floe_config__quote(k, kn, q));
        if (p->section == CFG_NONE)
                return parser_error(p, -EINVAL, "key %s before any [section] header",
                                    floe_config__quote(k, kn, q));
        if (cfg->n_entries >= cfg->limits.max_keys)
                return parser_error(p, -E2BIG, "too many keys (more than %zu)",
                                    cfg->limits.max_keys);

        hash = floe_config__hash(k, kn);
        prev = floe_config__find_entry(cfg, p->section, k, kn, hash);
        if (prev != CFG_NONE && cfg->entries[prev].file == p->file)
                return parser_error(p, -EEXIST, "duplicate key [%s] %s, first set at %s:%u",
                                    cfg->sections[p->section].name, cfg->entries[prev].key, p->name,
                                    cfg->entries[prev].line);

        buf = floe_malloc(kn + 1 + vn + 1);
        if (!buf)
                return parser_error(p, -ENOMEM, "out of memory");
        memcpy(buf, k, kn);
        buf[kn] = '\0';
        if (vn > 0 && v[0] == '"') {
                r = unquote(p, v, vn, buf + kn + 1);
                if (r < 0)
                        return r;
        } else {
                memcpy(buf + kn + 1, v, vn);
                buf[kn + 1 + vn] = '\0';
        }

        entries = grow(cfg->entries, &cfg->alloc_entries, cfg->n_entries + 1, sizeof(*entries));
        if (!entries)
                return parser_error(p, -ENOMEM, "out of memory");
        cfg->entries = entries;
        entries[cfg->n_entries] = (struct cfg_entry){
                .value = buf + kn + 1,
                .section = p->section,
                .file = p->file,
                .prev = prev,
                .line = p->line,
                .hash = hash,
        };
        entries[cfg->n_entries++].key = TAKE_PTR(buf);
        if (prev != CFG_NONE)
                entries[prev].overridden = true;
        return 0;
}

/* Rejects NUL, control characters other than tab, and invalid UTF-8. */
static int check_bytes(struct parser *p, const char *s, size_t n)
{
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char)s[i];
                size_t len = 1;

                if (c == '\0')
                        return parser_error(p, -EINVAL, "NUL byte at column %zu", i + 1);
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return parser_error(p, -EINVAL, "control character 0x%02x at column %zu", c,
                                            i + 1);
                if (c >= 0x80) {
                        len = floe_config__utf8_len(s + i, n - i);
                        if (len == 0)
                                return parser_error(p, -EINVAL, "invalid UTF-8 at column %zu",
                                                    i + 1);
                }
                i += len;
        }
        return 0;
}

static int parse_text(struct parser *p, const char *text, size_t len)
{
        const struct floe_config_limits *limits = &p->cfg->limits;
        size_t pos = 0;
        int r;

        if (len > limits->max_file)
                return parser_error(p, -EFBIG, "file too large (more than %zu bytes)",
                                    limits->max_file);
        if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
                pos = 3;
        while (pos < len) {
                const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - s) : len - pos;

                pos += n + (nl ? 1 : 0);
                if (p->line == UINT_MAX)
                        return parser_error(p, -E2BIG, "too many lines");
                p->line++;
                if (n > 0 && s[n - 1] == '\r')
                        n--;
                if (n > limits->max_line)
                        return parser_error(p, -E2BIG, "line too long (more than %zu bytes)",
                                            limits->max_line);
                r = check_bytes(p, s, n);
                if (r < 0)
                        return r;
                trim(&s, &n);
                if (n == 0 || s[0] == '#' || s[0] == ';')
                        continue;
                if (s[0] == '[')
                        r = parse_section(p, s, n);
                else
                        r = parse_assignment(p, s, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

int floe_config_add_string(struct floe_config *cfg, const char *name, const char *text, size_t len,
                           struct floe_config_error *err)
{
        size_t n_files = cfg->n_files, n_sections = cfg->n_sections, n_entries = cfg->n_entries;
        struct parser p = {
                .cfg = cfg,
                .err = err,
                .name = name,
                .file = cfg->n_files,
                .section = CFG_NONE,
        };
        char **files;
        int r;

        files = grow(cfg->files, &cfg->alloc_files, cfg->n_files + 1, sizeof(*files));
        if (!files)
                return floe_config__error(err, name, 0, -ENOMEM, "out of memory");
        cfg->files = files;
        files[cfg->n_files] = floe_strdup(name);
        if (!files[cfg->n_files])
                return floe_config__error(err, name, 0, -ENOMEM, "out of memory");
        p.name = files[cfg->n_files++];

        r = parse_text(&p, text, len);
        if (r < 0)
                rollback(cfg, n_files, n_sections, n_entries);
        return r;
}

/* Reads at most max bytes; -EFBIG if there are more. */
static int read_file(int dir_fd, const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_(closep) int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap, limit = max + 1;
        struct stat st;

        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        /* st_size is only a hint: procfs files and pipes report 0. */
        cap = S_ISREG(st.st_mode) && st.st_size >= 0 && (uint64_t)st.st_size < limit
                      ? (size_t)st.st_size + 1
                      : 4096;
        if (cap > limit)
                cap = limit;
        buf = floe_malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;

                if (len == cap) {
                        size_t ncap = cap > limit / 2 ? limit : cap * 2;
                        char *nbuf;

                        if (cap == limit)
                                return -EFBIG;
                        nbuf = floe_realloc(buf, ncap);
                        if (!nbuf)
                                return -ENOMEM;
                        buf = nbuf;
                        cap = ncap;
                }
                k = read(fd, buf + len, cap - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int add_file_at(struct floe_config *cfg, int dir_fd, const char *path, const char *name,
                       struct floe_config_error *err)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        r = read_file(dir_fd, path, cfg->limits.max_file, &text, &len);
        if (r == -EFBIG)
                return floe_config__error(err, name, 0, r, "file too large (more than %zu bytes)",
                                          cfg->limits.max_file);
        if (r == -ENOMEM)
                return floe_config__error(err, name, 0, r, "out of memory");
        if (r < 0) {
                errno = -r;
                return floe_config__error(err, name, 0, r, "cannot read: %m");
        }
        return floe_config_add_string(cfg, name, text, len, err);
}

int floe_config_add_file(struct floe_config *cfg, const char *path, struct floe_config_error *err)
{
        return add_file_at(cfg, AT_FDCWD, path, path, err);
}

static bool is_dropin_name(const char *name)
{
        size_t n = strlen(name);

        return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".conf") == 0;
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

struct names {
        char **v;
        size_t n, alloc;
};

static void names_free(struct names *names)
{
        for (size_t i = 0; i < names->n; i++)
                floe_free(names->v[i]);
        floe_free(names->v);
}

static int list_dropins(struct floe_config *cfg, DIR *d, const char *dir, struct names *names,
                        struct floe_config_error *err)
{
        for (;;) {
                struct dirent *de;
                char **v;

                errno = 0;
                de = readdir(d);
                if (!de && errno != 0)
                        return floe_config__error(err, dir, 0, -errno,
                                                  "cannot read drop-in directory: %m");
                if (!de)
                        break;
                if (!is_dropin_name(de->d_name))
                        continue;
                if (names->n >= cfg->limits.max_dropins)
                        return floe_config__error(err, dir, 0, -E2BIG,
                                                  "too many drop-in files (more than %zu)",
                                                  cfg->limits.max_dropins);
                v = grow(names->v, &names->alloc, names->n + 1, sizeof(*v));
                if (!v)
                        return floe_config__error(err, dir, 0, -ENOMEM, "out of memory");
                names->v = v;
                v[names->n] = floe_strdup(de->d_name);
                if (!v[names->n])
                        return floe_config__error(err, dir, 0, -ENOMEM, "out of memory");
                names->n++;
        }
        if (names->n > 0)
                qsort(names->v, names->n, sizeof(*names->v), compare_names);
        return 0;
}

static int add_dropin(struct floe_config *cfg, DIR *d, const char *dir, const char *file,
                      struct floe_config_error *err)
{
        _cleanup_free_ char *name = NULL;
        size_t dn = strlen(dir), fn = strlen(file);
        bool slash = dn > 0 && dir[dn - 1] == '/';

        name = floe_malloc(dn + 1 + fn + 1);
        if (!name)
                return floe_config__error(err, dir, 0, -ENOMEM, "out of memory");
        memcpy(name, dir, dn);
        if (!slash)
                name[dn++] = '/';
        memcpy(name + dn, file, fn + 1);
        return add_file_at(cfg, dirfd(d), file, name, err);
}

int floe_config_add_dropins(struct floe_config *cfg, const char *dir, struct floe_config_error *err)
{
        size_t n_files = cfg->n_files, n_sections = cfg->n_sections, n_entries = cfg->n_entries;
        _cleanup_(names_free) struct names names = {0};
        _cleanup_(closedirp) DIR *d = NULL;
        int fd, r;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return 0;
        if (fd < 0)
                return floe_config__error(err, dir, 0, -errno, "cannot open drop-in directory: %m");
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                errno = -r;
                return floe_config__error(err, dir, 0, r, "cannot open drop-in directory: %m");
        }
        r = list_dropins(cfg, d, dir, &names, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < names.n; i++) {
                r = add_dropin(cfg, d, dir, names.v[i], err);
                if (r < 0) {
                        rollback(cfg, n_files, n_sections, n_entries);
                        return r;
                }
        }
        return 0;
}

int floe_config_load(const char *path, const char *dropin_dir, struct floe_config **ret,
                     struct floe_config_error *err)
{
        _cleanup_(config_freep) struct floe_config *cfg = NULL;
        int r;

        r = floe_config_new(NULL, &cfg);
        if (r < 0)
                return floe_config__error(err, path, 0, r, "out of memory");
        r = floe_config_add_file(cfg, path, err);
        if (r < 0)
                return r;
        if (dropin_dir) {
                r = floe_config_add_dropins(cfg, dropin_dir, err);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(cfg);
        return 0;
}

int floe_config_load_daemon(const char *path, struct floe_config **ret,
                            struct floe_config_error *err)
{
        char dropins[PATH_MAX];

        if (snprintf(dropins, sizeof(dropins), "%s.d", path) >= (int)sizeof(dropins))
                return floe_config__error(err, path, 0, -ENAMETOOLONG, "path too long");
        return floe_config_load(path, dropins, ret, err);
}

int floe_config_load_string(const char *name, const char *text, size_t len,
                            struct floe_config **ret, struct floe_config_error *err)
{
        _cleanup_(config_freep) struct floe_config *cfg = NULL;
        int r;

        r = floe_config_new(NULL, &cfg);
        if (r < 0)
                return floe_config__error(err, name, 0, r, "out of memory");
        r = floe_config_add_string(cfg, name, text, len, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cfg);
        return 0;
}
