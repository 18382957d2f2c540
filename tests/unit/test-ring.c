/* SPDX-License-Identifier: Apache-2.0 */
/* The ring: appending, reading back, cursors, sync, recovery after corruption
 * and kill -9. Records of several readings and older formats: test-ring-format.c. */
#include "ring-test.h"

static void test_crc32c(void **state)
{
        (void)state;
        /* the RFC 3720 / iSCSI check value */
        assert_int_equal(agent_ring_crc32c(0, "123456789", 9), 0xe3069283);
        /* chaining equals one pass; odd lengths go through the tail loop */
        assert_int_equal(agent_ring_crc32c(agent_ring_crc32c(0, "12345", 5), "6789", 4),
                         0xe3069283);
        assert_int_equal(agent_ring_crc32c(0, "", 0), 0);
}

static void test_create_and_reopen(void **state)
{
        struct fixture *f = *state;
        struct agent_ring_recovery rec;
        struct agent_ring_stats st;
        struct agent_ring *r;
        struct stat sb;

        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_true(rec.created);
        assert_int_equal(agent_ring_head(r), 0);
        assert_int_equal(agent_ring_watermark(r), INT64_MIN);
        agent_ring_stats(r, &st);
        assert_int_equal(st.size, 64 << 10);
        assert_int_equal(st.capacity, (64 << 10) - HDR);
        assert_int_equal(st.used, 0);
        assert_int_equal(st.free, st.capacity);
        r = agent_ring_close(r);
        assert_null(r);
        assert_int_equal(stat(f->path, &sb), 0);
        assert_int_equal(sb.st_size, 64 << 10);

        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_false(rec.created);
        assert_int_equal(rec.records, 0);
        agent_ring_close(r);
        /* size 0 adopts the file's size */
        r = ring_open(f->path, 0, AGENT_RING_SYNC_NONE, &rec);
        agent_ring_stats(r, &st);
        assert_int_equal(st.size, 64 << 10);
        agent_ring_close(r);
        assert_null(agent_ring_close(NULL));
}

static void test_roundtrip(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 1 << 20, AGENT_RING_SYNC_NONE, NULL);
        struct agent_ring_entry e;
        struct agent_ring_iter it;
        uint64_t pos[200], prev_next = 0;
        char longname[255];
        struct agent_reading rd;

        for (uint64_t n = 0; n < 200; n++) {
                assert_int_equal(append_n(r, n, &pos[n]), 0);
                assert_true(n == 0 || pos[n] > pos[n - 1]);
                assert_int_equal(pos[n] % 8, 0);
        }
        assert_int_equal(agent_ring_iter_init(r, 0, &it), 0);
        for (uint64_t n = 0; n < 200; n++) {
                assert_int_equal(agent_ring_iter_next(&it, &e), 0);
                assert_true(entry_matches(&e, n));
                assert_int_equal(e.pos, pos[n]);
                assert_int_equal(e.pos, prev_next);
                assert_int_equal(e.seq, n);
                assert_int_equal(e.flags & AGENT_RING_F_TS_STAMPED,
                                 n % 3 == 1 ? AGENT_RING_F_TS_STAMPED : 0);
                assert_int_equal(!!(e.flags & AGENT_RING_F_NULL), n % 7 == 3);
                prev_next = e.next;
        }
        assert_int_equal(agent_ring_iter_next(&it, &e), -ENOENT);
        assert_int_equal(prev_next, agent_ring_head(r));
        /* an iterator at the head sees what is appended later */
        assert_int_equal(append_n(r, 200, NULL), 0);
        assert_int_equal(agent_ring_iter_next(&it, &e), 0);
        assert_true(entry_matches(&e, 200));
        /* an iterator can start at any record */
        assert_int_equal(agent_ring_iter_init(r, pos[150], &it), 0);
        assert_int_equal(agent_ring_iter_next(&it, &e), 0);
        assert_true(entry_matches(&e, 150));

        /* names of 255 bytes and an empty text are kept */
        memset(longname, 'x', sizeof(longname));
        rd = (struct agent_reading){.sensor = longname,
                                    .sensor_len = 255,
                                    .metric = longname,
                                    .metric_len = 255,
                                    .ts_us = -5,
                                    .value = -0.0,
                                    .text = "",
                                    .text_len = 0};
        assert_int_equal(agent_ring_append(r, &rd, 0, 1, &pos[0]), 0);
        assert_int_equal(agent_ring_iter_init(r, pos[0], &it), 0);
        assert_int_equal(agent_ring_iter_next(&it, &e), 0);
        assert_int_equal(e.rd.sensor_len, 255);
        assert_int_equal(e.rd.metric_len, 255);
        assert_int_equal(e.rd.ts_us, -5);
        assert_true(signbit(e.rd.value));
        assert_non_null(e.rd.text);
        assert_int_equal(e.rd.text_len, 0);
        assert_true(e.flags & AGENT_RING_F_TEXT);
        agent_ring_close(r);
}

