/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the payload parsers (parse*.c) only. */

#include <locale.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "parse.h"

#define AGENT_PARSE_MAX_DEPTH 8 /* arrays and maps nested in a JSON or CBOR payload */

/* A value of a JSON or CBOR object member, in format-neutral form. */
enum agent_pv_kind {
        AGENT_PV_NUMBER,
        AGENT_PV_BOOL,
        AGENT_PV_NULL,
        AGENT_PV_STRING,
        AGENT_PV_OTHER, /* anything else: `type` names it */
};

enum agent_pv_tag {
        AGENT_PV_UNTAGGED,
        AGENT_PV_TAG_DATETIME, /* CBOR tag 0 on a string */
        AGENT_PV_TAG_EPOCH,    /* CBOR tag 1 on a number */
};

struct agent_pv {
        enum agent_pv_kind kind;
        enum agent_pv_tag tag;
        bool is_int; /* NUMBER: exact in i */
        bool b;
        int64_t i;
        double d; /* NUMBER: always set */
        const char *s;
        size_t len;
        const char *type; /* OTHER: "object", "array", ... */
};

struct agent_pentry {
        const char *key;
        size_t key_len;
        size_t off; /* CBOR: byte offset of the key; SIZE_MAX for JSON */
        struct agent_pv v;
};

/* Where the current item is, for error details. */
struct agent_parse_loc {
        uint32_t line;   /* line protocol: 1-based, 0 = not set */
        size_t byte;     /* CBOR: offset of the item, SIZE_MAX = not set */
        uint32_t object; /* JSON/CBOR: 1-based index in a top-level array, 0 = not set */
        const char *key; /* member or field key, NULL = not set */
        size_t key_len;
};

struct agent_parser {
        struct agent_parse_opts o;
        char *prefix;
        size_t prefix_len;

        /* the payload being parsed */
        const char *topic_sensor;
        size_t topic_sensor_len;
        int topic_sensor_ok;     /* 0 unchecked, 1 valid, < 0 the floe_name_check error */
        const char *last_sensor; /* the last sensor name that passed the check */
        size_t last_sensor_len;
        struct agent_parse_error *err;
        struct agent_parse_loc loc;

        /* staged readings */
        struct agent_reading *rd;
        uint32_t n;

        /* object members (JSON, CBOR) */
        struct agent_pentry *ent;
        uint32_t ent_cap;

        /* duplicate-key detection: open addressing, generation-stamped slots */
        uint32_t *dup_gen;
        const char **dup_key;
        size_t *dup_len;
        uint32_t dup_mask;
        uint32_t dup_cur;
        uint32_t dup_n;

        /* bytes for unescaped or composed strings */
        char *str;
        size_t str_cap;
        size_t str_used;

        locale_t c_locale;
};

__attribute__((format(printf, 3, 4))) int
agent_parse_fail(struct agent_parser *p, enum agent_parse_reason reason, const char *fmt, ...);

/* Room for n bytes in the string scratch, or NULL (too-complex is reported). */
char *agent_parse_str_alloc(struct agent_parser *p, size_t n);

/* Validates and stages one reading; sensor NULL means the topic's. */
int agent_parse_stage(struct agent_parser *p, const char *sensor, size_t sensor_len,
                      const char *metric, size_t metric_len, int64_t ts_us, double value,
                      bool value_null, const char *text, size_t text_len);

/* The shapes of docs/ingest.md over the members of one JSON or CBOR object. */
int agent_parse_object(struct agent_parser *p, const struct agent_pentry *e, size_t n);

/* Duplicate-key detection over one object or line; returns true on a duplicate. */
void agent_parse_dup_reset(struct agent_parser *p);
bool agent_parse_dup_add(struct agent_parser *p, const char *key, size_t len);

/* A decimal literal whose syntax the caller has checked ([+-]digits[.digits][(e|E)[+-]digits])
 * to the nearest double; NON_FINITE beyond the range of a double. */
int agent_parse_decimal(struct agent_parser *p, const char *s, size_t n, double *ret);

/* RFC 3339 date-time to µs since the epoch; -EINVAL if not one. */
int agent_parse_rfc3339(const char *s, size_t len, int64_t *ret_us);

static inline bool agent_parse_key_is(const char *k, size_t n, const char *lit)
{
        size_t l = strlen(lit);

        return n == l && memcmp(k, lit, l) == 0;
}

int agent_parse_json(struct agent_parser *p, const uint8_t *data, size_t len);
int agent_parse_cbor(struct agent_parser *p, const uint8_t *data, size_t len);
int agent_parse_influx(struct agent_parser *p, const uint8_t *data, size_t len);
