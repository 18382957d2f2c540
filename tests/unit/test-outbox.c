/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "outbox-internal.h"
#include "outbox.h"
#include "test-outbox.h"

static void test_crc32c(void **state)
{
        (void)state;
        /* RFC 3720 B.4 check value, and split updates agree. */
        assert_int_equal(outbox_crc32c(0, "123456789", 9), 0xe3069283U);
        assert_int_equal(outbox_crc32c(outbox_crc32c(0, "12345", 5), "6789", 4), 0xe3069283U);
        assert_int_equal(outbox_crc32c(0, "", 0), 0);
}

static void test_names(void **state)
{
        char buf[OUTBOX_SEG_NAME_LEN + 1];
        uint64_t v;

        (void)state;
        outbox_seg_name(0x1234abcdULL, buf);
        assert_string_equal(buf, "seg-000000001234abcd.log");
        assert_int_equal(outbox_seg_parse(buf, &v), 0);
        assert_int_equal(v, 0x1234abcdULL);
        assert_int_equal(outbox_seg_parse("seg-000000001234ABCD.log", &v), -EINVAL);
        assert_int_equal(outbox_seg_parse("seg-000000001234abcd.log.tmp", &v), -EINVAL);
        assert_int_equal(outbox_seg_parse("seg-ffffffffffffffff.log", &v), -EINVAL);
        assert_int_equal(outbox_seg_parse("meta", &v), -EINVAL);
}

static void test_roundtrip(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox_record info;
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint8_t buf[512], small[4];
        uint64_t seq;
        size_t len;
        struct stat sb;
        char path[400];

        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.origin, AGENT_OUTBOX_CREATED);
        assert_int_not_equal(agent_outbox_epoch(ob), 0);
        assert_int_equal(agent_outbox_next_seq(ob), AGENT_OUTBOX_SEQ_FIRST);
        assert_int_equal(stat(f->dir, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0700);

        tob_append_n(ob, 5);
        for (seq = 1; seq <= 5; seq++)
                tob_check_record(ob, seq);
        assert_int_equal(agent_outbox_record_info(ob, 3, &info), 0);
        assert_int_equal(info.len, tob_frame_len(3));
        assert_int_equal(info.events, tob_events(3));
        assert_int_equal(info.kind, 3 & 1);
        assert_false(info.acked);
        assert_int_equal(agent_outbox_read(ob, 3, small, sizeof(small), &len), -ENOBUFS);
        assert_int_equal(agent_outbox_read(ob, 9, buf, sizeof(buf), &len), -ENOENT);
        assert_int_equal(agent_outbox_read(ob, 0, buf, sizeof(buf), &len), -ENOENT);

        /* Only next_seq is accepted, frames must fit max_record and not be empty. */
        tob_fill(6, buf, 10);
        assert_int_equal(agent_outbox_append(ob, 7, 0, 1, buf, 10), -EINVAL);
        assert_int_equal(agent_outbox_append(ob, 5, 0, 1, buf, 10), -EINVAL);
        assert_int_equal(agent_outbox_append(ob, 6, 0, 1, buf, 0), -EMSGSIZE);
        assert_int_equal(agent_outbox_append(ob, 6, 0, 1, buf, o.max_record + 1), -EMSGSIZE);
        assert_int_equal(agent_outbox_append(ob, 6, 0, AGENT_OUTBOX_EVENTS_MAX + 1, buf, 10),
                         -EINVAL);
        assert_int_equal(agent_outbox_next_seq(ob), 6);

        assert_int_equal(agent_outbox_ack(ob, agent_outbox_epoch(ob), 2), 0);
        assert_int_equal(agent_outbox_ack(ob, agent_outbox_epoch(ob), 2), -EALREADY);
        assert_int_equal(agent_outbox_ack(ob, agent_outbox_epoch(ob) + 1, 3), -ENOENT);
        assert_int_equal(agent_outbox_ack(ob, agent_outbox_epoch(ob), 77), -ENOENT);
        assert_int_equal(agent_outbox_record_info(ob, 2, &info), 0);
        assert_true(info.acked);
        assert_int_equal(agent_outbox_next_unacked(ob, 0, &seq), 0);
        assert_int_equal(seq, 1);
        assert_int_equal(agent_outbox_next_unacked(ob, 2, &seq), 0);
        assert_int_equal(seq, 3);
        assert_int_equal(agent_outbox_next_unacked(ob, 6, &seq), -ENOENT);

        agent_outbox_stats(ob, &st);
        assert_int_equal(st.batches, 4);
        assert_int_equal(st.events, tob_events(1) + tob_events(3) + tob_events(4) + tob_events(5));
        assert_int_equal(st.acked_batches, 1);
        assert_int_equal(st.duplicate_acks, 1);
        assert_int_equal(st.unknown_acks, 2);
        assert_int_equal(st.oldest_unacked_seq, 1);
        assert_int_equal(st.segments, 1);

        snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", f->dir);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        assert_int_equal((uint64_t)sb.st_size, st.bytes);
        ob = agent_outbox_close(ob);
        assert_null(ob);
        assert_null(agent_outbox_close(NULL));
}