static void test_invalid_append(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 8 << 10, AGENT_RING_SYNC_NONE, NULL);
        static char big[70000];
        struct agent_reading ok = {.sensor = "s",
                                   .sensor_len = 1,
                                   .metric = "m",
                                   .metric_len = 1,
                                   .ts_us = 1,
                                   .value = 1},
                             rd;
        uint64_t pos = 99;

        rd = ok;
        rd.sensor_len = 0;
        assert_int_equal(agent_ring_append(r, &rd, 0, 0, &pos), -EINVAL);
        rd = ok;
        rd.metric_len = 0;
        assert_int_equal(agent_ring_append(r, &rd, 0, 0, &pos), -EINVAL);
        rd = ok;
        rd.ts_us = AGENT_TS_NONE;
        assert_int_equal(agent_ring_append(r, &rd, 0, 0, &pos), -EINVAL);
        assert_int_equal(agent_ring_append(r, &ok, AGENT_RING_F_NULL, 0, &pos), -EINVAL);
        assert_int_equal(agent_ring_append(r, &ok, 0x80, 0, &pos), -EINVAL);
        rd = ok;
        rd.sensor = big;
        rd.sensor_len = 256;
        assert_int_equal(agent_ring_append(r, &rd, 0, 0, &pos), -ENAMETOOLONG);
        rd = ok;
        rd.metric = big;
        rd.metric_len = 256;
        assert_int_equal(agent_ring_append(r, &rd, 0, 0, &pos), -ENAMETOOLONG);
        rd = ok;
        rd.text = big;
        rd.text_len = 65536;
        assert_int_equal(agent_ring_append(r, &rd, 0, 0, &pos), -EMSGSIZE);
        rd.text_len = 5000; /* valid, but larger than this 4 KiB ring */
        assert_int_equal(agent_ring_append(r, &rd, 0, 0, &pos), -EMSGSIZE);
        rd = ok;
        rd.value = NAN;
        assert_int_equal(agent_ring_append(r, &rd, 0, 0, &pos), -EDOM);
        rd.value = INFINITY;
        assert_int_equal(agent_ring_append(r, &rd, 0, 0, &pos), -EDOM);
        rd.value_null = true; /* a null value is not looked at */
        assert_int_equal(agent_ring_append(r, &rd, 0, 0, &pos), 0);
        assert_int_equal(pos, 0);
        /* 40 + sensor 1 + an entry of 2 + ts 8 + metric 1 (a null stores no value) */
        assert_int_equal(agent_ring_head(r), 56);
        agent_ring_close(r);
}

/* Many laps of a small ring with variable sizes against a queue model. */
static void test_wrap_around(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 8 << 10, AGENT_RING_SYNC_NONE, NULL);
        uint64_t cap = agent_ring_capacity(r), q_pos[512], produced = 0, consumed = 0;
        unsigned wraps = 0, laps;
        struct agent_ring_iter it;
        struct agent_ring_entry e;

        assert_int_equal(cap, 4096);
        while (agent_ring_head(r) < 12 * cap) {
                /* append until full */
                for (;;) {
                        uint64_t pos;
                        int ret = append_n(r, produced, &pos);

                        if (ret == -ENOSPC)
                                break;
                        assert_int_equal(ret, 0);
                        if (produced > 0 && pos % cap < q_pos[(produced - 1) % 512] % cap)
                                wraps++;
                        q_pos[produced % 512] = pos;
                        produced++;
                        assert_true(produced - consumed < 512);
                }
                /* consume a varying share and move both cursors */
                assert_int_equal(agent_ring_iter_init(r, agent_ring_events_cursor(r), &it), 0);
                for (uint64_t k = (produced - consumed) / 2 + produced % 3; k > 0; k--) {
                        assert_int_equal(agent_ring_iter_next(&it, &e), 0);
                        assert_true(entry_matches(&e, consumed));
                        assert_int_equal(e.pos, q_pos[consumed % 512]);
                        consumed++;
                }
                assert_int_equal(agent_ring_set_events_cursor(r, it.pos), 0);
                assert_int_equal(agent_ring_set_agg_cursor(r, it.pos, 0), 0);
        }
        laps = (unsigned)(agent_ring_head(r) / cap);
        assert_true(laps >= 12);
        assert_true(wraps >= laps - 1);
        /* the rest is intact */
        assert_int_equal(agent_ring_iter_init(r, agent_ring_agg_cursor(r), &it), 0);
        while (agent_ring_iter_next(&it, &e) == 0)
                assert_true(entry_matches(&e, consumed++));
        assert_int_equal(consumed, produced);
        agent_ring_close(r);
}

