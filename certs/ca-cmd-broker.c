/* SPDX-License-Identifier: Apache-2.0 */
/* floe-ca broker-config. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "ca-broker.h"
#include "ca-cmd.h"

int ca_cmd_broker_config(const struct ca_cmd_globals *g, int argc, char **argv)
{
        static const struct option opts[] = {
                {"out", required_argument, NULL, 'O'},
                {"hostname", required_argument, NULL, 'H'},
                {"ports", required_argument, NULL, 'p'},
                {"bind", required_argument, NULL, 'b'},
                {"service-bind", required_argument, NULL, 'B'},
                {"install-dir", required_argument, NULL, 'I'},
                {"user", required_argument, NULL, 'u'},
                {"uploader", required_argument, NULL, 'U'},
                {"enrolld", required_argument, NULL, 'E'},
                {0},
        };
        struct ca_broker_opts o = {.now = g->now};
        struct ca_dir *d = NULL;
        int c, r, issued = 0;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'O':
                        o.out_dir = optarg;
                        break;
                case 'H':
                        o.hostnames = optarg;
                        break;
                case 'p':
                        if (ca_broker_parse_ports(optarg, &o) < 0)
                                return ca_cmd_bad_usage("--ports: DEVICE,CLAIM,SERVICE, e.g. "
                                                        "8883,8884,8885");
                        break;
                case 'b':
                        o.bind = optarg;
                        break;
                case 'B':
                        o.service_bind = optarg;
                        break;
                case 'I':
                        o.install_dir = optarg;
                        break;
                case 'u':
                        o.user = optarg;
                        break;
                case 'U':
                        o.uploader = optarg;
                        break;
                case 'E':
                        o.enrolld = optarg;
                        break;
                default:
                        return 2;
                }
        }
        if (optind != argc || !o.out_dir)
                return ca_cmd_bad_usage("broker-config takes --out DIR and no arguments");
        if (ca_cmd_open_dir(g, &d))
                return 1;
        r = ca_broker_config_write(d, &o, &issued);
        ca_dir_close(d);
        if (r == -EDESTADDRREQ)
                return ca_cmd_fail(0, "%s has no broker certificate yet: give --hostname",
                                   o.out_dir);
        if (r == -EINVAL)
                return ca_cmd_fail(
                        0, "broker-config: invalid --hostname, --install-dir, --bind, "
                           "--service-bind, --user, --uploader or --enrolld (names are lower "
                           "case, paths absolute, no spaces or '#')");
        if (r < 0)
                return ca_cmd_fail(r, "broker-config %s", o.out_dir);
        printf("Broker configuration written to %s/%s%s.\n"
               "mosquitto must be able to read %s/%s.key (chgrp mosquitto, chmod 0640).\n"
               "After floe-ca crl --out %s, send mosquitto SIGHUP to load the new CRLs.\n",
               o.out_dir, CA_BROKER_CONF, issued ? " with a new broker certificate" : "", o.out_dir,
               CA_BROKER_CERT_STEM, o.out_dir);
        return 0;
}
