/* SPDX-License-Identifier: Apache-2.0 */
/* floe-lake parquet-write and parquet-footer (docs/parquet.md). */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "floe-config.h"
#include "parquet-buf.h"
#include "parquet-cli.h"

#define BATCH_ROWS 8192

struct batch_col {
        const struct parquet_column *def;
        void *data;      /* BATCH_ROWS values of the column's C type */
        uint8_t *valid;  /* BATCH_ROWS */
        size_t *offsets; /* strings: offset into the batch's bytes */
};

struct batch {
        size_t n_cols, rows;
        struct batch_col *cols;
        struct parquet_values *values;
        struct parquet_buf bytes; /* string bytes of the batch */
};

static const char *prog = "floe-lake";

static void write_usage(FILE *f)
{
        fprintf(f,
                "Usage: %s parquet-write --schema SCHEMA.json --out FILE.parquet [OPTIONS] < ROWS\n"
                "\n"
                "Writes NDJSON rows (one object per line, keys = column names) as Parquet and\n"
                "prints the file's report (counts, sizes, bounds) as JSON.\n"
                "SCHEMA.json: [{\"name\",\"id\",\"type\",\"required\"}...] or an Iceberg schema;\n"
                "types: boolean int long float double date timestamp timestamptz string.\n"
                "  --compression zstd|none   --level N (zstd, default 3)\n"
                "  --row-group-size BYTES    --row-group-rows N\n"
                "  --page-size BYTES         --page-rows N\n"
                "  --dict-size BYTES (0: no dictionary)\n"
                "  --int-encoding plain|delta --float-encoding plain|byte-stream-split\n"
                "  --kv KEY=VALUE (repeatable) --stats-max BYTES\n",
                prog);
}

