/* SPDX-License-Identifier: Apache-2.0 */
/* floe-lake append | compact | verify (docs/lake.md). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floe-alloc.h"
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