static void test_lock_and_opts(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_NONE);
        struct agent_outbox *ob, *ob2 = NULL;
        char err[200];

        ob = tob_open(f->dir, &o);
        assert_int_equal(agent_outbox_open(f->dir, &o, &ob2, err, sizeof(err)), -EBUSY);
        assert_null(ob2);
        assert_non_null(strstr(err, "lock"));
        agent_outbox_close(ob);

        o.segment_bytes = 100;
        assert_int_equal(agent_outbox_open(f->dir, &o, &ob2, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "segment_bytes"));
        o = tob_opts(AGENT_OUTBOX_SYNC_NONE);
        o.max_bytes = o.max_record;
        assert_int_equal(agent_outbox_open(f->dir, &o, &ob2, err, sizeof(err)), -EINVAL);
        o = tob_opts(AGENT_OUTBOX_SYNC_NONE);
        o.policy = 7;
        assert_int_equal(agent_outbox_open(f->dir, &o, &ob2, err, sizeof(err)), -EINVAL);
        assert_null(ob2);
        /* Defaults. */
        ob = tob_open(f->dir, NULL);
        agent_outbox_opts_default(&o);
        assert_int_equal(ob->opts.max_bytes, o.max_bytes);
        assert_int_equal(ob->opts.segment_bytes, o.segment_bytes);
        assert_int_equal(ob->opts.max_segments, 130);
        assert_int_equal(ob->opts.sync, AGENT_OUTBOX_SYNC_BATCH);
        assert_int_equal(ob->opts.policy, AGENT_OUTBOX_DROP_OLDEST);
        agent_outbox_close(ob);
}

static void test_seq_continuity(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint64_t epoch;

        ob = tob_open(f->dir, &o);
        epoch = agent_outbox_epoch(ob);
        tob_append_n(ob, 3);
        agent_outbox_close(ob);

        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.origin, AGENT_OUTBOX_RESUMED);
        assert_int_equal(st.meta_bad_slots, 0);
        assert_int_equal(agent_outbox_epoch(ob), epoch);
        assert_int_equal(agent_outbox_next_seq(ob), 4);
        assert_int_equal(st.recovered_batches, 3);
        assert_int_equal(st.recovered_torn_bytes, 0);
        for (uint64_t s = 1; s <= 3; s++)
                tob_check_record(ob, s);
        tob_append_n(ob, 2); /* into the same segment */
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.segments, 1);
        agent_outbox_close(ob);

        ob = tob_open(f->dir, &o);
        assert_int_equal(agent_outbox_next_seq(ob), 6);
        for (uint64_t s = 1; s <= 5; s++)
                tob_check_record(ob, s);
        agent_outbox_close(ob);
}

static void test_all_acked_reopen(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint64_t epoch;

        ob = tob_open(f->dir, &o);
        epoch = agent_outbox_epoch(ob);
        tob_append_n(ob, 40); /* ~ 5 KiB: several 1 KiB segments */
        agent_outbox_stats(ob, &st);
        assert_true(st.segments >= 4);
        for (uint64_t s = 1; s <= 40; s++)
                assert_int_equal(agent_outbox_ack(ob, epoch, s), 0);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.segments, 1); /* the active one stays until close */
        assert_int_equal(st.batches, 0);
        assert_int_equal(st.oldest_unacked_seq, 41);
        agent_outbox_close(ob);
        assert_int_equal(tob_count_segments(f->dir), 0);

        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.origin, AGENT_OUTBOX_RESUMED);
        assert_int_equal(agent_outbox_epoch(ob), epoch);
        assert_int_equal(agent_outbox_next_seq(ob), 41);
        assert_int_equal(st.batches, 0);
        assert_int_equal(st.segments, 0);
        tob_append_n(ob, 1);
        tob_check_record(ob, 41);
        agent_outbox_close(ob);
}

