/* SPDX-License-Identifier: Apache-2.0 */
/* The table metadata model: lookups and the pure transitions (new table, new column, new
 * snapshot, metadata-log). */
#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

void ice_kvs_clear(struct ice_kvs *m)
{
        for (size_t i = 0; i < m->n; i++) {
                floe_free(m->items[i].key);
                floe_free(m->items[i].value);
        }
        floe_free(m->items);
        *m = (struct ice_kvs){0};
}

const char *ice_kvs_get(const struct ice_kvs *m, const char *key)
{
        for (size_t i = 0; i < m->n; i++)
                if (strcmp(m->items[i].key, key) == 0)
                        return m->items[i].value;
        return NULL;
}

int ice_kvs_set(struct ice_kvs *m, const char *key, const char *value)
{
        struct ice_kv *items;
        char *v = floe_strdup(value), *k;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < m->n; i++)
                if (strcmp(m->items[i].key, key) == 0) {
                        floe_free(m->items[i].value);
                        m->items[i].value = v;
                        return 0;
                }
        k = floe_strdup(key);
        items = k ? floe_reallocarray(m->items, m->n + 1, sizeof(*items)) : NULL;
        if (!items) {
                floe_free(k);
                floe_free(v);
                return -ENOMEM;
        }
        m->items = items;
        items[m->n++] = (struct ice_kv){k, v};
        return 0;
}

int ice_kvs_set_i64(struct ice_kvs *m, const char *key, int64_t value)
{
        char buf[24];

        snprintf(buf, sizeof(buf), "%" PRId64, value);
        return ice_kvs_set(m, key, buf);
}

int ice_kvs_copy(const struct ice_kvs *src, struct ice_kvs *ret)
{
        struct ice_kvs m = {0};
        int r;

        for (size_t i = 0; i < src->n; i++) {
                r = ice_kvs_set(&m, src->items[i].key, src->items[i].value);
                if (r < 0) {
                        ice_kvs_clear(&m);
                        return r;
                }
        }
        *ret = m;
        return 0;
}

