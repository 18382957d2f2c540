/* SPDX-License-Identifier: Apache-2.0 */
/* The outbox: append, ack, read, segment lifecycle. Format and recovery
 * live in outbox-format.c and outbox-recover.c; docs/outbox.md is normative. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "outbox-internal.h"

void agent_outbox_opts_default(struct agent_outbox_opts *ret)
{
        uint64_t segs = (AGENT_OUTBOX_MAX_BYTES_DEFAULT + AGENT_OUTBOX_SEGMENT_BYTES_DEFAULT - 1) /
                        AGENT_OUTBOX_SEGMENT_BYTES_DEFAULT;

        *ret = (struct agent_outbox_opts){
                .max_bytes = AGENT_OUTBOX_MAX_BYTES_DEFAULT,
                .segment_bytes = AGENT_OUTBOX_SEGMENT_BYTES_DEFAULT,
                .segment_records = AGENT_OUTBOX_SEGMENT_RECORDS_DEFAULT,
                .max_segments = (uint32_t)(2 * segs + 2),
                .max_record = AGENT_OUTBOX_MAX_RECORD_DEFAULT,
                .policy = AGENT_OUTBOX_DROP_OLDEST,
                .sync = AGENT_OUTBOX_SYNC_BATCH,
        };
}

static int resolve_opts(const struct agent_outbox_opts *in, struct agent_outbox_opts *ret,
                        char *err, size_t errsize)
{
        struct agent_outbox_opts o = in ? *in : (struct agent_outbox_opts){0};
        const char *bad = NULL;

        if (o.max_bytes == 0)
                o.max_bytes = AGENT_OUTBOX_MAX_BYTES_DEFAULT;
        if (o.segment_bytes == 0)
                o.segment_bytes = AGENT_OUTBOX_SEGMENT_BYTES_DEFAULT;
        if (o.segment_records == 0)
                o.segment_records = AGENT_OUTBOX_SEGMENT_RECORDS_DEFAULT;
        if (o.max_record == 0)
                o.max_record = AGENT_OUTBOX_MAX_RECORD_DEFAULT;
        if (o.max_segments == 0) {
                uint64_t segs =
                        o.max_bytes / o.segment_bytes + (o.max_bytes % o.segment_bytes != 0);

                o.max_segments = segs > (OUTBOX_MAX_SEGMENTS - 2) / 2 ? OUTBOX_MAX_SEGMENTS
                                                                      : (uint32_t)(2 * segs + 2);
        }
        if (o.segment_bytes < 1024 || o.segment_bytes > (1ULL << 30))
                bad = "segment_bytes must be 1 KiB to 1 GiB";
        else if (o.segment_records > (1U << 20))
                bad = "segment_records must be at most 1048576";
        else if (o.max_record > AGENT_OUTBOX_RECORD_MAX)
                bad = "max_record must be at most 64 MiB";
        else if (o.max_bytes < (uint64_t)o.max_record + OUTBOX_HDR_SIZE)
                bad = "max_bytes must hold one record of max_record bytes";
        else if (o.max_segments > OUTBOX_MAX_SEGMENTS)
                bad = "max_segments must be at most 65536";
        else if ((unsigned)o.policy > AGENT_OUTBOX_REJECT_NEW ||
                 (unsigned)o.sync > AGENT_OUTBOX_SYNC_NONE)
                bad = "unknown policy or sync mode";
        if (bad) {
                if (err && errsize > 0)
                        snprintf(err, errsize, "%s", bad);
                return -EINVAL;
        }
        *ret = o;
        return 0;
}

static int io_fail(struct agent_outbox *ob, int r)
{
        ob->st.io_errors++;
        return r;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
        return a > b ? a : b;
}

uint64_t outbox_oldest_unacked(const struct agent_outbox *ob, size_t from)
{
        for (size_t i = from; i < ob->nseg; i++) {
                const struct outbox_seg *seg = &ob->segs[i];

                if (seg->acked == seg->count)
                        continue;
                for (uint32_t j = 0; j < seg->count; j++)
                        if (!(seg->recs[j].events & OUTBOX_ACKED))
                                return seg->recs[j].seq;
        }
        return ob->next_seq;
}

/* Both slots, each synced, so that one always holds the newest state. */
static int meta_write(struct agent_outbox *ob, uint64_t floor, uint64_t done_below)
{
        struct outbox_meta m = {ob->meta_gen + 1, ob->epoch, floor, done_below};
        uint8_t slot[OUTBOX_META_SLOT_SIZE];

        if (ob->meta_fd < 0) {
                ob->meta_fd = openat(ob->dir_fd, OUTBOX_META_NAME,
                                     O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (ob->meta_fd < 0)
                        return io_fail(ob, -errno);
                ob->meta_created = true;
        }
        outbox_meta_encode(&m, slot);
        for (int i = 0; i < 2; i++) {
                int r = outbox_pwrite_full(ob->meta_fd, slot, sizeof(slot),
                                           (uint64_t)i * OUTBOX_META_SLOT_STRIDE);

                if (r == 0 && fdatasync(ob->meta_fd) < 0)
                        r = -errno;
                if (r < 0)
                        return io_fail(ob, r);
        }
        if (ob->meta_created) {
                if (fsync(ob->dir_fd) < 0)
                        return io_fail(ob, -errno);
                ob->meta_created = false;
        }
        ob->meta_gen = m.gen;
        ob->floor = floor;
        ob->done_below = done_below;
        return 0;
}

static int seg_remove(struct agent_outbox *ob, size_t i)
{
        struct outbox_seg *seg = &ob->segs[i];
        char path[OUTBOX_SEG_NAME_LEN + 1];

        outbox_seg_name(seg->name, path);
        if (unlinkat(ob->dir_fd, path, 0) < 0 && errno != ENOENT)
                return io_fail(ob, -errno);
        if (ob->read_fd >= 0 && ob->read_name == seg->name) {
                close(ob->read_fd);
                ob->read_fd = -1;
        }
        if (outbox_is_active(ob, i)) {
                close(ob->active_fd);
                ob->active_fd = -1;
        }
        ob->bytes -= seg->bytes;
        ob->pending_batches -= seg->count - seg->acked;
        ob->pending_events -= seg->events;
        floe_free(seg->recs);
        memmove(seg, seg + 1, (ob->nseg - i - 1) * sizeof(*seg));
        ob->nseg--;
        ob->segs[ob->nseg] = (struct outbox_seg){0};
        return 0;
}

static bool collectable(const struct agent_outbox *ob, size_t i, bool include_active)
{
        return ob->segs[i].acked == ob->segs[i].count &&
               (include_active || !outbox_is_active(ob, i));
}

/* Deletes fully acked segments: meta first, so that a restart never
 * forgets a seq or resends what a deleted segment held. */
static int collect(struct agent_outbox *ob, bool include_active)
{
        size_t n = 0;
        int r;

        for (size_t i = 0; i < ob->nseg; i++)
                n += collectable(ob, i, include_active);
        if (n == 0)
                return 0;
        r = meta_write(ob, max_u64(ob->floor, ob->next_seq), outbox_oldest_unacked(ob, 0));
        if (r < 0)
                return r;
        for (size_t i = ob->nseg; i-- > 0;) {
                if (collectable(ob, i, include_active)) {
                        int k = seg_remove(ob, i);

                        if (k < 0 && r == 0)
                                r = k;
                }
        }
        if (ob->opts.sync != AGENT_OUTBOX_SYNC_NONE && fsync(ob->dir_fd) < 0 && r == 0)
                r = io_fail(ob, -errno);
        return r;
}

static int drop_oldest(struct agent_outbox *ob, size_t k)
{
        int r;

        r = meta_write(ob, max_u64(ob->floor, ob->next_seq), outbox_oldest_unacked(ob, k));
        if (r < 0)
                return r;
        for (size_t i = 0; i < k; i++) {
                uint64_t batches = ob->segs[0].count - ob->segs[0].acked;
                uint64_t events = ob->segs[0].events;

                r = seg_remove(ob, 0);
                if (r < 0)
                        return r;
                ob->st.dropped_batches += batches;
                ob->st.dropped_events += events;
        }
        if (ob->opts.sync != AGENT_OUTBOX_SYNC_NONE && fsync(ob->dir_fd) < 0)
                return io_fail(ob, -errno);
        return 0;
}

static int seg_create(struct agent_outbox *ob)
{
        char path[OUTBOX_SEG_NAME_LEN + 1];
        struct outbox_rec *recs;
        int fd = -1, r;

        if (ob->nseg >= ob->seg_cap)
                return -ENOSPC;
        recs = floe_calloc(ob->opts.segment_records, sizeof(*recs));
        if (!recs)
                return -ENOMEM;
        outbox_seg_name(ob->next_seq, path);
        fd = openat(ob->dir_fd, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = -errno;
                floe_free(recs);
                return io_fail(ob, r);
        }
        if (ob->opts.sync != AGENT_OUTBOX_SYNC_NONE && fsync(ob->dir_fd) < 0) {
                r = -errno;
                close(fd);
                (void)unlinkat(ob->dir_fd, path, 0);
                floe_free(recs);
                return io_fail(ob, r);
        }
        ob->segs[ob->nseg++] = (struct outbox_seg){
                .name = ob->next_seq,
                .cap = ob->opts.segment_records,
                .recs = recs,
        };
        ob->active_fd = fd;
        return 0;
}

/* The active segment becomes read-only; its index shrinks to its records. */
static void seal_active(struct agent_outbox *ob)
{
        struct outbox_seg *seg;

        if (ob->active_fd < 0)
                return;
        seg = &ob->segs[ob->nseg - 1];
        close(ob->active_fd);
        ob->active_fd = -1;
        if (seg->count > 0 && seg->count < seg->cap) {
                struct outbox_rec *n = floe_reallocarray(seg->recs, seg->count, sizeof(*n));

                if (n) {
                        seg->recs = n;
                        seg->cap = seg->count;
                }
        }
}

/* After recovery the newest segment takes appends again if it has room. */
static int pick_active(struct agent_outbox *ob)
{
        char path[OUTBOX_SEG_NAME_LEN + 1];
        struct outbox_seg *seg;

        if (ob->nseg == 0)
                return 0;
        seg = &ob->segs[ob->nseg - 1];
        if (seg->count >= ob->opts.segment_records || seg->bytes >= ob->opts.segment_bytes)
                return 0;
        if (seg->cap < ob->opts.segment_records) {
                struct outbox_rec *n =
                        floe_reallocarray(seg->recs, ob->opts.segment_records, sizeof(*n));

                if (!n)
                        return -ENOMEM;
                seg->recs = n;
                seg->cap = ob->opts.segment_records;
        }
        outbox_seg_name(seg->name, path);
        ob->active_fd = openat(ob->dir_fd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        return ob->active_fd < 0 ? -errno : 0;
}

static void outbox_free(struct agent_outbox *ob)
{
        if (ob->active_fd >= 0)
                close(ob->active_fd);
        if (ob->read_fd >= 0)
                close(ob->read_fd);
        if (ob->meta_fd >= 0)
                close(ob->meta_fd);
        if (ob->dir_fd >= 0)
                close(ob->dir_fd);
        for (size_t i = 0; i < ob->nseg; i++)
                floe_free(ob->segs[i].recs);
        floe_free(ob->segs);
        floe_free(ob);
}

int agent_outbox_open(const char *dir, const struct agent_outbox_opts *opts,
                      struct agent_outbox **ret, char *err, size_t errsize)
{
        struct agent_outbox *ob;
        uint64_t floor;
        int r;

        if (err && errsize > 0)
                err[0] = '\0';
        if (!dir || !ret)
                return -EINVAL;
        ob = floe_calloc(1, sizeof(*ob));
        if (!ob) {
                outbox_set_err(err, errsize, "outbox", -ENOMEM);
                return -ENOMEM;
        }
        ob->dir_fd = ob->meta_fd = ob->active_fd = ob->read_fd = -1;
        r = resolve_opts(opts, &ob->opts, err, errsize);
        if (r < 0)
                goto out;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                outbox_set_err(err, errsize, "mkdir", r);
                goto out;
        }
        ob->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ob->dir_fd < 0) {
                r = -errno;
                outbox_set_err(err, errsize, "open", r);
                goto out;
        }
        if (flock(ob->dir_fd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                outbox_set_err(err, errsize, "lock", r);
                goto out;
        }
        r = outbox_recover(ob, err, errsize);
        if (r < 0)
                goto out;
        floor = ob->next_seq;
        if (ob->opts.sync == AGENT_OUTBOX_SYNC_NONE)
                floor += AGENT_OUTBOX_SEQ_RESERVE;
        r = meta_write(ob, floor, outbox_oldest_unacked(ob, 0));
        if (r < 0) {
                outbox_set_err(err, errsize, "meta: write", r);
                goto out;
        }
        r = collect(ob, true);
        if (r < 0) {
                outbox_set_err(err, errsize, "deleting acked segments", r);
                goto out;
        }
        r = pick_active(ob);
        if (r < 0) {
                outbox_set_err(err, errsize, "newest segment", r);
                goto out;
        }
        if (ob->opts.sync != AGENT_OUTBOX_SYNC_NONE && fsync(ob->dir_fd) < 0) {
                r = -errno;
                outbox_set_err(err, errsize, "fsync", r);
                goto out;
        }
        ob->ready = true;
        *ret = TAKE_PTR(ob);
        r = 0;
out:
        if (ob)
                outbox_free(ob);
        return r;
}

struct agent_outbox *agent_outbox_close(struct agent_outbox *ob)
{
        if (!ob)
                return NULL;
        if (ob->ready) {
                uint64_t oldest;

                if (ob->active_fd >= 0 && fdatasync(ob->active_fd) < 0)
                        ob->st.io_errors++;
                (void)collect(ob, true);
                oldest = outbox_oldest_unacked(ob, 0);
                /* Releases the seqs reserved under SYNC_NONE: all below next_seq are used. */
                if (ob->floor != ob->next_seq || ob->done_below != oldest)
                        (void)meta_write(ob, ob->next_seq, oldest);
        }
        outbox_free(ob);
        return NULL;
}

uint64_t agent_outbox_epoch(const struct agent_outbox *ob)
{
        return ob->epoch;
}

uint64_t agent_outbox_next_seq(const struct agent_outbox *ob)
{
        return ob->next_seq;
}

static bool needs_roll(const struct agent_outbox *ob, uint64_t rec)
{
        const struct outbox_seg *seg;

        if (ob->active_fd < 0)
                return true;
        seg = &ob->segs[ob->nseg - 1];
        return seg->count >= ob->opts.segment_records || seg->count >= seg->cap ||
               (seg->bytes > 0 && seg->bytes + rec > ob->opts.segment_bytes);
}

/* How many oldest segments to drop (and whether to roll) so rec fits. */
static int make_room(struct agent_outbox *ob, uint64_t rec, uint32_t events, bool *roll,
                     size_t *ret_k)
{
        uint64_t bytes = ob->bytes;
        size_t k = 0;

        for (;;) {
                size_t limit = *roll ? ob->nseg : ob->nseg - 1; /* never the appended-to one */

                if (bytes + rec <= ob->opts.max_bytes &&
                    ob->nseg - k + (*roll ? 1 : 0) <= ob->opts.max_segments)
                        break;
                if (ob->opts.policy == AGENT_OUTBOX_REJECT_NEW)
                        goto reject;
                if (k < limit) {
                        bytes -= ob->segs[k++].bytes;
                        continue;
                }
                if (*roll)
                        goto reject;
                *roll = true; /* the active segment alone is too big: seal it, then drop it */
        }
        *ret_k = k;
        return 0;
reject:
        ob->st.rejected_batches++;
        ob->st.rejected_events += events;
        return -ENOSPC;
}

static int write_record(int fd, const uint8_t *hdr, const uint8_t *frame, size_t len, uint64_t off)
{
        size_t total = OUTBOX_HDR_SIZE + len, done = 0;

        while (done < total) {
                struct iovec v[2];
                int n = 0;
                ssize_t w;

                if (done < OUTBOX_HDR_SIZE) {
                        v[n++] = (struct iovec){(void *)(hdr + done), OUTBOX_HDR_SIZE - done};
                        v[n++] = (struct iovec){(void *)frame, len};
                } else {
                        size_t o = done - OUTBOX_HDR_SIZE;

                        v[n++] = (struct iovec){(void *)(frame + o), len - o};
                }
                w = pwritev(fd, v, n, (off_t)(off + done));
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                if (w == 0)
                        return -EIO;
                done += (size_t)w;
        }
        return 0;
}

int agent_outbox_append(struct agent_outbox *ob, uint64_t seq, uint8_t kind, uint32_t events,
                        const uint8_t *frame, size_t len)
{
        uint8_t hdr[OUTBOX_HDR_SIZE];
        struct outbox_seg *seg;
        struct outbox_hdr h;
        uint64_t rec, off;
        bool roll, rolled = false;
        size_t k = 0;
        int r;

        if (!ob || !frame || seq != ob->next_seq || events > AGENT_OUTBOX_EVENTS_MAX)
                return -EINVAL;
        if (len == 0 || len > ob->opts.max_record)
                return -EMSGSIZE;
        if (seq >= AGENT_OUTBOX_SEQ_MAX)
                return -EOVERFLOW;
        rec = OUTBOX_HDR_SIZE + len;
        roll = needs_roll(ob, rec);
        r = make_room(ob, rec, events, &roll, &k);
        if (r < 0)
                return r;
        if (roll)
                seal_active(ob);
        if (k > 0) {
                r = drop_oldest(ob, k);
                if (r < 0)
                        return r;
        }
        if (roll) {
                r = seg_create(ob);
                if (r < 0)
                        return r;
                rolled = true;
        }
        if (ob->opts.sync == AGENT_OUTBOX_SYNC_NONE && ob->next_seq >= ob->floor) {
                r = meta_write(ob, ob->next_seq + AGENT_OUTBOX_SEQ_RESERVE,
                               outbox_oldest_unacked(ob, 0));
                if (r < 0)
                        return r;
        }

        seg = &ob->segs[ob->nseg - 1];
        off = seg->bytes;
        h = (struct outbox_hdr){.kind = kind,
                                .len = (uint32_t)len,
                                .events = events,
                                .epoch = ob->epoch,
                                .seq = seq};
        outbox_hdr_encode(&h, frame, hdr);
        r = write_record(ob->active_fd, hdr, frame, len, off);
        if (r == 0 && ob->opts.sync == AGENT_OUTBOX_SYNC_BATCH && fdatasync(ob->active_fd) < 0)
                r = -errno;
        if (r < 0) {
                /* Leave no partial record behind; a failed cut is found as torn at open. */
                if (ftruncate(ob->active_fd, (off_t)off) < 0)
                        ob->st.io_errors++;
                return io_fail(ob, r);
        }
        seg->recs[seg->count++] = (struct outbox_rec){seq, (uint32_t)off, events};
        seg->bytes += rec;
        seg->events += events;
        ob->bytes += rec;
        ob->pending_batches++;
        ob->pending_events += events;
        ob->next_seq++;
        if (rolled)
                (void)collect(ob, false); /* the sealed segment may be fully acked */
        return 0;
}

static int mark_done(struct agent_outbox *ob, uint64_t seq, bool discard)
{
        struct outbox_seg *seg;
        struct outbox_rec *rec;
        uint32_t j, ev;
        size_t i;
        int r;

        r = outbox_find(ob, seq, &i, &j);
        if (r < 0)
                return r;
        seg = &ob->segs[i];
        rec = &seg->recs[j];
        if (rec->events & OUTBOX_ACKED)
                return -EALREADY;
        ev = rec->events;
        rec->events |= OUTBOX_ACKED;
        seg->acked++;
        seg->events -= ev;
        ob->pending_batches--;
        ob->pending_events -= ev;
        if (discard) {
                ob->st.discarded_batches++;
                ob->st.discarded_events += ev;
        } else {
                ob->st.acked_batches++;
        }
        if (seg->acked == seg->count && !outbox_is_active(ob, i))
                return collect(ob, false);
        return 0;
}

int agent_outbox_ack(struct agent_outbox *ob, uint64_t epoch, uint64_t seq)
{
        int r = epoch == ob->epoch ? mark_done(ob, seq, false) : -ENOENT;

        if (r == -ENOENT)
                ob->st.unknown_acks++;
        else if (r == -EALREADY)
                ob->st.duplicate_acks++;
        return r;
}

int agent_outbox_discard(struct agent_outbox *ob, uint64_t seq)
{
        return mark_done(ob, seq, true);
}
