/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Parquet page reader compaction uses (ice_pq_read_chunk) on whole files from memory: every
 * flat leaf of every row group is decoded as its physical type's kind, and INT32/FLOAT ones
 * also as the promoted LONG/DOUBLE. The seeds are small files of ours, DuckDB's (v1 and v2
 * pages, delta encodings, Snappy, gzip, ZSTD) and Spark's. Whatever the bytes, a chunk decodes
 * into exactly num_rows values or fails with a reason; one injected allocation failure fails
 * cleanly.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "ice-pq.h"
#include "parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHUNKS_MAX 64 /* decoded per input: the seeds have fewer */

static void check(int cond)
{
        if (!cond)
                abort();
}

static int kind_of(int32_t phys, enum parquet_kind *ret)
{
        switch (phys) {
        case PARQUET_BOOLEAN:
                *ret = PARQUET_KIND_BOOLEAN;
                return 0;
        case PARQUET_INT32:
                *ret = PARQUET_KIND_INT;
                return 0;
        case PARQUET_INT64:
                *ret = PARQUET_KIND_LONG;
                return 0;
        case PARQUET_FLOAT:
                *ret = PARQUET_KIND_FLOAT;
                return 0;
        case PARQUET_DOUBLE:
                *ret = PARQUET_KIND_DOUBLE;
                return 0;
        case PARQUET_BYTE_ARRAY:
                *ret = PARQUET_KIND_STRING;
                return 0;
        default:
                return -EOPNOTSUPP;
        }
}

static void check_column(const struct ice_pq_column *c, size_t rows, enum parquet_kind kind)
{
        check(c->n == rows);
        check(c->data != NULL);
        check(c->heap_len <= c->heap_cap || c->heap == NULL);
        if (kind != PARQUET_KIND_STRING)
                return;
        const struct parquet_str *s = c->data;

        for (size_t i = 0; i < rows; i++) {
                if (c->valid && !c->valid[i])
                        continue;
                check(s[i].ptr != NULL);
                if (s[i].len > 0) /* inside the heap the reader owns */
                        check(c->heap && (const uint8_t *)s[i].ptr >= c->heap &&
                              (const uint8_t *)s[i].ptr + s[i].len <= c->heap + c->heap_len);
        }
}

static int decode(const struct ice_pq_src *src, const struct parquet_footer *f, size_t rg,
                  size_t leaf, enum parquet_kind kind, size_t *allocs)
{
        struct ice_pq_column col;
        char err[256];
        uint64_t before = floe_alloc_count();
        int r = ice_pq_read_chunk(src, f, rg, leaf, kind, &col, err, sizeof(err));

        *allocs = (size_t)(floe_alloc_count() - before);
        if (r < 0) {
                check(col.data == NULL && col.valid == NULL && col.heap == NULL);
                check(memchr(err, '\0', sizeof(err)) != NULL);
                check(r == -ENOMEM || err[0] != '\0');
                return r;
        }
        check_column(&col, (size_t)f->row_groups[rg].num_rows, kind);
        ice_pq_column_clear(&col);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct parquet_footer *f = NULL;
        struct ice_pq_src src = {.fd = -1, .size = size};
        size_t chunks = 0, allocs = 0;
        char err[256];
        int fd, r;

        if (size < 12 || size > (1u << 22))
                return 0;
        fd = memfd_create("fuzz-parquet-pages", MFD_CLOEXEC);
        check(fd >= 0);
        check(write(fd, data, size) == (ssize_t)size);
        src.fd = fd;
        floe_alloc_fail_at(0);
        r = ice_pq_footer(&src, &f, err, sizeof(err));
        if (r < 0) {
                check(f == NULL && err[0] != '\0');
                close(fd);
                return 0;
        }
        for (size_t g = 0; g < f->n_row_groups && chunks < CHUNKS_MAX; g++) {
                for (size_t i = 0; i < f->n_leaves && chunks < CHUNKS_MAX; i++) {
                        const struct parquet_schema_element *el = &f->schema[f->leaves[i]];
                        enum parquet_kind kind;

                        if (f->max_rep[i] > 0 || kind_of(el->type, &kind) < 0)
                                continue; /* nested or not a type floe reads */
                        chunks++;
                        r = decode(&src, f, g, i, kind, &allocs);
                        if (r == 0 && kind == PARQUET_KIND_INT)
                                (void)decode(&src, f, g, i, PARQUET_KIND_LONG, &allocs);
                        if (r == 0 && kind == PARQUET_KIND_FLOAT)
                                (void)decode(&src, f, g, i, PARQUET_KIND_DOUBLE, &allocs);
                        /* one allocation failure, chosen by the input, fails cleanly */
                        if (r == 0 && allocs > 0 && chunks == 1 + size % 4) {
                                struct ice_pq_column col;

                                floe_alloc_fail_at(1 + size % allocs);
                                r = ice_pq_read_chunk(&src, f, g, i, kind, &col, err, sizeof(err));
                                floe_alloc_fail_at(0);
                                check(r == -ENOMEM && col.data == NULL);
                        }
                }
        }
        parquet_footer_free(f);
        close(fd);
        return 0;
}
