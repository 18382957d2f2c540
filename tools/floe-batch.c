/* SPDX-License-Identifier: Apache-2.0 */
/* floe-batch: encode NDJSON rows into a wire batch, decode it back, show it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "floe-batch.h"
#include "floe-config.h"
#include "floe-ndjson.h"
#include "floe-version.h"
#include "floe-wire.h"

#define EXIT_REJECTED 1
#define EXIT_USAGE    2

static const char *prog = "floe-batch";

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: %s encode [--kind events|aggregates] [--identity TENANT.DEVICE]\n"
                "                 [--epoch N] [--seq N] [--created USEC] [--level N]\n"
                "                 [-o OUT] [IN|-]\n"
                "       %s decode [LIMITS] [IN|-]\n"
                "       %s stat [LIMITS] [--raw] FILE...\n"
                "       %s --version\n"
                "\n"
                "encode reads NDJSON rows and writes one batch (docs/wire-format.md);\n"
                "decode prints a batch as NDJSON; stat prints its header and sizes.\n"
                "LIMITS: --max-compressed SIZE --max-decompressed SIZE --max-rows N\n"
                "        --max-dict N --max-series N --max-name N --max-text N\n"
                "Exit status: 0 ok, 1 input rejected, 2 usage or I/O error.\n",
                prog, prog, prog, prog);
}

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Reads a whole file (or stdin) up to max bytes; -EFBIG beyond. */
static int read_all(const char *path, size_t max, uint8_t **ret, size_t *ret_len)
{
        FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rbe");
        size_t len = 0, cap = 65536;
        uint8_t *buf;
        int r = 0;

        if (!f)
                return -errno;
        buf = floe_malloc(cap);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                size_t n;

                if (len == cap) {
                        uint8_t *p;

                        if (cap > max) {
                                r = -EFBIG;
                                goto out;
                        }
                        p = floe_realloc(buf, cap * 2);
                        if (!p) {
                                r = -ENOMEM;
                                goto out;
                        }
                        buf = p;
                        cap *= 2;
                }
                n = fread(buf + len, 1, cap - len, f);
                len += n;
                if (n == 0) {
                        if (ferror(f))
                                r = -EIO;
                        break;
                }
        }
        if (r == 0 && len > max)
                r = -EFBIG;
out:
        if (f != stdin)
                fclose(f);
        if (r < 0) {
                floe_free(buf);
                return r;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

enum {
        OPT_KIND = 256,
        OPT_IDENTITY,
        OPT_EPOCH,
        OPT_SEQ,
        OPT_CREATED,
        OPT_LEVEL,
        OPT_RAW,
        OPT_MAX_COMPRESSED,
        OPT_MAX_DECOMPRESSED,
        OPT_MAX_ROWS,
        OPT_MAX_DICT,
        OPT_MAX_SERIES,
        OPT_MAX_NAME,
        OPT_MAX_TEXT,
};

static const struct option options[] = {
        {"kind", required_argument, NULL, OPT_KIND},
        {"identity", required_argument, NULL, OPT_IDENTITY},
        {"epoch", required_argument, NULL, OPT_EPOCH},
        {"seq", required_argument, NULL, OPT_SEQ},
        {"created", required_argument, NULL, OPT_CREATED},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"raw", no_argument, NULL, OPT_RAW},
        {"max-compressed", required_argument, NULL, OPT_MAX_COMPRESSED},
        {"max-decompressed", required_argument, NULL, OPT_MAX_DECOMPRESSED},
        {"max-rows", required_argument, NULL, OPT_MAX_ROWS},
        {"max-dict", required_argument, NULL, OPT_MAX_DICT},
        {"max-series", required_argument, NULL, OPT_MAX_SERIES},
        {"max-name", required_argument, NULL, OPT_MAX_NAME},
        {"max-text", required_argument, NULL, OPT_MAX_TEXT},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {0},
};

struct args {
        enum floe_batch_kind kind;
        const char *identity;
        uint64_t epoch;
        bool epoch_set;
        uint64_t seq;
        int64_t created;
        bool created_set;
        int level;
        bool raw;
        const char *out;
        struct floe_wire_limits lim;
};

