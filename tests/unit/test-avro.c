/* SPDX-License-Identifier: Apache-2.0 */
/* Avro binary encoding, schemas, datum decoding and object container files. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "avro.h"
#include "floe-alloc.h"

static void check_long(int64_t v, const uint8_t *want, size_t n)
{
        struct avro_buf b = {0};
        size_t pos = 0;
        int64_t back;

        avro_put_long(&b, v);
        assert_int_equal(b.err, 0);
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, want, n);
        assert_int_equal(avro_get_long(b.data, b.len, &pos, &back), 0);
        assert_int_equal(pos, n);
        assert_true(back == v);
        /* every strict prefix is truncated */
        for (size_t k = 0; k < n; k++) {
                pos = 0;
                assert_int_equal(avro_get_long(b.data, k, &pos, &back), -EBADMSG);
        }
        avro_buf_release(&b);
}

static void test_zigzag(void **state)
{
        (void)state;
        check_long(0, (const uint8_t[]){0x00}, 1);
        check_long(-1, (const uint8_t[]){0x01}, 1);
        check_long(1, (const uint8_t[]){0x02}, 1);
        check_long(-64, (const uint8_t[]){0x7f}, 1);
        check_long(64, (const uint8_t[]){0x80, 0x01}, 2);
        check_long(-65, (const uint8_t[]){0x81, 0x01}, 2);
        check_long(INT32_MAX, (const uint8_t[]){0xfe, 0xff, 0xff, 0xff, 0x0f}, 5);
        check_long(INT32_MIN, (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x0f}, 5);
        check_long(INT64_MAX,
                   (const uint8_t[]){0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
                   10);
        check_long(INT64_MIN,
                   (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
                   10);
}

static void test_varint_rejects(void **state)
{
        /* eleven bytes; a tenth byte with bits beyond 64 */
        static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                         0x80, 0x80, 0x80, 0x80, 0x01};
        static const uint8_t big10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
        size_t pos = 0;
        int64_t v;
        int32_t i;

        (void)state;
        assert_int_equal(avro_get_long(eleven, sizeof(eleven), &pos, &v), -EBADMSG);
        pos = 0;
        assert_int_equal(avro_get_long(big10, sizeof(big10), &pos, &v), -EBADMSG);
        pos = 0;
        /* 2^31 does not fit an int */
        assert_int_equal(avro_get_int((const uint8_t[]){0x80, 0x80, 0x80, 0x80, 0x10}, 5, &pos, &i),
                         -EBADMSG);
        assert_int_equal(pos, 0);
}

static void test_primitives(void **state)
{
        struct avro_buf b = {0};
        const uint8_t *p;
        size_t pos = 0, len;

        (void)state;
        avro_put_double(&b, 1.0);
        avro_put_float(&b, -2.5f);
        avro_put_bool(&b, true);
        avro_put_string(&b, "iceberg");
        avro_put_bytes(&b, "", 0);
        assert_int_equal(b.err, 0);
        /* 1.0 = 0x3ff0000000000000 little-endian; -2.5f = 0xc0200000 */
        assert_memory_equal(b.data, ((const uint8_t[]){0, 0, 0, 0, 0, 0, 0xf0, 0x3f}), 8);
        assert_memory_equal(b.data + 8, ((const uint8_t[]){0, 0, 0x20, 0xc0}), 4);
        assert_int_equal(b.data[12], 1);
        assert_int_equal(b.data[13], 14); /* length 7, zigzag */
        assert_memory_equal(b.data + 14, "iceberg", 7);
        assert_int_equal(b.data[21], 0);
        pos = 13;
        assert_int_equal(avro_get_bytes(b.data, b.len, &pos, &p, &len), 0);
        assert_int_equal(len, 7);
        /* a length beyond the buffer */
        pos = 13;
        assert_int_equal(avro_get_bytes(b.data, 15, &pos, &p, &len), -EBADMSG);
        avro_buf_release(&b);
}

static const char REC_SCHEMA[] =
        "{\"type\":\"record\",\"name\":\"r\",\"namespace\":\"ns\",\"fields\":["
        "{\"name\":\"id\",\"type\":\"long\",\"field-id\":1},"
        "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\",\"element-id\":3},"
        "\"field-id\":2},"
        "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"},\"field-id\":4},"
        "{\"name\":\"opt\",\"type\":[\"null\",\"double\"],\"default\":null,\"field-id\":5},"
        "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"f4\",\"size\":4},\"field-id\":6},"
        "{\"name\":\"again\",\"type\":\"ns.f4\",\"field-id\":7},"
        "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},"
        "{\"name\":\"flag\",\"type\":\"boolean\",\"field-id\":8}]}";

