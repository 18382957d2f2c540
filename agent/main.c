/* SPDX-License-Identifier: Apache-2.0 */
/* floe-agent: the gateway daemon, its configuration check and its status. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "enroll-client.h"
#include "floe-log.h"
#include "floe-mqtt.h"
#include "floe-version.h"

/* libmosquitto reads each packet of the local broker with three or four read() calls:
 * this definition, which the process's libraries call instead of libc's, serves them from
 * floe-mqtt's buffer (docs/agent.md, "Memory and CPU"); every other read() goes to the
 * kernel as it is. */
ssize_t read(int fd, void *buf, size_t n)
{
        return floe_mqtt_read(fd, buf, n);
}

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: floe-agent [--config FILE]          run the agent\n"
                "       floe-agent --check-config [--config FILE]\n"
                "       floe-agent status [--config FILE]    what the running agent reports\n"
                "       floe-agent enroll [--config FILE] [--identity ID] [--token T] [--force]\n"
                "                                            get a device certificate by claim\n"
                "       floe-agent --version\n"
                "The configuration is FILE (default " AGENT_CONFIG_DEFAULT
                ") and FILE.d/*.conf.\n");
}

struct metric {
        char name[96];
        char labels[160];
        double v;
};

/* Reads the agent's textfile-collector file: "name{labels} value" lines. */
static int read_metrics(const char *path, struct metric *m, size_t max, size_t *ret_n)
{
        FILE *f = fopen(path, "re");
        char line[512];
        size_t n = 0;

        if (!f)
                return -errno;
        while (n < max && fgets(line, sizeof(line), f)) {
                char *sp, *brace;

                if (line[0] == '#' || !(sp = strrchr(line, ' ')))
                        continue;
                *sp = '\0';
                m[n].v = strtod(sp + 1, NULL);
                m[n].labels[0] = '\0';
                brace = strchr(line, '{');
                if (brace) {
                        *brace = '\0';
                        snprintf(m[n].labels, sizeof(m[n].labels), "%.159s", brace + 1);
                        m[n].labels[strcspn(m[n].labels, "}")] = '\0';
                }
                snprintf(m[n].name, sizeof(m[n].name), "%.95s", line);
                n++;
        }
        fclose(f);
        *ret_n = n;
        return 0;
}

static double get(const struct metric *m, size_t n, const char *name, const char *labels)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(m[i].name, name) == 0 && (!labels || strcmp(m[i].labels, labels) == 0))
                        return m[i].v;
        return -1;
}

static const char *utc(double t, char *buf, size_t size)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm))
                snprintf(buf, size, "never");
        return buf;
}

/* [enroll]: the certificate's state, next renewal and renewal counts. */
static void status_certificate(const struct metric *m, size_t n)
{
        char when[64];
        double at;

        for (size_t i = 0; i < n; i++)
                if (strcmp(m[i].name, "floe_agent_certificate_state") == 0 && m[i].v > 0)
                        printf("%-26s %.*s\n", "certificate", (int)strcspn(m[i].labels + 7, "\""),
                               m[i].labels + 7);
        at = get(m, n, "floe_agent_certificate_renewal_timestamp_seconds", NULL);
        if (at > 0)
                printf("%-26s %s\n", "next renewal", utc(at, when, sizeof(when)));
        if (get(m, n, "floe_agent_certificate_renewals_total", NULL) >= 0)
                printf("%-26s %.0f renewed, %.0f failed; %.0f enrolled (%.0f requests)\n",
                       "certificate renewals",
                       get(m, n, "floe_agent_certificate_renewals_total", NULL),
                       get(m, n, "floe_agent_certificate_renewal_failures_total", NULL),
                       get(m, n, "floe_agent_enrollments_total", NULL),
                       get(m, n, "floe_agent_enrollment_attempts_total", NULL));
}

