/* SPDX-License-Identifier: Apache-2.0 */
/* FileMetaData decoding (parquet.thrift): every struct the reader keeps, with
 * type checks, duplicate and required field checks; unknown fields skipped. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "floe-alloc.h"
#include "parquet-footer.h"

#define SEEN(x, id)                                                                       \
        do {                                                                              \
                if ((id) > 0 && (id) < 64) {                                              \
                        if ((x) & (UINT64_C(1) << (id)))                                  \
                                return parquet_tdec_fail(d, -EBADMSG, "duplicate field"); \
                        (x) |= UINT64_C(1) << (id);                                       \
                }                                                                         \
        } while (0)

#define REQUIRE(seen, id, what)                                                                 \
        do {                                                                                    \
                if (!((seen) & (UINT64_C(1) << (id))))                                          \
                        return parquet_tdec_fail(d, -EBADMSG, "missing required field %d (%s)", \
                                                 (id), (what));                                 \
        } while (0)

static int nomem(struct parquet_fctx *x)
{
        return parquet_tdec_fail(&x->d, -ENOMEM, "out of memory");
}

static int read_bytes(struct parquet_fctx *x, unsigned t, struct parquet_bytes *ret)
{
        const uint8_t *p;
        size_t n;

        if (parquet_tdec_binary(&x->d, t, &p, &n) < 0)
                return x->d.err;
        ret->ptr = parquet_arena_alloc(x->arena, n);
        if (!ret->ptr)
                return nomem(x);
        if (n > 0)
                memcpy(ret->ptr, p, n);
        ret->len = n;
        return 0;
}

static int read_string(struct parquet_fctx *x, unsigned t, char **ret)
{
        const uint8_t *p;
        size_t n;

        if (parquet_tdec_binary(&x->d, t, &p, &n) < 0)
                return x->d.err;
        *ret = parquet_arena_strndup(x->arena, p, n);
        return *ret ? 0 : nomem(x);
}

/* The fields of a struct, one call of fn per field; unknown ones are skipped by fn. */
typedef int (*field_fn)(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen);

static int read_struct(struct parquet_fctx *x, const char *name, void *obj, field_fn fn,
                       uint64_t *ret_seen)
{
        struct parquet_tdec *d = &x->d;
        uint64_t seen = 0;
        unsigned t;
        int16_t id;

        if (parquet_tdec_struct_begin(d, name) < 0)
                return d->err;
        for (;;) {
                if (parquet_tdec_field(d, &t, &id) < 0)
                        return d->err;
                if (t == TT_STOP)
                        break;
                if (fn(x, obj, t, id, &seen) < 0)
                        return d->err;
        }
        *ret_seen = seen;
        return 0;
}

/* Leaves the struct entered by read_struct (after the caller's checks). */
static void end_struct(struct parquet_fctx *x)
{
        parquet_tdec_struct_end(&x->d);
}

static int stats_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct parquet_stats *s = obj;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                s->has_max = true;
                return read_bytes(x, t, &s->max);
        case 2:
                s->has_min = true;
                return read_bytes(x, t, &s->min);
        case 3:
                s->has_null_count = true;
                return parquet_tdec_i64(d, t, &s->null_count);
        case 4:
                s->has_distinct_count = true;
                return parquet_tdec_i64(d, t, &s->distinct_count);
        case 5:
                s->has_max_value = true;
                return read_bytes(x, t, &s->max_value);
        case 6:
                s->has_min_value = true;
                return read_bytes(x, t, &s->min_value);
        case 7:
                s->has_max_exact = true;
                return parquet_tdec_bool(d, t, &s->max_exact);
        case 8:
                s->has_min_exact = true;
                return parquet_tdec_bool(d, t, &s->min_exact);
        case 9:
                s->has_nan_count = true;
                return parquet_tdec_i64(d, t, &s->nan_count);
        default:
                return parquet_tdec_skip(d, t);
        }
}