static int parse_size_arg(const char *opt, const char *s, uint64_t max, uint64_t *ret)
{
        uint64_t v;

        if (floe_parse_size(s, &v) < 0 || v > max) {
                fprintf(stderr, "%s: %s: invalid value '%s'\n", prog, opt, s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

struct schema {
        struct parquet_column *cols;
        size_t n;
};

static void schema_done(struct schema *s)
{
        for (size_t i = 0; i < s->n; i++)
                floe_free((char *)s->cols[i].name);
        floe_free(s->cols);
        *s = (struct schema){0};
}

/* The schema file: a list of columns, or an Iceberg struct with "fields". */
static int load_schema(const char *path, struct schema *ret)
{
        struct schema s = {0};
        json_error_t jerr;
        json_t *root, *list;
        FILE *f;
        int r = -EINVAL;

        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
                return r;
        }
        root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
        fclose(f);
        if (!root) {
                fprintf(stderr, "%s: %s:%d: %s\n", prog, path, jerr.line, jerr.text);
                return -EINVAL;
        }
        list = json_is_object(root) ? json_object_get(root, "fields") : root;
        if (!json_is_array(list) || json_array_size(list) == 0) {
                fprintf(stderr, "%s: %s: expected a non-empty list of columns\n", prog, path);
                goto out;
        }
        s.cols = floe_calloc(json_array_size(list), sizeof(*s.cols));
        if (!s.cols) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < json_array_size(list); i++) {
                json_t *c = json_array_get(list, i);
                const char *name = json_string_value(json_object_get(c, "name"));
                const char *type = json_string_value(json_object_get(c, "type"));
                json_t *id = json_object_get(c, "id"), *req = json_object_get(c, "required");
                struct parquet_column *col = &s.cols[i];

                if (!name || !name[0] || !type || !json_is_integer(id) ||
                    json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX ||
                    (req && !json_is_boolean(req)) ||
                    parquet_kind_from_name(type, &col->kind) < 0) {
                        fprintf(stderr,
                                "%s: %s: column %zu: needs a name, an id, a known type and a "
                                "boolean 'required'\n",
                                prog, path, i);
                        goto out;
                }
                col->name = floe_strdup(name);
                if (!col->name) {
                        r = -ENOMEM;
                        goto out;
                }
                s.n++;
                col->field_id = (int32_t)json_integer_value(id);
                col->required = json_is_true(req);
        }
        r = 0;
        *ret = s;
out:
        json_decref(root);
        if (r < 0)
                schema_done(&s);
        return r;
}

static size_t kind_size(enum parquet_kind k)
{
        switch (k) {
        case PARQUET_KIND_BOOLEAN:
                return sizeof(bool);
        case PARQUET_KIND_INT:
        case PARQUET_KIND_DATE:
                return sizeof(int32_t);
        case PARQUET_KIND_FLOAT:
                return sizeof(float);
        case PARQUET_KIND_STRING:
                return sizeof(struct parquet_str);
        default:
                return 8;
        }
}

static void batch_done(struct batch *b)
{
        for (size_t i = 0; b->cols && i < b->n_cols; i++) {
                floe_free(b->cols[i].data);
                floe_free(b->cols[i].valid);
                floe_free(b->cols[i].offsets);
        }
        floe_free(b->cols);
        floe_free(b->values);
        parquet_buf_done(&b->bytes);
}

static int batch_init(struct batch *b, const struct schema *s)
{
        *b = (struct batch){.n_cols = s->n};
        b->cols = floe_calloc(s->n, sizeof(*b->cols));
        b->values = floe_calloc(s->n, sizeof(*b->values));
        if (!b->cols || !b->values)
                return -ENOMEM;
        for (size_t i = 0; i < s->n; i++) {
                struct batch_col *c = &b->cols[i];

                c->def = &s->cols[i];
                c->data = floe_calloc(BATCH_ROWS, kind_size(c->def->kind));
                c->valid = floe_calloc(BATCH_ROWS, 1);
                if (c->def->kind == PARQUET_KIND_STRING)
                        c->offsets = floe_calloc(BATCH_ROWS, sizeof(size_t));
                if (!c->data || !c->valid || (c->def->kind == PARQUET_KIND_STRING && !c->offsets))
                        return -ENOMEM;
                b->values[i] = (struct parquet_values){.data = c->data, .valid = c->valid};
        }
        return 0;
}

static bool get_double(json_t *v, double *ret)
{
        const char *s = json_string_value(v);

        if (json_is_number(v)) {
                *ret = json_number_value(v);
                return true;
        }
        /* JSON has no NaN or infinities: these strings stand for them */
        if (s && strcmp(s, "NaN") == 0)
                *ret = NAN;
        else if (s && strcmp(s, "Infinity") == 0)
                *ret = INFINITY;
        else if (s && strcmp(s, "-Infinity") == 0)
                *ret = -INFINITY;
        else
                return false;
        return true;
}

/* One value of row b->rows; a message in err when it does not fit the column. */
static int parse_value(struct batch *b, struct batch_col *c, json_t *v, char *err, size_t size)
{
        size_t row = b->rows;
        json_int_t i = json_integer_value(v);
        double d;

        switch (c->def->kind) {
        case PARQUET_KIND_BOOLEAN:
                if (!json_is_boolean(v))
                        break;
                ((bool *)c->data)[row] = json_is_true(v);
                return 0;
        case PARQUET_KIND_INT:
        case PARQUET_KIND_DATE:
                if (!json_is_integer(v) || i < INT32_MIN || i > INT32_MAX)
                        break;
                ((int32_t *)c->data)[row] = (int32_t)i;
                return 0;
        case PARQUET_KIND_LONG:
        case PARQUET_KIND_TIMESTAMP:
        case PARQUET_KIND_TIMESTAMPTZ:
                if (!json_is_integer(v))
                        break;
                ((int64_t *)c->data)[row] = i;
                return 0;
        case PARQUET_KIND_FLOAT:
                /* finite doubles that would round to infinity are refused */
                if (!get_double(v, &d) || (isfinite(d) && fabs(d) >= (double)FLT_MAX + 0x1p103))
                        break;
                ((float *)c->data)[row] = (float)d;
                return 0;
        case PARQUET_KIND_DOUBLE:
                if (!get_double(v, &d))
                        break;
                ((double *)c->data)[row] = d;
                return 0;
        case PARQUET_KIND_STRING: {
                size_t len = json_string_length(v);

                if (!json_is_string(v) || len > UINT32_MAX)
                        break;
                c->offsets[row] = b->bytes.len;
                ((struct parquet_str *)c->data)[row].len = (uint32_t)len;
                return parquet_buf_append(&b->bytes, json_string_value(v), len);
        }
        default:
                break;
        }
        snprintf(err, size, "column '%s': not a %s value", c->def->name,
                 parquet_kind_name(c->def->kind));
        return -EINVAL;
}

static int parse_line(struct batch *b, const char *line, size_t len, char *err, size_t size)
{
        json_error_t jerr;
        const char *key;
        json_t *o, *v;
        int r = -EINVAL;

        o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!o) {
                snprintf(err, size, "column %d: %s", jerr.column, jerr.text);
                return -EINVAL;
        }
        if (!json_is_object(o)) {
                snprintf(err, size, "not a JSON object");
                goto out;
        }
        json_object_foreach(o, key, v)
        {
                size_t i;

                for (i = 0; i < b->n_cols; i++)
                        if (strcmp(b->cols[i].def->name, key) == 0)
                                break;
                if (i == b->n_cols) {
                        snprintf(err, size, "unknown column '%s'", key);
                        goto out;
                }
        }
        for (size_t i = 0; i < b->n_cols; i++) {
                struct batch_col *c = &b->cols[i];

                v = json_object_get(o, c->def->name);
                c->valid[b->rows] = v && !json_is_null(v);
                if (!c->valid[b->rows]) {
                        if (c->def->required) {
                                snprintf(err, size, "column '%s' is required", c->def->name);
                                goto out;
                        }
                        if (c->def->kind == PARQUET_KIND_STRING)
                                ((struct parquet_str *)c->data)[b->rows].len = 0;
                        continue;
                }
                r = parse_value(b, c, v, err, size);
                if (r < 0)
                        goto out;
        }
        b->rows++;
        r = 0;
out:
        json_decref(o);
        return r;
}

