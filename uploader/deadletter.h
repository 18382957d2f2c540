/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Rejected batches (docs/uploader.md, "Dead letters"): kept in the warehouse, never committed,
 *
 *   <prefix>/<YYYY-MM-DD>/<identity>/<epoch>-<seq>-<reason>.batch   the payload as received
 *   <prefix>/<YYYY-MM-DD>/<identity>/<epoch>-<seq>-<reason>.json    why, from where, when
 *
 * (x<first 16 hex digits of the payload's SHA-256> instead of <epoch>-<seq> when those could
 * not be read; "_invalid" for a topic without a valid identity). Names depend only on the
 * batch and the reason: a batch rejected again overwrites its own letter.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lake_store;

struct upl_dead_letter {
        const char *topic;
        const char *identity; /* from the topic; NULL when it has none */
        bool have_seq;
        uint64_t epoch, seq;
        const char *reason; /* a stable name (docs/wire-format.md §11, docs/uploader.md) */
        const char *detail;
        const char *uploader; /* the client id, for the record */
        int64_t received_us;
        const void *data;
        size_t len;
};

/* Writes both objects (the batch first). key (size bytes, may be NULL) gets the .batch key. */
int upl_dead_letter_write(struct lake_store *s, const char *prefix, const struct upl_dead_letter *d,
                          char *key, size_t size);

/*
 * Best effort (epoch, seq) of a batch that did not decode, so its sender can be told: the
 * zstd frame's declared content size at most max_decompressed, decompressed, and a definite
 * CBOR map at the top whose "epoch" and "seq" keys hold unsigned integers (other values are
 * skipped, nested at most 64 deep). -EBADMSG when they cannot be read, -ENOMEM.
 */
int upl_peek_seq(const void *data, size_t len, size_t max_decompressed, uint64_t *ret_epoch,
                 uint64_t *ret_seq);
/* The same over the CBOR bytes themselves. */
int upl_peek_seq_cbor(const uint8_t *p, size_t len, uint64_t *ret_epoch, uint64_t *ret_seq);
