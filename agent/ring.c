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
#include "ring-internal.h"

static const char ring_magic[8] = {'F', 'L', 'O', 'E', 'R', 'I', 'N', 'G'};

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
        uint32_t w;
        uint16_t h;

        for (; len >= 8; p += 8, len -= 8) {
                uint64_t v;

                memcpy(&v, p, 8);
                c = __builtin_ia32_crc32di(c, v);
        }
        crc = (uint32_t)c;
        /* the tail of a short entry in three steps at most */
        if (len & 4) {
                memcpy(&w, p, 4);
                crc = __builtin_ia32_crc32si(crc, w);
                p += 4;
        }
        if (len & 2) {
                memcpy(&h, p, 2);
                crc = __builtin_ia32_crc32hi(crc, h);
                p += 2;
        }
        if (len & 1)
                crc = __builtin_ia32_crc32qi(crc, *p);
        return crc;
}
#endif

#if defined(__x86_64__)
static bool have_hw;

__attribute__((constructor)) static void crc32c_init(void)
{
        have_hw = __builtin_cpu_supports("sse4.2");
}
#endif

bool ring_crc32c_hw(void)
{
#if defined(__x86_64__)
        return have_hw;
#else
        return false;
#endif
}

uint32_t agent_ring_crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
        if (have_hw)
                return ~crc32c_hw(~crc, data, len);
#endif
        return ~crc32c_sw(~crc, data, len);
}

/* ---- sync ---- */

static int msync_bytes(struct agent_ring *r, uint64_t off, uint64_t len)
{
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = off & ~(page - 1);

        if (len > 0 && msync(r->map + start, off + len - start, MS_SYNC) < 0)
                return -errno;
        return 0;
}

int ring_data_range(struct agent_ring *r, uint64_t from, uint64_t n, bool zero)
{
        uint64_t off = from % r->cap, first = n < r->cap - off ? n : r->cap - off;

        if (zero) {
                memset(r->data + off, 0, first);
                memset(r->data, 0, n - first);
                return 0;
        }
        return msync_bytes(r, RING_HDR_SIZE + off, first)
                       ?: msync_bytes(r, RING_HDR_SIZE, n - first);
}