static void test_wiped_dir(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_NONE);
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint64_t epoch;

        ob = tob_open(f->dir, &o);
        epoch = agent_outbox_epoch(ob);
        tob_append_n(ob, 3);
        agent_outbox_close(ob);
        tob_rm_rf(f->dir);

        ob = tob_open(f->dir, &o);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.origin, AGENT_OUTBOX_CREATED);
        assert_int_not_equal(agent_outbox_epoch(ob), epoch);
        assert_int_equal(agent_outbox_next_seq(ob), 1);
        assert_int_equal(st.batches, 0);
        agent_outbox_close(ob);
}

static void test_out_of_order_acks(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        static const uint64_t order[] = {5, 1, 3, 2, 9, 4};
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint64_t epoch, seqs[64];
        size_t n;

        o.segment_records = 4; /* segments 1-4, 5-8, 9-12, 13-16 */
        ob = tob_open(f->dir, &o);
        epoch = agent_outbox_epoch(ob);
        tob_append_n(ob, 16);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.segments, 4);
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                assert_int_equal(agent_outbox_ack(ob, epoch, order[i]), 0);
                agent_outbox_stats(ob, &st);
                /* Segment 1-4 goes with the ack of 4, the last one of it. */
                assert_int_equal(st.segments, order[i] == 4 ? 3 : 4);
                assert_int_equal(st.oldest_unacked_seq, order[i] == 4 ? 6
                                                        : i < 1       ? 1
                                                        : i < 3       ? 2
                                                                      : 4);
        }
        assert_int_equal(agent_outbox_read(ob, 1, (uint8_t[300]){0}, 300, &n), -ENOENT);
        tob_check_record(ob, 6);
        for (uint64_t s = 6; s <= 8; s++)
                assert_int_equal(agent_outbox_ack(ob, epoch, s), 0);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.segments, 2);
        /* Ack 13-16 (the active segment): it stays until it is sealed. */
        for (uint64_t s = 13; s <= 16; s++)
                assert_int_equal(agent_outbox_ack(ob, epoch, s), 0);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.segments, 2);
        tob_append_n(ob, 1); /* 17 rolls; 13-16 is deleted */
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.segments, 2);
        assert_int_equal(agent_outbox_ack(ob, epoch, 11), 0);
        agent_outbox_close(ob);

        /* The watermark (10) persisted; 11 was acked above it: resent (a
         * duplicate, which the uploader drops); 9 is below and stays acked. */
        ob = tob_open(f->dir, &o);
        n = tob_list(ob, seqs, ELEMENTSOF(seqs));
        assert_int_equal(n, 4);
        assert_int_equal(seqs[0], 10);
        assert_int_equal(seqs[1], 11);
        assert_int_equal(seqs[2], 12);
        assert_int_equal(seqs[3], 17);
        agent_outbox_close(ob);
}

static void test_drop_oldest(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint64_t epoch, seqs[64], ev = 0;
        uint8_t buf[200];
        size_t n;

        o.segment_records = 4;
        o.max_segments = 3;
        ob = tob_open(f->dir, &o);
        epoch = agent_outbox_epoch(ob);
        tob_append_n(ob, 12); /* full: 1-4, 5-8, 9-12 */
        assert_int_equal(agent_outbox_ack(ob, epoch, 2), 0);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.segments, 3);
        assert_int_equal(st.dropped_batches, 0);

        tob_append_n(ob, 1); /* 13 needs a fourth segment: 1-4 goes, 2 was acked */
        for (uint64_t s = 1; s <= 4; s++)
                ev += s == 2 ? 0 : tob_events(s);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.segments, 3);
        assert_int_equal(st.dropped_batches, 3);
        assert_int_equal(st.dropped_events, ev);
        assert_int_equal(st.rejected_batches, 0);
        assert_int_equal(st.oldest_unacked_seq, 5);
        n = tob_list(ob, seqs, ELEMENTSOF(seqs));
        assert_int_equal(n, 9);
        assert_int_equal(seqs[0], 5);
        assert_int_equal(seqs[8], 13);
        assert_int_equal(agent_outbox_ack(ob, epoch, 3), -ENOENT);
        agent_outbox_close(ob);

        /* By bytes: max_bytes lets one active segment and its record through only. */
        tob_rm_rf(f->dir);
        o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        o.segment_bytes = 1 << 20;
        o.max_record = 150;
        o.max_bytes = 3 * (OUTBOX_HDR_SIZE + 150) - 1;
        ob = tob_open(f->dir, &o);
        tob_fill(1, buf, 150);
        for (uint64_t s = 1; s <= 5; s++) {
                assert_int_equal(agent_outbox_append(ob, s, 0, 10, buf, 150), 0);
                /* The record just appended is always kept. */
                assert_int_equal(agent_outbox_read(ob, s, buf, sizeof(buf), &n), 0);
                agent_outbox_stats(ob, &st);
                assert_true(st.bytes <= o.max_bytes);
        }
        agent_outbox_stats(ob, &st);
        /* 1+2 share a segment; 3 forces a roll and drops it; 4 joins 3; 5 drops 3+4. */
        assert_int_equal(st.dropped_batches, 4);
        assert_int_equal(st.dropped_events, 40);
        assert_int_equal(st.batches, 1);
        agent_outbox_close(ob);
}

