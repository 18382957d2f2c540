/* SPDX-License-Identifier: Apache-2.0 */
/* The footer reader: trailer, decoding, then the checks that make the
 * result safe to use (schema tree, chunk/leaf agreement, offsets, counts). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "floe-alloc.h"
#include "parquet-footer.h"

void parquet_limits_init(struct parquet_limits *lim)
{
        *lim = (struct parquet_limits){
                .max_footer = UINT32_C(64) << 20,
                .max_depth = 32,
                .max_list = UINT32_C(1) << 20,
                .max_string = UINT32_C(16) << 20,
                .max_columns = 100000,
                .max_row_groups = UINT32_C(1) << 20,
        };
}

static int check_fail(struct parquet_error *err, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int check_fail(struct parquet_error *err, int r, const char *fmt, ...)
{
        va_list ap;

        if (err) {
                *err = (struct parquet_error){0};
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                va_end(ap);
        }
        return r;
}

int parquet_footer_length(const uint8_t *tail8, uint32_t *ret_len)
{
        if (memcmp(tail8 + 4, "PARE", 4) == 0)
                return -EOPNOTSUPP;
        if (memcmp(tail8 + 4, "PAR1", 4) != 0)
                return -EBADMSG;
        *ret_len = parquet_get_le32(tail8);
        return 0;
}

struct walk {
        int32_t left, def, rep;
};

/* The schema is a tree in depth-first order; its leaves are the columns. */
static int check_schema(struct parquet_fctx *x, struct parquet_footer *f, struct parquet_error *err)
{
        const struct parquet_schema_element *root;
        struct walk stack[PARQUET_THRIFT_MAX_DEPTH];
        const char *path[PARQUET_THRIFT_MAX_DEPTH];
        size_t idx = 1, n_leaves = 0;
        int depth = 0;

        if (f->n_schema == 0)
                return check_fail(err, -EBADMSG, "schema: no elements");
        root = &f->schema[0];
        if (root->num_children < 0 || root->type >= 0)
                return check_fail(err, -EBADMSG, "schema: the root is not a group");
        f->leaves = parquet_arena_calloc(x->arena, f->n_schema, sizeof(*f->leaves));
        f->max_def = parquet_arena_calloc(x->arena, f->n_schema, sizeof(*f->max_def));
        f->max_rep = parquet_arena_calloc(x->arena, f->n_schema, sizeof(*f->max_rep));
        x->paths = parquet_arena_calloc(x->arena, f->n_schema, sizeof(*x->paths));
        x->path_lens = parquet_arena_calloc(x->arena, f->n_schema, sizeof(*x->path_lens));
        if (!f->leaves || !f->max_def || !f->max_rep || !x->paths || !x->path_lens)
                return check_fail(err, -ENOMEM, "out of memory");
        stack[0] = (struct walk){.left = root->num_children};
        while (depth >= 0) {
                const struct parquet_schema_element *e;
                struct walk *top = &stack[depth];
                int32_t def, rep;

                if (top->left == 0) {
                        depth--;
                        continue;
                }
                top->left--;
                if (idx >= f->n_schema)
                        return check_fail(err, -EBADMSG,
                                          "schema: num_children asks for more than %zu elements",
                                          f->n_schema);
                e = &f->schema[idx];
                if (e->repetition < 0 || e->repetition > 2)
                        return check_fail(err, -EBADMSG,
                                          "schema element %zu (%s): repetition_type %" PRId32, idx,
                                          e->name, e->repetition);
                def = top->def + (e->repetition != 0);
                rep = top->rep + (e->repetition == 2);
                path[depth] = e->name;
                if (e->type < 0) {
                        if (e->num_children < 0)
                                return check_fail(err, -EBADMSG,
                                                  "schema element %zu (%s): neither type nor "
                                                  "children",
                                                  idx, e->name);
                        if ((unsigned)depth + 2 > x->lim->max_depth ||
                            depth + 2 >= PARQUET_THRIFT_MAX_DEPTH)
                                return check_fail(err, -E2BIG, "schema: nested too deep");
                        stack[++depth] = (struct walk){e->num_children, def, rep};
                } else {
                        char **p;

                        if (e->type > PARQUET_FIXED_LEN_BYTE_ARRAY || e->num_children > 0)
                                return check_fail(err, -EBADMSG,
                                                  "schema element %zu (%s): type %" PRId32
                                                  " with %" PRId32 " children",
                                                  idx, e->name, e->type, e->num_children);
                        p = parquet_arena_calloc(x->arena, (size_t)depth + 1, sizeof(*p));
                        if (!p)
                                return check_fail(err, -ENOMEM, "out of memory");
                        memcpy(p, path, ((size_t)depth + 1) * sizeof(*p));
                        x->paths[n_leaves] = p;
                        x->path_lens[n_leaves] = (size_t)depth + 1;
                        f->max_def[n_leaves] = def;
                        f->max_rep[n_leaves] = rep;
                        f->leaves[n_leaves++] = idx;
                }
                idx++;
        }
        if (idx != f->n_schema)
                return check_fail(err, -EBADMSG,
                                  "schema: %zu elements, the tree from the root has %zu",
                                  f->n_schema, idx);
        f->n_leaves = n_leaves;
        return 0;
}

