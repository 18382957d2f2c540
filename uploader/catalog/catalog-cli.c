/* SPDX-License-Identifier: Apache-2.0 */
/* floe-lake catalog: the SQL catalog from the command line (catalog-cli.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "catalog-cli.h"
#include "catalog.h"
#include "floe-alloc.h"
#include "floe-config.h"

#define MAX_STATEMENTS 16
#define MAX_ARGS       32

static const char usage[] =
        "usage: floe-lake catalog [--name CATALOG] LOCATION COMMAND [ARG...]\n"
        "\n"
        "LOCATION is a SQLite file (PATH or sqlite:PATH) or postgresql://... Commands:\n"
        "  create-namespace NS           add a namespace (dot-separated levels)\n"
        "  create NS TABLE LOCATION      register a table at its first metadata file\n"
        "  load NS TABLE                 print the table's metadata location\n"
        "  drop NS TABLE                 unregister a table (its files stay)\n"
        "  list [NS]                     NS<TAB>TABLE<TAB>LOCATION per table\n"
        "  commit NS TABLE NEW --expect OLD [STATEMENT...]\n"
        "                                swap the metadata location from OLD to NEW, running\n"
        "                                the statements in the same transaction first\n"
        "  run STATEMENT...              run statements in one transaction\n"
        "\n"
        "A STATEMENT is --exec SQL [--arg VALUE]... [--columns N]: SQL with '?' placeholders,\n"
        "a text value for each, and N columns of each row printed, tab-separated (\\N for\n"
        "NULL).\n"
        "\n"
        "Options:\n"
        "  --name CATALOG                the catalog_name column (default floe)\n"
        "\n"
        "Exit status: 0 success, 1 failure, 2 bad usage, 3 exists already, 4 not registered,\n"
        "5 commit conflict (the location is no longer OLD), 6 database busy.\n";

struct statement {
        const char *sql;
        struct lake_param args[MAX_ARGS];
        size_t nargs;
        unsigned ncols;
};

struct script {
        struct statement st[MAX_STATEMENTS];
        size_t n;
};

static int bad_usage(const char *fmt, const char *arg)
{
        fputs("floe-lake catalog: ", stderr);
        fprintf(stderr, fmt, arg);
        fputs(" (floe-lake catalog --help)\n", stderr);
        return 2;
}

static int exit_status(int r)
{
        switch (r) {
        case 0:
                return 0;
        case -EEXIST:
                return 3;
        case -ENOENT:
                return 4;
        case -ESTALE:
                return 5;
        case -EBUSY:
                return 6;
        default:
                return 1;
        }
}

static int fail(const struct lake_catalog *c, int r, const char *what)
{
        const char *msg = c ? lake_catalog_error(c) : "";

        fprintf(stderr, "floe-lake catalog: %s: %s\n", what, msg[0] ? msg : strerror(-r));
        return exit_status(r);
}

/* Statement options from argv[*i] on (stops at anything else): 0, or the exit status 2. */
static int parse_statements(int argc, char **argv, int *i, struct script *sc)
{
        uint64_t v;

        while (*i < argc) {
                const char *a = argv[*i];
                struct statement *st = sc->n ? &sc->st[sc->n - 1] : NULL;

                if (strcmp(a, "--exec") == 0 && *i + 1 < argc) {
                        if (sc->n == MAX_STATEMENTS)
                                return bad_usage("%s: too many statements", a);
                        sc->st[sc->n++] = (struct statement){.sql = argv[*i + 1]};
                } else if (strcmp(a, "--arg") == 0 && *i + 1 < argc) {
                        if (!st || st->nargs == MAX_ARGS)
                                return bad_usage("%s: no --exec before it, or too many", a);
                        st->args[st->nargs++] =
                                (struct lake_param){.type = LAKE_PARAM_TEXT, .text = argv[*i + 1]};
                } else if (strcmp(a, "--columns") == 0 && *i + 1 < argc) {
                        if (!st || floe_parse_uint64(argv[*i + 1], &v) < 0 || v > MAX_ARGS)
                                return bad_usage("--columns: expected 0..32 after an --exec, got "
                                                 "\"%s\"",
                                                 argv[*i + 1]);
                        st->ncols = (unsigned)v;
                } else {
                        return 0;
                }
                *i += 2;
        }
        return 0;
}

static int print_row(void *ud, int ncols, const char *const *cols)
{
        (void)ud;
        for (int i = 0; i < ncols; i++)
                printf("%s%s", i ? "\t" : "", cols[i] ? cols[i] : "\\N");
        return printf("\n") < 0 ? -EIO : 0;
}

static int run_script(void *ud, struct lake_catalog_txn *t)
{
        const struct script *sc = ud;

        for (size_t i = 0; i < sc->n; i++) {
                const struct statement *st = &sc->st[i];
                int r = lake_catalog_txn_exec(t, st->sql, st->args, st->nargs, st->ncols,
                                              st->ncols ? print_row : NULL, NULL, NULL);

                if (r < 0)
                        return r;
        }
        return 0;
}

