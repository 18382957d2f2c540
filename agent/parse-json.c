/* SPDX-License-Identifier: Apache-2.0 */
/* JSON payloads through jansson, whose memory comes from a per-parser bump
 * arena during a parse: no heap allocation per payload, except transiently for
 * a payload that overflows the arena and is rejected as too complex. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>

#include "floe-alloc.h"
#include "parse-internal.h"

#define ARENA_ALIGN    _Alignof(max_align_t)
#define ARENA_PER_BYTE 16 /* arena bytes per payload byte: see docs/ingest.md */
#define ARENA_MIN      (64u << 10)
#define ARENA_AUTO_MAX ((size_t)64 << 20)

/* The parser whose arena serves jansson on this thread, if any. */
static _Thread_local struct agent_parser *json_active;

static void *arena_malloc(size_t n)
{
        struct agent_parser *p = json_active;
        size_t off;

        if (!p)
                return floe_malloc(n);
        off = (p->arena_used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        if (off > p->arena_cap || n > p->arena_cap - off) {
                /* jansson does not survive every failed allocation (its lexer ignores
                 * them): finish on the heap, then reject the payload as too complex */
                p->arena_exhausted = true;
                return floe_malloc(n);
        }
        p->arena_used = off + n;
        return p->arena + off;
}

static void arena_free(void *ptr)
{
        struct agent_parser *p = json_active;
        uintptr_t u = (uintptr_t)ptr, a;

        if (p) {
                a = (uintptr_t)p->arena;
                if (u >= a && u - a < p->arena_cap)
                        return; /* reclaimed when the arena is reset */
        }
        floe_free(ptr);
}

int agent_parse_json_init(struct agent_parser *p)
{
        size_t cap = p->o.json_arena;

        if (!cap) {
                cap = p->o.max_payload > (ARENA_AUTO_MAX - ARENA_MIN) / ARENA_PER_BYTE
                              ? ARENA_AUTO_MAX
                              : p->o.max_payload * ARENA_PER_BYTE + ARENA_MIN;
        }
        p->arena = floe_malloc(cap);
        if (!p->arena)
                return -ENOMEM;
        p->arena_cap = cap;
        json_set_alloc_funcs(arena_malloc, arena_free);
        return 0;
}

void agent_parse_json_fini(struct agent_parser *p)
{
        floe_free(p->arena);
        p->arena = NULL;
        p->arena_cap = 0;
}

/* Bounds jansson's recursion and memory before it starts. */
static int check_depth(struct agent_parser *p, const uint8_t *data, size_t len)
{
        unsigned depth = 0;
        bool in_str = false;

        for (size_t i = 0; i < len; i++) {
                uint8_t c = data[i];

                if (in_str) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_str = false;
                } else if (c == '"') {
                        in_str = true;
                } else if (c == '{' || c == '[') {
                        if (++depth > AGENT_PARSE_MAX_DEPTH) {
                                p->loc.byte = i;
                                return agent_parse_fail(p, AGENT_PARSE_TOO_DEEP,
                                                        "nested deeper than %d",
                                                        AGENT_PARSE_MAX_DEPTH);
                        }
                } else if ((c == '}' || c == ']') && depth > 0) {
                        depth--;
                }
        }
        return 0;
}

static void to_pv(json_t *j, struct agent_pv *v)
{
        *v = (struct agent_pv){.kind = AGENT_PV_OTHER};
        switch (json_typeof(j)) {
        case JSON_REAL:
                v->kind = AGENT_PV_NUMBER;
                v->d = json_real_value(j);
                break;
        case JSON_INTEGER: /* not with JSON_DECODE_INT_AS_REAL; kept for safety */
                v->kind = AGENT_PV_NUMBER;
                v->is_int = true;
                v->i = json_integer_value(j);
                v->d = (double)v->i;
                break;
        case JSON_TRUE:
        case JSON_FALSE:
                v->kind = AGENT_PV_BOOL;
                v->b = json_is_true(j);
                break;
        case JSON_NULL:
                v->kind = AGENT_PV_NULL;
                break;
        case JSON_STRING:
                v->kind = AGENT_PV_STRING;
                v->s = json_string_value(j);
                v->len = json_string_length(j);
                break;
        case JSON_OBJECT:
                v->type = "object";
                break;
        default:
                v->type = "array";
                break;
        }
}

