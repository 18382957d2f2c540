/* SPDX-License-Identifier: Apache-2.0 */
/* floe-lake snapshots | files | schema: a table's snapshots, live files and schema, from a
 * metadata JSON file or a warehouse table (docs/iceberg.md "Command line"). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "floe-alloc.h"
#include "floe-config.h"
#include "ice-cli-internal.h"
#include "ice-cli.h"
#include "ice-table.h"
#include "store.h"

/* Read-only local files for --metadata: file:// URIs and paths, after --map rewrites. */
static int local_path(const struct ice_cli *c, const char *location, char *buf, size_t size)
{
        const char *p = location;
        int n;

        for (size_t i = 0; i < c->n_maps; i++) {
                size_t l = strlen(c->maps[i].key);

                if (strncmp(location, c->maps[i].key, l) == 0) {
                        n = snprintf(buf, size, "%s%s", c->maps[i].value, location + l);
                        p = buf;
                        if (n < 0 || (size_t)n >= size)
                                return -ENAMETOOLONG;
                        break;
                }
        }
        if (strncmp(p, "file://", 7) == 0)
                p += 7;
        if (p[0] != '/')
                return -EXDEV; /* not local: s3:// without --map */
        if (p != buf) {
                n = snprintf(buf, size, "%s", p);
                if (n < 0 || (size_t)n >= size)
                        return -ENAMETOOLONG;
        } else {
                memmove(buf, p, strlen(p) + 1);
        }
        return 0;
}

static int local_get(void *ud, const char *location, size_t max, uint8_t **ret, size_t *ret_len)
{
        char path[4096];
        struct stat st;
        uint8_t *data;
        size_t got = 0;
        int fd, r;

        r = local_path(ud, location, path, sizeof(path));
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EINVAL;
        }
        if ((uint64_t)st.st_size > max) {
                close(fd);
                return -EFBIG;
        }
        data = floe_malloc((size_t)st.st_size + 1);
        if (!data) {
                close(fd);
                return -ENOMEM;
        }
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        close(fd);
                        floe_free(data);
                        return r;
                }
                got += (size_t)n;
        }
        close(fd);
        data[got] = '\0';
        *ret = data;
        *ret_len = got;
        return 0;
}

static int local_size(void *ud, const char *location, uint64_t *ret_size)
{
        char path[4096];
        struct stat st;
        int r;

        r = local_path(ud, location, path, sizeof(path));
        if (r < 0)
                return r;
        if (stat(path, &st) < 0)
                return -errno;
        *ret_size = (uint64_t)st.st_size;
        return 0;
}

static int read_only_put(void *ud, const char *location, const void *data, size_t len,
                         bool if_absent)
{
        (void)ud;
        (void)location;
        (void)data;
        (void)len;
        (void)if_absent;
        return -EROFS;
}

static int read_only_del(void *ud, const char *location)
{
        (void)ud;
        (void)location;
        return -EROFS;
}

static int read_only_list(void *ud, const char *prefix, ice_io_list_fn fn, void *fn_ud)
{
        (void)ud;
        (void)prefix;
        (void)fn;
        (void)fn_ud;
        return -EOPNOTSUPP;
}

