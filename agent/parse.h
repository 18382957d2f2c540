/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Payload parsers of the local-broker ingest: a payload received on the
 * gateway's mosquitto (JSON, CBOR or InfluxDB line protocol, detected from
 * its first bytes) becomes zero or more readings. docs/ingest.md is the
 * normative description of what is accepted.
 *
 * A payload is accepted or rejected as a whole: it is parsed completely into
 * preallocated scratch space first, and only then are its readings handed to
 * the callback. A parser allocates all of its memory in agent_parser_new();
 * parsing a payload does not allocate. Not thread-safe: one parser per thread.
 */

#include <stddef.h>
#include <stdint.h>

#include "reading.h"

enum agent_parse_reason {
        AGENT_PARSE_OK,
        AGENT_PARSE_EMPTY,             /* zero bytes, or only whitespace */
        AGENT_PARSE_TOO_LARGE,         /* more than max_payload bytes */
        AGENT_PARSE_TOO_MANY_READINGS, /* more than max_readings */
        AGENT_PARSE_TOO_COMPLEX,       /* scratch memory exhausted */
        AGENT_PARSE_TOO_DEEP,          /* arrays/maps nested too deep */
        AGENT_PARSE_BAD_JSON,
        AGENT_PARSE_BAD_CBOR,
        AGENT_PARSE_BAD_LINE_PROTOCOL,
        AGENT_PARSE_BAD_UTF8,
        AGENT_PARSE_BAD_NAME, /* empty, or control characters */
        AGENT_PARSE_NAME_TOO_LONG,
        AGENT_PARSE_TEXT_TOO_LONG,
        AGENT_PARSE_NO_SENSOR, /* no topic and no "sensor" in the payload */
        AGENT_PARSE_DUPLICATE_KEY,
        AGENT_PARSE_UNKNOWN_KEY,   /* a single-reading object with a foreign key */
        AGENT_PARSE_MISSING_VALUE, /* a single-reading object without value or text */
        AGENT_PARSE_BAD_VALUE_TYPE,
        AGENT_PARSE_BAD_NUMBER, /* an integer out of the range of its type */
        AGENT_PARSE_NON_FINITE, /* NaN, infinity, or a float beyond double */
        AGENT_PARSE_BAD_TIME,
        AGENT_PARSE_CALLBACK, /* the reading callback failed: see emitted */
        AGENT_PARSE_REASON_MAX,
};

enum agent_parse_format {
        AGENT_PARSE_FORMAT_NONE,
        AGENT_PARSE_FORMAT_JSON,
        AGENT_PARSE_FORMAT_CBOR,
        AGENT_PARSE_FORMAT_LINE,
        AGENT_PARSE_FORMAT_MAX,
};

/* Stable kebab-case names, for counters and logs ("bad-json"). */
const char *agent_parse_reason_name(enum agent_parse_reason r);
const char *agent_parse_format_name(enum agent_parse_format f);

/* Zero in a numeric field means the default of agent_parse_opts_default(). */
struct agent_parse_opts {
        const char *topic_prefix_strip; /* "sensors/"; NULL: keep the whole topic */
        size_t max_payload;             /* bytes */
        uint32_t max_name_len;          /* bytes of a sensor or metric name */
        uint32_t max_text_len;          /* bytes of a text value */
        uint32_t max_readings;          /* per payload */
};

void agent_parse_opts_default(struct agent_parse_opts *ret);

struct agent_parse_error {
        enum agent_parse_reason reason;
        enum agent_parse_format format;
        uint32_t emitted; /* readings delivered before a callback failure, else 0 */
        char detail[160]; /* says where: line, byte offset, object, key */
};

struct agent_parser;

/* -EINVAL for impossible options, -ENOMEM. */
int agent_parser_new(const struct agent_parse_opts *o, struct agent_parser **ret);
struct agent_parser *agent_parser_free(struct agent_parser *p);

/*
 * Parses one payload received on `topic` (NULL: no topic, so no default
 * sensor) and calls fn once per reading, in payload order. Readings borrow
 * from data, topic and the parser: valid during the callback only.
 *
 * Returns the number of readings emitted (>= 0) or a negative errno with err
 * filled: -ENODATA (empty), -EMSGSIZE (a size or count limit), -EBADMSG
 * (anything else malformed); on those no reading has been emitted. If fn
 * returns a negative errno, emission stops and that errno is returned with
 * reason AGENT_PARSE_CALLBACK and err->emitted readings already delivered.
 */
int agent_parse_payload(struct agent_parser *p, const char *topic, const uint8_t *data, size_t len,
                        agent_reading_fn fn, void *userdata, struct agent_parse_error *err);

/* The same, handing every reading of the payload to fn in one call (the
 * pipeline writes readings of one sensor as one ring record). fn returns 0
 * once it took all n, else a negative errno with *ret_taken the readings it
 * took first; that errno is returned as above, err->emitted = *ret_taken. */
typedef int (*agent_readings_fn)(void *userdata, const struct agent_reading *r, size_t n,
                                 size_t *ret_taken);
int agent_parse_payload_many(struct agent_parser *p, const char *topic, const uint8_t *data,
                             size_t len, agent_readings_fn fn, void *userdata,
                             struct agent_parse_error *err);
