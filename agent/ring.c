/* SPDX-License-Identifier: Apache-2.0 */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "floe-alloc.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ring format is little-endian and mapped directly"
#endif

#define HDR_SIZE     4096
#define RING_VERSION 1
#define WRAP_MARK    UINT32_MAX
#define POS_MAX      (1ULL << 62) /* positions beyond are corrupt, not reachable */

static const char ring_magic[8] = {'F', 'L', 'O', 'E', 'R', 'I', 'N', 'G'};

/* docs/ring.md §Header. Bytes 0..43 are fixed at creation and covered by
 * header_crc; the fields from 64 on are updated in place. */
struct ring_header {
        char magic[8];
        uint32_t version;
        uint32_t header_size;
        uint64_t file_size;
        uint64_t ring_id;
        int64_t created_us;
        uint32_t header_crc;
        uint32_t reserved;
        uint64_t pad[2];
        uint64_t head;
        uint64_t next_seq;
        uint64_t events_cursor;
        uint64_t agg_cursor;
        int64_t watermark_us;
        /* a batch being handed to the outbox (docs/ring.md §Hand-over) */
        uint64_t pending_seq;
        uint64_t pending_cursor;
        int64_t pending_watermark_us;
        uint64_t pending_kind;
};

/* docs/ring.md §Records: followed by sensor, metric and text bytes. */
struct ring_rec {
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

#define HDR_CRC_BYTES offsetof(struct ring_header, header_crc)
#define REC_HDR       sizeof(struct ring_rec)
#define REC_FLAGS     (AGENT_RING_F_NULL | AGENT_RING_F_TEXT | AGENT_RING_F_CALLER)

_Static_assert(offsetof(struct ring_header, head) == 64, "header layout");
_Static_assert(offsetof(struct ring_header, watermark_us) == 96, "header layout");
_Static_assert(HDR_CRC_BYTES == 40, "header layout");
_Static_assert(sizeof(struct ring_rec) == 56, "record layout");

struct agent_ring {
        int fd;
        uint8_t *map;
        uint64_t size;
        uint64_t cap;
        uint8_t *data;
        struct ring_header *hdr;
        enum agent_ring_sync_mode sync;
        uint32_t seed; /* CRC-32C of the ring id: every record checksum starts from it */
        uint64_t synced_head;
        bool hdr_dirty;
        bool sync_all; /* recovery rewrote record space: sync all of it once */
        uint64_t appended, full, syncs, sync_errors;
};

/* ---- CRC-32C ---- */

static uint32_t crc_table[256];

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
        if (!crc_table[1])
                for (uint32_t i = 0; i < 256; i++) {
                        uint32_t c = i;

                        for (int k = 0; k < 8; k++)
                                c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
                        crc_table[i] = c;
                }
        while (len--)
                crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                            size_t len)
{
        uint64_t c = crc;

        for (; len >= 8; p += 8, len -= 8) {
                uint64_t v;

                memcpy(&v, p, 8);
                c = __builtin_ia32_crc32di(c, v);
        }
        crc = (uint32_t)c;
        for (; len > 0; p++, len--)
                crc = __builtin_ia32_crc32qi(crc, *p);
        return crc;
}
#endif

uint32_t agent_ring_crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
        static int hw = -1;

        if (hw < 0)
                hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        if (hw)
                return ~crc32c_hw(~crc, data, len);
#endif
        return ~crc32c_sw(~crc, data, len);
}

/* ---- positions and records ---- */

static uint64_t align8(uint64_t n)
{
        return (n + 7) & ~(uint64_t)7;
}

