/* SPDX-License-Identifier: Apache-2.0 */
/* Ring records of several readings (docs/ring.md §3), and rings of format
 * version 1 converted at open (§12). */
#include "ring-test.h"

static struct agent_reading grp_reading(int i, int64_t ts)
{
        static const char *const metrics[] = {"m0", "m1", "m2", "m3", "m4"};

        return (struct agent_reading){.sensor = "boiler-3",
                                      .sensor_len = 8,
                                      .metric = metrics[i % 5],
                                      .metric_len = 2,
                                      .ts_us = ts,
                                      .value = i * 1.25};
}

/* Readings of one sensor appended together share a record. */
static void test_groups(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 256 << 10, AGENT_RING_SYNC_NONE, NULL);
        static struct agent_reading rd[AGENT_RING_GROUP_MAX + 1];
        static char text[40000];
        uint8_t flags[5] = {0, AGENT_RING_F_TS_STAMPED, 0, 0, 0};
        struct agent_ring_recovery rec;
        struct agent_ring_stats st;
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        uint64_t pos, head;

        for (int i = 0; i < 5; i++)
                rd[i] = grp_reading(i, i == 4 ? 2000 : 1000);
        rd[2].text = "ok";
        rd[2].text_len = 2;
        rd[3].value_null = true;
        assert_int_equal(agent_ring_append_group(r, rd, flags, 5, 7, &pos), 0);
        assert_int_equal(pos, 0);
        /* 40 + sensor 8; entries: ts and value 20, ts as before 12, a text
         * 16, a null 4, another ts 20 */
        assert_int_equal(agent_ring_head(r), 120);
        agent_ring_stats(r, &st);
        assert_int_equal(st.appended, 5);
        assert_int_equal(st.events_pending_records, 5);
        assert_int_equal(agent_ring_append(r, &rd[0], 0, 8, &pos), 0);
        assert_int_equal(pos, 120);

        assert_int_equal(agent_ring_iter_init(r, 0, &it), 0);
        for (int i = 0; i < 6; i++) {
                assert_int_equal(agent_ring_iter_next(&it, &e), 0);
                assert_int_equal(e.seq, i);
                assert_int_equal(e.pos, i < 5 ? 0 : 120);
                assert_int_equal(e.index, i < 5 ? i : 0);
                assert_int_equal(e.entries, i < 5 ? 5 : 1);
                assert_int_equal(e.next, i < 5 ? 120 : agent_ring_head(r));
                if (i == 5)
                        break;
                assert_int_equal(e.arrival_us, 7);
                assert_int_equal(e.rd.sensor_len, 8);
                assert_memory_equal(e.rd.sensor, "boiler-3", 8);
                assert_int_equal(e.rd.ts_us, i == 4 ? 2000 : 1000);
                assert_memory_equal(e.rd.metric, grp_reading(i, 0).metric, 2);
                assert_int_equal(e.flags, (i == 1 ? AGENT_RING_F_TS_STAMPED : 0) |
                                                  (i == 2 ? AGENT_RING_F_TEXT : 0) |
                                                  (i == 3 ? AGENT_RING_F_NULL : 0));
                assert_true(i == 3 ? e.rd.value_null : e.rd.value == i * 1.25);
                assert_true(i == 2 ? e.rd.text_len == 2 && !memcmp(e.rd.text, "ok", 2)
                                   : e.rd.text == NULL);
                /* a cursor cannot stand inside a record */
                if (i > 0)
                        assert_int_equal(agent_ring_set_events_cursor(r, 8 * (uint64_t)i), -EINVAL);
        }
        assert_int_equal(agent_ring_iter_next(&it, &e), -ENOENT);

        /* all or nothing: a bad reading, another sensor, too many, none */
        head = agent_ring_head(r);
        rd[3].value_null = false;
        rd[3].value = NAN;
        assert_int_equal(agent_ring_append_group(r, rd, NULL, 5, 9, &pos), -EDOM);
        rd[3] = grp_reading(3, 1000);
        rd[4].sensor = "boiler-4";
        assert_int_equal(agent_ring_append_group(r, rd, NULL, 5, 9, &pos), -EINVAL);
        assert_int_equal(agent_ring_append_group(r, rd, NULL, 0, 9, &pos), -EINVAL);
        for (int i = 0; i <= AGENT_RING_GROUP_MAX; i++)
                rd[i] = grp_reading(i, 5000 + i);
        assert_int_equal(agent_ring_append_group(r, rd, NULL, AGENT_RING_GROUP_MAX + 1, 9, &pos),
                         -EINVAL);
        assert_int_equal(agent_ring_head(r), head);
        agent_ring_stats(r, &st);
        assert_int_equal(st.appended, 6);
        /* the most readings a record holds, and large texts */
        assert_int_equal(agent_ring_append_group(r, rd, NULL, AGENT_RING_GROUP_MAX, 9, &pos), 0);
        assert_int_equal(pos, head);
        memset(text, 't', sizeof(text));
        rd[0].text = text;
        rd[0].text_len = 30000;
        rd[1].text = text;
        rd[1].text_len = 40000;
        assert_int_equal(agent_ring_append_group(r, rd, NULL, 2, 10, &pos), 0);
        /* a record larger than the ring, or than its free space */
        rd[2].text = text;
        rd[2].text_len = 40000;
        for (int i = 3; i < 7; i++)
                rd[i] = rd[2];
        assert_int_equal(agent_ring_append_group(r, rd, NULL, 7, 11, &pos), -EMSGSIZE);
        head = agent_ring_head(r);
        assert_int_equal(agent_ring_append_group(r, rd, NULL, 5, 11, &pos), -ENOSPC);
        assert_int_equal(agent_ring_head(r), head);
        agent_ring_close(r);

        r = ring_open(f->path, 256 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_int_equal(rec.records, 6 + AGENT_RING_GROUP_MAX + 2);
        agent_ring_iter_init(r, 0, &it);
        for (int n = 0; agent_ring_iter_next(&it, &e) == 0; n++)
                assert_int_equal(e.seq, n);
        agent_ring_close(r);
}

