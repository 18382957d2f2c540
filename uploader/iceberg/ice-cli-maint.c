/* SPDX-License-Identifier: Apache-2.0 */
/* floe-lake append | compact | verify | tier (docs/lake.md). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "floe-config.h"
#include "ice-cli-internal.h"
#include "ice-maint.h"
#include "store.h"

#define COPY_CHUNK (1u << 20)

/* The store key data files of the table go under: write.data.path or <location>/data. */
static int data_key(struct ice_cli *c, const struct ice_metadata *md, char *buf, size_t size)
{
        const char *data = ice_kvs_get(&md->properties, "write.data.path");
        int r;

        if (data)
                return lake_store_key(c->store, data, buf, size);
        r = lake_store_key(c->store, md->location, buf, size - 5);
        if (r == 0)
                memcpy(buf + strlen(buf), "/data", 6);
        return r;
}

/* Copies a local file into the table's data directory, under its partition. */
static int copy_in(struct ice_cli *c, struct ice_table *t, int fd, struct ice_data_file *df)
{
        const struct ice_partition_spec *spec = ice_metadata_spec(t->md, df->spec_id);
        _cleanup_free_ uint8_t *buf = floe_malloc(COPY_CHUNK);
        struct lake_store_writer *sw = NULL;
        char part[2048], base[2048], key[4096], loc[4600], uuid[37];
        uint64_t off = 0, size = 0;
        char *path;
        int r;

        if (!buf)
                return -ENOMEM;
        r = ice_partition_path(spec, df->partition, df->n_partition, part, sizeof(part));
        if (r == 0)
                r = data_key(c, t->md, base, sizeof(base));
        if (r == 0)
                r = ice_uuid4(uuid);
        if (r == 0 && snprintf(key, sizeof(key), "%s%s%s/%s.parquet", base, part[0] ? "/" : "",
                               part, uuid) >= (int)sizeof(key))
                r = -ENAMETOOLONG;
        if (r == 0)
                r = lake_store_location(c->store, key, loc, sizeof(loc));
        if (r == 0)
                r = lake_store_writer_open(c->store, key, &sw);
        while (r == 0 && off < (uint64_t)df->file_size) {
                ssize_t n = pread(fd, buf, COPY_CHUNK, (off_t)off);

                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        break;
                }
                r = lake_store_writer_write(sw, buf, (size_t)n);
                off += (uint64_t)n;
        }
        if (r == 0)
                r = lake_store_writer_commit(sw, &size);
        if (r == 0 && size != (uint64_t)df->file_size)
                r = -EIO;
        lake_store_writer_free(sw);
        if (r < 0) {
                fprintf(stderr, "%s: cannot copy: %s\n", df->path,
                        lake_store_error(c->store)[0] ? lake_store_error(c->store) : strerror(-r));
                return r;
        }
        path = floe_strdup(loc);
        if (!path)
                return -ENOMEM;
        floe_free(df->path);
        df->path = path;
        return 0;
}

/* One file: described from its footer, copied in unless --in-place. */
static int register_one(struct ice_cli *c, struct ice_table *t, const char *arg,
                        struct ice_data_file *ret, bool *ret_by_name)
{
        struct ice_pq_src src = {.fd = -1, .store = c->store};
        char key[4096], loc[4600], err[400];
        struct stat st;
        int r;

        if (c->in_place) {
                /* a location (URI) or a path inside the warehouse's store */
                r = lake_store_key(c->store, arg, key, sizeof(key));
                if (r < 0) {
                        fprintf(stderr,
                                "%s: not in the warehouse (%s): --in-place registers "
                                "files of the table's store only\n",
                                arg, c->warehouse);
                        return r;
                }
                r = lake_store_size(c->store, key, &src.size);
                if (r == 0)
                        r = lake_store_location(c->store, key, loc, sizeof(loc));
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", arg, strerror(-r));
                        return r;
                }
                src.key = key;
        } else {
                src.fd = open(arg, O_RDONLY | O_CLOEXEC);
                if (src.fd < 0 || fstat(src.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                        r = src.fd < 0 ? -errno : -EINVAL;
                        fprintf(stderr, "%s: %s\n", arg, strerror(-r));
                        if (src.fd >= 0)
                                close(src.fd);
                        return r;
                }
                src.size = (uint64_t)st.st_size;
                snprintf(loc, sizeof(loc), "%s", arg);
        }
        r = ice_register_describe(t->md, &src, loc, ret, ret_by_name, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "%s: %s\n", arg, err);
        if (r == 0 && src.fd >= 0) {
                r = copy_in(c, t, src.fd, ret);
                if (r < 0)
                        ice_data_file_clear(ret);
        }
        if (src.fd >= 0)
                close(src.fd);
        return r;
}

