/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The batch replayer of tests/bench/bench_uploader.py: the agents of a fleet replaced by one
 * MQTT v5 client that publishes batches in the agent's wire format (lib/floe-wire, zstd level
 * 1) on floe/v1/<identity>/batch, QoS 1, for many identities at once, and takes the
 * uploader's acks on floe/v1/+/ack. Batches are encoded before the timed run; with --live
 * each is encoded when it is sent, its events stamped with the send time (freshness). A
 * window per identity keeps each identity's seqs in order and bounded, as an agent's
 * [uplink] inflight does. With --puback a batch is done at the broker's PUBACK (no uploader:
 * the broker's side of the comparison). Prints one JSON object of what it measured. The
 * fleet (identities, sensors, metrics, values) is replay-profile.h's.
 *
 * scripts/run-bench runs every bench-* binary without arguments: then it only says what it
 * is for and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "floe-ack.h"
#include "floe-alloc.h"
#include "floe-batch.h"
#include "floe-config.h"
#include "floe-event.h"
#include "floe-mqtt.h"
#include "floe-ndjson.h"
#include "floe-wire.h"
#include "replay-profile.h"

#define PROG      "bench-replay"
#define PUMP_STEP 512 /* publishes per event-loop turn */
#define PACE_TICK (2 * 1000)
#define MIDS      65536

struct opts {
        const char *host, *cafile, *cert, *key, *client_id, *out, *ndjson, *cache;
        struct replay_profile pr;
        uint32_t port, identities, batches, window, inflight;
        uint64_t rate; /* events/s, 0: as fast as the window allows */
        uint64_t timeout_s;
        bool puback, live;
};

struct rp {
        struct opts o;
        sd_event *e;
        struct floe_mqtt *mqtt;
        sd_event_source *pump_src, *pace_src, *watch_src;
        struct floe_batch *b;
        struct floe_wire_encoder *enc;
        /* payloads of batch j = identity * batches + seq - 1 */
        uint8_t *arena;
        size_t arena_len, arena_cap;
        size_t *off; /* batch j's payload: arena[off[j] .. off[j + 1]) */
        int64_t *t_pub, *t_done;
        uint8_t *done;
        uint64_t *epoch;
        uint32_t *next, *inflight; /* per identity: next batch to send (0-based), in flight */
        uint32_t *queue;           /* identities that may send, round robin */
        uint8_t *queued;
        size_t q_head, q_len;
        uint32_t mid_batch[MIDS]; /* --puback: the batch of an outstanding mid, + 1 */
        uint64_t total, sent, n_done, in_flight, max_in_flight;
        uint64_t events, payload_bytes;
        uint64_t acks[3], unmatched, repeated, puback_errors, publish_errors;
        int64_t t_start_mono, t_first, t_last, t_last_pub;
        uint64_t progress_mono, last_progress;
        double encode_s;
        bool subscribed, failed;
};

static int64_t wall_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The identity index of "floe/v1/t<NN>.gw-<index>/ack"; -EINVAL for anything else. */
static int topic_index(const struct rp *p, const char *topic, uint32_t *ret)
{
        const char *s = strstr(topic, ".gw-");
        uint64_t v = 0;
        int digits = 0;

        if (!s || strncmp(topic, "floe/v1/t", 9) != 0)
                return -EINVAL;
        for (s += 4; *s >= '0' && *s <= '9' && digits < 10; s++, digits++)
                v = v * 10 + (uint64_t)(*s - '0');
        if (digits == 0 || strcmp(s, "/ack") != 0 || v >= p->o.identities)
                return -EINVAL;
        *ret = (uint32_t)v;
        return 0;
}

static int arena_add(struct rp *p, const uint8_t *data, size_t len)
{
        if (p->arena_len + len > p->arena_cap) {
                size_t cap = p->arena_cap ? p->arena_cap : 1 << 20;
                uint8_t *a;

                while (cap < p->arena_len + len)
                        cap *= 2;
                a = floe_realloc(p->arena, cap);
                if (!a)
                        return -ENOMEM;
                p->arena = a;
                p->arena_cap = cap;
        }
        memcpy(p->arena + p->arena_len, data, len);
        p->arena_len += len;
        return 0;
}