int agent_ring_sync(struct agent_ring *r)
{
        uint64_t head = ring_load(&r->hdr->head), from = r->synced_head, n;
        int ret = 0;

        if (r->sync == AGENT_RING_SYNC_NONE || (head == from && !r->hdr_dirty && !r->sync_all))
                return 0;
        n = head - from;
        if (n >= r->cap || r->sync_all)
                ret = msync_bytes(r, RING_HDR_SIZE, r->cap);
        else
                ret = ring_data_range(r, from, n, false);
        if (ret == 0)
                ret = msync_bytes(r, 0, RING_HDR_SIZE);
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

int ring_fail(char *err, size_t errsize, int r, const char *fmt, ...)
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
int ring_create(const char *path, uint64_t size, int64_t watermark_us, uint64_t next_seq,
                ring_fill_fn fill, void *ud, char *err, size_t errsize)
{
        union {
                struct ring_header h;
                uint8_t bytes[RING_HDR_SIZE];
        } page;
        struct ring_header *h = &page.h;
        char tmp[PATH_MAX];
        int fd, r;

        if (snprintf(tmp, sizeof(tmp), "%s.new-XXXXXX", path) >= (int)sizeof(tmp))
                return ring_fail(err, errsize, -ENAMETOOLONG, "ring %s: path too long", path);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return ring_fail(err, errsize, -errno, "ring %s: cannot create %s: %s", path, tmp,
                                 strerror(errno));
        r = posix_fallocate(fd, 0, (off_t)size);
        if (r != 0) {
                r = ring_fail(err, errsize, -r, "ring %s: cannot allocate %" PRIu64 " bytes: %s",
                              path, size, strerror(r));
                goto fail;
        }
        memset(&page, 0, sizeof(page));
        memcpy(h->magic, ring_magic, sizeof(h->magic));
        h->version = RING_VERSION;
        h->header_size = RING_HDR_SIZE;
        h->file_size = size;
        if (getrandom(&h->ring_id, sizeof(h->ring_id), GRND_NONBLOCK) != sizeof(h->ring_id))
                h->ring_id = (uint64_t)now_realtime_us() ^ ((uint64_t)getpid() << 40);
        h->ring_id |= 1; /* never 0 */
        h->created_us = now_realtime_us();
        h->header_crc = agent_ring_crc32c(0, h, RING_HDR_CRC);
        h->next_seq = next_seq;
        h->watermark_us = watermark_us;
        errno = 0;
        if (pwrite(fd, &page, sizeof(page), 0) != (ssize_t)sizeof(page)) {
                r = ring_fail(err, errsize, errno ? -errno : -EIO, "ring %s: cannot write %s: %s",
                              path, tmp, strerror(errno ? errno : EIO));
                goto fail;
        }
        if (fill) {
                r = fill(ud, fd, size, err, errsize);
                if (r < 0)
                        goto fail;
        }
        if (fsync(fd) < 0) {
                r = ring_fail(err, errsize, -errno, "ring %s: cannot write %s: %s", path, tmp,
                              strerror(errno));
                goto fail;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0 || rename(tmp, path) < 0) {
                r = ring_fail(err, errsize, -errno, "ring %s: cannot put %s in place: %s", path,
                              tmp, strerror(errno));
                goto fail;
        }
        (void)fsync_parent(path); /* best effort: the ring is usable either way */
        return fd;
fail:
        unlink(tmp);
        close(fd);
        return r;
}

int ring_header_positions(const struct ring_header *h, uint64_t file_size, const char *path,
                          char *err, size_t errsize)
{
        uint64_t cap = file_size - RING_HDR_SIZE, e = h->events_cursor, a = h->agg_cursor;
        uint64_t lo = e < a ? e : a, hi = e < a ? a : e;

        if (h->header_size != RING_HDR_SIZE || h->reserved != 0)
                return ring_fail(err, errsize, -EBADMSG,
                                 "ring %s: bad header size or reserved field", path);
        if (h->file_size != file_size)
                return ring_fail(err, errsize, -EBADMSG,
                                 "ring %s: header says %" PRIu64 " bytes, the file has %" PRIu64,
                                 path, h->file_size, file_size);
        if ((h->head | e | a) & 7 || h->head > RING_POS_MAX || hi > h->head || h->head - lo > cap)
                return ring_fail(err, errsize, -EBADMSG,
                                 "ring %s: inconsistent positions (head %" PRIu64
                                 ", events %" PRIu64 ", aggregates %" PRIu64 ")",
                                 path, h->head, e, a);
        return 0;
}

static int header_check(const struct ring_header *h, uint64_t file_size, const char *path,
                        char *err, size_t errsize)
{
        if (memcmp(h->magic, ring_magic, sizeof(ring_magic)) != 0)
                return ring_fail(err, errsize, -EBADMSG, "ring %s: not a ring file (bad magic)",
                                 path);
        if (h->header_crc != agent_ring_crc32c(0, h, RING_HDR_CRC))
                return ring_fail(err, errsize, -EBADMSG, "ring %s: header checksum mismatch", path);
        if (h->version != RING_VERSION)
                return ring_fail(err, errsize, -EPROTONOSUPPORT,
                                 "ring %s: format version %" PRIu32 ", this build reads 1 and %d",
                                 path, h->version, RING_VERSION);
        return ring_header_positions(h, file_size, path, err, errsize);
}

static int ring_map(struct agent_ring *r, int fd, uint64_t size, const char *path, char *err,
                    size_t errsize)
{
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

        if (m == MAP_FAILED)
                return ring_fail(err, errsize, -errno, "ring %s: mmap: %s", path, strerror(errno));
        r->fd = fd;
        r->map = m;
        r->size = size;
        r->cap = size - RING_HDR_SIZE;
        r->data = r->map + RING_HDR_SIZE;
        r->hdr = (struct ring_header *)r->map;
        r->seed = agent_ring_crc32c(0, &r->hdr->ring_id, sizeof(r->hdr->ring_id));
        r->crc_hw = ring_crc32c_hw();
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
static int ring_load_file(struct agent_ring *r, const char *path, struct agent_ring_recovery *rec,
                          char *err, size_t errsize)
{
        struct agent_ring_recovery mig = {0};
        struct ring_header h;
        struct stat st;
        uint64_t size;
        int fd, ret;

        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ENOENT
                                       : ring_fail(err, errsize, -errno, "ring %s: %s", path,
                                                   strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
                close(fd);
                return ring_fail(err, errsize, ret, "ring %s: %s", path,
                                 ret == -EBUSY ? "in use by another process" : strerror(-ret));
        }
        if (fstat(fd, &st) < 0) {
                ret = ring_fail(err, errsize, -errno, "ring %s: %s", path, strerror(errno));
                close(fd);
                return ret;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                return ring_fail(err, errsize, -EBADMSG, "ring %s: not a regular file", path);
        }
        size = (uint64_t)st.st_size;
        if (size < AGENT_RING_SIZE_MIN || size > AGENT_RING_SIZE_MAX || size % RING_HDR_SIZE) {
                close(fd);
                return ring_fail(err, errsize, -EBADMSG,
                                 "ring %s: %" PRIu64 " bytes is not the size of a ring file", path,
                                 size);
        }
        if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
                close(fd);
                return ring_fail(err, errsize, -EIO, "ring %s: cannot read the header", path);
        }
        if (memcmp(h.magic, ring_magic, sizeof(ring_magic)) == 0 &&
            h.header_crc == agent_ring_crc32c(0, &h, RING_HDR_CRC) && h.version == 1) {
                /* an older format: its records move to a new file of this one */
                ret = ring_migrate_v1(path, fd, size, &mig, err, errsize);
                close(fd);
                if (ret < 0)
                        return ret;
                fd = ret;
                mig.migrated = true;
                if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
                        close(fd);
                        return ring_fail(err, errsize, -EIO, "ring %s: cannot read the header",
                                         path);
                }
        }
        ret = header_check(&h, size, path, err, errsize);
        if (ret == 0)
                ret = ring_map(r, fd, size, path, err, errsize);
        if (ret < 0) {
                close(fd);
                return ret;
        }
        ret = ring_recover(r, path, rec, err, errsize);
        if (ret < 0) {
                ring_unmap(r);
                return ret;
        }
        /* what converting an older format found */
        rec->migrated = mig.migrated;
        rec->torn_bytes += mig.torn_bytes;
        rec->rolled_forward += mig.rolled_forward;
        rec->cursors_clamped += mig.cursors_clamped;
        return 0;
}