static void test_schema(void **state)
{
        static const char *const bad[] = {
                "",
                "{}",
                "[]",
                "\"nope\"",
                "[\"null\",[\"int\"]]",
                "[\"int\",\"int\"]",
                "{\"type\":\"record\",\"name\":\"1x\",\"fields\":[]}",
                "{\"type\":\"record\",\"name\":\"a\",\"fields\":[{\"name\":\"x\",\"type\":\"b\"}]}",
                "{\"type\":\"record\",\"name\":\"a\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"},"
                "{\"name\":\"x\",\"type\":\"int\"}]}",
                "{\"type\":\"fixed\",\"name\":\"f\",\"size\":-1}",
                "{\"type\":\"enum\",\"name\":\"e\",\"symbols\":[]}",
                "{\"type\":\"record\",\"name\":\"a\",\"fields\":[{\"name\":\"x\",\"type\":\"int\","
                "\"field-id\":\"1\"}]}",
                "{\"type\":\"record\",\"name\":\"a\",\"fields\":[{\"name\":\"x\","
                "\"type\":{\"type\":\"fixed\",\"name\":\"a\",\"size\":1}}]}",
        };
        struct avro_schema_tree *t;
        const struct avro_schema *s;
        const struct avro_field *f;
        char deep[4096] = "";
        size_t idx;

        (void)state;
        assert_int_equal(avro_schema_parse(REC_SCHEMA, strlen(REC_SCHEMA), &t), 0);
        s = avro_schema_root(t);
        assert_int_equal(s->type, AVRO_RECORD);
        assert_string_equal(s->name, "ns.r");
        assert_int_equal(s->n_fields, 8);
        f = avro_schema_field_by_id(s, 2, &idx);
        assert_non_null(f);
        assert_int_equal(idx, 1);
        assert_true(f->type->has_element_id);
        assert_int_equal(f->type->element_id, 3);
        assert_null(avro_schema_field_by_id(s, 99, NULL));
        f = avro_schema_field_by_id(s, 7, NULL);
        assert_ptr_equal(f->type, avro_schema_field_by_id(s, 6, NULL)->type); /* a reference */
        assert_int_equal(avro_schema_nonnull(avro_schema_field_by_id(s, 5, NULL)->type)->type,
                         AVRO_DOUBLE);
        assert_false(s->fields[6].has_field_id);
        avro_schema_tree_free(t);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(avro_schema_parse(bad[i], strlen(bad[i]), &t), -EBADMSG);
        /* nesting beyond the depth limit */
        for (int i = 0; i < 100; i++)
                snprintf(deep + strlen(deep), sizeof(deep) - strlen(deep),
                         "{\"type\":\"array\",\"items\":");
        snprintf(deep + strlen(deep), sizeof(deep) - strlen(deep), "\"int\"");
        for (int i = 0; i < 100; i++)
                snprintf(deep + strlen(deep), sizeof(deep) - strlen(deep), "}");
        assert_int_equal(avro_schema_parse(deep, strlen(deep), &t), -EBADMSG);
}

