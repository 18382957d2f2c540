/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the payload parsers (parse*.c) only. */

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "parse.h"

#define AGENT_PARSE_MAX_DEPTH 8    /* arrays and maps nested in a JSON or CBOR payload */
#define AGENT_PARSE_REF_KEYS  64   /* keys of an object remembered for duplicate detection */
#define AGENT_PARSE_REF_BYTES 1024 /* and their bytes */

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
        bool utf8;        /* STRING: the reader checked it is valid UTF-8 */
        uint8_t decimals; /* NUMBER: as agent_reading.decimals */
        int64_t i;
        double d; /* NUMBER: always set */
        const char *s;
        size_t len;
        const char *type; /* OTHER: "object", "array", ... */
};

struct agent_pentry {
        const char *key;
        size_t key_len;
        size_t off;  /* CBOR: byte offset of the key; SIZE_MAX for JSON */
        bool clean;  /* the key is a valid name: printable ASCII, checked by the reader */
        uint8_t cls; /* agent_parse_object()'s scratch */
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
        /* ... after the keys of the last object that had to be hashed: an
         * object whose keys repeat them in order has none twice */
        struct agent_parse_keys {
                uint32_t n, used;
                uint16_t off[AGENT_PARSE_REF_KEYS];
                uint8_t len[AGENT_PARSE_REF_KEYS];
                /* printable ASCII but '"' and '\\': the key as it is in a JSON payload */
                bool raw[AGENT_PARSE_REF_KEYS];
                char bytes[AGENT_PARSE_REF_BYTES];
        } dup_ref[2];
        uint8_t dup_ref_cur; /* dup_ref[dup_ref_cur] is the reference, if dup_ref_ok */
        bool dup_ref_ok;
        bool dup_matching;  /* the object's keys so far are the reference's first ones */
        bool dup_recording; /* they are being copied into the other dup_ref */
        bool dup_seen;      /* the object had a duplicate */
        uint32_t dup_i;     /* keys of the object so far */

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

/* What the reader already checked of a reading it stages. */
#define AGENT_STAGE_METRIC_OK 0x1 /* the metric is a valid name (printable ASCII, 1..max bytes) */
#define AGENT_STAGE_TEXT_UTF8 0x2 /* the text is valid UTF-8 */

int agent_parse_stage_full(struct agent_parser *p, const char *sensor, size_t sensor_len,
                           const char *metric, size_t metric_len, int64_t ts_us, double value,
                           bool value_null, const char *text, size_t text_len, unsigned checked);

/* Validates and stages one reading; sensor NULL means the topic's. */
static inline int agent_parse_stage(struct agent_parser *p, const char *sensor, size_t sensor_len,
                                    const char *metric, size_t metric_len, int64_t ts_us,
                                    double value, bool value_null, const char *text,
                                    size_t text_len, unsigned checked)
{
        struct agent_reading *rd;

        /* the usual reading: the topic's sensor, checked already, a name the
         * reader checked, a number */
        if (sensor || p->topic_sensor_ok != 1 || text || !(checked & AGENT_STAGE_METRIC_OK) ||
            metric_len - 1 >= p->o.max_name_len || p->n >= p->o.max_readings ||
            (!value_null && !isfinite(value)))
                return agent_parse_stage_full(p, sensor, sensor_len, metric, metric_len, ts_us,
                                              value, value_null, text, text_len, checked);
        rd = &p->rd[p->n++];
        rd->sensor = p->topic_sensor;
        rd->sensor_len = p->topic_sensor_len;
        rd->metric = metric;
        rd->metric_len = metric_len;
        rd->ts_us = ts_us;
        rd->value = value_null ? 0.0 : value;
        rd->value_null = value_null;
        rd->text = NULL;
        rd->text_len = 0;
        rd->decimals = 0;
        return 0;
}

/* The shapes of docs/ingest.md over the members of one JSON or CBOR object. */
int agent_parse_object(struct agent_parser *p, struct agent_pentry *e, size_t n);

/* Duplicate-key detection over one object or line; returns true on a duplicate. */
void agent_parse_dup_reset(struct agent_parser *p);
bool agent_parse_dup_add(struct agent_parser *p, const char *key, size_t len);

/* A decimal literal whose syntax the caller has checked ([+-]digits[.digits][(e|E)[+-]digits])
 * to the nearest double; NON_FINITE beyond the range of a double. */
int agent_parse_decimal(struct agent_parser *p, const char *s, size_t n, double *ret);

#define AGENT_PARSE_POW10_MAX 22 /* largest exact power of ten in a double */

static const double agent_parse_pow10[AGENT_PARSE_POW10_MAX + 1] = {
        1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The decimal w·10^e10 (sign neg) to the nearest double when one IEEE
 * operation is exact (Clinger's fast path: w <= 2^53, |e10| <= 22); false
 * otherwise. The same result agent_parse_decimal() gives for the literal. */
static inline bool agent_parse_decimal_fast(uint64_t w, bool neg, int e10, double *ret)
{
#if FLT_EVAL_METHOD != 0
        /* excess precision would round twice */
        (void)w;
        (void)neg;
        (void)e10;
        (void)ret;
        return false;
#else
        double d;

        if (w > (1ull << 53))
                return false;
        d = (double)w;
        if (w == 0) {
                /* zero whatever the exponent */
        } else if (e10 < 0) {
                if (e10 < -AGENT_PARSE_POW10_MAX)
                        return false;
                d /= agent_parse_pow10[-e10];
        } else if (e10 > 0) {
                if (e10 > AGENT_PARSE_POW10_MAX)
                        return false;
                d *= agent_parse_pow10[e10];
        }
        *ret = neg ? -d : d;
        return true;
#endif
}

/* RFC 3339 date-time to µs since the epoch; -EINVAL if not one. */
int agent_parse_rfc3339(const char *s, size_t len, int64_t *ret_us);

/* The members of a JSON or CBOR object (docs/ingest.md §3). */
enum agent_key_class {
        KEY_METRIC_NAME, /* any other key: a metric */
        KEY_TIME,
        KEY_SENSOR,
        KEY_METRIC,
        KEY_VALUE,
        KEY_TEXT,
};

static inline enum agent_key_class agent_parse_key_class(const char *k, size_t n)
{
        switch (n) {
        case 2:
                return memcmp(k, "ts", 2) == 0 ? KEY_TIME : KEY_METRIC_NAME;
        case 4:
                return memcmp(k, "time", 4) == 0   ? KEY_TIME
                       : memcmp(k, "text", 4) == 0 ? KEY_TEXT
                                                   : KEY_METRIC_NAME;
        case 5:
                return memcmp(k, "value", 5) == 0 ? KEY_VALUE : KEY_METRIC_NAME;
        case 6:
                return memcmp(k, "sensor", 6) == 0   ? KEY_SENSOR
                       : memcmp(k, "metric", 6) == 0 ? KEY_METRIC
                                                     : KEY_METRIC_NAME;
        case 9:
                return memcmp(k, "timestamp", 9) == 0 ? KEY_TIME : KEY_METRIC_NAME;
        default:
                return KEY_METRIC_NAME;
        }
}

/* The time of a "ts"/"time"/"timestamp" member (docs/ingest.md §7). */
int agent_parse_time(struct agent_parser *p, const struct agent_pv *v, int64_t *ret);

static inline bool agent_parse_key_is(const char *k, size_t n, const char *lit)
{
        size_t l = strlen(lit);

        return n == l && memcmp(k, lit, l) == 0;
}

int agent_parse_json(struct agent_parser *p, const uint8_t *data, size_t len);
int agent_parse_cbor(struct agent_parser *p, const uint8_t *data, size_t len);
int agent_parse_influx(struct agent_parser *p, const uint8_t *data, size_t len);
