/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the writer's files; not part of the API. */

#include <stdbool.h>
#include <stdint.h>

#include "parquet-buf.h"
#include "parquet-dict.h"
#include "parquet.h"

enum {
        PAGE_DATA = 0,
        PAGE_DICTIONARY = 2,
};

/* Bit of an encoding in the encodings masks. */
#define ENC_BIT(e) (UINT32_C(1) << (e))

/* One column chunk as the footer and the report need it. */
struct parquet_wchunk {
        uint64_t offset; /* first page, dictionary or data */
        uint64_t data_page_offset;
        bool has_dict;
        uint64_t total_compressed, total_uncompressed;
        uint64_t num_values, null_count, nan_count;
        uint32_t encodings;                    /* ENC_BIT per encoding used */
        uint32_t data_pages[_PARQUET_ENC_MAX]; /* data pages per encoding */
        bool has_min, has_max;
        struct parquet_bytes min, max; /* PLAIN form, owned */
        bool min_exact, max_exact;
};

struct parquet_wrowgroup {
        uint64_t offset, num_rows, total_byte_size, total_compressed;
        struct parquet_wchunk *chunks;
};

/* Running min/max of one column chunk, in the column's C type. */
struct parquet_minmax {
        bool has;
        int64_t imin, imax;            /* BOOLEAN, INT32, INT64 */
        double dmin, dmax;             /* FLOAT, DOUBLE */
        struct parquet_buf smin, smax; /* BYTE_ARRAY */
};

/* Strings seen at an address during one write call (callers often pass the
 * same interned strings): their dictionary index without hashing. */
#define PARQUET_STRCACHE 256

struct parquet_strcache {
        const char *ptr;
        uint32_t len, idx, gen;
};

struct parquet_colw {
        char *name;
        int32_t field_id;
        enum parquet_kind kind;
        bool required;
        enum parquet_physical type;
        unsigned width;                  /* bytes per PLAIN value, 0 for strings */
        enum parquet_encoding value_enc; /* of non-dictionary data pages */

        /* the open page */
        struct parquet_buf values; /* PLAIN values (booleans one byte each) or u32 indices */
        struct parquet_buf levels; /* definition levels, one byte each (optional columns) */
        uint32_t page_values, page_nonnull;
        uint64_t page_raw; /* PLAIN bytes of the page's strings while dictionary encoded */

        /* the open chunk */
        bool dict_mode;    /* pages are dictionary encoded */
        bool dict_used;    /* some page of the chunk was dictionary encoded */
        bool dict_checked; /* the first dictionary page passed the size check */
        struct parquet_dict dict;
        struct parquet_strcache *cache; /* PARQUET_STRCACHE entries */
        uint32_t cache_gen;             /* entries of other generations are stale */
        struct parquet_buf pages;       /* finished data pages with their headers */
        struct parquet_wchunk chunk;
        struct parquet_minmax mm;
};

/* parquet-stats.c */
void parquet_minmax_reset(struct parquet_minmax *m);
void parquet_minmax_done(struct parquet_minmax *m);
int parquet_minmax_str(struct parquet_minmax *m, const char *p, uint32_t len);
/* Sets chunk min/max (PLAIN, truncated strings) from m: -ENOMEM. */
int parquet_minmax_finish(const struct parquet_minmax *m, enum parquet_physical type,
                          uint32_t max_bytes, struct parquet_wchunk *c);
/* Orders two PLAIN values of a type (signed ints, floats by value, bytes unsigned). */
int parquet_value_cmp(int32_t type, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* Column report merging: the first chunk with bounds initialises, later ones widen.
 * Chunks without values (all null or NaN) add nothing; a chunk with values but
 * without bounds drops the file's bounds. */
int parquet_report_add(struct parquet_column_report *r, bool first, int32_t type,
                       const struct parquet_bytes *min, const struct parquet_bytes *max,
                       bool min_exact, bool max_exact);
void parquet_report_drop_bounds(struct parquet_column_report *r);
void parquet_wchunk_done(struct parquet_wchunk *c);

/* The writer's scratch buffers, shared by all columns' pages. */
enum {
        SCRATCH_BODY, /* a page body before compression */
        SCRATCH_COMP, /* a compressed page body */
        SCRATCH_HDR,  /* a page header */
        SCRATCH_SWAP, /* a page re-encoded after dictionary fallback */
        _SCRATCH_MAX,
};

struct parquet_writer {
        struct parquet_options opts;
        char *created_by;
        struct parquet_sink sink;
        struct parquet_colw *cols;
        size_t n_cols;
        char **kv; /* key, value, key, value... */
        size_t n_kv;
        struct ZSTD_CCtx_s *cctx;
        struct parquet_buf scratch[_SCRATCH_MAX];
        uint64_t offset;  /* bytes given to the sink */
        uint64_t rg_rows; /* rows in the open row group */
        uint64_t rows;    /* rows taken */
        struct parquet_wrowgroup *rgs;
        size_t n_rgs, cap_rgs;
        int failed; /* the error that broke the writer */
        bool closed;
        char error[256];
};

/* Largest string value accepted: page bodies stay below 2^31 bytes. */
#define PARQUET_MAX_VALUE (UINT32_C(1) << 30)
#define PARQUET_MAX_PAGE  (UINT32_C(256) << 20)
/* Rows per page when page_rows is 0 (num_values is an i32). */
#define PARQUET_MAX_PAGE_ROWS (UINT32_C(1) << 30)

/* parquet-page.c */
int parquet_col_append(struct parquet_writer *w, struct parquet_colw *c,
                       const struct parquet_values *v, size_t start, size_t n);
int parquet_col_flush_page(struct parquet_writer *w, struct parquet_colw *c);
/* Finishes the chunk: dictionary page and data pages to the sink; ret takes its metadata. */
int parquet_col_write_chunk(struct parquet_writer *w, struct parquet_colw *c,
                            struct parquet_wchunk *ret);
uint64_t parquet_col_buffered(const struct parquet_colw *c);
void parquet_col_done(struct parquet_colw *c);
/* Forgets the string cache: the caller's memory or the dictionary changed. */
void parquet_col_forget(struct parquet_colw *c);

/* parquet-writer.c */
int parquet_writer_emit(struct parquet_writer *w, const void *p, size_t n);
int parquet_writer_compress(struct parquet_writer *w, const uint8_t *body, size_t len,
                            const uint8_t **ret, size_t *ret_len);

/* parquet-meta.c: the FileMetaData of a finished file. */
int parquet_meta_encode(struct parquet_buf *out, const struct parquet_colw *cols, size_t n_cols,
                        const struct parquet_wrowgroup *rgs, size_t n_rgs, uint64_t num_rows,
                        const char *const *kv, size_t n_kv, const char *created_by, int codec);
/* A page header. */
int parquet_meta_page_header(struct parquet_buf *out, int type, uint32_t uncompressed,
                             uint32_t compressed, uint32_t num_values, int encoding);
