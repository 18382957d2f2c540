/* SPDX-License-Identifier: Apache-2.0 */
/* floe-lake import: NDJSON rows or floe batch files through the table writer, one commit per
 * table (docs/lake.md). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "floe-alloc.h"
#include "floe-wire.h"
#include "ice-cli-internal.h"
#include "ice-floe.h"
#include "ice-writer.h"
#include "store.h"

#define MAX_TARGETS 8
#define FLUSH_ROWS  4096
#define ARENA_CHUNK (256u * 1024)

struct target {
        char ns[256], name[256], label[520];
        struct ice_writer *w;
        const struct parquet_column *cols;
        size_t n_cols;
};

/* NDJSON rows of one table, column by column. */
struct rowbuf {
        size_t n;
        void **data;
        uint8_t **valid;
        size_t n_cols;
        char **chunks; /* string bytes */
        size_t n_chunks, used;
};

struct importer {
        struct ice_cli *c;
        struct target t[MAX_TARGETS];
        size_t n;
        int64_t now_us;
        struct floe_wire_limits lim;
        struct floe_wire_decoder *dec;
        struct floe_batch *b;
        struct ice_floe_rows rows;
};

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int create_floe_table(struct importer *im, const char *ns, const char *name,
                             enum floe_batch_kind kind)
{
        char err[512];
        int r;

        r = ice_floe_table_create(im->c->store, im->c->cat, ns, name, kind, im->now_us / 1000, err,
                                  sizeof(err));
        if (r == 0 && im->c->verbose)
                fprintf(stderr, "floe-lake: created %s.%s\n", ns, name);
        if (r < 0 && r != -EEXIST) /* -EEXIST: someone else just did */
                fprintf(stderr, "cannot create %s\n", err);
        return r == -EEXIST ? 0 : r;
}

/* The writer of ns.name, opened on first use; kind >= 0: created as a floe table if absent. */
static int target(struct importer *im, const char *ns, const char *name, int kind,
                  struct target **ret)
{
        struct target *t;
        char err[512];
        int r;

        for (size_t i = 0; i < im->n; i++)
                if (strcmp(im->t[i].ns, ns) == 0 && strcmp(im->t[i].name, name) == 0) {
                        *ret = &im->t[i];
                        return 0;
                }
        if (im->n == MAX_TARGETS)
                return -E2BIG;
        t = &im->t[im->n];
        *t = (struct target){0};
        snprintf(t->ns, sizeof(t->ns), "%s", ns);
        snprintf(t->name, sizeof(t->name), "%s", name);
        snprintf(t->label, sizeof(t->label), "%s.%s", ns, name);
        r = ice_writer_open(im->c->store, im->c->cat, ns, name, &im->c->conf.writer, &t->w, err,
                            sizeof(err));
        if (r == -ENOENT && kind >= 0) {
                r = create_floe_table(im, ns, name, (enum floe_batch_kind)kind);
                if (r == 0)
                        r = ice_writer_open(im->c->store, im->c->cat, ns, name, &im->c->conf.writer,
                                            &t->w, err, sizeof(err));
        }
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return r;
        }
        ice_writer_set_retry_fn(t->w, ice_cli_log_retry, t->label);
        t->cols = ice_writer_columns(t->w, &t->n_cols);
        if (im->c->verbose)
                fprintf(stderr, "floe-lake: opened %s at %s\n", t->label,
                        ice_writer_table(t->w)->metadata_location);
        im->n++;
        *ret = t;
        return 0;
}

/* ---- NDJSON ---- */

static void rowbuf_clear(struct rowbuf *rb)
{
        for (size_t c = 0; c < rb->n_cols; c++) {
                floe_free(rb->data[c]);
                floe_free(rb->valid[c]);
        }
        for (size_t i = 0; i < rb->n_chunks; i++)
                floe_free(rb->chunks[i]);
        floe_free(rb->chunks);
        floe_free(rb->data);
        floe_free(rb->valid);
        *rb = (struct rowbuf){0};
}

static int rowbuf_init(struct rowbuf *rb, const struct target *t)
{
        *rb = (struct rowbuf){.n_cols = t->n_cols};
        rb->data = floe_calloc(t->n_cols + 1, sizeof(*rb->data));
        rb->valid = floe_calloc(t->n_cols + 1, sizeof(*rb->valid));
        if (!rb->data || !rb->valid)
                return -ENOMEM;
        for (size_t c = 0; c < t->n_cols; c++) {
                rb->data[c] = floe_calloc(FLUSH_ROWS, ice_writer_width(t->cols[c].kind));
                rb->valid[c] = floe_calloc(FLUSH_ROWS, 1);
                if (!rb->data[c] || !rb->valid[c])
                        return -ENOMEM;
        }
        return 0;
}

