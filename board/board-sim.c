/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sim board: deterministic synthetic sensors for tests, the demo and
 * the bench. Each series is a bounded random walk in steps of its
 * resolution; step p of series i depends only on the seed, i and p, so a
 * test can predict every value (docs/boards.md gives the formula).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "floe-alloc.h"

#define SIM_MAX_SERIES 262144 /* the wire format's default max_series */
#define SIM_GOLDEN     UINT64_C(0x9E3779B97F4A7C15)

struct sim_settings {
        uint64_t sensors;
        uint64_t metrics;
        uint64_t interval_us;
        uint64_t seed;
        uint64_t watchdog_timeout_us;
        char identity[BOARD_IDENTITY_MAX];
        char watchdog[PATH_MAX];
        char key[PATH_MAX];
};

static const struct board_opt sim_opts[] = {
        BOARD_OPT_NUM("sensors", BOARD_OPT_UINT, "4", 1, 10000, struct sim_settings, sensors,
                      "number of sensors, named sim-0, sim-1, ..."),
        BOARD_OPT_NUM("metrics", BOARD_OPT_UINT, "3", 1, 64, struct sim_settings, metrics,
                      "metrics per sensor: temp, humidity, pressure, ... then m8, m9, ..."),
        BOARD_OPT_NUM("interval", BOARD_OPT_DURATION, "1s", 1000, UINT64_C(3600000000),
                      struct sim_settings, interval_us, "time between polls"),
        BOARD_OPT_NUM("seed", BOARD_OPT_UINT, "1", 0, UINT64_MAX, struct sim_settings, seed,
                      "seed of the random walks"),
        BOARD_OPT_STR("identity", "sim-0001", struct sim_settings, identity,
                      "the board serial it reports"),
        BOARD_OPT_STR("watchdog", "", struct sim_settings, watchdog,
                      "watchdog device or file; empty: none"),
        BOARD_OPT_NUM("watchdog_timeout", BOARD_OPT_DURATION, "0", 0, UINT64_C(3600000000),
                      struct sim_settings, watchdog_timeout_us,
                      "timeout to set on the watchdog; 0: the driver's"),
        BOARD_OPT_STR("key", "", struct sim_settings, key,
                      "device key file; empty: <[agent] state_dir>/device.key"),
        {0},
};

static const char *const metric_names[] = {
        "temp", "humidity", "pressure", "voltage", "current", "power", "level", "flow",
};

struct sim_series {
        int64_t q; /* value in units of the resolution */
        int64_t lo, hi;
        uint64_t key;
        int64_t scale; /* 10^decimals */
};

struct sim {
        struct sim_settings set;
        struct board_watchdog wd;
        enum board_led_state led;
        uint64_t polls;
        size_t n_sensors, n_metrics, n_series;
        size_t pos; /* next series of a burst */
        char (*sensor)[BOARD_NAME_MAX];
        char (*metric)[BOARD_NAME_MAX];
        struct sim_series *series;
        char key_location[PATH_MAX];
};

static uint64_t sim_mix(uint64_t z)
{
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
}

static void sim_free(struct sim *s)
{
        if (!s)
                return;
        board_watchdog_close(&s->wd, false);
        floe_free(s->sensor);
        floe_free(s->metric);
        floe_free(s->series);
        floe_free(s);
}

static void sim_freep(struct sim **s)
{
        sim_free(*s);
}

static void sim_init_series(struct sim *s)
{
        static const int64_t scales[] = {10, 100, 1}; /* resolution 0.1, 0.01, 1 */

        for (size_t i = 0; i < s->n_series; i++) {
                struct sim_series *x = &s->series[i];
                int64_t centre = 20 + 10 * (int64_t)(i % 5);

                x->scale = scales[i % 3];
                x->q = centre * x->scale;
                x->lo = x->q - 50 * x->scale;
                x->hi = x->q + 50 * x->scale;
                x->key = sim_mix(s->set.seed + (uint64_t)(i + 1) * SIM_GOLDEN);
        }
}

static int sim_open(const struct floe_config *cfg, const char *section, void **ret_state,
                    struct floe_config_error *err)
{
        _cleanup_(sim_freep) struct sim *s = NULL;
        int r;

        s = floe_calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        board_watchdog_init(&s->wd, "");
        r = board_opts_load(sim_opts, cfg, section, &s->set, err);
        if (r < 0)
                return r;
        if (s->set.identity[0] != '\0' && board_identity_check(s->set.identity) < 0)
                return floe_config_key_error(cfg, section, "identity", -EINVAL, err,
                                             "expected [a-z0-9][a-z0-9-]{0,62}, got \"%s\"",
                                             s->set.identity);
        if (s->set.sensors * s->set.metrics > SIM_MAX_SERIES)
                return floe_config_key_error(cfg, section, "sensors", -ERANGE, err,
                                             "sensors x metrics must be at most %d",
                                             SIM_MAX_SERIES);
        r = board_key_resolve(cfg, section, s->set.key, false, s->key_location,
                              sizeof(s->key_location), err);
        if (r < 0)
                return r;