/* Every batch before the run (or, with ndjson, their rows as NDJSON instead). */
static int encode_all(struct rp *p, FILE *ndjson)
{
        /* the previous hour: a run's events land in one hour partition per tenant */
        int64_t t0 = (wall_us() / 1000000 / 3600 - 1) * 3600 * 1000000, c0 = mono_us();
        char line[1024];
        int r;

        for (uint32_t i = 0; i < p->o.identities; i++)
                for (uint32_t s = 1; s <= p->o.batches; s++) {
                        const uint8_t *data;
                        size_t len;

                        r = replay_build(&p->o.pr, p->b, i, p->epoch[i], s, t0, 0);
                        if (r < 0)
                                return r;
                        if (ndjson) {
                                for (uint32_t k = 0; k < p->b->nrows; k++) {
                                        int n = floe_ndjson_format_row(p->b, k, line, sizeof(line));

                                        if (n < 0 ||
                                            fwrite(line, 1, (size_t)n, ndjson) != (size_t)n)
                                                return n < 0 ? n : -EIO;
                                }
                                p->events += p->b->nrows;
                                continue;
                        }
                        r = floe_wire_encode(p->enc, p->b, &data, &len);
                        r = r ?: arena_add(p, data, len);
                        if (r < 0)
                                return r;
                        p->off[(size_t)i * p->o.batches + s] = p->arena_len;
                        p->events += p->b->nrows;
                        p->payload_bytes += len;
                }
        p->encode_s = (double)(mono_us() - c0) / 1e6;
        return 0;
}

/* ---- --cache: the encoded batches of one geometry, for later runs (same epochs) ---- */

struct cache_head {
        char magic[8];
        uint32_t identities, batches, sensors, metrics, seconds, tenants;
        uint64_t seed, events, payload_bytes, arena_len;
};

static void cache_head(const struct rp *p, struct cache_head *h)
{
        memset(h, 0, sizeof(*h));
        memcpy(h->magic, "FLRPLY01", sizeof(h->magic));
        h->identities = p->o.identities;
        h->batches = p->o.batches;
        h->sensors = p->o.pr.sensors;
        h->metrics = p->o.pr.metrics;
        h->seconds = p->o.pr.seconds;
        h->tenants = p->o.pr.tenants;
        h->seed = p->o.pr.seed;
        h->events = p->events;
        h->payload_bytes = p->payload_bytes;
        h->arena_len = p->arena_len;
}

static int cache_load(struct rp *p)
{
        struct cache_head want, h;
        size_t n = p->total + 1, ids = p->o.identities;
        FILE *f = fopen(p->o.cache, "re");
        int r = -EBADMSG;

        if (!f)
                return -errno;
        cache_head(p, &want);
        if (fread(&h, sizeof(h), 1, f) != 1 ||
            memcmp(&h, &want, offsetof(struct cache_head, events)) != 0)
                goto out;
        p->arena = floe_malloc(h.arena_len ? h.arena_len : 1);
        if (!p->arena) {
                r = -ENOMEM;
                goto out;
        }
        if (fread(p->epoch, sizeof(*p->epoch), ids, f) != ids ||
            fread(p->off, sizeof(*p->off), n, f) != n ||
            fread(p->arena, 1, h.arena_len, f) != h.arena_len || p->off[n - 1] != h.arena_len)
                goto out;
        p->arena_len = p->arena_cap = h.arena_len;
        p->events = h.events;
        p->payload_bytes = h.payload_bytes;
        r = 0;
out:
        fclose(f);
        if (r < 0) { /* encoded again */
                floe_free(p->arena);
                p->arena = NULL;
        }
        return r;
}

static int cache_save(const struct rp *p)
{
        struct cache_head h;
        FILE *f = fopen(p->o.cache, "we");
        int r = 0;

        if (!f)
                return -errno;
        cache_head(p, &h);
        if (fwrite(&h, sizeof(h), 1, f) != 1 ||
            fwrite(p->epoch, sizeof(*p->epoch), p->o.identities, f) != p->o.identities ||
            fwrite(p->off, sizeof(*p->off), p->total + 1, f) != p->total + 1 ||
            fwrite(p->arena, 1, p->arena_len, f) != p->arena_len)
                r = -EIO;
        if (fclose(f) != 0)
                r = -EIO;
        if (r < 0)
                unlink(p->o.cache);
        return r;
}

/* ---- sending ---- */

