/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The floe-agent daemon: every part wired onto one sd-event loop. */

#include "floe-config.h"
#include "settings.h"

struct agent;

/* Opens the board, ring, windows, outbox (replaying the ring) and the two
 * MQTT connections; nothing is connected until agent_run(). */
int agent_new(const char *config_path, struct agent **ret);
struct agent *agent_free(struct agent *a);

/* Runs until SIGTERM/SIGINT; returns the exit status. */
int agent_run(struct agent *a);

/* Loads the configuration the way the daemon does and reports the first
 * error as FILE:LINE: message. */
int agent_load_config(const char *path, struct floe_config **ret_cfg,
                      struct agent_settings *ret_settings);