static uint64_t load_u64(const uint64_t *p)
{
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Record bytes first, header fields after: the release store keeps the
 * compiler and the CPU from moving earlier stores past it. */
static void store_u64(struct agent_ring *r, uint64_t *p, uint64_t v)
{
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
        r->hdr_dirty = true;
}

static uint64_t min_cursor(const struct agent_ring *r)
{
        uint64_t e = load_u64(&r->hdr->events_cursor), a = load_u64(&r->hdr->agg_cursor);

        return e < a ? e : a;
}

static uint32_t wrap_crc(const struct agent_ring *r, uint64_t pos)
{
        return agent_ring_crc32c(r->seed, &pos, sizeof(pos));
}

/*
 * The record or wrap marker at logical position pos: 0 and *ret_next, with
 * *ret_rec NULL for a wrap marker; -EBADMSG if the bytes there are not one
 * written at pos in this ring.
 */
static int rec_check(const struct agent_ring *r, uint64_t pos, bool crc,
                     const struct ring_rec **ret_rec, uint64_t *ret_next)
{
        uint64_t off = pos % r->cap, rem = r->cap - off;
        const uint8_t *p = r->data + off;
        const struct ring_rec *rec = (const struct ring_rec *)p;
        uint32_t len, sum;

        memcpy(&len, p, sizeof(len));
        memcpy(&sum, p + 4, sizeof(sum));
        if (len == WRAP_MARK) {
                /* a record never needs one at offset 0: it is at most cap */
                if (off == 0 || sum != wrap_crc(r, pos))
                        return -EBADMSG;
                *ret_rec = NULL;
                *ret_next = pos + rem;
                return 0;
        }
        if (len < REC_HDR || align8(len) > rem || rec->pos != pos)
                return -EBADMSG;
        if ((rec->flags & ~REC_FLAGS) || rec->reserved0 || rec->reserved1 || !rec->sensor_len ||
            !rec->metric_len || REC_HDR + rec->sensor_len + rec->metric_len + rec->text_len != len)
                return -EBADMSG;
        if ((rec->text_len && !(rec->flags & AGENT_RING_F_TEXT)) ||
            (!(rec->flags & AGENT_RING_F_NULL) && !isfinite(rec->value)))
                return -EBADMSG;
        if (crc && sum != agent_ring_crc32c(r->seed, p + 8, len - 8))
                return -EBADMSG;
        *ret_rec = rec;
        *ret_next = pos + align8(len);
        return 0;
}

/* ---- sync ---- */

static int msync_bytes(struct agent_ring *r, uint64_t off, uint64_t len)
{
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = off & ~(page - 1);

        if (len > 0 && msync(r->map + start, off + len - start, MS_SYNC) < 0)
                return -errno;
        return 0;
}

/* The record space of positions [from, from + n), n <= cap: msync or zero it. */
static int data_range(struct agent_ring *r, uint64_t from, uint64_t n, bool zero)
{
        uint64_t off = from % r->cap, first = n < r->cap - off ? n : r->cap - off;

        if (zero) {
                memset(r->data + off, 0, first);
                memset(r->data, 0, n - first);
                return 0;
        }
        return msync_bytes(r, HDR_SIZE + off, first) ?: msync_bytes(r, HDR_SIZE, n - first);
}

int agent_ring_sync(struct agent_ring *r)
{
        uint64_t head = load_u64(&r->hdr->head), from = r->synced_head, n;
        int ret = 0;

        if (r->sync == AGENT_RING_SYNC_NONE || (head == from && !r->hdr_dirty && !r->sync_all))
                return 0;
        n = head - from;
        if (n >= r->cap || r->sync_all)
                ret = msync_bytes(r, HDR_SIZE, r->cap);
        else
                ret = data_range(r, from, n, false);
        if (ret == 0)
                ret = msync_bytes(r, 0, HDR_SIZE);
        if (ret < 0) {
                r->sync_errors++;
                return ret;
        }
        r->synced_head = head;
        r->hdr_dirty = false;
        r->sync_all = false;
        r->syncs++;
        return 0;
}

/* ---- open, create, recover ---- */

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errsize, int r,
                                                      const char *fmt, ...)
{
        va_list ap;

        if (err && errsize > 0) {
                va_start(ap, fmt);
                vsnprintf(err, errsize, fmt, ap);
                va_end(ap);
        }
        return r;
}

