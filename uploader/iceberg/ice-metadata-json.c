/* SPDX-License-Identifier: Apache-2.0 */
/* Table metadata JSON (spec Appendix C): parsing v1 and v2, writing v2. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

struct ctx {
        char *err;
        size_t errsize;
        int version;
};

static int bad(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct ctx *c, const char *fmt, ...)
{
        va_list ap;

        if (c->err && c->errsize) {
                va_start(ap, fmt);
                vsnprintf(c->err, c->errsize, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

static int get_i64(struct ctx *c, json_t *o, const char *key, bool required, int64_t def,
                   int64_t *ret)
{
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v)) {
                if (required)
                        return bad(c, "\"%s\" missing", key);
                *ret = def;
                return 0;
        }
        if (!json_is_integer(v))
                return bad(c, "\"%s\" is not an integer", key);
        *ret = json_integer_value(v);
        return 0;
}

static int get_i32(struct ctx *c, json_t *o, const char *key, bool required, int32_t def,
                   int32_t *ret)
{
        int64_t v = 0;
        int r;

        r = get_i64(c, o, key, required, def, &v);
        if (r < 0)
                return r;
        if (v < INT32_MIN || v > INT32_MAX)
                return bad(c, "\"%s\" out of range", key);
        *ret = (int32_t)v;
        return 0;
}

static int get_str(struct ctx *c, json_t *o, const char *key, bool required, char **ret)
{
        json_t *v = json_object_get(o, key);

        *ret = NULL;
        if (!v || json_is_null(v))
                return required ? bad(c, "\"%s\" missing", key) : 0;
        if (!json_is_string(v))
                return bad(c, "\"%s\" is not a string", key);
        *ret = floe_strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

/* An array member, or -EBADMSG; absent gives *ret = NULL when allowed. */
static int get_array(struct ctx *c, json_t *o, const char *key, bool required, json_t **ret)
{
        json_t *v = json_object_get(o, key);

        *ret = NULL;
        if (!v || json_is_null(v))
                return required ? bad(c, "\"%s\" missing", key) : 0;
        if (!json_is_array(v))
                return bad(c, "\"%s\" is not a list", key);
        *ret = v;
        return 0;
}

/* calloc'd array for a JSON list (NULL when empty). */
static int alloc_for(json_t *a, size_t size, void **ret)
{
        *ret = NULL;
        if (!a || json_array_size(a) == 0)
                return 0;
        *ret = floe_calloc(json_array_size(a), size);
        return *ret ? 0 : -ENOMEM;
}

static int parse_field(struct ctx *c, json_t *j, struct ice_field *f)
{
        json_t *type = json_object_get(j, "type"), *req = json_object_get(j, "required");
        int r;

        if (!json_is_object(j))
                return bad(c, "schema field is not an object");
        r = get_i32(c, j, "id", true, 0, &f->id);
        if (r == 0)
                r = get_str(c, j, "name", true, &f->name);
        if (r == 0)
                r = get_str(c, j, "doc", false, &f->doc);
        if (r < 0)
                return r;
        if (!json_is_boolean(req))
                return bad(c, "field %d: \"required\" is not a boolean", f->id);
        f->required = json_is_true(req);
        if (json_is_string(type) && ice_type_parse(json_string_value(type), &f->type) == 0)
                return 0;
        if (json_is_object(type)) {
                const char *k = json_string_value(json_object_get(type, "type"));

                f->type.id = !k                         ? ICE_TYPE_OTHER
                             : strcmp(k, "struct") == 0 ? ICE_TYPE_STRUCT
                             : strcmp(k, "list") == 0   ? ICE_TYPE_LIST
                             : strcmp(k, "map") == 0    ? ICE_TYPE_MAP
                                                        : ICE_TYPE_OTHER;
        } else if (json_is_string(type)) {
                f->type.id = ICE_TYPE_OTHER; /* a type we do not know: kept as written */
        } else {
                return bad(c, "field %d: bad type", f->id);
        }
        f->nested = json_deep_copy(type);
        return f->nested ? 0 : -ENOMEM;
}

