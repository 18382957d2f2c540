/* SPDX-License-Identifier: Apache-2.0 */
/* Recovery at open: read meta, list and scan segments, cut torn tails. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "outbox-internal.h"

static const uint8_t magic_bytes[4] = {'F', 'O', 'B', 'X'};

struct scanner {
        int fd;
        uint64_t size;
        uint8_t *buf;
        uint64_t wstart; /* file offset of buf[0] */
        size_t wlen;     /* bytes valid in buf */
        uint64_t pos;
        uint64_t bad; /* bad records or garbage runs since the last good record */
};

/* Makes [pos, pos + n) readable in the buffer, n <= OUTBOX_SCAN_BUF, pos + n <= size. */
static int window(struct scanner *s, uint64_t pos, size_t n, const uint8_t **ret)
{
        size_t want;
        ssize_t r;

        if (pos >= s->wstart && pos + n <= s->wstart + s->wlen) {
                *ret = s->buf + (pos - s->wstart);
                return 0;
        }
        want = s->size - pos < OUTBOX_SCAN_BUF ? (size_t)(s->size - pos) : OUTBOX_SCAN_BUF;
        s->wlen = 0;
        r = outbox_pread_full(s->fd, s->buf, want, pos);
        if (r < 0)
                return (int)r;
        if ((size_t)r < n)
                return -ENODATA; /* the file shrank under us */
        s->wstart = pos;
        s->wlen = (size_t)r;
        *ret = s->buf;
        return 0;
}

/* The offset of the next magic at or after from, or the file size. */
static int find_magic(struct scanner *s, uint64_t from, uint64_t *ret)
{
        uint64_t pos = from;

        while (pos + sizeof(magic_bytes) <= s->size) {
                const uint8_t *p, *q;
                size_t avail;
                int r;

                r = window(s, pos, sizeof(magic_bytes), &p);
                if (r < 0)
                        return r;
                avail = (size_t)(s->wstart + s->wlen - pos);
                q = memmem(p, avail, magic_bytes, sizeof(magic_bytes));
                if (q) {
                        *ret = pos + (uint64_t)(q - p);
                        return 0;
                }
                pos += avail - (sizeof(magic_bytes) - 1);
        }
        *ret = s->size;
        return 0;
}

static int payload_crc(struct scanner *s, const uint8_t *hdr, uint64_t off, uint32_t len,
                       uint32_t *ret)
{
        uint32_t crc = outbox_crc32c(0, hdr, 36);

        while (len > 0) {
                size_t n = len < OUTBOX_SCAN_BUF ? len : OUTBOX_SCAN_BUF;
                const uint8_t *p;
                int r;

                r = window(s, off, n, &p);
                if (r < 0)
                        return r;
                crc = outbox_crc32c(crc, p, n);
                off += n;
                len -= (uint32_t)n;
        }
        *ret = crc;
        return 0;
}

/*
 * The next record whose header and CRC check out: 1 and its offset, 0 at
 * the end, or a negative errno. A bad header resyncs at the next magic; a
 * good header with a bad payload is skipped whole (its length is CRC'd).
 */