int ice_cli_append(struct ice_cli *c)
{
        struct ice_data_file *files = NULL;
        struct ice_table *t = NULL;
        bool mapping = false;
        char why[256];
        size_t n = 0;
        int64_t id;
        int r;

        r = ice_cli_open_warehouse(c);
        if (r == 0) {
                r = ice_table_open(&c->io, c->cat ? &c->sql.ops : NULL, c->location, &t, why,
                                   sizeof(why));
                if (r < 0)
                        fprintf(stderr, "%s: %s\n", c->table, why);
        }
        if (r == 0) {
                files = floe_calloc((size_t)c->n_args + 1, sizeof(*files));
                if (!files)
                        r = -ENOMEM;
        }
        for (int a = 0; r == 0 && a < c->n_args; a++) {
                bool by_name = false;

                r = register_one(c, t, c->args[a], &files[n], &by_name);
                if (r == 0)
                        n++;
                mapping = mapping || by_name;
        }
        if (r == 0 && mapping) {
                r = ice_table_ensure_name_mapping(t);
                if (r < 0)
                        fprintf(stderr, "%s: cannot set the name mapping: %s\n", c->table,
                                t->error[0] ? t->error : strerror(-r));
        }
        if (r == 0) {
                t->on_retry = ice_cli_log_retry;
                t->on_retry_ud = (void *)c->table;
                r = ice_table_append(t, files, n, c->summary, c->n_summary, &id);
                if (r < 0)
                        fprintf(stderr, "%s: %s\n", c->table,
                                t->error[0] ? t->error : strerror(-r));
                else
                        printf("%" PRId64 "\n", id);
        }
        for (size_t i = 0; i < n; i++) {
                /* copies of a failed append are ours to remove */
                if (r < 0 && !c->in_place && !(t && t->commit_unknown))
                        c->io.del(c->io.ud, files[i].path);
                ice_data_file_clear(&files[i]);
        }
        floe_free(files);
        ice_table_free(t);
        return r;
}

int ice_cli_compact(struct ice_cli *c)
{
        struct ice_compact_opts o = {
                .target_bytes = c->conf.writer.target_file_bytes,
                .small_bytes = c->small_size,
                .min_files = (size_t)c->min_files,
                .partitions = c->parts,
                .n_partitions = c->n_parts,
                .summary = c->summary,
                .n_summary = c->n_summary,
        };
        struct ice_compact_result res;
        char err[600];
        int r;

        r = ice_cli_open_warehouse(c);
        if (r < 0)
                return r;
        r = ice_compact(c->store, c->cat, c->ns, c->name, &o, &res, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "%s: compaction failed: %s\n", c->table, err);
                return r;
        }
        if (c->json)
                printf("{\"snapshot-id\":%" PRId64 ",\"partitions\":%zu,\"files-in\":%zu,"
                       "\"files-out\":%zu,\"skipped\":%zu,\"rows\":%" PRIu64
                       ",\"bytes-in\":%" PRIu64 ",\"bytes-out\":%" PRIu64 ",\"retries\":%d}\n",
                       res.snapshot_id, res.partitions, res.files_in, res.files_out, res.skipped,
                       res.rows, res.bytes_in, res.bytes_out, res.retries);
        else if (res.snapshot_id == 0)
                printf("nothing to compact%s\n", res.skipped ? " (some files unreadable)" : "");
        else
                printf("snapshot %" PRId64 ": %zu files of %zu partitions (%" PRIu64
                       " rows) rewritten as %zu files\n",
                       res.snapshot_id, res.files_in, res.partitions, res.rows, res.files_out);
        if (res.skipped)
                fprintf(stderr, "%s: %zu files skipped (cannot be read back)\n", c->table,
                        res.skipped);
        return 0;
}

static void print_problem(void *ud, const char *what, const char *problem)
{
        (void)ud;
        fprintf(stderr, "verify: %s: %s\n", what, problem);
}

int ice_cli_verify(struct ice_cli *c, struct ice_table *t)
{
        struct ice_verify_result res;
        int r;

        r = ice_table_verify(t, c->store, print_problem, NULL, &res);
        if (r < 0) {
                fprintf(stderr, "verify: %s: %s\n", t->metadata_location,
                        t->error[0] ? t->error : strerror(-r));
                return r;
        }
        printf("%s: %zu snapshots, %zu manifest lists, %zu manifests, %zu files, %" PRId64
               " records (current)%s\n",
               res.problems ? "FAILED" : "ok", res.snapshots, res.manifest_lists, res.manifests,
               res.data_files, res.records, c->store ? "" : "; footers not read (--metadata)");
        if (res.problems) {
                fprintf(stderr, "verify: %zu problems\n", res.problems);
                return -EBADMSG;
        }
        return 0;
}

/* [lake] and [s3] (lake_conf_load), and [tier] of --config; c->conf owns the config. */
int ice_cli_load_config(struct ice_cli *c, struct floe_config_error *err)
{
        int r = lake_conf_load(&c->conf, c->config, err);

        if (r == 0)
                r = ice_tier_conf_from(&c->tier_conf, c->conf.cfg, err);
        return r;
}

