/* SPDX-License-Identifier: Apache-2.0 */
/* Schema-driven decoding of one Avro datum into values, bounded in depth, value count and
 * memory; every length and count is checked against the bytes that remain. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "avro.h"
#include "floe-alloc.h"

#define CHUNK_SIZE (64 * 1024)

struct chunk {
        struct chunk *next;
        size_t used, size;
        max_align_t data[];
};

struct avro_decoder {
        struct avro_limits lim;
        struct chunk *chunks; /* the first one is kept across datums */
        size_t values;        /* decoded for the current datum */
        char error[160];
};

void avro_limits_default(struct avro_limits *l)
{
        *l = (struct avro_limits){
                .max_block_bytes = 64u << 20,
                .max_datum_values = 1u << 20,
                .max_meta_entries = 1024,
        };
}

static void release(struct avro_decoder *d, bool all)
{
        struct chunk *c = d->chunks, *keep = NULL;

        while (c) {
                struct chunk *next = c->next;

                if (!all && !next && c->size == CHUNK_SIZE) {
                        keep = c; /* the oldest, standard-sized chunk */
                        keep->used = 0;
                } else {
                        floe_free(c);
                }
                c = next;
        }
        d->chunks = keep;
}

int avro_decoder_new(const struct avro_limits *lim, struct avro_decoder **ret)
{
        struct avro_decoder *d = floe_calloc(1, sizeof(*d));

        if (!d)
                return -ENOMEM;
        if (lim)
                d->lim = *lim;
        else
                avro_limits_default(&d->lim);
        *ret = d;
        return 0;
}

struct avro_decoder *avro_decoder_free(struct avro_decoder *d)
{
        if (!d)
                return NULL;
        release(d, true);
        floe_free(d);
        return NULL;
}

const char *avro_decoder_error(const struct avro_decoder *d)
{
        return d->error;
}

static int fail(struct avro_decoder *d, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(d->error, sizeof(d->error), fmt, ap);
        va_end(ap);
        return err;
}

/* n values from the arena; counts against the datum's value budget. */
static int alloc_values(struct avro_decoder *d, size_t n, struct avro_value **ret)
{
        size_t bytes, align = sizeof(max_align_t);
        struct chunk *c = d->chunks;

        if (n > d->lim.max_datum_values - d->values)
                return fail(d, -E2BIG, "datum has more than %zu values", d->lim.max_datum_values);
        d->values += n;
        bytes = (n * sizeof(struct avro_value) + align - 1) / align * align;
        if (!c || c->size - c->used < bytes) {
                size_t size = bytes > CHUNK_SIZE ? bytes : CHUNK_SIZE;

                c = floe_malloc(sizeof(*c) + size);
                if (!c)
                        return -ENOMEM;
                c->size = size;
                c->used = 0;
                c->next = d->chunks;
                d->chunks = c;
        }
        *ret = (struct avro_value *)((uint8_t *)c->data + c->used);
        c->used += bytes;
        memset(*ret, 0, n * sizeof(struct avro_value));
        return 0;
}

struct cursor {
        const uint8_t *p;
        size_t len, pos;
};

static int decode(struct avro_decoder *d, const struct avro_schema *s, struct cursor *c,
                  unsigned depth, struct avro_value *v);

static int get_long(struct avro_decoder *d, struct cursor *c, int64_t *ret)
{
        if (avro_get_long(c->p, c->len, &c->pos, ret) < 0)
                return fail(d, -EBADMSG, "bad varint at offset %zu", c->pos);
        return 0;
}

static int get_raw(struct avro_decoder *d, struct cursor *c, size_t n, const uint8_t **ret)
{
        if (n > c->len - c->pos)
                return fail(d, -EBADMSG, "%zu bytes needed at offset %zu, %zu left", n, c->pos,
                            c->len - c->pos);
        *ret = c->p + c->pos;
        c->pos += n;
        return 0;
}

static const struct avro_schema MAP_KEY = {.type = AVRO_STRING};

/* The items of an array or map: blocks of (count, [byte size if count < 0], items), ending
 * with a zero count. Items are gathered in a growing arena array. */
static int decode_blocks(struct avro_decoder *d, const struct avro_schema *s, struct cursor *c,
                         unsigned depth, struct avro_value *v)
{
        bool map = s->type == AVRO_MAP;
        struct avro_value *items = NULL;
        size_t n = 0, cap = 0, per = map ? 2 : 1;
        int r;

        for (;;) {
                struct avro_value *more;
                int64_t count, size = -1;
                size_t start;

                r = get_long(d, c, &count);
                if (r < 0)
                        return r;
                if (count == 0)
                        break;
                if (count < 0) {
                        if (count == INT64_MIN)
                                return fail(d, -EBADMSG, "bad block count");
                        count = -count;
                        r = get_long(d, c, &size);
                        if (r < 0)
                                return r;
                        if (size < 0 || (uint64_t)size > c->len - c->pos)
                                return fail(d, -EBADMSG, "block size %lld beyond the data",
                                            (long long)size);
                }
                /* each item takes at least a byte unless its type can be empty; then the value
                 * budget bounds the count */
                if ((map || !s->items->may_be_empty) && (uint64_t)count > c->len - c->pos)
                        return fail(d, -EBADMSG, "%lld items in %zu bytes", (long long)count,
                                    c->len - c->pos);
                if ((uint64_t)count > d->lim.max_datum_values / per)
                        return fail(d, -E2BIG, "datum has more than %zu values",
                                    d->lim.max_datum_values);
                if (n + (size_t)count > cap) {
                        /* grow geometrically: writers may use many small blocks */
                        cap = n + (size_t)count > 2 * cap ? n + (size_t)count : 2 * cap;
                        r = alloc_values(d, cap * per, &more);
                        if (r < 0)
                                return r;
                        if (n)
                                memcpy(more, items, n * per * sizeof(*items));
                        items = more;
                }
                start = c->pos;
                for (size_t i = n; i < n + (size_t)count; i++) {
                        if (map) {
                                struct avro_value *k = &items[2 * i];

                                if (avro_get_bytes(c->p, c->len, &c->pos, &k->u.bytes.ptr,
                                                   &k->u.bytes.len) < 0)
                                        return fail(d, -EBADMSG, "bad map key at offset %zu",
                                                    c->pos);
                                k->schema = &MAP_KEY;
                                r = decode(d, s->items, c, depth + 1, &items[2 * i + 1]);
                        } else {
                                r = decode(d, s->items, c, depth + 1, &items[i]);
                        }
                        if (r < 0)
                                return r;
                }
                if (size >= 0 && c->pos - start != (size_t)size)
                        return fail(d, -EBADMSG, "block of %lld bytes holds %zu", (long long)size,
                                    c->pos - start);
                n += (size_t)count;
        }
        v->u.list.items = items;
        v->u.list.n = n * per;
        return 0;
}

