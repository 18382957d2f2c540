/* SPDX-License-Identifier: Apache-2.0 */
/* Outbox recovery: meta damage, foreign records, seq reservation, memory
 * bounds, allocation failures, and kill -9 of a writer at random moments. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "test-outbox.h"

static void flip_meta(const char *dir, uint64_t off)
{
        char path[400];
        uint8_t x = 0;
        int fd;

        snprintf(path, sizeof(path), "%s/meta", dir);
        fd = open(path, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, &x, 1, (off_t)off), 1);
        x ^= 0x10;
        assert_int_equal(pwrite(fd, &x, 1, (off_t)off), 1);
        close(fd);
}

static void expect_list(const struct agent_outbox *ob, uint64_t first, uint64_t last)
{
        uint64_t seqs[64];
        size_t n = tob_list(ob, seqs, ELEMENTSOF(seqs));

        assert_int_equal(n, last - first + 1);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(seqs[i], first + i);
}

static void test_corrupt_meta(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint64_t epoch;
        char path[400];

        ob = tob_open(f->dir, &o);
        epoch = agent_outbox_epoch(ob);
        tob_append_n(ob, 5);
        assert_int_equal(agent_outbox_ack(ob, epoch, 1), 0);
        assert_int_equal(agent_outbox_ack(ob, epoch, 2), 0);
        agent_outbox_close(ob);

        /* One slot bad: the other has the same state. */
        flip_meta(f->dir, 20);
        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.origin, AGENT_OUTBOX_RESUMED);
        assert_int_equal(st.meta_bad_slots, 1);
        assert_int_equal(agent_outbox_epoch(ob), epoch);
        assert_int_equal(agent_outbox_next_seq(ob), 6);
        expect_list(ob, 3, 5);
        agent_outbox_close(ob);

        /* Both bad: epoch from the records, seq past them, acks forgotten. */
        flip_meta(f->dir, 20);
        flip_meta(f->dir, OUTBOX_META_SLOT_STRIDE + 30);
        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.origin, AGENT_OUTBOX_META_REBUILT);
        assert_int_equal(st.meta_bad_slots, 2);
        assert_int_equal(agent_outbox_epoch(ob), epoch);
        assert_int_equal(agent_outbox_next_seq(ob), 6);
        expect_list(ob, 1, 5);
        agent_outbox_close(ob);

        /* Meta gone, segments there: the same. */
        snprintf(path, sizeof(path), "%s/meta", f->dir);
        assert_int_equal(unlink(path), 0);
        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.origin, AGENT_OUTBOX_META_REBUILT);
        assert_int_equal(st.meta_bad_slots, 0);
        assert_int_equal(agent_outbox_epoch(ob), epoch);
        for (uint64_t s = 1; s <= 5; s++)
                assert_int_equal(agent_outbox_ack(ob, epoch, s), 0);
        agent_outbox_close(ob);
        assert_int_equal(tob_count_segments(f->dir), 0);

        /* Meta truncated to its first slot. */
        assert_int_equal(truncate(path, OUTBOX_META_SLOT_SIZE), 0);
        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.origin, AGENT_OUTBOX_RESUMED);
        assert_int_equal(st.meta_bad_slots, 1);
        assert_int_equal(agent_outbox_next_seq(ob), 6);
        agent_outbox_close(ob);

        /* Both bad and nothing else to go by: a new epoch, reported. */
        flip_meta(f->dir, 20);
        flip_meta(f->dir, OUTBOX_META_SLOT_STRIDE + 30);
        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.origin, AGENT_OUTBOX_EPOCH_RESET);
        assert_int_not_equal(agent_outbox_epoch(ob), epoch);
        assert_int_equal(agent_outbox_next_seq(ob), 1);
        assert_string_equal(agent_outbox_origin_name(st.origin), "epoch-reset");
        agent_outbox_close(ob);
}

