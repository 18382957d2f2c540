/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * floe-lake's Parquet subcommands (docs/parquet.md). Each takes the argv of
 * its subcommand (argv[0] is its name) and returns the exit status:
 * 0 ok, 1 input rejected, 2 usage or I/O error.
 */

#include <jansson.h>

#include "parquet.h"

#define PARQUET_EXIT_REJECTED 1
#define PARQUET_EXIT_USAGE    2

int parquet_cli_write(int argc, char **argv);
int parquet_cli_footer(int argc, char **argv);

/* JSON forms (parquet-json.c). */
json_t *parquet_json_report(const struct parquet_report *r, const char *const *names);
json_t *parquet_json_footer(const struct parquet_footer *f, const struct parquet_report *r);
