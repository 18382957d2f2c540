/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by outbox.c, outbox-format.c and outbox-recover.c; docs/outbox.md
 * describes the bytes. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "outbox.h"

#define OUTBOX_HDR_SIZE         40
#define OUTBOX_MAGIC            0x58424f46U /* "FOBX" */
#define OUTBOX_VERSION          1
#define OUTBOX_META_MAGIC       0x4d424f46U /* "FOBM" */
#define OUTBOX_META_VERSION     1
#define OUTBOX_META_SLOT_SIZE   64
#define OUTBOX_META_SLOT_STRIDE 4096 /* slots on different pages */
#define OUTBOX_META_NAME        "meta"
#define OUTBOX_SEG_NAME_LEN     24          /* "seg-" 16 hex ".log" */
#define OUTBOX_ACKED            0x80000000U /* in outbox_rec.events */
#define OUTBOX_SCAN_BUF         (64U << 10)
#define OUTBOX_MAX_SEGMENTS     65536U

struct outbox_hdr {
        uint8_t kind;
        uint32_t len;
        uint32_t events;
        uint64_t epoch;
        uint64_t seq;
        uint32_t crc; /* over the header's first 36 bytes and the payload */
};

struct outbox_meta {
        uint64_t gen;
        uint64_t epoch;
        uint64_t next_seq;   /* no seq at or above was handed out, except records on disk */
        uint64_t done_below; /* every seq below is acked, dropped or discarded */
};

/* One record in the index: 16 bytes. */
struct outbox_rec {
        uint64_t seq;
        uint32_t offset;
        uint32_t events; /* | OUTBOX_ACKED */
};

struct outbox_seg {
        uint64_t name;   /* seq in the file name */
        uint64_t bytes;  /* file size */
        uint64_t events; /* unacked events */
        uint32_t count;
        uint32_t acked; /* acked, dropped or discarded */
        uint32_t cap;
        struct outbox_rec *recs;
};

struct agent_outbox {
        struct agent_outbox_opts opts; /* resolved */
        int dir_fd;
        int meta_fd;
        int active_fd; /* segs[nseg - 1] takes appends when >= 0 */
        int read_fd;
        uint64_t read_name; /* segment read_fd belongs to */
        bool ready;         /* recovered: close may write meta */
        bool meta_created;  /* the directory entry of meta is not synced yet */

        uint64_t epoch;
        uint64_t next_seq;
        uint64_t floor;      /* next_seq in the durable meta */
        uint64_t done_below; /* done_below in the durable meta */
        uint64_t meta_gen;

        struct outbox_seg *segs;
        size_t nseg;
        size_t seg_cap;

        uint64_t pending_batches;
        uint64_t pending_events;
        uint64_t bytes;
        struct agent_outbox_stats st; /* counters */
};

uint32_t outbox_crc32c(uint32_t crc, const void *data, size_t len);

/* Fills the 40 header bytes, both CRCs included. */
void outbox_hdr_encode(const struct outbox_hdr *h, const uint8_t *payload,
                       uint8_t out[OUTBOX_HDR_SIZE]);
/* Checks magic, version, flags, header CRC and the limits; -EBADMSG. */
int outbox_hdr_decode(const uint8_t in[OUTBOX_HDR_SIZE], struct outbox_hdr *ret);

void outbox_meta_encode(const struct outbox_meta *m, uint8_t out[OUTBOX_META_SLOT_SIZE]);
int outbox_meta_decode(const uint8_t in[OUTBOX_META_SLOT_SIZE], struct outbox_meta *ret);

/* "seg-<16 hex>.log"; buf holds OUTBOX_SEG_NAME_LEN + 1 bytes. */
void outbox_seg_name(uint64_t seq, char *buf);
/* 0 and the seq for a segment file name, -EINVAL for any other name. */
int outbox_seg_parse(const char *name, uint64_t *ret);

/* pread/pwrite until done; a short read at EOF returns the bytes read. */
ssize_t outbox_pread_full(int fd, void *buf, size_t len, uint64_t off);
int outbox_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* "what: strerror(-r)" into err, when err is not NULL. */
void outbox_set_err(char *err, size_t errsize, const char *what, int r);

/* Reads meta and the segments into ob (epoch, next_seq, index, counters).
 * Cuts torn tails; leaves meta and deletions to the caller. */
int outbox_recover(struct agent_outbox *ob, char *err, size_t errsize);

/* Where a held record is in the index: segs[*ret_i].recs[*ret_j]; -ENOENT. */
int outbox_find(const struct agent_outbox *ob, uint64_t seq, size_t *ret_i, uint32_t *ret_j);

static inline bool outbox_is_active(const struct agent_outbox *ob, size_t i)
{
        return ob->active_fd >= 0 && i + 1 == ob->nseg;
}

/* The oldest seq not acked among segs[from..], else next_seq. */
uint64_t outbox_oldest_unacked(const struct agent_outbox *ob, size_t from);