/* A copy of a string that lives until the rows are flushed. */
static const char *keep(struct rowbuf *rb, const char *s, size_t len)
{
        char **v, *p;

        if (rb->n_chunks == 0 || ARENA_CHUNK - rb->used < len || len > ARENA_CHUNK / 4) {
                size_t size = len > ARENA_CHUNK / 4 ? len + 1 : ARENA_CHUNK;

                v = floe_reallocarray(rb->chunks, rb->n_chunks + 1, sizeof(*v));
                if (!v)
                        return NULL;
                rb->chunks = v;
                p = floe_malloc(size);
                if (!p)
                        return NULL;
                rb->chunks[rb->n_chunks++] = p;
                rb->used = len > ARENA_CHUNK / 4 ? ARENA_CHUNK : 0;
                memcpy(p, s, len);
                if (len > ARENA_CHUNK / 4)
                        return p;
        }
        p = rb->chunks[rb->n_chunks - 1] + rb->used;
        memmove(p, s, len);
        rb->used += len;
        return p;
}

static int flush_rows(struct target *t, struct rowbuf *rb)
{
        _cleanup_free_ struct parquet_values *v = floe_calloc(t->n_cols + 1, sizeof(*v));
        int r;

        if (!v)
                return -ENOMEM;
        if (rb->n == 0)
                return 0;
        for (size_t c = 0; c < t->n_cols; c++)
                v[c] = (struct parquet_values){rb->data[c], rb->valid[c]};
        r = ice_writer_write(t->w, v, rb->n);
        if (r < 0)
                fprintf(stderr, "%s: %s\n", t->label, ice_writer_error(t->w));
        for (size_t i = 0; i < rb->n_chunks; i++)
                floe_free(rb->chunks[i]);
        rb->n_chunks = rb->used = 0;
        rb->n = 0;
        return r;
}

static bool get_double(json_t *v, double *ret)
{
        const char *s = json_string_value(v);

        if (json_is_number(v))
                *ret = json_number_value(v);
        else if (s && strcmp(s, "NaN") == 0)
                *ret = NAN;
        else if (s && strcmp(s, "Infinity") == 0)
                *ret = INFINITY;
        else if (s && strcmp(s, "-Infinity") == 0)
                *ret = -INFINITY;
        else
                return false;
        return true;
}

/* Row values the NDJSON form leaves out (DESIGN.md "Rows and tables"): when it was taken, and
 * no batch. */
static bool fill_default(const struct importer *im, const struct parquet_column *col, void *slot)
{
        int64_t v;

        if (strcmp(col->name, "received_at") == 0 && col->kind == PARQUET_KIND_TIMESTAMPTZ)
                v = im->now_us;
        else if ((strcmp(col->name, "batch_epoch") == 0 || strcmp(col->name, "batch_seq") == 0) &&
                 col->kind == PARQUET_KIND_LONG)
                v = 0;
        else
                return false;
        memcpy(slot, &v, sizeof(v));
        return true;
}

static int set_value(struct rowbuf *rb, const struct parquet_column *col, json_t *v, void *slot,
                     char *err, size_t size)
{
        json_int_t i = json_integer_value(v);
        double d;

        switch (col->kind) {
        case PARQUET_KIND_BOOLEAN:
                if (!json_is_boolean(v))
                        break;
                *(bool *)slot = json_is_true(v);
                return 0;
        case PARQUET_KIND_INT:
        case PARQUET_KIND_DATE:
                if (!json_is_integer(v) || i < INT32_MIN || i > INT32_MAX)
                        break;
                *(int32_t *)slot = (int32_t)i;
                return 0;
        case PARQUET_KIND_FLOAT:
        case PARQUET_KIND_DOUBLE:
                if (!get_double(v, &d))
                        break;
                if (col->kind == PARQUET_KIND_FLOAT)
                        *(float *)slot = (float)d;
                else
                        *(double *)slot = d;
                return 0;
        case PARQUET_KIND_STRING: {
                struct parquet_str *s = slot;
                size_t len = json_string_length(v);

                if (!json_is_string(v))
                        break;
                s->ptr = keep(rb, json_string_value(v), len);
                s->len = (uint32_t)len;
                return s->ptr ? 0 : -ENOMEM;
        }
        default:
                if (!json_is_integer(v))
                        break;
                *(int64_t *)slot = (int64_t)i;
                return 0;
        }
        snprintf(err, size, "%s: not a %s", col->name, parquet_kind_name(col->kind));
        return -EINVAL;
}