/* A group refused for one of its readings leaves nothing a reopen would take as a
 * record, even though its first entries were written in place before the bad one. */
static void test_group_refused_in_place(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, NULL);
        struct agent_reading rd[5];
        struct agent_ring_recovery rec;
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        uint64_t pos, head;

        for (int i = 0; i < 5; i++)
                rd[i] = grp_reading(i, 1000);
        assert_int_equal(agent_ring_append_group(r, rd, NULL, 5, 7, &pos), 0);
        head = agent_ring_head(r);
        rd[4].value = INFINITY;
        assert_int_equal(agent_ring_append_group(r, rd, NULL, 5, 8, &pos), -EDOM);
        rd[4] = grp_reading(4, 1000);
        rd[3].metric_len = 0;
        assert_int_equal(agent_ring_append_group(r, rd, NULL, 5, 8, &pos), -EINVAL);
        assert_int_equal(agent_ring_head(r), head);
        agent_ring_close(r);

        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_int_equal(rec.records, 5);
        assert_int_equal(rec.rolled_forward, 0);
        assert_int_equal(agent_ring_head(r), head);
        rd[3] = grp_reading(3, 1000);
        assert_int_equal(agent_ring_append_group(r, rd, NULL, 5, 9, &pos), 0);
        assert_int_equal(pos, head);
        agent_ring_iter_init(r, 0, &it);
        for (int n = 0; n < 10; n++) {
                assert_int_equal(agent_ring_iter_next(&it, &e), 0);
                assert_int_equal(e.seq, n);
                assert_int_equal(e.arrival_us, n < 5 ? 7 : 9);
        }
        assert_int_equal(agent_ring_iter_next(&it, &e), -ENOENT);
        agent_ring_close(r);
}

/* A record torn by power loss takes all of its readings with it. */
static void test_group_torn(void **state)
{
        struct fixture *f = *state;
        struct agent_ring *r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, NULL);
        struct agent_reading rd[4];
        struct agent_ring_recovery rec;
        uint64_t pos[3], head;
        uint8_t b;

        for (int k = 0; k < 3; k++) {
                for (int i = 0; i < 4; i++)
                        rd[i] = grp_reading(i, 1000 + k);
                assert_int_equal(agent_ring_append_group(r, rd, NULL, 4, 7 + k, &pos[k]), 0);
        }
        head = agent_ring_head(r);
        agent_ring_close(r);
        /* a byte of the second record's third reading */
        assert_int_equal(peek(f->path, HDR + (off_t)pos[1] + 40 + 8 + 20 + 12 + 3, &b, 1), 0);
        b ^= 0x40;
        assert_int_equal(patch(f->path, HDR + (off_t)pos[1] + 40 + 8 + 20 + 12 + 3, &b, 1), 0);
        r = ring_open(f->path, 64 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_int_equal(rec.records, 4);
        assert_int_equal(rec.torn_bytes, head - pos[1]);
        assert_int_equal(agent_ring_head(r), pos[1]);
        agent_ring_close(r);
}