static void test_foreign_records(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint8_t seg[1024];
        uint64_t epoch;
        char path[400];
        size_t n = 0;

        ob = tob_open(f->dir, &o);
        epoch = agent_outbox_epoch(ob);
        tob_append_n(ob, 3);
        agent_outbox_close(ob);

        /* seg-4: ours 4, another epoch's 5, ours 6, a replayed 6. */
        n += tob_record(seg + n, epoch, 4);
        n += tob_record(seg + n, epoch ^ 1, 5);
        n += tob_record(seg + n, epoch, 6);
        n += tob_record(seg + n, epoch, 6);
        assert_true(n + 300 < sizeof(seg));
        snprintf(path, sizeof(path), "%s/seg-0000000000000004.log", f->dir);
        tob_write_file(path, seg, n);
        /* And a record of another stream alone in a segment. */
        snprintf(path, sizeof(path), "%s/seg-0000000000000009.log", f->dir);
        tob_write_file(path, seg + OUTBOX_HDR_SIZE + tob_frame_len(4),
                       OUTBOX_HDR_SIZE + tob_frame_len(5));

        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        /* 5 sits between good records; the replayed 6 ends seg-4; seg-9 is all foreign. */
        assert_int_equal(st.recovered_corrupt_records, 1);
        assert_int_equal(st.recovered_torn_bytes,
                         2 * OUTBOX_HDR_SIZE + tob_frame_len(6) + tob_frame_len(5));
        assert_int_equal(tob_count_segments(f->dir), 2); /* seg-9 is gone */
        /* The name said seq 9 was about to be used: never reuse it. */
        assert_int_equal(agent_outbox_next_seq(ob), 9);
        assert_int_equal(tob_list(ob, (uint64_t[8]){0}, 8), 5);
        for (uint64_t s = 1; s <= 6; s++)
                if (s != 5)
                        tob_check_record(ob, s);
        agent_outbox_close(ob);
}

static void test_sync_none_reserve(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_NONE);
        struct agent_outbox *ob;

        ob = tob_open(f->dir, &o);
        tob_append_n(ob, 3);
        /* What a power cut now could leave: meta, and writeback maybe lost. */
        assert_int_equal(mkdir(f->copy, 0700), 0);
        tob_copy_file(f->dir, f->copy, "meta");
        agent_outbox_close(ob);

        ob = tob_open(f->dir, &o);
        assert_int_equal(agent_outbox_next_seq(ob), 4); /* a clean close is exact */
        agent_outbox_close(ob);

        ob = tob_open(f->copy, &o);
        /* Seqs 1-3 may have been sent: never handed out again. */
        assert_int_equal(agent_outbox_next_seq(ob), 1 + AGENT_OUTBOX_SEQ_RESERVE);
        tob_append_n(ob, AGENT_OUTBOX_SEQ_RESERVE + 5); /* crosses a reservation */
        assert_int_equal(ob->floor, 1 + 3 * AGENT_OUTBOX_SEQ_RESERVE);
        agent_outbox_close(ob);
        ob = tob_open(f->copy, &o);
        assert_int_equal(agent_outbox_next_seq(ob), 2 * AGENT_OUTBOX_SEQ_RESERVE + 6);
        agent_outbox_close(ob);
}

/* Ack progress is persisted when a segment goes, not per ack. */
static void test_lazy_ack_persist(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox *ob;
        uint64_t epoch;
        char name[OUTBOX_SEG_NAME_LEN + 1];

        o.segment_records = 4;
        ob = tob_open(f->dir, &o);
        epoch = agent_outbox_epoch(ob);
        tob_append_n(ob, 12);
        assert_int_equal(agent_outbox_ack(ob, epoch, 5), 0);
        assert_int_equal(agent_outbox_ack(ob, epoch, 6), 0);
        for (uint64_t s = 1; s <= 4; s++)
                assert_int_equal(agent_outbox_ack(ob, epoch, s), 0); /* seg 1-4 goes */
        assert_int_equal(agent_outbox_ack(ob, epoch, 7), 0);

        /* A crash now: meta was written when 1-4 went, with 5 and 6 acked then. */
        assert_int_equal(mkdir(f->copy, 0700), 0);
        tob_copy_file(f->dir, f->copy, "meta");
        for (uint64_t s = 5; s <= 9; s += 4) {
                outbox_seg_name(s, name);
                tob_copy_file(f->dir, f->copy, name);
        }
        agent_outbox_close(ob);
        ob = tob_open(f->copy, &o);
        expect_list(ob, 7, 12); /* 7 is resent: acked after the last meta write */
        agent_outbox_close(ob);
        /* A clean close persists the watermark. */
        ob = tob_open(f->dir, &o);
        expect_list(ob, 8, 12);
        agent_outbox_close(ob);
}

static size_t index_bytes(const struct agent_outbox *ob)
{
        size_t n = ob->seg_cap * sizeof(struct outbox_seg);

        for (size_t i = 0; i < ob->nseg; i++)
                n += ob->segs[i].cap * sizeof(struct outbox_rec);
        return n;
}