static void enqueue(struct rp *p, uint32_t i)
{
        if (p->queued[i] || p->next[i] >= p->o.batches || p->inflight[i] >= p->o.window)
                return;
        p->queue[(p->q_head + p->q_len) % p->o.identities] = i;
        p->q_len++;
        p->queued[i] = 1;
}

static void fail(struct rp *p, const char *what)
{
        fprintf(stderr, "%s: %s\n", PROG, what);
        p->failed = true;
        sd_event_exit(p->e, 1);
}

static int send_one(struct rp *p, uint32_t i)
{
        size_t j = (size_t)i * p->o.batches + p->next[i];
        char topic[FLOE_IDENTITY_MAX + 32], id[FLOE_IDENTITY_MAX + 1];
        const uint8_t *data;
        size_t len;
        int mid = 0, r;

        replay_identity(&p->o.pr, i, id, sizeof(id));
        snprintf(topic, sizeof(topic), "floe/v1/%s/batch", id);
        p->t_pub[j] = wall_us();
        if (p->o.live) {
                /* the agent closes the batch now: its newest reading is this instant */
                r = replay_build(&p->o.pr, p->b, i, p->epoch[i], p->next[i] + 1, 0, p->t_pub[j]);
                r = r ?: floe_wire_encode(p->enc, p->b, &data, &len);
                if (r < 0)
                        return r;
                p->payload_bytes += len;
        } else {
                data = p->arena + p->off[j];
                len = p->off[j + 1] - p->off[j];
        }
        r = floe_mqtt_publish(p->mqtt, topic, data, len, 1, false, NULL, &mid);
        if (r < 0)
                return r;
        if (p->o.puback)
                p->mid_batch[(uint16_t)mid] = (uint32_t)j + 1;
        if (!p->t_first)
                p->t_first = p->t_pub[j];
        p->t_last_pub = p->t_pub[j];
        p->next[i]++;
        p->inflight[i]++;
        p->sent++;
        if (++p->in_flight > p->max_in_flight)
                p->max_in_flight = p->in_flight;
        return 0;
}

static uint64_t released(const struct rp *p)
{
        if (!p->o.rate)
                return p->total;
        return (uint64_t)((double)(mono_us() - p->t_start_mono) * 1e-6 * (double)p->o.rate /
                          (double)replay_rows(&p->o.pr)) +
               1;
}

static void pump(struct rp *p)
{
        uint64_t allow = released(p);
        unsigned n = 0;

        while (n < PUMP_STEP && p->q_len && p->sent < allow &&
               (!p->o.inflight || p->in_flight < p->o.inflight)) {
                uint32_t i = p->queue[p->q_head];
                int r;

                p->q_head = (p->q_head + 1) % p->o.identities;
                p->q_len--;
                p->queued[i] = 0;
                r = send_one(p, i);
                if (r < 0) {
                        fprintf(stderr, "%s: publish: %s\n", PROG, strerror(-r));
                        p->publish_errors++;
                        fail(p, "cannot publish");
                        return;
                }
                enqueue(p, i);
                n++;
        }
        if (n == PUMP_STEP)
                sd_event_source_set_enabled(p->pump_src, SD_EVENT_ONESHOT);
}

static int on_pump(sd_event_source *s, void *ud)
{
        (void)s;
        pump(ud);
        return 0;
}

static void start(struct rp *p)
{
        p->t_start_mono = mono_us();
        p->progress_mono = (uint64_t)p->t_start_mono;
        pump(p);
}

static void done(struct rp *p, size_t j)
{
        uint32_t i = (uint32_t)(j / p->o.batches);

        if (p->done[j]) {
                p->repeated++;
                return;
        }
        p->done[j] = 1;
        p->t_done[j] = wall_us();
        p->inflight[i]--;
        p->in_flight--;
        p->n_done++;
        enqueue(p, i);
        if (p->n_done == p->total) {
                p->t_last = p->t_done[j];
                sd_event_exit(p->e, 0);
                return;
        }
        sd_event_source_set_enabled(p->pump_src, SD_EVENT_ONESHOT);
}