static int parse_schema(struct ctx *c, json_t *j, struct ice_schema *s)
{
        json_t *fields, *ids, *v;
        size_t i;
        int r;

        if (!json_is_object(j))
                return bad(c, "schema is not an object");
        r = get_i32(c, j, "schema-id", c->version >= 2, 0, &s->schema_id);
        if (r == 0)
                r = get_array(c, j, "fields", true, &fields);
        if (r == 0)
                r = get_array(c, j, "identifier-field-ids", false, &ids);
        if (r == 0)
                r = alloc_for(fields, sizeof(*s->fields), (void **)&s->fields);
        if (r < 0)
                return r;
        json_array_foreach(fields, i, v)
        {
                s->n_fields = i + 1;
                r = parse_field(c, v, &s->fields[i]);
                if (r < 0)
                        return r;
        }
        r = alloc_for(ids, sizeof(*s->identifier_ids), (void **)&s->identifier_ids);
        if (r < 0)
                return r;
        json_array_foreach(ids, i, v)
        {
                if (!json_is_integer(v))
                        return bad(c, "bad identifier-field-ids");
                s->identifier_ids[i] = (int32_t)json_integer_value(v);
                s->n_identifier_ids = i + 1;
        }
        return 0;
}

static int parse_transform(struct ctx *c, json_t *j, struct ice_transform *t, char **text)
{
        int r;

        r = get_str(c, j, "transform", true, text);
        if (r < 0)
                return r;
        if (ice_transform_parse(*text, t) < 0)
                return bad(c, "bad transform \"%s\"", *text);
        return 0;
}