static void test_full_and_cursors(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 8 << 10, AGENT_RING_SYNC_NONE, NULL);
        struct agent_ring_stats st;
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        uint64_t n = 0, second;

        while (append_n(r, n, NULL) == 0)
                n++;
        assert_true(n > 10);
        agent_ring_stats(r, &st);
        assert_int_equal(st.full, 1);
        assert_int_equal(st.appended, n);
        assert_int_equal(st.events_pending_records, n);
        assert_int_equal(st.agg_pending_records, n);
        assert_true(st.free < 56 + 24 + 12 + 500);
        assert_int_equal(append_n(r, n, NULL), -ENOSPC);

        agent_ring_iter_init(r, 0, &it);
        assert_int_equal(agent_ring_iter_next(&it, &e), 0);
        assert_int_equal(agent_ring_iter_next(&it, &e), 0);
        second = e.pos;
        /* the events cursor alone frees nothing: the older cursor counts */
        assert_int_equal(agent_ring_set_events_cursor(r, agent_ring_head(r)), 0);
        agent_ring_stats(r, &st);
        assert_int_equal(st.events_pending_records, 0);
        assert_int_equal(st.events_pending_bytes, 0);
        assert_int_equal(st.agg_pending_records, n);
        assert_int_equal(append_n(r, n, NULL), -ENOSPC);
        /* the aggregation cursor past two records frees their bytes */
        assert_int_equal(agent_ring_set_agg_cursor(r, it.pos, 1000), 0);
        agent_ring_stats(r, &st);
        assert_int_equal(st.agg_pending_records, n - 2);
        assert_int_equal(st.used, agent_ring_head(r) - it.pos);
        assert_int_equal(agent_ring_watermark(r), 1000);
        /* cursors and watermark never move back */
        assert_int_equal(agent_ring_set_agg_cursor(r, second, 10), 0);
        assert_int_equal(agent_ring_agg_cursor(r), it.pos);
        assert_int_equal(agent_ring_watermark(r), 1000);
        /* not a record boundary, past the head, unaligned */
        assert_int_equal(agent_ring_set_agg_cursor(r, it.pos + 8, 0), -EINVAL);
        assert_int_equal(agent_ring_set_agg_cursor(r, agent_ring_head(r) + 8, 0), -EINVAL);
        assert_int_equal(agent_ring_set_agg_cursor(r, it.pos + 3, 0), -EINVAL);
        assert_int_equal(agent_ring_agg_cursor(r), it.pos);
        /* iterators outside the live range */
        assert_int_equal(agent_ring_iter_init(r, 0, &it), -EINVAL);
        assert_int_equal(agent_ring_iter_next(&it, &e), -EINVAL);
        assert_int_equal(agent_ring_iter_init(r, agent_ring_head(r) + 8, &it), -EINVAL);
        agent_ring_close(r);
}

/* An iterator left behind when the cursors move on may read reused space. */
static void test_iter_stale(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 8 << 10, AGENT_RING_SYNC_NONE, NULL);
        struct agent_ring_iter it;
        struct agent_ring_entry e;

        for (uint64_t n = 0; n < 10; n++)
                assert_int_equal(append_n(r, n, NULL), 0);
        assert_int_equal(agent_ring_iter_init(r, 0, &it), 0);
        assert_int_equal(agent_ring_set_events_cursor(r, agent_ring_head(r)), 0);
        assert_int_equal(agent_ring_set_agg_cursor(r, agent_ring_head(r), 0), 0);
        assert_int_equal(agent_ring_iter_next(&it, &e), -ESTALE);
        agent_ring_close(r);
}