static int read_stats(struct parquet_fctx *x, unsigned t, struct parquet_stats *s)
{
        uint64_t seen = 0;

        if (parquet_tdec_expect(&x->d, t, TT_STRUCT) < 0 ||
            read_struct(x, "Statistics", s, stats_field, &seen) < 0)
                return x->d.err;
        end_struct(x);
        return 0;
}

/* A union: exactly one member; returns its id and leaves the reader inside the member's
 * value for fn (NULL: the member is skipped). */
static int read_union(struct parquet_fctx *x, unsigned t, const char *name, int32_t *ret_id,
                      field_fn fn, void *obj)
{
        struct parquet_tdec *d = &x->d;
        unsigned ft;
        int16_t id;
        int members = 0;

        if (parquet_tdec_expect(d, t, TT_STRUCT) < 0 || parquet_tdec_struct_begin(d, name) < 0)
                return d->err;
        for (;;) {
                if (parquet_tdec_field(d, &ft, &id) < 0)
                        return d->err;
                if (ft == TT_STOP)
                        break;
                if (++members > 1)
                        return parquet_tdec_fail(d, -EBADMSG, "union with several members");
                *ret_id = id;
                if (fn) {
                        uint64_t seen = 0;

                        if (fn(x, obj, ft, id, &seen) < 0)
                                return d->err;
                } else if (parquet_tdec_skip(d, ft) < 0) {
                        return d->err;
                }
        }
        parquet_tdec_struct_end(d);
        return 0;
}

static int time_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct parquet_logical *l = obj;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                return parquet_tdec_bool(d, t, &l->utc);
        case 2:
                return read_union(x, t, "TimeUnit", &l->unit, NULL, NULL);
        default:
                return parquet_tdec_skip(d, t);
        }
}

static int int_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct parquet_logical *l = obj;
        int8_t bw;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                if (parquet_tdec_i8(d, t, &bw) < 0)
                        return d->err;
                l->bit_width = bw;
                return 0;
        case 2:
                return parquet_tdec_bool(d, t, &l->is_signed);
        default:
                return parquet_tdec_skip(d, t);
        }
}

static int decimal_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct parquet_logical *l = obj;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                return parquet_tdec_i32(d, t, &l->scale);
        case 2:
                return parquet_tdec_i32(d, t, &l->precision);
        default:
                return parquet_tdec_skip(d, t);
        }
}

/* The member of LogicalType: the types with parameters are read, others skipped. */
static int logical_member(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        uint64_t inner = 0;
        field_fn fn;

        (void)seen;
        fn = id == 7 || id == 8 ? time_field
             : id == 10         ? int_field
             : id == 5          ? decimal_field
                                : NULL;
        if (!fn)
                return parquet_tdec_skip(d, t);
        if (parquet_tdec_expect(d, t, TT_STRUCT) < 0 ||
            read_struct(x, "LogicalType member", obj, fn, &inner) < 0)
                return d->err;
        end_struct(x);
        return 0;
}

static int element_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct parquet_schema_element *e = obj;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                return parquet_tdec_i32(d, t, &e->type);
        case 2:
                return parquet_tdec_i32(d, t, &e->type_length);
        case 3:
                return parquet_tdec_i32(d, t, &e->repetition);
        case 4:
                return read_string(x, t, &e->name);
        case 5:
                return parquet_tdec_i32(d, t, &e->num_children);
        case 6:
                return parquet_tdec_i32(d, t, &e->converted_type);
        case 7:
                return parquet_tdec_i32(d, t, &e->scale);
        case 8:
                return parquet_tdec_i32(d, t, &e->precision);
        case 9:
                e->has_field_id = true;
                return parquet_tdec_i32(d, t, &e->field_id);
        case 10:
                return read_union(x, t, "LogicalType", &e->logical.kind, logical_member,
                                  &e->logical);
        default:
                return parquet_tdec_skip(d, t);
        }
}