static int64_t now_realtime_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int fsync_parent(const char *path)
{
        const char *slash = strrchr(path, '/');
        char dir[PATH_MAX];
        int fd, r = 0;

        if (!slash)
                snprintf(dir, sizeof(dir), ".");
        else if ((size_t)(slash - path) >= sizeof(dir))
                return -ENAMETOOLONG;
        else
                snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* A new ring file, fully allocated, renamed into place; returns its locked
 * fd. The watermark and sequence carry over when an empty ring is resized. */
static int ring_create(const char *path, uint64_t size, int64_t watermark_us, uint64_t next_seq,
                       char *err, size_t errsize)
{
        union {
                struct ring_header h;
                uint8_t bytes[HDR_SIZE];
        } page;
        struct ring_header *h = &page.h;
        char tmp[PATH_MAX];
        int fd, r;

        if (snprintf(tmp, sizeof(tmp), "%s.new-XXXXXX", path) >= (int)sizeof(tmp))
                return fail(err, errsize, -ENAMETOOLONG, "ring %s: path too long", path);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return fail(err, errsize, -errno, "ring %s: cannot create %s: %s", path, tmp,
                            strerror(errno));
        r = posix_fallocate(fd, 0, (off_t)size);
        if (r != 0) {
                r = fail(err, errsize, -r, "ring %s: cannot allocate %" PRIu64 " bytes: %s", path,
                         size, strerror(r));
                goto fail;
        }
        memset(&page, 0, sizeof(page));
        memcpy(h->magic, ring_magic, sizeof(h->magic));
        h->version = RING_VERSION;
        h->header_size = HDR_SIZE;
        h->file_size = size;
        if (getrandom(&h->ring_id, sizeof(h->ring_id), GRND_NONBLOCK) != sizeof(h->ring_id))
                h->ring_id = (uint64_t)now_realtime_us() ^ ((uint64_t)getpid() << 40);
        h->ring_id |= 1; /* never 0 */
        h->created_us = now_realtime_us();
        h->header_crc = agent_ring_crc32c(0, h, HDR_CRC_BYTES);
        h->next_seq = next_seq;
        h->watermark_us = watermark_us;
        errno = 0;
        if (pwrite(fd, &page, sizeof(page), 0) != (ssize_t)sizeof(page) || fsync(fd) < 0) {
                r = fail(err, errsize, errno ? -errno : -EIO, "ring %s: cannot write %s: %s", path,
                         tmp, strerror(errno ? errno : EIO));
                goto fail;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0 || rename(tmp, path) < 0) {
                r = fail(err, errsize, -errno, "ring %s: cannot put %s in place: %s", path, tmp,
                         strerror(errno));
                goto fail;
        }
        (void)fsync_parent(path); /* best effort: the ring is usable either way */
        return fd;
fail:
        unlink(tmp);
        close(fd);
        return r;
}

static int header_check(const struct ring_header *h, uint64_t file_size, const char *path,
                        char *err, size_t errsize)
{
        uint64_t cap = file_size - HDR_SIZE, e = h->events_cursor, a = h->agg_cursor;
        uint64_t lo = e < a ? e : a, hi = e < a ? a : e;

        if (memcmp(h->magic, ring_magic, sizeof(ring_magic)) != 0)
                return fail(err, errsize, -EBADMSG, "ring %s: not a ring file (bad magic)", path);
        if (h->header_crc != agent_ring_crc32c(0, h, HDR_CRC_BYTES))
                return fail(err, errsize, -EBADMSG, "ring %s: header checksum mismatch", path);
        if (h->version != RING_VERSION)
                return fail(err, errsize, -EPROTONOSUPPORT,
                            "ring %s: format version %" PRIu32 ", this build reads %d", path,
                            h->version, RING_VERSION);
        if (h->header_size != HDR_SIZE || h->reserved != 0)
                return fail(err, errsize, -EBADMSG, "ring %s: bad header size or reserved field",
                            path);
        if (h->file_size != file_size)
                return fail(err, errsize, -EBADMSG,
                            "ring %s: header says %" PRIu64 " bytes, the file has %" PRIu64, path,
                            h->file_size, file_size);
        if ((h->head | e | a) & 7 || h->head > POS_MAX || hi > h->head || h->head - lo > cap)
                return fail(err, errsize, -EBADMSG,
                            "ring %s: inconsistent positions (head %" PRIu64 ", events %" PRIu64
                            ", aggregates %" PRIu64 ")",
                            path, h->head, e, a);
        return 0;
}

/*
 * Walk from the older cursor while records check out (CRC, position,
 * sequence +1) and fit in the capacity; the end of the walk is the head.
 * docs/ring.md §7.
 */
static int ring_recover(struct agent_ring *r, const char *path, struct agent_ring_recovery *rec,
                        char *err, size_t errsize)
{
        struct ring_header *h = r->hdr;
        uint64_t start = min_cursor(r), stored = h->head, pos = start, next, seq = 0;
        uint64_t cur[2] = {h->events_cursor, h->agg_cursor};
        bool hit[2] = {false, false}, have_seq = false;
        const struct ring_rec *rc;

        for (;;) {
                for (int i = 0; i < 2; i++)
                        hit[i] |= cur[i] == pos;
                if (pos - start >= r->cap || rec_check(r, pos, true, &rc, &next) < 0 ||
                    next - start > r->cap)
                        break;
                if (rc) {
                        if (have_seq && rc->seq != seq)
                                break;
                        seq = rc->seq + 1;
                        have_seq = true;
                        rec->records++;
                        if (pos >= stored)
                                rec->rolled_forward++;
                }
                pos = next;
        }
        for (int i = 0; i < 2; i++) {
                if (cur[i] > pos) {
                        cur[i] = pos;
                        rec->cursors_clamped++;
                } else if (!hit[i]) {
                        return fail(err, errsize, -EBADMSG,
                                    "ring %s: %s cursor %" PRIu64 " is not at a record", path,
                                    i == 0 ? "events" : "aggregates", cur[i]);
                }
        }
        rec->bytes = pos - start;
        rec->torn_bytes = stored > pos ? stored - pos : 0;
        /* Past a tear, records of this lap may survive beyond the gap; they
         * must never chain onto records appended later. */
        if (pos != stored) {
                data_range(r, pos, start + r->cap - pos, true);
                r->sync_all = true;
        }
        if (have_seq)
                h->next_seq = seq;
        store_u64(r, &h->events_cursor, cur[0]);
        store_u64(r, &h->agg_cursor, cur[1]);
        store_u64(r, &h->head, pos);
        r->synced_head = pos;
        r->hdr_dirty = pos != stored || rec->cursors_clamped;
        return 0;
}

static int ring_map(struct agent_ring *r, int fd, uint64_t size, const char *path, char *err,
                    size_t errsize)
{
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

        if (m == MAP_FAILED)
                return fail(err, errsize, -errno, "ring %s: mmap: %s", path, strerror(errno));
        r->fd = fd;
        r->map = m;
        r->size = size;
        r->cap = size - HDR_SIZE;
        r->data = r->map + HDR_SIZE;
        r->hdr = (struct ring_header *)r->map;
        r->seed = agent_ring_crc32c(0, &r->hdr->ring_id, sizeof(r->hdr->ring_id));
        return 0;
}

static void ring_unmap(struct agent_ring *r)
{
        if (r->map)
                munmap(r->map, r->size);
        if (r->fd >= 0)
                close(r->fd);
        r->map = NULL;
        r->fd = -1;
}

/* Opens and validates an existing ring; -ENOENT if there is none. */
static int ring_load(struct agent_ring *r, const char *path, struct agent_ring_recovery *rec,
                     char *err, size_t errsize)
{
        struct ring_header h;
        struct stat st;
        uint64_t size;
        int fd, ret;

        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT
                               ? -ENOENT
                               : fail(err, errsize, -errno, "ring %s: %s", path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
                close(fd);
                return fail(err, errsize, ret, "ring %s: %s", path,
                            ret == -EBUSY ? "in use by another process" : strerror(-ret));
        }
        if (fstat(fd, &st) < 0) {
                ret = fail(err, errsize, -errno, "ring %s: %s", path, strerror(errno));
                close(fd);
                return ret;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                return fail(err, errsize, -EBADMSG, "ring %s: not a regular file", path);
        }
        size = (uint64_t)st.st_size;
        if (size < AGENT_RING_SIZE_MIN || size > AGENT_RING_SIZE_MAX || size % HDR_SIZE) {
                close(fd);
                return fail(err, errsize, -EBADMSG,
                            "ring %s: %" PRIu64 " bytes is not the size of a ring file", path,
                            size);
        }
        if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
                close(fd);
                return fail(err, errsize, -EIO, "ring %s: cannot read the header", path);
        }
        ret = header_check(&h, size, path, err, errsize);
        if (ret == 0)
                ret = ring_map(r, fd, size, path, err, errsize);
        if (ret < 0) {
                close(fd);
                return ret;
        }
        ret = ring_recover(r, path, rec, err, errsize);
        if (ret < 0)
                ring_unmap(r);
        return ret;
}

