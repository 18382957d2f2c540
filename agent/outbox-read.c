/* SPDX-License-Identifier: Apache-2.0 */
/* The outbox's read side: finding records, iterating, reading frames. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "outbox-internal.h"

static uint64_t seg_key(const struct outbox_seg *seg)
{
        return seg->count > 0 ? seg->recs[0].seq : seg->name;
}

/* The last segment whose first seq is <= seq, or nseg if none. */
static size_t seg_find(const struct agent_outbox *ob, uint64_t seq)
{
        size_t lo = 0, hi = ob->nseg;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (seg_key(&ob->segs[mid]) <= seq)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo == 0 ? ob->nseg : lo - 1;
}

static uint32_t rec_lower_bound(const struct outbox_seg *seg, uint64_t seq)
{
        uint32_t lo = 0, hi = seg->count;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (seg->recs[mid].seq < seq)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

int outbox_find(const struct agent_outbox *ob, uint64_t seq, size_t *ret_i, uint32_t *ret_j)
{
        size_t i = seg_find(ob, seq);
        uint32_t j;

        if (i == ob->nseg)
                return -ENOENT;
        j = rec_lower_bound(&ob->segs[i], seq);
        if (j == ob->segs[i].count || ob->segs[i].recs[j].seq != seq)
                return -ENOENT;
        *ret_i = i;
        *ret_j = j;
        return 0;
}

int agent_outbox_next_unacked(const struct agent_outbox *ob, uint64_t from_seq, uint64_t *ret_seq)
{
        size_t i = seg_find(ob, from_seq);

        if (i == ob->nseg)
                i = 0;
        for (; i < ob->nseg; i++) {
                const struct outbox_seg *seg = &ob->segs[i];

                if (seg->acked == seg->count)
                        continue;
                for (uint32_t j = rec_lower_bound(seg, from_seq); j < seg->count; j++) {
                        if (!(seg->recs[j].events & OUTBOX_ACKED)) {
                                *ret_seq = seg->recs[j].seq;
                                return 0;
                        }
                }
        }
        return -ENOENT;
}

static int seg_fd(struct agent_outbox *ob, size_t i, int *ret)
{
        char path[OUTBOX_SEG_NAME_LEN + 1];
        int fd;

        if (outbox_is_active(ob, i)) {
                *ret = ob->active_fd;
                return 0;
        }
        if (ob->read_fd >= 0 && ob->read_name == ob->segs[i].name) {
                *ret = ob->read_fd;
                return 0;
        }
        outbox_seg_name(ob->segs[i].name, path);
        fd = openat(ob->dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (ob->read_fd >= 0)
                close(ob->read_fd);
        ob->read_fd = fd;
        ob->read_name = ob->segs[i].name;
        *ret = fd;
        return 0;
}

/* The header of a held record, checked against the index. */
static int read_hdr(struct agent_outbox *ob, uint64_t seq, int *ret_fd, uint64_t *ret_off,
                    uint8_t raw[OUTBOX_HDR_SIZE], struct outbox_hdr *ret_h, bool *ret_acked)
{
        const struct outbox_rec *rec;
        struct outbox_hdr h;
        uint32_t j;
        ssize_t n;
        size_t i;
        int fd = -1, r;

        r = outbox_find(ob, seq, &i, &j);
        if (r < 0)
                return r;
        rec = &ob->segs[i].recs[j];
        r = seg_fd(ob, i, &fd);
        if (r < 0)
                return r;
        n = outbox_pread_full(fd, raw, OUTBOX_HDR_SIZE, rec->offset);
        if (n < 0)
                return (int)n;
        if (n != OUTBOX_HDR_SIZE || outbox_hdr_decode(raw, &h) < 0 || h.seq != seq ||
            h.epoch != ob->epoch || h.events != (rec->events & ~OUTBOX_ACKED))
                return -EBADMSG;
        *ret_fd = fd;
        *ret_off = rec->offset;
        *ret_h = h;
        *ret_acked = rec->events & OUTBOX_ACKED;
        return 0;
}

int agent_outbox_record_info(struct agent_outbox *ob, uint64_t seq, struct agent_outbox_record *ret)
{
        uint8_t raw[OUTBOX_HDR_SIZE];
        struct outbox_hdr h;
        uint64_t off;
        bool acked;
        int fd = -1, r;

        r = read_hdr(ob, seq, &fd, &off, raw, &h, &acked);
        if (r < 0)
                return r;
        *ret = (struct agent_outbox_record){
                .seq = seq, .len = h.len, .events = h.events, .kind = h.kind, .acked = acked};
        return 0;
}

int agent_outbox_read(struct agent_outbox *ob, uint64_t seq, uint8_t *buf, size_t size,
                      size_t *ret_len)
{
        uint8_t raw[OUTBOX_HDR_SIZE];
        struct outbox_hdr h;
        uint64_t off;
        bool acked;
        ssize_t n;
        int fd = -1, r;

        r = read_hdr(ob, seq, &fd, &off, raw, &h, &acked);
        if (r < 0)
                return r;
        if (h.len > size)
                return -ENOBUFS;
        n = outbox_pread_full(fd, buf, h.len, off + OUTBOX_HDR_SIZE);
        if (n < 0)
                return (int)n;
        if ((size_t)n != h.len || outbox_crc32c(outbox_crc32c(0, raw, 36), buf, h.len) != h.crc)
                return -EBADMSG;
        *ret_len = h.len;
        return 0;
}

void agent_outbox_stats(const struct agent_outbox *ob, struct agent_outbox_stats *ret)
{
        *ret = ob->st;
        ret->epoch = ob->epoch;
        ret->next_seq = ob->next_seq;
        ret->oldest_unacked_seq = outbox_oldest_unacked(ob, 0);
        ret->batches = ob->pending_batches;
        ret->events = ob->pending_events;
        ret->bytes = ob->bytes;
        ret->segments = ob->nseg;
}

const char *agent_outbox_origin_name(enum agent_outbox_origin o)
{
        switch (o) {
        case AGENT_OUTBOX_CREATED:
                return "created";
        case AGENT_OUTBOX_RESUMED:
                return "resumed";
        case AGENT_OUTBOX_META_REBUILT:
                return "meta-rebuilt";
        case AGENT_OUTBOX_EPOCH_RESET:
                return "epoch-reset";
        }
        return "unknown";
}
