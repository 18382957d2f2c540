/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * NDJSON rows, the row form every floe tool accepts and prints
 * (docs/wire-format.md §8):
 *   events:     {"tenant","device","sensor","metric","ts","value"[,"text"]}
 *   aggregates: {"tenant","device","sensor","metric","window_start","window_s",
 *                "count","sum","min","max","first","last"}
 */

#include <stddef.h>

#include "floe-batch.h"

/* Shortest text that strtod reads back as exactly v (v finite). Returns the
 * length, or -ENOSPC. Needs at most 25 bytes. */
int floe_fmt_double(double v, char *buf, size_t size);

/* Appends row i as one line with its '\n'. Returns the length written or
 * -ENOSPC when the buffer is too small. */
int floe_ndjson_format_row(const struct floe_batch *b, uint32_t i, char *buf, size_t size);

/*
 * Parses one line into a new row of b. The row's tenant and device must
 * match b->identity; an empty identity is taken from the first row.
 * On error, `err` says what and where within the line.
 */
int floe_ndjson_parse_row(struct floe_batch *b, const char *line, size_t len, char *err,
                          size_t errsize);