static void print_time(FILE *f, int64_t ms)
{
        time_t s = (time_t)(ms / 1000);
        struct tm tm;
        char buf[32];

        if (!gmtime_r(&s, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                fprintf(f, "%" PRId64, ms);
        else
                fprintf(f, "%s.%03" PRId64 "Z", buf, ms % 1000);
}

static int dump_json(json_t *o)
{
        char *s = json_dumps(o, JSON_COMPACT);

        json_decref(o);
        if (!s)
                return -ENOMEM;
        printf("%s\n", s);
        free(s);
        return 0;
}

static int cmd_snapshots(struct ice_cli *c, struct ice_table *t)
{
        const struct ice_metadata *md = t->md;

        (void)c;
        if (!c->json)
                printf("%-20s %-20s %5s %-24s %-9s %10s %12s\n", "SNAPSHOT", "PARENT", "SEQ",
                       "TIME", "OPERATION", "DATA-FILES", "RECORDS");
        for (size_t i = 0; i < md->n_snapshots; i++) {
                const struct ice_snapshot *s = &md->snapshots[i];
                const char *files = ice_kvs_get(&s->summary, "total-data-files");
                const char *records = ice_kvs_get(&s->summary, "total-records");
                json_t *o, *sum;

                if (!c->json) {
                        char parent[24] = "-";

                        if (s->has_parent)
                                snprintf(parent, sizeof(parent), "%" PRId64, s->parent_id);
                        printf("%-20" PRId64 " %-20s %5" PRId64 " ", s->snapshot_id, parent,
                               s->sequence_number);
                        print_time(stdout, s->timestamp_ms);
                        printf(" %-9s %10s %12s%s\n", ice_kvs_get(&s->summary, "operation"),
                               files ? files : "?", records ? records : "?",
                               s->snapshot_id == md->current_snapshot_id ? "  (current)" : "");
                        continue;
                }
                sum = json_object();
                for (size_t k = 0; sum && k < s->summary.n; k++)
                        json_object_set_new(sum, s->summary.items[k].key,
                                            json_string(s->summary.items[k].value));
                o = json_pack("{s:I,s:o,s:I,s:I,s:s,s:o*,s:b}", "snapshot-id",
                              (json_int_t)s->snapshot_id, "parent-snapshot-id",
                              s->has_parent ? json_integer(s->parent_id) : json_null(),
                              "sequence-number", (json_int_t)s->sequence_number, "timestamp-ms",
                              (json_int_t)s->timestamp_ms, "manifest-list", s->manifest_list,
                              "summary", sum, "current", s->snapshot_id == md->current_snapshot_id);
                if (!o || dump_json(o) < 0)
                        return -ENOMEM;
        }
        return 0;
}

struct files_ctx {
        struct ice_cli *c;
        struct ice_table *t;
};

static int print_file(void *ud, const struct ice_manifest_file *mf,
                      const struct ice_manifest_entry *e)
{
        struct files_ctx *fc = ud;
        const struct ice_partition_spec *spec = ice_metadata_spec(fc->t->md, mf->spec_id);
        const struct ice_data_file *f = &e->file;
        static const char *const STATUS[] = {"EXISTING", "ADDED", "DELETED"};
        static const char *const CONTENT[] = {"data", "position-deletes", "equality-deletes"};
        char part[2048] = "";
        json_t *o, *p;

        if (spec && spec->n_fields == f->n_partition &&
            ice_partition_path(spec, f->partition, f->n_partition, part, sizeof(part)) < 0)
                snprintf(part, sizeof(part), "?");
        if (!fc->c->json) {
                printf("%s\t%s\t%" PRId64 "\t%" PRId64 "\t%s%s%s\n", f->path, CONTENT[f->content],
                       f->record_count, f->file_size, part[0] ? part : "-",
                       e->status == ICE_STATUS_DELETED ? "\t" : "",
                       e->status == ICE_STATUS_DELETED ? "DELETED" : "");
                return 0;
        }
        p = json_object();
        for (size_t i = 0; p && spec && i < f->n_partition && i < spec->n_fields; i++) {
                char h[512];

                if (f->partition[i].null)
                        json_object_set_new(p, spec->fields[i].name, json_null());
                else if (ice_partition_human(&spec->fields[i].transform, &f->partition[i], h,
                                             sizeof(h)) == 0)
                        json_object_set_new(p, spec->fields[i].name, json_string(h));
        }
        o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:o*,s:I,s:I,s:i}", "file_path", f->path, "content",
                      CONTENT[f->content], "file_format", f->format, "record_count",
                      (json_int_t)f->record_count, "file_size_in_bytes", (json_int_t)f->file_size,
                      "status", STATUS[e->status], "partition", p, "sequence_number",
                      (json_int_t)e->sequence_number, "snapshot_id", (json_int_t)e->snapshot_id,
                      "spec_id", (int)mf->spec_id);
        if (!o)
                return -ENOMEM;
        return dump_json(o);
}

static int cmd_files(struct ice_cli *c, struct ice_table *t)
{
        struct files_ctx fc = {.c = c, .t = t};

        return ice_table_scan(t, c->snapshot_id, !c->all, print_file, &fc);
}