static int set_limit(int opt, const char *arg, struct floe_wire_limits *lim)
{
        uint64_t v;

        /* sizes take units ("4MiB"), counts are plain numbers */
        if (opt == OPT_MAX_COMPRESSED || opt == OPT_MAX_DECOMPRESSED) {
                if (floe_parse_size(arg, &v) < 0 || v == 0 || v > SIZE_MAX)
                        return -EINVAL;
        } else if (floe_parse_uint64(arg, &v) < 0 || v == 0) {
                return -EINVAL;
        }
        switch (opt) {
        case OPT_MAX_COMPRESSED:
                lim->max_compressed = v;
                return 0;
        case OPT_MAX_DECOMPRESSED:
                lim->max_decompressed = v;
                return 0;
        default:
                break;
        }
        if (v > UINT32_MAX)
                return -ERANGE;
        if (opt == OPT_MAX_ROWS)
                lim->max_rows = (uint32_t)v;
        else if (opt == OPT_MAX_DICT)
                lim->max_dict = (uint32_t)v;
        else if (opt == OPT_MAX_SERIES)
                lim->max_series = (uint32_t)v;
        else if (opt == OPT_MAX_NAME)
                lim->max_name_len = (uint32_t)v;
        else
                lim->max_text_len = (uint32_t)v;
        return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
        int c;

        *a = (struct args){.kind = FLOE_KIND_EVENTS, .level = FLOE_WIRE_LEVEL_DEFAULT};
        floe_wire_limits_default(&a->lim);
        while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
                int r = 0;
                int64_t v;

                switch (c) {
                case OPT_KIND:
                        r = floe_batch_kind_from_name(optarg, &a->kind);
                        break;
                case OPT_IDENTITY:
                        a->identity = optarg;
                        if (!floe_identity_valid(optarg, strlen(optarg)))
                                r = -EINVAL;
                        break;
                case OPT_EPOCH:
                        r = floe_parse_uint64(optarg, &a->epoch);
                        a->epoch_set = true;
                        break;
                case OPT_SEQ:
                        r = floe_parse_uint64(optarg, &a->seq);
                        break;
                case OPT_CREATED:
                        r = floe_parse_int64(optarg, &a->created);
                        a->created_set = true;
                        break;
                case OPT_LEVEL:
                        r = floe_parse_int64(optarg, &v);
                        if (r == 0 && (v < 1 || v > 22))
                                r = -ERANGE;
                        a->level = (int)v;
                        break;
                case OPT_RAW:
                        a->raw = true;
                        break;
                case 'o':
                        a->out = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                case OPT_MAX_COMPRESSED ... OPT_MAX_TEXT:
                        r = set_limit(c, optarg, &a->lim);
                        break;
                default:
                        usage(stderr);
                        return -EINVAL;
                }
                if (r < 0) {
                        fprintf(stderr, "%s: invalid value for --%s: \"%s\"\n", prog,
                                options[c - OPT_KIND].name, optarg);
                        return r;
                }
        }
        return 0;
}

static int write_out(const char *path, const uint8_t *data, size_t len)
{
        FILE *f;
        int r = 0;

        if (!path || strcmp(path, "-") == 0) {
                if (isatty(STDOUT_FILENO)) {
                        fprintf(stderr,
                                "%s: refusing to write a binary batch to a terminal; use -o\n",
                                prog);
                        return -EINVAL;
                }
                f = stdout;
        } else {
                f = fopen(path, "wbe");
                if (!f) {
                        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
                        return -errno;
                }
        }
        if (fwrite(data, 1, len, f) != len || fflush(f) != 0)
                r = -EIO;
        if (f != stdout && fclose(f) != 0)
                r = -EIO;
        if (r < 0)
                fprintf(stderr, "%s: %s: write failed\n", prog, path ? path : "stdout");
        return r;
}

