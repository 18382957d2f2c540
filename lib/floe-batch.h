/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A batch in memory: the columnar form that the agent builds and the
 * uploader decodes. docs/wire-format.md describes its serialisation.
 *
 * Rows refer to a series (a sensor and metric pair); sensor, metric and text
 * strings live once per batch in dictionaries. The builder can be reserved
 * up front and fixed, so that adding rows never allocates (the agent's
 * per-event path).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLOE_WIRE_VERSION      1
#define FLOE_IDENTITY_PART_MAX 63
#define FLOE_IDENTITY_MAX      (2 * FLOE_IDENTITY_PART_MAX + 1)
#define FLOE_NO_TEXT           UINT32_MAX

enum floe_batch_kind {
        FLOE_KIND_EVENTS = 1,
        FLOE_KIND_AGGREGATES = 2,
};

enum floe_agg_col {
        FLOE_AGG_SUM,
        FLOE_AGG_MIN,
        FLOE_AGG_MAX,
        FLOE_AGG_FIRST,
        FLOE_AGG_LAST,
        FLOE_AGG_NCOLS,
};

/* Limits shared by builder and decoder: whatever the builder accepts, a
 * decoder with the same limits accepts. */
struct floe_wire_limits {
        size_t max_compressed;   /* bytes on the wire */
        size_t max_decompressed; /* bytes of the CBOR map */
        uint32_t max_rows;
        uint32_t max_dict;     /* entries per dictionary */
        uint32_t max_series;   /* distinct (sensor, metric) pairs */
        uint32_t max_name_len; /* bytes of a sensor or metric name */
        uint32_t max_text_len; /* bytes of a text value */
};

void floe_wire_limits_default(struct floe_wire_limits *ret);

struct floe_strdict {
        uint32_t n;
        uint32_t cap;
        uint32_t *off;
        uint32_t *len;
        char *buf;
        size_t used;
        size_t bufcap;
        uint32_t *slots; /* open addressing: entry index + 1, 0 = empty */
        uint32_t nslots;
        uint32_t hint; /* the entry found last */
};

struct floe_series {
        uint32_t sensor;
        uint32_t metric;
};

struct floe_batch {
        /* header */
        uint32_t version;
        enum floe_batch_kind kind;
        char identity[FLOE_IDENTITY_MAX + 1];
        uint64_t epoch;
        uint64_t seq;
        int64_t created_us;

        struct floe_wire_limits lim;
        bool fixed; /* never grow: adding past capacity is -ENOSPC */

        struct floe_strdict sensors;
        struct floe_strdict metrics;
        struct floe_strdict texts;

        uint32_t nseries;
        uint32_t series_cap;
        struct floe_series *series;
        uint32_t *series_slots;
        uint32_t series_nslots;
        uint32_t series_hint;    /* the series found last */
        uint32_t series_indexed; /* series[0..series_indexed) are in series_slots */

        uint32_t nrows;
        uint32_t cap;
        uint32_t *row_series;
        int64_t *ts; /* events: ts; aggregates: window_start (µs) */

        /* events */
        double *value;
        uint8_t *value_null; /* 1 = null */
        uint32_t *text;      /* index into texts, FLOE_NO_TEXT if none */
        /* per row, what the agent's parsers know of the value: 1 + its smallest
         * decimal scale (docs/wire-format.md §7), 0 unknown. NULL unless
         * floe_batch_keep_decimals(); the encoder takes it only when every row
         * went through floe_batch_add_event() or floe_batch_push_event() */
        uint8_t *decimals;
        uint32_t decimals_rows;

        /* aggregates */
        uint32_t *window_s;
        uint64_t *count;
        double *agg[FLOE_AGG_NCOLS];
        uint8_t *agg_null[FLOE_AGG_NCOLS];
};

struct floe_agg_row {
        int64_t window_start_us;
        uint32_t window_s;
        uint64_t count;
        double v[FLOE_AGG_NCOLS];
        bool null[FLOE_AGG_NCOLS];
};

int floe_batch_new(enum floe_batch_kind kind, const struct floe_wire_limits *lim,
                   struct floe_batch **ret);
struct floe_batch *floe_batch_free(struct floe_batch *b);

