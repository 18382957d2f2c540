/* SPDX-License-Identifier: Apache-2.0 */
/* Ring records (docs/ring.md §3): appending readings, grouping the readings
 * of one sensor that arrive together, reading them back, and the recovery
 * walk (§7). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "bytes.h"
#include "ring-internal.h"

uint32_t ring_wrap_crc(const struct agent_ring *r, uint64_t pos)
{
        return agent_ring_crc32c(r->seed, &pos, sizeof(pos));
}

/* ---- entries ---- */

struct entry {
        uint8_t flags; /* with RING_E_TS_SAME */
        uint8_t metric_len;
        uint16_t text_len;
        int64_t ts_us;
        double value;
        const char *metric;
        const char *text;
};

/* Reads the entry at p (avail bytes left in the record); ts carries the
 * previous entry's time. The size, or 0 when it is not a valid entry. */
static size_t entry_get(const uint8_t *p, size_t avail, bool first, struct entry *e)
{
        size_t n = 2;

        if (avail < 2)
                return 0;
        e->flags = p[0];
        e->metric_len = p[1];
        e->text_len = 0;
        if ((e->flags & ~RING_E_FLAGS) || !e->metric_len || (first && (e->flags & RING_E_TS_SAME)))
                return 0;
        if (e->flags & AGENT_RING_F_TEXT) {
                if (avail < n + 2)
                        return 0;
                memcpy(&e->text_len, p + n, 2);
                n += 2;
        }
        if (!(e->flags & RING_E_TS_SAME)) {
                if (avail < n + 8)
                        return 0;
                memcpy(&e->ts_us, p + n, 8);
                n += 8;
        }
        e->value = 0;
        if (!(e->flags & AGENT_RING_F_NULL)) {
                if (avail < n + 8)
                        return 0;
                memcpy(&e->value, p + n, 8);
                n += 8;
                if (!isfinite(e->value))
                        return 0;
        }
        if (avail < n + e->metric_len + e->text_len)
                return 0;
        e->metric = (const char *)p + n;
        e->text = e->metric + e->metric_len;
        return n + e->metric_len + e->text_len;
}

static size_t entry_size(const struct agent_reading *rd, uint8_t eflags, size_t tlen)
{
        return 2 + (eflags & AGENT_RING_F_TEXT ? 2 : 0) + (eflags & RING_E_TS_SAME ? 0 : 8) +
               (eflags & AGENT_RING_F_NULL ? 0 : 8) + rd->metric_len + tlen;
}

/* Writes the entry at p; returns the byte after it. */
static inline uint8_t *entry_put(uint8_t *p, const struct agent_reading *rd, uint8_t eflags,
                                 size_t tlen)
{
        uint16_t t16 = (uint16_t)tlen;

        *p++ = eflags;
        *p++ = (uint8_t)rd->metric_len;
        if (eflags & AGENT_RING_F_TEXT) {
                memcpy(p, &t16, 2);
                p += 2;
        }
        if (!(eflags & RING_E_TS_SAME)) {
                memcpy(p, &rd->ts_us, 8);
                p += 8;
        }
        if (!(eflags & AGENT_RING_F_NULL)) {
                memcpy(p, &rd->value, 8);
                p += 8;
        }
        agent_bytes_copy(p, rd->metric, rd->metric_len);
        if (tlen)
                memcpy(p + rd->metric_len, rd->text, tlen);
        return p + rd->metric_len + tlen;
}

/* Zeroes the bytes from len up to the next multiple of 8. */
static inline void pad8(uint8_t *rec, uint64_t len)
{
        uint64_t w, a = len & ~(uint64_t)7;

        if (len & 7) {
                memcpy(&w, rec + a, 8);
                w &= ~(UINT64_MAX << 8 * (len & 7));
                memcpy(rec + a, &w, 8);
        }
}

/* ---- records ---- */