/* One datum of REC_SCHEMA; the array in blocks as given. */
static void put_datum(struct avro_buf *b, int64_t id, int blocks, bool sized)
{
        avro_put_long(b, id);
        for (int k = 0; k < blocks; k++) {
                struct avro_buf items = {0};

                avro_put_string(&items, "a");
                avro_put_string(&items, "bc");
                if (sized) {
                        avro_put_long(b, -2);
                        avro_put_long(b, (int64_t)items.len);
                } else {
                        avro_put_long(b, 2);
                }
                avro_put_raw(b, items.data, items.len);
                avro_buf_release(&items);
        }
        avro_put_long(b, 0);
        if (blocks % 2) { /* map: one entry, or none */
                avro_put_long(b, 1);
                avro_put_string(b, "k");
                avro_put_long(b, -7);
        }
        avro_put_long(b, 0);
        avro_put_long(b, id % 2); /* opt: null for even ids */
        if (id % 2)
                avro_put_double(b, 0.5);
        avro_put_raw(b, "abcd", 4);
        avro_put_raw(b, "wxyz", 4);
        avro_put_long(b, 1); /* enum B */
        avro_put_bool(b, id > 0);
}

static void check_datum(const struct avro_value *v, int64_t id, int blocks)
{
        const struct avro_value *a = avro_value_field_by_id(v, 2),
                                *m = avro_value_field_by_id(v, 4);
        const struct avro_value *o = avro_value_field_by_id(v, 5);

        assert_true(avro_value_field_by_id(v, 1)->u.l == id);
        assert_int_equal(a->u.list.n, 2 * blocks);
        if (blocks) {
                assert_int_equal(a->u.list.items[1].u.bytes.len, 2);
                assert_memory_equal(a->u.list.items[1].u.bytes.ptr, "bc", 2);
        }
        assert_int_equal(m->u.list.n, blocks % 2 ? 2 : 0);
        if (blocks % 2) {
                assert_int_equal(m->u.list.items[0].schema->type, AVRO_STRING);
                assert_memory_equal(m->u.list.items[0].u.bytes.ptr, "k", 1);
                assert_int_equal(m->u.list.items[1].u.i, -7);
        }
        assert_int_equal(avro_value_is_null(o), id % 2 == 0);
        if (id % 2) {
                assert_int_equal(o->branch, 1);
                assert_true(o->u.d == 0.5);
        }
        assert_memory_equal(avro_value_field_by_id(v, 7)->u.bytes.ptr, "wxyz", 4);
        assert_int_equal(v->u.list.items[6].u.i, 1);
        assert_int_equal(avro_value_field_by_id(v, 8)->u.b, id > 0);
}

static void test_decode_blocks(void **state)
{
        struct avro_schema_tree *t;
        struct avro_decoder *d;
        const struct avro_value *v;

        (void)state;
        assert_int_equal(avro_schema_parse(REC_SCHEMA, strlen(REC_SCHEMA), &t), 0);
        assert_int_equal(avro_decoder_new(NULL, &d), 0);
        for (int blocks = 0; blocks < 4; blocks++)
                for (int sized = 0; sized < 2; sized++) {
                        struct avro_buf b = {0};
                        size_t pos = 0;

                        put_datum(&b, 1000 + blocks, blocks, sized);
                        assert_int_equal(b.err, 0);
                        assert_int_equal(
                                avro_decode(d, avro_schema_root(t), b.data, b.len, &pos, &v), 0);
                        assert_int_equal(pos, b.len);
                        check_datum(v, 1000 + blocks, blocks);
                        /* every truncation fails cleanly */
                        for (size_t k = 0; k < b.len; k++) {
                                pos = 0;
                                assert_int_equal(
                                        avro_decode(d, avro_schema_root(t), b.data, k, &pos, &v),
                                        -EBADMSG);
                        }
                        avro_buf_release(&b);
                }
        avro_decoder_free(d);
        avro_schema_tree_free(t);
}