static int parse_spec_fields(struct ctx *c, json_t *fields, struct ice_partition_spec *s)
{
        json_t *v;
        size_t i;
        int r;

        r = alloc_for(fields, sizeof(*s->fields), (void **)&s->fields);
        if (r < 0)
                return r;
        json_array_foreach(fields, i, v)
        {
                struct ice_partition_field *f = &s->fields[i];

                s->n_fields = i + 1;
                if (!json_is_object(v))
                        return bad(c, "partition field is not an object");
                r = get_i32(c, v, "source-id", true, 0, &f->source_id);
                if (r == 0)
                        r = get_i32(c, v, "field-id", c->version >= 2,
                                    ICE_PARTITION_FIELD_ID_START + (int32_t)i, &f->field_id);
                if (r == 0)
                        r = get_str(c, v, "name", true, &f->name);
                if (r == 0)
                        r = parse_transform(c, v, &f->transform, &f->transform_text);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_sort_order(struct ctx *c, json_t *j, struct ice_sort_order *o)
{
        json_t *fields, *v;
        size_t i;
        int r;

        if (!json_is_object(j))
                return bad(c, "sort order is not an object");
        r = get_i32(c, j, "order-id", true, 0, &o->order_id);
        if (r == 0)
                r = get_array(c, j, "fields", true, &fields);
        if (r == 0)
                r = alloc_for(fields, sizeof(*o->fields), (void **)&o->fields);
        if (r < 0)
                return r;
        json_array_foreach(fields, i, v)
        {
                struct ice_sort_field *f = &o->fields[i];
                const char *dir = json_string_value(json_object_get(v, "direction"));
                const char *nulls = json_string_value(json_object_get(v, "null-order"));

                o->n_fields = i + 1;
                r = get_i32(c, v, "source-id", true, 0, &f->source_id);
                if (r == 0)
                        r = parse_transform(c, v, &f->transform, &f->transform_text);
                if (r < 0)
                        return r;
                if (!dir || (strcmp(dir, "asc") != 0 && strcmp(dir, "desc") != 0) || !nulls ||
                    (strcmp(nulls, "nulls-first") != 0 && strcmp(nulls, "nulls-last") != 0))
                        return bad(c, "bad sort field direction or null-order");
                f->descending = strcmp(dir, "desc") == 0;
                f->nulls_first = strcmp(nulls, "nulls-first") == 0;
        }
        return 0;
}

static int parse_kvs(struct ctx *c, json_t *j, const char *what, struct ice_kvs *m)
{
        const char *k;
        json_t *v;
        int r;

        if (!j || json_is_null(j))
                return 0;
        if (!json_is_object(j))
                return bad(c, "%s is not an object", what);
        json_object_foreach(j, k, v)
        {
                char num[32];
                const char *s = json_string_value(v);

                /* numbers are tolerated (old writers), written back as strings */
                if (!s && json_is_integer(v)) {
                        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
                        s = num;
                }
                if (!s)
                        return bad(c, "%s: value of \"%s\" is not a string", what, k);
                r = ice_kvs_set(m, k, s);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_snapshot(struct ctx *c, json_t *j, struct ice_snapshot *s)
{
        json_t *parent = json_object_get(j, "parent-snapshot-id");
        int r;

        if (!json_is_object(j))
                return bad(c, "snapshot is not an object");
        r = get_i64(c, j, "snapshot-id", true, 0, &s->snapshot_id);
        if (r == 0 && parent && !json_is_null(parent)) {
                r = get_i64(c, j, "parent-snapshot-id", true, 0, &s->parent_id);
                s->has_parent = true;
        }
        if (r == 0)
                r = get_i64(c, j, "sequence-number", c->version >= 2, 0, &s->sequence_number);
        if (r == 0)
                r = get_i64(c, j, "timestamp-ms", true, 0, &s->timestamp_ms);
        if (r == 0 && !json_object_get(j, "manifest-list") && json_object_get(j, "manifests"))
                return bad(c,
                           "snapshot %lld lists manifests without a manifest list "
                           "(v1 \"manifests\" is not supported)",
                           (long long)s->snapshot_id);
        if (r == 0)
                r = get_str(c, j, "manifest-list", true, &s->manifest_list);
        if (r == 0)
                r = parse_kvs(c, json_object_get(j, "summary"), "summary", &s->summary);
        if (r == 0 && json_object_get(j, "schema-id")) {
                r = get_i32(c, j, "schema-id", true, 0, &s->schema_id);
                s->has_schema_id = true;
        }
        if (r == 0 && !ice_kvs_get(&s->summary, "operation"))
                r = ice_kvs_set(&s->summary, "operation", "append"); /* v1 summaries are optional */
        return r;
}

static int parse_refs(struct ctx *c, json_t *j, struct ice_metadata *md)
{
        const char *name;
        json_t *v;
        int r;

        if (!j || json_is_null(j))
                return 0;
        if (!json_is_object(j))
                return bad(c, "refs is not an object");
        if (json_object_size(j)) {
                md->refs = floe_calloc(json_object_size(j), sizeof(*md->refs));
                if (!md->refs)
                        return -ENOMEM;
        }
        json_object_foreach(j, name, v)
        {
                struct ice_ref *ref = &md->refs[md->n_refs];
                const char *type = json_string_value(json_object_get(v, "type"));

                ref->name = floe_strdup(name);
                if (!ref->name)
                        return -ENOMEM;
                md->n_refs++;
                if (!type || (strcmp(type, "branch") != 0 && strcmp(type, "tag") != 0))
                        return bad(c, "ref \"%s\": bad type", name);
                ref->tag = strcmp(type, "tag") == 0;
                r = get_i64(c, v, "snapshot-id", true, 0, &ref->snapshot_id);
                if (r == 0)
                        r = get_i32(c, v, "min-snapshots-to-keep", false, 0,
                                    &ref->min_snapshots_to_keep);
                if (r == 0)
                        r = get_i64(c, v, "max-snapshot-age-ms", false, 0,
                                    &ref->max_snapshot_age_ms);
                if (r == 0)
                        r = get_i64(c, v, "max-ref-age-ms", false, 0, &ref->max_ref_age_ms);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_logs(struct ctx *c, json_t *j, struct ice_metadata *md)
{
        json_t *slog, *mlog, *v;
        size_t i;
        int r;

        r = get_array(c, j, "snapshot-log", false, &slog);
        if (r == 0)
                r = get_array(c, j, "metadata-log", false, &mlog);
        if (r == 0)
                r = alloc_for(slog, sizeof(*md->snapshot_log), (void **)&md->snapshot_log);
        if (r == 0)
                r = alloc_for(mlog, sizeof(*md->metadata_log), (void **)&md->metadata_log);
        if (r < 0)
                return r;
        json_array_foreach(slog, i, v)
        {
                r = get_i64(c, v, "timestamp-ms", true, 0, &md->snapshot_log[i].timestamp_ms);
                if (r == 0)
                        r = get_i64(c, v, "snapshot-id", true, 0, &md->snapshot_log[i].snapshot_id);
                if (r < 0)
                        return r;
                md->n_snapshot_log = i + 1;
        }
        json_array_foreach(mlog, i, v)
        {
                md->n_metadata_log = i + 1;
                r = get_i64(c, v, "timestamp-ms", true, 0, &md->metadata_log[i].timestamp_ms);
                if (r == 0)
                        r = get_str(c, v, "metadata-file", true, &md->metadata_log[i].file);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const char *const KNOWN[] = {
        "format-version",
        "table-uuid",
        "location",
        "last-sequence-number",
        "last-updated-ms",
        "last-column-id",
        "schema",
        "schemas",
        "current-schema-id",
        "partition-spec",
        "partition-specs",
        "default-spec-id",
        "last-partition-id",
        "sort-orders",
        "default-sort-order-id",
        "properties",
        "current-snapshot-id",
        "snapshots",
        "refs",
        "snapshot-log",
        "metadata-log",
};

static int parse_lists(struct ctx *c, json_t *j, struct ice_metadata *md)
{
        json_t *schemas, *specs, *orders, *snaps, *v;
        size_t i;
        int r;

        r = get_array(c, j, "schemas", c->version >= 2, &schemas);
        if (r == 0)
                r = get_array(c, j, "partition-specs", c->version >= 2, &specs);
        if (r == 0)
                r = get_array(c, j, "sort-orders", c->version >= 2, &orders);
        if (r == 0)
                r = get_array(c, j, "snapshots", false, &snaps);
        if (r < 0)
                return r;
        if (!schemas) {
                /* v1: one "schema" */
                schemas = json_pack("[O]", json_object_get(j, "schema"));
                if (!schemas || !json_object_get(j, "schema")) {
                        json_decref(schemas);
                        return bad(c, "no schemas");
                }
                json_object_set_new(j, "schemas", schemas);
        }
        if (!specs) {
                json_t *fields = json_object_get(j, "partition-spec");

                specs = json_pack("[{s:i,s:o}]", "spec-id", 0, "fields",
                                  fields ? json_incref(fields) : json_array());
                if (!specs)
                        return -ENOMEM;
                json_object_set_new(j, "partition-specs", specs);
        }
        r = alloc_for(schemas, sizeof(*md->schemas), (void **)&md->schemas);
        if (r == 0)
                r = alloc_for(specs, sizeof(*md->specs), (void **)&md->specs);
        if (r == 0 && orders)
                r = alloc_for(orders, sizeof(*md->sort_orders), (void **)&md->sort_orders);
        if (r == 0)
                r = alloc_for(snaps, sizeof(*md->snapshots), (void **)&md->snapshots);
        if (r < 0)
                return r;
        json_array_foreach(schemas, i, v)
        {
                md->n_schemas = i + 1;
                r = parse_schema(c, v, &md->schemas[i]);
                if (r < 0)
                        return r;
        }
        json_array_foreach(specs, i, v)
        {
                json_t *fields;

                md->n_specs = i + 1;
                r = get_i32(c, v, "spec-id", true, 0, &md->specs[i].spec_id);
                if (r == 0)
                        r = get_array(c, v, "fields", true, &fields);
                if (r == 0)
                        r = parse_spec_fields(c, fields, &md->specs[i]);
                if (r < 0)
                        return r;
        }
        json_array_foreach(orders, i, v)
        {
                md->n_sort_orders = i + 1;
                r = parse_sort_order(c, v, &md->sort_orders[i]);
                if (r < 0)
                        return r;
        }
        if (md->n_sort_orders == 0) {
                md->sort_orders = floe_calloc(1, sizeof(*md->sort_orders));
                if (!md->sort_orders)
                        return -ENOMEM;
                md->n_sort_orders = 1; /* v1 without sort orders: unsorted */
        }
        json_array_foreach(snaps, i, v)
        {
                md->n_snapshots = i + 1;
                r = parse_snapshot(c, v, &md->snapshots[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_top(struct ctx *c, json_t *j, struct ice_metadata *md)
{
        int64_t v;
        char *uuid = NULL;
        int32_t max_pid = ICE_PARTITION_FIELD_ID_START - 1;
        int r;

        r = get_i64(c, j, "format-version", true, 0, &v);
        if (r < 0)
                return r;
        if (v < 1 || v > 2)
                return bad(c, "format-version %lld is not supported", (long long)v);
        c->version = md->format_version = (int)v;
        r = get_str(c, j, "table-uuid", c->version >= 2, &uuid);
        if (r < 0)
                return r;
        if (uuid && strlen(uuid) >= sizeof(md->table_uuid)) {
                floe_free(uuid);
                return bad(c, "bad table-uuid");
        }
        if (uuid)
                memcpy(md->table_uuid, uuid, strlen(uuid) + 1);
        floe_free(uuid);
        r = get_str(c, j, "location", true, &md->location);
        if (r == 0)
                r = get_i64(c, j, "last-sequence-number", c->version >= 2, 0,
                            &md->last_sequence_number);
        if (r == 0)
                r = get_i64(c, j, "last-updated-ms", true, 0, &md->last_updated_ms);
        if (r == 0)
                r = get_i32(c, j, "last-column-id", true, 0, &md->last_column_id);
        if (r == 0)
                r = parse_lists(c, j, md);
        if (r < 0)
                return r;
        for (size_t i = 0; i < md->n_specs; i++)
                for (size_t k = 0; k < md->specs[i].n_fields; k++)
                        if (md->specs[i].fields[k].field_id > max_pid)
                                max_pid = md->specs[i].fields[k].field_id;
        r = get_i32(c, j, "current-schema-id", c->version >= 2, md->schemas[0].schema_id,
                    &md->current_schema_id);
        if (r == 0)
                r = get_i32(c, j, "default-spec-id", c->version >= 2, md->specs[0].spec_id,
                            &md->default_spec_id);
        if (r == 0)
                r = get_i32(c, j, "last-partition-id", c->version >= 2, max_pid,
                            &md->last_partition_id);
        if (r == 0)
                r = get_i32(c, j, "default-sort-order-id", c->version >= 2, 0,
                            &md->default_sort_order_id);
        if (r == 0)
                r = get_i64(c, j, "current-snapshot-id", false, -1, &md->current_snapshot_id);
        if (r == 0)
                r = parse_kvs(c, json_object_get(j, "properties"), "properties", &md->properties);
        if (r == 0)
                r = parse_refs(c, json_object_get(j, "refs"), md);
        if (r == 0)
                r = parse_logs(c, j, md);
        return r;
}

/* Cross-references a reader relies on. */
static int check(struct ctx *c, struct ice_metadata *md)
{
        const struct ice_ref *main_ref = NULL;

        if (!ice_metadata_current_schema(md))
                return bad(c, "current-schema-id %d names no schema", md->current_schema_id);
        if (!ice_metadata_spec(md, md->default_spec_id))
                return bad(c, "default-spec-id %d names no spec", md->default_spec_id);
        if (md->current_snapshot_id != -1 && !ice_metadata_current_snapshot(md))
                return bad(c, "current-snapshot-id %lld names no snapshot",
                           (long long)md->current_snapshot_id);
        for (size_t i = 0; i < md->n_refs; i++)
                if (strcmp(md->refs[i].name, "main") == 0)
                        main_ref = &md->refs[i];
        if (main_ref && main_ref->snapshot_id != md->current_snapshot_id)
                return bad(c, "refs.main is not current-snapshot-id");
        if (!main_ref && md->current_snapshot_id != -1) {
                /* no refs: main follows current-snapshot-id (as Java and PyIceberg do) */
                struct ice_ref *refs = floe_reallocarray(md->refs, md->n_refs + 1, sizeof(*refs));

                if (!refs)
                        return -ENOMEM;
                md->refs = refs;
                refs[md->n_refs] = (struct ice_ref){.snapshot_id = md->current_snapshot_id};
                refs[md->n_refs].name = floe_strdup("main");
                if (!refs[md->n_refs].name)
                        return -ENOMEM;
                md->n_refs++;
        }
        return 0;
}

int ice_metadata_parse(const char *json, size_t len, struct ice_metadata **ret, char *err,
                       size_t errsize)
{
        struct ctx c = {.err = err, .errsize = errsize};
        struct ice_metadata *md;
        json_error_t je;
        const char *k;
        json_t *j, *v;
        int r;

        if (err && errsize)
                err[0] = '\0';
        j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
        if (!j)
                return bad(&c, "JSON: %s (line %d)", je.text, je.line);
        md = floe_calloc(1, sizeof(*md));
        if (!md) {
                json_decref(j);
                return -ENOMEM;
        }
        r = parse_top(&c, j, md);
        if (r == 0)
                r = check(&c, md);
        if (r == 0) {
                md->extra = json_object();
                if (!md->extra)
                        r = -ENOMEM;
        }
        json_object_foreach(j, k, v)
        {
                bool known = false;

                for (size_t i = 0; i < ELEMENTSOF(KNOWN); i++)
                        known = known || strcmp(k, KNOWN[i]) == 0;
                if (r == 0 && !known && json_object_set(md->extra, k, v) < 0)
                        r = -ENOMEM;
        }
        json_decref(j);
        if (r < 0) {
                ice_metadata_free(md);
                return r;
        }
        *ret = md;
        return 0;
}

int ice_schema_parse(const char *json, size_t len, struct ice_schema *ret, char *err,
                     size_t errsize)
{
        struct ctx c = {.err = err, .errsize = errsize, .version = 2};
        struct ice_schema s = {0};
        json_error_t je;
        json_t *j;
        int r;

        if (err && errsize)
                err[0] = '\0';
        j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
        if (!j)
                return bad(&c, "JSON: %s (line %d)", je.text, je.line);
        /* a bare list of fields is a schema with id 0 */
        if (json_is_array(j)) {
                json_t *o =
                        json_pack("{s:s,s:i,s:o}", "type", "struct", "schema-id", 0, "fields", j);

                if (!o)
                        return -ENOMEM;
                j = o;
        }
        r = parse_schema(&c, j, &s);
        json_decref(j);
        if (r < 0) {
                ice_schema_clear(&s);
                return r;
        }
        *ret = s;
        return 0;
}
