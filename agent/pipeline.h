/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The agent's core: every accepted reading goes into the ring (the
 * acceptance point), then into the tumbling windows and the open event
 * batch; closed batches are encoded into the outbox and the ring's cursors
 * move past what the outbox now holds. After a restart the pipeline replays
 * the ring from its cursors, so nothing accepted is lost or shipped twice.
 */

#include <stdbool.h>
#include <stdint.h>

#include "floe-batch.h"
#include "reading.h"

struct agent_ring;
struct agent_window;
struct agent_outbox;

enum agent_ship {
        AGENT_SHIP_EVENTS = 1,
        AGENT_SHIP_AGGREGATES = 2,
        AGENT_SHIP_BOTH = 3,
};

struct agent_pipeline_opts {
        const char *identity;
        enum agent_ship ship;
        uint32_t batch_max_events;
        uint64_t batch_max_bytes; /* estimated encoded bytes */
        uint64_t batch_max_age_us;
        int level; /* zstd */
        struct floe_wire_limits lim;
        /* called after a batch lands in the outbox (the uplink's kick) */
        void (*on_batch)(void *ud);
        void *on_batch_ud;
};

struct agent_pipeline_stats {
        uint64_t accepted;
        uint64_t ring_full; /* readings refused: the ring was full */
        uint64_t rejected;  /* readings the batch builder refused (names, limits) */
        uint64_t replayed;  /* records read back from the ring at start */
        uint64_t event_batches;
        uint64_t aggregate_batches;
        uint64_t outbox_refused; /* batches the outbox refused (reject-new) */
        uint64_t encode_errors;
        uint64_t split_batches; /* event batches encoded too large for a record, split */
        uint32_t open_events;   /* rows in the open event batch */
};

struct agent_pipeline;

/* Takes no ownership of ring, window and outbox. Replays the ring. */
int agent_pipeline_new(const struct agent_pipeline_opts *o, struct agent_ring *ring,
                       struct agent_window *win, struct agent_outbox *ob, int64_t now_us,
                       struct agent_pipeline **ret);
struct agent_pipeline *agent_pipeline_free(struct agent_pipeline *p);

/* The acceptance point: 0 once the reading is in the ring; -ENOSPC when the
 * ring is full (counted). ts_us AGENT_TS_NONE is replaced by now_us. */
int agent_pipeline_accept(struct agent_pipeline *p, const struct agent_reading *r, int64_t now_us);

/* The readings of one payload: readings of one sensor in a row go into one
 * ring record (docs/ring.md §3). 0 once all are in the ring; else the error
 * of the first one refused, with *ret_accepted (may be NULL) the readings
 * accepted before it, in order. */
int agent_pipeline_accept_many(struct agent_pipeline *p, const struct agent_reading *r, size_t n,
                               int64_t now_us, size_t *ret_accepted);

/* Timer work: close the event batch when old enough, close due windows. */
int agent_pipeline_tick(struct agent_pipeline *p, int64_t now_us, uint64_t mono_us);

/* Shutdown: close the open event batch and every open window. */
int agent_pipeline_drain(struct agent_pipeline *p, int64_t now_us);

void agent_pipeline_stats(const struct agent_pipeline *p, struct agent_pipeline_stats *ret);
