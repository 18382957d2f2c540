/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The footer reader's internals: decoding (parquet-footer.c) and checks
 * (parquet-read.c). */

#include "parquet-buf.h"
#include "parquet-thrift.h"
#include "parquet.h"

struct parquet_fctx {
        struct parquet_tdec d;
        struct parquet_arena *arena;
        const struct parquet_limits *lim;
        uint32_t n_column_orders;
        char ***paths;     /* per leaf: names from the root's child down */
        size_t *path_lens; /* per leaf */
};

/* Decodes the FileMetaData in x->d into f (allocating from x->arena). */
int parquet_footer_decode(struct parquet_fctx *x, struct parquet_footer *f);