static int walk_object(struct agent_parser *p, json_t *o)
{
        size_t n = json_object_size(o), i = 0;

        if (n > p->ent_cap)
                return agent_parse_fail(p, AGENT_PARSE_TOO_MANY_READINGS,
                                        "object of %zu members, limit %" PRIu32, n, p->ent_cap);
        for (void *it = json_object_iter(o); it && i < n; it = json_object_iter_next(o, it), i++) {
                struct agent_pentry *e = &p->ent[i];

                e->key = json_object_iter_key(it);
                e->key_len = json_object_iter_key_len(it);
                e->off = SIZE_MAX;
                to_pv(json_object_iter_value(it), &e->v);
        }
        return agent_parse_object(p, p->ent, i);
}

static int json_error(struct agent_parser *p, const json_error_t *je)
{
        enum agent_parse_reason reason;

        if (p->arena_exhausted)
                return agent_parse_fail(p, AGENT_PARSE_TOO_COMPLEX,
                                        "JSON needs more than %zu bytes of memory", p->arena_cap);
        switch (json_error_code(je)) {
        case json_error_invalid_utf8:
                reason = AGENT_PARSE_BAD_UTF8;
                break;
        case json_error_stack_overflow:
                reason = AGENT_PARSE_TOO_DEEP;
                break;
        case json_error_null_byte_in_key:
                reason = AGENT_PARSE_BAD_NAME;
                break;
        case json_error_duplicate_key:
                reason = AGENT_PARSE_DUPLICATE_KEY;
                break;
        case json_error_numeric_overflow:
                reason = AGENT_PARSE_NON_FINITE;
                break;
        default:
                reason = AGENT_PARSE_BAD_JSON;
                break;
        }
        return agent_parse_fail(p, reason, "%s at line %d column %d (byte %d)", je->text, je->line,
                                je->column, je->position);
}

int agent_parse_json(struct agent_parser *p, const uint8_t *data, size_t len)
{
        const size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL;
        json_error_t je;
        json_t *root;
        int r;

        r = check_depth(p, data, len);
        if (r < 0)
                return r;
        /* the previous payload's values are dead: its readings have been emitted */
        p->arena_used = 0;
        p->arena_exhausted = false;
        json_active = p;
        root = json_loadb((const char *)data, len, flags, &je);
        if (root && p->arena_exhausted)
                json_decref(root); /* frees what went to the heap */
        json_active = NULL;
        if (!root || p->arena_exhausted)
                return json_error(p, &je);
        /* root and its values live in the arena: no json_decref() */
        if (json_is_object(root))
                return walk_object(p, root);
        if (json_array_size(root) > p->o.max_readings)
                return agent_parse_fail(p, AGENT_PARSE_TOO_MANY_READINGS,
                                        "array of %zu objects, limit %" PRIu32,
                                        json_array_size(root), p->o.max_readings);
        for (size_t i = 0; i < json_array_size(root); i++) {
                json_t *o = json_array_get(root, i);

                p->loc.object = (uint32_t)(i + 1 > UINT32_MAX ? UINT32_MAX : i + 1);
                if (!json_is_object(o)) {
                        struct agent_pv v;

                        to_pv(o, &v);
                        return agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE,
                                                "array element is a %s, not an object",
                                                v.kind == AGENT_PV_OTHER    ? v.type
                                                : v.kind == AGENT_PV_STRING ? "string"
                                                : v.kind == AGENT_PV_NUMBER ? "number"
                                                : v.kind == AGENT_PV_BOOL   ? "boolean"
                                                                            : "null");
                }
                r = walk_object(p, o);
                if (r < 0)
                        return r;
        }
        return 0;
}
