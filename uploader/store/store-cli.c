/* SPDX-License-Identifier: Apache-2.0 */
/* floe-lake store: the object store's operations from the command line (store-cli.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "floe-config.h"
#include "store-cli.h"
#include "store.h"

#define EXIT_EXISTS 3
#define EXIT_NOKEY  4
#define CHUNK       (64 * 1024)

static const char usage[] =
        "usage: floe-lake store [OPTIONS] URL COMMAND [ARG...]\n"
        "\n"
        "URL is file:///DIR or s3://BUCKET[/PREFIX]. Commands:\n"
        "  put KEY [FILE]            store FILE (default: stdin) under KEY, replacing it\n"
        "  put-if-absent KEY [FILE]  the same, only if KEY does not exist (exit 3 if it does)\n"
        "  stream-put KEY            copy stdin to KEY through a streaming writer\n"
        "  get KEY [FILE]            the object into FILE (default: stdout)\n"
        "  range KEY OFFSET LENGTH   bytes [OFFSET, OFFSET+LENGTH) to stdout\n"
        "  size KEY                  the size in bytes\n"
        "  delete KEY                remove KEY (no error if it does not exist)\n"
        "  list [PREFIX]             KEY<TAB>SIZE<TAB>MTIME_MS per line, in byte order\n"
        "  location KEY              the absolute URI Iceberg metadata records\n"
        "  key LOCATION              the key of an absolute URI inside this store\n"
        "  set-class KEY CLASS       change the storage class of an object (S3)\n"
        "\n"
        "Options (S3; credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/\n"
        "AWS_SESSION_TOKEN or a credentials file, never from the command line):\n"
        "  --endpoint URL            http[s]://HOST[:PORT] (default: AWS for the region)\n"
        "  --region REGION           default us-east-1\n"
        "  --path-style              BUCKET in the path, not in the host name\n"
        "  --storage-class CLASS     x-amz-storage-class of new objects\n"
        "  --ca-file FILE            CA certificates to verify the server with\n"
        "  --credentials-file FILE   ~/.aws/credentials format (default: that file)\n"
        "  --profile NAME            its profile (default: AWS_PROFILE, then default)\n"
        "  --multipart-threshold SIZE  multipart upload above this (default 64MiB)\n"
        "  --part-size SIZE          multipart part size, 5MiB..5GiB (default 16MiB)\n"
        "  --retries N               retries after the first attempt (default 4)\n"
        "  --timeout DURATION        per request (default 2min; 0: none)\n"
        "  --page-size N             keys per LIST request, 1..1000 (default 1000)\n"
        "Options (file://):\n"
        "  --no-fsync                do not fsync (tests only)\n"
        "Other:\n"
        "  --max-size SIZE           refuse to get larger objects (default 1GiB)\n"
        "\n"
        "Exit status: 0 success, 1 failure, 2 bad usage, 3 the key exists, 4 no such key.\n";

enum {
        OPT_ENDPOINT = 256,
        OPT_REGION,
        OPT_PATH_STYLE,
        OPT_CLASS,
        OPT_CA,
        OPT_CREDS,
        OPT_PROFILE,
        OPT_THRESHOLD,
        OPT_PART,
        OPT_RETRIES,
        OPT_TIMEOUT,
        OPT_PAGE,
        OPT_NO_FSYNC,
        OPT_MAX,
};

static int bad_usage(const char *fmt, const char *arg)
{
        fputs("floe-lake store: ", stderr);
        fprintf(stderr, fmt, arg);
        fputs(" (floe-lake store --help)\n", stderr);
        return 2;
}

/* The exit status for r, after saying why (the store's message when it has one). */
static int fail(const struct lake_store *s, int r, const char *what, const char *arg)
{
        const char *msg = s ? lake_store_error(s) : "";

        if (msg[0])
                fprintf(stderr, "floe-lake store: %s\n", msg);
        else
                fprintf(stderr, "floe-lake store: %s %s: %s\n", what, arg, strerror(-r));
        return r == -EEXIST ? EXIT_EXISTS : r == -ENOENT ? EXIT_NOKEY : 1;
}