static void on_message(void *ud, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
        struct rp *p = ud;
        struct floe_ack a;
        uint32_t i;
        size_t j;

        (void)props;
        if (topic_index(p, msg->topic, &i) < 0 || msg->payloadlen < 0 ||
            floe_ack_decode(msg->payload, (size_t)msg->payloadlen, &a) < 0 ||
            a.epoch != p->epoch[i] || a.seq == 0 || a.seq > p->next[i]) {
                p->unmatched++;
                return;
        }
        j = (size_t)i * p->o.batches + (a.seq - 1);
        if (!p->done[j])
                p->acks[a.status]++;
        if (a.status == FLOE_ACK_REJECTED)
                fprintf(stderr, "%s: batch %" PRIu32 "/%" PRIu64 " rejected: %s\n", PROG, i, a.seq,
                        a.reason);
        done(p, j);
}

static void on_publish(void *ud, int mid, int reason)
{
        struct rp *p = ud;
        uint32_t j1 = p->mid_batch[(uint16_t)mid];

        if (reason >= 0x80)
                p->puback_errors++;
        if (!p->o.puback || !j1)
                return;
        p->mid_batch[(uint16_t)mid] = 0;
        done(p, j1 - 1);
}

static void on_connect(void *ud, int rc)
{
        struct rp *p = ud;
        int mid, r;

        if (rc != 0) {
                fail(p, "the broker refused the connection");
                return;
        }
        if (p->o.puback) {
                start(p);
                return;
        }
        r = floe_mqtt_subscribe_mid(p->mqtt, "floe/v1/+/ack", 1, &mid);
        if (r < 0)
                fail(p, "cannot subscribe to floe/v1/+/ack");
}

static void on_subscribe(void *ud, int mid, int granted)
{
        struct rp *p = ud;

        (void)mid;
        if (granted >= 0x80) {
                fail(p, "floe/v1/+/ack refused");
                return;
        }
        if (!p->subscribed) {
                p->subscribed = true;
                start(p);
        }
}

static void on_disconnect(void *ud, int rc)
{
        (void)rc;
        fail(ud, "connection lost");
}

static void on_connect_failed(void *ud, int rc)
{
        struct rp *p = ud;

        fprintf(stderr, "%s: connect to %s:%" PRIu32 ": %s\n", PROG, p->o.host, p->o.port,
                rc > 0 && rc < 0x80 ? mosquitto_strerror(rc) : "refused");
        fail(p, "cannot connect");
}

static int on_pace(sd_event_source *s, uint64_t usec, void *ud)
{
        struct rp *p = ud;

        (void)s;
        (void)usec;
        if (p->t_start_mono)
                pump(p);
        return 0;
}

static int on_watch(sd_event_source *s, uint64_t usec, void *ud)
{
        struct rp *p = ud;
        uint64_t now = (uint64_t)mono_us();

        (void)s;
        (void)usec;
        if (p->n_done != p->last_progress) {
                p->last_progress = p->n_done;
                p->progress_mono = now;
        } else if (p->progress_mono && now - p->progress_mono > p->o.timeout_s * 1000000) {
                fprintf(stderr,
                        "%s: no progress for %" PRIu64 " s: %" PRIu64 " of %" PRIu64
                        " done, %" PRIu64 " sent\n",
                        PROG, p->o.timeout_s, p->n_done, p->total, p->sent);
                fail(p, "stalled");
        }
        return 0;
}

/* ---- results ---- */

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

static double pct(const int64_t *v, size_t n, double q)
{
        if (n == 0)
                return 0;
        return (double)v[(size_t)fmin((double)(n - 1), nearbyint(q * (double)(n - 1)))] / 1000.0;
}