int agent_ring_open(const char *path, uint64_t size, enum agent_ring_sync_mode sync,
                    struct agent_ring **ret, struct agent_ring_recovery *ret_rec, char *err,
                    size_t errsize)
{
        struct agent_ring_recovery rec = {0};
        struct agent_ring *r;
        int fd, e;

        if (!path || (unsigned)sync >= _AGENT_RING_SYNC_MAX ||
            (size && (size < AGENT_RING_SIZE_MIN || size > AGENT_RING_SIZE_MAX || size % HDR_SIZE)))
                return fail(err, errsize, -EINVAL,
                            "ring %s: size must be a multiple of 4096 from %llu to %llu bytes",
                            path ? path : "(null)", AGENT_RING_SIZE_MIN, AGENT_RING_SIZE_MAX);
        r = floe_calloc(1, sizeof(*r));
        if (!r)
                return fail(err, errsize, -ENOMEM, "ring %s: out of memory", path);
        r->fd = -1;
        r->sync = sync;
        e = ring_load(r, path, &rec, err, errsize);
        if (e == -ENOENT && size == 0) {
                e = fail(err, errsize, -ENOENT, "ring %s: no such file and no size to create it",
                         path);
        } else if (e == -ENOENT) {
                fd = ring_create(path, size, INT64_MIN, 0, err, errsize);
                e = fd < 0 ? fd : ring_map(r, fd, size, path, err, errsize);
                if (fd >= 0 && e < 0)
                        close(fd);
                rec.created = true;
        } else if (e == 0 && size && size != r->size) {
                uint64_t used = load_u64(&r->hdr->head) - min_cursor(r);

                if (used > 0) {
                        e = fail(err, errsize, -ERANGE,
                                 "ring %s: the file has %" PRIu64 " bytes, configured %" PRIu64
                                 ", and it still holds %" PRIu64 " record bytes; open it "
                                 "with its own size until it is drained",
                                 path, r->size, size, used);
                } else {
                        fd = ring_create(path, size, r->hdr->watermark_us, r->hdr->next_seq, err,
                                         errsize);
                        ring_unmap(r);
                        e = fd < 0 ? fd : ring_map(r, fd, size, path, err, errsize);
                        if (fd >= 0 && e < 0)
                                close(fd);
                        rec.resized = true;
                }
        }
        if (e < 0) {
                agent_ring_close(r);
                return e;
        }
        if (r->sync != AGENT_RING_SYNC_NONE)
                (void)agent_ring_sync(r); /* make recovery's changes durable */
        r->synced_head = load_u64(&r->hdr->head);
        *ret = r;
        if (ret_rec)
                *ret_rec = rec;
        return 0;
}

