/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The agent's ring: a fixed-size file mapped MAP_SHARED that holds every
 * accepted reading until it is in the outbox (events) and its window is
 * shipped (aggregates). A reading is accepted once agent_ring_append() (or
 * agent_ring_append_group(), for the readings of one sensor that arrived
 * together) returned: from then on kill -9 cannot lose it (the page cache
 * keeps the mapping's stores); power loss is covered by the sync policy.
 *
 * docs/ring.md is normative for the file format, the positions and cursors,
 * the order of stores and what recovery does. Not thread-safe: one event
 * loop owns a ring. Appending and iterating never allocate.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reading.h"

#define AGENT_RING_SIZE_DEFAULT (64ULL << 20)
#define AGENT_RING_SIZE_MIN     (8ULL << 10)
#define AGENT_RING_SIZE_MAX     (1ULL << 40)
#define AGENT_RING_NAME_MAX     255   /* bytes of a sensor or metric name */
#define AGENT_RING_TEXT_MAX     65535 /* bytes of a text value */
#define AGENT_RING_GROUP_MAX    1024  /* readings in one record */

/* Record flags. NULL and TEXT follow the reading; the caller sets the rest. */
#define AGENT_RING_F_NULL           0x01 /* value is null */
#define AGENT_RING_F_TEXT           0x02 /* the reading has a text */
#define AGENT_RING_F_TS_IMPLAUSIBLE 0x04 /* ts before the floor or too far ahead */
#define AGENT_RING_F_TS_STAMPED     0x08 /* the source gave no ts: the agent's clock */
#define AGENT_RING_F_CALLER         (AGENT_RING_F_TS_IMPLAUSIBLE | AGENT_RING_F_TS_STAMPED)

enum agent_ring_sync_mode {
        AGENT_RING_SYNC_NONE,     /* kill -9 safe; power loss may tear the tail */
        AGENT_RING_SYNC_INTERVAL, /* agent_ring_sync() from a timer: msync(MS_SYNC) */
        AGENT_RING_SYNC_ALWAYS,   /* msync(MS_SYNC) per append and cursor move: slow */
        _AGENT_RING_SYNC_MAX,
};

struct agent_ring;

/* What agent_ring_open() found. */
struct agent_ring_recovery {
        bool created;             /* there was no file: a new, empty ring */
        bool resized;             /* an empty ring of another size was replaced */
        uint64_t records;         /* readings in valid records from the older cursor to the head */
        uint64_t bytes;           /* bytes from the older cursor to the head */
        uint64_t torn_bytes;      /* past the last valid record up to the stored head: dropped */
        uint64_t rolled_forward;  /* readings in valid records past the stored head: kept */
        uint32_t cursors_clamped; /* cursors that pointed past the recovered head */
        bool migrated;            /* a ring of an older format was converted first */
};

struct agent_ring_stats {
        uint64_t size;     /* file bytes */
        uint64_t capacity; /* bytes for records */
        uint64_t used;     /* head minus the older cursor */
        uint64_t free;     /* capacity - used */
        uint64_t events_pending_bytes;
        uint64_t events_pending_records;
        uint64_t agg_pending_bytes;
        uint64_t agg_pending_records;
        uint64_t appended; /* since open */
        uint64_t full;     /* appends refused with -ENOSPC since open */
        uint64_t syncs;    /* successful msync rounds since open */
        uint64_t sync_errors;
};

/* One reading read back. A record holds one or more readings (of one
 * sensor, appended at one arrival time): they share pos and next. Strings
 * point into the mapping: valid until the cursors move past the record and
 * the space is reused. */
struct agent_ring_entry {
        struct agent_reading rd;
        uint8_t flags;
        int64_t arrival_us; /* the agent's clock when it appended the record */
        uint64_t seq;       /* reading sequence number, +1 per reading */
        uint64_t pos;       /* position of the record */
        uint64_t next;      /* position after it: the cursor value that consumes it */
        uint32_t index;     /* of the reading in its record, from 0 */
        uint32_t entries;   /* readings in the record: the last has index entries - 1 */
        uint32_t length;    /* bytes of the record: a bound on its names and texts */
};

struct agent_ring_iter {
        struct agent_ring *ring;
        uint64_t pos;  /* the record being read, or the next one */
        uint64_t next; /* after the record being read */
        uint32_t off;  /* of the next reading in the record; 0: at the record's start */
        uint32_t index, entries;
        int64_t ts;
        int error; /* from agent_ring_iter_init(), returned by every _next() */
};

/*
 * Open or create the ring at path. size 0 takes the size of an existing file.
 * Errors (err gets one line naming the file and the reason):
 *   -EBADMSG   not a ring, or its header is corrupt or inconsistent
 *   -EPROTONOSUPPORT  a ring format version this build does not read
 *   -ERANGE    the file has another size and still holds records
 *   -EBUSY     another process holds the ring's lock
 *   -EINVAL    size not a multiple of 4096 or outside MIN..MAX, bad mode
 *   other      from open(2), posix_fallocate(3), mmap(2) (e.g. -ENOSPC)
 * What the agent does about each is in docs/ring.md.
 */
int agent_ring_open(const char *path, uint64_t size, enum agent_ring_sync_mode sync,
                    struct agent_ring **ret, struct agent_ring_recovery *ret_rec, char *err,
                    size_t errsize);
/* Syncs per policy, unmaps, releases the lock. Accepts NULL. */
struct agent_ring *agent_ring_close(struct agent_ring *r);

/* Rename a bad ring to <path>.corrupt-<YYYYmmddTHHMMSSZ>[.N] (never
 * overwriting); ret_path gets the new name. */
int agent_ring_move_aside(const char *path, int64_t now_us, char *ret_path, size_t ret_size);

/*
 * Append one reading (ts set, not AGENT_TS_NONE) as a record of its own.
 * flags: AGENT_RING_F_CALLER bits only. ret_pos (may be NULL) gets the
 * record's position.
 * -ENOSPC ring full (counted; the caller counts a drop), -EINVAL empty name,
 * ts missing or unknown flags, -ENAMETOOLONG name over 255 bytes, -EMSGSIZE
 * text over 65535 bytes or a record larger than the ring, -EDOM non-finite
 * value, -EIO msync failed under AGENT_RING_SYNC_ALWAYS (the record is in).
 */
int agent_ring_append(struct agent_ring *r, const struct agent_reading *rd, uint8_t flags,
                      int64_t arrival_us, uint64_t *ret_pos);

/*
 * Append n readings (1..AGENT_RING_GROUP_MAX) of one sensor that arrived
 * together as one record (docs/ring.md §3): all or none. flags (NULL: all
 * 0) per reading. The errors of agent_ring_append(); -EINVAL also when the
 * sensors differ.
 */
int agent_ring_append_group(struct agent_ring *r, const struct agent_reading *rd,
                            const uint8_t *flags, size_t n, int64_t arrival_us, uint64_t *ret_pos);

/* Iterate from a position between the older cursor and the head (a cursor,
 * the head, or an entry's pos or next). -EINVAL when out of range. */
int agent_ring_iter_init(struct agent_ring *r, uint64_t from_pos, struct agent_ring_iter *it);
/* 0 and the next record; -ENOENT at the head (records appended later are
 * seen by the next call); -ESTALE when the cursors moved past the iterator;
 * -EBADMSG when a record does not check out (the file was changed). */
int agent_ring_iter_next(struct agent_ring_iter *it, struct agent_ring_entry *ret);

uint64_t agent_ring_head(const struct agent_ring *r);
uint64_t agent_ring_events_cursor(const struct agent_ring *r);
uint64_t agent_ring_agg_cursor(const struct agent_ring *r);
int64_t agent_ring_watermark(const struct agent_ring *r);
uint64_t agent_ring_capacity(const struct agent_ring *r);
uint64_t agent_ring_id(const struct agent_ring *r);

/* Move a cursor forward to pos, which must be the head or the position of a
 * record. An older pos is a no-op (cursors never move back); past the head
 * or not a record boundary is -EINVAL. The watermark only grows too; it is
 * stored before the aggregation cursor. */
int agent_ring_set_events_cursor(struct agent_ring *r, uint64_t pos);
int agent_ring_set_agg_cursor(struct agent_ring *r, uint64_t pos, int64_t watermark_us);

/* msync(MS_SYNC) what changed since the last sync, records before the
 * header; a no-op under AGENT_RING_SYNC_NONE. -EIO etc. from msync. */
/*
 * The hand-over of a batch to the outbox, so that a crash between the
 * outbox append and the cursor move neither loses nor repeats it: the
 * pipeline records the batch's outbox seq and the cursor it moves before
 * the append, moves the cursor after it, then clears the record. At start,
 * a recorded batch the outbox holds has its cursor moved before replay.
 */
struct agent_ring_pending {
        uint64_t seq; /* outbox seq; 0: nothing pending */
        int kind;     /* FLOE_KIND_EVENTS: events cursor; FLOE_KIND_AGGREGATES: agg cursor */
        uint64_t cursor;
        int64_t watermark_us; /* aggregates only */
};
int agent_ring_set_pending(struct agent_ring *r, const struct agent_ring_pending *p);
void agent_ring_get_pending(const struct agent_ring *r, struct agent_ring_pending *ret);
void agent_ring_clear_pending(struct agent_ring *r);

int agent_ring_sync(struct agent_ring *r);

void agent_ring_stats(const struct agent_ring *r, struct agent_ring_stats *ret);

const char *agent_ring_sync_mode_name(enum agent_ring_sync_mode m);
int agent_ring_sync_mode_from_name(const char *name, enum agent_ring_sync_mode *ret);

/* CRC-32C (Castagnoli), chainable like zlib's crc32(): start with 0. */
uint32_t agent_ring_crc32c(uint32_t crc, const void *data, size_t len);