/* Reads a list header of struct elements and allocates n objects of size each. */
static int read_list(struct parquet_fctx *x, unsigned t, unsigned want, size_t size, uint32_t limit,
                     const char *what, void **ret, uint32_t *ret_n)
{
        struct parquet_tdec *d = &x->d;
        unsigned et;
        uint32_t n;

        if (parquet_tdec_list(d, t, &et, &n) < 0)
                return d->err;
        if (et != want && !(want == TT_TRUE && et == TT_FALSE))
                return parquet_tdec_fail(d, -EBADMSG, "%s: list of %s, expected %s", what,
                                         parquet_thrift_type_name(et),
                                         parquet_thrift_type_name(want));
        if (n > limit)
                return parquet_tdec_fail(d, -E2BIG, "%s: %" PRIu32 " over limit %" PRIu32, what, n,
                                         limit);
        *ret = parquet_arena_calloc(x->arena, n > 0 ? n : 1, size);
        if (!*ret)
                return nomem(x);
        *ret_n = n;
        return 0;
}

static int read_schema(struct parquet_fctx *x, unsigned t, struct parquet_footer *f)
{
        struct parquet_tdec *d = &x->d;
        void *p;
        uint32_t n;

        if (read_list(x, t, TT_STRUCT, sizeof(*f->schema), x->lim->max_columns, "schema", &p, &n) <
            0)
                return d->err;
        f->schema = p;
        f->n_schema = n;
        for (uint32_t i = 0; i < n; i++) {
                struct parquet_schema_element *e = &f->schema[i];
                uint64_t seen = 0;

                *e = (struct parquet_schema_element){
                        .type = -1,
                        .type_length = -1,
                        .repetition = -1,
                        .num_children = -1,
                        .converted_type = -1,
                        .scale = -1,
                        .precision = -1,
                };
                if (read_struct(x, "SchemaElement", e, element_field, &seen) < 0)
                        return d->err;
                REQUIRE(seen, 4, "name");
                end_struct(x);
        }
        return 0;
}

static int path_list(struct parquet_fctx *x, unsigned t, struct parquet_chunk *c)
{
        struct parquet_tdec *d = &x->d;
        void *p;
        uint32_t n;

        if (read_list(x, t, TT_BINARY, sizeof(char *), x->lim->max_depth, "path_in_schema", &p,
                      &n) < 0)
                return d->err;
        c->path = p;
        c->path_len = n;
        for (uint32_t i = 0; i < n; i++)
                if (read_string(x, TT_BINARY, &c->path[i]) < 0)
                        return d->err;
        return 0;
}

static int encodings_list(struct parquet_fctx *x, unsigned t, struct parquet_chunk *c)
{
        struct parquet_tdec *d = &x->d;
        unsigned et;
        uint32_t n;

        if (parquet_tdec_list(d, t, &et, &n) < 0 || parquet_tdec_expect(d, et, TT_I32) < 0)
                return d->err;
        for (uint32_t i = 0; i < n; i++) {
                int32_t e;

                if (parquet_tdec_i32(d, et, &e) < 0)
                        return d->err;
                if (e >= 0 && e < _PARQUET_ENC_MAX)
                        c->encodings |= UINT32_C(1) << e;
        }
        return 0;
}

struct page_stats {
        int32_t page_type, encoding, count;
};

static int page_stats_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id,
                            uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct page_stats *s = obj;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                return parquet_tdec_i32(d, t, &s->page_type);
        case 2:
                return parquet_tdec_i32(d, t, &s->encoding);
        case 3:
                return parquet_tdec_i32(d, t, &s->count);
        default:
                return parquet_tdec_skip(d, t);
        }
}

