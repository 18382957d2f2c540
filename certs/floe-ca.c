/* SPDX-License-Identifier: Apache-2.0 */
/* floe-ca: the operator's certificate authority tool (docs/floe-ca.md); commands in ca-cmd-*.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca-cmd.h"
#include "floe-alloc.h"
#include "floe-version.h"

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: floe-ca [--dir DIR] [--config FILE] COMMAND [OPTIONS]\n"
                "The CA directory is DIR (or $FLOE_CA_DIR); its settings DIR/floe-ca.conf.\n"
                "\n"
                "Commands:\n"
                "  init [--key-type p256|p384|rsa3072] [--organization ORG]\n"
                "       [--root-validity D] [--intermediate-validity D] [--crl-next-update D]\n"
                "       [--registry LOCATION]       SQLite path or postgresql://...\n"
                "  rotate --ca device|server [--key-type p256|p384|rsa3072]\n"
                "                                   new intermediate from the root key; the\n"
                "                                   previous one is kept as ROLE/gen-N\n"
                "  issue-server NAME [--san dns:NAME,ip:ADDR,...] [--validity D] [--csr FILE]\n"
                "       [--out DIR]                 broker certificate (serverAuth)\n"
                "  issue-server NAME --client ...   service identity (clientAuth, service CA);\n"
                "                                   same as issue-service NAME\n"
                "  issue-device IDENTITY [--validity D] [--csr FILE] [--out DIR]\n"
                "  issue-claim ID [--tenant T] [--allow ID,...] [--allow-file FILE] [--reusable]\n"
                "       [--tokens N] [--tokens-for ID,...] [--token-validity D]\n"
                "       [--tokens-out FILE] [--validity D] [--csr FILE] [--out DIR]\n"
                "  revoke --serial HEX | --identity NAME [--reason REASON]\n"
                "  crl [--ca ROLE] [--next-update D] [--out DIR]\n"
                "  list [--json] [--identity NAME] [--kind KIND]\n"
                "  broker-config --out DIR [--hostname H,...] [--ports DEVICE,CLAIM,SERVICE]\n"
                "       [--bind ADDR] [--service-bind ADDR] [--install-dir PATH] [--user USER]\n"
                "       [--uploader NAME] [--enrolld NAME]\n"
                "Durations take units: 90d, 12h, 30min, 45s.\n");
}

static const struct {
        const char *name;
        ca_cmd_fn fn;
} commands[] = {
        {"init", ca_cmd_init},
        {"rotate", ca_cmd_rotate},
        {"issue-server", ca_cmd_issue_server},
        {"issue-service", ca_cmd_issue_service},
        {"issue-device", ca_cmd_issue_device},
        {"issue-claim", ca_cmd_issue_claim},
        {"revoke", ca_cmd_revoke},
        {"crl", ca_cmd_crl},
        {"list", ca_cmd_list},
        {"broker-config", ca_cmd_broker_config},
};

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"dir", required_argument, NULL, 'd'},
                {"config", required_argument, NULL, 'c'},
                {"version", no_argument, NULL, 'V'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct ca_cmd_globals g = {.dir = getenv("FLOE_CA_DIR")};
        int c;

        while ((c = getopt_long(argc, argv, "+d:c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        g.dir = optarg;
                        break;
                case 'c':
                        g.config = optarg;
                        break;
                case 'V':
                        printf("floe-ca %s\n", FLOE_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        if (!g.dir || !*g.dir)
                return ca_cmd_bad_usage("no CA directory: give --dir DIR or set FLOE_CA_DIR");
        g.now = (int64_t)time(NULL);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (strcmp(argv[optind], commands[i].name) == 0) {
                        int sub_argc = argc - optind;
                        char **sub_argv = argv + optind;

                        optind = 0; /* glibc: restart option parsing */
                        return commands[i].fn(&g, sub_argc, sub_argv);
                }
        }
        return ca_cmd_bad_usage("unknown command \"%s\"", argv[optind]);
}
