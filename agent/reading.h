/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * One sensor reading, as every ingest path (local MQTT payload parsers,
 * board sensors) hands it to the agent core. Strings are borrowed: valid
 * only during the callback, not NUL-terminated.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_TS_NONE INT64_MIN /* the source gave no time: the agent stamps it */

struct agent_reading {
        const char *sensor;
        size_t sensor_len;
        const char *metric;
        size_t metric_len;
        int64_t ts_us; /* µs since the Unix epoch, or AGENT_TS_NONE */
        double value;
        bool value_null;
        const char *text; /* NULL: no text */
        size_t text_len;
        /* 0, or 1 + k when the value was read from a decimal literal with exactly
         * k fraction digits (trailing zeros aside) and at most 15 significant
         * digits: then k is its smallest scale in the wire format (docs/wire-format.md
         * §7), and the encoder need not search for it */
        uint8_t decimals;
};

/* Returns 0 to go on, or a negative errno to stop (e.g. -ENOSPC: ring full). */
typedef int (*agent_reading_fn)(void *userdata, const struct agent_reading *r);