static int cmd_schema(struct ice_cli *c, struct ice_table *t)
{
        const struct ice_metadata *md = t->md;
        const struct ice_schema *s = ice_metadata_current_schema(md);
        const struct ice_partition_spec *spec = ice_metadata_spec(md, md->default_spec_id);
        _cleanup_free_ char *sj = NULL, *pj = NULL;
        int r;

        if (c->json) {
                r = ice_schema_format(s, &sj);
                if (r == 0)
                        r = ice_spec_fields_format(spec, &pj);
                if (r == 0)
                        printf("{\"schema\":%s,\"partition-spec\":%s}\n", sj, pj);
                return r;
        }
        printf("schema %" PRId32 " (table %s, format-version %d)\n", s->schema_id, md->table_uuid,
               md->format_version);
        for (size_t i = 0; i < s->n_fields; i++) {
                const struct ice_field *f = &s->fields[i];
                char type[64] = "nested";

                if (!f->nested)
                        ice_type_format(&f->type, type, sizeof(type));
                printf("  %4" PRId32 "  %-24s %-16s %s\n", f->id, f->name, type,
                       f->required ? "required" : "optional");
        }
        printf("partition spec %" PRId32 "\n", spec->spec_id);
        for (size_t i = 0; i < spec->n_fields; i++) {
                const struct ice_partition_field *f = &spec->fields[i];
                char tr[32] = "?";

                if (ice_transform_format(&f->transform, tr, sizeof(tr)) < 0 && f->transform_text)
                        snprintf(tr, sizeof(tr), "%s", f->transform_text);
                printf("  %4" PRId32 "  %-24s %s(%" PRId32 ")\n", f->field_id, f->name, tr,
                       f->source_id);
        }
        return 0;
}

static void usage(FILE *f)
{
        fputs("usage: floe-lake snapshots|files|schema|verify [OPTIONS]\n"
              "       floe-lake create --warehouse URL --table NS.TABLE --schema SCHEMA.json\n"
              "                 [--partition 'tenant,hour(ts)'] [--sort COL[:desc]]...\n"
              "                 [--property KEY=VALUE]...\n"
              "       floe-lake create --warehouse URL --table NS.TABLE --floe events|aggregates\n"
              "       floe-lake import --warehouse URL [--table NS.TABLE] [--namespace NS]\n"
              "                 [--format auto|ndjson|batch] [FILE...|-]\n"
              "       floe-lake append --warehouse URL --table NS.TABLE [--in-place] "
              "FILE.parquet...\n"
              "       floe-lake add-files --warehouse URL --table NS.TABLE REPORT.json...\n"
              "                 [--summary KEY=VALUE]...\n"
              "       floe-lake compact --warehouse URL --table NS.TABLE [--partition PATH]...\n"
              "                 [--target-size SIZE] [--small-size SIZE] [--min-files N]\n"
              "       floe-lake expire --warehouse URL --table NS.TABLE [--older-than AGE]\n"
              "                 [--retain-last N] [--dry-run]\n"
              "       floe-lake orphans --warehouse URL --table NS.TABLE [--older-than AGE]\n"
              "                 [--delete]\n"
              "       floe-lake tier --warehouse URL --table NS.TABLE [--tier-root URL --age "
              "AGE]...\n"
              "                 [--max-files N] [--dry-run]\n"
              "       floe-lake tier --warehouse s3://... --table NS.TABLE "
              "--s3-lifecycle|--s3-copy\n"
              "                 [--storage-class CLASS --age AGE]...\n"
              "  -c, --config FILE        [lake] warehouse, catalog, namespace; [s3] options\n"
              "  --metadata PATH          a table metadata JSON file (read-only)\n"
              "  --map FROM=TO            read locations starting with FROM under TO instead\n"
              "  --warehouse URL --table NAMESPACE.TABLE   a table in a warehouse\n"
              "  --catalog LOCATION       the SQL catalog (SQLite path or postgresql://)\n"
              "  --catalog-name NAME      its catalog_name (floe)\n"
              "  --snapshot ID            files: of this snapshot (default: current)\n"
              "  --all                    files: DELETED entries too\n"
              "  --json                   one JSON object per line\n"
              "  --summary KEY=VALUE      add-files, append, import, compact: summary pairs\n"
              "  --target-size SIZE       import, compact: roll files at this size\n"
              "  --row-group-size SIZE    import, compact: Parquet row groups\n"
              "  -v, --verbose            import: name the table versions opened\n"
              "  --tier-root URL, --storage-class CLASS, --age AGE   tier N's root or S3 class "
              "and\n"
              "                           age (repeated in order; replace [tier] of the config)\n",
              f);
}

