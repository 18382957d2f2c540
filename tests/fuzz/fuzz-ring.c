/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring recovery on arbitrary file content, of the current format or of
 * version 1 (converted at open). Input: one mode byte, then the
 * file (zero-padded or cut to 64 KiB unless mode bit 2 keeps its length).
 * Mode bits: 0 fix the header checksum, 1 fix record checksums, positions
 * and sequence numbers along the walk (so the fuzzer gets past them),
 * 2 keep the input length, 3 open with size 0, 4-5 sync mode.
 * agent_ring_open() must refuse cleanly or recover a ring whose every
 * record reads back, that takes new records and reopens without loss.
 * The file lives in a fresh directory under $FUZZ_RING_DIR, else /dev/shm,
 * else $TMPDIR or /tmp.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FILE_SIZE (64u << 10)
#define HDR       4096u
#define WRAP      UINT32_MAX

static char dir[PATH_MAX - 64];
static char path[PATH_MAX];
static uint8_t buf[FILE_SIZE + HDR];

static void check(int cond)
{
        if (!cond)
                abort();
}

static void cleanup(void)
{
        unlink(path);
        rmdir(dir);
}

static void init(void)
{
        const char *tmp = getenv("FUZZ_RING_DIR");

        if (path[0])
                return;
        /* msync and fsync cost nothing on tmpfs: thousands of runs a second */
        if (!tmp || !*tmp)
                tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/fuzz-ring-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        check(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/ring", dir);
        atexit(cleanup);
}

static uint64_t get64(const uint8_t *p)
{
        uint64_t v;

        memcpy(&v, p, 8);
        return v;
}

static uint32_t get32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return v;
}

static void put64(uint8_t *p, uint64_t v)
{
        memcpy(p, &v, 8);
}

static void put32(uint8_t *p, uint32_t v)
{
        memcpy(p, &v, 4);
}

/* The readings in a record of format version 2 (docs/ring.md §3), counted
 * the way the reader walks them; 1 if they do not add up. */
static uint64_t entries(const uint8_t *p, uint32_t len)
{
        uint64_t n = 0;
        uint32_t at = 40 + p[32];

        while (at + 2 <= len) {
                uint8_t fl = p[at];
                uint32_t k = 2 + p[at + 1];

                if (fl & 0x02) {
                        if (at + 4 > len)
                                return n ? n : 1;
                        k += 2 + (uint32_t)(p[at + 2] | p[at + 3] << 8);
                }
                k += (fl & 0x10 ? 0 : 8) + (fl & 0x01 ? 0 : 8);
                at += k;
                n++;
        }
        return n ? n : 1;
}

/* What a writer would have produced along the walk from the older cursor. */
static void fix_records(uint8_t *f, size_t n)
{
        uint64_t cap = n - HDR, e = get64(f + 80), a = get64(f + 88), id = get64(f + 24);
        uint64_t pos = (e < a ? e : a) & ~(uint64_t)7, start = pos, seq = get64(f + 72) & 0xffff;
        uint32_t seed = agent_ring_crc32c(0, &id, 8), version = get32(f + 8);

        while (pos - start < cap) {
                uint64_t off = pos % cap, rem = cap - off;
                uint8_t *p = f + HDR + off;
                uint32_t len = get32(p);

                if (len == WRAP && off > 0) {
                        put32(p + 4, agent_ring_crc32c(seed, &pos, 8));
                        pos += rem;
                        continue;
                }
                if (len < (version == 1 ? 56 : 40) || len > rem)
                        return;
                put64(p + 8, pos);
                put64(p + 16, seq);
                /* version 1: one reading a record; 2: a sensor's readings */
                seq += version == 1 ? 1 : entries(p, len);
                put32(p + 4, agent_ring_crc32c(seed, p + 8, len - 8));
                pos += (len + 7) & ~7u;
        }
}

static int write_file(const uint8_t *content, size_t n)
{
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        int r = 0;

        if (fd < 0)
                return -1;
        /* overwrite in place: cheaper than truncating to 0 first */
        if ((n > 0 && pwrite(fd, content, n, 0) != (ssize_t)n) || ftruncate(fd, (off_t)n) < 0)
                r = -1;
        close(fd);
        return r;
}

