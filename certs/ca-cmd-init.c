/* SPDX-License-Identifier: Apache-2.0 */
/* floe-ca init and rotate: making CAs. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ca-cmd.h"
#include "registry.h"

int ca_cmd_init(const struct ca_cmd_globals *g, int argc, char **argv)
{
        static const struct option opts[] = {
                {"key-type", required_argument, NULL, 'k'},
                {"organization", required_argument, NULL, 'o'},
                {"root-validity", required_argument, NULL, 'R'},
                {"intermediate-validity", required_argument, NULL, 'I'},
                {"crl-next-update", required_argument, NULL, 'N'},
                {"registry", required_argument, NULL, 'r'},
                {0},
        };
        struct ca_settings s;
        int c, r;

        ca_settings_default(&s);
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'k':
                        r = ca_key_type_from_name(optarg);
                        if (r < 0)
                                return ca_cmd_bad_usage("--key-type: p256, p384 or rsa3072");
                        s.key_type = (enum ca_key_type)r;
                        break;
                case 'o':
                        if (strlen(optarg) >= sizeof(s.organization) ||
                            ca_name_check(CA_KIND_CA, optarg) < 0)
                                return ca_cmd_bad_usage("--organization: %s",
                                                        ca_name_problem(CA_KIND_CA, optarg)
                                                                ?: "too long");
                        memcpy(s.organization, optarg, strlen(optarg) + 1);
                        break;
                case 'R':
                        if (ca_cmd_parse_seconds("--root-validity", optarg, &s.root_validity_s))
                                return 2;
                        break;
                case 'I':
                        if (ca_cmd_parse_seconds("--intermediate-validity", optarg,
                                                 &s.intermediate_validity_s))
                                return 2;
                        break;
                case 'N':
                        if (ca_cmd_parse_seconds("--crl-next-update", optarg, &s.crl_next_update_s))
                                return 2;
                        break;
                case 'r':
                        if (ca_registry_location_problem(optarg))
                                return ca_cmd_bad_usage("--registry: %s",
                                                        ca_registry_location_problem(optarg));
                        memcpy(s.registry, optarg, strlen(optarg) + 1);
                        break;
                default:
                        return 2;
                }
        }
        if (optind != argc)
                return ca_cmd_bad_usage("init takes no arguments");
        if (s.intermediate_validity_s > s.root_validity_s)
                s.intermediate_validity_s = s.root_validity_s;
        r = ca_dir_init(g->dir, &s, g->now);
        if (r == -EEXIST)
                return ca_cmd_fail(0, "%s exists and is not empty: refusing to overwrite a CA",
                                   g->dir);
        if (r == -ENOTEMPTY)
                return ca_cmd_fail(0,
                                   "init %s: the registry at --registry holds certificates "
                                   "already: refusing to mix two CAs in one registry",
                                   g->dir);
        if (r < 0 && ca_cmd_registry_problem(r))
                return ca_cmd_fail(0, "init %s: %s", g->dir, ca_cmd_registry_problem(r));
        if (r < 0 && *s.registry) {
                char why[512] = "";
                struct registry *reg = NULL;

                /* the reason (server, login) without the location, which may hold a password */
                if (registry_open_explain(s.registry, why, sizeof(why), &reg) < 0 && why[0])
                        return ca_cmd_fail(0, "init %s: registry: %s", g->dir, why);
                registry_close(reg);
                return ca_cmd_fail(r, "init %s (registry at --registry)", g->dir);
        }
        if (r < 0)
                return ca_cmd_fail(r, "init %s", g->dir);
        printf("CA directory %s created (%s keys): root, device, server, claim and service CAs.\n"
               "Keep %s/root/ca.key offline; it is needed again only to re-issue the\n"
               "intermediates or the root CRL.\n",
               g->dir, ca_key_type_name(s.key_type), g->dir);
        return 0;
}

/* -- rotate ------------------------------------------------------------------------------ */