static int decode(struct avro_decoder *d, const struct avro_schema *s, struct cursor *c,
                  unsigned depth, struct avro_value *v)
{
        const uint8_t *p = NULL;
        int64_t l;
        int r;

        if (depth > AVRO_SCHEMA_MAX_DEPTH)
                return fail(d, -EBADMSG, "datum nested deeper than %d", AVRO_SCHEMA_MAX_DEPTH);
        v->schema = s;
        switch (s->type) {
        case AVRO_NULL:
                return 0;
        case AVRO_BOOLEAN:
                r = get_raw(d, c, 1, &p);
                if (r < 0)
                        return r;
                if (*p > 1)
                        return fail(d, -EBADMSG, "boolean byte %u", *p);
                v->u.b = *p;
                return 0;
        case AVRO_INT:
        case AVRO_ENUM:
                r = get_long(d, c, &l);
                if (r < 0)
                        return r;
                if (l < INT32_MIN || l > INT32_MAX)
                        return fail(d, -EBADMSG, "int out of range");
                if (s->type == AVRO_ENUM && (l < 0 || (uint64_t)l >= s->n_symbols))
                        return fail(d, -EBADMSG, "enum index %lld of %zu", (long long)l,
                                    s->n_symbols);
                v->u.i = (int32_t)l;
                return 0;
        case AVRO_LONG:
                return get_long(d, c, &v->u.l);
        case AVRO_FLOAT: {
                uint32_t u = 0;

                r = get_raw(d, c, 4, &p);
                if (r < 0)
                        return r;
                for (int i = 3; i >= 0; i--)
                        u = u << 8 | p[i];
                memcpy(&v->u.f, &u, sizeof(u));
                return 0;
        }
        case AVRO_DOUBLE: {
                uint64_t u = 0;

                r = get_raw(d, c, 8, &p);
                if (r < 0)
                        return r;
                for (int i = 7; i >= 0; i--)
                        u = u << 8 | p[i];
                memcpy(&v->u.d, &u, sizeof(u));
                return 0;
        }
        case AVRO_BYTES:
        case AVRO_STRING:
                if (avro_get_bytes(c->p, c->len, &c->pos, &v->u.bytes.ptr, &v->u.bytes.len) < 0)
                        return fail(d, -EBADMSG, "bad length at offset %zu", c->pos);
                return 0;
        case AVRO_FIXED:
                v->u.bytes.len = s->size;
                return get_raw(d, c, s->size, &v->u.bytes.ptr);
        case AVRO_RECORD:
                if (s->n_fields == 0)
                        return 0;
                r = alloc_values(d, s->n_fields, &v->u.list.items);
                if (r < 0)
                        return r;
                v->u.list.n = s->n_fields;
                for (size_t i = 0; i < s->n_fields; i++) {
                        r = decode(d, s->fields[i].type, c, depth + 1, &v->u.list.items[i]);
                        if (r < 0)
                                return r;
                }
                return 0;
        case AVRO_ARRAY:
        case AVRO_MAP:
                return decode_blocks(d, s, c, depth, v);
        case AVRO_UNION:
                r = get_long(d, c, &l);
                if (r < 0)
                        return r;
                if (l < 0 || (uint64_t)l >= s->n_branches)
                        return fail(d, -EBADMSG, "union branch %lld of %zu", (long long)l,
                                    s->n_branches);
                r = decode(d, s->branches[l], c, depth + 1, v);
                if (r < 0)
                        return r;
                v->branch = (uint32_t)l;
                return 0;
        }
        return fail(d, -EBADMSG, "unknown schema type");
}

int avro_decode(struct avro_decoder *d, const struct avro_schema *s, const uint8_t *p, size_t len,
                size_t *pos, const struct avro_value **ret)
{
        struct cursor c = {.p = p, .len = len, .pos = *pos};
        struct avro_value *v;
        int r;

        release(d, false);
        d->values = 0;
        d->error[0] = '\0';
        r = alloc_values(d, 1, &v);
        if (r < 0)
                return r;
        r = decode(d, s, &c, 0, v);
        if (r < 0)
                return r;
        *pos = c.pos;
        *ret = v;
        return 0;
}

const struct avro_value *avro_value_field_by_id(const struct avro_value *record, int32_t id)
{
        size_t i;

        if (!record || record->schema->type != AVRO_RECORD)
                return NULL;
        if (!avro_schema_field_by_id(record->schema, id, &i))
                return NULL;
        return &record->u.list.items[i];
}