static void test_decode_rejects(void **state)
{
        static const char arr[] = "{\"type\":\"array\",\"items\":\"long\"}";
        static const char nulls[] = "{\"type\":\"array\",\"items\":\"null\"}";
        struct avro_limits lim;
        struct avro_schema_tree *t, *tn;
        struct avro_decoder *d;
        const struct avro_value *v;
        struct avro_buf b = {0};
        size_t pos = 0;

        (void)state;
        assert_int_equal(avro_schema_parse(arr, strlen(arr), &t), 0);
        assert_int_equal(avro_schema_parse(nulls, strlen(nulls), &tn), 0);
        avro_limits_default(&lim);
        lim.max_datum_values = 1000;
        assert_int_equal(avro_decoder_new(&lim, &d), 0);
        /* a count far beyond the bytes */
        avro_put_long(&b, INT64_C(1) << 40);
        avro_put_long(&b, 1);
        assert_int_equal(avro_decode(d, avro_schema_root(t), b.data, b.len, &pos, &v), -EBADMSG);
        /* a block byte size that lies */
        b.len = 0;
        avro_put_long(&b, -1);
        avro_put_long(&b, 5);
        avro_put_long(&b, 3);
        avro_put_long(&b, 0);
        pos = 0;
        assert_int_equal(avro_decode(d, avro_schema_root(t), b.data, b.len, &pos, &v), -EBADMSG);
        /* INT64_MIN count */
        b.len = 0;
        avro_put_long(&b, INT64_MIN);
        pos = 0;
        assert_int_equal(avro_decode(d, avro_schema_root(t), b.data, b.len, &pos, &v), -EBADMSG);
        /* nulls take no bytes: the value budget stops a huge count */
        b.len = 0;
        avro_put_long(&b, INT64_C(1) << 50);
        avro_put_long(&b, 0);
        pos = 0;
        assert_int_equal(avro_decode(d, avro_schema_root(tn), b.data, b.len, &pos, &v), -E2BIG);
        b.len = 0;
        avro_put_long(&b, 500);
        avro_put_long(&b, 0);
        pos = 0;
        assert_int_equal(avro_decode(d, avro_schema_root(tn), b.data, b.len, &pos, &v), 0);
        assert_int_equal(v->u.list.n, 500);
        avro_buf_release(&b);
        avro_decoder_free(d);
        avro_schema_tree_free(t);
        avro_schema_tree_free(tn);
}

static const char LIST_SCHEMA[] =
        "{\"type\":\"record\",\"name\":\"x\",\"fields\":[{\"name\":\"n\",\"type\":\"long\"},"
        "{\"name\":\"s\",\"type\":\"string\"}]}";

static void write_file(enum avro_codec codec, size_t n, size_t per_block, uint8_t **ret,
                       size_t *ret_len)
{
        static const uint8_t sync[16] = "0123456789abcdef";
        struct avro_writer *w;

        assert_int_equal(avro_writer_new(LIST_SCHEMA, codec, &w), 0);
        assert_int_equal(avro_writer_set_meta(w, "format-version", "2"), 0);
        assert_int_equal(avro_writer_set_meta(w, "avro.codec", "x"), -EINVAL);
        avro_writer_set_sync(w, sync);
        avro_writer_set_block(w, per_block, 1u << 20);
        for (size_t i = 0; i < n; i++) {
                struct avro_buf *b = avro_writer_datum(w);
                char s[32];

                snprintf(s, sizeof(s), "row-%zu", i);
                avro_put_long(b, (int64_t)i * 1000003 - 7);
                avro_put_string(b, s);
                assert_int_equal(avro_writer_end_datum(w), 0);
        }
        if (n)
                assert_int_equal(avro_writer_set_meta(w, "late", "1"), -EINVAL);
        assert_int_equal(avro_writer_finish(w, ret, ret_len), 0);
        avro_writer_free(w);
}