static int cmd_status(const char *config)
{
        static struct metric m[256];
        struct floe_config *cfg;
        struct agent_settings s;
        char when[64] = "never";
        double last, days;
        size_t n = 0;
        int r;

        if (agent_load_config(config, &cfg, &s) < 0)
                return 1;
        r = read_metrics(s.metrics_file, m, 256, &n);
        if (r < 0) {
                fprintf(stderr, "floe-agent: %s: %s (is the agent running?)\n", s.metrics_file,
                        strerror(-r));
                floe_config_free(cfg);
                return 1;
        }
        last = get(m, n, "floe_agent_last_ack_timestamp_seconds", NULL);
        if (last > 0) {
                time_t t = (time_t)last;
                struct tm tm;

                if (gmtime_r(&t, &tm))
                        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
        }
        printf("%-26s %s\n", "identity", s.identity);
        printf("%-26s %s\n", "uplink",
               get(m, n, "floe_agent_uplink_connected", NULL) > 0 ? "connected" : "disconnected");
        printf("%-26s %s:%" PRId64 "\n", "broker", s.uplink_host, s.uplink_port);
        printf("%-26s %.0f batches, %.0f events, %.0f bytes\n", "outbox queue",
               get(m, n, "floe_agent_outbox_batches", NULL),
               get(m, n, "floe_agent_outbox_events", NULL),
               get(m, n, "floe_agent_outbox_bytes", NULL));
        printf("%-26s %.0f batches (%.0f events) dropped, %.0f rejected\n", "outbox drops",
               get(m, n, "floe_agent_outbox_dropped_batches_total", NULL),
               get(m, n, "floe_agent_outbox_dropped_events_total", NULL),
               get(m, n, "floe_agent_outbox_rejected_batches_total", NULL));
        printf("%-26s %.0f accepted, %.0f refused (ring full)\n", "readings",
               get(m, n, "floe_agent_readings_accepted_total", NULL),
               get(m, n, "floe_agent_ring_full_total", NULL));
        printf("%-26s %.0f late, %.0f implausible timestamps\n", "windows",
               get(m, n, "floe_agent_late_total", NULL),
               get(m, n, "floe_agent_implausible_total", NULL));
        printf("%-26s %.0f sent, %.0f resent, %.0f acked, %.0f duplicates, %.0f rejected\n",
               "batches", get(m, n, "floe_agent_uplink_sent_total", NULL),
               get(m, n, "floe_agent_uplink_resent_total", NULL),
               get(m, n, "floe_agent_uplink_acked_total", NULL),
               get(m, n, "floe_agent_uplink_duplicates_total", NULL),
               get(m, n, "floe_agent_uplink_rejected_total", NULL));
        printf("%-26s %s\n", "last ack", when);
        days = get(m, n, "floe_agent_certificate_days_left", NULL);
        if (days != -1)
                printf("%-26s %.1f days\n", "certificate expires in", days);
        status_certificate(m, n);
        for (size_t i = 0; i < n; i++)
                if (strcmp(m[i].name, "floe_agent_payloads_rejected_total") == 0 && m[i].v > 0)
                        printf("%-26s %.0f (%s)\n", "payloads refused", m[i].v, m[i].labels);
        floe_config_free(cfg);
        return 0;
}

/* --check-config with [enroll]: what the agent will do about its certificate. */
static void check_certificate(const struct agent_settings *s)
{
        const char *fix = !s->enroll_claim ? "no [enroll] claim to enroll with"
                          : s->enroll_auto ? "[enroll] will request one at start"
                                           : "run `floe-agent enroll`";
        enum agent_cert_problem p = AGENT_CERT_MISSING;
        struct agent_cert_info info;
        char why[200] = "", until[64];
        int r;

        if (s->cert_missing) {
                printf("%s: no device certificate yet: %s\n", s->cert_file, fix);
                return;
        }
        r = agent_enroll_provider_load(s->key_provider);
        if (r == 0)
                r = agent_enroll_check_files(s->cert_file, s->key_file, s->key_propq, s->identity,
                                             s->enroll_ca_file, (int64_t)time(NULL), &p, &info, why,
                                             sizeof(why));
        if (r == 0)
                printf("%s: serial %s, valid until %s\n", s->cert_file, info.serial,
                       utc((double)info.not_after, until, sizeof(until)));
        else if (r == -EBADMSG)
                printf("%s: not usable (%s: %s): %s\n", s->cert_file, agent_cert_problem_name(p),
                       why,
                       p == AGENT_CERT_NOT_YET_VALID ? "used anyway (is the clock set?)" : fix);
        else
                printf("%s: cannot check it: %s\n", s->cert_file, strerror(-r));
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"check-config", no_argument, NULL, 'C'},
                {"version", no_argument, NULL, 'V'},
                {"help", no_argument, NULL, 'h'},
                {"identity", required_argument, NULL, 'i'},
                {"token", required_argument, NULL, 't'},
                {"force", no_argument, NULL, 'f'},
                {0},
        };
        const char *config = AGENT_CONFIG_DEFAULT, *identity = NULL, *token = NULL;
        bool check = false, force = false, enroll_opts = false;
        struct agent *a;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        config = optarg;
                        break;
                case 'C':
                        check = true;
                        break;
                case 'V':
                        printf("floe-agent %s\n", FLOE_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'i':
                        identity = optarg;
                        enroll_opts = true;
                        break;
                case 't':
                        token = optarg;
                        enroll_opts = true;
                        break;
                case 'f':
                        force = true;
                        enroll_opts = true;
                        break;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        floe_log_open("floe-agent");
        if (optind < argc) {
                if (strcmp(argv[optind], "enroll") == 0 && optind + 1 == argc && !check)
                        return agent_enroll_command(config, identity, token, force);
                if (strcmp(argv[optind], "status") == 0 && optind + 1 == argc && !enroll_opts)
                        return cmd_status(config);
                usage(stderr);
                return 2;
        }
        if (enroll_opts) {
                usage(stderr);
                return 2;
        }
        if (check) {
                struct floe_config *cfg;
                struct agent_settings s;

                if (agent_load_config(config, &cfg, &s) < 0)
                        return 1;
                printf("%s: configuration valid (identity %s, board %s)\n", config, s.identity,
                       s.board);
                if (s.uplink_enabled && s.enroll_enabled)
                        check_certificate(&s);
                floe_config_free(cfg);
                return 0;
        }
        r = agent_new(config, &a);
        if (r < 0)
                return 1;
        r = agent_run(a);
        agent_free(a);
        return r;
}
