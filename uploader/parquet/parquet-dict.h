/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A string dictionary for one column chunk: entries kept in their PLAIN form
 * (u32 length + bytes), which is the dictionary page body, with an
 * open-addressing hash index over them.
 */

#include <stddef.h>
#include <stdint.h>

#include "parquet-buf.h"

struct parquet_dict {
        struct parquet_buf plain; /* the dictionary page body */
        uint32_t *offsets;        /* entry i's length prefix is at plain.data + offsets[i] */
        uint32_t n, cap;
        uint64_t *slots; /* hash high 32 bits << 32 | (entry + 1); 0: empty */
        uint32_t mask;
};

/* Index of the string, added if new: -ENOMEM, or -E2BIG past 2^31 bytes or entries. */
int parquet_dict_intern(struct parquet_dict *d, const char *p, uint32_t len, uint32_t *ret);
/* Entry i (i < n). */
static inline const char *parquet_dict_entry(const struct parquet_dict *d, uint32_t i,
                                             uint32_t *ret_len)
{
        const uint8_t *e = d->plain.data + d->offsets[i];

        *ret_len = parquet_get_le32(e);
        return (const char *)e + 4;
}
/* Empties it, keeping the memory. */
void parquet_dict_reset(struct parquet_dict *d);
void parquet_dict_done(struct parquet_dict *d);
/* Bytes held. */
size_t parquet_dict_memory(const struct parquet_dict *d);