static void test_reject_new(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint8_t buf[300];
        uint64_t epoch;

        o.segment_records = 4;
        o.max_segments = 2;
        o.policy = AGENT_OUTBOX_REJECT_NEW;
        ob = tob_open(f->dir, &o);
        epoch = agent_outbox_epoch(ob);
        tob_append_n(ob, 8);
        tob_fill(9, buf, tob_frame_len(9));
        for (int i = 0; i < 3; i++)
                assert_int_equal(agent_outbox_append(ob, 9, 1, 7, buf, tob_frame_len(9)), -ENOSPC);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.rejected_batches, 3);
        assert_int_equal(st.rejected_events, 21);
        assert_int_equal(st.dropped_batches, 0);
        assert_int_equal(st.batches, 8);
        assert_int_equal(agent_outbox_next_seq(ob), 9);
        for (uint64_t s = 1; s <= 4; s++)
                assert_int_equal(agent_outbox_ack(ob, epoch, s), 0);
        tob_append_n(ob, 1);
        tob_check_record(ob, 9);
        agent_outbox_close(ob);
}

/* Opens a copy of dir whose segment `seg` is replaced by `data`; returns it. */
static struct agent_outbox *open_variant(struct fx *f, const char *meta, size_t meta_len,
                                         uint64_t seg, const uint8_t *data, size_t len,
                                         const struct agent_outbox_opts *o)
{
        char path[400];

        tob_rm_rf(f->copy);
        assert_int_equal(mkdir(f->copy, 0700), 0);
        if (meta) {
                snprintf(path, sizeof(path), "%s/meta", f->copy);
                tob_write_file(path, meta, meta_len);
        }
        snprintf(path, sizeof(path), "%s/seg-%016" PRIx64 ".log", f->copy, seg);
        tob_write_file(path, data, len);
        return tob_open(f->copy, o);
}

/* Three records appended after meta was last written; returns the segment
 * bytes, the meta as of before the appends and each record's offset. */
static uint8_t *three_records(struct fx *f, uint8_t **ret_meta, size_t *ret_meta_len,
                              size_t *ret_len, uint64_t off[4])
{
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox *ob;
        char path[400];
        uint8_t *seg;

        ob = tob_open(f->dir, &o);
        snprintf(path, sizeof(path), "%s/meta", f->dir);
        *ret_meta = tob_read_file(path, ret_meta_len);
        off[0] = 0;
        for (int i = 1; i <= 3; i++) {
                tob_append_n(ob, 1);
                off[i] = off[i - 1] + OUTBOX_HDR_SIZE + tob_frame_len((uint64_t)i);
        }
        snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", f->dir);
        seg = tob_read_file(path, ret_len); /* as a power cut would leave it */
        assert_int_equal(*ret_len, off[3]);
        agent_outbox_close(ob);
        return seg;
}

static void test_torn_every_offset(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint64_t off[4], seqs[8];
        size_t len, meta_len;
        uint8_t *meta, *seg;
        char path[400];
        struct stat sb;

        seg = three_records(f, &meta, &meta_len, &len, off);
        /* Every cut inside record 2 (a middle one) and record 3 (the last). */
        for (uint64_t cut = off[1]; cut <= off[3]; cut++) {
                size_t keep = cut >= off[3] ? 3 : cut >= off[2] ? 2 : 1, n;

                ob = open_variant(f, (char *)meta, meta_len, 1, seg, cut, &o);
                agent_outbox_stats(ob, &st);
                assert_int_equal(st.origin, AGENT_OUTBOX_RESUMED);
                assert_int_equal(st.recovered_torn_bytes, cut - off[keep]);
                assert_int_equal(st.recovered_corrupt_records, 0);
                /* Records appended after meta was written are kept and seq goes on. */
                assert_int_equal(agent_outbox_next_seq(ob), keep + 1);
                n = tob_list(ob, seqs, ELEMENTSOF(seqs));
                assert_int_equal(n, keep);
                for (uint64_t s = 1; s <= keep; s++) {
                        assert_int_equal(seqs[s - 1], s);
                        tob_check_record(ob, s);
                }
                snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", f->copy);
                assert_int_equal(stat(path, &sb), 0);
                assert_int_equal((uint64_t)sb.st_size, off[keep]);
                /* The next append lands right after the cut. */
                tob_append_n(ob, 1);
                tob_check_record(ob, keep + 1);
                agent_outbox_close(ob);
        }
        free(meta);
        free(seg);
}