static int report(struct rp *p)
{
        _cleanup_free_ int64_t *lat = floe_calloc(p->total + 1, sizeof(*lat));
        FILE *f = p->o.out ? fopen(p->o.out, "we") : stdout;
        double secs = p->t_last > p->t_first ? (double)(p->t_last - p->t_first) / 1e6 : 0;
        struct rusage ru;
        size_t n = 0;
        int r = 0;

        if (!lat || !f) {
                if (f && f != stdout)
                        fclose(f);
                return -ENOMEM;
        }
        for (size_t j = 0; j < p->total; j++)
                if (p->done[j])
                        lat[n++] = p->t_done[j] - p->t_pub[j];
        qsort(lat, n, sizeof(*lat), cmp_i64);
        getrusage(RUSAGE_SELF, &ru);
        fprintf(f,
                "{\"identities\": %" PRIu32 ", \"batches\": %" PRIu64 ", \"done\": %" PRIu64
                ", \"rows_per_batch\": %" PRIu64 ", \"events\": %" PRIu64
                ", \"payload_bytes\": %" PRIu64 ", \"encode_seconds\": %.3f"
                ", \"first_publish_us\": %" PRId64 ", \"last_publish_us\": %" PRId64
                ", \"last_done_us\": %" PRId64 ", \"seconds\": %.6f, \"events_per_s\": %.1f"
                ", \"acks\": {\"ok\": %" PRIu64 ", \"duplicate\": %" PRIu64
                ", \"rejected\": %" PRIu64 "}, \"unmatched_acks\": %" PRIu64
                ", \"repeated_acks\": %" PRIu64 ", \"puback_errors\": %" PRIu64
                ", \"max_in_flight\": %" PRIu64
                ", \"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f}"
                ", \"cpu_seconds\": %.3f, \"mode\": \"%s\"}\n",
                p->o.identities, p->total, p->n_done, replay_rows(&p->o.pr),
                p->n_done * replay_rows(&p->o.pr), p->payload_bytes, p->encode_s, p->t_first,
                p->t_last_pub, p->t_last, secs,
                secs > 0 ? (double)(p->n_done * replay_rows(&p->o.pr)) / secs : 0,
                p->acks[FLOE_ACK_OK], p->acks[FLOE_ACK_DUPLICATE], p->acks[FLOE_ACK_REJECTED],
                p->unmatched, p->repeated, p->puback_errors, p->max_in_flight, pct(lat, n, 0.5),
                pct(lat, n, 0.9), pct(lat, n, 0.99), pct(lat, n, 1.0),
                (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
                p->o.puback ? "puback"
                : p->o.live ? "live"
                            : "ack");
        if (fflush(f) != 0)
                r = -EIO;
        if (f != stdout && fclose(f) != 0)
                r = -EIO;
        return r;
}

/* ---- options ---- */

enum { ARG_STR, ARG_U32, ARG_U64, ARG_FLAG };

struct arg {
        const char *name;
        int kind;
        size_t off; /* in struct opts */
        uint64_t min, max;
};

static const struct arg args[] = {
        {"host", ARG_STR, offsetof(struct opts, host), 0, 0},
        {"cafile", ARG_STR, offsetof(struct opts, cafile), 0, 0},
        {"cert", ARG_STR, offsetof(struct opts, cert), 0, 0},
        {"key", ARG_STR, offsetof(struct opts, key), 0, 0},
        {"client-id", ARG_STR, offsetof(struct opts, client_id), 0, 0},
        {"out", ARG_STR, offsetof(struct opts, out), 0, 0},
        {"ndjson", ARG_STR, offsetof(struct opts, ndjson), 0, 0},
        {"cache", ARG_STR, offsetof(struct opts, cache), 0, 0},
        {"port", ARG_U32, offsetof(struct opts, port), 1, 65535},
        {"identities", ARG_U32, offsetof(struct opts, identities), 1, 10000000},
        {"tenants", ARG_U32, offsetof(struct opts, pr.tenants), 1, 100},
        {"batches", ARG_U32, offsetof(struct opts, batches), 1, 1000000},
        {"sensors", ARG_U32, offsetof(struct opts, pr.sensors), 1, REPLAY_SENSORS_MAX},
        {"metrics", ARG_U32, offsetof(struct opts, pr.metrics), 1, REPLAY_METRICS_MAX},
        {"seconds", ARG_U32, offsetof(struct opts, pr.seconds), 1, 3600},
        {"window", ARG_U32, offsetof(struct opts, window), 1, 65535},
        {"inflight", ARG_U32, offsetof(struct opts, inflight), 0, 10000000},
        {"rate", ARG_U64, offsetof(struct opts, rate), 0, UINT32_MAX},
        {"timeout", ARG_U64, offsetof(struct opts, timeout_s), 1, 86400},
        {"seed", ARG_U64, offsetof(struct opts, pr.seed), 0, UINT64_MAX},
        {"live", ARG_FLAG, offsetof(struct opts, live), 0, 0},
        {"puback", ARG_FLAG, offsetof(struct opts, puback), 0, 0},
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: %s --port PORT [--host H] [--cafile F --cert F --key F]\n"
                "       [--client-id ID] [--identities N] [--tenants N] [--batches N]\n"
                "       [--sensors N] [--metrics N] [--seconds N] [--window N] [--inflight N]\n"
                "       [--rate EVENTS/S] [--live] [--puback] [--timeout SECONDS] [--seed N]\n"
                "       [--cache FILE] [--out FILE]\n"
                "       %s --ndjson FILE [--identities N ...]   the same rows as NDJSON\n"
                "The batch replayer of tests/bench/bench_uploader.py (see there).\n",
                PROG, PROG);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
        struct option lo[ELEMENTSOF(args) + 2] = {{0}};
        int c;

        *o = (struct opts){0};
        o->host = "localhost";
        o->client_id = PROG;
        o->pr = (struct replay_profile){
                .tenants = 10, .sensors = 8, .metrics = 6, .seconds = 10, .seed = 1};
        o->identities = 1000;
        o->batches = 4;
        o->window = 8;
        o->timeout_s = 120;
        for (size_t k = 0; k < ELEMENTSOF(args); k++)
                lo[k] = (struct option){args[k].name,
                                        args[k].kind == ARG_FLAG ? no_argument : required_argument,
                                        NULL, 256 + (int)k};
        lo[ELEMENTSOF(args)] = (struct option){"help", no_argument, NULL, 'h'};
        while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
                const struct arg *a;
                char *field;
                uint64_t v;

                if (c == 'h') {
                        usage(stdout);
                        exit(0);
                }
                if (c < 256 || c >= 256 + (int)ELEMENTSOF(args)) {
                        usage(stderr);
                        return -EINVAL;
                }
                a = &args[c - 256];
                field = (char *)o + a->off;
                if (a->kind == ARG_STR) {
                        *(const char **)(void *)field = optarg;
                } else if (a->kind == ARG_FLAG) {
                        *(bool *)field = true;
                } else if (floe_parse_uint64(optarg, &v) < 0 || v < a->min || v > a->max) {
                        fprintf(stderr, "%s: invalid value for --%s: \"%s\"\n", PROG, a->name,
                                optarg);
                        return -EINVAL;
                } else if (a->kind == ARG_U32) {
                        *(uint32_t *)(void *)field = (uint32_t)v;
                } else {
                        *(uint64_t *)(void *)field = v;
                }
        }
        if (optind != argc || (!o->ndjson && !o->port) || (!o->cafile != !o->cert) ||
            (!o->cert != !o->key) || (o->live && (o->ndjson || o->cache))) {
                usage(stderr);
                return -EINVAL;
        }
        if ((uint64_t)o->identities * o->batches > 100000000) {
                fprintf(stderr, "%s: at most 100,000,000 batches\n", PROG);
                return -EINVAL;
        }
        /* mids tell outstanding PUBACKs apart */
        if (o->puback && (!o->inflight || o->inflight > MIDS - 1000))
                o->inflight = MIDS - 1000;
        return 0;
}

