/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * floe-lake snapshots | files | schema. argv[0] is the command; the options follow
 * (--metadata PATH [--map FROM=TO] or --warehouse URL --table NS.TABLE [--catalog LOCATION],
 * --json, ...; docs/iceberg.md). Prints to stdout, errors to stderr; returns the exit status
 * (0, 1 on failure, 2 on bad usage).
 */

int ice_cli(int argc, char **argv);
