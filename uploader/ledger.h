/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The ledger (docs/uploader.md, "Ledger"): per stream (identity, epoch) the committed seqs, in
 * the catalog's database next to iceberg_tables,
 *
 *   floe_ledger (catalog_name, identity, epoch, hwm, above, updated_ms)
 *
 * checked and updated inside each table commit's transaction (upl_ledger_txn), so a batch is
 * appended at most once however many uploaders share the database. A cache of what the
 * database said answers the check before buffering; it never claims more than the database
 * holds (committed seqs stay committed), so a stale cache only lets a duplicate reach the
 * commit, where the transaction finds it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seqset.h"

struct lake_catalog;
struct lake_catalog_txn;
struct upl_ledger;

#define UPL_LEDGER_RANGES_HARD_MAX (1u << 20) /* what a row may hold, whatever the config */

int upl_ledger_new(const char *catalog_name, uint32_t max_ranges, uint64_t cache_idle_us,
                   struct upl_ledger **ret);
struct upl_ledger *upl_ledger_free(struct upl_ledger *l);
void upl_ledger_set_limits(struct upl_ledger *l, uint32_t max_ranges, uint64_t cache_idle_us);

/* Creates the table if it is missing. */
int upl_ledger_setup(struct upl_ledger *l, struct lake_catalog *c);

/* Whether (identity, epoch, seq) is committed: from the cache, else read from the database
 * (c may be NULL: then only the cache answers). A database error is returned, with nothing
 * known. */
int upl_ledger_check(struct upl_ledger *l, struct lake_catalog *c, const char *identity,
                     uint64_t epoch, uint64_t seq, uint64_t now_us, bool *ret_committed);

/* Forgets cache entries unused for cache_idle (counted in whole seconds). Returns how many
 * remain. */
size_t upl_ledger_expire(struct upl_ledger *l, uint64_t now_us);
size_t upl_ledger_cached(const struct upl_ledger *l);
/* Bytes the cache holds in the heap (slot table, entries, their ranges), as the allocator
 * counts them: usable size plus a chunk header per block. */
size_t upl_ledger_memory(const struct upl_ledger *l);

/* One batch a commit claims: conflict is set when the transaction finds it committed. */
struct upl_claim {
        const char *identity;
        uint64_t epoch, seq;
        bool conflict;
        void *tag; /* the caller's */
};

/* A commit's ledger work: run upl_ledger_txn in the catalog transaction (ud = the commit). */
struct upl_ledger_commit {
        struct upl_ledger *l;
        struct upl_claim **claims; /* sorted by identity, epoch, seq */
        size_t n;
        struct upl_stream_state *streams; /* per distinct stream, the last attempt's states */
        size_t n_streams, cap_streams;
        uint64_t written_off; /* seqs given up by the bound, in the last attempt */
        int64_t now_ms;
        char error[256];
};

/* Takes the claims (borrowed, pointers sorted in place). */
int upl_ledger_commit_init(struct upl_ledger_commit *c, struct upl_ledger *l,
                           struct upl_claim **claims, size_t n, int64_t now_ms);
/* The transaction function: 0; -EALREADY when some claims were committed already (their
 * conflict flag set: roll back, commit without them); -EBADMSG for a ledger row that does not
 * parse; a database error. */
int upl_ledger_txn(void *ud, struct lake_catalog_txn *t);
/* After the transaction: committed = it committed (the new states go to the cache), else
 * what it read is learnt (committed seqs of others). */
void upl_ledger_commit_finish(struct upl_ledger_commit *c, bool committed, uint64_t now_us);
void upl_ledger_commit_clear(struct upl_ledger_commit *c);
