/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Prometheus text exposition format (version 0.0.4) into a fixed buffer:
 * the agent writes it to a node-exporter textfile, the uploader serves it.
 * No allocation after floe_metrics_new().
 */

#include <stddef.h>
#include <stdint.h>

struct floe_metrics;

int floe_metrics_new(size_t capacity, struct floe_metrics **ret);
struct floe_metrics *floe_metrics_free(struct floe_metrics *m);
void floe_metrics_reset(struct floe_metrics *m);

/* # HELP and # TYPE lines; type is "counter", "gauge" or "untyped". */
void floe_metrics_family(struct floe_metrics *m, const char *name, const char *type,
                         const char *help);
/* One sample. `labels` is NULL or pairs "k", "v", ... ended by NULL;
 * values are escaped as the format requires. */
void floe_metrics_u64(struct floe_metrics *m, const char *name, const char *const *labels,
                      uint64_t v);
void floe_metrics_double(struct floe_metrics *m, const char *name, const char *const *labels,
                         double v);

/* -ENOSPC if anything did not fit since the last reset. */
int floe_metrics_text(const struct floe_metrics *m, const char **ret, size_t *ret_len);

/* Replaces path atomically (temp file in the same directory, rename), as
 * the textfile collector needs. */
int floe_metrics_write_file(const struct floe_metrics *m, const char *path);