static bool same_path(char *const *a, size_t alen, char *const *b, size_t blen)
{
        if (alen != blen)
                return false;
        for (size_t i = 0; i < alen; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return true;
}

static int check_chunk(struct parquet_fctx *x, const struct parquet_footer *f, size_t g, size_t i,
                       uint64_t data_end, struct parquet_error *err)
{
        const struct parquet_row_group *rg = &f->row_groups[g];
        struct parquet_chunk *c = &rg->columns[i];
        const struct parquet_schema_element *leaf = &f->schema[f->leaves[i]];
        uint64_t start;

        if (c->type != leaf->type)
                return check_fail(err, -EBADMSG,
                                  "row group %zu column %zu (%s): type %" PRId32
                                  ", schema says %" PRId32,
                                  g, i, leaf->name, c->type, leaf->type);
        if (!same_path(c->path, c->path_len, x->paths[i], x->path_lens[i]))
                return check_fail(err, -EBADMSG,
                                  "row group %zu column %zu (%s): path_in_schema does not match "
                                  "the schema",
                                  g, i, leaf->name);
        if (c->num_values < 0 || c->total_compressed_size < 0 || c->total_uncompressed_size < 0)
                return check_fail(err, -EBADMSG, "row group %zu column %zu (%s): negative count", g,
                                  i, leaf->name);
        if (f->max_rep[i] == 0 && c->num_values != rg->num_rows)
                return check_fail(err, -EBADMSG,
                                  "row group %zu column %zu (%s): %" PRId64 " values in %" PRId64
                                  " rows",
                                  g, i, leaf->name, c->num_values, rg->num_rows);
        if (c->has_stats &&
            ((c->stats.has_null_count &&
              (c->stats.null_count < 0 || c->stats.null_count > c->num_values)) ||
             (c->stats.has_nan_count &&
              (c->stats.nan_count < 0 ||
               c->stats.nan_count >
                       c->num_values - (c->stats.has_null_count ? c->stats.null_count : 0)))))
                return check_fail(err, -EBADMSG,
                                  "row group %zu column %zu (%s): null or NaN count out of range",
                                  g, i, leaf->name);
        /* some writers wrote 0 for "no dictionary page" */
        if (c->has_dictionary_page_offset && c->dictionary_page_offset == 0)
                c->has_dictionary_page_offset = false;
        if (c->file_path)
                return 0; /* data in another file: offsets are not ours to check */
        start = (uint64_t)c->data_page_offset;
        if (c->has_dictionary_page_offset && (uint64_t)c->dictionary_page_offset < start)
                start = (uint64_t)c->dictionary_page_offset;
        if (c->data_page_offset < 4 ||
            (c->has_dictionary_page_offset && c->dictionary_page_offset < 4) || start > data_end ||
            (uint64_t)c->total_compressed_size > data_end - start)
                return check_fail(err, -EBADMSG,
                                  "row group %zu column %zu (%s): pages at %" PRIu64 "+%" PRId64
                                  " outside the data (4..%" PRIu64 ")",
                                  g, i, leaf->name, start, c->total_compressed_size, data_end);
        return 0;
}

static int check_footer(struct parquet_fctx *x, struct parquet_footer *f, uint64_t data_end,
                        struct parquet_error *err)
{
        int64_t rows = 0;
        int r;

        r = check_schema(x, f, err);
        if (r < 0)
                return r;
        if (f->num_rows < 0)
                return check_fail(err, -EBADMSG, "num_rows %" PRId64, f->num_rows);
        if (f->column_orders && x->n_column_orders != f->n_leaves)
                return check_fail(err, -EBADMSG, "%" PRIu32 " column_orders for %zu columns",
                                  x->n_column_orders, f->n_leaves);
        for (size_t g = 0; g < f->n_row_groups; g++) {
                const struct parquet_row_group *rg = &f->row_groups[g];

                if (rg->n_columns != f->n_leaves)
                        return check_fail(err, -EBADMSG,
                                          "row group %zu: %zu columns, the schema has %zu", g,
                                          rg->n_columns, f->n_leaves);
                if (rg->num_rows < 0 || rg->total_byte_size < 0 || rows > INT64_MAX - rg->num_rows)
                        return check_fail(err, -EBADMSG, "row group %zu: num_rows %" PRId64, g,
                                          rg->num_rows);
                rows += rg->num_rows;
                for (size_t i = 0; i < rg->n_columns; i++) {
                        r = check_chunk(x, f, g, i, data_end, err);
                        if (r < 0)
                                return r;
                }
        }
        if (rows != f->num_rows)
                return check_fail(err, -EBADMSG,
                                  "num_rows %" PRId64 ", the row groups hold %" PRId64, f->num_rows,
                                  rows);
        return 0;
}

int parquet_footer_read(const uint8_t *tail, size_t len, uint64_t file_size,
                        const struct parquet_limits *lim, struct parquet_footer **ret,
                        struct parquet_error *err)
{
        struct parquet_limits defaults;
        struct parquet_fctx x = {0};
        struct parquet_footer *f;
        const uint8_t *meta;
        uint32_t mlen;
        int r;

        if (!lim) {
                parquet_limits_init(&defaults);
                lim = &defaults;
        }
        if (err)
                *err = (struct parquet_error){0};
        if (len < 8 || len > file_size)
                return check_fail(err, -EINVAL, "%zu bytes of a %" PRIu64 "-byte file", len,
                                  file_size);
        r = parquet_footer_length(tail + len - 8, &mlen);
        if (r == -EOPNOTSUPP)
                return check_fail(err, r, "encrypted footer (PARE) is not supported");
        if (r < 0)
                return check_fail(err, r, "no PAR1 at the end of the file");
        if (file_size < 12 || mlen > file_size - 12)
                return check_fail(err, -EBADMSG,
                                  "FileMetaData of %" PRIu32 " bytes in a %" PRIu64 "-byte file",
                                  mlen, file_size);
        if (mlen > lim->max_footer)
                return check_fail(err, -E2BIG,
                                  "FileMetaData of %" PRIu32 " bytes over limit %" PRIu32, mlen,
                                  lim->max_footer);
        if ((size_t)mlen + 8 > len)
                return check_fail(err, -ENODATA,
                                  "FileMetaData of %" PRIu32 " bytes: %zu bytes given", mlen, len);
        if (len == file_size && memcmp(tail, "PAR1", 4) != 0)
                return check_fail(err, -EBADMSG, "no PAR1 at the start of the file");
        meta = tail + len - 8 - mlen;

        x.arena = parquet_arena_new();
        if (!x.arena)
                return check_fail(err, -ENOMEM, "out of memory");
        f = parquet_arena_calloc(x.arena, 1, sizeof(*f));
        if (!f) {
                parquet_arena_free(x.arena);
                return check_fail(err, -ENOMEM, "out of memory");
        }
        f->arena = x.arena;
        x.lim = lim;
        parquet_tdec_init(&x.d, meta, mlen, lim, err);
        r = parquet_footer_decode(&x, f);
        if (r == 0)
                r = check_footer(&x, f, file_size - 8 - mlen, err);
        if (r < 0) {
                parquet_arena_free(x.arena);
                return r;
        }
        f->metadata_offset = file_size - 8 - mlen;
        f->metadata_len = mlen;
        *ret = f;
        return 0;
}

struct parquet_footer *parquet_footer_free(struct parquet_footer *f)
{
        if (f)
                parquet_arena_free(f->arena);
        return NULL;
}

const char *parquet_footer_get(const struct parquet_footer *f, const char *key)
{
        for (size_t i = f->n_kv; i > 0; i--)
                if (strcmp(f->kv[i - 1].key, key) == 0)
                        return f->kv[i - 1].value;
        return NULL;
}