struct agent_ring *agent_ring_close(struct agent_ring *r)
{
        if (!r)
                return NULL;
        if (r->map)
                (void)agent_ring_sync(r);
        ring_unmap(r);
        floe_free(r);
        return NULL;
}

int agent_ring_move_aside(const char *path, int64_t now_us, char *ret_path, size_t ret_size)
{
        time_t t = (time_t)(now_us / 1000000 - (now_us % 1000000 < 0));
        char stamp[32], buf[PATH_MAX];
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
                return -EINVAL;
        for (int i = 0; i < 100; i++) {
                int n = i == 0 ? snprintf(buf, sizeof(buf), "%s.corrupt-%s", path, stamp)
                               : snprintf(buf, sizeof(buf), "%s.corrupt-%s.%d", path, stamp, i);

                if (n < 0 || (size_t)n >= sizeof(buf) || (size_t)n >= ret_size)
                        return -ENAMETOOLONG;
                if (renameat2(AT_FDCWD, path, AT_FDCWD, buf, RENAME_NOREPLACE) < 0) {
                        if (errno == EEXIST)
                                continue;
                        if (errno != EINVAL && errno != ENOSYS)
                                return -errno;
                        /* no RENAME_NOREPLACE on this filesystem */
                        if (link(path, buf) < 0) {
                                if (errno == EEXIST)
                                        continue;
                                return -errno;
                        }
                        if (unlink(path) < 0)
                                return -errno;
                }
                memcpy(ret_path, buf, (size_t)n + 1);
                (void)fsync_parent(path);
                return 0;
        }
        return -EEXIST;
}

