/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * `floe-lake store ...`: the object store (store.h) from the command line, for operators and
 * for tests/system/test_store.py. argv[0] is the command group's name ("store"); options are
 * parsed with getopt_long from optind 0. Prints to stdout and stderr.
 *
 * Returns the exit status: 0 success, 1 failure (the message says why), 2 bad usage,
 * 3 the key exists (put-if-absent lost), 4 no such key.
 */
int lake_store_cli(int argc, char **argv);