static int parse_row(struct importer *im, struct target *t, struct rowbuf *rb, const char *line,
                     size_t len, char *err, size_t size)
{
        json_error_t je;
        json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
        const char *key;
        json_t *v;
        int r = 0;

        if (!json_is_object(o)) {
                snprintf(err, size, "%s", o ? "not a JSON object" : je.text);
                json_decref(o);
                return -EINVAL;
        }
        json_object_foreach(o, key, v)
        {
                if (ice_writer_column_index(t->w, key) < 0) {
                        snprintf(err, size, "%s: no such column in %s", key, t->label);
                        json_decref(o);
                        return -EINVAL;
                }
        }
        for (size_t c = 0; r == 0 && c < t->n_cols; c++) {
                const struct parquet_column *col = &t->cols[c];
                uint8_t *slot = (uint8_t *)rb->data[c] + rb->n * ice_writer_width(col->kind);

                v = json_object_get(o, col->name);
                rb->valid[c][rb->n] = 1;
                if (v && !json_is_null(v)) {
                        r = set_value(rb, col, v, slot, err, size);
                } else if (!fill_default(im, col, slot)) {
                        rb->valid[c][rb->n] = 0;
                        memset(slot, 0, ice_writer_width(col->kind));
                        if (col->required) {
                                snprintf(err, size, "%s: required", col->name);
                                r = -EINVAL;
                        }
                }
        }
        json_decref(o);
        if (r == 0)
                rb->n++;
        return r;
}

static int import_ndjson(struct importer *im, FILE *f, const char *name)
{
        struct target *t;
        struct rowbuf rb;
        char *line = NULL, err[1024];
        size_t cap = 0;
        unsigned long lineno = 0;
        ssize_t len;
        int r;

        if (!im->c->table) {
                fprintf(stderr, "%s: NDJSON rows need --table\n", name);
                return -EINVAL;
        }
        r = target(im, im->c->ns, im->c->name, -1, &t);
        if (r < 0)
                return r;
        r = rowbuf_init(&rb, t);
        while (r == 0 && (len = getline(&line, &cap, f)) >= 0) {
                lineno++;
                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        len--;
                if (len == 0)
                        continue;
                r = parse_row(im, t, &rb, line, (size_t)len, err, sizeof(err));
                if (r < 0 && r != -ENOMEM)
                        fprintf(stderr, "%s:%lu: %s\n", name, lineno, err);
                if (r == 0 && rb.n == FLUSH_ROWS)
                        r = flush_rows(t, &rb);
        }
        if (r == 0 && ferror(f)) {
                fprintf(stderr, "%s: read error\n", name);
                r = -EIO;
        }
        if (r == 0)
                r = flush_rows(t, &rb);
        free(line);
        rowbuf_clear(&rb);
        return r;
}

/* ---- batch files ---- */