/* --tier-root (0), --storage-class (1), --age (2): tier N's, N counted per option. */
int ice_cli_tier_arg(struct ice_cli *c, int which, const char *arg)
{
        size_t *n = which == 0   ? &c->n_tier_roots
                    : which == 1 ? &c->n_tier_classes
                                 : &c->n_tier_ages;
        uint64_t us = 0;

        if (*n == ICE_TIER_MAX - 1) {
                fprintf(stderr, "at most %d tiers beside the warehouse\n", ICE_TIER_MAX - 1);
                return -EINVAL;
        }
        if (which == 0)
                c->tier_roots[*n + 1] = arg;
        else if (which == 1)
                c->tier_classes[*n + 1] = arg;
        else if (floe_parse_duration(arg, &us) < 0 || us < 1000 || us > INT64_MAX / 2) {
                fprintf(stderr, "--age: bad duration \"%s\"\n", arg);
                return -EINVAL;
        } else
                c->tier_ages[*n + 1] = (int64_t)(us / 1000);
        (*n)++;
        return 0;
}

/* Tiers from the flags replace those of the config: --age N with --tier-root N or
 * --storage-class N. */
int ice_cli_tier_flags(struct ice_cli *c)
{
        struct ice_tier_conf *t = &c->tier_conf;

        if (!c->n_tier_ages && !c->n_tier_roots && !c->n_tier_classes)
                return 0;
        if ((c->n_tier_roots && c->n_tier_roots != c->n_tier_ages) ||
            (c->n_tier_classes && c->n_tier_classes != c->n_tier_ages) ||
            (!c->n_tier_roots && !c->n_tier_classes)) {
                fprintf(stderr, "tiers: one --age per --tier-root or --storage-class\n");
                return -EINVAL;
        }
        *t = (struct ice_tier_conf){.n_tiers = c->n_tier_ages + 1, .s3_mode = c->tier_conf.s3_mode};
        for (size_t i = 1; i <= c->n_tier_ages; i++) {
                t->root[i] = c->tier_roots[i];
                t->storage_class[i] = c->tier_classes[i];
                t->age_ms[i] = c->tier_ages[i];
                if (i > 1 && t->age_ms[i] <= t->age_ms[i - 1]) {
                        fprintf(stderr, "--age: ages must be ascending\n");
                        return -EINVAL;
                }
        }
        return 0;
}

/* Tier moves (file roots), or with --s3-lifecycle/--s3-copy storage classes (docs/lake.md). */
int ice_cli_tier(struct ice_cli *c)
{
        struct ice_tier_result res;
        char err[600];
        bool s3 = c->s3_lifecycle || c->s3_copy;
        int r;

        r = ice_cli_open_warehouse(c);
        if (r < 0)
                return r;
        c->tier.now_ms = 0;
        c->tier.dry_run = c->dry_run;
        c->tier.max_files = (size_t)c->max_files;
        c->tier.summary = c->summary;
        c->tier.n_summary = c->n_summary;
        c->tier.on_retry = ice_cli_log_retry;
        c->tier.retry_ud = (void *)c->table;
        if (s3)
                r = ice_tier_s3(&c->tier, c->cat, c->ns, c->name, &res, err, sizeof(err));
        else
                r = ice_tier_move(&c->tier, c->cat, c->ns, c->name, &res, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "%s: tier: %s\n", c->table, err);
                return r;
        }
        if (c->json && s3)
                printf("{\"lifecycle\":%s,\"changed\":%s,\"due\":%zu,\"objects-changed\":%zu}\n",
                       res.lifecycle ? "true" : "false", res.lifecycle_changed ? "true" : "false",
                       res.files, res.objects_changed);
        else if (c->json)
                printf("{\"snapshot-id\":%" PRId64 ",\"partitions\":%zu,\"files\":%zu,"
                       "\"copied\":%zu,\"skipped\":%zu,\"bytes\":%" PRIu64
                       ",\"retries\":%d,\"passes\":%zu}\n",
                       res.snapshot_id, res.partitions, res.files, res.copied, res.skipped,
                       res.bytes, res.retries, res.passes);
        else if (s3 && res.lifecycle)
                printf("lifecycle rule %s\n", c->dry_run              ? "not installed (dry run)"
                                              : res.lifecycle_changed ? "installed"
                                                                      : "unchanged");
        else if (s3 && c->dry_run)
                printf("nothing done (dry run)\n");
        else if (s3)
                printf("%zu objects due, %zu given a new storage class\n", res.files,
                       res.objects_changed);
        else if (c->dry_run)
                printf("%zu files of %zu partitions due (%" PRIu64 " bytes)\n", res.files,
                       res.partitions, res.bytes);
        else if (res.snapshot_id == 0)
                printf("nothing to move\n");
        else
                printf("snapshot %" PRId64 ": %zu files of %zu partitions moved (%" PRIu64
                       " bytes, %zu copied now)\n",
                       res.snapshot_id, res.files, res.partitions, res.bytes, res.copied);
        if (res.skipped)
                fprintf(stderr,
                        "%s: %zu files left where they are (no time partition, another "
                        "spec, or outside every tier's root)\n",
                        c->table, res.skipped);
        return 0;
}