static void test_persistence(void **state)
{
        struct fixture *f = *state;
        struct agent_ring_recovery rec;
        struct agent_ring *r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_INTERVAL, NULL);
        struct agent_ring_stats st;
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        uint64_t pos[50], head;
        uint64_t id = agent_ring_id(r);

        for (uint64_t n = 0; n < 50; n++)
                assert_int_equal(append_n(r, n, &pos[n]), 0);
        assert_int_equal(agent_ring_set_events_cursor(r, pos[30]), 0);
        assert_int_equal(agent_ring_set_agg_cursor(r, pos[10], 1763676060000000LL), 0);
        assert_int_equal(agent_ring_sync(r), 0);
        agent_ring_stats(r, &st);
        assert_true(st.syncs >= 1);
        head = agent_ring_head(r);
        agent_ring_close(r);

        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_int_equal(agent_ring_id(r), id);
        assert_int_equal(rec.records, 40);
        assert_int_equal(rec.bytes, head - pos[10]);
        assert_int_equal(rec.torn_bytes, 0);
        assert_int_equal(rec.rolled_forward, 0);
        assert_int_equal(rec.cursors_clamped, 0);
        assert_int_equal(agent_ring_head(r), head);
        assert_int_equal(agent_ring_events_cursor(r), pos[30]);
        assert_int_equal(agent_ring_agg_cursor(r), pos[10]);
        assert_int_equal(agent_ring_watermark(r), 1763676060000000LL);
        assert_int_equal(agent_ring_iter_init(r, pos[10], &it), 0);
        for (uint64_t n = 10; n < 50; n++) {
                assert_int_equal(agent_ring_iter_next(&it, &e), 0);
                assert_true(entry_matches(&e, n));
        }
        /* sequence numbers go on */
        assert_int_equal(append_n(r, 50, NULL), 0);
        assert_int_equal(agent_ring_iter_next(&it, &e), 0);
        assert_int_equal(e.seq, 50);
        agent_ring_close(r);
}

static void test_lock(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 8 << 10, AGENT_RING_SYNC_NONE, NULL), *r2 = NULL;
        char err[256] = "";

        assert_int_equal(agent_ring_open(f->path, 8 << 10, AGENT_RING_SYNC_NONE, &r2, NULL, err,
                                         sizeof(err)),
                         -EBUSY);
        assert_null(r2);
        assert_non_null(strstr(err, "another process"));
        agent_ring_close(r);
        r2 = ring_open(f->path, 8 << 10, AGENT_RING_SYNC_NONE, NULL);
        agent_ring_close(r2);
}

static void test_sync_modes(void **state)
{
        struct fixture *f = *state;
        enum agent_ring_sync_mode m;
        struct agent_ring_stats st;
        struct agent_ring *r;

        assert_int_equal(agent_ring_sync_mode_from_name("interval", &m), 0);
        assert_int_equal(m, AGENT_RING_SYNC_INTERVAL);
        assert_string_equal(agent_ring_sync_mode_name(AGENT_RING_SYNC_ALWAYS), "always");
        assert_int_equal(agent_ring_sync_mode_from_name("sometimes", &m), -EINVAL);

        r = ring_open(f->path, 8 << 10, AGENT_RING_SYNC_ALWAYS, NULL);
        for (uint64_t n = 0; n < 5; n++)
                assert_int_equal(append_n(r, n, NULL), 0);
        agent_ring_stats(r, &st);
        assert_int_equal(st.syncs, 5); /* one per append */
        assert_int_equal(agent_ring_set_events_cursor(r, agent_ring_head(r)), 0);
        agent_ring_stats(r, &st);
        assert_int_equal(st.syncs, 6); /* and per cursor move */
        agent_ring_close(r);

        r = ring_open(f->path, 8 << 10, AGENT_RING_SYNC_NONE, NULL);
        assert_int_equal(append_n(r, 5, NULL), 0);
        assert_int_equal(agent_ring_sync(r), 0);
        agent_ring_stats(r, &st);
        assert_int_equal(st.syncs, 0);
        agent_ring_close(r);

        r = ring_open(f->path, 8 << 10, AGENT_RING_SYNC_INTERVAL, NULL);
        for (uint64_t n = 6; n < 40; n++) /* wraps: two ranges */
                if (append_n(r, n, NULL) == -ENOSPC) {
                        assert_int_equal(agent_ring_set_events_cursor(r, agent_ring_head(r)), 0);
                        assert_int_equal(agent_ring_set_agg_cursor(r, agent_ring_head(r), 0), 0);
                }
        agent_ring_stats(r, &st);
        assert_int_equal(st.syncs, 0);
        assert_int_equal(agent_ring_sync(r), 0);
        assert_int_equal(agent_ring_sync(r), 0); /* nothing changed: no msync */
        agent_ring_stats(r, &st);
        assert_int_equal(st.syncs, 1);
        agent_ring_close(r);
}