/* ---- main ---- */

static int setup(struct rp *p)
{
        size_t n = (size_t)p->o.identities * p->o.batches;
        uint64_t base = 0;
        int r;

        p->total = n;
        p->off = floe_calloc(n + 1, sizeof(*p->off));
        p->t_pub = floe_calloc(n, sizeof(*p->t_pub));
        p->t_done = floe_calloc(n, sizeof(*p->t_done));
        p->done = floe_calloc(n, 1);
        p->epoch = floe_calloc(p->o.identities, sizeof(*p->epoch));
        p->next = floe_calloc(p->o.identities, sizeof(*p->next));
        p->inflight = floe_calloc(p->o.identities, sizeof(*p->inflight));
        p->queue = floe_calloc(p->o.identities, sizeof(*p->queue));
        p->queued = floe_calloc(p->o.identities, 1);
        if (!p->off || !p->t_pub || !p->t_done || !p->done || !p->epoch || !p->next ||
            !p->inflight || !p->queue || !p->queued)
                return -ENOMEM;
        /* a new stream for every identity in every run, as after an outbox wipe */
        if (getrandom(&base, sizeof(base), 0) != sizeof(base))
                return -errno;
        for (uint32_t i = 0; i < p->o.identities; i++)
                p->epoch[i] = (replay_mix(base + i) >> 1) | 1;
        r = floe_batch_new(FLOE_KIND_EVENTS, NULL, &p->b);
        r = r ?: floe_batch_reserve(p->b, (uint32_t)replay_rows(&p->o.pr), 128, 4096, false);
        return r ?: floe_wire_encoder_new(FLOE_WIRE_LEVEL_DEFAULT, NULL, &p->enc);
}

