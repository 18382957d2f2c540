/* SPDX-License-Identifier: Apache-2.0 */
/* CBOR payloads: a pull reader over libcbor's streaming decoder (no
 * allocation), feeding the object shapes shared with JSON. */
#include <cbor.h>
#include <errno.h>
#include <inttypes.h>

#include "floe-batch.h"
#include "parse-internal.h"

#define TAG_DATETIME      0
#define TAG_EPOCH         1
#define TAG_SELF_DESCRIBE 55799

enum ct {
        CT_OTHER, /* no callback fired: an unassigned simple value */
        CT_UINT,
        CT_NEGINT,
        CT_BSTR,
        CT_TSTR,
        CT_ARRAY,
        CT_MAP,
        CT_TAG,
        CT_FLOAT,
        CT_BOOL,
        CT_NULL,
        CT_UNDEF,
        CT_BSTR_INDEF,
        CT_TSTR_INDEF,
        CT_ARRAY_INDEF,
        CT_MAP_INDEF,
        CT_BREAK,
};

static const char *const ct_names[] = {
        [CT_OTHER] = "simple value",
        [CT_UINT] = "unsigned integer",
        [CT_NEGINT] = "negative integer",
        [CT_BSTR] = "byte string",
        [CT_TSTR] = "text string",
        [CT_ARRAY] = "array",
        [CT_MAP] = "map",
        [CT_TAG] = "tag",
        [CT_FLOAT] = "float",
        [CT_BOOL] = "boolean",
        [CT_NULL] = "null",
        [CT_UNDEF] = "undefined",
        [CT_BSTR_INDEF] = "byte string",
        [CT_TSTR_INDEF] = "text string",
        [CT_ARRAY_INDEF] = "array",
        [CT_MAP_INDEF] = "map",
        [CT_BREAK] = "break",
};

struct citem {
        enum ct t;
        uint64_t u; /* integer, tag, count */
        double d;
        bool b;
        const uint8_t *s;
        size_t len;
};

struct crd {
        struct agent_parser *p;
        const uint8_t *buf;
        size_t len;
        size_t pos;
};

#define CB_UINT(name, type, field_t)                \
        static void cb_##name(void *ctx, field_t v) \
        {                                           \
                struct citem *it = ctx;             \
                it->t = type;                       \
                it->u = v;                          \
        }
CB_UINT(u8, CT_UINT, uint8_t)
CB_UINT(u16, CT_UINT, uint16_t)
CB_UINT(u32, CT_UINT, uint32_t)
CB_UINT(u64, CT_UINT, uint64_t)
CB_UINT(n8, CT_NEGINT, uint8_t)
CB_UINT(n16, CT_NEGINT, uint16_t)
CB_UINT(n32, CT_NEGINT, uint32_t)
CB_UINT(n64, CT_NEGINT, uint64_t)
CB_UINT(tag, CT_TAG, uint64_t)
CB_UINT(array, CT_ARRAY, size_t)
CB_UINT(map, CT_MAP, size_t)

#define CB_MARK(name, type)              \
        static void cb_##name(void *ctx) \
        {                                \
                struct citem *it = ctx;  \
                it->t = type;            \
        }
CB_MARK(bstr_indef, CT_BSTR_INDEF)
CB_MARK(tstr_indef, CT_TSTR_INDEF)
CB_MARK(array_indef, CT_ARRAY_INDEF)
CB_MARK(map_indef, CT_MAP_INDEF)
CB_MARK(brk, CT_BREAK)
CB_MARK(null, CT_NULL)
CB_MARK(undef, CT_UNDEF)

static void cb_bstr(void *ctx, cbor_data s, size_t len)
{
        *(struct citem *)ctx = (struct citem){.t = CT_BSTR, .s = s, .len = len};
}

static void cb_tstr(void *ctx, cbor_data s, size_t len)
{
        *(struct citem *)ctx = (struct citem){.t = CT_TSTR, .s = s, .len = len};
}

static void cb_bool(void *ctx, bool v)
{
        *(struct citem *)ctx = (struct citem){.t = CT_BOOL, .b = v};
}

static void cb_float(void *ctx, float v)
{
        *(struct citem *)ctx = (struct citem){.t = CT_FLOAT, .d = v};
}

static void cb_double(void *ctx, double v)
{
        *(struct citem *)ctx = (struct citem){.t = CT_FLOAT, .d = v};
}

