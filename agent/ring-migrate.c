/* SPDX-License-Identifier: Apache-2.0 */
/* A ring of format version 1 (one reading per record) is converted at open:
 * its readings are appended to a new file of the current format, which then
 * replaces it (docs/ring.md §12). Nothing an older agent accepted is lost by
 * an upgrade. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>

#include "ring-internal.h"

/* Version 1 records (docs/ring.md §12). */
struct v1_rec {
        uint32_t length;
        uint32_t crc;
        uint64_t pos;
        uint64_t seq;
        int64_t ts_us;
        int64_t arrival_us;
        double value;
        uint8_t flags;
        uint8_t sensor_len;
        uint8_t metric_len;
        uint8_t reserved0;
        uint16_t text_len;
        uint16_t reserved1;
};

#define V1_HDR   sizeof(struct v1_rec)
#define V1_FLAGS (AGENT_RING_F_NULL | AGENT_RING_F_TEXT | AGENT_RING_F_CALLER)

_Static_assert(sizeof(struct v1_rec) == 56, "version 1 record layout");

struct migrate {
        const char *path;
        const uint8_t *data; /* the old record space */
        uint64_t cap;
        uint32_t seed;
        struct ring_header h; /* the old header */
        struct agent_ring_recovery *rec;
};

/* Version 1's record check: 0 and *ret_next, *ret_rec NULL for a wrap marker. */
static int v1_check(const struct migrate *m, uint64_t pos, const struct v1_rec **ret_rec,
                    uint64_t *ret_next)
{
        uint64_t off = pos % m->cap, rem = m->cap - off;
        const uint8_t *p = m->data + off;
        const struct v1_rec *rec = (const struct v1_rec *)p;
        uint32_t len, sum;

        memcpy(&len, p, sizeof(len));
        memcpy(&sum, p + 4, sizeof(sum));
        if (len == RING_WRAP) {
                if (off == 0 || sum != agent_ring_crc32c(m->seed, &pos, sizeof(pos)))
                        return -EBADMSG;
                *ret_rec = NULL;
                *ret_next = pos + rem;
                return 0;
        }
        if (len < V1_HDR || ring_align8(len) > rem || rec->pos != pos)
                return -EBADMSG;
        if ((rec->flags & ~V1_FLAGS) || rec->reserved0 || rec->reserved1 || !rec->sensor_len ||
            !rec->metric_len || V1_HDR + rec->sensor_len + rec->metric_len + rec->text_len != len)
                return -EBADMSG;
        if ((rec->text_len && !(rec->flags & AGENT_RING_F_TEXT)) ||
            (!(rec->flags & AGENT_RING_F_NULL) && !isfinite(rec->value)))
                return -EBADMSG;
        if (sum != agent_ring_crc32c(m->seed, p + 8, len - 8))
                return -EBADMSG;
        *ret_rec = rec;
        *ret_next = pos + ring_align8(len);
        return 0;
}

#define RUN_MAX 64

/* Readings of one sensor and arrival read in a row: they become one record,
 * as the agent would have written them. */
struct run {
        struct agent_reading rd[RUN_MAX];
        uint8_t flags[RUN_MAX];
        int64_t arrival_us;
        size_t n;
        uint64_t done; /* readings appended */
};

static int run_flush(struct migrate *m, struct agent_ring *nr, struct run *u, char *err,
                     size_t errsize)
{
        int e;

        if (u->n == 0)
                return 0;
        e = agent_ring_append_group(nr, u->rd, u->flags, u->n, u->arrival_us, NULL);
        if (e < 0)
                return ring_fail(err, errsize, -EPROTONOSUPPORT,
                                 "ring %s: format version 1: reading %" PRIu64
                                 " does not fit a version %d ring of this size (%s)",
                                 m->path, u->done + 1, RING_VERSION, strerror(-e));
        u->done += u->n;
        u->n = 0;
        return 0;
}

static int run_add(struct migrate *m, struct agent_ring *nr, struct run *u,
                   const struct agent_reading *rd, uint8_t flags, int64_t arrival_us, char *err,
                   size_t errsize)
{
        int e = 0;

        if (u->n == RUN_MAX ||
            (u->n && (u->arrival_us != arrival_us || u->rd[0].sensor_len != rd->sensor_len ||
                      memcmp(u->rd[0].sensor, rd->sensor, rd->sensor_len) != 0)))
                e = run_flush(m, nr, u, err, errsize);
        u->rd[u->n] = *rd;
        u->flags[u->n++] = flags;
        u->arrival_us = arrival_us;
        return e;
}

/* The recovery walk of version 1 (docs/ring.md §7), appending each reading
 * to the new ring nr as it goes. */