static int read_all(FILE *f, size_t max, uint8_t **ret, size_t *ret_len)
{
        size_t len = 0, cap = 65536;
        uint8_t *buf = floe_malloc(cap);

        if (!buf)
                return -ENOMEM;
        for (;;) {
                size_t n;

                if (len == cap) {
                        uint8_t *p;

                        if (cap > max) {
                                floe_free(buf);
                                return -EFBIG;
                        }
                        p = floe_realloc(buf, cap * 2);
                        if (!p) {
                                floe_free(buf);
                                return -ENOMEM;
                        }
                        buf = p;
                        cap *= 2;
                }
                n = fread(buf + len, 1, cap - len, f);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(f)) {
                floe_free(buf);
                return -EIO;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static int import_batch(struct importer *im, FILE *f, const char *name)
{
        _cleanup_free_ uint8_t *data = NULL;
        struct floe_wire_error werr;
        struct target *t;
        char err[256];
        size_t len;
        int r;

        r = read_all(f, im->lim.max_compressed, &data, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", name, strerror(-r));
                return r;
        }
        r = floe_wire_decode_into(im->dec, data, len, im->b, &werr);
        if (r < 0) {
                floe_wire_error_format(&werr, err, sizeof(err));
                fprintf(stderr, "%s: not a batch: %s\n", name, err);
                return r;
        }
        if (im->c->table)
                r = target(im, im->c->ns, im->c->name, -1, &t);
        else
                r = target(im, im->c->ns_opt ? im->c->ns_opt : "floe",
                           ice_floe_table_name(im->b->kind), (int)im->b->kind, &t);
        if (r < 0)
                return r;
        r = ice_floe_rows_from_batch(&im->rows, im->b, im->now_us, t->cols, t->n_cols, err,
                                     sizeof(err));
        if (r < 0) {
                fprintf(stderr, "%s: %s: %s\n", name, t->label, err);
                return r;
        }
        r = ice_writer_write(t->w, im->rows.values, im->rows.n_rows);
        if (r < 0)
                fprintf(stderr, "%s: %s: %s\n", name, t->label, ice_writer_error(t->w));
        return r;
}

static int import_one(struct importer *im, const char *path)
{
        bool std = strcmp(path, "-") == 0;
        FILE *f = std ? stdin : fopen(path, "rbe");
        const char *fmt = im->c->format ? im->c->format : "auto";
        bool batch;
        int r, ch;

        if (!f) {
                r = -errno;
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        if (strcmp(fmt, "auto") == 0) {
                ch = getc(f); /* a zstd frame starts 28 b5 2f fd; NDJSON with '{' */
                batch = ch == 0x28;
                if (ch != EOF)
                        ungetc(ch, f);
        } else {
                batch = strcmp(fmt, "batch") == 0;
        }
        r = batch ? import_batch(im, f, path) : import_ndjson(im, f, path);
        if (!std)
                fclose(f);
        return r;
}

static int commit_all(struct importer *im)
{
        int r = 0;

        for (size_t i = 0; i < im->n; i++) {
                struct target *t = &im->t[i];
                struct ice_writer_commit c = {.summary = im->c->summary,
                                              .n_summary = im->c->n_summary};
                struct ice_writer_result res;
                int k = ice_writer_commit(t->w, &c, &res);

                if (k < 0) {
                        fprintf(stderr, "%s: commit failed: %s\n", t->label,
                                ice_writer_error(t->w));
                        for (size_t o = 0; o < ice_writer_orphans(t->w)->n; o++)
                                fprintf(stderr, "%s: orphan file left: %s\n", t->label,
                                        ice_writer_orphans(t->w)->v[o]);
                        r = r < 0 ? r : k;
                        continue;
                }
                if (im->c->json)
                        printf("{\"table\":\"%s\",\"snapshot-id\":%" PRId64 ",\"files\":%zu,"
                               "\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"retries\":%d}\n",
                               t->label, res.snapshot_id, res.files, res.records, res.bytes,
                               res.retries);
                else
                        printf("%s: snapshot %" PRId64 ": %zu files, %" PRIu64 " records\n",
                               t->label, res.snapshot_id, res.files, res.records);
        }
        return r;
}

int ice_cli_import(struct ice_cli *c)
{
        struct importer im = {.c = c, .now_us = now_us()};
        char *stdin_only[] = {(char *)"-"};
        char **args = c->n_args ? c->args : stdin_only;
        int n = c->n_args ? c->n_args : 1, r;

        if (c->format && strcmp(c->format, "auto") != 0 && strcmp(c->format, "ndjson") != 0 &&
            strcmp(c->format, "batch") != 0) {
                fprintf(stderr, "--format: auto, ndjson or batch\n");
                return -EINVAL;
        }
        r = c->table ? ice_cli_open_warehouse(c) : ice_cli_open_store(c);
        floe_wire_limits_default(&im.lim);
        if (r == 0)
                r = floe_wire_decoder_new(&im.lim, &im.dec);
        if (r == 0)
                r = floe_batch_new(FLOE_KIND_EVENTS, &im.lim, &im.b);
        if (r == 0 && c->table) { /* opened before any input is read: a missing table fails
                                   * at once, and rows from a pipe meet an open table */
                struct target *t;

                r = target(&im, c->ns, c->name, -1, &t);
        }
        for (int i = 0; r == 0 && i < n; i++)
                r = import_one(&im, args[i]);
        if (r == 0)
                r = commit_all(&im);
        for (size_t i = 0; i < im.n; i++)
                ice_writer_free(im.t[i].w); /* after a failure: its files are deleted */
        ice_floe_rows_clear(&im.rows);
        floe_batch_free(im.b);
        floe_wire_decoder_free(im.dec);
        return r;
}