static int read_all(int fd, uint8_t **ret, size_t *ret_len)
{
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0, cap = 0;

        for (;;) {
                if (cap - len < CHUNK) {
                        size_t ncap = cap ? cap * 2 : 4 * CHUNK;
                        uint8_t *nb = floe_realloc(buf, ncap);

                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap = ncap;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static int cmd_put(struct lake_store *s, const char *key, const char *file, enum lake_put_mode mode)
{
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        int fd = STDIN_FILENO, r;

        if (file && strcmp(file, "-") != 0) {
                fd = open(file, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return fail(NULL, -errno, "open", file);
        }
        r = read_all(fd, &data, &len);
        if (fd != STDIN_FILENO)
                close(fd);
        if (r < 0)
                return fail(NULL, r, "read", file ? file : "stdin");
        r = lake_store_put(s, key, data, len, mode);
        return r < 0 ? fail(s, r, "PUT", key) : 0;
}

static int cmd_stream_put(struct lake_store *s, const char *key)
{
        struct lake_store_writer *w = NULL;
        _cleanup_free_ uint8_t *buf = floe_malloc(CHUNK);
        uint64_t size;
        int r;

        if (!buf)
                return fail(NULL, -ENOMEM, "PUT", key);
        r = lake_store_writer_open(s, key, &w);
        while (r >= 0) {
                ssize_t n = read(STDIN_FILENO, buf, CHUNK);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        w = lake_store_writer_free(w);
                        return fail(NULL, r, "read", "stdin");
                }
                if (n == 0)
                        break;
                r = lake_store_writer_write(w, buf, (size_t)n);
        }
        if (r >= 0)
                r = lake_store_writer_commit(w, &size);
        lake_store_writer_free(w);
        return r < 0 ? fail(s, r, "PUT", key) : 0;
}

static int cmd_get(struct lake_store *s, const char *key, const char *file, uint64_t max)
{
        _cleanup_free_ uint8_t *data = NULL;
        size_t len;
        int fd = STDOUT_FILENO, r;

        r = lake_store_get(s, key, max > SIZE_MAX - 1 ? SIZE_MAX - 1 : (size_t)max, &data, &len);
        if (r < 0)
                return fail(s, r, "GET", key);
        if (file && strcmp(file, "-") != 0) {
                fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0)
                        return fail(NULL, -errno, "open", file);
        }
        r = write_all(fd, data, len);
        if (fd != STDOUT_FILENO && close(fd) < 0 && r >= 0)
                r = -errno;
        return r < 0 ? fail(NULL, r, "write", file ? file : "stdout") : 0;
}

static int cmd_range(struct lake_store *s, const char *key, const char *off_s, const char *len_s)
{
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t off, len;
        size_t got;
        int r;

        if (floe_parse_uint64(off_s, &off) < 0)
                return bad_usage("range: bad offset \"%s\"", off_s);
        if (floe_parse_uint64(len_s, &len) < 0 || len > (1ULL << 30))
                return bad_usage("range: bad length \"%s\" (at most 1 GiB)", len_s);
        buf = floe_malloc(len ? (size_t)len : 1);
        if (!buf)
                return fail(NULL, -ENOMEM, "GET", key);
        r = lake_store_get_range(s, key, off, (size_t)len, buf, &got);
        if (r < 0)
                return fail(s, r, "GET", key);
        r = write_all(STDOUT_FILENO, buf, got);
        return r < 0 ? fail(NULL, r, "write", "stdout") : 0;
}

static int print_entry(void *ud, const char *key, uint64_t size, int64_t mtime_ms)
{
        (void)ud;
        return printf("%s\t%" PRIu64 "\t%" PRId64 "\n", key, size, mtime_ms) < 0 ? -EIO : 0;
}

static int run(struct lake_store *s, int argc, char **argv, uint64_t max)
{
        const char *cmd = argv[0];
        char buf[4200];
        uint64_t size;
        int r;

#define NEED(lo, hi)                                                            \
        do {                                                                    \
                if (argc - 1 < (lo) || argc - 1 > (hi))                         \
                        return bad_usage("%s: wrong number of arguments", cmd); \
        } while (0)
        if (strcmp(cmd, "put") == 0 || strcmp(cmd, "put-if-absent") == 0) {
                NEED(1, 2);
                return cmd_put(s, argv[1], argc > 2 ? argv[2] : NULL,
                               cmd[3] ? LAKE_PUT_IF_ABSENT : LAKE_PUT_REPLACE);
        }
        if (strcmp(cmd, "stream-put") == 0) {
                NEED(1, 1);
                return cmd_stream_put(s, argv[1]);
        }
        if (strcmp(cmd, "get") == 0) {
                NEED(1, 2);
                return cmd_get(s, argv[1], argc > 2 ? argv[2] : NULL, max);
        }
        if (strcmp(cmd, "range") == 0) {
                NEED(3, 3);
                return cmd_range(s, argv[1], argv[2], argv[3]);
        }
        if (strcmp(cmd, "size") == 0) {
                NEED(1, 1);
                r = lake_store_size(s, argv[1], &size);
                if (r < 0)
                        return fail(s, r, "HEAD", argv[1]);
                printf("%" PRIu64 "\n", size);
                return 0;
        }
        if (strcmp(cmd, "delete") == 0) {
                NEED(1, 1);
                r = lake_store_delete(s, argv[1]);
                return r < 0 ? fail(s, r, "DELETE", argv[1]) : 0;
        }
        if (strcmp(cmd, "list") == 0) {
                NEED(0, 1);
                r = lake_store_list(s, argc > 1 ? argv[1] : "", print_entry, NULL);
                if (fflush(stdout) != 0 && r >= 0)
                        r = -EIO;
                return r < 0 ? fail(s, r, "LIST", argc > 1 ? argv[1] : "") : 0;
        }
        if (strcmp(cmd, "location") == 0) {
                NEED(1, 1);
                r = lake_store_location(s, argv[1], buf, sizeof(buf));
                if (r < 0)
                        return fail(NULL, r, "location", argv[1]);
                printf("%s\n", buf);
                return 0;
        }
        if (strcmp(cmd, "key") == 0) {
                NEED(1, 1);
                r = lake_store_key(s, argv[1], buf, sizeof(buf));
                if (r == -EXDEV) {
                        fprintf(stderr, "floe-lake store: %s lies outside this store\n", argv[1]);
                        return 1;
                }
                if (r < 0)
                        return fail(NULL, r, "key", argv[1]);
                printf("%s\n", buf);
                return 0;
        }
        if (strcmp(cmd, "set-class") == 0) {
                NEED(2, 2);
                r = lake_store_set_class(s, argv[1], argv[2]);
                return r < 0 ? fail(s, r, "COPY", argv[1]) : 0;
        }
#undef NEED
        return bad_usage("unknown command \"%s\"", cmd);
}

static int parse_size_opt(const char *name, const char *v, uint64_t *ret)
{
        if (floe_parse_size(v, ret) < 0)
                return bad_usage(name, v);
        return 0;
}

int lake_store_cli(int argc, char **argv)
{
        static const struct option opts[] = {
                {"endpoint", required_argument, NULL, OPT_ENDPOINT},
                {"region", required_argument, NULL, OPT_REGION},
                {"path-style", no_argument, NULL, OPT_PATH_STYLE},
                {"storage-class", required_argument, NULL, OPT_CLASS},
                {"ca-file", required_argument, NULL, OPT_CA},
                {"credentials-file", required_argument, NULL, OPT_CREDS},
                {"profile", required_argument, NULL, OPT_PROFILE},
                {"multipart-threshold", required_argument, NULL, OPT_THRESHOLD},
                {"part-size", required_argument, NULL, OPT_PART},
                {"retries", required_argument, NULL, OPT_RETRIES},
                {"timeout", required_argument, NULL, OPT_TIMEOUT},
                {"page-size", required_argument, NULL, OPT_PAGE},
                {"no-fsync", no_argument, NULL, OPT_NO_FSYNC},
                {"max-size", required_argument, NULL, OPT_MAX},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        struct lake_store_opts o;
        struct lake_store *s = NULL;
        uint64_t max = 1ULL << 30, v;
        char why[512];
        int c, r;

        lake_store_opts_default(&o);
        optind = 0; /* glibc: restart option parsing */
        while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_ENDPOINT:
                        o.endpoint = optarg;
                        break;
                case OPT_REGION:
                        o.region = optarg;
                        break;
                case OPT_PATH_STYLE:
                        o.path_style = true;
                        break;
                case OPT_CLASS:
                        o.storage_class = optarg;
                        break;
                case OPT_CA:
                        o.ca_file = optarg;
                        break;
                case OPT_CREDS:
                        o.credentials_file = optarg;
                        break;
                case OPT_PROFILE:
                        o.profile = optarg;
                        break;
                case OPT_THRESHOLD:
                        if (parse_size_opt("--multipart-threshold: bad size \"%s\"", optarg,
                                           &o.multipart_threshold))
                                return 2;
                        break;
                case OPT_PART:
                        if (parse_size_opt("--part-size: bad size \"%s\"", optarg, &o.part_size))
                                return 2;
                        break;
                case OPT_MAX:
                        if (parse_size_opt("--max-size: bad size \"%s\"", optarg, &max))
                                return 2;
                        break;
                case OPT_RETRIES:
                        if (floe_parse_uint64(optarg, &v) < 0 || v > 100)
                                return bad_usage("--retries: expected 0..100, got \"%s\"", optarg);
                        o.retries = (unsigned)v;
                        break;
                case OPT_TIMEOUT:
                        if (floe_parse_duration(optarg, &v) < 0)
                                return bad_usage("--timeout: bad duration \"%s\"", optarg);
                        o.timeout_ms = v / 1000;
                        break;
                case OPT_PAGE:
                        if (floe_parse_uint64(optarg, &v) < 0 || v < 1 || v > 1000)
                                return bad_usage("--page-size: expected 1..1000, got \"%s\"",
                                                 optarg);
                        o.list_page_size = (unsigned)v;
                        break;
                case OPT_NO_FSYNC:
                        o.fsync = false;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                default:
                        return bad_usage("%s", "bad option");
                }
        }
        if (argc - optind < 2)
                return bad_usage("%s", "expected URL COMMAND [ARG...]");
        r = lake_store_open_explain(argv[optind], &o, why, sizeof(why), &s);
        if (r < 0) {
                fprintf(stderr, "floe-lake store: %s: %s\n", argv[optind],
                        why[0] ? why : strerror(-r));
                return r == -EINVAL || r == -EPROTONOSUPPORT ? 2 : 1;
        }
        r = run(s, argc - optind - 1, argv + optind + 1, max);
        lake_store_close(s);
        return r;
}
