/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Tumbling windows per series (sensor, metric), aligned to wall-clock
 * boundaries: window k is [k*L, (k+1)*L) in µs since the epoch (UTC). Each
 * keeps count, sum, min, max, first and last of the non-null values.
 *
 * Decisions are a function of (ts, arrival, watermark) only, so replaying
 * the ring with the arrival times it stored gives the same result:
 *   - implausible: ts before the floor or after arrival + max_future (or the
 *     ring flagged it): counted, not aggregated;
 *   - late: the window ends at or before the watermark, or its end + grace
 *     is at or before the arrival: counted, not aggregated;
 *   - otherwise aggregated; a null value counts nowhere but opens the window.
 * docs/ring.md §10 has the rest. All memory is allocated by
 * agent_window_new(); nothing is allocated per event.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "floe-batch.h"
#include "reading.h"

#define AGENT_WINDOW_SLOTS_MAX 1024 /* distinct window starts open at once */

struct agent_window_opts {
        int64_t window_us;     /* L: whole seconds, 1 s .. 2^32-1 s; default 60 s */
        int64_t grace_us;      /* default 5 s */
        int64_t max_future_us; /* ts beyond arrival + this is implausible; default 10 min */
        int64_t floor_us;      /* ts before this is implausible; default the day before the
                                  build's date (FLOE_BUILD_EPOCH) */
        uint32_t max_series;   /* default 65536 */
        uint32_t max_windows;  /* open (series, window) pairs; default 2 * max_series */
        uint64_t name_bytes;   /* sensor + metric bytes of all series; default 64 per series */
};

enum agent_window_result {
        AGENT_WINDOW_ADDED,       /* aggregated (or a null that opened the window) */
        AGENT_WINDOW_LATE,        /* its window is closed */
        AGENT_WINDOW_IMPLAUSIBLE, /* its timestamp is not believable */
        AGENT_WINDOW_DROPPED,     /* no room: series table, names or windows full */
};

struct agent_window_stats {
        uint64_t added;
        uint64_t late;
        uint64_t implausible;
        uint64_t dropped_series;  /* the series table or the name arena was full */
        uint64_t dropped_windows; /* all window cells or window starts were in use */
        uint64_t nonfinite;       /* NaN or infinite values, aggregated as null */
        uint64_t emitted;         /* rows handed to the emit callback */
        uint64_t discarded;       /* open windows dropped by agent_window_set_watermark() */
        uint64_t compactions;     /* series table rebuilt to drop idle series */
        uint32_t series;
        uint32_t open_windows;
};

/* Rows are emitted through this; a negative return stops the emission and
 * keeps that window (and the rest) open, to be emitted by the next call. */
typedef int (*agent_window_emit_fn)(void *userdata, const char *sensor, size_t sensor_len,
                                    const char *metric, size_t metric_len,
                                    const struct floe_agg_row *row);

struct agent_window;

void agent_window_opts_default(struct agent_window_opts *ret);
/* 00:00 UTC of the day before the build date (__DATE__, which honours
 * SOURCE_DATE_EPOCH): the default floor. */
int64_t agent_window_build_floor_us(void);

/* -EINVAL for options out of range, -ENOMEM. */
int agent_window_new(const struct agent_window_opts *o, struct agent_window **ret);
struct agent_window *agent_window_free(struct agent_window *w);

/* Whether ts is believable at arrival; the agent sets AGENT_RING_F_TS_IMPLAUSIBLE from it. */
bool agent_window_ts_plausible(const struct agent_window *w, int64_t ts_us, int64_t arrival_us);

/*
 * Add one reading. flags are the ring record's (AGENT_RING_F_TS_IMPLAUSIBLE
 * is honoured); pos is its ring position, remembered for
 * agent_window_oldest_pos(); arrival_us the agent's clock when it accepted
 * it (the ring stores it for replay). Returns an agent_window_result, or
 * -EINVAL for a reading the ring would refuse (names, missing ts).
 */
int agent_window_add(struct agent_window *w, const struct agent_reading *rd, uint8_t flags,
                     uint64_t pos, int64_t arrival_us);

/* Not a ring flag: the caller found agent_window_ts_plausible(ts, arrival) true. */
#define AGENT_WINDOW_F_PLAUSIBLE 0x80

/* The same for a reading whose series the caller looked up in
 * agent_window_series(): AGENT_SERIES_NONE counts it dropped (the registry
 * was full), AGENT_WINDOW_SERIES_LOOKUP looks it up by name. */
#define AGENT_WINDOW_SERIES_LOOKUP (UINT32_MAX - 1)
int agent_window_add_series(struct agent_window *w, uint32_t series, const struct agent_reading *rd,
                            uint8_t flags, uint64_t pos, int64_t arrival_us);

/* The n readings of one ring record (position pos, arrival arrival_us), each
 * with its series as in agent_window_add_series() and its flags. */
void agent_window_add_group(struct agent_window *w, const uint32_t *series,
                            const struct agent_reading *rd, const uint8_t *flags, size_t n,
                            uint64_t pos, int64_t arrival_us);

/* The series registry of the windows (agent/series.h), shared with the
 * pipeline so that a reading is looked up once. */
struct agent_series_reg *agent_window_series(struct agent_window *w);
/* The registry is full: free the idle series (counted in compactions), or
 * -ENOSPC when fewer than 1/8 are idle. */
int agent_window_series_compact(struct agent_window *w);

/* Emit every window whose end + grace <= now, ordered by window start and
 * then by sensor and metric (bytewise), and advance the watermark past
 * them. 0, or the callback's error. */
int agent_window_close_due(struct agent_window *w, int64_t now_us, agent_window_emit_fn fn,
                           void *userdata);

/* Shutdown: emit every window that has started (start <= now) at once, in
 * the same order, and set the watermark to the end of the current window,
 * so that events of those windows met after a restart are late. Windows of
 * future-stamped events stay open (their records stay in the ring). */
int agent_window_flush_all(struct agent_window *w, int64_t now_us, agent_window_emit_fn fn,
                           void *userdata);

/* Every window ending at or before it has been emitted. INT64_MIN at first. */
int64_t agent_window_watermark(const struct agent_window *w);
/* After a restart: the ring's watermark. Only moves forward; open windows
 * ending at or before it are discarded (counted). */
int agent_window_set_watermark(struct agent_window *w, int64_t watermark_us);

/* The lowest ring position added to a still-open window; -ENOENT if none.
 * The aggregation cursor may move up to it (or to the head if none). */
int agent_window_oldest_pos(const struct agent_window *w, uint64_t *ret_pos);

void agent_window_stats(const struct agent_window *w, struct agent_window_stats *ret);