        s->n_sensors = (size_t)s->set.sensors;
        s->n_metrics = (size_t)s->set.metrics;
        s->n_series = s->n_sensors * s->n_metrics;
        s->sensor = floe_calloc(s->n_sensors, sizeof(*s->sensor));
        s->metric = floe_calloc(s->n_metrics, sizeof(*s->metric));
        s->series = floe_calloc(s->n_series, sizeof(*s->series));
        if (!s->sensor || !s->metric || !s->series)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_sensors; i++)
                snprintf(s->sensor[i], sizeof(s->sensor[i]), "sim-%zu", i);
        for (size_t j = 0; j < s->n_metrics; j++) {
                if (j < ELEMENTSOF(metric_names))
                        snprintf(s->metric[j], sizeof(s->metric[j]), "%s", metric_names[j]);
                else
                        snprintf(s->metric[j], sizeof(s->metric[j]), "m%zu", j);
        }
        sim_init_series(s);

        board_watchdog_init(&s->wd, s->set.watchdog);
        s->wd.timeout_us = s->set.watchdog_timeout_us;
        s->led = BOARD_LED_OFF;
        *ret_state = TAKE_PTR(s);
        return 0;
}

static void sim_close(void *state)
{
        sim_free(state);
}

/* Step p of every series: q += (mix(key + (p + 1) * golden) mod 21) - 10, kept in [lo, hi]. */
static void sim_step(struct sim *s)
{
        uint64_t p = s->polls++;

        for (size_t i = 0; i < s->n_series; i++) {
                struct sim_series *x = &s->series[i];
                uint64_t h = sim_mix(x->key + (p + 1) * SIM_GOLDEN);
                int64_t q = x->q + (int64_t)(h % 21) - 10;

                x->q = q < x->lo ? x->lo : q > x->hi ? x->hi : q;
        }
}

static int sim_emit(const struct sim *s, size_t i, int64_t ts_us, agent_reading_fn fn,
                    void *userdata)
{
        const struct sim_series *x = &s->series[i];
        const char *sensor = s->sensor[i / s->n_metrics], *metric = s->metric[i % s->n_metrics];
        struct agent_reading r = {
                .sensor = sensor,
                .sensor_len = strlen(sensor),
                .metric = metric,
                .metric_len = strlen(metric),
                .ts_us = ts_us,
                .value = (double)x->q / (double)x->scale,
        };

        return fn(userdata, &r);
}

static int sim_poll(void *state, int64_t now_us, agent_reading_fn fn, void *userdata)
{
        struct sim *s = state;

        sim_step(s);
        for (size_t i = 0; i < s->n_series; i++) {
                int r = sim_emit(s, i, now_us, fn, userdata);

                if (r < 0)
                        return r;
        }
        return 0;
}

int board_sim_emit_burst(void *state, uint64_t n, int64_t ts_us, int64_t step_us,
                         agent_reading_fn fn, void *userdata)
{
        struct sim *s = state;

        for (uint64_t k = 0; k < n; k++) {
                int r;

                if (s->pos == 0)
                        sim_step(s);
                r = sim_emit(s, s->pos, ts_us + (int64_t)k * step_us, fn, userdata);
                s->pos = (s->pos + 1) % s->n_series;
                if (r < 0)
                        return r;
        }
        return 0;
}

enum board_led_state board_sim_led(void *state)
{
        const struct sim *s = state;

        return s->led;
}

static uint64_t sim_poll_interval_us(void *state)
{
        const struct sim *s = state;

        return s->set.interval_us;
}

static int sim_identity(void *state, char *buf, size_t size)
{
        const struct sim *s = state;
        size_t n = strlen(s->set.identity);

        if (n == 0)
                return -ENOENT;
        if (n >= size)
                return -ENOBUFS;
        memcpy(buf, s->set.identity, n + 1);
        return 0;
}

static int sim_led_set(void *state, enum board_led_state st)
{
        struct sim *s = state;

        if (st < 0 || st >= _BOARD_LED_MAX)
                return -EINVAL;
        s->led = st;
        return 0;
}

static int sim_watchdog_open(void *state)
{
        struct sim *s = state;

        return board_watchdog_open(&s->wd);
}

static int sim_watchdog_kick(void *state)
{
        struct sim *s = state;

        return board_watchdog_kick(&s->wd);
}

static void sim_watchdog_close(void *state, bool magic_close)
{
        struct sim *s = state;

        board_watchdog_close(&s->wd, magic_close);
}

static int sim_key_location(void *state, char *buf, size_t size)
{
        const struct sim *s = state;
        size_t n = strlen(s->key_location);

        if (n >= size)
                return -ENOBUFS;
        memcpy(buf, s->key_location, n + 1);
        return 0;
}

static int sim_stats(void *state, struct board_stats *ret)
{
        const struct sim *s = state;

        *ret = (struct board_stats){
                .sensors = s->n_series,
                .polls = s->polls,
                .watchdog_kicks = s->wd.kicks,
                .watchdog_timeout_us = s->wd.fd >= 0 ? s->wd.timeout_us : 0,
        };
        return 0;
}

const struct board_ops board_sim_ops = {
        .name = "sim",
        .doc = "deterministic synthetic sensors for tests, the demo and the bench",
        .opts = sim_opts,
        .open = sim_open,
        .close = sim_close,
        .identity = sim_identity,
        .poll = sim_poll,
        .poll_interval_us = sim_poll_interval_us,
        .led_set = sim_led_set,
        .watchdog_open = sim_watchdog_open,
        .watchdog_kick = sim_watchdog_kick,
        .watchdog_close = sim_watchdog_close,
        .key_location = sim_key_location,
        .stats = sim_stats,
};