static const struct cbor_callbacks callbacks = {
        .uint8 = cb_u8,
        .uint16 = cb_u16,
        .uint32 = cb_u32,
        .uint64 = cb_u64,
        .negint8 = cb_n8,
        .negint16 = cb_n16,
        .negint32 = cb_n32,
        .negint64 = cb_n64,
        .byte_string_start = cb_bstr_indef,
        .byte_string = cb_bstr,
        .string = cb_tstr,
        .string_start = cb_tstr_indef,
        .indef_array_start = cb_array_indef,
        .array_start = cb_array,
        .indef_map_start = cb_map_indef,
        .map_start = cb_map,
        .tag = cb_tag,
        .float2 = cb_float,
        .float4 = cb_float,
        .float8 = cb_double,
        .undefined = cb_undef,
        .null = cb_null,
        .boolean = cb_bool,
        .indef_break = cb_brk,
};

static int next(struct crd *r, struct citem *it)
{
        struct cbor_decoder_result res;

        r->p->loc.byte = r->pos;
        if (r->pos >= r->len)
                return agent_parse_fail(r->p, AGENT_PARSE_BAD_CBOR, "input ends early");
        *it = (struct citem){.t = CT_OTHER};
        res = cbor_stream_decode(r->buf + r->pos, r->len - r->pos, &callbacks, it);
        if (res.status != CBOR_DECODER_FINISHED || res.read == 0)
                return agent_parse_fail(r->p, AGENT_PARSE_BAD_CBOR, "%s",
                                        res.status == CBOR_DECODER_NEDATA ? "truncated item"
                                                                          : "malformed item");
        if (it->t == CT_OTHER)
                return agent_parse_fail(r->p, AGENT_PARSE_BAD_CBOR, "unassigned simple value");
        r->pos += res.read;
        return 0;
}

/* A definite count must fit in the bytes left: each item takes at least one. */
static int check_count(struct crd *r, const struct citem *it)
{
        uint64_t per = it->t == CT_MAP ? 2 : 1;

        if (it->u > (r->len - r->pos) / per)
                return agent_parse_fail(r->p, AGENT_PARSE_BAD_CBOR,
                                        "%" PRIu64 " items claimed with %zu bytes left", it->u,
                                        r->len - r->pos);
        return 0;
}

static int too_deep(struct crd *r)
{
        return agent_parse_fail(r->p, AGENT_PARSE_TOO_DEEP, "nested deeper than %d",
                                AGENT_PARSE_MAX_DEPTH);
}

/* Items that contain items: each counts as a level of nesting. */
static bool nests(enum ct t)
{
        return t == CT_ARRAY || t == CT_MAP || t == CT_TAG || t == CT_ARRAY_INDEF ||
               t == CT_MAP_INDEF || t == CT_BSTR_INDEF || t == CT_TSTR_INDEF;
}

static int skip(struct crd *r, const struct citem *it, unsigned depth);

static int skip_next(struct crd *r, unsigned depth, bool *ret_break)
{
        struct citem it;
        int ret = next(r, &it);

        if (ret < 0)
                return ret;
        if (it.t == CT_BREAK) {
                if (!ret_break)
                        return agent_parse_fail(r->p, AGENT_PARSE_BAD_CBOR, "unexpected break");
                *ret_break = true;
                return 0;
        }
        return skip(r, &it, depth);
}

/* Consumes the contents of an item whose head has been read. */
static int skip(struct crd *r, const struct citem *it, unsigned depth)
{
        bool brk = false;
        int ret;

        if (nests(it->t) && depth > AGENT_PARSE_MAX_DEPTH)
                return too_deep(r);
        switch (it->t) {
        case CT_ARRAY:
        case CT_MAP:
                ret = check_count(r, it);
                for (uint64_t i = 0; ret == 0 && i < it->u * (it->t == CT_MAP ? 2 : 1); i++)
                        ret = skip_next(r, depth + 1, NULL);
                return ret;
        case CT_ARRAY_INDEF:
        case CT_MAP_INDEF:
                while (!brk) {
                        ret = skip_next(r, depth + 1, &brk);
                        if (ret < 0)
                                return ret;
                }
                return 0;
        case CT_BSTR_INDEF:
        case CT_TSTR_INDEF:
                for (;;) {
                        struct citem c;

                        ret = next(r, &c);
                        if (ret < 0 || c.t == CT_BREAK)
                                return ret;
                        if (c.t != (it->t == CT_BSTR_INDEF ? CT_BSTR : CT_TSTR))
                                return agent_parse_fail(r->p, AGENT_PARSE_BAD_CBOR,
                                                        "%s in an indefinite-length string",
                                                        ct_names[c.t]);
                }
        case CT_TAG:
                return skip_next(r, depth + 1, NULL);
        default:
                return 0;
        }
}