static int flush_batch(struct batch *b, struct parquet_writer *w)
{
        const char *base = b->bytes.data ? (const char *)b->bytes.data : "";
        int r;

        for (size_t i = 0; i < b->n_cols; i++) {
                struct batch_col *c = &b->cols[i];
                struct parquet_str *s = c->data;

                if (c->def->kind != PARQUET_KIND_STRING)
                        continue;
                for (size_t j = 0; j < b->rows; j++)
                        s[j].ptr = c->valid[j] ? base + c->offsets[j] : NULL;
        }
        r = parquet_writer_write(w, b->values, b->rows);
        b->rows = 0;
        b->bytes.len = 0;
        return r;
}

enum {
        OPT_SCHEMA = 256,
        OPT_OUT,
        OPT_COMPRESSION,
        OPT_LEVEL,
        OPT_RG_SIZE,
        OPT_RG_ROWS,
        OPT_PAGE_SIZE,
        OPT_PAGE_ROWS,
        OPT_DICT_SIZE,
        OPT_INT_ENC,
        OPT_FLOAT_ENC,
        OPT_KV,
        OPT_STATS_MAX,
        OPT_HELP,
};

static const struct option write_options[] = {
        {"schema", required_argument, NULL, OPT_SCHEMA},
        {"out", required_argument, NULL, OPT_OUT},
        {"compression", required_argument, NULL, OPT_COMPRESSION},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"row-group-size", required_argument, NULL, OPT_RG_SIZE},
        {"row-group-rows", required_argument, NULL, OPT_RG_ROWS},
        {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
        {"page-rows", required_argument, NULL, OPT_PAGE_ROWS},
        {"dict-size", required_argument, NULL, OPT_DICT_SIZE},
        {"int-encoding", required_argument, NULL, OPT_INT_ENC},
        {"float-encoding", required_argument, NULL, OPT_FLOAT_ENC},
        {"kv", required_argument, NULL, OPT_KV},
        {"stats-max", required_argument, NULL, OPT_STATS_MAX},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
};

