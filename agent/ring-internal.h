/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by ring.c (the file, its header and cursors), ring-record.c (the
 * records) and ring-migrate.c (older formats). docs/ring.md is normative. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ring format is little-endian and mapped directly"
#endif

#define RING_HDR_SIZE 4096
#define RING_VERSION  2
#define RING_WRAP     UINT32_MAX
#define RING_POS_MAX  (1ULL << 62) /* positions beyond are corrupt, not reachable */

/* docs/ring.md §2. Bytes 0..43 are fixed at creation and covered by
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

/* docs/ring.md §3: a record holds the readings of one sensor that arrived
 * together; the header is followed by the sensor and the entries. */
struct ring_rec {
        uint32_t length;
        uint32_t crc;
        uint64_t pos;
        uint64_t seq; /* of the first entry */
        int64_t arrival_us;
        uint8_t sensor_len;
        uint8_t reserved[7];
};

#define RING_REC_HDR   sizeof(struct ring_rec)
#define RING_HDR_CRC   offsetof(struct ring_header, header_crc)
#define RING_E_TS_SAME 0x10 /* entry flag: the ts of the entry before, not stored */
#define RING_E_FLAGS   (AGENT_RING_F_NULL | AGENT_RING_F_TEXT | AGENT_RING_F_CALLER | RING_E_TS_SAME)
#define RING_ENTRY_MAX (2 + 2 + 8 + 8 + AGENT_RING_NAME_MAX + AGENT_RING_TEXT_MAX)

_Static_assert(offsetof(struct ring_header, head) == 64, "header layout");
_Static_assert(offsetof(struct ring_header, watermark_us) == 96, "header layout");
_Static_assert(RING_HDR_CRC == 40, "header layout");
_Static_assert(sizeof(struct ring_rec) == 40, "record layout");

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
        bool crc_hw;   /* CRC-32C instructions */
        uint64_t appended, full, syncs, sync_errors;
};

static inline uint64_t ring_align8(uint64_t n)
{
        return (n + 7) & ~(uint64_t)7;
}

static inline uint64_t ring_load(const uint64_t *p)
{
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Record bytes first, header fields after: the release store keeps the
 * compiler and the CPU from moving earlier stores past it. */
static inline void ring_store(struct agent_ring *r, uint64_t *p, uint64_t v)
{
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
        r->hdr_dirty = true;
}

static inline uint64_t ring_min_cursor(const struct agent_ring *r)
{
        uint64_t e = ring_load(&r->hdr->events_cursor), a = ring_load(&r->hdr->agg_cursor);

        return e < a ? e : a;
}

uint32_t ring_wrap_crc(const struct agent_ring *r, uint64_t pos);
/* Whether agent_ring_crc32c() uses the CPU's CRC-32C instructions. */
bool ring_crc32c_hw(void);

/*
 * The record or wrap marker at position pos: 0 with *ret_rec NULL for a wrap
 * marker, else the record and its entry count; *ret_next the position after
 * it. -EBADMSG if the bytes there are not a record written at pos in this
 * ring (crc false skips the checksum, not the structure).
 */
int ring_rec_check(const struct agent_ring *r, uint64_t pos, bool crc,
                   const struct ring_rec **ret_rec, uint32_t *ret_entries, uint64_t *ret_next);

/* The walk of docs/ring.md §7 over a mapped ring whose header checked out. */
int ring_recover(struct agent_ring *r, const char *path, struct agent_ring_recovery *rec, char *err,
                 size_t errsize);

/* The record space of positions [from, from + n), n <= cap: msync or zero it. */
int ring_data_range(struct agent_ring *r, uint64_t from, uint64_t n, bool zero);

__attribute__((format(printf, 4, 5))) int ring_fail(char *err, size_t errsize, int r,
                                                    const char *fmt, ...);

/* Fills a new ring file (its header written) before it is synced and renamed into place. */
typedef int (*ring_fill_fn)(void *ud, int fd, uint64_t size, char *err, size_t errsize);

/* A new ring file at path, fully allocated, renamed into place; returns its
 * locked fd. The watermark and sequence carry over when a ring is replaced. */
int ring_create(const char *path, uint64_t size, int64_t watermark_us, uint64_t next_seq,
                ring_fill_fn fill, void *ud, char *err, size_t errsize);

/* The magic, the header checksum and these fields apply to every version. */
int ring_header_positions(const struct ring_header *h, uint64_t file_size, const char *path,
                          char *err, size_t errsize);

/* The ring file of format version 1 at path, locked and open as fd, is
 * replaced by a current one with the same readings, cursors, hand-over and
 * watermark (docs/ring.md §12). Returns the new file's locked fd. */
int ring_migrate_v1(const char *path, int fd, uint64_t size, struct agent_ring_recovery *rec,
                    char *err, size_t errsize);
