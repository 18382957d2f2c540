/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Parquet Encodings.md: the RLE/bit-packed hybrid (levels, dictionary
 * indices), bit packing, DELTA_BINARY_PACKED and BYTE_STREAM_SPLIT, with
 * decoders for tests and readers.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parquet-buf.h"

/* Bits needed for values up to max (0 for 0). */
static inline unsigned parquet_bit_width(uint64_t max)
{
        return max == 0 ? 0 : 64 - (unsigned)__builtin_clzll(max);
}

/* Bytes the hybrid encoding of n values of width bw takes at most. */
size_t parquet_rle_max_size(size_t n, unsigned bw);

/*
 * Appends the hybrid runs of n values (no length prefix). bw 0..32; values
 * are masked to bw bits. Runs of 8 or more equal values become RLE runs,
 * the rest bit-packed runs of at most 63 groups of 8 (zero padded).
 */
int parquet_rle_encode(struct parquet_buf *out, const uint32_t *values, size_t n, unsigned bw);
/* The same for one byte per value (definition levels). */
int parquet_rle_encode_u8(struct parquet_buf *out, const uint8_t *values, size_t n, unsigned bw);

/*
 * Decodes exactly n values from p[0..len). -EBADMSG when the input ends
 * early, a run is empty or an RLE value does not fit bw bits; *ret_used gets
 * the bytes consumed (may be NULL).
 */
int parquet_rle_decode(const uint8_t *p, size_t len, unsigned bw, uint32_t *out, size_t n,
                       size_t *ret_used);

/* Packs n values (a multiple of 8) of width bw (0..64) LSB first: n * bw / 8 bytes. */
void parquet_bitpack64(const uint64_t *values, size_t n, unsigned bw, uint8_t *out);
void parquet_bitunpack64(const uint8_t *in, size_t n, unsigned bw, uint64_t *values);

/*
 * DELTA_BINARY_PACKED of n INT32 (width 4) or INT64 (width 8) values: blocks
 * of 128 values in 4 miniblocks of 32, as parquet-java writes them.
 */
int parquet_delta_encode(struct parquet_buf *out, const void *values, size_t n, unsigned width);
/* Decodes exactly n values; *ret_used gets the bytes consumed. */
int parquet_delta_decode(const uint8_t *p, size_t len, unsigned width, void *values, size_t n,
                         size_t *ret_used);

/* BYTE_STREAM_SPLIT of n values of width bytes: byte k of value i goes to out[k * n + i]. */
int parquet_split_encode(struct parquet_buf *out, const void *values, size_t n, unsigned width);
void parquet_split_decode(const uint8_t *in, size_t n, unsigned width, void *values);