struct write_args {
        const char *schema, *out;
        struct parquet_options opts;
        char **kv;
        size_t n_kv;
};

static int parse_write_args(int argc, char **argv, struct write_args *a)
{
        uint64_t v;
        int64_t level;
        int c;

        parquet_options_init(&a->opts);
        optind = 1;
        while ((c = getopt_long(argc, argv, "", write_options, NULL)) != -1) {
                switch (c) {
                case OPT_SCHEMA:
                        a->schema = optarg;
                        break;
                case OPT_OUT:
                        a->out = optarg;
                        break;
                case OPT_COMPRESSION:
                        if (strcmp(optarg, "zstd") == 0) {
                                a->opts.codec = PARQUET_CODEC_ZSTD;
                        } else if (strcmp(optarg, "none") == 0) {
                                a->opts.codec = PARQUET_CODEC_UNCOMPRESSED;
                        } else {
                                fprintf(stderr, "%s: --compression: zstd or none\n", prog);
                                return -EINVAL;
                        }
                        break;
                case OPT_LEVEL:
                        if (floe_parse_int64(optarg, &level) < 0 || level < -131072 || level > 22) {
                                fprintf(stderr, "%s: --level: invalid value '%s'\n", prog, optarg);
                                return -EINVAL;
                        }
                        a->opts.zstd_level = (int)level;
                        break;
                case OPT_RG_SIZE:
                        if (parse_size_arg("--row-group-size", optarg, UINT64_MAX, &v) < 0)
                                return -EINVAL;
                        a->opts.row_group_bytes = v;
                        break;
                case OPT_RG_ROWS:
                        if (parse_size_arg("--row-group-rows", optarg, UINT64_MAX, &v) < 0)
                                return -EINVAL;
                        a->opts.row_group_rows = v;
                        break;
                case OPT_PAGE_SIZE:
                        if (parse_size_arg("--page-size", optarg, UINT32_MAX, &v) < 0)
                                return -EINVAL;
                        a->opts.page_bytes = (uint32_t)v;
                        break;
                case OPT_PAGE_ROWS:
                        if (parse_size_arg("--page-rows", optarg, UINT32_MAX, &v) < 0)
                                return -EINVAL;
                        a->opts.page_rows = (uint32_t)v;
                        break;
                case OPT_DICT_SIZE:
                        if (parse_size_arg("--dict-size", optarg, UINT32_MAX, &v) < 0)
                                return -EINVAL;
                        a->opts.dict_bytes = (uint32_t)v;
                        break;
                case OPT_STATS_MAX:
                        if (parse_size_arg("--stats-max", optarg, UINT32_MAX, &v) < 0)
                                return -EINVAL;
                        a->opts.stats_max_bytes = (uint32_t)v;
                        break;
                case OPT_INT_ENC:
                        if (strcmp(optarg, "plain") != 0 && strcmp(optarg, "delta") != 0) {
                                fprintf(stderr, "%s: --int-encoding: plain or delta\n", prog);
                                return -EINVAL;
                        }
                        a->opts.int_delta = strcmp(optarg, "delta") == 0;
                        break;
                case OPT_FLOAT_ENC:
                        if (strcmp(optarg, "plain") != 0 &&
                            strcmp(optarg, "byte-stream-split") != 0) {
                                fprintf(stderr,
                                        "%s: --float-encoding: plain or byte-stream-split\n", prog);
                                return -EINVAL;
                        }
                        a->opts.float_split = strcmp(optarg, "byte-stream-split") == 0;
                        break;
                case OPT_KV:
                        if (!strchr(optarg, '=')) {
                                fprintf(stderr, "%s: --kv: KEY=VALUE\n", prog);
                                return -EINVAL;
                        }
                        a->kv[a->n_kv++] = optarg;
                        break;
                case OPT_HELP:
                        write_usage(stdout);
                        return 1;
                default:
                        write_usage(stderr);
                        return -EINVAL;
                }
        }
        if (!a->schema || !a->out || optind != argc) {
                write_usage(stderr);
                return -EINVAL;
        }
        return 0;
}