static int convert(struct migrate *m, struct agent_ring *nr, char *err, size_t errsize)
{
        const struct ring_header *h = &m->h;
        uint64_t old[3] = {h->events_cursor, h->agg_cursor, h->pending_cursor}, now[3] = {0};
        uint64_t start = old[0] < old[1] ? old[0] : old[1], pos = start, next, seq = 0;
        bool hit[3] = {false, false, false}, have_seq = false;
        struct run u = {.n = 0}; /* 5 KiB */
        const struct v1_rec *rc;
        int e;

        for (;;) {
                /* a cursor stands between records: the run ends there */
                for (int i = 0; i < 3; i++) {
                        if (hit[i] || old[i] != pos)
                                continue;
                        e = run_flush(m, nr, &u, err, errsize);
                        if (e < 0)
                                return e;
                        now[i] = nr->hdr->head;
                        hit[i] = true;
                }
                if (pos - start >= m->cap || v1_check(m, pos, &rc, &next) < 0 ||
                    next - start > m->cap)
                        break;
                if (rc) {
                        const char *s = (const char *)rc + V1_HDR;
                        struct agent_reading rd = {
                                .sensor = s,
                                .sensor_len = rc->sensor_len,
                                .metric = s + rc->sensor_len,
                                .metric_len = rc->metric_len,
                                .ts_us = rc->ts_us,
                                .value = rc->value,
                                .value_null = rc->flags & AGENT_RING_F_NULL,
                        };

                        if (have_seq && rc->seq != seq)
                                break;
                        if (!have_seq)
                                nr->hdr->next_seq = rc->seq;
                        seq = rc->seq + 1;
                        have_seq = true;
                        if (rc->flags & AGENT_RING_F_TEXT) {
                                rd.text = s + rc->sensor_len + rc->metric_len;
                                rd.text_len = rc->text_len;
                        }
                        e = run_add(m, nr, &u, &rd, rc->flags & AGENT_RING_F_CALLER, rc->arrival_us,
                                    err, errsize);
                        if (e < 0)
                                return e;
                        if (pos >= h->head)
                                m->rec->rolled_forward++;
                }
                pos = next;
        }
        e = run_flush(m, nr, &u, err, errsize);
        if (e < 0)
                return e;
        for (int i = 0; i < 2; i++) {
                if (old[i] > pos) {
                        now[i] = nr->hdr->head;
                        m->rec->cursors_clamped++;
                } else if (!hit[i]) {
                        return ring_fail(err, errsize, -EBADMSG,
                                         "ring %s: %s cursor %" PRIu64 " is not at a record",
                                         m->path, i == 0 ? "events" : "aggregates", old[i]);
                }
        }
        m->rec->torn_bytes = h->head > pos ? h->head - pos : 0;
        nr->hdr->events_cursor = now[0];
        nr->hdr->agg_cursor = now[1];
        /* a hand-over names a cursor move; one that no longer maps is dropped,
         * and its records are replayed */
        if (h->pending_seq && (hit[2] || old[2] > pos)) {
                nr->hdr->pending_seq = h->pending_seq;
                nr->hdr->pending_cursor = hit[2] ? now[2] : nr->hdr->head;
                nr->hdr->pending_watermark_us = h->pending_watermark_us;
                nr->hdr->pending_kind = h->pending_kind;
        }
        return 0;
}

static int fill(void *ud, int fd, uint64_t size, char *err, size_t errsize)
{
        struct migrate *m = ud;
        struct agent_ring nr = {.fd = -1, .size = size, .cap = size - RING_HDR_SIZE};
        int e;

        nr.map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (nr.map == MAP_FAILED)
                return ring_fail(err, errsize, -errno, "ring %s: mmap: %s", m->path,
                                 strerror(errno));
        nr.hdr = (struct ring_header *)nr.map;
        nr.data = nr.map + RING_HDR_SIZE;
        nr.seed = agent_ring_crc32c(0, &nr.hdr->ring_id, sizeof(nr.hdr->ring_id));
        nr.crc_hw = ring_crc32c_hw();
        e = convert(m, &nr, err, errsize);
        munmap(nr.map, size);
        return e;
}

int ring_migrate_v1(const char *path, int fd, uint64_t size, struct agent_ring_recovery *rec,
                    char *err, size_t errsize)
{
        struct migrate m = {.path = path, .cap = size - RING_HDR_SIZE, .rec = rec};
        const uint8_t *map;
        int e;

        map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return ring_fail(err, errsize, -errno, "ring %s: mmap: %s", path, strerror(errno));
        memcpy(&m.h, map, sizeof(m.h));
        m.data = map + RING_HDR_SIZE;
        m.seed = agent_ring_crc32c(0, &m.h.ring_id, sizeof(m.h.ring_id));
        e = ring_header_positions(&m.h, size, path, err, errsize);
        if (e == 0)
                e = ring_create(path, size, m.h.watermark_us, m.h.next_seq, fill, &m, err, errsize);
        munmap((void *)map, size);
        return e;
}
