/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A file-backed struct ice_io for the Iceberg unit tests: "file:///abs/path" locations,
 * create-if-absent by link(2), listing by a directory walk. Tests only; floe uses
 * uploader/store through ice_io_store().
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "ice-table.h"

struct test_io {
        unsigned puts, gets, fail_put_at; /* fail_put_at: the Nth put fails with -EIO */
        const char *map_from, *map_to;    /* read-only prefix mapping (reference tables) */
};

static inline int tio_path(struct test_io *tio, const char *location, char *buf, size_t size)
{
        int n;

        if (tio->map_from && strncmp(location, tio->map_from, strlen(tio->map_from)) == 0)
                n = snprintf(buf, size, "%s%s", tio->map_to, location + strlen(tio->map_from));
        else if (strncmp(location, "file://", 7) == 0)
                n = snprintf(buf, size, "%s", location + 7);
        else
                return -EXDEV;
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static inline int tio_mkdirs(char *path)
{
        for (char *p = path + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                        *p = '/';
                        return -errno;
                }
                *p = '/';
        }
        return 0;
}

static inline int tio_get(void *ud, const char *location, size_t max, uint8_t **ret,
                          size_t *ret_len)
{
        struct test_io *tio = ud;
        char path[4096];
        struct stat st;
        uint8_t *d;
        ssize_t n;
        int fd, r;

        tio->gets++;
        r = tio_path(tio, location, path, sizeof(path));
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || (size_t)st.st_size > max) {
                close(fd);
                return -EFBIG;
        }
        d = floe_malloc((size_t)st.st_size + 1);
        if (!d) {
                close(fd);
                return -ENOMEM;
        }
        n = read(fd, d, (size_t)st.st_size);
        close(fd);
        if (n != st.st_size) {
                floe_free(d);
                return -EIO;
        }
        d[n] = 0;
        *ret = d;
        *ret_len = (size_t)n;
        return 0;
}

static inline int tio_put(void *ud, const char *location, const void *data, size_t len,
                          bool if_absent)
{
        struct test_io *tio = ud;
        char path[4096], tmp[4200];
        int fd, r;

        if (++tio->puts == tio->fail_put_at)
                return -EIO;
        r = tio_path(tio, location, path, sizeof(path));
        if (r < 0)
                return r;
        r = tio_mkdirs(path);
        if (r < 0)
                return r;
        if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, data, len) != (ssize_t)len) {
                close(fd);
                unlink(tmp);
                return -EIO;
        }
        close(fd);
        if (if_absent) {
                r = link(tmp, path) < 0 ? -errno : 0;
                unlink(tmp);
                return r;
        }
        return rename(tmp, path) < 0 ? -errno : 0;
}

static inline int tio_del(void *ud, const char *location)
{
        char path[4096];
        int r;

        r = tio_path(ud, location, path, sizeof(path));
        if (r < 0)
                return r;
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static inline int tio_walk(const char *dir, ice_io_list_fn fn, void *fn_ud)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        int r = 0;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while (r == 0 && (e = readdir(d))) {
                char path[4096], loc[4200];
                struct stat st;

                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path) ||
                    stat(path, &st) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        r = tio_walk(path, fn, fn_ud);
                        continue;
                }
                if (snprintf(loc, sizeof(loc), "file://%s", path) >= (int)sizeof(loc))
                        continue;
                r = fn(fn_ud, loc, (uint64_t)st.st_size,
                       (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
        }
        closedir(d);
        return r;
}

static inline int tio_list(void *ud, const char *prefix, ice_io_list_fn fn, void *fn_ud)
{
        char path[4096];
        size_t n;
        int r;

        r = tio_path(ud, prefix, path, sizeof(path));
        if (r < 0)
                return r;
        n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
                path[--n] = '\0';
        return tio_walk(path, fn, fn_ud);
}

static inline int tio_size(void *ud, const char *location, uint64_t *ret_size)
{
        char path[4096];
        struct stat st;
        int r;

        r = tio_path(ud, location, path, sizeof(path));
        if (r < 0)
                return r;
        if (stat(path, &st) < 0)
                return -errno;
        *ret_size = (uint64_t)st.st_size;
        return 0;
}

static inline struct ice_io test_io_make(struct test_io *tio)
{
        return (struct ice_io){tio, tio_get, tio_put, tio_del, tio_list, tio_size};
}

/* rm -rf for test directories */
static inline void test_rmtree(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;

        if (!d)
                return;
        while ((e = readdir(d))) {
                char path[4096];
                struct stat st;

                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
                        continue;
                if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                        test_rmtree(path);
                else
                        unlink(path);
        }
        closedir(d);
        rmdir(dir);
}

/* The reference tables: $FLOE_ICEBERG_TABLES, else tests/data/iceberg-tables from the
 * source tree; NULL when neither exists (tests skip). */
static inline const char *test_reference_tables(void)
{
        static char buf[4096];
        const char *env = getenv("FLOE_ICEBERG_TABLES");
        struct stat st;

        if (env && stat(env, &st) == 0)
                return env;
        if (realpath("tests/data/iceberg-tables", buf) && stat(buf, &st) == 0)
                return buf;
        return NULL;
}