static int print_json(json_t *j)
{
        int r;

        if (!j)
                return -ENOMEM;
        r = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (r < 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
                return -EIO;
        return 0;
}

/* Rows from stdin into the writer; 1 when a row is rejected. */
static int write_rows(struct batch *b, struct parquet_writer *w)
{
        _cleanup_free_ char *line = NULL;
        size_t cap = 0, lineno = 0;
        char err[256];
        ssize_t n;
        int r;

        while ((n = getline(&line, &cap, stdin)) >= 0) {
                size_t len = (size_t)n;

                lineno++;
                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                                   line[len - 1] == ' ' || line[len - 1] == '\t'))
                        len--;
                if (len == 0)
                        continue;
                r = parse_line(b, line, len, err, sizeof(err));
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        fprintf(stderr, "%s: line %zu: %s\n", prog, lineno, err);
                        return 1;
                }
                if (b->rows == BATCH_ROWS) {
                        r = flush_batch(b, w);
                        if (r < 0)
                                return r;
                }
        }
        if (ferror(stdin))
                return -EIO;
        return flush_batch(b, w);
}

static int write_file(struct write_args *a, const struct schema *s, struct batch *b, int fd)
{
        struct parquet_sink sink = parquet_sink_fd(fd);
        struct parquet_report *rep = NULL;
        struct parquet_writer *w = NULL;
        const char **names;
        int r;

        r = parquet_writer_new(s->cols, s->n, &a->opts, &sink, &w);
        if (r < 0) {
                fprintf(stderr, "%s: cannot write with these options: %s\n", prog, strerror(-r));
                return PARQUET_EXIT_USAGE;
        }
        for (size_t i = 0; i < a->n_kv && r >= 0; i++) {
                char *eq = strchr(a->kv[i], '=');

                *eq = '\0';
                r = parquet_writer_set_metadata(w, a->kv[i], eq + 1);
        }
        if (r == 0)
                r = write_rows(b, w);
        if (r == 0)
                r = parquet_writer_close(w, &rep);
        if (r != 0) {
                if (r < 0)
                        fprintf(stderr, "%s: %s: %s\n", prog, a->out,
                                parquet_writer_error(w)[0] ? parquet_writer_error(w)
                                                           : strerror(-r));
                parquet_writer_free(w);
                return r == -EINVAL || r == 1 ? PARQUET_EXIT_REJECTED : PARQUET_EXIT_USAGE;
        }
        parquet_writer_free(w);
        r = fsync(fd) < 0 ? -errno : 0;
        names = r == 0 ? floe_calloc(s->n, sizeof(*names)) : NULL;
        if (names) {
                for (size_t i = 0; i < s->n; i++)
                        names[i] = s->cols[i].name;
                r = print_json(parquet_json_report(rep, names));
                floe_free(names);
        } else if (r == 0) {
                r = -ENOMEM;
        }
        parquet_report_free(rep);
        if (r < 0) {
                fprintf(stderr, "%s: %s: %s\n", prog, a->out, strerror(-r));
                return PARQUET_EXIT_USAGE;
        }
        return 0;
}