static void test_backlog_bounded(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_NONE);
        struct agent_outbox_record info;
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint64_t seq, from = 0, n = 0, allocs, segs;
        uint8_t buf[256];
        size_t len;

        o.segment_bytes = 64 << 10;
        o.max_bytes = 64 << 20;
        ob = tob_open(f->dir, &o);
        floe_alloc_fail_at(0);
        tob_append_n(ob, 10000);
        allocs = floe_alloc_count();
        agent_outbox_stats(ob, &st);
        assert_true(st.segments > 10);
        /* One index per new segment, one shrink when it is sealed: nothing per append. */
        assert_true(allocs <= 2 * st.segments);
        agent_outbox_close(ob);

        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.batches, 10000);
        /* 16 bytes per record, the active segment's full index, the segment table. */
        assert_true(index_bytes(ob) <= 16 * (10000 + ob->opts.segment_records) +
                                               ob->seg_cap * sizeof(struct outbox_seg));
        floe_alloc_fail_at(0);
        while (agent_outbox_next_unacked(ob, from, &seq) == 0) {
                assert_int_equal(agent_outbox_record_info(ob, seq, &info), 0);
                assert_int_equal(agent_outbox_read(ob, seq, buf, sizeof(buf), &len), 0);
                assert_int_equal(len, tob_frame_len(seq));
                assert_int_equal(buf[len - 1], (uint8_t)(seq * 31 + (len - 1) * 7));
                from = seq + 1;
                n++;
        }
        assert_int_equal(n, 10000);
        assert_int_equal(floe_alloc_count(), 0);

        /* Steady state: ack the oldest, append a new one. */
        agent_outbox_stats(ob, &st);
        segs = st.segments;
        for (int i = 0; i < 3000; i++) {
                assert_int_equal(agent_outbox_next_unacked(ob, 0, &seq), 0);
                assert_int_equal(agent_outbox_ack(ob, agent_outbox_epoch(ob), seq), 0);
                tob_append_n(ob, 1);
        }
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.batches, 10000);
        allocs = floe_alloc_count();
        assert_true(allocs > 0);
        assert_true(allocs <= 2 * (st.segments + 10)); /* new segments only */
        assert_true(st.segments <= segs + 1);
        agent_outbox_close(ob);
}

static void test_alloc_failure_open(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_NONE);
        struct agent_outbox *ob;
        char path[400], err[200];
        uint64_t n, fails = 0;
        int fd, r;

        /* A fresh directory. */
        for (n = 1;; n++) {
                ob = NULL;
                floe_alloc_fail_at(n);
                r = agent_outbox_open(f->copy, &o, &ob, err, sizeof(err));
                floe_alloc_fail_at(0);
                if (r == 0)
                        break;
                assert_int_equal(r, -ENOMEM);
                assert_null(ob);
                fails++;
        }
        assert_true(fails >= 2);
        agent_outbox_close(ob);

        /* A used one: several segments, acks, a torn tail, a bad meta slot. */
        ob = tob_open(f->dir, &o);
        tob_append_n(ob, 30);
        assert_int_equal(agent_outbox_ack(ob, agent_outbox_epoch(ob), 1), 0);
        agent_outbox_close(ob);
        flip_meta(f->dir, 12);
        snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", f->dir);
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "torn", 4), 4);
        close(fd);
        fails = 0;
        for (n = 1;; n++) {
                ob = NULL;
                floe_alloc_fail_at(n);
                r = agent_outbox_open(f->dir, &o, &ob, err, sizeof(err));
                floe_alloc_fail_at(0);
                if (r == 0)
                        break;
                assert_int_equal(r, -ENOMEM);
                assert_null(ob);
                fails++;
        }
        assert_true(fails >= 3);
        expect_list(ob, 2, 30);
        for (uint64_t s = 2; s <= 30; s++)
                tob_check_record(ob, s);
        agent_outbox_close(ob);
}

/* xorshift64*: explicit state, reproducible. */
static uint64_t rnd(uint64_t *s)
{
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 2685821657736338717ULL;
}

enum { MSG_APPENDED = 1, MSG_ACKING = 2, CRASH_MAX_SEQ = 1 << 16 };

struct msg {
        uint64_t type;
        uint64_t seq;
};

static void report(int fd, uint64_t type, uint64_t seq)
{
        struct msg m = {type, seq};

        if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
                _exit(4);
}