/* ---- append and read ---- */

int agent_ring_append(struct agent_ring *r, const struct agent_reading *rd, uint8_t flags,
                      int64_t arrival_us, uint64_t *ret_pos)
{
        struct ring_header *h = r->hdr;
        uint64_t head = h->head, pos = head, off, rem, len, n, need, seq = h->next_seq;
        size_t tlen = rd->text ? rd->text_len : 0;
        struct ring_rec *rec;
        uint8_t *p;

        if (!rd->sensor_len || !rd->metric_len || rd->ts_us == AGENT_TS_NONE ||
            (flags & ~AGENT_RING_F_CALLER))
                return -EINVAL;
        if (rd->sensor_len > AGENT_RING_NAME_MAX || rd->metric_len > AGENT_RING_NAME_MAX)
                return -ENAMETOOLONG;
        if (tlen > AGENT_RING_TEXT_MAX)
                return -EMSGSIZE;
        if (!rd->value_null && !isfinite(rd->value))
                return -EDOM;
        len = REC_HDR + rd->sensor_len + rd->metric_len + tlen;
        n = align8(len);
        if (n > r->cap)
                return -EMSGSIZE;
        off = head % r->cap;
        rem = r->cap - off;
        need = n > rem ? rem + n : n;
        if (head + need - min_cursor(r) > r->cap || head + need > POS_MAX) {
                r->full++;
                return -ENOSPC;
        }
        if (n > rem) {
                uint32_t mark[2] = {WRAP_MARK, wrap_crc(r, pos)};

                memcpy(r->data + off, mark, sizeof(mark));
                pos += rem;
                off = 0;
        }
        p = r->data + off;
        rec = (struct ring_rec *)p;
        rec->length = (uint32_t)len;
        rec->pos = pos;
        rec->seq = seq;
        rec->ts_us = rd->ts_us;
        rec->arrival_us = arrival_us;
        rec->value = rd->value_null ? 0.0 : rd->value;
        rec->flags = flags | (rd->value_null ? AGENT_RING_F_NULL : 0) |
                     (rd->text ? AGENT_RING_F_TEXT : 0);
        rec->sensor_len = (uint8_t)rd->sensor_len;
        rec->metric_len = (uint8_t)rd->metric_len;
        rec->reserved0 = 0;
        rec->text_len = (uint16_t)tlen;
        rec->reserved1 = 0;
        p += REC_HDR;
        memcpy(p, rd->sensor, rd->sensor_len);
        memcpy(p + rd->sensor_len, rd->metric, rd->metric_len);
        if (tlen)
                memcpy(p + rd->sensor_len + rd->metric_len, rd->text, tlen);
        memset(p + len - REC_HDR, 0, n - len);
        rec->crc = agent_ring_crc32c(r->seed, (const uint8_t *)rec + 8, len - 8);
        store_u64(r, &h->next_seq, seq + 1);
        store_u64(r, &h->head, pos + n);
        if (r->sync == AGENT_RING_SYNC_ALWAYS) {
                int e = agent_ring_sync(r);

                if (e < 0) {
                        /* not durable, so not accepted */
                        store_u64(r, &h->head, head);
                        store_u64(r, &h->next_seq, seq);
                        return -EIO;
                }
        }
        r->appended++;
        if (ret_pos)
                *ret_pos = pos;
        return 0;
}

