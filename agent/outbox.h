/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The agent's outbox: encoded wire batches kept on flash until the uploader
 * acknowledges them. A directory of CRC'd segment files plus a `meta` file
 * that owns the stream identity (epoch, next seq). docs/outbox.md is the
 * normative description of the on-disk format and the recovery rules.
 *
 * The backlog is never loaded into memory: the outbox keeps a 16-byte index
 * entry per record and reads frames with pread() into the caller's buffer.
 * Not thread-safe: one event loop owns it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_OUTBOX_SEGMENT_BYTES_DEFAULT   (4ULL << 20)
#define AGENT_OUTBOX_MAX_BYTES_DEFAULT       (256ULL << 20)
#define AGENT_OUTBOX_MAX_RECORD_DEFAULT      (4U << 20) /* = the wire format's max_compressed */
#define AGENT_OUTBOX_SEGMENT_RECORDS_DEFAULT 4096U
/* Hard limits of the format. */
#define AGENT_OUTBOX_RECORD_MAX  (64U << 20) /* payload bytes of one record */
#define AGENT_OUTBOX_EVENTS_MAX  0x7fffffffU /* events of one record */
#define AGENT_OUTBOX_SEQ_MAX     INT64_MAX   /* seqs are below this */
#define AGENT_OUTBOX_SEQ_FIRST   1           /* first seq of a new epoch */
#define AGENT_OUTBOX_SEQ_RESERVE 1024        /* seqs reserved ahead under SYNC_NONE */

enum agent_outbox_policy {
        AGENT_OUTBOX_DROP_OLDEST, /* delete whole oldest segments to make room (default) */
        AGENT_OUTBOX_REJECT_NEW,  /* refuse the append with -ENOSPC */
};

enum agent_outbox_sync {
        AGENT_OUTBOX_SYNC_BATCH, /* fdatasync per append, fsync the directory (default) */
        AGENT_OUTBOX_SYNC_NONE,  /* leave writeback to the kernel; meta is still synced */
};

/* Zero fields take their defaults. */
struct agent_outbox_opts {
        uint64_t max_bytes;       /* bytes of all segment files; 256 MiB */
        uint64_t segment_bytes;   /* a segment rolls at this size; 4 MiB, 1 KiB..1 GiB */
        uint32_t segment_records; /* ... or at this many records; 4096, at most 1 Mi */
        uint32_t max_segments;    /* 0: 2 * ceil(max_bytes / segment_bytes) + 2 */
        uint32_t max_record;      /* largest frame accepted; 4 MiB, at most RECORD_MAX */
        enum agent_outbox_policy policy;
        enum agent_outbox_sync sync;
};

/* How open found the directory. */
enum agent_outbox_origin {
        AGENT_OUTBOX_CREATED,      /* no meta, no segments: a new epoch (first start, or wiped) */
        AGENT_OUTBOX_RESUMED,      /* a valid meta slot: epoch and seq continue */
        AGENT_OUTBOX_META_REBUILT, /* no valid meta slot: epoch taken from the records */
        AGENT_OUTBOX_EPOCH_RESET,  /* no valid meta slot and no valid record: a new epoch */
};

struct agent_outbox_stats {
        uint64_t epoch;
        uint64_t next_seq;
        uint64_t oldest_unacked_seq; /* next_seq when nothing is pending */
        /* Pending (unacked) batches and their events; bytes and segments on disk. */
        uint64_t batches, events, bytes, segments;
        uint64_t acked_batches;
        uint64_t duplicate_acks; /* acks of a record already acked */
        uint64_t unknown_acks;   /* other epoch, or a seq the outbox does not hold */
        uint64_t discarded_batches, discarded_events;
        uint64_t dropped_batches, dropped_events;   /* drop-oldest */
        uint64_t rejected_batches, rejected_events; /* reject-new (-ENOSPC) */
        /* What the recovery scan at open found. */
        enum agent_outbox_origin origin;
        uint32_t meta_bad_slots;            /* invalid meta slots (0..2) */
        uint64_t recovered_torn_bytes;      /* cut from segment tails */
        uint64_t recovered_corrupt_records; /* bad records skipped between good ones */
        uint64_t recovered_batches;         /* unacked records found */
        uint64_t io_errors;                 /* failed writes, syncs, deletions since open */
};

/* What a record holds, from its header on disk. */
struct agent_outbox_record {
        uint64_t seq;
        uint32_t len; /* frame bytes */
        uint32_t events;
        uint8_t kind;
        bool acked;
};

struct agent_outbox;

void agent_outbox_opts_default(struct agent_outbox_opts *ret);

/*
 * Opens (creating the directory 0700 and the meta file if missing) and
 * recovers: torn tails are cut, bad records skipped, seq continues past every
 * record found. Holds an exclusive flock(2) on the directory: -EBUSY when
 * another outbox has it open. -EINVAL for inconsistent options. err (may be
 * NULL) names what failed.
 */
int agent_outbox_open(const char *dir, const struct agent_outbox_opts *opts,
                      struct agent_outbox **ret, char *err, size_t errsize);
/* Deletes fully acked segments, syncs and writes the exact next seq to meta. */
struct agent_outbox *agent_outbox_close(struct agent_outbox *ob);

uint64_t agent_outbox_epoch(const struct agent_outbox *ob);
/* The seq the next batch must carry: encode the batch with it, then append. */
uint64_t agent_outbox_next_seq(const struct agent_outbox *ob);

/*
 * Appends one frame under seq (must equal next_seq: -EINVAL otherwise) and
 * advances next_seq. -EMSGSIZE: empty or over max_record. -ENOSPC when full
 * under reject-new (counted); under drop-oldest the oldest whole segments are
 * deleted (counted) but never the one appended to. An I/O error leaves the
 * outbox as before the call. Does not allocate unless a new segment starts.
 */
int agent_outbox_append(struct agent_outbox *ob, uint64_t seq, uint8_t kind, uint32_t events,
                        const uint8_t *frame, size_t len);

/*
 * Marks (epoch, seq) acked, in any order. -ENOENT (counted) for another epoch
 * or a seq not held, -EALREADY (counted) when already acked. A segment is
 * deleted once all its records are acked and it is no longer appended to;
 * when that deletion fails the ack still counts and the error is returned.
 */
int agent_outbox_ack(struct agent_outbox *ob, uint64_t epoch, uint64_t seq);
/* Like an ack, but counted as discarded: a batch the uploader rejected or
 * that can no longer be read. The caller keeps a copy first if it wants one. */
int agent_outbox_discard(struct agent_outbox *ob, uint64_t seq);

/* The smallest unacked seq >= from_seq, -ENOENT when there is none. */
int agent_outbox_next_unacked(const struct agent_outbox *ob, uint64_t from_seq, uint64_t *ret_seq);
/* Header of one held record (pread). -ENOENT if not held, -EBADMSG if the
 * header on disk no longer checks out. */
int agent_outbox_record_info(struct agent_outbox *ob, uint64_t seq,
                             struct agent_outbox_record *ret);
/*
 * Reads the frame of one held record into buf (pread) and verifies its CRC:
 * -ENOENT if not held, -ENOBUFS if size is below the frame length, -EBADMSG
 * if the record on disk is damaged. Does not allocate.
 */
int agent_outbox_read(struct agent_outbox *ob, uint64_t seq, uint8_t *buf, size_t size,
                      size_t *ret_len);

void agent_outbox_stats(const struct agent_outbox *ob, struct agent_outbox_stats *ret);
const char *agent_outbox_origin_name(enum agent_outbox_origin o);