static void test_zero_alloc(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 16 << 10, AGENT_RING_SYNC_NONE, NULL);
        struct mallinfo2 before, after;
        struct agent_ring_stats st;
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        uint64_t allocs;

        floe_alloc_fail_at(0);
        before = mallinfo2();
        allocs = floe_alloc_count();
        for (uint64_t n = 0; n < 5000; n++) {
                int ret = append_n(r, n, NULL);

                if (ret == -ENOSPC) {
                        agent_ring_iter_init(r, agent_ring_agg_cursor(r), &it);
                        while (agent_ring_iter_next(&it, &e) == 0)
                                ;
                        agent_ring_set_events_cursor(r, it.pos);
                        agent_ring_set_agg_cursor(r, it.pos, (int64_t)n);
                        ret = append_n(r, n, NULL);
                }
                assert_int_equal(ret, 0);
        }
        agent_ring_stats(r, &st);
        assert_true(st.full > 10);
        after = mallinfo2();
        assert_int_equal(floe_alloc_count(), allocs);
        assert_int_equal(after.uordblks, before.uordblks);
        assert_int_equal(after.hblkhd, before.hblkhd);
        agent_ring_close(r);
}

static void test_corrupt_header(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 16 << 10, AGENT_RING_SYNC_NONE, NULL);
        uint8_t orig[HDR], bad[HDR];
        uint32_t v = 3, crc;
        uint64_t u;

        for (uint64_t n = 0; n < 10; n++)
                assert_int_equal(append_n(r, n, NULL), 0);
        agent_ring_close(r);
        assert_int_equal(peek(f->path, 0, orig, sizeof(orig)), 0);

        memcpy(bad, orig, HDR);
        bad[0] ^= 1;
        assert_int_equal(patch(f->path, 0, bad, HDR), 0);
        expect_open_error(f->path, 16 << 10, -EBADMSG, "magic");

        memcpy(bad, orig, HDR);
        bad[20] ^= 1; /* file size, under the checksum */
        assert_int_equal(patch(f->path, 0, bad, HDR), 0);
        expect_open_error(f->path, 16 << 10, -EBADMSG, "checksum");

        memcpy(bad, orig, HDR);
        memcpy(bad + OFF_VERSION, &v, 4);
        crc = agent_ring_crc32c(0, bad, 40);
        memcpy(bad + OFF_CRC, &crc, 4);
        assert_int_equal(patch(f->path, 0, bad, HDR), 0);
        expect_open_error(f->path, 16 << 10, -EPROTONOSUPPORT, "version 3");

        /* a cursor past the head */
        memcpy(bad, orig, HDR);
        memcpy(&u, bad + OFF_HEAD, 8);
        u += 8;
        memcpy(bad + OFF_EVENTS, &u, 8);
        assert_int_equal(patch(f->path, 0, bad, HDR), 0);
        expect_open_error(f->path, 16 << 10, -EBADMSG, "inconsistent");

        /* an unaligned head */
        memcpy(bad, orig, HDR);
        u = 13;
        memcpy(bad + OFF_HEAD, &u, 8);
        assert_int_equal(patch(f->path, 0, bad, HDR), 0);
        expect_open_error(f->path, 16 << 10, -EBADMSG, "inconsistent");

        /* a cursor inside a record */
        memcpy(bad, orig, HDR);
        u = 8;
        memcpy(bad + OFF_AGG, &u, 8);
        assert_int_equal(patch(f->path, 0, bad, HDR), 0);
        expect_open_error(f->path, 16 << 10, -EBADMSG, "not at a record");

        /* a file of another size that still holds records */
        assert_int_equal(patch(f->path, 0, orig, HDR), 0);
        expect_open_error(f->path, 32 << 10, -ERANGE, "drained");
        /* a file that is not a ring's size */
        assert_int_equal(truncate(f->path, 5000), 0);
        expect_open_error(f->path, 16 << 10, -EBADMSG, "not the size");
        /* the file grew behind the header's back */
        assert_int_equal(truncate(f->path, 20 << 10), 0);
        expect_open_error(f->path, 20 << 10, -EBADMSG, "header says");
        expect_open_error(f->path, 1000, -EINVAL, "multiple of 4096");
        expect_open_error(f->path, 12345 * 4096ULL << 20, -EINVAL, "multiple of 4096");
        unlink(f->path);
        expect_open_error(f->path, 0, -ENOENT, "no such file");
}

