/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbox's recovery scanner on arbitrary segment files. The input is one
 * segment file's bytes, or (first byte 'B') a program that builds segments
 * out of well-formed records, foreign and replayed ones, garbage, bad CRCs,
 * cuts and flips. With no meta, a valid meta or a broken one (size % 3).
 * Checks: open always succeeds, every record it keeps reads back with a good
 * CRC in seq order, the tail cut matches the file, and a second open after
 * an append and an ack finds exactly what the first left (idempotent
 * recovery), also when the first open failed part way for lack of memory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "outbox-internal.h"
#include "outbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_EPOCH   0x0123456789abcdefULL
#define MAX_SEGS     8
#define MAX_SEG_SIZE (128U << 10)
#define MAX_RECORDS  8192

static char base[200], dir[260];
static uint8_t frame[1U << 16];

struct seg_file {
        uint64_t name;
        uint8_t *buf;
        size_t len;
};

static void check(int cond)
{
        if (!cond)
                abort();
}

static void rm_dir(const char *path)
{
        struct dirent *de;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;

        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        rmdir(path);
}

static void cleanup(void)
{
        rm_dir(dir);
        rmdir(base);
}

static void write_file(const char *name, const uint8_t *buf, size_t len)
{
        char path[320];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        check(fd >= 0);
        check(len == 0 || outbox_pwrite_full(fd, buf, len, 0) == 0);
        close(fd);
}

static size_t put_record(uint8_t *out, size_t room, uint64_t epoch, uint64_t seq, uint32_t len,
                         uint8_t fill, bool bad_crc)
{
        struct outbox_hdr h = {
                .kind = fill, .len = len, .events = fill, .epoch = epoch, .seq = seq};

        if (room < OUTBOX_HDR_SIZE + (size_t)len)
                return 0;
        memset(out + OUTBOX_HDR_SIZE, fill, len);
        outbox_hdr_encode(&h, out + OUTBOX_HDR_SIZE, out);
        if (bad_crc)
                out[OUTBOX_HDR_SIZE + len - 1] ^= 1;
        return OUTBOX_HDR_SIZE + len;
}

/* Runs the builder program; returns the number of segment files. */
static int build(const uint8_t *p, const uint8_t *end, struct seg_file *segs)
{
        uint64_t seq = 1;
        int n = 1;

        segs[0].name = 1;
        while (p < end) {
                struct seg_file *s = &segs[n - 1];
                uint8_t op = *p++, arg = p < end ? *p++ : 0;
                size_t room = MAX_SEG_SIZE - s->len;

                switch (op & 7) {
                case 0:
                case 1:
                case 2:
                case 4:
                        /* seq moves by -2..+29: replays and gaps too */
                        seq = seq + (op >> 3) >= 2 ? seq + (op >> 3) - 2 : 0;
                        s->len += put_record(s->buf + s->len, room,
                                             (op & 7) == 2 ? FUZZ_EPOCH ^ arg : FUZZ_EPOCH, seq,
                                             (uint32_t)arg + 1, arg, (op & 7) == 4);
                        break;
                case 3: { /* raw bytes from the input */
                        size_t k = (size_t)(end - p) < arg % 64 ? (size_t)(end - p) : arg % 64;

                        if (k <= room) {
                                memcpy(s->buf + s->len, p, k);
                                s->len += k;
                        }
                        p += k;
                        break;
                }
                case 5: /* cut the tail */
                        s->len -= s->len < arg ? s->len : arg;
                        break;
                case 6: /* start a segment; names increase as files are never overwritten */
                        if (n < MAX_SEGS) {
                                segs[n].name =
                                        seq + (op >> 3) > s->name ? seq + (op >> 3) : s->name + 1;
                                segs[n].len = 0;
                                n++;
                        }
                        break;
                default: /* flip a byte */
                        if (s->len > 0)
                                s->buf[((size_t)arg * 131 + op) % s->len] ^= (uint8_t)(op | 1);
                        break;
                }
        }
        return n;
}

/* The held records in order; each reads back, its CRC checked. */
static size_t walk(struct agent_outbox *ob, uint64_t *seqs)
{
        struct agent_outbox_record info;
        uint64_t seq, from = 0;
        size_t n = 0, len;

        while (agent_outbox_next_unacked(ob, from, &seq) == 0) {
                check(seq >= from && seq < agent_outbox_next_seq(ob));
                check(agent_outbox_record_info(ob, seq, &info) == 0);
                check(info.seq == seq && !info.acked && info.len <= sizeof(frame));
                check(agent_outbox_read(ob, seq, frame, sizeof(frame), &len) == 0);
                check(len == info.len);
                check(n < MAX_RECORDS);
                seqs[n++] = seq;
                from = seq + 1;
        }
        return n;
}

static void setup_dir(const struct seg_file *segs, int nseg, int meta_mode, const uint8_t *data,
                      size_t size)
{
        uint8_t meta[OUTBOX_META_SLOT_STRIDE + OUTBOX_META_SLOT_SIZE] = {0};
        char name[OUTBOX_SEG_NAME_LEN + 1];

        rm_dir(dir);
        check(mkdir(dir, 0700) == 0);
        for (int i = 0; i < nseg; i++) {
                outbox_seg_name(segs[i].name, name);
                write_file(name, segs[i].buf, segs[i].len);
        }
        if (meta_mode == 1) {
                struct outbox_meta m = {1, FUZZ_EPOCH, 1, 1};

                outbox_meta_encode(&m, meta);
                outbox_meta_encode(&m, meta + OUTBOX_META_SLOT_STRIDE);
                write_file(OUTBOX_META_NAME, meta, sizeof(meta));
        } else if (meta_mode == 2) {
                for (size_t i = 0; i < sizeof(meta); i++)
                        meta[i] = size > 0 ? data[i % size] : 0;
                write_file(OUTBOX_META_NAME, meta, sizeof(meta));
        }
}