int agent_ring_open(const char *path, uint64_t size, enum agent_ring_sync_mode sync,
                    struct agent_ring **ret, struct agent_ring_recovery *ret_rec, char *err,
                    size_t errsize)
{
        struct agent_ring_recovery rec = {0};
        struct agent_ring *r;
        int fd, e;

        if (!path || (unsigned)sync >= _AGENT_RING_SYNC_MAX ||
            (size &&
             (size < AGENT_RING_SIZE_MIN || size > AGENT_RING_SIZE_MAX || size % RING_HDR_SIZE)))
                return ring_fail(err, errsize, -EINVAL,
                                 "ring %s: size must be a multiple of 4096 from %llu to %llu bytes",
                                 path ? path : "(null)", AGENT_RING_SIZE_MIN, AGENT_RING_SIZE_MAX);
        r = floe_calloc(1, sizeof(*r));
        if (!r)
                return ring_fail(err, errsize, -ENOMEM, "ring %s: out of memory", path);
        r->fd = -1;
        r->sync = sync;
        e = ring_load_file(r, path, &rec, err, errsize);
        if (e == -ENOENT && size == 0) {
                e = ring_fail(err, errsize, -ENOENT,
                              "ring %s: no such file and no size to create it", path);
        } else if (e == -ENOENT) {
                fd = ring_create(path, size, INT64_MIN, 0, NULL, NULL, err, errsize);
                e = fd < 0 ? fd : ring_map(r, fd, size, path, err, errsize);
                if (fd >= 0 && e < 0)
                        close(fd);
                rec.created = true;
        } else if (e == 0 && size && size != r->size) {
                uint64_t used = ring_load(&r->hdr->head) - ring_min_cursor(r);

                if (used > 0) {
                        e = ring_fail(err, errsize, -ERANGE,
                                      "ring %s: the file has %" PRIu64 " bytes, configured %" PRIu64
                                      ", and it still holds %" PRIu64 " record bytes; open it "
                                      "with its own size until it is drained",
                                      path, r->size, size, used);
                } else {
                        fd = ring_create(path, size, r->hdr->watermark_us, r->hdr->next_seq, NULL,
                                         NULL, err, errsize);
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
        r->synced_head = ring_load(&r->hdr->head);
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

/* ---- cursors ---- */

uint64_t agent_ring_head(const struct agent_ring *r)
{
        return ring_load(&r->hdr->head);
}

uint64_t agent_ring_events_cursor(const struct agent_ring *r)
{
        return ring_load(&r->hdr->events_cursor);
}

uint64_t agent_ring_agg_cursor(const struct agent_ring *r)
{
        return ring_load(&r->hdr->agg_cursor);
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
        uint64_t head = ring_load(&r->hdr->head), next;
        const struct ring_rec *rc;
        uint32_t n;

        if (pos > head || pos & 7)
                return -EINVAL;
        if (pos == head || pos == cur)
                return 0;
        if (ring_rec_check(r, pos, false, &rc, &n, &next) < 0 || next > head)
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
        uint64_t cur = ring_load(&r->hdr->events_cursor);
        int e;

        if (pos <= cur)
                return 0;
        e = cursor_check(r, cur, pos);
        if (e < 0)
                return e;
        ring_store(r, &r->hdr->events_cursor, pos);
        return cursor_stored(r);
}

int agent_ring_set_agg_cursor(struct agent_ring *r, uint64_t pos, int64_t watermark_us)
{
        uint64_t cur = ring_load(&r->hdr->agg_cursor);
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
                ring_store(r, &r->hdr->agg_cursor, pos);
        return cursor_stored(r);
}

int agent_ring_set_pending(struct agent_ring *r, const struct agent_ring_pending *p)
{
        /* seq last: a torn hand-over record reads as none */
        ring_store(r, &r->hdr->pending_seq, 0);
        ring_store(r, &r->hdr->pending_cursor, p->cursor);
        __atomic_store_n(&r->hdr->pending_watermark_us, p->watermark_us, __ATOMIC_RELEASE);
        ring_store(r, &r->hdr->pending_kind, p->kind);
        ring_store(r, &r->hdr->pending_seq, p->seq);
        return cursor_stored(r);
}

void agent_ring_get_pending(const struct agent_ring *r, struct agent_ring_pending *ret)
{
        *ret = (struct agent_ring_pending){
                .seq = ring_load(&r->hdr->pending_seq),
                .kind = (int)ring_load(&r->hdr->pending_kind),
                .cursor = ring_load(&r->hdr->pending_cursor),
                .watermark_us = (int64_t)ring_load((const uint64_t *)&r->hdr->pending_watermark_us),
        };
}

void agent_ring_clear_pending(struct agent_ring *r)
{
        ring_store(r, &r->hdr->pending_seq, 0);
}

/* ---- stats ---- */

/* The sequence number of the first reading at or after pos. */
static uint64_t seq_at(const struct agent_ring *r, uint64_t pos)
{
        uint64_t head = ring_load(&r->hdr->head), next;
        const struct ring_rec *rc;
        uint32_t n;

        while (pos < head && ring_rec_check(r, pos, false, &rc, &n, &next) == 0) {
                if (rc)
                        return rc->seq;
                pos = next;
        }
        return r->hdr->next_seq;
}

void agent_ring_stats(const struct agent_ring *r, struct agent_ring_stats *ret)
{
        uint64_t head = ring_load(&r->hdr->head), e = agent_ring_events_cursor(r);
        uint64_t a = agent_ring_agg_cursor(r), next_seq = r->hdr->next_seq;

        *ret = (struct agent_ring_stats){
                .size = r->size,
                .capacity = r->cap,
                .used = head - ring_min_cursor(r),
                .free = r->cap - (head - ring_min_cursor(r)),
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
