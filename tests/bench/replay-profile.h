/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The fleet bench-replay stands in for: identity i is t<i mod tenants>.gw-<i>; each device
 * has `sensors` sensors of `metrics` metrics read once a second, and a batch holds `seconds`
 * seconds of readings in time order (8 x 6 x 10 = 480 events: an agent with [batch] max_age
 * 10s). Each series is a random walk (Gaussian steps of 2 quanta) at its sensor's resolution:
 * 0.1, 0.01 or 1. Deterministic for a seed, one batch independent of another.
 */

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "floe-batch.h"

#define REPLAY_SENSORS_MAX 64
#define REPLAY_METRICS_MAX 20

struct replay_profile {
        uint32_t tenants, sensors, metrics, seconds;
        uint64_t seed;
};

static inline uint64_t replay_mix(uint64_t z)
{
        /* splitmix64 */
        z += 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static inline double replay_gauss(uint64_t *state)
{
        double u = (double)((*state = replay_mix(*state)) >> 11) * 0x1.0p-53;
        double v = (double)((*state = replay_mix(*state)) >> 11) * 0x1.0p-53;

        return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static inline void replay_identity(const struct replay_profile *pr, uint32_t i, char *buf,
                                   size_t size)
{
        snprintf(buf, size, "t%02" PRIu32 ".gw-%07" PRIu32, i % pr->tenants, i);
}

static inline uint64_t replay_rows(const struct replay_profile *pr)
{
        return (uint64_t)pr->sensors * pr->metrics * pr->seconds;
}

/*
 * Builds batch `seq` (1-based) of identity i into b (reset first). Without t_end (0) the
 * batch covers seconds [(seq-1)*K, seq*K) from t0, each sensor read at its phase within the
 * second (+-2 ms jitter); with t_end its last reading is at t_end, the sensors read 10 us
 * apart before it (the agent closes the batch as it reads them).
 */
static inline int replay_build(const struct replay_profile *pr, struct floe_batch *b, uint32_t i,
                               uint64_t epoch, uint32_t seq, int64_t t0, int64_t t_end)
{
        static const char *const metric_names[REPLAY_METRICS_MAX] = {
                "temp", "humidity", "pressure", "voltage",   "current",   "power",    "energy",
                "flow", "level",    "rpm",      "vibration", "co2",       "pm25",     "pm10",
                "lux",  "noise",    "battery",  "rssi",      "frequency", "setpoint",
        };
        static const int divisors[3] = {10, 100, 1};
        uint32_t order[REPLAY_SENSORS_MAX], series[REPLAY_SENSORS_MAX][REPLAY_METRICS_MAX];
        double x[REPLAY_SENSORS_MAX][REPLAY_METRICS_MAX];
        uint64_t st[REPLAY_SENSORS_MAX][REPLAY_METRICS_MAX];
        int64_t phase[REPLAY_SENSORS_MAX];
        char id[FLOE_IDENTITY_MAX + 1], name[32];
        uint64_t key = replay_mix(pr->seed ^ ((uint64_t)i << 20));
        int r;

        if (pr->sensors > REPLAY_SENSORS_MAX || pr->metrics > REPLAY_METRICS_MAX)
                return -EINVAL;
        floe_batch_reset(b);
        replay_identity(pr, i, id, sizeof(id));
        r = floe_batch_set_identity(b, id);
        if (r < 0)
                return r;
        b->epoch = epoch;
        b->seq = seq;
        b->created_us = t_end ? t_end : t0 + (int64_t)seq * pr->seconds * 1000000;
        for (uint32_t s = 0; s < pr->sensors; s++) {
                snprintf(name, sizeof(name), "sensor-%02" PRIu32, s);
                for (uint32_t m = 0; m < pr->metrics; m++) {
                        r = floe_batch_intern_series(b, name, strlen(name), metric_names[m],
                                                     strlen(metric_names[m]), &series[s][m]);
                        if (r < 0)
                                return r;
                        /* the series' level, moved per batch */
                        st[s][m] = replay_mix(key ^ ((uint64_t)(s << 8 | m) << 32) ^ seq);
                        x[s][m] = (double)(replay_mix(key + s * 131 + m) % 20000) - 5000.0 +
                                  (double)(st[s][m] % 400) - 200.0;
                }
                phase[s] = (int64_t)(replay_mix(key + 7919 * (s + 1)) % 1000000);
                order[s] = s;
        }
        /* rows in time order: sensors by phase (insertion sort of a few dozen) */
        for (uint32_t a = 1; a < pr->sensors; a++)
                for (uint32_t c = a; c > 0 && phase[order[c]] < phase[order[c - 1]]; c--) {
                        uint32_t tmp = order[c];

                        order[c] = order[c - 1];
                        order[c - 1] = tmp;
                }
        for (uint32_t k = 0; k < pr->seconds; k++)
                for (uint32_t n = 0; n < pr->sensors; n++) {
                        uint32_t s = t_end ? n : order[n];
                        int64_t ts;

                        if (t_end)
                                ts = t_end - (int64_t)(pr->seconds - 1 - k) * 1000000 -
                                     (int64_t)(pr->sensors - 1 - n) * 10;
                        else
                                ts = t0 + ((int64_t)(seq - 1) * pr->seconds + k) * 1000000 +
                                     phase[s] - 2000 +
                                     (int64_t)(replay_mix(key ^ seq ^ ((uint64_t)k << 40) ^ s) %
                                               4001);
                        for (uint32_t m = 0; m < pr->metrics; m++) {
                                if (k > 0)
                                        x[s][m] += nearbyint(2.0 * replay_gauss(&st[s][m]));
                                r = floe_batch_add_event(b, series[s][m], ts,
                                                         x[s][m] / divisors[s % 3], false, NULL, 0);
                                if (r < 0)
                                        return r;
                        }
                }
        return 0;
}
