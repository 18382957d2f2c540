/* SPDX-License-Identifier: Apache-2.0 */
/* `floe-uploader status` (the running daemon's /metrics as tables) and --check-config. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "floe-daemon.h"
#include "floe-log.h"
#include "ice-floe.h"
#include "upl-settings.h"
#include "uploader.h"

#define BODY_MAX    (64u << 20)
#define SAMPLES_MAX 65536

struct sample {
        char *name;   /* points into the body */
        char *labels; /* between the braces, "" if none */
        double v;
};

struct scrape {
        char *body;
        struct sample *s;
        size_t n;
};

/* GET /metrics from host:port, the body in *ret (floe_malloc). */
static int fetch(const char *host, int port, char **ret)
{
        struct sockaddr_storage ss = {0};
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        struct timeval tv = {.tv_sec = 5};
        char req[300], *buf = NULL, *body;
        size_t len = 0, cap = 0;
        socklen_t sl;
        int fd, r = 0;

        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
                in4->sin_family = AF_INET;
                in4->sin_port = htons((uint16_t)port);
                sl = sizeof(*in4);
        } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t)port);
                sl = sizeof(*in6);
        } else {
                return -EINVAL;
        }
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                 host);
        if (connect(fd, (struct sockaddr *)&ss, sl) < 0 ||
            send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
                r = -errno;
                goto out;
        }
        for (;;) {
                ssize_t n;

                if (len + 4096 + 1 > cap) {
                        char *b;

                        cap = cap ? cap * 2 : 65536;
                        if (cap > BODY_MAX) {
                                r = -EFBIG;
                                goto out;
                        }
                        b = floe_realloc(buf, cap);
                        if (!b) {
                                r = -ENOMEM;
                                goto out;
                        }
                        buf = b;
                }
                n = recv(fd, buf + len, cap - len - 1, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        body = strstr(buf, "\r\n\r\n");
        if (len < 12 || strncmp(buf, "HTTP/1.1 200", 12) != 0 || !body) {
                r = -EBADMSG;
                goto out;
        }
        memmove(buf, body + 4, len - (size_t)(body + 4 - buf) + 1);
        *ret = TAKE_PTR(buf);
out:
        close(fd);
        floe_free(buf);
        return r;
}

static int parse(struct scrape *sc)
{
        char *save = NULL;

        sc->s = floe_calloc(SAMPLES_MAX, sizeof(*sc->s));
        if (!sc->s)
                return -ENOMEM;
        for (char *line = strtok_r(sc->body, "\n", &save); line && sc->n < SAMPLES_MAX;
             line = strtok_r(NULL, "\n", &save)) {
                struct sample *x = &sc->s[sc->n];
                char *sp, *brace;

                if (line[0] == '#' || !(sp = strrchr(line, ' ')))
                        continue;
                *sp = '\0';
                x->v = strtod(sp + 1, NULL);
                x->name = line;
                x->labels = (char *)"";
                brace = strchr(line, '{');
                if (brace) {
                        char *end = strrchr(brace, '}');

                        *brace = '\0';
                        if (end)
                                *end = '\0';
                        x->labels = brace + 1;
                }
                sc->n++;
        }
        return 0;
}

/* The value of name with labels containing match (NULL: any), else def. */
static double get(const struct scrape *sc, const char *name, const char *match, double def)
{
        for (size_t i = 0; i < sc->n; i++)
                if (strcmp(sc->s[i].name, name) == 0 && (!match || strstr(sc->s[i].labels, match)))
                        return sc->s[i].v;
        return def;
}

/* The sum of name's samples with labels containing match. */
static double sum(const struct scrape *sc, const char *name, const char *match)
{
        double total = 0;

        for (size_t i = 0; i < sc->n; i++)
                if (strcmp(sc->s[i].name, name) == 0 && strstr(sc->s[i].labels, match))
                        total += sc->s[i].v;
        return total;
}

/* The largest of name's samples with labels containing match, 0 if none. */
static double most(const struct scrape *sc, const char *name, const char *match)
{
        double top = 0;

        for (size_t i = 0; i < sc->n; i++)
                if (strcmp(sc->s[i].name, name) == 0 && strstr(sc->s[i].labels, match) &&
                    sc->s[i].v > top)
                        top = sc->s[i].v;
        return top;
}

static const char *when(double t, char *buf, size_t size)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm))
                snprintf(buf, size, "never");
        return buf;
}

static const char *size_text(double v, char *buf, size_t size)
{
        return floe_format_size(v > 0 ? (uint64_t)v : 0, buf, size);
}

