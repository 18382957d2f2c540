/* SPDX-License-Identifier: Apache-2.0 */
/* floe-lake: the lake's command line; one subcommand per table entry. */
#include <stdio.h>
#include <string.h>

#include "catalog-cli.h"
#include "ice-cli.h"
#include "parquet-cli.h"
#include "floe-version.h"
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
        {"create", table_cmd, "create an Iceberg v2 table (--floe events|aggregates: floe's)"},
        {"import", table_cmd, "write NDJSON rows or floe batch files into tables, one commit"},
        {"append", table_cmd, "register existing Parquet files (stats from their footers)"},
        {"add-files", table_cmd, "append Parquet files (parquet-write reports) in one commit"},
        {"compact", table_cmd, "rewrite a partition's small files as larger ones (replace)"},
        {"verify", table_cmd, "check every manifest and file a table's metadata reaches"},
        {"snapshots", table_cmd, "list a table's snapshots"},
        {"files", table_cmd, "list the data files of a snapshot"},
        {"schema", table_cmd, "print a table's current schema"},
        {"expire", table_cmd, "expire snapshots by age and count, delete what they alone used"},
        {"orphans", table_cmd, "find (and remove) files no snapshot references"},
        {"tier", table_cmd, "move old partitions to colder roots, or S3 classes by lifecycle"},
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
        fprintf(f, "\nfloe-lake [-c CONFIG] COMMAND: [lake] warehouse, catalog and namespace "
                   "and [s3] options\nof CONFIG apply to the table commands (docs/lake.md).\n"
                   "floe-lake COMMAND --help shows a command's options; floe-lake --version "
                   "the version.\n");
}

int main(int argc, char **argv)
{
        /* -c FILE / --config FILE before the command: handed to it as its own option */
        if (argc >= 3 && (strcmp(argv[1], "-c") == 0 || strcmp(argv[1], "--config") == 0)) {
                char *opt = argv[1], *file = argv[2];

                if (argc < 4) {
                        usage(stderr);
                        return 2;
                }
                argv[1] = argv[3];
                argv[2] = opt;
                argv[3] = file;
                if (strcmp(argv[1], "store") == 0 || strcmp(argv[1], "catalog") == 0 ||
                    strncmp(argv[1], "parquet-", 8) == 0) {
                        fprintf(stderr, "floe-lake: --config applies to the table commands\n");
                        return 2;
                }
        }
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                usage(stdout);
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("floe-lake %s (build %s)\n", FLOE_VERSION, FLOE_BUILD);
                return 0;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].run(argc - 1, argv + 1);
        fprintf(stderr, "floe-lake: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
}