static void test_resize_empty(void **state)
{
        struct fixture *f = *state;
        struct agent_ring_recovery rec;
        struct agent_ring_stats st;
        struct agent_ring *r = ring_open(f->path, 16 << 10, AGENT_RING_SYNC_NONE, NULL);
        uint64_t id = agent_ring_id(r);

        for (uint64_t n = 0; n < 3; n++)
                assert_int_equal(append_n(r, n, NULL), 0);
        assert_int_equal(agent_ring_set_events_cursor(r, agent_ring_head(r)), 0);
        assert_int_equal(agent_ring_set_agg_cursor(r, agent_ring_head(r), 777), 0);
        agent_ring_close(r);

        r = ring_open(f->path, 32 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_true(rec.resized);
        assert_false(rec.created);
        agent_ring_stats(r, &st);
        assert_int_equal(st.size, 32 << 10);
        assert_int_not_equal(agent_ring_id(r), id);
        /* what shipped stays shipped; sequence numbers go on */
        assert_int_equal(agent_ring_watermark(r), 777);
        assert_int_equal(append_n(r, 3, NULL), 0);
        {
                struct agent_ring_iter it;
                struct agent_ring_entry e;

                agent_ring_iter_init(r, 0, &it);
                assert_int_equal(agent_ring_iter_next(&it, &e), 0);
                assert_int_equal(e.seq, 3);
        }
        agent_ring_close(r);
}

/* Power loss with the header written after the data: the stored head points
 * past a record whose bytes never reached the disk. */
static void test_torn_tail(void **state)
{
        struct fixture *f = *state;
        struct agent_ring_recovery rec;
        struct agent_ring *r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, NULL);
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        uint64_t pos[20], head, n;
        uint8_t junk[16];

        for (n = 0; n < 20; n++)
                assert_int_equal(append_n(r, n, &pos[n]), 0);
        assert_int_equal(agent_ring_set_events_cursor(r, pos[19]), 0);
        head = agent_ring_head(r);
        agent_ring_close(r);
        /* record 17 is torn: its tail never made it */
        memset(junk, 0, sizeof(junk));
        assert_int_equal(patch(f->path, HDR + (off_t)pos[17] + 56, junk, sizeof(junk)), 0);

        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_int_equal(rec.records, 17);
        assert_int_equal(rec.torn_bytes, head - pos[17]);
        assert_int_equal(rec.cursors_clamped, 1);
        assert_int_equal(agent_ring_head(r), pos[17]);
        assert_int_equal(agent_ring_events_cursor(r), pos[17]);
        /* record 18, intact past the tear, must never come back: new records
         * of the same sizes land on the same positions */
        assert_int_equal(append_n(r, 17, NULL), 0);
        agent_ring_close(r);
        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_int_equal(rec.records, 18);
        assert_int_equal(rec.torn_bytes, 0);
        assert_int_equal(rec.rolled_forward, 0);
        agent_ring_iter_init(r, 0, &it);
        for (n = 0; agent_ring_iter_next(&it, &e) == 0; n++)
                assert_true(entry_matches(&e, n));
        assert_int_equal(n, 18);
        agent_ring_close(r);
}

/* The header page older than the records: recovery finds them anyway. */
static void test_roll_forward(void **state)
{
        struct fixture *f = *state;
        struct agent_ring_recovery rec;
        struct agent_ring *r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, NULL);
        uint64_t pos[30], head;

        for (uint64_t n = 0; n < 30; n++)
                assert_int_equal(append_n(r, n, &pos[n]), 0);
        head = agent_ring_head(r);
        agent_ring_close(r);
        assert_int_equal(patch(f->path, OFF_HEAD, &pos[12], 8), 0);

        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_int_equal(rec.records, 30);
        assert_int_equal(rec.rolled_forward, 18);
        assert_int_equal(rec.torn_bytes, 0);
        assert_int_equal(agent_ring_head(r), head);
        agent_ring_close(r);
}

/* A record whose checksum fails in the middle: everything after is cut. */
static void test_corrupt_record(void **state)
{
        struct fixture *f = *state;
        struct agent_ring_recovery rec;
        struct agent_ring *r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, NULL);
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        uint64_t pos[30], head;
        uint8_t b;

        for (uint64_t n = 0; n < 30; n++)
                assert_int_equal(append_n(r, n, &pos[n]), 0);
        head = agent_ring_head(r);
        agent_ring_close(r);
        assert_int_equal(peek(f->path, HDR + (off_t)pos[5] + 30, &b, 1), 0);
        b ^= 0x10; /* one bit of the arrival time */
        assert_int_equal(patch(f->path, HDR + (off_t)pos[5] + 30, &b, 1), 0);

        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_int_equal(rec.records, 5);
        assert_int_equal(rec.torn_bytes, head - pos[5]);
        agent_ring_iter_init(r, 0, &it);
        for (int n = 0; n < 5; n++)
                assert_int_equal(agent_ring_iter_next(&it, &e), 0);
        assert_int_equal(agent_ring_iter_next(&it, &e), -ENOENT);
        agent_ring_close(r);

        /* a record damaged while the ring is open is reported, not returned */
        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, NULL);
        assert_int_equal(append_n(r, 5, &pos[5]), 0);
        assert_int_equal(peek(f->path, HDR + (off_t)pos[5] + 60, &b, 1), 0);
        b ^= 1;
        assert_int_equal(patch(f->path, HDR + (off_t)pos[5] + 60, &b, 1), 0);
        agent_ring_iter_init(r, pos[5], &it);
        assert_int_equal(agent_ring_iter_next(&it, &e), -EBADMSG);
        agent_ring_close(r);
}