int parquet_cli_write(int argc, char **argv)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_free_ char **kv = floe_calloc((size_t)argc + 1, sizeof(char *));
        struct write_args a = {.kv = kv};
        struct schema s = {0};
        struct batch b = {0};
        mode_t mask;
        int fd = -1, r, status = PARQUET_EXIT_USAGE;

        if (!kv)
                return PARQUET_EXIT_USAGE;
        r = parse_write_args(argc, argv, &a);
        if (r != 0)
                return r > 0 ? 0 : PARQUET_EXIT_USAGE;
        if (load_schema(a.schema, &s) < 0)
                return PARQUET_EXIT_USAGE;
        if (batch_init(&b, &s) < 0 || asprintf(&tmp, "%s.tmp-XXXXXX", a.out) < 0) {
                tmp = NULL;
                fprintf(stderr, "%s: out of memory\n", prog);
                goto out;
        }
        /* written under a temporary name, renamed when complete */
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "%s: %s: %s\n", prog, tmp, strerror(errno));
                goto out;
        }
        mask = umask(0);
        umask(mask);
        if (fchmod(fd, 0666 & ~mask) < 0) {
                fprintf(stderr, "%s: %s: %s\n", prog, tmp, strerror(errno));
                goto out;
        }
        status = write_file(&a, &s, &b, fd);
        if (status == 0 && rename(tmp, a.out) < 0) {
                fprintf(stderr, "%s: %s: %s\n", prog, a.out, strerror(errno));
                status = PARQUET_EXIT_USAGE;
        }
out:
        if (fd >= 0) {
                close(fd);
                if (status != 0)
                        unlink(tmp);
        }
        batch_done(&b);
        schema_done(&s);
        return status;
}

/* Reads the footer of a file: its last 8 bytes, then the FileMetaData. */
static int read_footer(const char *path, struct parquet_footer **ret, uint64_t *ret_size)
{
        struct parquet_limits lim;
        struct parquet_error err;
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t tail[8];
        struct stat st;
        uint32_t mlen = 0;
        size_t n;
        int fd, r;

        parquet_limits_init(&lim);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return PARQUET_EXIT_USAGE;
        }
        r = PARQUET_EXIT_REJECTED;
        if (st.st_size < 12 || pread(fd, tail, 8, st.st_size - 8) != 8) {
                fprintf(stderr, "%s: %s: not a Parquet file (%jd bytes)\n", prog, path,
                        (intmax_t)st.st_size);
                goto out;
        }
        /* a bad trailer is reported by parquet_footer_read */
        (void)parquet_footer_length(tail, &mlen);
        n = mlen <= lim.max_footer && (uint64_t)mlen + 8 <= (uint64_t)st.st_size ? mlen + 8 : 8;
        buf = floe_malloc(n);
        if (!buf || pread(fd, buf, n, st.st_size - (off_t)n) != (ssize_t)n) {
                fprintf(stderr, "%s: %s: cannot read the footer\n", prog, path);
                r = PARQUET_EXIT_USAGE;
                goto out;
        }
        if (parquet_footer_read(buf, n, (uint64_t)st.st_size, &lim, ret, &err) < 0) {
                fprintf(stderr, "%s: %s: %s (field %d, offset %" PRIu64 " in the footer)\n", prog,
                        path, err.msg, err.field_id, err.offset);
                goto out;
        }
        *ret_size = (uint64_t)st.st_size;
        r = 0;
out:
        close(fd);
        return r;
}

int parquet_cli_footer(int argc, char **argv)
{
        struct parquet_footer *f = NULL;
        struct parquet_report *rep = NULL;
        uint64_t size;
        int r;

        if (argc != 2 || argv[1][0] == '-') {
                fprintf(stderr,
                        "Usage: %s parquet-footer FILE.parquet\n"
                        "Prints the footer (schema, row groups, statistics) and the per-column\n"
                        "report as JSON.\n",
                        prog);
                return PARQUET_EXIT_USAGE;
        }
        r = read_footer(argv[1], &f, &size);
        if (r != 0)
                return r;
        r = parquet_footer_report(f, size, &rep);
        if (r == 0)
                r = print_json(parquet_json_footer(f, rep));
        parquet_report_free(rep);
        parquet_footer_free(f);
        if (r < 0) {
                fprintf(stderr, "%s: %s: %s\n", prog, argv[1], strerror(-r));
                return PARQUET_EXIT_USAGE;
        }
        return 0;
}