int ring_rec_check(const struct agent_ring *r, uint64_t pos, bool crc,
                   const struct ring_rec **ret_rec, uint32_t *ret_entries, uint64_t *ret_next)
{
        uint64_t off = pos % r->cap, rem = r->cap - off;
        const uint8_t *p = r->data + off;
        const struct ring_rec *rec = (const struct ring_rec *)p;
        uint32_t len, sum, n = 0;
        uint64_t res;
        size_t at;

        memcpy(&len, p, sizeof(len));
        memcpy(&sum, p + 4, sizeof(sum));
        if (len == RING_WRAP) {
                /* a record never needs one at offset 0: it is at most cap */
                if (off == 0 || sum != ring_wrap_crc(r, pos))
                        return -EBADMSG;
                *ret_rec = NULL;
                *ret_entries = 0;
                *ret_next = pos + rem;
                return 0;
        }
        memcpy(&res, p + offsetof(struct ring_rec, sensor_len), 8); /* and the reserved bytes */
        if (len < RING_REC_HDR || ring_align8(len) > rem || rec->pos != pos || (res >> 8) != 0 ||
            !rec->sensor_len || RING_REC_HDR + rec->sensor_len >= len)
                return -EBADMSG;
        for (at = RING_REC_HDR + rec->sensor_len; at < len; n++) {
                struct entry e;
                size_t k = entry_get(p + at, len - at, n == 0, &e);

                if (!k)
                        return -EBADMSG;
                at += k;
        }
        if (crc && sum != agent_ring_crc32c(r->seed, p + 8, len - 8))
                return -EBADMSG;
        *ret_rec = rec;
        *ret_entries = n;
        *ret_next = pos + ring_align8(len);
        return 0;
}

/* The reading's entry flags, or -errno for a reading the ring refuses. */
static inline __attribute__((always_inline)) int entry_flags(const struct agent_reading *rd,
                                                             uint8_t flags)
{
        size_t tlen = rd->text ? rd->text_len : 0;

        if (((rd->sensor_len - 1) | (rd->metric_len - 1)) >= AGENT_RING_NAME_MAX ||
            rd->ts_us == AGENT_TS_NONE || (flags & ~AGENT_RING_F_CALLER) ||
            tlen > AGENT_RING_TEXT_MAX || (!rd->value_null && !isfinite(rd->value))) {
                if (!rd->sensor_len || !rd->metric_len || rd->ts_us == AGENT_TS_NONE ||
                    (flags & ~AGENT_RING_F_CALLER))
                        return -EINVAL;
                if (rd->sensor_len > AGENT_RING_NAME_MAX || rd->metric_len > AGENT_RING_NAME_MAX)
                        return -ENAMETOOLONG;
                if (tlen > AGENT_RING_TEXT_MAX)
                        return -EMSGSIZE;
                return -EDOM;
        }
        return flags | (rd->value_null ? AGENT_RING_F_NULL : 0) |
               (rd->text ? AGENT_RING_F_TEXT : 0);
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
        uint64_t c = ~crc, v;

        for (; len >= 8; p += 8, len -= 8) {
                memcpy(&v, p, 8);
                c = __builtin_ia32_crc32di(c, v);
        }
        crc = (uint32_t)c;
        for (; len > 0; p++, len--)
                crc = __builtin_ia32_crc32qi(crc, *p);
        return ~crc;
}
#endif

/* The record's checksum and the header's store, once its bytes are in place (§5). */
static int commit(struct agent_ring *r, uint8_t *p, uint64_t len, uint64_t head, uint64_t pos,
                  size_t n)
{
        struct ring_header *h = r->hdr;
        uint64_t seq = h->next_seq;

#if defined(__x86_64__)
        if (r->crc_hw)
                ((struct ring_rec *)p)->crc = crc_hw(r->seed, p + 8, len - 8);
        else
#endif
                ((struct ring_rec *)p)->crc = agent_ring_crc32c(r->seed, p + 8, len - 8);
        ring_store(r, &h->next_seq, seq + n);
        ring_store(r, &h->head, pos + ring_align8(len));
        if (r->sync == AGENT_RING_SYNC_ALWAYS) {
                int e = agent_ring_sync(r);

                if (e < 0) {
                        /* not durable, so not accepted */
                        ring_store(r, &h->head, head);
                        ring_store(r, &h->next_seq, seq);
                        return -EIO;
                }
        }
        r->appended += n;
        return 0;
}

/*
 * The usual append: readings without texts, whose record fits before the end of the
 * record space even at the largest size they could take, written in place as their
 * entries are checked. 1 for the others (the caller works out the exact size first); a
 * refused reading leaves a record of length 0 there, which never checks out.
 */