/* A record that checks out on its own but breaks the sequence (+1 per
 * record) ends the walk like a torn one. */
static void test_sequence_gap(void **state)
{
        struct fixture *f = *state;
        struct agent_ring_recovery rec;
        struct agent_ring *r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, NULL);
        uint64_t pos[10], id = agent_ring_id(r), head, seq;
        uint8_t buf[512];
        uint32_t len, crc;

        for (uint64_t n = 0; n < 10; n++)
                assert_int_equal(append_n(r, n, &pos[n]), 0);
        head = agent_ring_head(r);
        agent_ring_close(r);
        assert_int_equal(peek(f->path, HDR + (off_t)pos[6], buf, sizeof(buf)), 0);
        memcpy(&len, buf, 4);
        assert_true(len <= sizeof(buf));
        seq = 7; /* should be 6 */
        memcpy(buf + 16, &seq, 8);
        crc = agent_ring_crc32c(agent_ring_crc32c(0, &id, 8), buf + 8, len - 8);
        memcpy(buf + 4, &crc, 4);
        assert_int_equal(patch(f->path, HDR + (off_t)pos[6], buf, len), 0);

        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_int_equal(rec.records, 6);
        assert_int_equal(rec.torn_bytes, head - pos[6]);
        agent_ring_close(r);
}