/* Every record from pos to the head reads back and is well-formed. */
static uint64_t read_all(struct agent_ring *r, uint64_t pos)
{
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        uint64_t n = 0, last_seq = 0;
        int ret;

        check(agent_ring_iter_init(r, pos, &it) == 0);
        while ((ret = agent_ring_iter_next(&it, &e)) == 0) {
                check(e.rd.sensor_len >= 1 && e.rd.sensor_len <= AGENT_RING_NAME_MAX);
                check(e.rd.metric_len >= 1 && e.rd.metric_len <= AGENT_RING_NAME_MAX);
                check(!e.rd.text == !(e.flags & AGENT_RING_F_TEXT));
                check(e.rd.value_null == !!(e.flags & AGENT_RING_F_NULL));
                check(e.pos >= pos && e.next > e.pos && e.next <= agent_ring_head(r));
                check(n == 0 || e.seq == last_seq + 1);
                check(e.index < e.entries && e.entries <= AGENT_RING_GROUP_MAX);
                last_seq = e.seq;
                n++;
        }
        check(ret == -ENOENT);
        return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const struct agent_reading rd = {.sensor = "fuzz",
                                                .sensor_len = 4,
                                                .metric = "m",
                                                .metric_len = 1,
                                                .ts_us = 1763676000000000LL,
                                                .value = 1.5,
                                                .text = "t",
                                                .text_len = 1};
        struct agent_ring_recovery rec, rec2;
        struct agent_ring *r = NULL;
        uint64_t head, ev, ag, lo, n, appended = 0;
        enum agent_ring_sync_mode sync;
        char err[512] = "";
        uint8_t mode;
        size_t len;
        int ret;

        if (size < 1)
                return 0;
        init();
        mode = data[0];
        data++;
        size--;
        len = mode & 4 ? (size < sizeof(buf) ? size : sizeof(buf)) : FILE_SIZE;
        memset(buf, 0, len);
        memcpy(buf, data, size < len ? size : len);
        if ((mode & 2) && len >= HDR + 4096 && len % 4096 == 0)
                fix_records(buf, len);
        if ((mode & 1) && len >= 44)
                put32(buf + 40, agent_ring_crc32c(0, buf, 40));
        check(write_file(buf, len) == 0);

        sync = (mode >> 4) & 3;
        if (sync == 3)
                sync = AGENT_RING_SYNC_NONE;
        ret = agent_ring_open(path, mode & 8 ? 0 : FILE_SIZE, sync, &r, &rec, err, sizeof(err));
        if (ret < 0) {
                check(r == NULL);
                check(ret == -EBADMSG || ret == -EPROTONOSUPPORT || ret == -ERANGE);
                check(ret != -ERANGE || len != FILE_SIZE);
                check(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
                return 0;
        }
        check(!rec.created);
        head = agent_ring_head(r);
        ev = agent_ring_events_cursor(r);
        ag = agent_ring_agg_cursor(r);
        lo = ev < ag ? ev : ag;
        check(ev <= head && ag <= head && head - lo <= agent_ring_capacity(r));
        check(rec.bytes == head - lo);
        check(read_all(r, lo) == rec.records);
        read_all(r, ev);
        read_all(r, ag);

        /* it takes new records, and they survive a reopen */
        while (appended < 4 && (ret = agent_ring_append(r, &rd, 0, 0, NULL)) == 0)
                appended++;
        check(appended == 4 || ret == -ENOSPC);
        n = read_all(r, lo);
        check(n == rec.records + appended);
        head = agent_ring_head(r);
        agent_ring_close(r);

        ret = agent_ring_open(path, 0, AGENT_RING_SYNC_NONE, &r, &rec2, err, sizeof(err));
        check(ret == 0);
        check(rec2.records == n && rec2.torn_bytes == 0 && rec2.rolled_forward == 0);
        check(agent_ring_head(r) == head && agent_ring_events_cursor(r) == ev &&
              agent_ring_agg_cursor(r) == ag);
        check(read_all(r, lo) == n);
        agent_ring_close(r);
        return 0;
}