static void print_tables(const struct scrape *sc)
{
        static const char *const names[] = {"events", "aggregates"};
        static const char *const states[] = {"idle", "writing", "waiting"};

        printf("\n%-11s %10s %8s %6s %-8s %-24s %8s %12s %8s\n", "TABLE", "BUFFERED", "BATCHES",
               "FILL", "FLUSH", "LAST COMMIT", "COMMITS", "ROWS", "FAILURES");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char lt[64], ls[96], b[32], w[40];
                const char *state = "?";

                snprintf(lt, sizeof(lt), "table=\"%s\"", names[i]);
                for (size_t k = 0; k < ELEMENTSOF(states); k++) {
                        snprintf(ls, sizeof(ls), "table=\"%s\",state=\"%s\"", names[i], states[k]);
                        if (get(sc, "floe_uploader_flush_state", ls, 0) > 0)
                                state = states[k];
                }
                printf("%-11s %10s %8.0f %5.0f%% %-8s %-24s %8.0f %12.0f %8.0f\n", names[i],
                       size_text(get(sc, "floe_uploader_buffer_bytes", lt, 0), b, sizeof(b)),
                       get(sc, "floe_uploader_buffer_batches", lt, 0),
                       100 * get(sc, "floe_uploader_buffer_fill_ratio", lt, 0), state,
                       when(get(sc, "floe_uploader_last_commit_timestamp_seconds", lt, 0), w,
                            sizeof(w)),
                       get(sc, "floe_uploader_commits_total", lt, 0),
                       get(sc, "floe_uploader_committed_events_total", lt, 0),
                       get(sc, "floe_uploader_flush_failures_total", lt, 0));
        }
}

static void print_maintenance(const struct scrape *sc)
{
        static const char *const names[] = {"events", "aggregates"};
        const char *state = get(sc, "floe_uploader_maintenance_enabled", NULL, 1) <= 0  ? "off"
                            : get(sc, "floe_uploader_maintenance_running", NULL, 0) > 0 ? "running"
                                                                                        : "idle";

        printf("\n%-11s %-8s %-24s %10s %9s %9s %9s %8s\n", "MAINTENANCE", "STATE", "LAST RUN",
               "COMPACTED", "WRITTEN", "EXPIRED", "DELETED", "FAILURES");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char lt[64], w[40];

                snprintf(lt, sizeof(lt), "table=\"%s\"", names[i]);
                printf("%-11s %-8s %-24s %10.0f %9.0f %9.0f %9.0f %8.0f\n", names[i], state,
                       when(most(sc, "floe_uploader_maintenance_last_run_timestamp_seconds", lt), w,
                            sizeof(w)),
                       get(sc, "floe_uploader_maintenance_files_compacted_total", lt, 0),
                       get(sc, "floe_uploader_maintenance_files_written_total", lt, 0),
                       get(sc, "floe_uploader_maintenance_snapshots_expired_total", lt, 0),
                       sum(sc, "floe_uploader_maintenance_files_deleted_total", lt),
                       sum(sc, "floe_uploader_maintenance_failures_total", lt));
        }
}

static void print_tenants(const struct scrape *sc)
{
        bool any = false;

        for (size_t i = 0; i < sc->n; i++) {
                const struct sample *x = &sc->s[i];
                char lt[128];

                if (strcmp(x->name, "floe_uploader_lag_seconds") != 0)
                        continue;
                if (!any)
                        printf("\n%-24s %10s %14s %14s %10s\n", "TENANT", "LAG", "EVENTS IN",
                               "COMMITTED", "REJECTED");
                any = true;
                snprintf(lt, sizeof(lt), "%s", x->labels);
                printf("%-24.*s %9.1fs %14.0f %14.0f %10.0f\n", (int)strcspn(x->labels + 8, "\""),
                       x->labels + 8, x->v,
                       get(sc, "floe_uploader_tenant_events_received_total", lt, 0),
                       get(sc, "floe_uploader_tenant_events_committed_total", lt, 0),
                       get(sc, "floe_uploader_tenant_dead_letters_total", lt, 0));
        }
        if (!any)
                printf("\nno tenant has sent anything yet\n");
}

static void print_summary(const struct scrape *sc)
{
        char a[32], b[32];

        printf("%-16s %s (uptime %.0f s)\n", "broker",
               get(sc, "floe_uploader_mqtt_connected", NULL, 0) > 0 ? "connected" : "disconnected",
               get(sc, "floe_uploader_uptime_seconds", NULL, 0));
        printf("%-16s %s of %s\n", "buffered",
               size_text(get(sc, "floe_uploader_memory_bytes", NULL, 0), a, sizeof(a)),
               size_text(get(sc, "floe_uploader_memory_limit_bytes", NULL, 0), b, sizeof(b)));
        printf("%-16s %.0f events/s; %.0f batches taken, %.0f deferred\n", "intake",
               get(sc, "floe_uploader_events_per_second", NULL, 0),
               get(sc, "floe_uploader_batches_received_total", NULL, 0),
               get(sc, "floe_uploader_deferred_total", NULL, 0));
        printf("%-16s %.0f at intake, %.0f at commit\n", "duplicates",
               get(sc, "floe_uploader_duplicates_total", "intake", 0),
               get(sc, "floe_uploader_duplicates_total", "commit", 0));
        printf("%-16s", "dead letters");
        {
                double total = 0;

                for (size_t i = 0; i < sc->n; i++)
                        if (strcmp(sc->s[i].name, "floe_uploader_dead_letters_total") == 0) {
                                printf(" %.0f %.*s", sc->s[i].v,
                                       (int)strcspn(sc->s[i].labels + 8, "\""),
                                       sc->s[i].labels + 8);
                                total += sc->s[i].v;
                        }
                if (total == 0)
                        printf(" none");
                printf("\n");
        }
}

