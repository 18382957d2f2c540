/* SPDX-License-Identifier: Apache-2.0 */
/* floe-lake: the lake's command line; one subcommand per table entry. */
#include <stdio.h>
#include <string.h>

#include "catalog-cli.h"
#include "ice-cli.h"
#include "parquet-cli.h"
#include "store-cli.h"

static int table_cmd(int argc, char **argv)
{
        return ice_cli(argc, argv);
}

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *help;
} commands[] = {
        {"create", table_cmd, "create an Iceberg v2 table"},
        {"add-files", table_cmd, "append Parquet files (parquet-write reports) in one commit"},
        {"snapshots", table_cmd, "list a table's snapshots"},
        {"files", table_cmd, "list the data files of a snapshot"},
        {"schema", table_cmd, "print a table's current schema"},
        {"expire", table_cmd, "expire snapshots by age and count, delete what they alone used"},
        {"orphans", table_cmd, "find (and remove) files no snapshot references"},
        {"parquet-write", parquet_cli_write, "write NDJSON rows as a Parquet file"},
        {"parquet-footer", parquet_cli_footer, "print a Parquet file's footer as JSON"},
        {"store", lake_store_cli, "objects in a file:// or s3:// store (put, get, list, ...)"},
        {"catalog", lake_catalog_cli, "the SQL catalog (namespaces, tables, commits)"},
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: floe-lake COMMAND [ARGS...]\n\nCommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].help);
        fprintf(f, "\nfloe-lake COMMAND --help shows a command's options.\n");
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                usage(stdout);
                return 0;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].run(argc - 1, argv + 1);
        fprintf(stderr, "floe-lake: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
}