static int add_kv(struct ice_kv *kv, size_t *n, char *arg, const char *opt)
{
        char *eq = strchr(arg, '=');

        if (!eq || eq == arg || *n == ICE_CLI_MAX_LIST) {
                fprintf(stderr, "%s KEY=VALUE: bad \"%s\"\n", opt, arg);
                return -EINVAL;
        }
        *eq = '\0';
        kv[*n].key = arg;
        kv[(*n)++].value = eq + 1;
        return 0;
}

static int parse_args(struct ice_cli *c, int argc, char **argv)
{
        static const struct option opts[] = {
                {"metadata", required_argument, NULL, 'm'},
                {"map", required_argument, NULL, 'M'},
                {"warehouse", required_argument, NULL, 'w'},
                {"table", required_argument, NULL, 't'},
                {"catalog", required_argument, NULL, 'K'},
                {"config", required_argument, NULL, 'c'},
                {"format", required_argument, NULL, 'F'},
                {"namespace", required_argument, NULL, 'N'},
                {"floe", required_argument, NULL, 'e'},
                {"target-size", required_argument, NULL, 'T'},
                {"small-size", required_argument, NULL, 'Z'},
                {"row-group-size", required_argument, NULL, 'G'},
                {"min-files", required_argument, NULL, 'I'},
                {"in-place", no_argument, NULL, 'i'},
                {"verbose", no_argument, NULL, 'v'},
                {"catalog-name", required_argument, NULL, 'n'},
                {"snapshot", required_argument, NULL, 's'},
                {"schema", required_argument, NULL, 'S'},
                {"partition", required_argument, NULL, 'P'},
                {"sort", required_argument, NULL, 'o'},
                {"property", required_argument, NULL, 'p'},
                {"summary", required_argument, NULL, 'y'},
                {"older-than", required_argument, NULL, 'O'},
                {"retain-last", required_argument, NULL, 'R'},
                {"dry-run", no_argument, NULL, 'd'},
                {"delete", no_argument, NULL, 'D'},
                {"all", no_argument, NULL, 'a'},
                {"tier-root", required_argument, NULL, 1000},
                {"storage-class", required_argument, NULL, 1001},
                {"age", required_argument, NULL, 1002},
                {"s3-lifecycle", no_argument, NULL, 1003},
                {"s3-copy", no_argument, NULL, 1004},
                {"max-files", required_argument, NULL, 1005},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        char *end;
        int o, r = 0;

        optind = 1;
        while (r == 0 && (o = getopt_long(argc, argv, "c:v", opts, NULL)) != -1) {
                switch (o) {
                case 'F':
                        c->format = optarg;
                        break;
                case 'N':
                        c->ns_opt = optarg;
                        break;
                case 'e':
                        c->floe_kind = optarg;
                        break;
                case 'T':
                case 'Z':
                case 'G': {
                        uint64_t *v = o == 'T'   ? &c->target_size
                                      : o == 'Z' ? &c->small_size
                                                 : &c->row_group_size;

                        if (floe_parse_size(optarg, v) < 0 || *v == 0) {
                                fprintf(stderr, "bad size \"%s\"\n", optarg);
                                r = -EINVAL;
                        }
                        break;
                }
                case 'I':
                        if (floe_parse_int64(optarg, &c->min_files) < 0 || c->min_files < 1) {
                                fprintf(stderr, "--min-files: bad count \"%s\"\n", optarg);
                                r = -EINVAL;
                        }
                        break;
                case 'i':
                        c->in_place = true;
                        break;
                case 'v':
                        c->verbose = true;
                        break;
                case 'm':
                        c->metadata = optarg;
                        break;
                case 'M':
                        if (c->n_maps == ELEMENTSOF(c->maps)) {
                                fprintf(stderr, "--map: too many\n");
                                r = -EINVAL;
                        } else {
                                r = add_kv(c->maps, &c->n_maps, optarg, "--map");
                        }
                        break;
                case 'w':
                        c->warehouse = optarg;
                        break;
                case 't':
                        c->table = optarg;
                        break;
                case 'K':
                        c->catalog = optarg;
                        break;
                case 'c':
                        c->config = optarg;
                        break;
                case 'n':
                        c->catalog_name = optarg;
                        break;
                case 's':
                        errno = 0;
                        c->snapshot_id = strtoll(optarg, &end, 10);
                        if (errno || *end || c->snapshot_id <= 0) {
                                fprintf(stderr, "--snapshot: bad id \"%s\"\n", optarg);
                                r = -EINVAL;
                        }
                        break;
                case 'S':
                        c->schema = optarg;
                        break;
                case 'P': /* create: the spec; compact: a partition's path (repeated) */
                        c->partition = optarg;
                        if (c->n_parts == ICE_CLI_MAX_LIST)
                                r = -EINVAL;
                        else
                                c->parts[c->n_parts++] = optarg;
                        break;
                case 'o':
                        if (c->n_sort == ICE_CLI_MAX_LIST)
                                r = -EINVAL;
                        else
                                c->sort[c->n_sort++] = optarg;
                        break;
                case 'p':
                        r = add_kv(c->props, &c->n_props, optarg, "--property");
                        break;
                case 'y':
                        r = add_kv(c->summary, &c->n_summary, optarg, "--summary");
                        break;
                case 'O': {
                        uint64_t us = 0;

                        if (floe_parse_duration(optarg, &us) < 0 || us > INT64_MAX) {
                                fprintf(stderr, "--older-than: bad duration \"%s\"\n", optarg);
                                r = -EINVAL;
                        }
                        c->older_than_us = (int64_t)us;
                        break;
                }
                case 'R':
                        errno = 0;
                        c->retain_last = (int32_t)strtol(optarg, &end, 10);
                        if (errno || *end || c->retain_last <= 0) {
                                fprintf(stderr, "--retain-last: bad count \"%s\"\n", optarg);
                                r = -EINVAL;
                        }
                        break;
                case 'd':
                        c->dry_run = true;
                        break;
                case 'D':
                        c->delete = true;
                        break;
                case 'a':
                        c->all = true;
                        break;
                case 'j':
                        c->json = true;
                        break;
                case 1000:
                case 1001:
                case 1002:
                        r = ice_cli_tier_arg(c, o - 1000, optarg);
                        break;
                case 1003:
                        c->s3_lifecycle = true;
                        break;
                case 1004:
                        c->s3_copy = true;
                        break;
                case 1005:
                        if (floe_parse_int64(optarg, &c->max_files) < 0 || c->max_files < 1) {
                                fprintf(stderr, "--max-files: bad count \"%s\"\n", optarg);
                                r = -EINVAL;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (r < 0)
                return r;
        c->args = argv + optind;
        c->n_args = argc - optind;
        return 0;
}

/* --config: fills what the flags left unset; a bare --table name takes [lake] namespace. */
static int apply_config(struct ice_cli *c)
{
        struct floe_config_error err;
        char msg[600];
        int r;

        if (c->config) {
                r = ice_cli_load_config(c, &err);
                if (r < 0) {
                        fprintf(stderr, "%s\n", floe_config_error_format(&err, msg, sizeof(msg)));
                        return r;
                }
        }
        r = ice_cli_tier_flags(c);
        if (r < 0)
                return r;
        if (c->s3_copy)
                c->tier_conf.s3_mode = ICE_TIER_S3_COPY;
        if (!c->warehouse && !c->metadata)
                c->warehouse = c->conf.warehouse;
        if (!c->catalog)
                c->catalog = c->conf.catalog;
        if (!c->catalog_name)
                c->catalog_name = c->conf.catalog_name;
        if (!c->ns_opt)
                c->ns_opt = c->conf.ns;
        if (c->table && !strchr(c->table, '.') && c->ns_opt) {
                snprintf(c->table_buf, sizeof(c->table_buf), "%s.%s", c->ns_opt, c->table);
                c->table = c->table_buf;
        }
        if (c->target_size)
                c->conf.writer.target_file_bytes = c->target_size;
        if (c->row_group_size)
                c->conf.writer.row_group_bytes = c->row_group_size;
        return 0;
}

/* NAMESPACE.TABLE: the last dot separates them. */
static int split_table(struct ice_cli *c)
{
        const char *dot = strrchr(c->table, '.');

        if (!dot || dot == c->table || !dot[1] || (size_t)(dot - c->table) >= sizeof(c->ns) ||
            strlen(dot + 1) >= sizeof(c->name))
                return -EINVAL;
        memcpy(c->ns, c->table, (size_t)(dot - c->table));
        c->ns[dot - c->table] = '\0';
        snprintf(c->name, sizeof(c->name), "%s", dot + 1);
        return 0;
}

int ice_cli_open_store(struct ice_cli *c)
{
        char why[256];
        int r;

        if (!c->warehouse) {
                fprintf(stderr, "no warehouse: --warehouse URL or [lake] warehouse\n");
                return -EINVAL;
        }
        r = lake_store_open_explain(c->warehouse, &c->conf.store, why, sizeof(why), &c->store);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", c->warehouse, why);
                return r;
        }
        ice_io_store(c->store, &c->io);
        if (c->use_tiers && c->tier_conf.n_tiers > 1) {
                /* files of the table may live under every tier's root */
                r = ice_tier_opts_open(&c->tier, &c->tier_conf, c->store, &c->conf.store, why,
                                       sizeof(why));
                if (r < 0) {
                        fprintf(stderr, "%s\n", why);
                        return r;
                }
                ice_tier_io(&c->tier_io, &c->tier, &c->io);
        }
        if (c->catalog) {
                r = lake_catalog_open_explain(c->catalog,
                                              c->catalog_name ? c->catalog_name : "floe", why,
                                              sizeof(why), &c->cat);
                if (r < 0) {
                        fprintf(stderr, "cannot open the catalog: %s\n", why);
                        return r;
                }
        }
        return 0;
}

void ice_cli_log_retry(void *ud, int attempt, const char *why)
{
        fprintf(stderr, "floe-lake: %s: commit conflict, retry %d: %s\n", (const char *)ud, attempt,
                why);
}

int ice_cli_open_warehouse(struct ice_cli *c)
{
        char key[1024];
        int r;

        if (!c->table || split_table(c) < 0) {
                fprintf(stderr, "--table: NAMESPACE.TABLE expected, not \"%s\"\n",
                        c->table ? c->table : "");
                return -EINVAL;
        }
        r = ice_cli_open_store(c);
        if (r < 0)
                return r;
        snprintf(key, sizeof(key), "%s/%s", c->ns, c->name);
        for (char *p = key; *p; p++)
                if (*p == '.')
                        *p = '/'; /* nested namespaces are directories */
        r = lake_store_location(c->store, key, c->location, sizeof(c->location));
        if (r < 0) {
                fprintf(stderr, "%s: bad table name\n", c->table);
                return r;
        }
        if (c->cat)
                ice_catalog_sql(&c->sql, c->cat, c->ns, c->name);
        return 0;
}

static int open_table(struct ice_cli *c, struct ice_table **ret)
{
        char why[256];
        int r;

        if (c->metadata) {
                c->io = (struct ice_io){
                        c, local_get, read_only_put, read_only_del, read_only_list, local_size};
                r = ice_table_open_metadata(&c->io, c->metadata, ret, why, sizeof(why));
                if (r < 0)
                        fprintf(stderr, "%s\n", why);
                return r;
        }
        r = ice_cli_open_warehouse(c);
        if (r < 0)
                return r;
        r = ice_table_open(&c->io, c->catalog ? &c->sql.ops : NULL, c->location, ret, why,
                           sizeof(why));
        if (r < 0)
                fprintf(stderr, "%s: %s\n", c->table, why);
        return r;
}

static bool is(const char *cmd, const char *name)
{
        return strcmp(cmd, name) == 0;
}

/* Operands and required options per command. */
static bool bad_usage(const struct ice_cli *c, const char *cmd)
{
        bool args = is(cmd, "add-files") || is(cmd, "append") || is(cmd, "import");
        bool needs_wh = !(is(cmd, "snapshots") || is(cmd, "files") || is(cmd, "schema") ||
                          is(cmd, "verify"));

        if (!args && c->n_args > 0)
                return true;
        if ((is(cmd, "add-files") || is(cmd, "append")) && c->n_args == 0)
                return true;
        if (c->metadata && c->warehouse)
                return true;
        if (needs_wh && (!c->warehouse || c->metadata))
                return true;
        if (!is(cmd, "import") && !c->metadata && (!c->warehouse || !c->table))
                return true;
        if (is(cmd, "create") && !c->schema == !c->floe_kind)
                return true;
        if (is(cmd, "tier") && (c->tier_conf.n_tiers < 2 || (c->s3_lifecycle && c->s3_copy)))
                return true;
        return false;
}

int ice_cli(int argc, char **argv)
{
        static const char *const cmds[] = {"snapshots", "files",   "schema",  "create",
                                           "add-files", "expire",  "orphans", "import",
                                           "append",    "compact", "verify",  "tier"};
        struct ice_cli c = {.snapshot_id = -1, .older_than_us = -1};
        struct ice_table *t = NULL;
        const char *cmd = argc > 0 ? argv[0] : "";
        bool known = false;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(cmds); i++)
                known = known || strcmp(cmd, cmds[i]) == 0;
        if (!known) {
                usage(stderr);
                return 2;
        }
        lake_conf_init(&c.conf);
        r = parse_args(&c, argc, argv);
        if (r == 0)
                r = apply_config(&c);
        if (r != 0) {
                lake_conf_clear(&c.conf);
                return r > 0 ? 0 : 2;
        }
        if (bad_usage(&c, cmd)) {
                usage(stderr);
                lake_conf_clear(&c.conf);
                return 2;
        }
        /* the commands that read or remove the table's files find them under every root */
        c.use_tiers = !is(cmd, "create") && !is(cmd, "import") && !is(cmd, "append") &&
                      !is(cmd, "add-files") && !is(cmd, "compact");
        if (strcmp(cmd, "create") == 0) {
                r = ice_cli_create(&c);
        } else if (strcmp(cmd, "add-files") == 0) {
                r = ice_cli_add_files(&c);
        } else if (strcmp(cmd, "import") == 0) {
                r = ice_cli_import(&c);
        } else if (strcmp(cmd, "append") == 0) {
                r = ice_cli_append(&c);
        } else if (strcmp(cmd, "compact") == 0) {
                r = ice_cli_compact(&c);
        } else if (strcmp(cmd, "tier") == 0) {
                r = ice_cli_tier(&c);
        } else {
                r = open_table(&c, &t);
                if (r == 0 && strcmp(cmd, "snapshots") == 0)
                        r = cmd_snapshots(&c, t);
                else if (r == 0 && strcmp(cmd, "files") == 0)
                        r = cmd_files(&c, t);
                else if (r == 0 && strcmp(cmd, "expire") == 0)
                        r = ice_cli_expire(&c, t);
                else if (r == 0 && strcmp(cmd, "orphans") == 0)
                        r = ice_cli_orphans(&c, t);
                else if (r == 0 && strcmp(cmd, "verify") == 0)
                        r = ice_cli_verify(&c, t);
                else if (r == 0)
                        r = cmd_schema(&c, t);
                if (r < 0 && t)
                        fprintf(stderr, "%s: %s\n", t->error[0] ? t->error : cmd, strerror(-r));
        }
        fflush(stdout);
        ice_table_free(t);
        lake_catalog_close(c.cat);
        ice_tier_opts_close(&c.tier);
        lake_store_close(c.store);
        lake_conf_clear(&c.conf);
        return r < 0 ? 1 : 0;
}