/* ---- format version 1 (docs/ring.md §12), written as that version did ---- */

struct v1_file {
        uint8_t *buf;
        uint64_t size, cap, id, head, seq, pos[128];
};

static void v1_begin(struct v1_file *v, uint64_t size, uint64_t start, uint64_t seq)
{
        static const char magic[8] = {'F', 'L', 'O', 'E', 'R', 'I', 'N', 'G'};
        uint32_t u32;
        uint64_t u64;

        v->buf = calloc(1, size);
        assert_non_null(v->buf);
        v->size = size;
        v->cap = size - HDR;
        v->id = 0x5eed0001;
        v->head = start;
        v->seq = seq;
        memcpy(v->buf, magic, 8);
        u32 = 1;
        memcpy(v->buf + 8, &u32, 4);
        u32 = HDR;
        memcpy(v->buf + 12, &u32, 4);
        memcpy(v->buf + 16, &size, 8);
        memcpy(v->buf + 24, &v->id, 8);
        u64 = 1763676000000000ULL;
        memcpy(v->buf + 32, &u64, 8);
        u32 = agent_ring_crc32c(0, v->buf, 40);
        memcpy(v->buf + 40, &u32, 4);
}

static void v1_add(struct v1_file *v, uint64_t n)
{
        struct gen g;
        const struct agent_reading *rd = gen_reading(&g, n);
        uint32_t len = (uint32_t)(56 + rd->sensor_len + rd->metric_len + rd->text_len), crc;
        uint32_t seed = agent_ring_crc32c(0, &v->id, 8);
        uint64_t off = v->head % v->cap, n8 = (len + 7) & ~7u;
        uint8_t flags = (uint8_t)((n % 3 == 1 ? AGENT_RING_F_TS_STAMPED : 0) |
                                  (rd->value_null ? AGENT_RING_F_NULL : 0) |
                                  (rd->text ? AGENT_RING_F_TEXT : 0));
        int64_t arrival = (int64_t)(n / group_of) + 5;
        double value = rd->value_null ? 0.0 : rd->value;
        uint16_t tl = (uint16_t)rd->text_len;
        uint8_t *p;

        if (n8 > v->cap - off) {
                uint32_t mark[2] = {UINT32_MAX, agent_ring_crc32c(seed, &v->head, 8)};

                memcpy(v->buf + HDR + off, mark, 8);
                v->head += v->cap - off;
                off = 0;
        }
        p = v->buf + HDR + off;
        memset(p, 0, n8);
        memcpy(p, &len, 4);
        memcpy(p + 8, &v->head, 8);
        memcpy(p + 16, &v->seq, 8);
        memcpy(p + 24, &rd->ts_us, 8);
        memcpy(p + 32, &arrival, 8);
        memcpy(p + 40, &value, 8);
        p[48] = flags;
        p[49] = (uint8_t)rd->sensor_len;
        p[50] = (uint8_t)rd->metric_len;
        memcpy(p + 52, &tl, 2);
        memcpy(p + 56, rd->sensor, rd->sensor_len);
        memcpy(p + 56 + rd->sensor_len, rd->metric, rd->metric_len);
        if (rd->text_len)
                memcpy(p + 56 + rd->sensor_len + rd->metric_len, rd->text, rd->text_len);
        crc = agent_ring_crc32c(seed, p + 8, len - 8);
        memcpy(p + 4, &crc, 4);
        v->pos[n % 128] = v->head;
        v->head += n8;
        v->seq++;
}

static void v1_end(struct v1_file *v, const char *path, uint64_t events, uint64_t agg,
                   int64_t watermark, uint64_t pending_seq, uint64_t pending_cursor)
{
        uint64_t pend_kind = 1;
        int fd;

        memcpy(v->buf + 64, &v->head, 8);
        memcpy(v->buf + 72, &v->seq, 8);
        memcpy(v->buf + 80, &events, 8);
        memcpy(v->buf + 88, &agg, 8);
        memcpy(v->buf + 96, &watermark, 8);
        memcpy(v->buf + 104, &pending_seq, 8);
        memcpy(v->buf + 112, &pending_cursor, 8);
        memcpy(v->buf + 128, &pend_kind, 8);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, v->buf, v->size), (ssize_t)v->size);
        close(fd);
        free(v->buf);
}