static int scan_next(struct scanner *s, struct outbox_hdr *ret, uint64_t *ret_off)
{
        while (s->pos < s->size) {
                uint8_t raw[OUTBOX_HDR_SIZE];
                struct outbox_hdr h;
                const uint8_t *p;
                uint64_t off = s->pos;
                uint32_t crc;
                int r;

                if (s->size - off < OUTBOX_HDR_SIZE) {
                        s->bad++;
                        s->pos = s->size;
                        break;
                }
                r = window(s, off, OUTBOX_HDR_SIZE, &p);
                if (r < 0)
                        return r;
                memcpy(raw, p, OUTBOX_HDR_SIZE);
                if (outbox_hdr_decode(raw, &h) < 0) {
                        s->bad++;
                        r = find_magic(s, off + 1, &s->pos);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (h.len > s->size - off - OUTBOX_HDR_SIZE) {
                        s->bad++; /* torn: the payload ends past the end of the file */
                        s->pos = s->size;
                        break;
                }
                s->pos = off + OUTBOX_HDR_SIZE + h.len;
                r = payload_crc(s, raw, off + OUTBOX_HDR_SIZE, h.len, &crc);
                if (r < 0)
                        return r;
                if (crc != h.crc) {
                        s->bad++;
                        continue;
                }
                *ret = h;
                *ret_off = off;
                return 1;
        }
        return 0;
}

static int seg_open(struct agent_outbox *ob, uint64_t name, int flags, int *ret_fd,
                    uint64_t *ret_size)
{
        char path[OUTBOX_SEG_NAME_LEN + 1];
        struct stat st;
        int fd;

        outbox_seg_name(name, path);
        fd = openat(ob->dir_fd, path, flags | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                return -EISDIR;
        }
        *ret_fd = fd;
        *ret_size = (uint64_t)st.st_size;
        return 0;
}

/* The epoch of the newest good record of the newest segment that has one. */
static int probe_epoch(struct agent_outbox *ob, const uint64_t *names, size_t n, uint8_t *buf,
                       uint64_t *ret)
{
        for (size_t i = n; i-- > 0;) {
                struct scanner s = {.buf = buf};
                struct outbox_hdr h;
                uint64_t off, epoch = 0;
                int r;

                if (seg_open(ob, names[i], O_RDONLY, &s.fd, &s.size) < 0)
                        continue;
                while ((r = scan_next(&s, &h, &off)) > 0)
                        if (h.epoch != 0 && h.seq >= AGENT_OUTBOX_SEQ_FIRST &&
                            h.seq < AGENT_OUTBOX_SEQ_MAX)
                                epoch = h.epoch;
                close(s.fd);
                if (r < 0)
                        return r;
                if (epoch != 0) {
                        *ret = epoch;
                        return 1;
                }
        }
        return 0;
}

static int rec_push(struct outbox_seg *seg, const struct outbox_rec *rec)
{
        if (seg->count == seg->cap) {
                uint32_t cap = seg->cap ? seg->cap * 2 : 16;
                struct outbox_rec *n = floe_reallocarray(seg->recs, cap, sizeof(*n));

                if (!n)
                        return -ENOMEM;
                seg->recs = n;
                seg->cap = cap;
        }
        seg->recs[seg->count++] = *rec;
        return 0;
}

/* Indexes the records of one segment that belong to the stream, cuts the tail. */
static int scan_segment(struct agent_outbox *ob, struct outbox_seg *seg, uint8_t *buf,
                        uint64_t *last_seq)
{
        struct scanner s = {.buf = buf};
        struct outbox_hdr h;
        uint64_t off, good_end = 0;
        int r;

        r = seg_open(ob, seg->name, O_RDWR, &s.fd, &s.size);
        if (r < 0)
                return r;
        while ((r = scan_next(&s, &h, &off)) > 0) {
                struct outbox_rec rec = {h.seq, (uint32_t)off, h.events};

                if (h.epoch != ob->epoch || h.seq <= *last_seq || h.seq < seg->name ||
                    h.seq >= AGENT_OUTBOX_SEQ_MAX || off > UINT32_MAX) {
                        s.bad++; /* not of this stream: skipped like a bad record */
                        continue;
                }
                r = rec_push(seg, &rec);
                if (r < 0)
                        goto out;
                ob->st.recovered_corrupt_records += s.bad;
                s.bad = 0;
                seg->events += h.events;
                *last_seq = h.seq;
                good_end = off + OUTBOX_HDR_SIZE + h.len;
        }
        if (r < 0)
                goto out;
        if (good_end < s.size) {
                if (ftruncate(s.fd, (off_t)good_end) < 0 ||
                    (ob->opts.sync != AGENT_OUTBOX_SYNC_NONE && fdatasync(s.fd) < 0)) {
                        r = -errno;
                        goto out;
                }
                ob->st.recovered_torn_bytes += s.size - good_end;
        }
        seg->bytes = good_end;
        if (seg->count == 0) {
                floe_free(seg->recs);
                seg->recs = NULL;
                seg->cap = 0;
        } else if (seg->count < seg->cap) {
                struct outbox_rec *n = floe_reallocarray(seg->recs, seg->count, sizeof(*n));

                if (n) {
                        seg->recs = n;
                        seg->cap = seg->count;
                }
        }
        r = 0;
out:
        close(s.fd);
        return r;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static int list_segments(struct agent_outbox *ob, uint64_t **ret, size_t *ret_n)
{
        _cleanup_free_ uint64_t *names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        DIR *d;
        int fd, r = 0;

        fd = openat(ob->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        for (;;) {
                uint64_t seq;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        r = -errno;
                        break;
                }
                if (outbox_seg_parse(de->d_name, &seq) < 0)
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        uint64_t *p = floe_reallocarray(names, ncap, sizeof(*p));

                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        names = p;
                        cap = ncap;
                }
                names[n++] = seq;
        }
        closedir(d);
        if (r < 0)
                return r;
        if (n > 0)
                qsort(names, n, sizeof(*names), cmp_u64);
        *ret = TAKE_PTR(names);
        *ret_n = n;
        return 0;
}

/* 1 with the best slot, 0 when no slot is valid; counts bad slots. */
static int read_meta(struct agent_outbox *ob, struct outbox_meta *ret)
{
        struct outbox_meta best = {0}, m;
        bool found = false;

        for (int i = 0; i < 2; i++) {
                uint8_t slot[OUTBOX_META_SLOT_SIZE];
                ssize_t n;

                n = outbox_pread_full(ob->meta_fd, slot, sizeof(slot),
                                      (uint64_t)i * OUTBOX_META_SLOT_STRIDE);
                if (n < 0)
                        return (int)n;
                if ((size_t)n != sizeof(slot) || outbox_meta_decode(slot, &m) < 0) {
                        ob->st.meta_bad_slots++;
                        continue;
                }
                if (!found || m.gen > best.gen)
                        best = m;
                found = true;
        }
        if (found)
                *ret = best;
        return found;
}

static int new_epoch(uint64_t *ret)
{
        uint64_t e = 0;

        while (e == 0) {
                ssize_t n = getrandom(&e, sizeof(e), 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n != (ssize_t)sizeof(e))
                        return n < 0 ? -errno : -EIO;
        }
        *ret = e;
        return 0;
}

int outbox_recover(struct agent_outbox *ob, char *err, size_t errsize)
{
        _cleanup_free_ uint64_t *names = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        struct outbox_meta meta = {0};
        uint64_t last_seq = 0, max_name = 0;
        bool have_meta = false, meta_file = false;
        size_t n = 0;
        int r;

        ob->meta_fd = openat(ob->dir_fd, OUTBOX_META_NAME, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (ob->meta_fd < 0 && errno != ENOENT) {
                r = -errno;
                outbox_set_err(err, errsize, OUTBOX_META_NAME, r);
                return r;
        }
        if (ob->meta_fd >= 0) {
                meta_file = true;
                r = read_meta(ob, &meta);
                if (r < 0) {
                        outbox_set_err(err, errsize, "meta: read", r);
                        return r;
                }
                have_meta = r > 0;
        }
        r = list_segments(ob, &names, &n);
        if (r < 0) {
                outbox_set_err(err, errsize, "listing segments", r);
                return r;
        }
        ob->seg_cap = (n > ob->opts.max_segments ? n : ob->opts.max_segments) + 1;
        ob->segs = floe_calloc(ob->seg_cap, sizeof(*ob->segs));
        buf = floe_malloc(OUTBOX_SCAN_BUF);
        if (!ob->segs || !buf) {
                outbox_set_err(err, errsize, "index", -ENOMEM);
                return -ENOMEM;
        }

        if (have_meta) {
                ob->epoch = meta.epoch;
                ob->meta_gen = meta.gen;
                ob->st.origin = AGENT_OUTBOX_RESUMED;
        } else {
                r = probe_epoch(ob, names, n, buf, &ob->epoch);
                if (r < 0) {
                        outbox_set_err(err, errsize, "segments: read", r);
                        return r;
                }
                if (r > 0)
                        ob->st.origin = AGENT_OUTBOX_META_REBUILT;
                else {
                        r = new_epoch(&ob->epoch);
                        if (r < 0) {
                                outbox_set_err(err, errsize, "getrandom", r);
                                return r;
                        }
                        ob->st.origin = meta_file || n > 0 ? AGENT_OUTBOX_EPOCH_RESET
                                                           : AGENT_OUTBOX_CREATED;
                }
        }

        for (size_t i = 0; i < n; i++) {
                struct outbox_seg *seg = &ob->segs[ob->nseg];
                char what[OUTBOX_SEG_NAME_LEN + 8];

                seg->name = names[i];
                r = scan_segment(ob, seg, buf, &last_seq);
                if (r == -ENOENT || r == -EISDIR || r == -ELOOP) {
                        floe_free(seg->recs);
                        *seg = (struct outbox_seg){0};
                        continue; /* gone, or not a file of ours */
                }
                ob->nseg++;
                if (r < 0) {
                        outbox_seg_name(names[i], what);
                        outbox_set_err(err, errsize, what, r);
                        return r;
                }
                if (names[i] > max_name)
                        max_name = names[i];
                ob->bytes += seg->bytes;
        }

        ob->next_seq = AGENT_OUTBOX_SEQ_FIRST;
        if (have_meta)
                ob->next_seq = meta.next_seq;
        if (ob->st.origin != AGENT_OUTBOX_EPOCH_RESET && ob->st.origin != AGENT_OUTBOX_CREATED) {
                if (last_seq + 1 > ob->next_seq)
                        ob->next_seq = last_seq + 1;
                if (max_name > ob->next_seq)
                        ob->next_seq = max_name;
        }
        ob->done_below = have_meta ? meta.done_below : 0;
        ob->floor = have_meta ? meta.next_seq : 0;
        for (size_t i = 0; i < ob->nseg; i++) {
                struct outbox_seg *seg = &ob->segs[i];

                for (uint32_t j = 0; j < seg->count; j++) {
                        struct outbox_rec *rec = &seg->recs[j];

                        if (rec->seq >= ob->done_below)
                                break;
                        rec->events |= OUTBOX_ACKED;
                        seg->acked++;
                        seg->events -= rec->events & ~OUTBOX_ACKED;
                }
                ob->pending_batches += seg->count - seg->acked;
                ob->pending_events += seg->events;
        }
        ob->st.recovered_batches = ob->pending_batches;
        return 0;
}
