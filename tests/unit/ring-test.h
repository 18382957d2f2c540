/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by test-ring.c and test-ring-format.c: a ring in a fresh directory,
 * readings that derive from a number, file surgery. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "ring.h"

/* docs/ring.md offsets, fixed by the format. */
#define OFF_VERSION 8
#define OFF_CRC     40
#define OFF_HEAD    64
#define OFF_EVENTS  80
#define OFF_AGG     88
#define HDR         4096

struct fixture {
        char dir[PATH_MAX - 64];
        char path[PATH_MAX];
};

static inline int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        const char *tmp = getenv("TMPDIR");

        if (!f)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "%s/test-ring-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        snprintf(f->path, sizeof(f->path), "%s/ring", f->dir);
        *state = f;
        return 0;
}

static inline int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[PATH_MAX];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
                return -1;
        free(f);
        return 0;
}

static struct agent_ring *ring_open(const char *path, uint64_t size, enum agent_ring_sync_mode m,
                                    struct agent_ring_recovery *rec)
{
        struct agent_ring_recovery tmp;
        struct agent_ring *r = NULL;
        char err[256] = "";
        int e = agent_ring_open(path, size, m, &r, rec ? rec : &tmp, err, sizeof(err));

        if (e < 0)
                fail_msg("agent_ring_open: %s (%s)", strerror(-e), err);
        return r;
}

/* Readings n with the same n / group_of share their sensor and arrival time,
 * so that they go into one record (1: every reading in its own record). */
static uint64_t group_of = 1;

/* A reading whose every field derives from n, with varying lengths. */
struct gen {
        char sensor[256];
        char metric[256];
        char text[600];
        struct agent_reading rd;
};

static const struct agent_reading *gen_reading(struct gen *g, uint64_t n)
{
        uint64_t s = n / group_of;
        size_t sl = 1 + s % 23, ml = 1 + (n * 7) % 11, tl = n % 5 == 0 ? (n * 13) % 500 : 0;

        for (size_t i = 0; i < sl; i++)
                g->sensor[i] = (char)('a' + (s + i) % 26);
        for (size_t i = 0; i < ml; i++)
                g->metric[i] = (char)('A' + (n * 3 + i) % 26);
        for (size_t i = 0; i < tl; i++)
                g->text[i] = (char)('0' + (n + i) % 10);
        g->rd = (struct agent_reading){
                .sensor = g->sensor,
                .sensor_len = sl,
                .metric = g->metric,
                .metric_len = ml,
                .ts_us = 1763676000000000LL + (int64_t)n * 1000,
                .value = (double)n * 0.5,
                .value_null = n % 7 == 3,
                .text = n % 5 == 0 ? g->text : NULL,
                .text_len = tl,
        };
        return &g->rd;
}

static inline bool entry_matches(const struct agent_ring_entry *e, uint64_t n)
{
        struct gen g;
        const struct agent_reading *w = gen_reading(&g, n), *rd = &e->rd;

        if (rd->sensor_len != w->sensor_len || memcmp(rd->sensor, w->sensor, w->sensor_len) ||
            rd->metric_len != w->metric_len || memcmp(rd->metric, w->metric, w->metric_len) ||
            rd->ts_us != w->ts_us || rd->value_null != w->value_null ||
            (!w->value_null && rd->value != w->value) || !rd->text != !w->text ||
            e->arrival_us != (int64_t)(n / group_of) + 5)
                return false;
        return !w->text || (rd->text_len == w->text_len && !memcmp(rd->text, w->text, w->text_len));
}

static inline int append_n(struct agent_ring *r, uint64_t n, uint64_t *ret_pos)
{
        struct gen g;

        return agent_ring_append(r, gen_reading(&g, n), n % 3 == 1 ? AGENT_RING_F_TS_STAMPED : 0,
                                 (int64_t)(n / group_of) + 5, ret_pos);
}

/* Readings first .. first + group_of - 1 (first a multiple of group_of) as
 * one record. */
static inline int append_group_n(struct agent_ring *r, uint64_t first, uint64_t *ret_pos)
{
        static struct gen g[64];
        struct agent_reading rd[64];
        uint8_t flags[64];

        assert_true(group_of <= 64 && first % group_of == 0);
        for (uint64_t i = 0; i < group_of; i++) {
                rd[i] = *gen_reading(&g[i], first + i);
                flags[i] = (first + i) % 3 == 1 ? AGENT_RING_F_TS_STAMPED : 0;
        }
        return agent_ring_append_group(r, rd, flags, group_of, (int64_t)(first / group_of) + 5,
                                       ret_pos);
}

static inline int patch(const char *path, off_t off, const void *data, size_t len)
{
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600), r = 0;

        if (fd < 0)
                return -errno;
        if (pwrite(fd, data, len, off) != (ssize_t)len)
                r = -EIO;
        close(fd);
        return r;
}

static inline int peek(const char *path, off_t off, void *data, size_t len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

        if (fd < 0)
                return -errno;
        if (pread(fd, data, len, off) != (ssize_t)len)
                r = -EIO;
        close(fd);
        return r;
}

static inline void expect_open_error(const char *path, uint64_t size, int want, const char *needle)
{
        struct agent_ring_recovery rec = {.records = 12345};
        struct agent_ring *r = NULL;
        char err[256] = "";

        assert_int_equal(
                agent_ring_open(path, size, AGENT_RING_SYNC_NONE, &r, &rec, err, sizeof(err)),
                want);
        assert_null(r);
        assert_int_equal(rec.records, 12345); /* not written on failure */
        assert_non_null(strstr(err, path));
        if (!strstr(err, needle))
                fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}