static int text(struct crd *r, const struct citem *it, const char **ret_s, size_t *ret_len)
{
        char *start = r->p->str + r->p->str_used;
        size_t total = 0;

        if (it->t == CT_TSTR) {
                *ret_s = (const char *)it->s;
                *ret_len = it->len;
        } else {
                /* chunks are copied side by side into the string scratch */
                for (;;) {
                        struct citem c;
                        char *d;
                        int ret = next(r, &c);

                        if (ret < 0)
                                return ret;
                        if (c.t == CT_BREAK)
                                break;
                        if (c.t != CT_TSTR)
                                return agent_parse_fail(r->p, AGENT_PARSE_BAD_CBOR,
                                                        "%s in an indefinite-length string",
                                                        ct_names[c.t]);
                        if (!floe_utf8_valid((const char *)c.s, c.len))
                                return agent_parse_fail(r->p, AGENT_PARSE_BAD_UTF8,
                                                        "text string is not UTF-8");
                        d = agent_parse_str_alloc(r->p, c.len);
                        if (!d)
                                return -EMSGSIZE;
                        memcpy(d, c.s, c.len);
                        total += c.len;
                }
                *ret_s = start;
                *ret_len = total;
        }
        if (!floe_utf8_valid(*ret_s, *ret_len))
                return agent_parse_fail(r->p, AGENT_PARSE_BAD_UTF8, "text string is not UTF-8");
        return 0;
}

static int read_value(struct crd *r, struct agent_pv *v, unsigned depth);

static int read_tagged(struct crd *r, uint64_t tag, struct agent_pv *v, unsigned depth)
{
        int ret;

        if (depth > AGENT_PARSE_MAX_DEPTH)
                return too_deep(r);
        ret = read_value(r, v, depth + 1);
        if (ret < 0)
                return ret;
        if (v->tag != AGENT_PV_UNTAGGED) {
                *v = (struct agent_pv){.kind = AGENT_PV_OTHER, .type = "tag on a tag"};
        } else if (tag == TAG_DATETIME && v->kind == AGENT_PV_STRING) {
                v->tag = AGENT_PV_TAG_DATETIME;
        } else if (tag == TAG_EPOCH && v->kind == AGENT_PV_NUMBER) {
                v->tag = AGENT_PV_TAG_EPOCH;
        } else {
                *v = (struct agent_pv){
                        .kind = AGENT_PV_OTHER,
                        .type = tag == TAG_DATETIME ? "tag 0 on a non-string"
                                : tag == TAG_EPOCH  ? "tag 1 on a non-number"
                                                    : "tagged item",
                };
        }
        return 0;
}

static int read_value(struct crd *r, struct agent_pv *v, unsigned depth)
{
        struct citem it;
        int ret = next(r, &it);

        if (ret < 0)
                return ret;
        *v = (struct agent_pv){.kind = AGENT_PV_NUMBER};
        switch (it.t) {
        case CT_UINT:
                v->d = (double)it.u;
                if (it.u <= INT64_MAX) {
                        v->is_int = true;
                        v->i = (int64_t)it.u;
                }
                return 0;
        case CT_NEGINT:
                if (it.u <= INT64_MAX) {
                        v->is_int = true;
                        v->i = -1 - (int64_t)it.u;
                        v->d = (double)v->i;
                } else {
                        v->d = -1.0 - (double)it.u;
                }
                return 0;
        case CT_FLOAT:
                v->d = it.d;
                return 0;
        case CT_BOOL:
                v->kind = AGENT_PV_BOOL;
                v->b = it.b;
                return 0;
        case CT_NULL:
                v->kind = AGENT_PV_NULL;
                return 0;
        case CT_TSTR:
        case CT_TSTR_INDEF:
                v->kind = AGENT_PV_STRING;
                return text(r, &it, &v->s, &v->len);
        case CT_TAG:
                return read_tagged(r, it.u, v, depth);
        case CT_BREAK:
                return agent_parse_fail(r->p, AGENT_PARSE_BAD_CBOR, "unexpected break");
        default:
                v->kind = AGENT_PV_OTHER;
                v->type = ct_names[it.t];
                return skip(r, &it, depth);
        }
}