static int cmd_encode(struct args *a, const char *in)
{
        struct floe_wire_encoder *enc = NULL;
        struct floe_batch *b = NULL;
        FILE *f;
        char *line = NULL, err[200];
        size_t cap = 0, lineno = 0;
        const uint8_t *data;
        size_t len;
        ssize_t n;
        int r, ret = EXIT_USAGE;

        f = strcmp(in, "-") == 0 ? stdin : fopen(in, "re");
        if (!f) {
                fprintf(stderr, "%s: %s: %s\n", prog, in, strerror(errno));
                return EXIT_USAGE;
        }
        if (floe_batch_new(a->kind, &a->lim, &b) < 0 ||
            floe_wire_encoder_new(a->level, &a->lim, &enc) < 0) {
                fprintf(stderr, "%s: out of memory\n", prog);
                goto out;
        }
        if (a->identity)
                floe_batch_set_identity(b, a->identity);
        if (!a->epoch_set && getrandom(&a->epoch, sizeof(a->epoch), 0) != sizeof(a->epoch)) {
                fprintf(stderr, "%s: getrandom: %s\n", prog, strerror(errno));
                goto out;
        }
        b->epoch = a->epoch;
        b->seq = a->seq;
        b->created_us = a->created_set ? a->created : now_us();
        while ((n = getline(&line, &cap, f)) > 0) {
                lineno++;
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        n--;
                if (n == 0)
                        continue;
                r = floe_ndjson_parse_row(b, line, (size_t)n, err, sizeof(err));
                if (r < 0) {
                        fprintf(stderr, "%s: %s:%zu: %s\n", prog, in, lineno, err);
                        ret = r == -ENOMEM ? EXIT_USAGE : EXIT_REJECTED;
                        goto out;
                }
        }
        if (ferror(f)) {
                fprintf(stderr, "%s: %s: read error\n", prog, in);
                goto out;
        }
        if (!b->identity[0]) {
                fprintf(stderr, "%s: %s: no rows and no --identity\n", prog, in);
                ret = EXIT_REJECTED;
                goto out;
        }
        r = a->raw ? floe_wire_encode_raw(enc, b, &data, &len)
                   : floe_wire_encode(enc, b, &data, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s: cannot encode: %s\n", prog, in,
                        r == -E2BIG ? "batch exceeds the size limits" : strerror(-r));
                ret = r == -E2BIG ? EXIT_REJECTED : EXIT_USAGE;
                goto out;
        }
        ret = write_out(a->out, data, len) < 0 ? EXIT_USAGE : 0;
out:
        free(line);
        if (f != stdin)
                fclose(f);
        floe_batch_free(b);
        floe_wire_encoder_free(enc);
        return ret;
}

static int load(struct args *a, const char *in, struct floe_wire_decoder *dec, struct floe_batch *b,
                size_t *ret_len)
{
        struct floe_wire_error err;
        uint8_t *data = NULL;
        char msg[256];
        size_t len = 0;
        int r;

        r = read_all(in, a->raw ? a->lim.max_decompressed : a->lim.max_compressed, &data, &len);
        if (r == -EFBIG) {
                fprintf(stderr, "%s: %s: rejected: too-large: over %zu bytes\n", prog, in,
                        a->raw ? a->lim.max_decompressed : a->lim.max_compressed);
                return EXIT_REJECTED;
        }
        if (r < 0) {
                fprintf(stderr, "%s: %s: %s\n", prog, in, strerror(-r));
                return EXIT_USAGE;
        }
        r = a->raw ? floe_wire_decode_raw(dec, data, len, b, &err)
                   : floe_wire_decode_into(dec, data, len, b, &err);
        floe_free(data);
        if (r < 0) {
                floe_wire_error_format(&err, msg, sizeof(msg));
                fprintf(stderr, "%s: %s: rejected: %s\n", prog, in, msg);
                return r == -ENOMEM ? EXIT_USAGE : EXIT_REJECTED;
        }
        *ret_len = len;
        return 0;
}

static int cmd_decode(struct args *a, const char *in)
{
        struct floe_wire_decoder *dec = NULL;
        struct floe_batch *b = NULL;
        char line[16384];
        size_t len = 0;
        int ret;

        if (floe_wire_decoder_new(&a->lim, &dec) < 0 ||
            floe_batch_new(FLOE_KIND_EVENTS, &a->lim, &b) < 0) {
                ret = EXIT_USAGE;
                goto out;
        }
        ret = load(a, in, dec, b, &len);
        for (uint32_t i = 0; ret == 0 && i < b->nrows; i++) {
                int n = floe_ndjson_format_row(b, i, line, sizeof(line));

                if (n < 0 || fwrite(line, 1, (size_t)n, stdout) != (size_t)n)
                        ret = EXIT_USAGE;
        }
        if (ret == 0 && fflush(stdout) != 0)
                ret = EXIT_USAGE;
out:
        floe_batch_free(b);
        floe_wire_decoder_free(dec);
        return ret;
}