static int append_in_place(struct agent_ring *r, const struct agent_reading *rd,
                           const uint8_t *flags, size_t n, int64_t arrival_us, uint64_t *ret_pos)
{
        uint64_t head = r->hdr->head, off = head % r->cap, bound, len;
        size_t slen = rd[0].sensor_len;
        struct ring_rec *rec;
        int64_t ts = 0;
        uint8_t *p, *q;
        int f = 0, e;

        /* without texts: entries of at most 18 bytes and a name */
        if (slen - 1 >= AGENT_RING_NAME_MAX)
                return 1;
        bound = ring_align8(RING_REC_HDR + slen + n * (18 + AGENT_RING_NAME_MAX));
        if (bound > r->cap - off || head + bound - ring_min_cursor(r) > r->cap ||
            head + bound > RING_POS_MAX)
                return 1;
        p = r->data + off;
        rec = (struct ring_rec *)p;
        *rec = (struct ring_rec){.pos = head,
                                 .seq = r->hdr->next_seq,
                                 .arrival_us = arrival_us,
                                 .sensor_len = (uint8_t)slen};
        agent_bytes_copy(p + RING_REC_HDR, rd[0].sensor, slen);
        q = p + RING_REC_HDR + slen;
        for (size_t i = 0; i < n; i++) {
                if (rd[i].text)
                        return 1; /* for the exact path; rec->length is still 0 */
                f = entry_flags(&rd[i], flags ? flags[i] : 0);
                if (f < 0)
                        break;
                if (rd[i].sensor_len != slen ||
                    (rd[i].sensor != rd[0].sensor &&
                     !agent_bytes_eq(rd[i].sensor, rd[0].sensor, slen))) {
                        f = -EINVAL;
                        break;
                }
                if (i > 0 && rd[i].ts_us == ts)
                        f |= RING_E_TS_SAME;
                ts = rd[i].ts_us;
                q = entry_put(q, &rd[i], (uint8_t)f, 0);
        }
        if (f < 0)
                return f; /* rec->length is still 0 */
        len = (uint64_t)(q - p);
        rec->length = (uint32_t)len;
        pad8(p, len);
        e = commit(r, p, len, head, head, n);
        if (e == 0 && ret_pos)
                *ret_pos = head;
        return e;
}

int agent_ring_append_group(struct agent_ring *r, const struct agent_reading *rd,
                            const uint8_t *flags, size_t n, int64_t arrival_us, uint64_t *ret_pos)
{
        struct ring_header *h = r->hdr;
        uint64_t head = h->head, pos = head, off, rem, len, need, seq = h->next_seq;
        size_t slen = n ? rd[0].sensor_len : 0;
        uint8_t ef[AGENT_RING_GROUP_MAX];
        uint32_t es[AGENT_RING_GROUP_MAX];
        struct ring_rec *rec;
        int64_t ts = 0;
        uint8_t *p, *q;
        int e;

        if (n == 0 || n > AGENT_RING_GROUP_MAX)
                return -EINVAL;
        e = append_in_place(r, rd, flags, n, arrival_us, ret_pos);
        if (e <= 0)
                return e;
        len = RING_REC_HDR + slen;
        for (size_t i = 0; i < n; i++) {
                int f = entry_flags(&rd[i], flags ? flags[i] : 0);

                if (f < 0)
                        return f;
                if (rd[i].sensor_len != slen || (rd[i].sensor != rd[0].sensor &&
                                                 !agent_bytes_eq(rd[i].sensor, rd[0].sensor, slen)))
                        return -EINVAL;
                if (i > 0 && rd[i].ts_us == ts)
                        f |= RING_E_TS_SAME;
                ts = rd[i].ts_us;
                ef[i] = (uint8_t)f;
                es[i] = (uint32_t)entry_size(&rd[i], ef[i], rd[i].text ? rd[i].text_len : 0);
                len += es[i];
        }
        if (ring_align8(len) > r->cap)
                return -EMSGSIZE;
        off = head % r->cap;
        rem = r->cap - off;
        need = ring_align8(len) > rem ? rem + ring_align8(len) : ring_align8(len);
        if (head + need - ring_min_cursor(r) > r->cap || head + need > RING_POS_MAX) {
                r->full++;
                return -ENOSPC;
        }
        if (ring_align8(len) > rem) {
                uint32_t mark[2] = {RING_WRAP, ring_wrap_crc(r, pos)};

                memcpy(r->data + off, mark, sizeof(mark));
                pos += rem;
                off = 0;
        }
        p = r->data + off;
        rec = (struct ring_rec *)p;
        *rec = (struct ring_rec){.length = (uint32_t)len,
                                 .pos = pos,
                                 .seq = seq,
                                 .arrival_us = arrival_us,
                                 .sensor_len = (uint8_t)slen};
        agent_bytes_copy(p + RING_REC_HDR, rd[0].sensor, slen);
        q = p + RING_REC_HDR + slen;
        for (size_t i = 0; i < n; i++) {
                entry_put(q, &rd[i], ef[i], rd[i].text ? rd[i].text_len : 0);
                q += es[i];
        }
        pad8(p, len);
        e = commit(r, p, len, head, pos, n);
        if (e == 0 && ret_pos)
                *ret_pos = pos;
        return e;
}

int agent_ring_append(struct agent_ring *r, const struct agent_reading *rd, uint8_t flags,
                      int64_t arrival_us, uint64_t *ret_pos)
{
        return agent_ring_append_group(r, rd, &flags, 1, arrival_us, ret_pos);
}

/* ---- reading back ---- */