int agent_ring_iter_init(struct agent_ring *r, uint64_t from_pos, struct agent_ring_iter *it)
{
        *it = (struct agent_ring_iter){.ring = r, .pos = from_pos};
        if (from_pos < min_cursor(r) || from_pos > load_u64(&r->hdr->head) || from_pos & 7)
                it->error = -EINVAL;
        return it->error;
}

int agent_ring_iter_next(struct agent_ring_iter *it, struct agent_ring_entry *ret)
{
        struct agent_ring *r = it->ring;
        const struct ring_rec *rc;
        const char *s;
        uint64_t next;

        if (it->error)
                return it->error;
        for (;;) {
                uint64_t head = load_u64(&r->hdr->head);

                if (it->pos < min_cursor(r))
                        return -ESTALE;
                if (it->pos >= head)
                        return -ENOENT;
                if (rec_check(r, it->pos, true, &rc, &next) < 0 || next > head)
                        return -EBADMSG;
                if (rc)
                        break;
                it->pos = next;
        }
        s = (const char *)rc + REC_HDR;
        *ret = (struct agent_ring_entry){
                .flags = rc->flags, .arrival_us = rc->arrival_us, .seq = rc->seq, .pos = it->pos};
        ret->rd.sensor = s;
        ret->rd.sensor_len = rc->sensor_len;
        ret->rd.metric = s + rc->sensor_len;
        ret->rd.metric_len = rc->metric_len;
        ret->rd.ts_us = rc->ts_us;
        ret->rd.value = rc->value;
        ret->rd.value_null = rc->flags & AGENT_RING_F_NULL;
        if (rc->flags & AGENT_RING_F_TEXT) {
                ret->rd.text = s + rc->sensor_len + rc->metric_len;
                ret->rd.text_len = rc->text_len;
        }
        ret->next = it->pos = next;
        return 0;
}

/* ---- cursors ---- */

uint64_t agent_ring_head(const struct agent_ring *r)
{
        return load_u64(&r->hdr->head);
}

uint64_t agent_ring_events_cursor(const struct agent_ring *r)
{
        return load_u64(&r->hdr->events_cursor);
}

uint64_t agent_ring_agg_cursor(const struct agent_ring *r)
{
        return load_u64(&r->hdr->agg_cursor);
}

int64_t agent_ring_watermark(const struct agent_ring *r)
{
        return __atomic_load_n(&r->hdr->watermark_us, __ATOMIC_ACQUIRE);
}

uint64_t agent_ring_capacity(const struct agent_ring *r)
{
        return r->cap;
}

uint64_t agent_ring_id(const struct agent_ring *r)
{
        return r->hdr->ring_id;
}

/* Whether pos is where a cursor may stand: the head or a record (or wrap
 * marker) at or after cur. */
static int cursor_check(const struct agent_ring *r, uint64_t cur, uint64_t pos)
{
        uint64_t head = load_u64(&r->hdr->head), next;
        const struct ring_rec *rc;

        if (pos > head || pos & 7)
                return -EINVAL;
        if (pos == head || pos == cur)
                return 0;
        if (rec_check(r, pos, false, &rc, &next) < 0 || next > head)
                return -EINVAL;
        return 0;
}

static int cursor_stored(struct agent_ring *r)
{
        if (r->sync == AGENT_RING_SYNC_ALWAYS)
                return agent_ring_sync(r);
        return 0;
}

int agent_ring_set_events_cursor(struct agent_ring *r, uint64_t pos)
{
        uint64_t cur = load_u64(&r->hdr->events_cursor);
        int e;

        if (pos <= cur)
                return 0;
        e = cursor_check(r, cur, pos);
        if (e < 0)
                return e;
        store_u64(r, &r->hdr->events_cursor, pos);
        return cursor_stored(r);
}

