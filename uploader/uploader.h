/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * floe-uploader (docs/uploader.md): batches from MQTT, buffered per table and tenant, written
 * as Parquet, committed to floe.events and floe.aggregates together with the ledger, and
 * acknowledged to the agents after the commit.
 */

#include "floe-version.h"

struct upl;

/* Loads the configuration and sets everything up; errors are logged. */
int upl_new(const char *config_path, struct upl **ret);
/* The event loop until SIGTERM; 0 or a negative errno. */
int upl_run(struct upl *u);
struct upl *upl_free(struct upl *u);

/* `floe-uploader status`: what the running daemon's /metrics says, as a table. Exit status. */
int upl_status_command(const char *config_path);
/* `floe-uploader --check-config`. Exit status. */
int upl_check_config_command(const char *config_path);