int agent_ring_iter_init(struct agent_ring *r, uint64_t from_pos, struct agent_ring_iter *it)
{
        *it = (struct agent_ring_iter){.ring = r, .pos = from_pos};
        if (from_pos < ring_min_cursor(r) || from_pos > ring_load(&r->hdr->head) || from_pos & 7)
                it->error = -EINVAL;
        return it->error;
}

int agent_ring_iter_next(struct agent_ring_iter *it, struct agent_ring_entry *ret)
{
        struct agent_ring *r = it->ring;
        const struct ring_rec *rc;
        const uint8_t *p;
        struct entry e;
        size_t k;

        if (it->error)
                return it->error;
        if (it->pos < ring_min_cursor(r))
                return -ESTALE;
        while (it->off == 0) {
                uint64_t head = ring_load(&r->hdr->head), next;
                uint32_t n;

                if (it->pos >= head)
                        return -ENOENT;
                if (ring_rec_check(r, it->pos, true, &rc, &n, &next) < 0 || next > head)
                        return -EBADMSG;
                if (!rc) {
                        it->pos = next;
                        continue;
                }
                it->next = next;
                it->entries = n;
                it->index = 0;
                it->off = (uint32_t)(RING_REC_HDR + rc->sensor_len);
        }
        p = r->data + it->pos % r->cap;
        rc = (const struct ring_rec *)p;
        e.ts_us = it->ts;
        k = entry_get(p + it->off, rc->length - it->off, it->index == 0, &e);
        if (!k)
                return -EBADMSG; /* changed since the record checked out */
        *ret = (struct agent_ring_entry){
                .rd = {.sensor = (const char *)p + RING_REC_HDR,
                       .sensor_len = rc->sensor_len,
                       .metric = e.metric,
                       .metric_len = e.metric_len,
                       .ts_us = e.ts_us,
                       .value = e.value,
                       .value_null = e.flags & AGENT_RING_F_NULL},
                .flags = e.flags & (uint8_t)~RING_E_TS_SAME,
                .arrival_us = rc->arrival_us,
                .seq = rc->seq + it->index,
                .pos = it->pos,
                .next = it->next,
                .index = it->index,
                .entries = it->entries,
                .length = rc->length,
        };
        if (e.flags & AGENT_RING_F_TEXT) {
                ret->rd.text = e.text;
                ret->rd.text_len = e.text_len;
        }
        it->ts = e.ts_us;
        it->off += (uint32_t)k;
        if (++it->index == it->entries) {
                it->pos = it->next;
                it->off = 0;
        }
        return 0;
}

/* ---- recovery ---- */

int ring_recover(struct agent_ring *r, const char *path, struct agent_ring_recovery *rec, char *err,
                 size_t errsize)
{
        struct ring_header *h = r->hdr;
        uint64_t start = ring_min_cursor(r), stored = h->head, pos = start, next, seq = 0;
        uint64_t cur[2] = {h->events_cursor, h->agg_cursor};
        bool hit[2] = {false, false}, have_seq = false;
        const struct ring_rec *rc;
        uint32_t n;

        for (;;) {
                for (int i = 0; i < 2; i++)
                        hit[i] |= cur[i] == pos;
                if (pos - start >= r->cap || ring_rec_check(r, pos, true, &rc, &n, &next) < 0 ||
                    next - start > r->cap)
                        break;
                if (rc) {
                        if (have_seq && rc->seq != seq)
                                break;
                        seq = rc->seq + n;
                        have_seq = true;
                        rec->records += n;
                        if (pos >= stored)
                                rec->rolled_forward += n;
                }
                pos = next;
        }
        for (int i = 0; i < 2; i++) {
                if (cur[i] > pos) {
                        cur[i] = pos;
                        rec->cursors_clamped++;
                } else if (!hit[i]) {
                        return ring_fail(err, errsize, -EBADMSG,
                                         "ring %s: %s cursor %" PRIu64 " is not at a record", path,
                                         i == 0 ? "events" : "aggregates", cur[i]);
                }
        }
        rec->bytes = pos - start;
        rec->torn_bytes = stored > pos ? stored - pos : 0;
        /* Past a tear, records of this lap may survive beyond the gap; they
         * must never chain onto records appended later. */
        if (pos != stored) {
                ring_data_range(r, pos, start + r->cap - pos, true);
                r->sync_all = true;
        }
        if (have_seq)
                h->next_seq = seq;
        ring_store(r, &h->events_cursor, cur[0]);
        ring_store(r, &h->agg_cursor, cur[1]);
        ring_store(r, &h->head, pos);
        r->synced_head = pos;
        r->hdr_dirty = pos != stored || rec->cursors_clamped;
        return 0;
}
