/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parquet writer benchmark (make bench): rows/s and bytes/row writing 1M rows
 * of the floe.events-like schema (ts timestamptz, tenant, device, sensor,
 * metric strings, value double, seq long) from the reference telemetry
 * profile (profile.h), next to DuckDB writing the same rows with
 * COPY ... (FORMAT parquet, COMPRESSION zstd) and SET threads=1 in the same
 * run (tests/node/bench-duckdb.mjs). Times are wall clock, best of ROUNDS.
 * Skips DuckDB (with a note) when tests/node/node_modules is absent. With
 * FLOE_BENCH_JSON=DIR the figures also go to DIR/bench-parquet.json.
 */
#include <errno.h>
#include <fcntl.h>
#include "bench-json.h"
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parquet.h"
#include "profile.h"

#define ROWS   1000000
#define ROUNDS 5
#define NCOLS  7

extern char **environ;

struct rows {
        int64_t *ts, *seq;
        double *value;
        struct parquet_str *tenant, *device, *sensor, *metric;
        char tenants[4][16], devices[PROFILE_SENSORS / 20][16];
};

struct memsink {
        uint8_t *data;
        size_t len, cap;
};

static void die(const char *what, int r)
{
        fprintf(stderr, "bench-parquet: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static double now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int mem_write(void *userdata, const void *data, size_t len)
{
        struct memsink *m = userdata;

        if (m->cap - m->len < len) {
                size_t cap = m->cap ? m->cap : 1 << 20;
                uint8_t *p;

                while (cap - m->len < len)
                        cap *= 2;
                p = realloc(m->data, cap);
                if (!p)
                        return -ENOMEM;
                m->data = p;
                m->cap = cap;
        }
        memcpy(m->data + m->len, data, len);
        m->len += len;
        return 0;
}

static void make_rows(struct rows *r)
{
        static struct profile p;
        struct profile_row *sec = malloc(sizeof(*sec) * PROFILE_SENSORS * PROFILE_METRICS);
        static const char *const tenants[4] = {"acme", "globex", "initech", "umbrella"};
        size_t n = 0;

        r->ts = malloc(ROWS * sizeof(*r->ts));
        r->seq = malloc(ROWS * sizeof(*r->seq));
        r->value = malloc(ROWS * sizeof(*r->value));
        r->tenant = malloc(ROWS * sizeof(*r->tenant));
        r->device = malloc(ROWS * sizeof(*r->device));
        r->sensor = malloc(ROWS * sizeof(*r->sensor));
        r->metric = malloc(ROWS * sizeof(*r->metric));
        if (!sec || !r->ts || !r->seq || !r->value || !r->tenant || !r->device || !r->sensor ||
            !r->metric)
                die("rows", -ENOMEM);
        for (int t = 0; t < 4; t++)
                snprintf(r->tenants[t], sizeof(r->tenants[t]), "%s", tenants[t]);
        for (int d = 0; d < PROFILE_SENSORS / 20; d++)
                snprintf(r->devices[d], sizeof(r->devices[d]), "gw-%04d", d);
        profile_init(&p, 0x5eed);
        while (n < ROWS) {
                profile_second(&p, sec);
                for (int i = 0; i < PROFILE_SENSORS * PROFILE_METRICS && n < ROWS; i++, n++) {
                        int s = sec[i].sensor, d = s / 20;

                        r->ts[n] = sec[i].ts;
                        r->value[n] = sec[i].value;
                        r->seq[n] = (int64_t)(n / 1000) + 1; /* the agent's batch seq */
                        r->tenant[n] = (struct parquet_str){r->tenants[d % 4],
                                                            (uint32_t)strlen(r->tenants[d % 4])};
                        r->device[n] = (struct parquet_str){r->devices[d],
                                                            (uint32_t)strlen(r->devices[d])};
                        r->sensor[n] = (struct parquet_str){p.sensor_name[s],
                                                            (uint32_t)strlen(p.sensor_name[s])};
                        r->metric[n] = (struct parquet_str){
                                p.metric_name[sec[i].metric],
                                (uint32_t)strlen(p.metric_name[sec[i].metric])};
                }
        }
        free(sec);
}

static const struct parquet_column columns[NCOLS] = {
        {"ts", 5, PARQUET_KIND_TIMESTAMPTZ, true}, {"tenant", 1, PARQUET_KIND_STRING, true},
        {"device", 2, PARQUET_KIND_STRING, true},  {"sensor", 3, PARQUET_KIND_STRING, true},
        {"metric", 4, PARQUET_KIND_STRING, true},  {"value", 6, PARQUET_KIND_DOUBLE, false},
        {"seq", 10, PARQUET_KIND_LONG, true},
};

/* Writes all rows in batches of batch rows; returns the best wall time. */
static double write_file(const struct rows *r, const struct parquet_options *o, size_t batch,
                         struct memsink *out)
{
        double best = 1e9;

        for (int round = 0; round < ROUNDS; round++) {
                struct parquet_sink sink = {mem_write, out};
                struct parquet_writer *w;
                double t0, t;
                int ret;

                out->len = 0;
                t0 = now();
                ret = parquet_writer_new(columns, NCOLS, o, &sink, &w);
                for (size_t i = 0; ret == 0 && i < ROWS; i += batch) {
                        size_t n = ROWS - i < batch ? ROWS - i : batch;
                        struct parquet_values v[NCOLS] = {
                                {r->ts + i, NULL},     {r->tenant + i, NULL}, {r->device + i, NULL},
                                {r->sensor + i, NULL}, {r->metric + i, NULL}, {r->value + i, NULL},
                                {r->seq + i, NULL},
                        };

                        ret = parquet_writer_write(w, v, n);
                }
                if (ret == 0)
                        ret = parquet_writer_close(w, NULL);
                t = now() - t0;
                if (ret < 0)
                        die(parquet_writer_error(w), ret);
                parquet_writer_free(w);
                best = t < best ? t : best;
        }
        return best;
}

static void save(const char *path, const struct memsink *m)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0 || write(fd, m->data, m->len) != (ssize_t)m->len || close(fd) < 0)
                die(path, -errno);
}