static int encoding_stats(struct parquet_fctx *x, unsigned t, struct parquet_chunk *c)
{
        struct parquet_tdec *d = &x->d;
        unsigned et;
        uint32_t n;

        if (parquet_tdec_list(d, t, &et, &n) < 0 || parquet_tdec_expect(d, et, TT_STRUCT) < 0)
                return d->err;
        c->has_encoding_stats = true;
        for (uint32_t i = 0; i < n; i++) {
                struct page_stats s = {0};
                uint64_t seen = 0;

                if (read_struct(x, "PageEncodingStats", &s, page_stats_field, &seen) < 0)
                        return d->err;
                REQUIRE(seen, 1, "page_type");
                REQUIRE(seen, 2, "encoding");
                REQUIRE(seen, 3, "count");
                end_struct(x);
                if (s.count < 0)
                        return parquet_tdec_fail(d, -EBADMSG, "negative page count");
                if (s.page_type != 0 && s.page_type != 3) /* DATA_PAGE, DATA_PAGE_V2 */
                        continue;
                if (s.encoding == PARQUET_ENC_PLAIN_DICTIONARY ||
                    s.encoding == PARQUET_ENC_RLE_DICTIONARY)
                        c->dict_data_pages += (uint32_t)s.count;
                else
                        c->other_data_pages += (uint32_t)s.count;
        }
        return 0;
}

static int meta_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct parquet_chunk *c = obj;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                return parquet_tdec_i32(d, t, &c->type);
        case 2:
                return encodings_list(x, t, c);
        case 3:
                return path_list(x, t, c);
        case 4:
                return parquet_tdec_i32(d, t, &c->codec);
        case 5:
                return parquet_tdec_i64(d, t, &c->num_values);
        case 6:
                return parquet_tdec_i64(d, t, &c->total_uncompressed_size);
        case 7:
                return parquet_tdec_i64(d, t, &c->total_compressed_size);
        case 9:
                return parquet_tdec_i64(d, t, &c->data_page_offset);
        case 11:
                c->has_dictionary_page_offset = true;
                return parquet_tdec_i64(d, t, &c->dictionary_page_offset);
        case 12:
                c->has_stats = true;
                return read_stats(x, t, &c->stats);
        case 13:
                return encoding_stats(x, t, c);
        default:
                return parquet_tdec_skip(d, t);
        }
}

static int chunk_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct parquet_chunk *c = obj;
        uint64_t mseen = 0;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                return read_string(x, t, &c->file_path);
        case 2:
                return parquet_tdec_i64(d, t, &c->file_offset);
        case 3:
                if (parquet_tdec_expect(d, t, TT_STRUCT) < 0 ||
                    read_struct(x, "ColumnMetaData", c, meta_field, &mseen) < 0)
                        return d->err;
                REQUIRE(mseen, 1, "type");
                REQUIRE(mseen, 2, "encodings");
                REQUIRE(mseen, 3, "path_in_schema");
                REQUIRE(mseen, 4, "codec");
                REQUIRE(mseen, 5, "num_values");
                REQUIRE(mseen, 6, "total_uncompressed_size");
                REQUIRE(mseen, 7, "total_compressed_size");
                REQUIRE(mseen, 9, "data_page_offset");
                end_struct(x);
                return 0;
        default:
                return parquet_tdec_skip(d, t);
        }
}

static int row_group_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id,
                           uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct parquet_row_group *g = obj;
        void *p;
        uint32_t n;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                if (read_list(x, t, TT_STRUCT, sizeof(*g->columns), x->lim->max_columns, "columns",
                              &p, &n) < 0)
                        return d->err;
                g->columns = p;
                g->n_columns = n;
                for (uint32_t i = 0; i < n; i++) {
                        uint64_t cseen = 0;

                        if (read_struct(x, "ColumnChunk", &g->columns[i], chunk_field, &cseen) < 0)
                                return d->err;
                        REQUIRE(cseen, 3, "meta_data (encrypted columns are not supported)");
                        end_struct(x);
                }
                return 0;
        case 2:
                return parquet_tdec_i64(d, t, &g->total_byte_size);
        case 3:
                return parquet_tdec_i64(d, t, &g->num_rows);
        case 5:
                g->has_file_offset = true;
                return parquet_tdec_i64(d, t, &g->file_offset);
        case 6:
                g->has_total_compressed_size = true;
                return parquet_tdec_i64(d, t, &g->total_compressed_size);
        case 7:
                g->has_ordinal = true;
                return parquet_tdec_i16(d, t, &g->ordinal);
        default:
                return parquet_tdec_skip(d, t);
        }
}

