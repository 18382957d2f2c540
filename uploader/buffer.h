/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Buffered batches (docs/uploader.md, "Buffering"): each table buffers the wire batches it took,
 * as received (compressed: memory goes furthest), per tenant, which is the table's identity
 * partition; a flush decodes them again and writes them tenant by tenant, each tenant's
 * batches in time order, so each partition's rows go to one file. An index over every
 * buffered batch of every table finds a batch resent while it waits.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "floe-batch.h"
#include "ledger.h"

enum upl_item_state {
        UPL_ITEM_BUFFERED,
        UPL_ITEM_DUPLICATE, /* found committed by the commit's transaction */
        UPL_ITEM_REJECTED,  /* the table refused its rows: dead-lettered */
};

struct upl_item {
        struct upl_item *next;  /* in its tenant's list */
        struct upl_item *hnext; /* in the index */
        uint64_t epoch, seq;
        enum floe_batch_kind kind;
        int64_t received_us; /* wall clock: the rows' received_at */
        uint64_t received_mono;
        int64_t ts_min; /* the batch's first time, for ordering */
        uint32_t rows;
        enum upl_item_state state;
        struct upl_claim claim;
        uint8_t *data;
        size_t len;
        char identity[]; /* "<tenant>.<device>" */
};

/* A new item holding a copy of data. */
int upl_item_new(const char *identity, uint64_t epoch, uint64_t seq, enum floe_batch_kind kind,
                 const void *data, size_t len, struct upl_item **ret);
struct upl_item *upl_item_free(struct upl_item *it);
/* What the item costs in memory. */
uint64_t upl_item_bytes(const struct upl_item *it);
/* The tenant part of its identity (not NUL-terminated) and its length. */
size_t upl_item_tenant(const struct upl_item *it, const char **ret);

struct upl_tenant_buf {
        char tenant[FLOE_IDENTITY_PART_MAX + 1];
        struct upl_item *head, *tail;
        size_t n;
        uint64_t bytes, rows;
        int64_t oldest_us; /* received_us of its oldest item */
};

/* One generation of one table's buffer. */
struct upl_buffer {
        struct upl_tenant_buf *tenants;
        size_t n_tenants, cap_tenants;
        size_t n_items;
        uint64_t bytes, rows;
        uint64_t first_mono; /* received_mono of the oldest item; 0 when empty */
};

/* Appends it (taken). */
int upl_buffer_add(struct upl_buffer *b, struct upl_item *it);
/* Moves every item of src to dst (src is left empty). */
int upl_buffer_merge(struct upl_buffer *dst, struct upl_buffer *src);
/* Frees every item (after they left the index). */
void upl_buffer_clear(struct upl_buffer *b);
/* The items in flush order (tenant by tenant, by name; in a tenant by time, identity, seq),
 * in *ret (floe_malloc'd, n_items entries). */
int upl_buffer_order(const struct upl_buffer *b, struct upl_item ***ret);
/* The oldest received_us of a tenant's items, 0 if it has none here. */
int64_t upl_buffer_tenant_oldest(const struct upl_buffer *b, const char *tenant);

/* The batches buffered in any table, by (identity, epoch, seq). */
struct upl_index {
        struct upl_item **slots;
        size_t n_slots, n;
};

int upl_index_init(struct upl_index *x);
void upl_index_clear(struct upl_index *x);
struct upl_item *upl_index_find(const struct upl_index *x, const char *identity, uint64_t epoch,
                                uint64_t seq);
void upl_index_add(struct upl_index *x, struct upl_item *it);
void upl_index_remove(struct upl_index *x, struct upl_item *it);