/* node bench-duckdb.mjs IN OUT ROUNDS, run in tests/node; its JSON line on stdout. */
static int run_duckdb(const char *in, const char *out, char *result, size_t size)
{
        char rounds[16],
                *argv[] = {"node", "bench-duckdb.mjs", (char *)in, (char *)out, rounds, NULL};
        posix_spawn_file_actions_t fa;
        int pipefd[2], status;
        ssize_t n, len = 0;
        pid_t pid;

        snprintf(rounds, sizeof(rounds), "%d", ROUNDS);
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
        posix_spawn_file_actions_addchdir_np(&fa, "tests/node");
        if (posix_spawnp(&pid, "node", &fa, NULL, argv, environ) != 0) {
                posix_spawn_file_actions_destroy(&fa);
                close(pipefd[0]);
                close(pipefd[1]);
                return -ENOENT;
        }
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[1]);
        while (len < (ssize_t)size - 1 && (n = read(pipefd[0], result + len, size - 1 - len)) > 0)
                len += n;
        result[len] = '\0';
        close(pipefd[0]);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EIO;
        return 0;
}

static double json_num(const char *json, const char *key)
{
        char pat[64];
        const char *p;

        snprintf(pat, sizeof(pat), "\"%s\":", key);
        p = strstr(json, pat);
        return p ? strtod(p + strlen(pat), NULL) : -1;
}

static json_t *floe_json(int level, double seconds, size_t bytes)
{
        return json_pack("{s:i, s:f, s:f, s:I, s:f}", "zstd_level", level, "seconds", seconds,
                         "rows_per_s", ROWS / seconds, "bytes", (json_int_t)bytes, "bytes_per_row",
                         (double)bytes / ROWS);
}