static int read_map(struct crd *r, const struct citem *m, unsigned depth)
{
        struct agent_parser *p = r->p;
        bool indef = m->t == CT_MAP_INDEF;
        uint32_t n = 0;
        int ret;

        if (!indef) {
                ret = check_count(r, m);
                if (ret < 0)
                        return ret;
                if (m->u > p->ent_cap)
                        return agent_parse_fail(p, AGENT_PARSE_TOO_MANY_READINGS,
                                                "map of %" PRIu64 " members, limit %" PRIu32, m->u,
                                                p->ent_cap);
        }
        agent_parse_dup_reset(p);
        for (uint64_t i = 0; indef || i < m->u; i++) {
                struct agent_pentry *e;
                struct citem k;
                size_t off = r->pos;

                ret = next(r, &k);
                if (ret < 0)
                        return ret;
                if (indef && k.t == CT_BREAK)
                        break;
                if (n >= p->ent_cap)
                        return agent_parse_fail(p, AGENT_PARSE_TOO_MANY_READINGS,
                                                "map of more than %" PRIu32 " members", p->ent_cap);
                if (k.t != CT_TSTR && k.t != CT_TSTR_INDEF)
                        return agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE,
                                                "map key is a %s, not a text string",
                                                ct_names[k.t]);
                e = &p->ent[n++];
                e->off = off;
                e->clean = false;
                ret = text(r, &k, &e->key, &e->key_len);
                if (ret < 0)
                        return ret;
                p->loc.key = e->key;
                p->loc.key_len = e->key_len;
                p->loc.byte = off;
                if (agent_parse_dup_add(p, e->key, e->key_len))
                        return agent_parse_fail(p, AGENT_PARSE_DUPLICATE_KEY, "duplicate key");
                ret = read_value(r, &e->v, depth + 1);
                if (ret < 0)
                        return ret;
                p->loc.key = NULL;
        }
        ret = agent_parse_object(p, p->ent, n);
        p->loc.byte = SIZE_MAX;
        return ret;
}

int agent_parse_cbor(struct agent_parser *p, const uint8_t *data, size_t len)
{
        struct crd r = {.p = p, .buf = data, .len = len};
        struct citem it;
        int ret;

        ret = next(&r, &it);
        if (ret == 0 && it.t == CT_TAG && it.u == TAG_SELF_DESCRIBE)
                ret = next(&r, &it);
        if (ret < 0)
                return ret;
        if (it.t == CT_MAP || it.t == CT_MAP_INDEF) {
                ret = read_map(&r, &it, 1);
        } else if (it.t == CT_ARRAY || it.t == CT_ARRAY_INDEF) {
                bool indef = it.t == CT_ARRAY_INDEF;

                ret = indef ? 0 : check_count(&r, &it);
                for (uint64_t i = 0; ret == 0 && (indef || i < it.u); i++) {
                        struct citem m;

                        ret = next(&r, &m);
                        if (ret < 0 || (indef && m.t == CT_BREAK))
                                break;
                        if (i >= p->o.max_readings)
                                return agent_parse_fail(p, AGENT_PARSE_TOO_MANY_READINGS,
                                                        "array of more than %" PRIu32 " maps",
                                                        p->o.max_readings);
                        p->loc.object = (uint32_t)(i + 1);
                        if (m.t == CT_BREAK)
                                return agent_parse_fail(p, AGENT_PARSE_BAD_CBOR,
                                                        "unexpected break");
                        if (m.t != CT_MAP && m.t != CT_MAP_INDEF)
                                return agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE,
                                                        "array element is a %s, not a map",
                                                        ct_names[m.t]);
                        ret = read_map(&r, &m, 2);
                }
                p->loc.object = 0;
        } else {
                return agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE,
                                        "payload is a %s, not a map or an array", ct_names[it.t]);
        }
        if (ret < 0)
                return ret;
        if (r.pos != len) {
                p->loc.byte = r.pos;
                return agent_parse_fail(p, AGENT_PARSE_BAD_CBOR, "%zu bytes after the payload item",
                                        len - r.pos);
        }
        return 0;
}
