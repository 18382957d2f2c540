/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The committed seqs of one stream (identity, epoch), as the ledger keeps them
 * (docs/uploader.md, "Ledger"): a contiguous high-water mark (every seq in 1..hwm is
 * committed) plus the committed seqs above it as sorted, disjoint, non-adjacent ranges, each
 * starting above hwm + 1 (so a gap lies below every range). Committing 7 never makes an
 * uncommitted 6 look committed.
 *
 * Text form (the ledger's `above` column): "lo-hi" ranges joined by ',', a range of one seq
 * as "lo"; "" when there is none. Numbers are decimal without leading zeros.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UPL_SEQ_MAX ((uint64_t)INT64_MAX) /* seqs are 1..2^63-1 (an Iceberg long) */

struct upl_range {
        uint64_t lo, hi;
};

struct upl_seqset {
        uint64_t hwm;
        uint32_t n, cap;
        struct upl_range *r;
};

void upl_seqset_clear(struct upl_seqset *s);
bool upl_seqset_has(const struct upl_seqset *s, uint64_t seq);
/* Adds seq (1..UPL_SEQ_MAX; -EINVAL otherwise), merging ranges and moving hwm up over
 * ranges that become contiguous with it. Adding a seq already in is a no-op. */
int upl_seqset_add(struct upl_seqset *s, uint64_t seq);
/* While more than max ranges: the gap below the first range is given up (its seqs count as
 * committed) and hwm moves to the range's end. Returns how many seqs were given up. */
uint64_t upl_seqset_trim(struct upl_seqset *s, uint32_t max);
/* *dst becomes a copy of src (dst's memory reused). */
int upl_seqset_copy(struct upl_seqset *dst, const struct upl_seqset *src);

/* Strict: -EBADMSG for anything but the text form of a valid set above hwm (ranges in order,
 * disjoint, non-adjacent, lo < hi or a single "n", at most max_ranges of them); s is replaced
 * on success. */
int upl_seqset_parse(struct upl_seqset *s, uint64_t hwm, const char *text, uint32_t max_ranges);
/* The text form into a floe_malloc'd string. */
int upl_seqset_format(const struct upl_seqset *s, char **ret);