static int print_table(void *ud, const char *ns, const char *table, const char *location)
{
        (void)ud;
        return printf("%s\t%s\t%s\n", ns, table, location ? location : "\\N") < 0 ? -EIO : 0;
}

static int cmd_commit(struct lake_catalog *c, int argc, char **argv)
{
        const char *pos[3], *expect = NULL;
        struct script sc = {.n = 0};
        int npos = 0, i = 1, r;

        while (i < argc) {
                if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
                        expect = argv[i + 1];
                        i += 2;
                } else if (strncmp(argv[i], "--", 2) == 0) {
                        int before = i;

                        r = parse_statements(argc, argv, &i, &sc);
                        if (r)
                                return r;
                        if (i == before)
                                return bad_usage("commit: unknown option \"%s\"", argv[i]);
                } else {
                        if (npos == 3)
                                return bad_usage("commit: extra argument \"%s\"", argv[i]);
                        pos[npos++] = argv[i++];
                }
        }
        if (npos != 3 || !expect)
                return bad_usage("%s: expected NS TABLE NEW --expect OLD", "commit");
        r = lake_catalog_commit(c, pos[0], pos[1], expect, pos[2], sc.n ? run_script : NULL, &sc);
        fflush(stdout);
        return r < 0 ? fail(c, r, "commit") : 0;
}

static int cmd_run(struct lake_catalog *c, int argc, char **argv)
{
        struct script sc = {.n = 0};
        int i = 1, r;

        r = parse_statements(argc, argv, &i, &sc);
        if (r)
                return r;
        if (i < argc || sc.n == 0)
                return bad_usage("%s: expected --exec SQL [--arg V]... [--columns N]...", "run");
        r = lake_catalog_run(c, run_script, &sc);
        fflush(stdout);
        return r < 0 ? fail(c, r, "run") : 0;
}

static int run(struct lake_catalog *c, int argc, char **argv)
{
        const char *cmd = argv[0];
        char *loc = NULL;
        int r;

#define NEED(lo, hi)                                                            \
        do {                                                                    \
                if (argc - 1 < (lo) || argc - 1 > (hi))                         \
                        return bad_usage("%s: wrong number of arguments", cmd); \
        } while (0)
        if (strcmp(cmd, "create-namespace") == 0) {
                NEED(1, 1);
                r = lake_catalog_create_namespace(c, argv[1]);
                return r < 0 ? fail(c, r, cmd) : 0;
        }
        if (strcmp(cmd, "create") == 0) {
                NEED(3, 3);
                r = lake_catalog_create(c, argv[1], argv[2], argv[3]);
                return r < 0 ? fail(c, r, cmd) : 0;
        }
        if (strcmp(cmd, "load") == 0) {
                NEED(2, 2);
                r = lake_catalog_load(c, argv[1], argv[2], &loc);
                if (r < 0)
                        return fail(c, r, cmd);
                printf("%s\n", loc);
                floe_free(loc);
                return 0;
        }
        if (strcmp(cmd, "drop") == 0) {
                NEED(2, 2);
                r = lake_catalog_drop(c, argv[1], argv[2]);
                return r < 0 ? fail(c, r, cmd) : 0;
        }
        if (strcmp(cmd, "list") == 0) {
                NEED(0, 1);
                r = lake_catalog_list(c, argc > 1 ? argv[1] : NULL, print_table, NULL);
                if (fflush(stdout) != 0 && r >= 0)
                        r = -EIO;
                return r < 0 ? fail(c, r, cmd) : 0;
        }
        if (strcmp(cmd, "commit") == 0)
                return cmd_commit(c, argc, argv);
        if (strcmp(cmd, "run") == 0)
                return cmd_run(c, argc, argv);
#undef NEED
        return bad_usage("unknown command \"%s\"", cmd);
}

int lake_catalog_cli(int argc, char **argv)
{
        static const struct option opts[] = {
                {"name", required_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        struct lake_catalog *c = NULL;
        const char *name = NULL;
        char why[512];
        int opt, r;

        optind = 0; /* glibc: restart option parsing */
        while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
                switch (opt) {
                case 'n':
                        name = optarg;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                default:
                        return bad_usage("%s", "bad option");
                }
        }
        if (argc - optind < 2)
                return bad_usage("%s", "expected LOCATION COMMAND [ARG...]");
        r = lake_catalog_open_explain(argv[optind], name, why, sizeof(why), &c);
        if (r < 0) {
                fprintf(stderr, "floe-lake catalog: cannot open the catalog: %s\n",
                        why[0] ? why : strerror(-r));
                return exit_status(r) == 1 ? 1 : exit_status(r);
        }
        r = run(c, argc - optind - 1, argv + optind + 1);
        lake_catalog_close(c);
        return r;
}