int agent_ring_set_agg_cursor(struct agent_ring *r, uint64_t pos, int64_t watermark_us)
{
        uint64_t cur = load_u64(&r->hdr->agg_cursor);
        bool move = pos > cur;
        int e;

        if (move) {
                e = cursor_check(r, cur, pos);
                if (e < 0)
                        return e;
        }
        /* the watermark first: a crash in between replays records whose
         * windows are already shipped (they are late), never the reverse */
        if (watermark_us > agent_ring_watermark(r)) {
                __atomic_store_n(&r->hdr->watermark_us, watermark_us, __ATOMIC_RELEASE);
                r->hdr_dirty = true;
        }
        if (move)
                store_u64(r, &r->hdr->agg_cursor, pos);
        return cursor_stored(r);
}

int agent_ring_set_pending(struct agent_ring *r, const struct agent_ring_pending *p)
{
        /* seq last: a torn hand-over record reads as none */
        store_u64(r, &r->hdr->pending_seq, 0);
        store_u64(r, &r->hdr->pending_cursor, p->cursor);
        __atomic_store_n(&r->hdr->pending_watermark_us, p->watermark_us, __ATOMIC_RELEASE);
        store_u64(r, &r->hdr->pending_kind, p->kind);
        store_u64(r, &r->hdr->pending_seq, p->seq);
        return cursor_stored(r);
}

void agent_ring_get_pending(const struct agent_ring *r, struct agent_ring_pending *ret)
{
        *ret = (struct agent_ring_pending){
                .seq = load_u64(&r->hdr->pending_seq),
                .kind = (int)load_u64(&r->hdr->pending_kind),
                .cursor = load_u64(&r->hdr->pending_cursor),
                .watermark_us = (int64_t)load_u64((const uint64_t *)&r->hdr->pending_watermark_us),
        };
}

void agent_ring_clear_pending(struct agent_ring *r)
{
        store_u64(r, &r->hdr->pending_seq, 0);
}

/* ---- stats ---- */

/* The sequence number of the first record at or after pos. */
static uint64_t seq_at(const struct agent_ring *r, uint64_t pos)
{
        uint64_t head = load_u64(&r->hdr->head), next;
        const struct ring_rec *rc;

        while (pos < head && rec_check(r, pos, false, &rc, &next) == 0) {
                if (rc)
                        return rc->seq;
                pos = next;
        }
        return r->hdr->next_seq;
}

void agent_ring_stats(const struct agent_ring *r, struct agent_ring_stats *ret)
{
        uint64_t head = load_u64(&r->hdr->head), e = agent_ring_events_cursor(r);
        uint64_t a = agent_ring_agg_cursor(r), next_seq = r->hdr->next_seq;

        *ret = (struct agent_ring_stats){
                .size = r->size,
                .capacity = r->cap,
                .used = head - min_cursor(r),
                .free = r->cap - (head - min_cursor(r)),
                .events_pending_bytes = head - e,
                .events_pending_records = next_seq - seq_at(r, e),
                .agg_pending_bytes = head - a,
                .agg_pending_records = next_seq - seq_at(r, a),
                .appended = r->appended,
                .full = r->full,
                .syncs = r->syncs,
                .sync_errors = r->sync_errors,
        };
}

static const char *const sync_names[_AGENT_RING_SYNC_MAX] = {
        [AGENT_RING_SYNC_NONE] = "none",
        [AGENT_RING_SYNC_INTERVAL] = "interval",
        [AGENT_RING_SYNC_ALWAYS] = "always",
};

const char *agent_ring_sync_mode_name(enum agent_ring_sync_mode m)
{
        return (unsigned)m < _AGENT_RING_SYNC_MAX ? sync_names[m] : NULL;
}

int agent_ring_sync_mode_from_name(const char *name, enum agent_ring_sync_mode *ret)
{
        for (int i = 0; i < _AGENT_RING_SYNC_MAX; i++)
                if (strcmp(name, sync_names[i]) == 0) {
                        *ret = (enum agent_ring_sync_mode)i;
                        return 0;
                }
        return -EINVAL;
}