int main(void)
{
        static struct rows rows;
        struct parquet_options o;
        struct memsink m = {0};
        char dir[] = "/tmp/bench-parquet.XXXXXX", in[64], out[64], result[4096], *v;
        struct stat st;
        json_t *js = json_pack("{s:s, s:i, s:i, s:i}", "bench", "bench-parquet", "rows", ROWS,
                               "rounds", ROUNDS, "duckdb_threads", 1);
        double t, t1, duck_s, duck_bytes;
        size_t bytes, bytes1;
        int r = 0;

        make_rows(&rows);
        printf("%d rows of ts timestamptz, tenant, device, sensor, metric strings, value double, "
               "seq long;\nwall clock, best of %d rounds (DuckDB's between two of ours)\n",
               ROWS, ROUNDS);
        parquet_options_init(&o);
        t = write_file(&rows, &o, 65536, &m);
        bytes = m.len;
        if (!mkdtemp(dir))
                die("mkdtemp", -errno);
        snprintf(in, sizeof(in), "%s/floe.parquet", dir);
        snprintf(out, sizeof(out), "%s/duckdb.parquet", dir);
        save(in, &m);
        o.zstd_level = 1;
        t1 = write_file(&rows, &o, 65536, &m);
        bytes1 = m.len;
        o.zstd_level = 3;
        o.int_delta = true;
        o.float_split = true;
        (void)write_file(&rows, &o, 65536, &m);
        printf("floe, zstd 3, delta + byte-stream-split:  %6.2f bytes/row\n", (double)m.len / ROWS);
        json_object_set_new(js, "floe_zstd1", floe_json(1, t1, bytes1));
        json_object_set_new(js, "floe_delta_split_bytes_per_row", json_real((double)m.len / ROWS));
        printf("floe, zstd 1:            %8.0f rows/s  %6.2f bytes/row  (%.3f s, %zu bytes)\n",
               ROWS / t1, (double)bytes1 / ROWS, t1, bytes1);

        if (stat("tests/node/node_modules/@duckdb/node-api", &st) < 0) {
                printf("duckdb: skipped (tests/node/node_modules absent: scripts/install-deps)\n");
                json_object_set_new(js, "duckdb_skipped",
                                    json_string("tests/node/node_modules absent"));
        } else if ((r = run_duckdb(in, out, result, sizeof(result))) < 0) {
                fprintf(stderr, "bench-parquet: duckdb run failed\n");
                json_object_set_new(js, "duckdb_skipped", json_string("duckdb run failed"));
        } else {
                parquet_options_init(&o);
                t1 = write_file(&rows, &o, 65536, &m);
                t = t1 < t ? t1 : t;
                duck_s = json_num(result, "seconds");
                duck_bytes = json_num(result, "bytes");
                v = strstr(result, "\"version\":\"");
                printf("floe, zstd 3 (default):  %8.0f rows/s  %6.2f bytes/row  (%.3f s, %zu "
                       "bytes)\n",
                       ROWS / t, (double)bytes / ROWS, t, bytes);
                printf("duckdb %.*s, zstd, threads=1: %8.0f rows/s  %6.2f bytes/row  (%.3f s, "
                       "%.0f bytes; median %.3f s)\n",
                       v ? (int)strcspn(v + 11, "\"") : 0, v ? v + 11 : "", ROWS / duck_s,
                       duck_bytes / ROWS, duck_s, duck_bytes, json_num(result, "median"));
                printf("floe / duckdb: %.2fx rows/s, %.3fx bytes\n", duck_s / t,
                       (double)bytes / duck_bytes);
                json_object_set_new(
                        js, "duckdb",
                        json_pack("{s:s#, s:f, s:f, s:f, s:f, s:f}", "version", v ? v + 11 : "",
                                  v ? (int)strcspn(v + 11, "\"") : 0, "seconds", duck_s, "median_s",
                                  json_num(result, "median"), "rows_per_s", ROWS / duck_s, "bytes",
                                  duck_bytes, "bytes_per_row", duck_bytes / ROWS));
                if (json_num(result, "rows") != ROWS) {
                        fprintf(stderr, "bench-parquet: duckdb read %s rows from our file\n",
                                result);
                        r = -EIO;
                }
        }
        json_object_set_new(js, "floe", floe_json(3, t, bytes));
        if (bench_json_write("bench-parquet", js) < 0)
                r = -EIO;
        unlink(in);
        unlink(out);
        rmdir(dir);
        free(m.data);
        return r < 0 ? 1 : 0;
}