/* Appends (and acks the oldest now and then) until killed. */
static void crash_child(const char *dir, int wfd)
{
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox *ob = NULL;
        uint8_t buf[256];

        o.segment_bytes = 2048;
        o.max_bytes = 64 << 20; /* never full: nothing is dropped */
        if (agent_outbox_open(dir, &o, &ob, NULL, 0) < 0)
                _exit(2);
        for (;;) {
                uint64_t seq = agent_outbox_next_seq(ob), old;
                size_t len = tob_frame_len(seq);

                if (seq >= CRASH_MAX_SEQ)
                        _exit(0);
                tob_fill(seq, buf, len);
                if (agent_outbox_append(ob, seq, 1, tob_events(seq), buf, len) < 0)
                        _exit(3);
                report(wfd, MSG_APPENDED, seq);
                if (seq % 3 == 0 && agent_outbox_next_unacked(ob, 0, &old) == 0 && old + 10 < seq) {
                        /* Before the ack: once acked a record may go at any moment. */
                        report(wfd, MSG_ACKING, old);
                        if (agent_outbox_ack(ob, agent_outbox_epoch(ob), old) < 0)
                                _exit(5);
                }
        }
}

static void crash_note(const struct msg *m, uint8_t *acked, uint64_t *reported, uint64_t *total,
                       uint64_t next)
{
        if (m->type == MSG_APPENDED) {
                /* A seq is never handed out twice. */
                assert_true(m->seq > *reported && m->seq >= next);
                *reported = m->seq;
                (*total)++;
        } else {
                assert_int_equal(m->type, MSG_ACKING);
                acked[m->seq] = 1;
        }
}

static void test_crash_consistency(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        static uint8_t acked[CRASH_MAX_SEQ];
        uint64_t rng = 0x9e3779b97f4a7c15ULL, reported = 0, total = 0;
        uint64_t epoch = 0, next = 1;

        memset(acked, 0, sizeof(acked));
        o.segment_bytes = 2048;
        o.max_bytes = 64 << 20;
        for (int round = 0; round < 25; round++) {
                /* Let the child get some appends done (none: a kill in open), then
                 * kill it up to 3 ms later: whatever speed the machine runs at. */
                uint64_t want = rnd(&rng) % 40, got = 0;
                struct timespec ts = {0, (long)(rnd(&rng) % 3000000)};
                struct agent_outbox_stats st;
                struct agent_outbox *ob;
                uint64_t seq, from = 0, held = 0, last, total0 = total;
                struct msg m;
                int p[2], status;
                pid_t pid;

                assert_int_equal(pipe2(p, O_CLOEXEC), 0);
                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        close(p[0]);
                        crash_child(f->dir, p[1]);
                        _exit(0);
                }
                close(p[1]);
                while (got < want && read(p[0], &m, sizeof(m)) == (ssize_t)sizeof(m)) {
                        crash_note(&m, acked, &reported, &total, next);
                        got += m.type == MSG_APPENDED;
                }
                nanosleep(&ts, NULL);
                kill(pid, SIGKILL);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFSIGNALED(status) || WEXITSTATUS(status) == 0);
                while (read(p[0], &m, sizeof(m)) == (ssize_t)sizeof(m))
                        crash_note(&m, acked, &reported, &total, next);
                close(p[0]);

                ob = tob_open(f->dir, &o);
                agent_outbox_stats(ob, &st);
                if (epoch == 0)
                        epoch = agent_outbox_epoch(ob);
                assert_int_equal(agent_outbox_epoch(ob), epoch);
                assert_int_equal(st.recovered_corrupt_records, 0);
                /* The child went on from next; the append in flight at the kill may be there. */
                last = total > total0 ? reported : next - 1;
                assert_true(agent_outbox_next_seq(ob) == last + 1 ||
                            agent_outbox_next_seq(ob) == last + 2);
                next = agent_outbox_next_seq(ob);
                /* Every append reported done is there and intact, unless acked. */
                for (seq = 1; seq <= reported; seq++)
                        if (!acked[seq])
                                tob_check_record(ob, seq);
                while (agent_outbox_next_unacked(ob, from, &seq) == 0) {
                        assert_true(seq < agent_outbox_next_seq(ob));
                        tob_check_record(ob, seq);
                        from = seq + 1;
                        held++;
                }
                assert_int_equal(held, st.batches);
                agent_outbox_close(ob);
        }
        assert_true(total > 25); /* the children did get work done */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_corrupt_meta, setup, teardown),
                cmocka_unit_test_setup_teardown(test_foreign_records, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sync_none_reserve, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lazy_ack_persist, setup, teardown),
                cmocka_unit_test_setup_teardown(test_backlog_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_alloc_failure_open, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_consistency, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