int ice_kvs_get_i64(const struct ice_kvs *m, const char *key, int64_t def, int64_t *ret)
{
        const char *s = ice_kvs_get(m, key);
        char *end;
        long long v;

        if (!s) {
                *ret = def;
                return 0;
        }
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

void ice_schema_clear(struct ice_schema *s)
{
        for (size_t i = 0; i < s->n_fields; i++) {
                floe_free(s->fields[i].name);
                floe_free(s->fields[i].doc);
                json_decref(s->fields[i].nested);
        }
        floe_free(s->fields);
        floe_free(s->identifier_ids);
        *s = (struct ice_schema){0};
}

static void spec_clear(struct ice_partition_spec *s)
{
        for (size_t i = 0; i < s->n_fields; i++) {
                floe_free(s->fields[i].name);
                floe_free(s->fields[i].transform_text);
        }
        floe_free(s->fields);
}

static void snapshot_clear(struct ice_snapshot *s)
{
        floe_free(s->manifest_list);
        ice_kvs_clear(&s->summary);
}

struct ice_metadata *ice_metadata_free(struct ice_metadata *md)
{
        if (!md)
                return NULL;
        floe_free(md->location);
        for (size_t i = 0; i < md->n_schemas; i++)
                ice_schema_clear(&md->schemas[i]);
        floe_free(md->schemas);
        for (size_t i = 0; i < md->n_specs; i++)
                spec_clear(&md->specs[i]);
        floe_free(md->specs);
        for (size_t i = 0; i < md->n_sort_orders; i++) {
                for (size_t k = 0; k < md->sort_orders[i].n_fields; k++)
                        floe_free(md->sort_orders[i].fields[k].transform_text);
                floe_free(md->sort_orders[i].fields);
        }
        floe_free(md->sort_orders);
        ice_kvs_clear(&md->properties);
        for (size_t i = 0; i < md->n_snapshots; i++)
                snapshot_clear(&md->snapshots[i]);
        floe_free(md->snapshots);
        for (size_t i = 0; i < md->n_refs; i++)
                floe_free(md->refs[i].name);
        floe_free(md->refs);
        floe_free(md->snapshot_log);
        for (size_t i = 0; i < md->n_metadata_log; i++)
                floe_free(md->metadata_log[i].file);
        floe_free(md->metadata_log);
        json_decref(md->extra);
        floe_free(md);
        return NULL;
}

const struct ice_schema *ice_metadata_schema(const struct ice_metadata *md, int32_t schema_id)
{
        for (size_t i = 0; i < md->n_schemas; i++)
                if (md->schemas[i].schema_id == schema_id)
                        return &md->schemas[i];
        return NULL;
}

const struct ice_schema *ice_metadata_current_schema(const struct ice_metadata *md)
{
        return ice_metadata_schema(md, md->current_schema_id);
}

const struct ice_partition_spec *ice_metadata_spec(const struct ice_metadata *md, int32_t spec_id)
{
        for (size_t i = 0; i < md->n_specs; i++)
                if (md->specs[i].spec_id == spec_id)
                        return &md->specs[i];
        return NULL;
}

const struct ice_snapshot *ice_metadata_snapshot(const struct ice_metadata *md, int64_t id)
{
        for (size_t i = 0; i < md->n_snapshots; i++)
                if (md->snapshots[i].snapshot_id == id)
                        return &md->snapshots[i];
        return NULL;
}

const struct ice_snapshot *ice_metadata_current_snapshot(const struct ice_metadata *md)
{
        return md->current_snapshot_id == -1 ? NULL
                                             : ice_metadata_snapshot(md, md->current_snapshot_id);
}

const struct ice_field *ice_schema_field(const struct ice_schema *s, int32_t id)
{
        for (size_t i = 0; s && i < s->n_fields; i++)
                if (s->fields[i].id == id)
                        return &s->fields[i];
        return NULL;
}

const struct ice_field *ice_schema_field_by_name(const struct ice_schema *s, const char *name)
{
        for (size_t i = 0; s && i < s->n_fields; i++)
                if (strcmp(s->fields[i].name, name) == 0)
                        return &s->fields[i];
        return NULL;
}

int ice_spec_result_types(const struct ice_partition_spec *spec, const struct ice_schema *schema,
                          struct ice_type *ret)
{
        for (size_t i = 0; i < spec->n_fields; i++) {
                const struct ice_field *f = ice_schema_field(schema, spec->fields[i].source_id);
                int r;

                if (!f)
                        return -ENOENT;
                r = ice_transform_result_type(&spec->fields[i].transform, &f->type, &ret[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int ice_uuid4(char buf[37])
{
        uint8_t b[16];

        if (RAND_bytes(b, sizeof(b)) != 1)
                return -EIO;
        b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
        snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                 b[13], b[14], b[15]);
        return 0;
}

int ice_new_snapshot_id(const struct ice_metadata *md, int64_t *ret)
{
        for (int tries = 0; tries < 64; tries++) {
                uint64_t u;
                int64_t id;

                if (RAND_bytes((uint8_t *)&u, sizeof(u)) != 1)
                        return -EIO;
                id = (int64_t)(u & (uint64_t)ICE_SNAPSHOT_ID_MAX);
                if (id > 0 && (!md || !ice_metadata_snapshot(md, id))) {
                        *ret = id;
                        return 0;
                }
        }
        return -EAGAIN;
}

static const char *default_suffix(enum ice_transform_kind k)
{
        switch (k) {
        case ICE_TRANSFORM_BUCKET:
                return "_bucket";
        case ICE_TRANSFORM_TRUNCATE:
                return "_trunc";
        case ICE_TRANSFORM_YEAR:
                return "_year";
        case ICE_TRANSFORM_MONTH:
                return "_month";
        case ICE_TRANSFORM_DAY:
                return "_day";
        case ICE_TRANSFORM_HOUR:
                return "_hour";
        case ICE_TRANSFORM_VOID:
                return "_null";
        default:
                return "";
        }
}

static int build_schema(const struct ice_table_def *def, struct ice_schema *s, int32_t *ret_max)
{
        int32_t next = 1;

        for (size_t i = 0; i < def->n_fields; i++)
                if (def->fields[i].id >= next)
                        next = def->fields[i].id + 1;
        s->fields = floe_calloc(def->n_fields ? def->n_fields : 1, sizeof(*s->fields));
        if (!s->fields)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_fields; i++) {
                const struct ice_field *src = &def->fields[i];
                struct ice_field *f = &s->fields[i];

                if (!src->name || !*src->name || src->nested || !ice_type_is_primitive(&src->type))
                        return -EINVAL;
                for (size_t k = 0; k < i; k++)
                        if (strcmp(s->fields[k].name, src->name) == 0)
                                return -EEXIST;
                f->id = src->id > 0 ? src->id : next++;
                for (size_t k = 0; k < i; k++)
                        if (s->fields[k].id == f->id)
                                return -EEXIST;
                f->required = src->required;
                f->type = src->type;
                f->name = floe_strdup(src->name);
                f->doc = src->doc ? floe_strdup(src->doc) : NULL;
                s->n_fields = i + 1;
                if (!f->name || (src->doc && !f->doc))
                        return -ENOMEM;
        }
        *ret_max = next - 1;
        return 0;
}

static int build_spec(const struct ice_table_def *def, const struct ice_schema *schema,
                      struct ice_partition_spec *spec, int32_t *ret_last)
{
        int32_t next = ICE_PARTITION_FIELD_ID_START;

        for (size_t i = 0; i < def->n_partition; i++)
                if (def->partition[i].field_id >= next)
                        next = def->partition[i].field_id + 1;
        spec->fields = floe_calloc(def->n_partition ? def->n_partition : 1, sizeof(*spec->fields));
        if (!spec->fields)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_partition; i++) {
                const struct ice_partition_field *src = &def->partition[i];
                struct ice_partition_field *f = &spec->fields[i];
                const struct ice_field *col = ice_schema_field(schema, src->source_id);
                struct ice_type rt;
                char name[256];
                int r;

                if (!col)
                        return -ENOENT;
                r = ice_transform_result_type(&src->transform, &col->type, &rt);
                if (r < 0 || src->transform.kind == ICE_TRANSFORM_UNKNOWN)
                        return -EINVAL;
                snprintf(name, sizeof(name), "%s%s", col->name,
                         default_suffix(src->transform.kind));
                f->name = floe_strdup(src->name ? src->name : name);
                f->source_id = src->source_id;
                f->field_id = src->field_id > 0 ? src->field_id : next++;
                f->transform = src->transform;
                spec->n_fields = i + 1;
                if (!f->name)
                        return -ENOMEM;
                for (size_t k = 0; k < i; k++)
                        if (strcmp(spec->fields[k].name, f->name) == 0 ||
                            spec->fields[k].field_id == f->field_id)
                                return -EEXIST;
        }
        *ret_last = next - 1;
        return 0;
}

int ice_metadata_new(const struct ice_table_def *def, int64_t now_ms, struct ice_metadata **ret)
{
        struct ice_metadata *md;
        size_t loclen;
        int r;

        if (!def->location || !*def->location || def->n_fields == 0)
                return -EINVAL;
        md = floe_calloc(1, sizeof(*md));
        if (!md)
                return -ENOMEM;
        md->format_version = 2;
        md->current_snapshot_id = -1;
        md->last_updated_ms = now_ms;
        loclen = strlen(def->location);
        while (loclen > 1 && def->location[loclen - 1] == '/')
                loclen--;
        md->location = floe_strndup(def->location, loclen);
        md->schemas = floe_calloc(1, sizeof(*md->schemas));
        md->specs = floe_calloc(1, sizeof(*md->specs));
        md->sort_orders = floe_calloc(1, sizeof(*md->sort_orders));
        md->extra = json_object();
        r = md->location && md->schemas && md->specs && md->sort_orders && md->extra ? 0 : -ENOMEM;
        if (r == 0)
                r = ice_uuid4(md->table_uuid);
        if (r == 0) {
                md->n_schemas = md->n_specs = md->n_sort_orders = 1;
                r = build_schema(def, &md->schemas[0], &md->last_column_id);
        }
        if (r == 0)
                r = build_spec(def, &md->schemas[0], &md->specs[0], &md->last_partition_id);
        if (r == 0 && def->n_sort) {
                struct ice_sort_order *so = &md->sort_orders[0];

                so->order_id = md->default_sort_order_id = 1; /* 0 is "unsorted" */
                so->fields = floe_calloc(def->n_sort, sizeof(*so->fields));
                if (!so->fields)
                        r = -ENOMEM;
                for (size_t i = 0; r == 0 && i < def->n_sort; i++) {
                        const struct ice_field *col =
                                ice_schema_field(&md->schemas[0], def->sort[i].source_id);
                        struct ice_type rt;

                        so->fields[i] = def->sort[i];
                        so->fields[i].transform_text = NULL;
                        so->n_fields = i + 1;
                        if (!col ||
                            ice_transform_result_type(&def->sort[i].transform, &col->type, &rt) < 0)
                                r = -EINVAL;
                }
        }
        for (size_t i = 0; r == 0 && i < def->n_properties; i++)
                r = ice_kvs_set(&md->properties, def->properties[i].key, def->properties[i].value);
        if (r < 0) {
                ice_metadata_free(md);
                return r;
        }
        *ret = md;
        return 0;
}

int ice_metadata_add_column(const struct ice_metadata *md, const char *name,
                            const struct ice_type *type, const char *doc, int64_t now_ms,
                            struct ice_metadata **ret)
{
        const struct ice_schema *cur = ice_metadata_current_schema(md);
        struct ice_metadata *n = NULL;
        struct ice_schema *schemas, *s;
        int32_t max_id = 0;
        int r;

        if (!name || !*name || !ice_type_is_primitive(type))
                return -EINVAL;
        if (ice_schema_field_by_name(cur, name))
                return -EEXIST;
        r = ice_metadata_copy(md, &n);
        if (r < 0)
                return r;
        cur = ice_metadata_current_schema(n);
        for (size_t i = 0; i < n->n_schemas; i++)
                if (n->schemas[i].schema_id > max_id)
                        max_id = n->schemas[i].schema_id;
        schemas = floe_reallocarray(n->schemas, n->n_schemas + 1, sizeof(*schemas));
        if (!schemas)
                goto nomem;
        n->schemas = schemas;
        cur = ice_metadata_current_schema(n);
        s = &schemas[n->n_schemas];
        *s = (struct ice_schema){.schema_id = max_id + 1};
        n->n_schemas++;
        s->fields = floe_calloc(cur->n_fields + 1, sizeof(*s->fields));
        if (!s->fields)
                goto nomem;
        for (size_t i = 0; i < cur->n_fields; i++) {
                struct ice_field *f = &s->fields[i];

                *f = cur->fields[i];
                f->name = floe_strdup(f->name);
                f->doc = f->doc ? floe_strdup(f->doc) : NULL;
                f->nested = f->nested ? json_deep_copy(f->nested) : NULL;
                s->n_fields = i + 1;
                if (!f->name || (cur->fields[i].doc && !f->doc) ||
                    (cur->fields[i].nested && !f->nested))
                        goto nomem;
        }
        if (cur->n_identifier_ids) {
                s->identifier_ids = floe_reallocarray(NULL, cur->n_identifier_ids, sizeof(int32_t));
                if (!s->identifier_ids)
                        goto nomem;
                memcpy(s->identifier_ids, cur->identifier_ids,
                       cur->n_identifier_ids * sizeof(int32_t));
                s->n_identifier_ids = cur->n_identifier_ids;
        }
        s->fields[s->n_fields] = (struct ice_field){
                .id = n->last_column_id + 1, .type = *type, .name = floe_strdup(name)};
        if (doc)
                s->fields[s->n_fields].doc = floe_strdup(doc);
        s->n_fields++;
        if (!s->fields[s->n_fields - 1].name || (doc && !s->fields[s->n_fields - 1].doc))
                goto nomem;
        n->last_column_id++;
        n->current_schema_id = s->schema_id;
        n->last_updated_ms = now_ms;
        *ret = n;
        return 0;
nomem:
        ice_metadata_free(n);
        return -ENOMEM;
}

static int set_main(struct ice_metadata *md, int64_t id)
{
        struct ice_ref *refs;

        for (size_t i = 0; i < md->n_refs; i++)
                if (strcmp(md->refs[i].name, "main") == 0) {
                        md->refs[i].snapshot_id = id;
                        return 0;
                }
        refs = floe_reallocarray(md->refs, md->n_refs + 1, sizeof(*refs));
        if (!refs)
                return -ENOMEM;
        md->refs = refs;
        refs[md->n_refs] = (struct ice_ref){.snapshot_id = id, .name = floe_strdup("main")};
        if (!refs[md->n_refs].name)
                return -ENOMEM;
        md->n_refs++;
        return 0;
}

int ice_metadata_add_snapshot(const struct ice_metadata *md, const struct ice_snapshot *snap,
                              int64_t now_ms, struct ice_metadata **ret)
{
        struct ice_snapshot *snaps, *s;
        struct ice_snapshot_log_entry *log;
        struct ice_metadata *n;
        int r;

        /* the snapshot must follow the current state (else: someone committed; retry) */
        if (snap->sequence_number != md->last_sequence_number + 1 ||
            snap->has_parent != (md->current_snapshot_id != -1) ||
            (snap->has_parent && snap->parent_id != md->current_snapshot_id))
                return -ESTALE;
        if (snap->snapshot_id <= 0 || ice_metadata_snapshot(md, snap->snapshot_id) ||
            !snap->manifest_list || !ice_kvs_get(&snap->summary, "operation"))
                return -EINVAL;
        r = ice_metadata_copy(md, &n);
        if (r < 0)
                return r;
        snaps = floe_reallocarray(n->snapshots, n->n_snapshots + 1, sizeof(*snaps));
        if (!snaps)
                goto nomem;
        n->snapshots = snaps;
        s = &snaps[n->n_snapshots];
        *s = *snap;
        s->manifest_list = floe_strdup(snap->manifest_list);
        s->summary = (struct ice_kvs){0};
        if (!s->manifest_list || ice_kvs_copy(&snap->summary, &s->summary) < 0) {
                floe_free(s->manifest_list);
                goto nomem;
        }
        n->n_snapshots++;
        log = floe_reallocarray(n->snapshot_log, n->n_snapshot_log + 1, sizeof(*log));
        if (!log)
                goto nomem;
        n->snapshot_log = log;
        log[n->n_snapshot_log++] = (struct ice_snapshot_log_entry){
                .timestamp_ms = snap->timestamp_ms, .snapshot_id = snap->snapshot_id};
        if (set_main(n, snap->snapshot_id) < 0)
                goto nomem;
        n->current_snapshot_id = snap->snapshot_id;
        n->last_sequence_number = snap->sequence_number;
        n->last_updated_ms = now_ms > snap->timestamp_ms ? now_ms : snap->timestamp_ms;
        *ret = n;
        return 0;
nomem:
        ice_metadata_free(n);
        return -ENOMEM;
}

int ice_metadata_log_previous(struct ice_metadata *md, const char *prev_location,
                              int64_t prev_updated_ms)
{
        struct ice_metadata_log_entry *log;
        int64_t max;
        char *file;
        int r;

        r = ice_kvs_get_i64(&md->properties, ICE_PROP_PREVIOUS_VERSIONS_MAX, 100, &max);
        if (r < 0 || max < 1)
                max = 100; /* Java's default for a bad value too */
        file = floe_strdup(prev_location);
        if (!file)
                return -ENOMEM;
        log = floe_reallocarray(md->metadata_log, md->n_metadata_log + 1, sizeof(*log));
        if (!log) {
                floe_free(file);
                return -ENOMEM;
        }
        md->metadata_log = log;
        log[md->n_metadata_log++] =
                (struct ice_metadata_log_entry){.timestamp_ms = prev_updated_ms, .file = file};
        if ((int64_t)md->n_metadata_log > max) {
                size_t drop = md->n_metadata_log - (size_t)max;

                for (size_t i = 0; i < drop; i++)
                        floe_free(log[i].file);
                memmove(log, log + drop, (size_t)max * sizeof(*log));
                md->n_metadata_log = (size_t)max;
        }
        return 0;
}
