/* SPDX-License-Identifier: Apache-2.0 */
/* floe-lake create | add-files: a new table from a schema file and a partition spec; data files
 * registered from their writer's reports (floe-lake parquet-write prints them). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "floe-alloc.h"
#include "ice-cli-internal.h"
#include "ice-floe.h"

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int read_text(const char *path, char **ret, size_t *ret_len)
{
        FILE *f = fopen(path, "rbe");
        char *buf = NULL;
        size_t len = 0, cap = 0, n;

        if (!f)
                return -errno;
        do {
                if (cap - len < 4096) {
                        char *b = floe_realloc(buf, cap = cap ? 2 * cap : 8192);

                        if (!b || cap > (64u << 20)) {
                                floe_free(b ? b : buf);
                                fclose(f);
                                return b ? -EFBIG : -ENOMEM;
                        }
                        buf = b;
                }
                n = fread(buf + len, 1, cap - len - 1, f);
                len += n;
        } while (n > 0);
        fclose(f);
        buf[len] = '\0';
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* "tenant,hour(ts),bucket[16](device)" over the schema. */
static int parse_partition(const char *text, const struct ice_schema *s,
                           struct ice_partition_field *ret, size_t *ret_n)
{
        _cleanup_free_ char *copy = floe_strdup(text);
        char *save = NULL, *item;
        size_t n = 0;

        if (!copy)
                return -ENOMEM;
        for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                char *open = strchr(item, '('), *col = item;
                const struct ice_field *f;
                struct ice_transform t = {.kind = ICE_TRANSFORM_IDENTITY};

                while (*col == ' ')
                        col++;
                if (open) {
                        size_t l = strlen(open);

                        if (l < 3 || open[l - 1] != ')')
                                goto bad;
                        open[l - 1] = '\0';
                        *open = '\0';
                        if (ice_transform_parse(col, &t) < 0 || t.kind == ICE_TRANSFORM_UNKNOWN)
                                goto bad;
                        col = open + 1;
                }
                f = ice_schema_field_by_name(s, col);
                if (!f || n == ICE_CLI_MAX_LIST)
                        goto bad;
                ret[n++] = (struct ice_partition_field){.source_id = f->id, .transform = t};
                continue;
        bad:
                fprintf(stderr, "--partition: bad field \"%s\"\n", item);
                return -EINVAL;
        }
        *ret_n = n;
        return 0;
}

/* create --floe events|aggregates: floe's own tables (ice-floe.c). */
static int create_floe(struct ice_cli *c)
{
        struct ice_kv props[2 * ICE_CLI_MAX_LIST];
        enum floe_batch_kind kind;
        struct ice_table_def def;
        struct ice_metadata *md = NULL;
        struct ice_table *t = NULL;
        char err[256];
        int r;

        if (floe_batch_kind_from_name(c->floe_kind, &kind) < 0 || c->partition || c->n_sort) {
                fprintf(stderr, "--floe events|aggregates, without --partition or --sort\n");
                return -EINVAL;
        }
        r = ice_cli_open_warehouse(c);
        if (r == 0)
                r = ice_floe_table_def(kind, c->location, &def);
        if (r == 0 && c->n_props) { /* floe's properties, then the caller's (later ones win) */
                for (size_t i = 0; i < def.n_properties; i++)
                        props[i] = def.properties[i];
                for (size_t i = 0; i < c->n_props; i++)
                        props[def.n_properties + i] = c->props[i];
                def.properties = props;
                def.n_properties += c->n_props;
        }
        if (r == 0)
                r = ice_metadata_new(&def, now_ms(), &md);
        if (r == 0) {
                r = ice_table_create(&c->io, c->catalog ? &c->sql.ops : NULL, md, &t, err,
                                     sizeof(err));
                if (r < 0)
                        fprintf(stderr, "%s: %s\n", c->table, err);
                else
                        printf("%s\n", t->metadata_location);
        }
        ice_table_free(t);
        ice_metadata_free(md);
        return r;
}