/* An upgrade keeps every reading, both cursors, the hand-over and the
 * watermark of a version 1 ring. */
static void test_migrate_v1(void **state)
{
        struct fixture *f = *state;
        struct agent_ring_recovery rec;
        struct agent_ring_pending h;
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        struct agent_ring *r;
        struct v1_file v;
        uint32_t version;
        uint64_t n, records = 0;

        group_of = 4; /* runs of four readings of one sensor and arrival */
        /* a later lap: positions past the capacity, and a wrap on the way */
        v1_begin(&v, 16 << 10, 3 * (12 << 10) - 1000, 500);
        for (n = 0; n < 40; n++)
                v1_add(&v, n);
        v1_end(&v, f->path, v.pos[12], v.pos[5], 777, 99, v.pos[22]);

        r = ring_open(f->path, 16 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_true(rec.migrated);
        assert_int_equal(rec.records, 35);
        assert_int_equal(rec.torn_bytes, 0);
        assert_int_equal(peek(f->path, OFF_VERSION, &version, 4), 0);
        assert_int_equal(version, 2);
        assert_int_equal(agent_ring_watermark(r), 777);
        agent_ring_iter_init(r, agent_ring_agg_cursor(r), &it);
        for (n = 5; agent_ring_iter_next(&it, &e) == 0; n++) {
                assert_true(entry_matches(&e, n));
                assert_int_equal(e.seq, 500 + n);
                records += e.index == 0;
        }
        assert_int_equal(n, 40);
        /* grouped as the agent groups, split where a cursor stands */
        assert_true(records < 35);
        agent_ring_iter_init(r, agent_ring_events_cursor(r), &it);
        assert_int_equal(agent_ring_iter_next(&it, &e), 0);
        assert_true(entry_matches(&e, 12));
        agent_ring_get_pending(r, &h);
        assert_int_equal(h.seq, 99);
        assert_int_equal(h.kind, 1);
        assert_int_equal(agent_ring_iter_init(r, h.cursor, &it), 0);
        assert_int_equal(agent_ring_iter_next(&it, &e), 0);
        assert_true(entry_matches(&e, 22));
        /* sequence numbers go on */
        assert_int_equal(append_n(r, 40, NULL), 0);
        agent_ring_iter_init(r, h.cursor, &it);
        while (agent_ring_iter_next(&it, &e) == 0)
                n = e.seq;
        assert_int_equal(n, 540);
        agent_ring_close(r);

        /* a torn version 1 tail is dropped as recovery drops it */
        v1_begin(&v, 16 << 10, 0, 0);
        for (n = 0; n < 40; n++)
                v1_add(&v, n);
        v.buf[HDR + v.pos[30] + 60] ^= 1;
        v1_end(&v, f->path, v.pos[0], v.pos[0], INT64_MIN, 0, 0);
        r = ring_open(f->path, 16 << 10, AGENT_RING_SYNC_NONE, &rec);
        assert_true(rec.migrated);
        assert_int_equal(rec.records, 30);
        assert_true(rec.torn_bytes > 0);
        agent_ring_close(r);
        group_of = 1;
}

/* A version 1 ring whose readings would not fit the new format in the same
 * size is refused, and kept as it is. */
static void test_migrate_v1_too_full(void **state)
{
        struct fixture *f = *state;
        struct v1_file v;
        uint32_t version;
        uint64_t n = 0;

        v1_begin(&v, 8 << 10, 0, 0);
        /* sensor + metric of 7 bytes: 64 bytes a record in version 1, 72 in 2 */
        for (uint64_t k = 0; v.head + 64 <= v.cap; k++) {
                while (1 + (k * 1) % 23 + 1 + (k * 7) % 11 != 7 || k % 5 == 0)
                        k++;
                v1_add(&v, k);
                n++;
        }
        assert_true(n > 30);
        v1_end(&v, f->path, 0, 0, INT64_MIN, 0, 0);
        expect_open_error(f->path, 8 << 10, -EPROTONOSUPPORT, "does not fit");
        assert_int_equal(peek(f->path, OFF_VERSION, &version, 4), 0);
        assert_int_equal(version, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_refused_in_place, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_torn, setup, teardown),
                cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
                cmocka_unit_test_setup_teardown(test_migrate_v1_too_full, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