static void test_flipped_bytes(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint64_t off[4], seqs[8];
        size_t len, meta_len, n;
        uint8_t *meta, *seg;

        seg = three_records(f, &meta, &meta_len, &len, off);
        for (uint64_t pos = off[1]; pos < off[3]; pos++) {
                bool middle = pos < off[2];

                seg[pos] ^= 0x5a;
                ob = open_variant(f, (char *)meta, meta_len, 1, seg, len, &o);
                seg[pos] ^= 0x5a;
                agent_outbox_stats(ob, &st);
                n = tob_list(ob, seqs, ELEMENTSOF(seqs));
                if (middle) {
                        /* Skipped, and the record after it is still found. */
                        assert_int_equal(st.recovered_corrupt_records, 1);
                        assert_int_equal(st.recovered_torn_bytes, 0);
                        assert_int_equal(n, 2);
                        assert_int_equal(seqs[0], 1);
                        assert_int_equal(seqs[1], 3);
                        tob_check_record(ob, 3);
                } else {
                        /* A bad last record is a torn tail. */
                        assert_int_equal(st.recovered_corrupt_records, 0);
                        assert_int_equal(st.recovered_torn_bytes, off[3] - off[2]);
                        assert_int_equal(n, 2);
                        assert_int_equal(seqs[1], 2);
                }
                tob_check_record(ob, 1);
                assert_int_equal(agent_outbox_next_seq(ob), middle ? 4 : 3);
                agent_outbox_close(ob);
        }
        free(meta);
        free(seg);
}

static void test_rot_after_open(void **state)
{
        struct fx *f = *state;
        struct agent_outbox_opts o = tob_opts(AGENT_OUTBOX_SYNC_BATCH);
        struct agent_outbox_record info;
        struct agent_outbox_stats st;
        struct agent_outbox *ob;
        uint8_t buf[300], x = 0;
        char path[400];
        size_t n;
        int fd;

        ob = tob_open(f->dir, &o);
        tob_append_n(ob, 3);
        snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", f->dir);
        fd = open(path, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        /* A payload byte of record 2, then a header byte of record 3. */
        assert_int_equal(pread(fd, &x, 1, OUTBOX_HDR_SIZE * 2 + tob_frame_len(1) + 5), 1);
        x ^= 1;
        assert_int_equal(pwrite(fd, &x, 1, OUTBOX_HDR_SIZE * 2 + tob_frame_len(1) + 5), 1);
        x = 0xee;
        assert_int_equal(
                pwrite(fd, &x, 1, OUTBOX_HDR_SIZE * 2 + tob_frame_len(1) + tob_frame_len(2) + 9),
                1);
        close(fd);
        assert_int_equal(agent_outbox_read(ob, 2, buf, sizeof(buf), &n), -EBADMSG);
        assert_int_equal(agent_outbox_record_info(ob, 2, &info), 0);
        assert_int_equal(agent_outbox_read(ob, 3, buf, sizeof(buf), &n), -EBADMSG);
        assert_int_equal(agent_outbox_record_info(ob, 3, &info), -EBADMSG);
        tob_check_record(ob, 1);
        assert_int_equal(agent_outbox_discard(ob, 2), 0);
        assert_int_equal(agent_outbox_discard(ob, 2), -EALREADY);
        agent_outbox_stats(ob, &st);
        assert_int_equal(st.discarded_batches, 1);
        assert_int_equal(st.discarded_events, tob_events(2));
        assert_int_equal(st.acked_batches, 0);
        assert_int_equal(st.batches, 2);
        agent_outbox_close(ob);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crc32c),
                cmocka_unit_test(test_names),
                cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock_and_opts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_seq_continuity, setup, teardown),
                cmocka_unit_test_setup_teardown(test_all_acked_reopen, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wiped_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_out_of_order_acks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_drop_oldest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reject_new, setup, teardown),
                cmocka_unit_test_setup_teardown(test_torn_every_offset, setup, teardown),
                cmocka_unit_test_setup_teardown(test_flipped_bytes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rot_after_open, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