static int count_all(const uint8_t *data, size_t len, size_t *ret_n)
{
        struct avro_reader *r;
        const struct avro_value *v;
        size_t n = 0;
        int e;

        e = avro_reader_open(data, len, NULL, &r, NULL, 0);
        if (e < 0)
                return e;
        while ((e = avro_reader_next(r, &v)) > 0)
                n++;
        avro_reader_free(r);
        *ret_n = n;
        return e;
}

static int read_all(const uint8_t *data, size_t len, size_t *ret_n)
{
        struct avro_reader *r;
        const struct avro_value *v;
        size_t n = 0;
        int e;

        e = avro_reader_open(data, len, NULL, &r, NULL, 0);
        if (e < 0)
                return e;
        while ((e = avro_reader_next(r, &v)) > 0) {
                char s[32];

                snprintf(s, sizeof(s), "row-%zu", n);
                assert_true(v->u.list.items[0].u.l == (int64_t)n * 1000003 - 7);
                assert_int_equal(v->u.list.items[1].u.bytes.len, strlen(s));
                assert_memory_equal(v->u.list.items[1].u.bytes.ptr, s, strlen(s));
                n++;
        }
        avro_reader_free(r);
        *ret_n = n;
        return e;
}

static void test_container_round_trip(void **state)
{
        (void)state;
        for (int codec = 0; codec < 2; codec++)
                for (size_t per = 1; per <= 7; per += 3) {
                        uint8_t *data;
                        size_t len, n;
                        struct avro_reader *r;

                        write_file((enum avro_codec)codec, 20, per, &data, &len);
                        assert_memory_equal(data, "Obj\x01", 4);
                        assert_int_equal(avro_reader_open(data, len, NULL, &r, NULL, 0), 0);
                        {
                                size_t vl;
                                const uint8_t *v = avro_reader_meta(r, "avro.codec", &vl);

                                assert_non_null(v);
                                assert_int_equal(vl, codec ? 7 : 4);
                                assert_memory_equal(v, codec ? "deflate" : "null", vl);
                                v = avro_reader_meta(r, "format-version", &vl);
                                assert_int_equal(vl, 1);
                                assert_int_equal(avro_reader_codec(r), codec);
                        }
                        avro_reader_free(r);
                        assert_int_equal(read_all(data, len, &n), 0);
                        assert_int_equal(n, 20);
                        /* no strict prefix reads back all rows without an error */
                        for (size_t k = 0; k < len; k++) {
                                size_t got = 0;
                                int e = read_all(data, k, &got);

                                assert_true(e < 0 || got < 20);
                        }
                        floe_free(data);
                }
}

static void test_container_empty(void **state)
{
        uint8_t *data;
        size_t len, n;

        (void)state;
        write_file(AVRO_CODEC_DEFLATE, 0, 10, &data, &len);
        assert_int_equal(read_all(data, len, &n), 0);
        assert_int_equal(n, 0);
        floe_free(data);
}

/* Offset of the first block: after magic, metadata map and sync marker. */
static size_t first_block(const uint8_t *data, size_t len)
{
        for (size_t i = 4; i + 16 <= len; i++)
                if (memcmp(data + i, "0123456789abcdef", 16) == 0)
                        return i + 16;
        fail();
        return 0;
}

