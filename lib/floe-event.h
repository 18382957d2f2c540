/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

/*
 * sd-event glue shared by floe-agent and floe-uploader: the loop, signals,
 * the service-manager watchdog, timers and sd_notify(3) messages.
 * See docs/ and packaging-systemd-style.md §2.1 for when to send what.
 */

/* The thread's default loop (sd_event_default); release with sd_event_unref(). */
int floe_event_new(sd_event **ret);

/* Returned by on_terminate to keep the loop running: the handler has started a
 * graceful shutdown and will call sd_event_exit() itself. */
#define FLOE_EVENT_TERMINATE_DEFER 1

/*
 * Signal callbacks, run from the loop (never from signal context).
 * on_terminate (SIGTERM, SIGINT): NULL exits the loop with 0. Otherwise it is
 *   called first; returning 0 then exits with 0, FLOE_EVENT_TERMINATE_DEFER
 *   keeps running, a negative errno exits the loop with that value.
 * on_reload (SIGHUP): NULL ignores the signal. Returning a negative errno
 *   exits the loop with it; to keep the old config after a failed reload,
 *   log and return 0.
 */
struct floe_event_handlers {
        int (*on_terminate)(void *userdata);
        int (*on_reload)(void *userdata);
        void *userdata;
};

/*
 * Blocks SIGTERM, SIGINT and SIGHUP with sigprocmask(2) (call it before
 * starting threads) and adds signal sources owned by the loop. handlers may be
 * NULL (all defaults); it is copied. All or nothing: on failure no source is
 * left and the signal mask is restored.
 */
int floe_event_install_signals(sd_event *e, const struct floe_event_handlers *handlers);

/*
 * Let the loop send WATCHDOG=1 when the service manager asked for it
 * ($WATCHDOG_USEC, $WATCHDOG_PID): the first ping is sent now, then every
 * half interval or so while the loop iterates. ret_active (optional) says
 * whether the watchdog is on.
 */
int floe_event_enable_watchdog(sd_event *e, bool *ret_active);

/*
 * Timers on CLOCK_MONOTONIC. accuracy is how late the timer may fire in µs;
 * 0 selects sd-event's default of 250 ms, 1 the highest precision.
 * ret NULL makes the source floating (owned and freed by the loop).
 */

/* One-shot, usec from now. cb NULL exits the loop with (int)(intptr_t)userdata. */
int floe_event_add_timer(sd_event *e, uint64_t usec, uint64_t accuracy, sd_event_time_handler_t cb,
                         void *userdata, sd_event_source **ret);

/*
 * Periodic: first fires interval_usec from now, then re-arms itself on a fixed
 * phase (no drift; ticks missed while the loop was stalled are skipped).
 * cb gets the scheduled time and userdata. Inside cb the source is already
 * re-armed: sd_event_source_set_enabled(s, SD_EVENT_OFF) stops it; returning a
 * negative errno disables it too (sd-event semantics). The source's own
 * userdata is internal: do not replace it.
 */
int floe_event_add_periodic(sd_event *e, uint64_t interval_usec, uint64_t accuracy,
                            sd_event_time_handler_t cb, void *userdata, sd_event_source **ret);
/* Same, each tick delayed by a random 0..jitter_usec (spreads a fleet's uploads). */
int floe_event_add_periodic_full(sd_event *e, uint64_t interval_usec, uint64_t jitter_usec,
                                 uint64_t accuracy, sd_event_time_handler_t cb, void *userdata,
                                 sd_event_source **ret);

/*
 * sd_notify(3) messages. All return 0 without doing anything when
 * $NOTIFY_SOCKET is unset, 0 when sent, or a negative errno. They never unset
 * the environment (the watchdog needs it).
 */
#define FLOE_NOTIFY_STATUS_MAX 256

/* "READY=1" plus "\nSTATUS=<status>" unless status is NULL. Also ends a reload. */
int floe_notify_ready(const char *status);
/* "STATUS=..." as one line: control characters become spaces, text longer
 * than FLOE_NOTIFY_STATUS_MAX bytes is cut and ends in "…". */
int floe_notify_status(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* "RELOADING=1\nMONOTONIC_USEC=<now>" (the latter is what systemd >= 253 checks). */
int floe_notify_reloading(void);
/* "STOPPING=1". */
int floe_notify_stopping(void);
/* "EXTEND_TIMEOUT_USEC=<usec>" during slow start-up (enrollment). */
int floe_notify_extend_timeout(uint64_t usec);