static uint64_t file_bytes(const struct seg_file *segs, int nseg)
{
        uint64_t n = 0;

        for (int i = 0; i < nseg; i++)
                n += segs[i].len;
        return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct seg_file segs[MAX_SEGS];
        static uint64_t seqs1[MAX_RECORDS], seqs2[MAX_RECORDS];
        struct agent_outbox_opts o = {
                .max_bytes = 4U << 20, /* above any input: the append never drops */
                .segment_bytes = 4096,
                .max_record = sizeof(frame),
                .sync = AGENT_OUTBOX_SYNC_NONE,
        };
        struct agent_outbox_stats st1, st2;
        struct agent_outbox *ob = NULL;
        uint64_t allocs, next1, epoch1, seq;
        int nseg = 1, meta_mode = (int)(size % 3), r;
        size_t n1, n2;

        if (!base[0]) {
                const char *tmp = getenv("TMPDIR");

                snprintf(base, sizeof(base), "%s/floe-fuzz-outbox-XXXXXX",
                         access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                         : tmp && *tmp                 ? tmp
                                                       : "/tmp");
                check(mkdtemp(base) != NULL);
                snprintf(dir, sizeof(dir), "%s/ob", base);
                for (int i = 0; i < MAX_SEGS; i++) {
                        segs[i].buf = malloc(MAX_SEG_SIZE);
                        check(segs[i].buf != NULL);
                }
                atexit(cleanup);
        }
        if (size > 0 && data[0] == 'B') {
                if (size > (64U << 10))
                        return 0;
                for (int i = 0; i < MAX_SEGS; i++)
                        segs[i].len = 0;
                nseg = build(data + 1, data + size, segs);
        } else {
                if (size > MAX_SEG_SIZE)
                        return 0;
                segs[0].name = 1;
                memcpy(segs[0].buf, data, size);
                segs[0].len = size;
        }

        setup_dir(segs, nseg, meta_mode, data, size);
        floe_alloc_fail_at(0);
        r = agent_outbox_open(dir, &o, &ob, NULL, 0);
        allocs = floe_alloc_count();
        check(r == 0);
        agent_outbox_stats(ob, &st1);
        /* What is kept and what was cut add up to the files. */
        check(st1.recovered_torn_bytes + st1.bytes == file_bytes(segs, nseg));
        check(meta_mode == 1 ? st1.origin == AGENT_OUTBOX_RESUMED
                             : st1.origin != AGENT_OUTBOX_CREATED);
        check(meta_mode != 1 || agent_outbox_epoch(ob) == FUZZ_EPOCH);
        n1 = walk(ob, seqs1);
        check(n1 == st1.batches && n1 == st1.recovered_batches);
        next1 = agent_outbox_next_seq(ob);
        epoch1 = agent_outbox_epoch(ob);

        /* Append, ack the oldest, reopen: exactly the same records, no new damage. */
        seq = next1;
        memset(frame, 0xa5, 100);
        check(agent_outbox_append(ob, seq, 1, 1, frame, 100) == 0);
        if (n1 > 0)
                check(agent_outbox_ack(ob, epoch1, seqs1[0]) == 0);
        ob = agent_outbox_close(ob);
        check(agent_outbox_open(dir, &o, &ob, NULL, 0) == 0);
        agent_outbox_stats(ob, &st2);
        check(st2.origin == AGENT_OUTBOX_RESUMED && agent_outbox_epoch(ob) == epoch1);
        check(st2.recovered_torn_bytes == 0);
        check(st2.recovered_corrupt_records <= st1.recovered_corrupt_records);
        check(agent_outbox_next_seq(ob) == seq + 1);
        n2 = walk(ob, seqs2);
        check(n2 == (n1 > 0 ? n1 : 1) && seqs2[n2 - 1] == seq);
        for (size_t i = 1; i < n1; i++)
                check(seqs2[i - 1] == seqs1[i]);
        ob = agent_outbox_close(ob);

        /* The same input with one allocation failing in open: a later open
         * still finds the same records and seq. */
        setup_dir(segs, nseg, meta_mode, data, size);
        floe_alloc_fail_at(1 + size % (allocs ? allocs : 1));
        r = agent_outbox_open(dir, &o, &ob, NULL, 0);
        floe_alloc_fail_at(0);
        check(r == 0 || (r == -ENOMEM && ob == NULL));
        ob = agent_outbox_close(ob);
        check(agent_outbox_open(dir, &o, &ob, NULL, 0) == 0);
        n2 = walk(ob, seqs2);
        check(n2 == n1 && memcmp(seqs1, seqs2, n1 * sizeof(*seqs1)) == 0);
        /* Under SYNC_NONE an interrupted open may have reserved seqs already. */
        check(agent_outbox_next_seq(ob) == next1 ||
              agent_outbox_next_seq(ob) == next1 + AGENT_OUTBOX_SEQ_RESERVE);
        check(st1.origin == AGENT_OUTBOX_EPOCH_RESET || agent_outbox_epoch(ob) == epoch1);
        agent_outbox_close(ob);
        return 0;
}