static int read_row_groups(struct parquet_fctx *x, unsigned t, struct parquet_footer *f)
{
        struct parquet_tdec *d = &x->d;
        void *p;
        uint32_t n;

        if (read_list(x, t, TT_STRUCT, sizeof(*f->row_groups), x->lim->max_row_groups, "row_groups",
                      &p, &n) < 0)
                return d->err;
        f->row_groups = p;
        f->n_row_groups = n;
        for (uint32_t i = 0; i < n; i++) {
                uint64_t seen = 0;

                if (read_struct(x, "RowGroup", &f->row_groups[i], row_group_field, &seen) < 0)
                        return d->err;
                REQUIRE(seen, 1, "columns");
                REQUIRE(seen, 2, "total_byte_size");
                REQUIRE(seen, 3, "num_rows");
                end_struct(x);
        }
        return 0;
}

static int kv_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct parquet_kv *kv = obj;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                return read_string(x, t, &kv->key);
        case 2:
                return read_string(x, t, &kv->value);
        default:
                return parquet_tdec_skip(d, t);
        }
}

static int read_kv(struct parquet_fctx *x, unsigned t, struct parquet_footer *f)
{
        struct parquet_tdec *d = &x->d;
        void *p;
        uint32_t n;

        if (read_list(x, t, TT_STRUCT, sizeof(*f->kv), x->lim->max_list, "key_value_metadata", &p,
                      &n) < 0)
                return d->err;
        f->kv = p;
        f->n_kv = n;
        for (uint32_t i = 0; i < n; i++) {
                uint64_t seen = 0;

                if (read_struct(x, "KeyValue", &f->kv[i], kv_field, &seen) < 0)
                        return d->err;
                REQUIRE(seen, 1, "key");
                end_struct(x);
        }
        return 0;
}

static int read_column_orders(struct parquet_fctx *x, unsigned t, struct parquet_footer *f)
{
        struct parquet_tdec *d = &x->d;
        void *p;
        uint32_t n;

        if (read_list(x, t, TT_STRUCT, sizeof(*f->column_orders), x->lim->max_columns,
                      "column_orders", &p, &n) < 0)
                return d->err;
        f->column_orders = p;
        x->n_column_orders = n;
        for (uint32_t i = 0; i < n; i++)
                if (read_union(x, TT_STRUCT, "ColumnOrder", &f->column_orders[i], NULL, NULL) < 0)
                        return d->err;
        return 0;
}

static int file_field(struct parquet_fctx *x, void *obj, unsigned t, int16_t id, uint64_t *seen)
{
        struct parquet_tdec *d = &x->d;
        struct parquet_footer *f = obj;

        SEEN(*seen, id);
        switch (id) {
        case 1:
                return parquet_tdec_i32(d, t, &f->version);
        case 2:
                return read_schema(x, t, f);
        case 3:
                return parquet_tdec_i64(d, t, &f->num_rows);
        case 4:
                if (!(*seen & (UINT64_C(1) << 2)))
                        return parquet_tdec_fail(d, -EBADMSG, "row_groups before schema");
                return read_row_groups(x, t, f);
        case 5:
                return read_kv(x, t, f);
        case 6:
                return read_string(x, t, &f->created_by);
        case 7:
                return read_column_orders(x, t, f);
        default:
                return parquet_tdec_skip(d, t);
        }
}

int parquet_footer_decode(struct parquet_fctx *x, struct parquet_footer *f)
{
        struct parquet_tdec *d = &x->d;
        uint64_t seen = 0;

        if (read_struct(x, "FileMetaData", f, file_field, &seen) < 0)
                return d->err;
        REQUIRE(seen, 1, "version");
        REQUIRE(seen, 2, "schema");
        REQUIRE(seen, 3, "num_rows");
        REQUIRE(seen, 4, "row_groups");
        end_struct(x);
        if (d->pos != d->len)
                return parquet_tdec_fail(d, -EBADMSG, "%zu bytes after FileMetaData",
                                         d->len - d->pos);
        return 0;
}