static void teardown(struct rp *p)
{
        p->pump_src = sd_event_source_disable_unref(p->pump_src);
        p->pace_src = sd_event_source_disable_unref(p->pace_src);
        p->watch_src = sd_event_source_disable_unref(p->watch_src);
        p->mqtt = floe_mqtt_free(p->mqtt);
        p->e = sd_event_unref(p->e);
        p->b = floe_batch_free(p->b);
        p->enc = floe_wire_encoder_free(p->enc);
        floe_free(p->arena);
        floe_free(p->off);
        floe_free(p->t_pub);
        floe_free(p->t_done);
        floe_free(p->done);
        floe_free(p->epoch);
        floe_free(p->next);
        floe_free(p->inflight);
        floe_free(p->queue);
        floe_free(p->queued);
}

static int run(struct rp *p)
{
        const struct floe_mqtt_opts mo = {
                .name = "replay",
                .host = p->o.host,
                .port = (int)p->o.port,
                .client_id = p->o.client_id,
                .keepalive_s = 60,
                .ca_file = p->o.cafile,
                .cert_file = p->o.cert,
                .key_file = p->o.key,
                .backoff_min_us = 100000,
                .backoff_max_us = 1000000,
                .receive_max = 65535,
                .send_max = 65535,
        };
        const struct floe_mqtt_callbacks cb = {
                .on_connect = on_connect,
                .on_disconnect = on_disconnect,
                .on_message = on_message,
                .on_publish = on_publish,
                .on_subscribe = on_subscribe,
                .on_connect_failed = on_connect_failed,
        };
        int r;

        r = floe_event_new(&p->e);
        r = r ?: floe_mqtt_new(p->e, &mo, &cb, p, &p->mqtt);
        r = r ?: sd_event_add_defer(p->e, &p->pump_src, on_pump, p);
        r = r ?: sd_event_source_set_enabled(p->pump_src, SD_EVENT_OFF);
        r = r ?: floe_event_add_periodic(p->e, 1000000, 1000, on_watch, p, &p->watch_src);
        if (r == 0 && p->o.rate)
                r = floe_event_add_periodic(p->e, PACE_TICK, 100, on_pace, p, &p->pace_src);
        r = r ?: floe_mqtt_start(p->mqtt);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < p->o.identities; i++)
                enqueue(p, i);
        r = sd_event_loop(p->e);
        if (r == 0 && !p->failed)
                floe_mqtt_stop(p->mqtt);
        return r < 0 ? r : p->failed ? -EIO : 0;
}

int main(int argc, char **argv)
{
        struct rp *p;
        FILE *nd = NULL;
        int r;

        if (argc == 1) {
                printf("%s: the batch replayer of bench_uploader.py, which runs it (nothing to "
                       "measure alone)\n",
                       PROG);
                return 0;
        }
        p = floe_calloc(1, sizeof(*p));
        if (!p)
                return 2;
        r = parse_args(argc, argv, &p->o);
        if (r < 0) {
                floe_free(p);
                return 2;
        }
        r = setup(p);
        if (r == 0 && p->o.ndjson) {
                nd = fopen(p->o.ndjson, "we");
                r = nd ? encode_all(p, nd) : -errno;
                if (nd && fclose(nd) != 0 && r == 0)
                        r = -EIO;
                if (r == 0)
                        printf("{\"events\": %" PRIu64 "}\n", p->events);
        } else if (r == 0) {
                if (!p->o.live && (!p->o.cache || cache_load(p) < 0)) {
                        r = encode_all(p, NULL);
                        if (r == 0 && p->o.cache)
                                r = cache_save(p);
                }
                r = r ?: run(p);
                if (p->t_first) {
                        int r2 = report(p);

                        r = r ?: r2;
                }
        }
        if (r < 0)
                fprintf(stderr, "%s: %s\n", PROG, strerror(-r));
        teardown(p);
        floe_free(p);
        return r < 0 ? 1 : 0;
}