int ice_cli_create(struct ice_cli *c)
{
        struct ice_partition_field part[ICE_CLI_MAX_LIST];
        struct ice_sort_field sort[ICE_CLI_MAX_LIST];
        _cleanup_free_ char *text = NULL;
        struct ice_schema schema = {0};
        struct ice_metadata *md = NULL;
        struct ice_table *t = NULL;
        char err[256];
        size_t len = 0, n_part = 0;
        int r;

        if (c->floe_kind)
                return create_floe(c);
        r = read_text(c->schema, &text, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", c->schema, strerror(-r));
                return r;
        }
        r = ice_schema_parse(text, len, &schema, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", c->schema, err);
                return r;
        }
        if (c->partition)
                r = parse_partition(c->partition, &schema, part, &n_part);
        for (size_t i = 0; r == 0 && i < c->n_sort; i++) {
                const char *colon = strchr(c->sort[i], ':');
                char name[256];
                const struct ice_field *f;

                snprintf(name, sizeof(name), "%.*s",
                         (int)(colon ? (size_t)(colon - c->sort[i]) : strlen(c->sort[i])),
                         c->sort[i]);
                f = ice_schema_field_by_name(&schema, name);
                if (!f || (colon && strcmp(colon, ":desc") != 0 && strcmp(colon, ":asc") != 0)) {
                        fprintf(stderr, "--sort: bad \"%s\"\n", c->sort[i]);
                        r = -EINVAL;
                        break;
                }
                /* Java's defaults: ascending nulls first, descending nulls last */
                sort[i] = (struct ice_sort_field){
                        .source_id = f->id,
                        .transform = {ICE_TRANSFORM_IDENTITY, 0},
                        .descending = colon && strcmp(colon, ":desc") == 0,
                        .nulls_first = !(colon && strcmp(colon, ":desc") == 0)};
        }
        if (r == 0)
                r = ice_cli_open_warehouse(c);
        if (r == 0) {
                struct ice_table_def def = {
                        .location = c->location,
                        .fields = schema.fields,
                        .n_fields = schema.n_fields,
                        .partition = part,
                        .n_partition = n_part,
                        .sort = sort,
                        .n_sort = c->n_sort,
                        .properties = c->props,
                        .n_properties = c->n_props,
                };

                r = ice_metadata_new(&def, now_ms(), &md);
                if (r < 0)
                        fprintf(stderr, "%s: cannot define the table: %s\n", c->table,
                                strerror(-r));
        }
        if (r == 0) {
                r = ice_table_create(&c->io, c->catalog ? &c->sql.ops : NULL, md, &t, err,
                                     sizeof(err));
                if (r < 0)
                        fprintf(stderr, "%s: %s\n", c->table, err);
                else
                        printf("%s\n", t->metadata_location);
        }
        ice_table_free(t);
        ice_metadata_free(md);
        ice_schema_clear(&schema);
        return r;
}

static int unhex(const char *s, uint8_t **ret, size_t *ret_len)
{
        size_t n = strlen(s);
        uint8_t *out;

        if (n % 2)
                return -EINVAL;
        out = floe_malloc(n / 2 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;

                if (sscanf(s + 2 * i, "%2x", &v) != 1) {
                        floe_free(out);
                        return -EINVAL;
                }
                out[i] = (uint8_t)v;
        }
        *ret = out;
        *ret_len = n / 2;
        return 0;
}

static int64_t get_i64(json_t *o, const char *key, int64_t def)
{
        json_t *v = json_object_get(o, key);

        return json_is_integer(v) ? json_integer_value(v) : def;
}

/* One column of a report: counts, compressed size, exact bounds. */
static int report_column(json_t *col, struct ice_data_file *f)
{
        struct ice_column_metrics m = {
                .field_id = (int32_t)get_i64(col, "field_id", -1),
                .column_size = get_i64(col, "compressed_size", -1),
                .value_count = get_i64(col, "value_count", -1),
                .null_count = get_i64(col, "null_count", -1),
                .nan_count = get_i64(col, "nan_count", -1),
        };
        const char *lo = json_string_value(json_object_get(col, "lower_hex"));
        const char *hi = json_string_value(json_object_get(col, "upper_hex"));
        int r = 0;

        if (m.field_id <= 0)
                return 0; /* no Iceberg id: no metrics */
        /* a cut lower bound is still one; a cut upper bound may not be (and partition values
         * from bounds then fail for want of one, as they must) */
        if (lo)
                r = unhex(lo, &m.lower, &m.lower_len);
        if (r == 0 && hi && !json_is_false(json_object_get(col, "upper_exact")))
                r = unhex(hi, &m.upper, &m.upper_len);
        if (r == 0)
                r = ice_data_file_add_column(f, &m);
        floe_free(m.lower);
        floe_free(m.upper);
        return r;
}

static int report_file(struct ice_cli *c, const struct ice_metadata *md, json_t *o,
                       struct ice_data_file *f)
{
        const char *path = json_string_value(json_object_get(o, "file_path"));
        json_t *cols = json_object_get(o, "columns"), *v;
        json_t *offs = json_object_get(o, "split_offsets");
        char err[256];
        size_t i;
        int r = 0;