static int rotate_error(int r, const struct ca_cmd_globals *g, const char *role)
{
        switch (r) {
        case -ENOENT:
                return ca_cmd_fail(0,
                                   "cannot rotate the %s CA: the root key is not in the CA "
                                   "directory (%s/root/ca.key, kept offline?); bring it back "
                                   "for the rotation",
                                   role, g->dir);
        case -ENOKEY:
                return ca_cmd_fail(0,
                                   "cannot rotate the %s CA: its key (%s/ca.key) or that of an "
                                   "earlier generation with valid certificates (%s/gen-N/ca.key) "
                                   "is missing; it signs the CRL of its certificates",
                                   role, role, role);
        case -EEXIST:
                return ca_cmd_fail(0,
                                   "cannot rotate the %s CA: %s/%s/gen-N of the current "
                                   "generation exists and holds another CA",
                                   role, g->dir, role);
        case -E2BIG:
                return ca_cmd_fail(0, "cannot rotate the %s CA: more than %d generations", role,
                                   CA_GENERATIONS_MAX);
        case -ERANGE:
                return ca_cmd_fail(0, "cannot rotate the %s CA: the root CA expires within a day",
                                   role);
        case -ENAMETOOLONG:
                return ca_cmd_fail(0,
                                   "cannot rotate the %s CA: [ca] organization is too long for "
                                   "the name \"<organization> %s CA <generation>\" (64 bytes)",
                                   role, role);
        default:
                if (ca_cmd_role_problem(r))
                        return ca_cmd_fail(0, "cannot rotate the %s CA: a CA key: %s", role,
                                           ca_cmd_role_problem(r));
                return ca_cmd_fail(r, "cannot rotate the %s CA", role);
        }
}

int ca_cmd_rotate(const struct ca_cmd_globals *g, int argc, char **argv)
{
        static const struct option opts[] = {
                {"ca", required_argument, NULL, 'a'},
                {"key-type", required_argument, NULL, 'k'},
                {0},
        };
        struct ca_rotated out;
        struct ca_dir *d = NULL;
        const char *name;
        char when[32];
        int role = -1, key_type = -1, c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        role = ca_role_from_name(optarg);
                        if (role != CA_ROLE_DEVICE && role != CA_ROLE_SERVER)
                                return ca_cmd_bad_usage("--ca: device or server (the "
                                                        "intermediates)");
                        break;
                case 'k':
                        key_type = ca_key_type_from_name(optarg);
                        if (key_type < 0)
                                return ca_cmd_bad_usage("--key-type: p256, p384 or rsa3072");
                        break;
                default:
                        return 2;
                }
        }
        if (optind != argc || role < 0)
                return ca_cmd_bad_usage("rotate takes --ca device|server and no arguments");
        if (ca_cmd_open_dir(g, &d))
                return 1;
        if (key_type < 0)
                key_type = (int)ca_dir_settings(d)->key_type;
        name = ca_role_name((enum ca_role)role);
        r = ca_dir_rotate(d, (enum ca_role)role, (enum ca_key_type)key_type, g->now, &out);
        ca_dir_close(d);
        if (r < 0)
                return rotate_error(r, g, name);
        printf("The %s CA is now generation %u: \"%s\", %s key\n", name, out.generation, out.cn,
               ca_key_type_name((enum ca_key_type)key_type));
        printf("  serial     %s\n", out.serial);
        printf("  not after  %s\n", ca_format_time(out.not_after, when, sizeof(when)));
        printf("  previous   generation %u, kept in %s/%s/gen-%u (%zu earlier generation%s "
               "with valid certificates)\n",
               out.previous, g->dir, name, out.previous, out.live, out.live == 1 ? "" : "s");
        if (role == CA_ROLE_DEVICE)
                printf("Next: floe-ca crl --out BROKER and floe-ca broker-config --out BROKER ...\n"
                       "(the broker then trusts every generation), reload mosquitto, then reload\n"
                       "floe-enrolld: it signs with the new CA from then on "
                       "(docs/enrollment.md).\n");
        else
                printf("The broker keeps its certificate of generation %u until it gets a new\n"
                       "one: remove BROKER/broker.{key,pem,chain.pem}, run floe-ca broker-config\n"
                       "--out BROKER --hostname ... and reload mosquitto.\n",
                       out.previous);
        return 0;
}
