/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Helpers shared by test-outbox.c and test-outbox-recovery.c (include after cmocka.h). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "outbox-internal.h"
#include "outbox.h"

static inline int tob_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static inline void tob_rm_rf(const char *path)
{
        nftw(path, tob_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Small segments so that tests cross them. */
static inline struct agent_outbox_opts tob_opts(enum agent_outbox_sync sync)
{
        return (struct agent_outbox_opts){
                .max_bytes = 1 << 20,
                .segment_bytes = 1024,
                .max_record = 512,
                .policy = AGENT_OUTBOX_DROP_OLDEST,
                .sync = sync,
        };
}

static inline struct agent_outbox *tob_open(const char *dir, const struct agent_outbox_opts *o)
{
        struct agent_outbox *ob = NULL;
        char err[256] = "";
        int r = agent_outbox_open(dir, o, &ob, err, sizeof(err));

        if (r < 0)
                fail_msg("agent_outbox_open(%s): %d %s", dir, r, err);
        return ob;
}

/* Frames: 20..219 bytes, a pattern of the seq that never contains the magic. */
static inline size_t tob_frame_len(uint64_t seq)
{
        return 20 + (size_t)(seq * 37 % 200);
}

static inline uint32_t tob_events(uint64_t seq)
{
        return (uint32_t)(seq % 10 + 1);
}

static inline void tob_fill(uint64_t seq, uint8_t *buf, size_t len)
{
        for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)(seq * 31 + i * 7);
}

static inline void tob_append_n(struct agent_outbox *ob, unsigned n)
{
        uint8_t buf[256];

        for (unsigned i = 0; i < n; i++) {
                uint64_t seq = agent_outbox_next_seq(ob);
                size_t len = tob_frame_len(seq);

                tob_fill(seq, buf, len);
                assert_int_equal(
                        agent_outbox_append(ob, seq, (uint8_t)(seq & 1), tob_events(seq), buf, len),
                        0);
                assert_int_equal(agent_outbox_next_seq(ob), seq + 1);
        }
}

static inline void tob_check_record(struct agent_outbox *ob, uint64_t seq)
{
        uint8_t buf[256], want[256];
        size_t len = 0;

        assert_int_equal(agent_outbox_read(ob, seq, buf, sizeof(buf), &len), 0);
        assert_int_equal(len, tob_frame_len(seq));
        tob_fill(seq, want, len);
        assert_memory_equal(buf, want, len);
}

/* The unacked seqs, in order. */
static inline size_t tob_list(const struct agent_outbox *ob, uint64_t *seqs, size_t max)
{
        uint64_t seq, from = 0;
        size_t n = 0;

        while (agent_outbox_next_unacked(ob, from, &seq) == 0) {
                assert_true(seq >= from);
                if (n < max)
                        seqs[n] = seq;
                n++;
                from = seq + 1;
        }
        return n;
}

static inline size_t tob_count_segments(const char *dir)
{
        struct dirent *de;
        uint64_t v;
        size_t n = 0;
        DIR *d = opendir(dir);

        assert_non_null(d);
        while ((de = readdir(d)))
                n += outbox_seg_parse(de->d_name, &v) == 0;
        closedir(d);
        return n;
}

static inline uint8_t *tob_read_file(const char *path, size_t *ret_len)
{
        struct stat sb;
        uint8_t *buf;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &sb), 0);
        buf = malloc((size_t)sb.st_size + 1);
        assert_non_null(buf);
        assert_int_equal(outbox_pread_full(fd, buf, (size_t)sb.st_size, 0), sb.st_size);
        close(fd);
        *ret_len = (size_t)sb.st_size;
        return buf;
}

static inline void tob_write_file(const char *path, const void *data, size_t len)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(outbox_pwrite_full(fd, data, len, 0), 0);
        close(fd);
}

static inline void tob_copy_file(const char *from_dir, const char *to_dir, const char *name)
{
        char path[512];
        uint8_t *buf;
        size_t len;

        snprintf(path, sizeof(path), "%s/%s", from_dir, name);
        buf = tob_read_file(path, &len);
        snprintf(path, sizeof(path), "%s/%s", to_dir, name);
        tob_write_file(path, buf, len);
        free(buf);
}

/* One record as the outbox writes it; returns its size. */
static inline size_t tob_record(uint8_t *out, uint64_t epoch, uint64_t seq)
{
        struct outbox_hdr h = {
                .kind = 0,
                .len = (uint32_t)tob_frame_len(seq),
                .events = tob_events(seq),
                .epoch = epoch,
                .seq = seq,
        };

        tob_fill(seq, out + OUTBOX_HDR_SIZE, h.len);
        outbox_hdr_encode(&h, out + OUTBOX_HDR_SIZE, out);
        return OUTBOX_HDR_SIZE + h.len;
}

/* One temporary directory per test: the outbox in dir, a scratch copy. */
struct fx {
        char base[256];
        char dir[300];
        char copy[300];
};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        const char *tmp = getenv("TMPDIR");

        if (!f)
                return -1;
        snprintf(f->base, sizeof(f->base), "%s/floe-outbox-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(f->base)) {
                free(f);
                return -1;
        }
        snprintf(f->dir, sizeof(f->dir), "%s/ob", f->base);
        snprintf(f->copy, sizeof(f->copy), "%s/copy", f->base);
        floe_alloc_fail_at(0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        floe_alloc_fail_at(0);
        tob_rm_rf(f->base);
        free(f);
        return 0;
}
