/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Thrift compact protocol (apache/thrift doc/specs/thrift-compact-protocol.md),
 * the subset Parquet uses: structs, unions, lists, i8/i16/i32/i64, bool,
 * double, binary. The encoder appends to a parquet_buf with a sticky error;
 * the decoder is bounded in depth, list sizes, string sizes and input, and
 * its first error names what, the Thrift field id and the byte offset.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parquet-buf.h"
#include "parquet.h"

enum {
        TT_STOP = 0,
        TT_TRUE = 1,
        TT_FALSE = 2,
        TT_I8 = 3,
        TT_I16 = 4,
        TT_I32 = 5,
        TT_I64 = 6,
        TT_DOUBLE = 7,
        TT_BINARY = 8,
        TT_LIST = 9,
        TT_SET = 10,
        TT_MAP = 11,
        TT_STRUCT = 12,
};

#define PARQUET_THRIFT_MAX_DEPTH 64

const char *parquet_thrift_type_name(unsigned type);

/* ---- encoder ---- */

struct parquet_tenc {
        struct parquet_buf *out;
        int err;
        unsigned depth;
        int16_t last[PARQUET_THRIFT_MAX_DEPTH];
};

void parquet_tenc_init(struct parquet_tenc *e, struct parquet_buf *out);
/* The first error (-ENOMEM, -EINVAL for misuse) or 0. */
int parquet_tenc_done(struct parquet_tenc *e);

/* Fields: ids must ascend within a struct (the short header form needs it). */
void parquet_tenc_field(struct parquet_tenc *e, unsigned type, int16_t id);
void parquet_tenc_i8(struct parquet_tenc *e, int16_t id, int8_t v);
void parquet_tenc_i16(struct parquet_tenc *e, int16_t id, int16_t v);
void parquet_tenc_i32(struct parquet_tenc *e, int16_t id, int32_t v);
void parquet_tenc_i64(struct parquet_tenc *e, int16_t id, int64_t v);
void parquet_tenc_double(struct parquet_tenc *e, int16_t id, double v);
void parquet_tenc_bool(struct parquet_tenc *e, int16_t id, bool v);
void parquet_tenc_binary(struct parquet_tenc *e, int16_t id, const void *p, size_t n);
void parquet_tenc_string(struct parquet_tenc *e, int16_t id, const char *s);
/* A struct-valued field (id > 0) or a list element / top-level struct (id 0). */
void parquet_tenc_struct_begin(struct parquet_tenc *e, int16_t id);
void parquet_tenc_struct_end(struct parquet_tenc *e);
/* A list field header; the n elements follow with the elem_* calls. */
void parquet_tenc_list(struct parquet_tenc *e, int16_t id, unsigned elem_type, uint32_t n);
void parquet_tenc_elem_i32(struct parquet_tenc *e, int32_t v);
void parquet_tenc_elem_i64(struct parquet_tenc *e, int64_t v);
void parquet_tenc_elem_bool(struct parquet_tenc *e, bool v);
void parquet_tenc_elem_binary(struct parquet_tenc *e, const void *p, size_t n);

/* ---- decoder ---- */

struct parquet_tdec {
        const uint8_t *p;
        size_t len, pos;
        uint32_t max_depth, max_list, max_string;
        unsigned depth;
        int16_t last[PARQUET_THRIFT_MAX_DEPTH];
        const char *name[PARQUET_THRIFT_MAX_DEPTH]; /* struct names, for errors */
        int16_t field;                              /* the field being read */
        int err;
        struct parquet_error *error; /* may be NULL */
};

/* Limits: max_depth is capped at PARQUET_THRIFT_MAX_DEPTH. */
void parquet_tdec_init(struct parquet_tdec *d, const uint8_t *p, size_t len,
                       const struct parquet_limits *lim, struct parquet_error *error);
/* Records the first error (what; the offset is d->pos) and returns err. */
int parquet_tdec_fail(struct parquet_tdec *d, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Enter a struct (name for errors); -E2BIG beyond max_depth. */
int parquet_tdec_struct_begin(struct parquet_tdec *d, const char *name);
void parquet_tdec_struct_end(struct parquet_tdec *d);
/* The next field header: *ret_type TT_STOP at the end of the struct. */
int parquet_tdec_field(struct parquet_tdec *d, unsigned *ret_type, int16_t *ret_id);

/* Values of the given wire type (a field's or a list's element type). */
int parquet_tdec_i8(struct parquet_tdec *d, unsigned type, int8_t *ret);
int parquet_tdec_i16(struct parquet_tdec *d, unsigned type, int16_t *ret);
int parquet_tdec_i32(struct parquet_tdec *d, unsigned type, int32_t *ret);
int parquet_tdec_i64(struct parquet_tdec *d, unsigned type, int64_t *ret);
int parquet_tdec_double(struct parquet_tdec *d, unsigned type, double *ret);
/* A bool field: the value is in its type. */
int parquet_tdec_bool(struct parquet_tdec *d, unsigned type, bool *ret);
/* A bool list element: one byte, 1 true, 0 or 2 false. */
int parquet_tdec_elem_bool(struct parquet_tdec *d, bool *ret);
/* Points into the input; at most max_string bytes. */
int parquet_tdec_binary(struct parquet_tdec *d, unsigned type, const uint8_t **ret,
                        size_t *ret_len);
/* A list (or set) header: at most max_list and remaining-input elements. */
int parquet_tdec_list(struct parquet_tdec *d, unsigned type, unsigned *ret_elem_type,
                      uint32_t *ret_n);
/* Skips one value of the given type, nested structures included. */
int parquet_tdec_skip(struct parquet_tdec *d, unsigned type);
/* Fails unless type is the expected one. */
int parquet_tdec_expect(struct parquet_tdec *d, unsigned type, unsigned want);
