/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file:// stores: a directory tree. A write goes to a temp file in the target's directory,
 * is fsynced and renamed into place (create-if-absent: renameat2(RENAME_NOREPLACE), or link(2)
 * where the filesystem lacks it), then the directory is fsynced; directories made on the way
 * are fsynced into their parents. Keys are opened relative to the root's fd.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "store-internal.h"

#define FILE_MODE   0644 /* readers (query engines) often run as other users; umask applies */
#define DIR_MODE    0755
#define WRITE_CHUNK (64 * 1024)

struct store_file {
        char *root; /* absolute, no trailing '/' ("" for "/") */
        int rootfd;
        bool fsync;
};

static struct store_file *F(const struct lake_store *s)
{
        return s->impl;
}

static int fail_errno(struct lake_store *s, int r, const char *op, const char *key)
{
        return store_fail(s, r, "%s %s: %s", op, key, strerror(-r));
}

static int fsync_fd(const struct store_file *f, int fd)
{
        if (f->fsync && fsync(fd) < 0)
                return -errno;
        return 0;
}

/* Makes dir (relative to the root, "" is the root) and every missing parent, each fsynced into
 * its parent. */
static int mkdir_p(const struct store_file *f, char *dir)
{
        char *slash;
        int r, pfd;

        if (!*dir)
                return 0;
        if (mkdirat(f->rootfd, dir, DIR_MODE) == 0)
                goto made;
        if (errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        slash = strrchr(dir, '/');
        if (slash) {
                *slash = '\0';
                r = mkdir_p(f, dir);
                *slash = '/';
                if (r < 0)
                        return r;
        }
        if (mkdirat(f->rootfd, dir, DIR_MODE) < 0 && errno != EEXIST)
                return -errno;
made:
        if (!f->fsync)
                return 0;
        slash = strrchr(dir, '/');
        if (slash) {
                *slash = '\0';
                pfd = openat(f->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                *slash = '/';
        } else {
                pfd = openat(f->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (pfd < 0)
                return -errno;
        r = fsync(pfd) < 0 ? -errno : 0;
        close(pfd);
        return r;
}

/* The directory that holds key, made if missing (create): its fd, and where the base name
 * starts in key. */
static int open_parent(const struct store_file *f, const char *key, bool create, int *ret_fd,
                       const char **ret_base)
{
        const char *slash = strrchr(key, '/');
        char dir[1100];
        int fd;

        snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - key) : 1, slash ? key : ".");
        fd = openat(f->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create && slash) {
                int r = mkdir_p(f, dir);

                if (r < 0)
                        return r;
                fd = openat(f->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        *ret_base = slash ? slash + 1 : key;
        return 0;
}

/* A new temp file in dirfd: its fd and name (size bytes). */
static int make_temp(int dirfd, char *name, size_t size)
{
        for (int attempt = 0; attempt < 100; attempt++) {
                uint64_t rnd;
                int fd;

                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        return -EIO;
                snprintf(name, size, "%s%016" PRIx64, STORE_TMP_PREFIX, rnd);
                fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FILE_MODE);
                if (fd >= 0)
                        return fd;
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

static int write_all(int fd, const void *data, size_t len)
{
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Moves the synced temp file into place: replacing, or only where nothing is. */
static int publish(int dirfd, const char *tmp, const char *base, enum lake_put_mode mode)
{
        if (mode == LAKE_PUT_REPLACE)
                return renameat(dirfd, tmp, dirfd, base) < 0 ? -errno : 0;
        if (renameat2(dirfd, tmp, dirfd, base, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        /* no RENAME_NOREPLACE here: link(2) fails with EEXIST just the same */
        if (linkat(dirfd, tmp, dirfd, base, 0) < 0) {
                int r = -errno;

                unlinkat(dirfd, tmp, 0);
                return r;
        }
        unlinkat(dirfd, tmp, 0);
        return 0;
}

static int file_put(struct lake_store *s, const char *key, const void *data, size_t len,
                    enum lake_put_mode mode)
{
        struct store_file *f = F(s);
        const char *base;
        char tmp[64];
        int dirfd = -1, fd = -1, r;

        r = open_parent(f, key, true, &dirfd, &base);
        if (r < 0)
                return fail_errno(s, r, "PUT", key);
        fd = make_temp(dirfd, tmp, sizeof(tmp));
        if (fd < 0) {
                r = fd;
                goto out;
        }
        r = write_all(fd, data, len);
        if (r >= 0)
                r = fsync_fd(f, fd);
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0)
                r = publish(dirfd, tmp, base, mode);
        if (r < 0) {
                unlinkat(dirfd, tmp, 0);
                goto out;
        }
        r = fsync_fd(f, dirfd);
out:
        close(dirfd);
        if (r == -EEXIST)
                return store_fail(s, r, "PUT %s: exists already", key);
        return r < 0 ? fail_errno(s, r, "PUT", key) : 0;
}

/* key opened for reading, a regular file: its fd and stat. */
static int open_object(struct lake_store *s, const char *op, const char *key, struct stat *st)
{
        int fd = openat(F(s)->rootfd, key, O_RDONLY | O_CLOEXEC);

        if (fd < 0) {
                int r = errno == ENOTDIR || errno == EISDIR ? -ENOENT : -errno;

                return r == -ENOENT ? store_fail(s, r, "%s %s: no such key", op, key)
                                    : fail_errno(s, r, op, key);
        }
        if (fstat(fd, st) < 0) {
                int r = -errno;

                close(fd);
                return fail_errno(s, r, op, key);
        }
        if (!S_ISREG(st->st_mode)) {
                close(fd);
                return store_fail(s, -ENOENT, "%s %s: not a file", op, key);
        }
        return fd;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off, size_t *ret_len)
{
        size_t got = 0;

        while (got < len) {
                ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        *ret_len = got;
        return 0;
}

static int file_get(struct lake_store *s, const char *key, size_t max, uint8_t **ret,
                    size_t *ret_len)
{
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t got;
        int fd, r;

        fd = open_object(s, "GET", key, &st);
        if (fd < 0)
                return fd;
        if ((uint64_t)st.st_size > max || (uint64_t)st.st_size >= SIZE_MAX) {
                close(fd);
                return store_fail(s, -EFBIG, "GET %s: %" PRIu64 " bytes, more than %zu", key,
                                  (uint64_t)st.st_size, max);
        }
        buf = floe_malloc((size_t)st.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        r = pread_all(fd, buf, (size_t)st.st_size, 0, &got);
        close(fd);
        if (r < 0)
                return fail_errno(s, r, "GET", key);
        buf[got] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = got;
        return 0;
}

static int file_get_range(struct lake_store *s, const char *key, uint64_t off, size_t len,
                          void *buf, size_t *ret_len)
{
        struct stat st;
        size_t got = 0;
        int fd, r = 0;

        fd = open_object(s, "GET", key, &st);
        if (fd < 0)
                return fd;
        if (off <= (uint64_t)INT64_MAX)
                r = pread_all(fd, buf, len, off, &got);
        close(fd);
        if (r < 0)
                return fail_errno(s, r, "GET", key);
        *ret_len = got;
        return 0;
}

static int file_size(struct lake_store *s, const char *key, uint64_t *ret_size)
{
        struct stat st;

        if (fstatat(F(s)->rootfd, key, &st, 0) < 0) {
                int r = errno == ENOTDIR ? -ENOENT : -errno;

                return r == -ENOENT ? store_fail(s, r, "HEAD %s: no such key", key)
                                    : fail_errno(s, r, "HEAD", key);
        }
        if (!S_ISREG(st.st_mode))
                return store_fail(s, -ENOENT, "HEAD %s: not a file", key);
        *ret_size = (uint64_t)st.st_size;
        return 0;
}

static int file_del(struct lake_store *s, const char *key)
{
        if (unlinkat(F(s)->rootfd, key, 0) < 0 && errno != ENOENT && errno != ENOTDIR)
                return fail_errno(s, errno == EISDIR ? -ENOENT : -errno, "DELETE", key);
        return 0;
}

/* -- listing: each directory's entries sorted as "name" or "name/", so the walk yields keys in
 * byte order ("a.b" < "a/x" because '.' < '/') --------------------------------------------- */

struct entry {
        char *name;
        bool dir;
};

struct walk {
        struct lake_store *s;
        lake_store_list_fn fn;
        void *ud;
        char path[2048]; /* key prefix of the directory being walked */
};

static int entry_cmp(const void *a, const void *b)
{
        const struct entry *x = a, *y = b;
        const unsigned char *p = (const unsigned char *)x->name,
                            *q = (const unsigned char *)y->name;

        for (;; p++, q++) {
                int c = *p ? *p : x->dir ? '/' : 0;
                int d = *q ? *q : y->dir ? '/' : 0;

                if (c != d || c == 0 || c == '/')
                        return c != d ? c - d : 0;
        }
}

static void entries_free(struct entry *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                floe_free(v[i].name);
        floe_free(v);
}

/* The entries of dfd (consumed) whose names start with filter: files and directories only. */
static int read_entries(int dfd, const char *filter, struct entry **ret, size_t *ret_n)
{
        struct entry *v = NULL;
        size_t n = 0, cap = 0, flen = strlen(filter);
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -errno;
        }
        while ((errno = 0, de = readdir(d))) {
                bool dir;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    strncmp(de->d_name, STORE_TMP_PREFIX, strlen(STORE_TMP_PREFIX)) == 0 ||
                    strncmp(de->d_name, filter, flen) != 0)
                        continue;
                if (de->d_type == DT_DIR || de->d_type == DT_REG) {
                        dir = de->d_type == DT_DIR;
                } else if (de->d_type == DT_UNKNOWN) {
                        struct stat st;

                        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                                continue;
                        dir = S_ISDIR(st.st_mode);
                } else {
                        continue; /* symlinks, sockets, ... are not objects */
                }
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        struct entry *nv = floe_reallocarray(v, ncap, sizeof(*v));

                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                        cap = ncap;
                }
                v[n].name = floe_strdup(de->d_name);
                if (!v[n].name) {
                        r = -ENOMEM;
                        break;
                }
                v[n++].dir = dir;
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);
        if (r < 0) {
                entries_free(v, n);
                return r;
        }
        if (n > 1)
                qsort(v, n, sizeof(*v), entry_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
}

static int walk_dir(struct walk *w, int dfd, const char *filter)
{
        size_t plen = strlen(w->path), n = 0;
        struct entry *v = NULL;
        int r;

        /* keep dfd for the stats below: read_entries consumes a duplicate */
        int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);

        if (dup_fd < 0)
                return -errno;
        r = read_entries(dup_fd, filter, &v, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r == 0; i++) {
                size_t nlen = strlen(v[i].name);
                struct stat st;

                if (plen + nlen + 2 > sizeof(w->path))
                        continue; /* longer than any key */
                memcpy(w->path + plen, v[i].name, nlen + 1);
                if (v[i].dir) {
                        int sub = openat(dfd, v[i].name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                        if (sub < 0) {
                                if (errno == ENOENT)
                                        continue; /* removed meanwhile */
                                r = -errno;
                                break;
                        }
                        memcpy(w->path + plen + nlen, "/", 2);
                        r = walk_dir(w, sub, "");
                        close(sub);
                } else if (fstatat(dfd, v[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                           S_ISREG(st.st_mode) && lake_store_key_valid(w->path) == 0) {
                        r = w->fn(w->ud, w->path, (uint64_t)st.st_size,
                                  (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
                }
        }
        w->path[plen] = '\0';
        entries_free(v, n);
        return r;
}

static int file_list(struct lake_store *s, const char *prefix, lake_store_list_fn fn, void *ud)
{
        struct walk w = {.s = s, .fn = fn, .ud = ud};
        const char *slash = strrchr(prefix, '/');
        size_t dlen = slash ? (size_t)(slash - prefix) + 1 : 0;
        int dfd, r;

        snprintf(w.path, sizeof(w.path), "%.*s", (int)dlen, prefix);
        if (dlen) {
                char dir[sizeof(w.path)];

                snprintf(dir, sizeof(dir), "%.*s", (int)dlen - 1, prefix);
                dfd = openat(F(s)->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else {
                dfd = openat(F(s)->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (dfd < 0) {
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                return store_fail(s, -errno, "LIST %s: %s", prefix, strerror(errno));
        }
        r = walk_dir(&w, dfd, prefix + dlen);
        close(dfd);
        if (r < 0 && !s->error[0])
                store_fail(s, r, "LIST %s: %s", prefix, strerror(-r));
        return r;
}

/* -- locations ----------------------------------------------------------------------------- */

static int file_location(const struct lake_store *s, const char *key, char *buf, size_t size)
{
        int n = snprintf(buf, size, "file://%s/%s", F(s)->root, key);

        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* "file://ROOT/key", "file:ROOT/key" (Hadoop's form) or "ROOT/key". */
static int file_key(const struct lake_store *s, const char *location, char *buf, size_t size)
{
        const char *root = F(s)->root, *p = location;
        size_t rlen = strlen(root);
        int n;

        if (strncmp(p, "file://", 7) == 0)
                p += 7;
        else if (strncmp(p, "file:", 5) == 0)
                p += 5;
        if (strncmp(p, root, rlen) != 0 || p[rlen] != '/')
                return -EXDEV;
        n = snprintf(buf, size, "%s", p + rlen + 1);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* -- writers ------------------------------------------------------------------------------- */

struct file_writer {
        int dirfd, fd;
        char tmp[64];
        char *base;
        uint8_t buf[WRITE_CHUNK];
        size_t len;
};

static int file_writer_open(struct lake_store_writer *w, const char *key)
{
        struct store_file *f = F(w->s);
        struct file_writer *fw;
        const char *base;
        int r;

        fw = floe_calloc(1, sizeof(*fw));
        if (!fw)
                return -ENOMEM;
        fw->dirfd = fw->fd = -1;
        fw->base = floe_strdup(strrchr(key, '/') ? strrchr(key, '/') + 1 : key);
        if (!fw->base) {
                floe_free(fw);
                return -ENOMEM;
        }
        r = open_parent(f, key, true, &fw->dirfd, &base);
        if (r >= 0) {
                fw->fd = make_temp(fw->dirfd, fw->tmp, sizeof(fw->tmp));
                r = fw->fd < 0 ? fw->fd : 0;
        }
        if (r < 0) {
                if (fw->dirfd >= 0)
                        close(fw->dirfd);
                floe_free(fw->base);
                floe_free(fw);
                return fail_errno(w->s, r, "PUT", key);
        }
        w->impl = fw;
        return 0;
}

static int file_writer_flush(struct lake_store_writer *w)
{
        struct file_writer *fw = w->impl;
        int r = write_all(fw->fd, fw->buf, fw->len);

        fw->len = 0;
        if (r < 0)
                return fail_errno(w->s, r, "PUT", fw->base);
        return 0;
}

static int file_writer_write(struct lake_store_writer *w, const void *data, size_t len)
{
        struct file_writer *fw = w->impl;
        int r;

        if (fw->len + len <= sizeof(fw->buf)) {
                memcpy(fw->buf + fw->len, data, len);
                fw->len += len;
                return 0;
        }
        r = file_writer_flush(w);
        if (r < 0)
                return r;
        if (len >= sizeof(fw->buf)) {
                r = write_all(fw->fd, data, len);
                return r < 0 ? fail_errno(w->s, r, "PUT", fw->base) : 0;
        }
        memcpy(fw->buf, data, len);
        fw->len = len;
        return 0;
}

static int file_writer_commit(struct lake_store_writer *w)
{
        struct file_writer *fw = w->impl;
        struct store_file *f = F(w->s);
        int r;

        r = file_writer_flush(w);
        if (r < 0)
                return r;
        r = fsync_fd(f, fw->fd);
        if (close(fw->fd) < 0 && r >= 0)
                r = -errno;
        fw->fd = -1;
        if (r >= 0)
                r = publish(fw->dirfd, fw->tmp, fw->base, LAKE_PUT_REPLACE);
        if (r >= 0)
                r = fsync_fd(f, fw->dirfd);
        return r < 0 ? fail_errno(w->s, r, "PUT", fw->base) : 0;
}

static void file_writer_free(struct lake_store_writer *w)
{
        struct file_writer *fw = w->impl;

        if (!fw)
                return;
        if (fw->fd >= 0)
                close(fw->fd);
        if (!w->done)
                unlinkat(fw->dirfd, fw->tmp, 0);
        close(fw->dirfd);
        floe_free(fw->base);
        floe_free(fw);
        w->impl = NULL;
}

/* -- open/close ---------------------------------------------------------------------------- */

static void file_close(struct lake_store *s)
{
        struct store_file *f = F(s);

        if (!f)
                return;
        if (f->rootfd >= 0)
                close(f->rootfd);
        floe_free(f->root);
        floe_free(f);
        s->impl = NULL;
}

/* Makes the absolute directory path and its missing parents. */
static int mkdir_abs(char *path)
{
        if (mkdir(path, DIR_MODE) == 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        char *slash = strrchr(path, '/');
        if (!slash || slash == path)
                return -ENOENT;
        *slash = '\0';
        int r = mkdir_abs(path);
        *slash = '/';
        if (r < 0)
                return r;
        return mkdir(path, DIR_MODE) == 0 || errno == EEXIST ? 0 : -errno;
}

int store_file_open(struct lake_store *s, const char *path, char *why, size_t why_size)
{
        struct store_file *f;
        size_t n;
        int r;

        if (path[0] != '/' || strstr(path, "/../") || strstr(path, "/./") ||
            (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0)) {
                if (why && why_size > 0)
                        snprintf(why, why_size, "file:// needs an absolute path without . or ..");
                return -EINVAL;
        }
        f = floe_calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->rootfd = -1;
        f->fsync = s->opts.fsync;
        f->root = floe_strdup(path);
        if (!f->root) {
                floe_free(f);
                return -ENOMEM;
        }
        n = strlen(f->root);
        while (n > 0 && f->root[n - 1] == '/')
                f->root[--n] = '\0';
        s->impl = f;
        r = n ? mkdir_abs(f->root) : 0;
        if (r >= 0) {
                f->rootfd = open(n ? f->root : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (f->rootfd < 0)
                        r = -errno;
        }
        if (r < 0) {
                if (why && why_size > 0)
                        snprintf(why, why_size, "%s: %s", n ? f->root : "/", strerror(-r));
                file_close(s);
                return r;
        }
        return 0;
}

const struct store_backend store_file_backend = {
        .scheme = "file",
        .close = file_close,
        .location = file_location,
        .key = file_key,
        .put = file_put,
        .get = file_get,
        .get_range = file_get_range,
        .size = file_size,
        .del = file_del,
        .list = file_list,
        .set_class = NULL,
        .writer_open = file_writer_open,
        .writer_write = file_writer_write,
        .writer_commit = file_writer_commit,
        .writer_free = file_writer_free,
};