static void print_time(const char *label, int64_t us)
{
        time_t s = (time_t)(us / 1000000);
        struct tm tm;
        char buf[64];

        if (us < 0 || !gmtime_r(&s, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm))
                printf("%-12s %" PRId64 " us\n", label, us);
        else
                printf("%-12s %s.%06" PRId64 "Z (%" PRId64 ")\n", label, buf, us % 1000000, us);
}

static int cmd_stat(struct args *a, int n, char **files)
{
        struct floe_wire_encoder *enc = NULL;
        struct floe_wire_decoder *dec = NULL;
        struct floe_batch *b = NULL;
        int ret = 0;

        if (floe_wire_decoder_new(&a->lim, &dec) < 0 ||
            floe_wire_encoder_new(FLOE_WIRE_LEVEL_DEFAULT, NULL, &enc) < 0 ||
            floe_batch_new(FLOE_KIND_EVENTS, &a->lim, &b) < 0)
                return EXIT_USAGE;
        for (int i = 0; i < n; i++) {
                const uint8_t *raw;
                size_t len = 0, rawlen = 0;
                int r = load(a, files[i], dec, b, &len);

                if (r) {
                        ret = r;
                        continue;
                }
                if (floe_wire_encode_raw(enc, b, &raw, &rawlen) < 0)
                        rawlen = 0;
                if (n > 1)
                        printf("%s%s:\n", i ? "\n" : "", files[i]);
                printf("%-12s %u\n", "version", b->version);
                printf("%-12s %s\n", "kind", floe_batch_kind_name(b->kind));
                printf("%-12s %s\n", "identity", b->identity);
                printf("%-12s %" PRIu64 " (0x%016" PRIx64 ")\n", "epoch", b->epoch, b->epoch);
                printf("%-12s %" PRIu64 "\n", "seq", b->seq);
                print_time("created", b->created_us);
                printf("%-12s %u\n", "rows", b->nrows);
                printf("%-12s %u (%u sensors, %u metrics, %u texts)\n", "series", b->nseries,
                       b->sensors.n, b->metrics.n, b->texts.n);
                if (b->nrows) {
                        int64_t lo = b->ts[0], hi = b->ts[0];

                        for (uint32_t k = 1; k < b->nrows; k++) {
                                lo = b->ts[k] < lo ? b->ts[k] : lo;
                                hi = b->ts[k] > hi ? b->ts[k] : hi;
                        }
                        print_time(b->kind == FLOE_KIND_EVENTS ? "first ts" : "first window", lo);
                        print_time(b->kind == FLOE_KIND_EVENTS ? "last ts" : "last window", hi);
                }
                printf("%-12s %zu\n", "wire bytes", len);
                if (rawlen)
                        printf("%-12s %zu (zstd ratio %.2f)\n", "cbor bytes", rawlen,
                               len ? (double)rawlen / (double)len : 0.0);
                if (b->nrows)
                        printf("%-12s %.3f\n", "bytes/event", (double)len / b->nrows);
        }
        floe_batch_free(b);
        floe_wire_decoder_free(dec);
        floe_wire_encoder_free(enc);
        return ret;
}

int main(int argc, char **argv)
{
        const char *cmd;
        struct args a;

        if (argc < 2) {
                usage(stderr);
                return EXIT_USAGE;
        }
        cmd = argv[1];
        if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
                usage(stdout);
                return 0;
        }
        if (strcmp(cmd, "--version") == 0) {
                printf("floe-batch %s (build %s)\n", FLOE_VERSION, FLOE_BUILD);
                return 0;
        }
        optind = 2;
        if (parse_args(argc, argv, &a) < 0)
                return EXIT_USAGE;
        if (strcmp(cmd, "encode") == 0 || strcmp(cmd, "decode") == 0) {
                const char *in = optind < argc ? argv[optind] : "-";

                if (argc - optind > 1) {
                        fprintf(stderr, "%s: %s takes one input\n", prog, cmd);
                        return EXIT_USAGE;
                }
                return cmd[0] == 'e' ? cmd_encode(&a, in) : cmd_decode(&a, in);
        }
        if (strcmp(cmd, "stat") == 0) {
                if (optind >= argc) {
                        fprintf(stderr, "%s: stat needs a file\n", prog);
                        return EXIT_USAGE;
                }
                return cmd_stat(&a, argc - optind, argv + optind);
        }
        fprintf(stderr, "%s: unknown command \"%s\"\n", prog, cmd);
        usage(stderr);
        return EXIT_USAGE;
}
