/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The reference telemetry profile of the wire-format benchmark:
 * 1,000 sensors x 20 metrics sampled at 1 Hz. Every series is a random walk
 * (Gaussian steps, sigma = 2 quanta) quantised to its sensor's resolution:
 * 0.1, 0.01 or 1, as a device would report "21.5". Each sensor samples all of
 * its metrics at one instant: a fixed phase within the second plus uniform
 * jitter of +-2 ms; rows arrive in timestamp order. Deterministic (seeded).
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define PROFILE_SENSORS 1000
#define PROFILE_METRICS 20
#define PROFILE_T0      1763676000000000LL

struct profile_row {
        uint16_t sensor;
        uint16_t metric;
        int64_t ts;
        double value;
};

struct profile {
        uint64_t rng;
        char sensor_name[PROFILE_SENSORS][16];
        const char *metric_name[PROFILE_METRICS];
        int divisor[PROFILE_SENSORS]; /* 10, 100 or 1 */
        int64_t phase[PROFILE_SENSORS];
        double x[PROFILE_SENSORS][PROFILE_METRICS]; /* the walk, in quanta */
        uint32_t second;
};

static inline uint64_t profile_rand(struct profile *p)
{
        /* splitmix64 */
        uint64_t z = (p->rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static inline double profile_uniform(struct profile *p)
{
        return (double)(profile_rand(p) >> 11) * 0x1.0p-53;
}

static inline double profile_gauss(struct profile *p)
{
        double u = profile_uniform(p), v = profile_uniform(p);

        return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static inline void profile_init(struct profile *p, uint64_t seed)
{
        static const char *const metrics[PROFILE_METRICS] = {
                "temp", "humidity", "pressure", "voltage",   "current",   "power",    "energy",
                "flow", "level",    "rpm",      "vibration", "co2",       "pm25",     "pm10",
                "lux",  "noise",    "battery",  "rssi",      "frequency", "setpoint",
        };
        static const int divisors[3] = {10, 100, 1};

        p->rng = seed;
        p->second = 0;
        for (int m = 0; m < PROFILE_METRICS; m++)
                p->metric_name[m] = metrics[m];
        for (int s = 0; s < PROFILE_SENSORS; s++) {
                snprintf(p->sensor_name[s], sizeof(p->sensor_name[s]), "sensor-%04d", s);
                p->divisor[s] = divisors[s % 3];
                p->phase[s] = (int64_t)(profile_rand(p) % 1000000);
                for (int m = 0; m < PROFILE_METRICS; m++)
                        p->x[s][m] = (double)(profile_rand(p) % 20000) - 5000.0;
        }
}

static inline int profile_cmp_ts(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

/* Appends one second of the profile (20,000 rows) to rows. */
static inline void profile_second(struct profile *p, struct profile_row *rows)
{
        int64_t order[PROFILE_SENSORS][2];
        size_t n = 0;

        for (int s = 0; s < PROFILE_SENSORS; s++) {
                int64_t jitter = (int64_t)(profile_rand(p) % 4001) - 2000;

                order[s][0] = PROFILE_T0 + (int64_t)p->second * 1000000 + p->phase[s] + jitter;
                order[s][1] = s;
        }
        qsort(order, PROFILE_SENSORS, sizeof(order[0]), profile_cmp_ts);
        for (int i = 0; i < PROFILE_SENSORS; i++) {
                int s = (int)order[i][1];

                for (int m = 0; m < PROFILE_METRICS; m++) {
                        p->x[s][m] += 2.0 * profile_gauss(p);
                        rows[n++] = (struct profile_row){
                                .sensor = (uint16_t)s,
                                .metric = (uint16_t)m,
                                .ts = order[i][0],
                                .value = nearbyint(p->x[s][m]) / p->divisor[s],
                        };
                }
        }
        p->second++;
}
