/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * `floe-lake catalog ...`: the SQL catalog (catalog.h) from the command line, for operators
 * and for tests/system/test_catalog.py. argv[0] is the command group's name ("catalog");
 * options are parsed from optind 0. Prints to stdout and stderr; never prints the catalog
 * location (a PostgreSQL URI may hold a password).
 *
 * Returns the exit status: 0 success, 1 failure (the message says why), 2 bad usage,
 * 3 exists already, 4 not registered, 5 a commit lost its compare-and-swap (-ESTALE),
 * 6 the database was busy (-EBUSY).
 */
int lake_catalog_cli(int argc, char **argv);