static void test_move_aside(void **state)
{
        struct fixture *f = *state;
        struct agent_ring_recovery rec;
        char moved[PATH_MAX], moved2[PATH_MAX], small[8];
        struct agent_ring *r;
        struct stat sb;

        assert_int_equal(patch(f->path, 0, "garbage", 7), 0);
        expect_open_error(f->path, 8 << 10, -EBADMSG, "size");
        /* 2025-11-20T21:00:00Z */
        assert_int_equal(agent_ring_move_aside(f->path, 1763672400000000LL, moved, sizeof(moved)),
                         0);
        assert_non_null(strstr(moved, "/ring.corrupt-20251120T210000Z"));
        assert_int_equal(stat(moved, &sb), 0);
        assert_int_equal(sb.st_size, 7);
        assert_int_equal(stat(f->path, &sb), -1);
        r = ring_open(f->path, 8 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_true(rec.created);
        agent_ring_close(r);
        /* the same second again: never overwrites */
        assert_int_equal(agent_ring_move_aside(f->path, 1763672400999999LL, moved2, sizeof(moved2)),
                         0);
        assert_non_null(strstr(moved2, "/ring.corrupt-20251120T210000Z.1"));
        assert_int_equal(stat(moved, &sb), 0);
        assert_int_equal(sb.st_size, 7);
        assert_int_equal(agent_ring_move_aside(f->path, 0, moved2, sizeof(moved2)), -ENOENT);
        assert_int_equal(agent_ring_move_aside(moved, 0, small, sizeof(small)), -ENAMETOOLONG);
}

/*
 * kill -9 in the middle of an append loop, again and again: every append
 * that returned before the kill is there and intact after reopening. The
 * child reports each returned append and each cursor move on a pipe.
 */
enum { MSG_APPENDED = 1, MSG_CONSUMED = 2 };

static uint64_t entry_n(const struct agent_ring_entry *e)
{
        return (uint64_t)((e->rd.ts_us - 1763676000000000LL) / 1000);
}

static void child_loop(const char *path, int wfd, uint64_t first)
{
        struct agent_ring *r = NULL;
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        char err[256];

        if (agent_ring_open(path, 16 << 10, AGENT_RING_SYNC_NONE, &r, NULL, err, sizeof(err)) < 0)
                _exit(2);
        for (uint64_t n = first;;) {
                uint64_t msg[2] = {MSG_APPENDED, n + group_of - 1};
                int ret = group_of > 1 ? append_group_n(r, n, NULL) : append_n(r, n, NULL);

                if (ret == -ENOSPC) {
                        /* consume about half of what is there */
                        uint64_t from = agent_ring_agg_cursor(r);
                        uint64_t half = (agent_ring_head(r) - from) / 2;

                        /* whole records: a cursor stands between records */
                        agent_ring_iter_init(r, from, &it);
                        while ((it.pos - from < half || it.off) &&
                               agent_ring_iter_next(&it, &e) == 0)
                                ;
                        if (agent_ring_set_events_cursor(r, it.pos) < 0 ||
                            agent_ring_set_agg_cursor(r, it.pos, 0) < 0)
                                _exit(3);
                        msg[0] = MSG_CONSUMED;
                        msg[1] = entry_n(&e); /* the last one consumed */
                } else if (ret < 0) {
                        _exit(5);
                } else {
                        n += group_of;
                }
                if (write(wfd, msg, sizeof(msg)) != sizeof(msg))
                        _exit(4);
        }
}

/* Reads the child's reports until the deadline (0: the first one only). */
static void drain(int fd, uint64_t deadline_us, uint64_t *appended, uint64_t *consumed, bool *any)
{
        struct timespec ts;
        uint64_t msg[2];

        for (;;) {
                ssize_t n = read(fd, msg, sizeof(msg));

                if (n == sizeof(msg)) {
                        if (msg[0] == MSG_APPENDED) {
                                assert_true(!*any || msg[1] == *appended + group_of);
                                *appended = msg[1];
                                *any = true;
                        } else {
                                *consumed = msg[1] + 1;
                        }
                        if (deadline_us == 0 && *any)
                                return;
                } else if (n == 0) {
                        return;
                } else {
                        assert_true(n < 0 && errno == EAGAIN);
                        usleep(50);
                }
                clock_gettime(CLOCK_MONOTONIC, &ts);
                if (deadline_us && (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 > deadline_us)
                        return;
        }
}

static void kill9(void **state)
{
        struct fixture *f = *state;
        uint64_t next = 0, rolled = 0, consumed = 0;
        unsigned rounds;

        for (rounds = 0; rounds < 24; rounds++) {
                uint64_t appended = 0, n = UINT64_MAX;
                struct agent_ring_recovery rec;
                struct agent_ring_iter it;
                struct agent_ring_entry e;
                struct agent_ring *r;
                struct timespec ts;
                int fds[2], status;
                bool any = false;
                pid_t pid;

                assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        close(fds[0]);
                        child_loop(f->path, fds[1], next);
                }
                close(fds[1]);
                drain(fds[0], 0, &appended, &consumed, &any);
                assert_true(any);
                assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
                /* let it run a varying while, reading its reports */
                clock_gettime(CLOCK_MONOTONIC, &ts);
                drain(fds[0],
                      (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + 1000 +
                              (rounds * 7919) % 30000,
                      &appended, &consumed, &any);
                kill(pid, SIGKILL);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
                assert_int_equal(fcntl(fds[0], F_SETFL, 0), 0);
                drain(fds[0], UINT64_MAX, &appended, &consumed, &any);
                close(fds[0]);

                r = ring_open(f->path, 16 << 10, AGENT_RING_SYNC_NONE, &rec);
                /* kill -9 never tears: the head is stored after the record */
                assert_int_equal(rec.torn_bytes, 0);
                assert_int_equal(rec.cursors_clamped, 0);
                rolled += rec.rolled_forward;
                assert_true(rec.rolled_forward <= group_of);
                agent_ring_iter_init(r, agent_ring_agg_cursor(r), &it);
                while (agent_ring_iter_next(&it, &e) == 0) {
                        uint64_t k = entry_n(&e);

                        /* contiguous and intact */
                        assert_true(n == UINT64_MAX ? k >= consumed : k == n + 1);
                        assert_true(entry_matches(&e, k));
                        if (n == UINT64_MAX)
                                consumed = k;
                        n = k;
                }
                /* every returned append not consumed is there, and at most
                 * the one in flight beyond it */
                assert_true(n != UINT64_MAX);
                assert_true(n >= appended && n <= appended + group_of);
                assert_true((n + 1) % group_of == 0); /* records whole */
                next = n + 1;
                agent_ring_close(r);
        }
        assert_true(rounds >= 20);
        assert_true(next > 1000); /* wrapped many times over 16 KiB */
        print_message("kill9: %u rounds, %" PRIu64 " readings in records of %" PRIu64 ", %" PRIu64
                      " rolled forward\n",
                      rounds, next, group_of, rolled);
}

static void test_kill9(void **state)
{
        kill9(state);
}

/* The same with records of seven readings: a record is there whole or not
 * at all. */
static void test_kill9_grouped(void **state)
{
        group_of = 7;
        kill9(state);
        group_of = 1;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crc32c),
                cmocka_unit_test_setup_teardown(test_create_and_reopen, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_append, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrap_around, setup, teardown),
                cmocka_unit_test_setup_teardown(test_full_and_cursors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_iter_stale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sync_modes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_zero_alloc, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_header, setup, teardown),
                cmocka_unit_test_setup_teardown(test_resize_empty, setup, teardown),
                cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roll_forward, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_record, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sequence_gap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_move_aside, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kill9_grouped, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