        *f = (struct ice_data_file){.sort_order_id = -1};
        if (!path || !json_is_integer(json_object_get(o, "num_rows")) ||
            !json_is_integer(json_object_get(o, "file_size")) || !json_is_array(cols)) {
                fprintf(stderr, "a report needs file_path, num_rows, file_size and columns\n");
                return -EINVAL;
        }
        if (strstr(path, "://")) {
                f->path = floe_strdup(path);
        } else {
                size_t n = strlen(c->location) + strlen(path) + 2;

                f->path = floe_malloc(n);
                if (f->path)
                        snprintf(f->path, n, "%s/%s", c->location, path);
        }
        f->format = floe_strdup("PARQUET");
        if (!f->path || !f->format)
                return -ENOMEM;
        f->record_count = json_integer_value(json_object_get(o, "num_rows"));
        f->file_size = json_integer_value(json_object_get(o, "file_size"));
        if (json_array_size(offs)) {
                f->split_offsets = floe_calloc(json_array_size(offs), sizeof(int64_t));
                if (!f->split_offsets)
                        return -ENOMEM;
                for (i = 0; i < json_array_size(offs); i++)
                        f->split_offsets[i] = json_integer_value(json_array_get(offs, i));
                f->n_split_offsets = json_array_size(offs);
        }
        json_array_foreach(cols, i, v)
        {
                r = report_column(v, f);
                if (r < 0)
                        return r;
        }
        r = ice_data_file_partition_from_bounds(md, f, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "%s: %s\n", f->path, err);
        return r;
}

int ice_cli_add_files(struct ice_cli *c)
{
        struct ice_data_file *files = NULL;
        struct ice_table *t = NULL;
        size_t n = 0;
        char why[256];
        int64_t id;
        int r;

        r = ice_cli_open_warehouse(c);
        if (r == 0) {
                r = ice_table_open(&c->io, c->catalog ? &c->sql.ops : NULL, c->location, &t, why,
                                   sizeof(why));
                if (r < 0)
                        fprintf(stderr, "%s: %s\n", c->table, why);
        }
        for (int a = 0; r == 0 && a < c->n_args; a++) {
                json_error_t je;
                json_t *j = json_load_file(c->args[a], JSON_REJECT_DUPLICATES, &je), *o;
                size_t count, i;

                if (!j) {
                        fprintf(stderr, "%s:%d: %s\n", c->args[a], je.line, je.text);
                        r = -EINVAL;
                        break;
                }
                count = json_is_array(j) ? json_array_size(j) : 1;
                for (i = 0; r == 0 && i < count; i++) {
                        struct ice_data_file *more = floe_reallocarray(files, n + 1, sizeof(*more));

                        o = json_is_array(j) ? json_array_get(j, i) : j;
                        if (!more) {
                                r = -ENOMEM;
                                break;
                        }
                        files = more;
                        r = report_file(c, t->md, o, &files[n]);
                        n++;
                }
                json_decref(j);
        }
        if (r == 0) {
                r = ice_table_append(t, files, n, c->summary, c->n_summary, &id);
                if (r < 0)
                        fprintf(stderr, "%s: %s\n", c->table,
                                t->error[0] ? t->error : strerror(-r));
                else
                        printf("%" PRId64 "\n", id);
        }
        for (size_t i = 0; i < n; i++)
                ice_data_file_clear(&files[i]);
        floe_free(files);
        ice_table_free(t);
        return r;
}

/* Expires snapshots and deletes what only they reached; --dry-run names the snapshots only. */
int ice_cli_expire(struct ice_cli *c, struct ice_table *t)
{
        struct ice_expire_opts o = {
                .now_ms = now_ms(), .older_than_ms = -1, .retain_last = c->retain_last};
        struct ice_strv files = {0};
        int r;

        if (c->older_than_us >= 0)
                o.older_than_ms = o.now_ms - c->older_than_us / 1000;
        if (c->dry_run) {
                struct ice_metadata *md;
                int64_t *ids;
                size_t n;

                r = ice_metadata_expire(t->md, &o, &md, &ids, &n);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++)
                        printf("snapshot %" PRId64 "\n", ids[i]);
                floe_free(ids);
                ice_metadata_free(md);
                return 0;
        }
        r = ice_table_expire(t, &o, true, &files);
        if (r < 0)
                return r;
        for (size_t i = 0; i < files.n; i++)
                printf("%s\n", files.v[i]);
        if (t->error[0])
                fprintf(stderr, "%s\n", t->error); /* a file not deleted */
        ice_strv_clear(&files);
        return 0;
}

/* Files no metadata reaches, older than --older-than (3 days); deleted with --delete. */
int ice_cli_orphans(struct ice_cli *c, struct ice_table *t)
{
        int64_t age_ms = c->older_than_us >= 0 ? c->older_than_us / 1000 : 3 * 86400 * 1000;
        struct ice_strv files = {0};
        int r;

        r = ice_table_orphans(t, now_ms() - age_ms, &files);
        if (r < 0)
                return r;
        for (size_t i = 0; i < files.n; i++) {
                int d = c->delete ? t->io.del(t->io.ud, files.v[i]) : 0;

                printf("%s\n", files.v[i]);
                if (d < 0) {
                        fprintf(stderr, "%s: not deleted: %s\n", files.v[i], strerror(-d));
                        r = d;
                }
        }
        ice_strv_clear(&files);
        return r;
}