int upl_status_command(const char *config_path)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        struct scrape sc = {0};
        struct upl_settings s;
        int r;

        r = upl_config_load(config_path, &cfg, &s, &err);
        if (r < 0) {
                floe_daemon_config_error(r, &err);
                return 1;
        }
        if (!s.metrics_enabled) {
                fprintf(stderr, "floe-uploader: [metrics] listen is off: no status to read\n");
                floe_config_free(cfg);
                return 1;
        }
        r = fetch(s.metrics_host, s.metrics_port, &sc.body);
        if (r < 0) {
                fprintf(stderr, "floe-uploader: http://%s:%d/metrics: %s (is it running?)\n",
                        s.metrics_host, s.metrics_port, strerror(-r));
                floe_config_free(cfg);
                return 1;
        }
        r = parse(&sc);
        if (r == 0) {
                print_summary(&sc);
                print_tables(&sc);
                print_maintenance(&sc);
                print_tenants(&sc);
        }
        floe_free(sc.s);
        floe_free(sc.body);
        floe_config_free(cfg);
        return r < 0 ? 1 : 0;
}

static void print_maint_settings(const struct upl_maint_settings *m)
{
        char a[32], b[32], c[32];

        if (!m->enabled) {
                printf("  maintenance off\n");
                return;
        }
        printf("  maintenance every %s:", floe_format_duration(m->interval_us, a, sizeof(a)));
        if (m->compact)
                printf(" compact %" PRIu64 "+ files under %.0f%% of %s after %" PRIu64
                       " snapshots;",
                       m->compact_min_files, 100 * m->compact_small_fraction,
                       m->compact_target_size
                               ? floe_format_size(m->compact_target_size, b, sizeof(b))
                               : "the target",
                       m->compact_min_snapshots);
        if (m->expire)
                printf(" expire after %s keeping %" PRIu64 ";",
                       floe_format_duration(m->expire_max_age_us, b, sizeof(b)),
                       m->expire_min_snapshots);
        if (m->orphans)
                printf(" orphans older than %s every %s;",
                       floe_format_duration(m->orphan_min_age_us, b, sizeof(b)),
                       floe_format_duration(m->orphan_interval_us, c, sizeof(c)));
        printf(" tiers %s\n", m->tier ? "by [tier]" : "off");
}

static void print_tiers(const struct ice_tier_conf *t)
{
        char a[32];

        for (size_t i = 1; i < t->n_tiers && i < ICE_TIER_MAX; i++)
                printf("  tier %zu      after %s: %s\n", i,
                       floe_format_duration((uint64_t)t->age_ms[i] * 1000, a, sizeof(a)),
                       t->root[i] ? t->root[i] : t->storage_class[i]);
}

int upl_check_config_command(const char *config_path)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        struct upl_settings s;
        char a[32], b[32], d[32];
        int r;

        r = upl_config_load(config_path, &cfg, &s, &err);
        if (r < 0) {
                floe_daemon_config_error(r, &err);
                return 1;
        }
        printf("%s: configuration valid\n", config_path);
        printf("  broker      %s:%" PRId64 " as %s, $share/%s/floe/v1/+/batch\n", s.host, s.port,
               s.client_id, s.share_group);
        printf("  warehouse   %s, namespace %s\n", s.lake.warehouse, s.lake.ns);
        printf("  catalog     %s\n",
               strncmp(s.lake.catalog, "postgres", 8) == 0 ? "PostgreSQL" : s.lake.catalog);
        for (unsigned i = 0; i < UPL_TABLES; i++)
                printf("  %-11s size %s, interval %s, %u added column%s\n",
                       ice_floe_table_name(i == 0 ? FLOE_KIND_EVENTS : FLOE_KIND_AGGREGATES),
                       floe_format_size(s.table[i].size, a, sizeof(a)),
                       floe_format_duration(s.table[i].interval_us, d, sizeof(d)), s.table[i].n_add,
                       s.table[i].n_add == 1 ? "" : "s");
        printf("  memory      %s\n", floe_format_size(s.max_memory, b, sizeof(b)));
        print_maint_settings(&s.maint);
        print_tiers(&s.tier);
        if (s.metrics_enabled)
                printf("  metrics     http://%s:%d/metrics\n", s.metrics_host, s.metrics_port);
        else
                printf("  metrics     off\n");
        floe_config_free(cfg);
        return 0;
}