/* Preallocate room for `rows` rows, `strings` dictionary entries and
 * `string_bytes` bytes of dictionary text per dictionary. With fix = true the
 * batch never allocates again: full means -ENOSPC. */
int floe_batch_reserve(struct floe_batch *b, uint32_t rows, uint32_t strings, size_t string_bytes,
                       bool fix);

/* Forget rows and dictionaries, keep capacity; the header is kept too. */
void floe_batch_reset(struct floe_batch *b);

int floe_batch_set_identity(struct floe_batch *b, const char *identity);

/* Look up or add the series of (sensor, metric). -ENAMETOOLONG, -EINVAL for
 * an empty name, -EILSEQ for invalid UTF-8 or control characters, -ENOSPC
 * when a dictionary or the series table is full. */
int floe_batch_intern_series(struct floe_batch *b, const char *sensor, size_t sensor_len,
                             const char *metric, size_t metric_len, uint32_t *ret_series);

/* Look up or add a sensor or metric name (d is b->sensors or b->metrics), with
 * the checks and errors of floe_batch_intern_series(). */
int floe_batch_intern_name(struct floe_batch *b, struct floe_strdict *d, const char *s, size_t len,
                           uint32_t *ret_index);

/* Append an event row. `text` may be NULL. A non-finite value is -EDOM. */
int floe_batch_add_event(struct floe_batch *b, uint32_t series, int64_t ts_us, double value,
                         bool value_null, const char *text, size_t text_len);

/* The same without checks and without a text, for a caller that knows the
 * row fits (nrows < cap), the series exists and the value is finite. */
static inline void floe_batch_push_event(struct floe_batch *b, uint32_t series, int64_t ts_us,
                                         double value, bool value_null, uint8_t decimals)
{
        uint32_t i = b->nrows++;

        b->row_series[i] = series;
        b->ts[i] = ts_us;
        b->value[i] = value_null ? 0.0 : value;
        b->value_null[i] = value_null;
        b->text[i] = FLOE_NO_TEXT;
        if (b->decimals) {
                b->decimals[i] = decimals;
                b->decimals_rows++;
        }
}

/* Keep the decimals column (events): -ENOMEM. Rows added later carry it. */
int floe_batch_keep_decimals(struct floe_batch *b);

/* Appends the series (sensor, metric) that the caller knows is not in the
 * batch, without the lookup of floe_batch_add_series_raw(); the next lookup
 * indexes it. -ENOSPC when the series table is full. */
int floe_batch_push_series(struct floe_batch *b, uint32_t sensor, uint32_t metric,
                           uint32_t *ret_series);

int floe_batch_add_aggregate(struct floe_batch *b, uint32_t series, const struct floe_agg_row *row);

/* Borrowed views of dictionary strings (not NUL-terminated). */
static inline const char *floe_strdict_get(const struct floe_strdict *d, uint32_t i,
                                           size_t *ret_len)
{
        *ret_len = d->len[i];
        return d->buf + d->off[i];
}

/* Switch a reset batch to another kind; frees the other kind's columns. */
void floe_batch_set_kind(struct floe_batch *b, enum floe_batch_kind kind);

/* A sensor or metric name: 1..max bytes of UTF-8 without control
 * characters. -EINVAL (empty), -ENAMETOOLONG or -EILSEQ. */
int floe_name_check(const char *s, size_t len, uint32_t max);

/* Identity `<tenant>.<device>`, each part [a-z0-9][a-z0-9-]{0,62}. */
bool floe_identity_valid(const char *s, size_t len);
/* Valid UTF-8 without overlongs or surrogates. */
bool floe_utf8_valid(const char *s, size_t len);

const char *floe_batch_kind_name(enum floe_batch_kind kind);
int floe_batch_kind_from_name(const char *name, enum floe_batch_kind *ret);
const char *floe_agg_col_name(enum floe_agg_col c);

/* Internal to the codec: dictionary and series insertion without lookup
 * side effects on rows. */
int floe_strdict_add(struct floe_strdict *d, const char *s, size_t len, bool fixed,
                     uint32_t max_entries, uint32_t *ret_index, bool *ret_added);
int floe_batch_add_series_raw(struct floe_batch *b, uint32_t sensor, uint32_t metric,
                              uint32_t *ret_series, bool *ret_added);
int floe_batch_ensure_rows(struct floe_batch *b, uint32_t rows);