static void test_container_malformed(void **state)
{
        uint8_t *data;
        size_t len, n, b;
        char err[200];
        struct avro_reader *r;

        (void)state;
        write_file(AVRO_CODEC_NULL, 5, 100, &data, &len);
        b = first_block(data, len);

        /* bad sync marker after the block */
        data[len - 1] ^= 1;
        assert_int_equal(read_all(data, len, &n), -EBADMSG);
        data[len - 1] ^= 1;
        /* block size larger than the file */
        data[b + 1] = 0x7e;
        assert_int_equal(read_all(data, len, &n), -EBADMSG);
        /* block count larger than its bytes */
        floe_free(data);
        write_file(AVRO_CODEC_NULL, 5, 100, &data, &len);
        data[b] = 0x7e; /* 63 objects */
        assert_int_equal(read_all(data, len, &n), -EBADMSG);
        data[b] = 0x08; /* 4 objects: bytes left over */
        assert_int_equal(read_all(data, len, &n), -EBADMSG);
        data[b] = 0x0c; /* 6 objects: runs out */
        assert_int_equal(read_all(data, len, &n), -EBADMSG);
        floe_free(data);

        /* not Avro; a codec we do not have */
        assert_int_equal(
                avro_reader_open((const uint8_t *)"Obj\x02", 4, NULL, &r, err, sizeof(err)),
                -EBADMSG);
        {
                struct avro_buf f = {0};

                avro_put_raw(&f, "Obj\x01", 4);
                avro_put_long(&f, 2);
                avro_put_string(&f, "avro.schema");
                avro_put_bytes(&f, "\"int\"", 5);
                avro_put_string(&f, "avro.codec");
                avro_put_bytes(&f, "snappy", 6);
                avro_put_long(&f, 0);
                avro_put_raw(&f, "0123456789abcdef", 16);
                assert_int_equal(avro_reader_open(f.data, f.len, NULL, &r, err, sizeof(err)),
                                 -EOPNOTSUPP);
                assert_non_null(strstr(err, "snappy"));
                /* a duplicate metadata key */
                f.len = 4;
                avro_put_long(&f, 2);
                avro_put_string(&f, "avro.schema");
                avro_put_bytes(&f, "\"int\"", 5);
                avro_put_string(&f, "avro.schema");
                avro_put_bytes(&f, "\"int\"", 5);
                avro_put_long(&f, 0);
                avro_put_raw(&f, "0123456789abcdef", 16);
                assert_int_equal(avro_reader_open(f.data, f.len, NULL, &r, err, sizeof(err)),
                                 -EBADMSG);
                /* a metadata count beyond the limit */
                f.len = 4;
                avro_put_long(&f, INT64_C(1) << 40);
                assert_int_equal(avro_reader_open(f.data, f.len, NULL, &r, err, sizeof(err)),
                                 -E2BIG);
                avro_buf_release(&f);
        }
}

/* A file with one hand-made block (for codecs we only read, and bombs). */
static void one_block_file(const char *codec, const void *block, size_t block_len, int64_t count,
                           struct avro_buf *f)
{
        f->len = 0;
        avro_put_raw(f, "Obj\x01", 4);
        avro_put_long(f, 2);
        avro_put_string(f, "avro.schema");
        avro_put_bytes(f, "\"long\"", 6);
        avro_put_string(f, "avro.codec");
        avro_put_bytes(f, codec, strlen(codec));
        avro_put_long(f, 0);
        avro_put_raw(f, "0123456789abcdef", 16);
        avro_put_long(f, count);
        avro_put_long(f, (int64_t)block_len);
        avro_put_raw(f, block, block_len);
        avro_put_raw(f, "0123456789abcdef", 16);
}

static void test_zstandard_and_bombs(void **state)
{
        struct avro_buf plain = {0}, f = {0};
        struct avro_limits lim;
        struct avro_reader *r;
        const struct avro_value *v;
        uint8_t z[4096], *big;
        size_t zl;
        z_stream zs = {0};

        (void)state;
        for (int i = 0; i < 100; i++)
                avro_put_long(&plain, i * 7);
        zl = ZSTD_compress(z, sizeof(z), plain.data, plain.len, 3);
        assert_false(ZSTD_isError(zl));
        one_block_file("zstandard", z, zl, 100, &f);
        assert_int_equal(avro_reader_open(f.data, f.len, NULL, &r, NULL, 0), 0);
        for (int i = 0; i < 100; i++) {
                assert_int_equal(avro_reader_next(r, &v), 1);
                assert_int_equal(v->u.l, i * 7);
        }
        assert_int_equal(avro_reader_next(r, &v), 0);
        avro_reader_free(r);
        /* truncated zstandard data */
        one_block_file("zstandard", z, zl - 3, 100, &f);
        assert_int_equal(avro_reader_open(f.data, f.len, NULL, &r, NULL, 0), 0);
        assert_int_equal(avro_reader_next(r, &v), -EBADMSG);
        avro_reader_free(r);

        /* a deflate block that inflates beyond the limit */
        big = calloc(1, 1u << 20);
        assert_non_null(big);
        assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
        zs.next_in = big;
        zs.avail_in = 1u << 20;
        zs.next_out = z;
        zs.avail_out = sizeof(z);
        assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
        one_block_file("deflate", z, sizeof(z) - zs.avail_out, 1, &f);
        deflateEnd(&zs);
        avro_limits_default(&lim);
        lim.max_block_bytes = 64 * 1024;
        assert_int_equal(avro_reader_open(f.data, f.len, &lim, &r, NULL, 0), 0);
        assert_int_equal(avro_reader_next(r, &v), -E2BIG);
        assert_non_null(strstr(avro_reader_error(r), "inflates"));
        avro_reader_free(r);
        /* within the default limit the zero bytes are one datum and a million left over */
        assert_int_equal(avro_reader_open(f.data, f.len, NULL, &r, NULL, 0), 0);
        assert_int_equal(avro_reader_next(r, &v), 1);
        assert_int_equal(avro_reader_next(r, &v), -EBADMSG);
        avro_reader_free(r);
        /* garbage deflate */
        one_block_file("deflate", "\xff\xff\xff\xff", 4, 1, &f);
        assert_int_equal(avro_reader_open(f.data, f.len, NULL, &r, NULL, 0), 0);
        assert_int_equal(avro_reader_next(r, &v), -EBADMSG);
        avro_reader_free(r);
        free(big);
        avro_buf_release(&plain);
        avro_buf_release(&f);
}

static void test_alloc_failures(void **state)
{
        (void)state;
        /* every allocation of a write and a read fails in turn; nothing leaks or crashes */
        for (uint64_t nth = 1; nth < 400; nth++) {
                struct avro_writer *w = NULL;
                uint8_t *data = NULL;
                size_t len, n;
                int r;

                floe_alloc_fail_at(nth);
                r = avro_writer_new(LIST_SCHEMA, AVRO_CODEC_DEFLATE, &w);
                if (r == 0)
                        r = avro_writer_set_meta(w, "k", "v");
                for (int i = 0; r == 0 && i < 30; i++) {
                        avro_put_long(avro_writer_datum(w), i);
                        avro_put_string(avro_writer_datum(w), "s");
                        r = avro_writer_end_datum(w);
                }
                if (r == 0)
                        r = avro_writer_finish(w, &data, &len);
                avro_writer_free(w);
                if (r == 0) {
                        r = count_all(data, len, &n);
                        floe_free(data);
                        if (r == 0)
                                assert_int_equal(n, 30);
                }
                if (!floe_alloc_failed()) {
                        assert_int_equal(r, 0);
                        break;
                }
                assert_true(r == 0 || r == -ENOMEM);
        }
        floe_alloc_fail_at(0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_zigzag),
                cmocka_unit_test(test_varint_rejects),
                cmocka_unit_test(test_primitives),
                cmocka_unit_test(test_schema),
                cmocka_unit_test(test_decode_blocks),
                cmocka_unit_test(test_decode_rejects),
                cmocka_unit_test(test_container_round_trip),
                cmocka_unit_test(test_container_empty),
                cmocka_unit_test(test_container_malformed),
                cmocka_unit_test(test_zstandard_and_bombs),
                cmocka_unit_test(test_alloc_failures),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
