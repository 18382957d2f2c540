/* SPDX-License-Identifier: Apache-2.0 */
/* Table metadata as v2 JSON, fields in the order Java writes them. */
#include <errno.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

/* Sets o[k] = v (a new reference, may be NULL after a failed allocation); *ok turns false on
 * any failure. */
static void set(json_t *o, const char *k, json_t *v, bool *ok)
{
        if (!v || json_object_set_new(o, k, v) < 0)
                *ok = false;
}

static void append(json_t *a, json_t *v, bool *ok)
{
        if (!v || json_array_append_new(a, v) < 0)
                *ok = false;
}

static json_t *kvs_json(const struct ice_kvs *m, bool *ok)
{
        json_t *o = json_object();

        if (!o) {
                *ok = false;
                return NULL;
        }
        for (size_t i = 0; i < m->n; i++)
                set(o, m->items[i].key, json_string(m->items[i].value), ok);
        return o;
}

static json_t *type_json(const struct ice_field *f)
{
        char buf[64];

        if (f->nested)
                return json_deep_copy(f->nested);
        if (ice_type_format(&f->type, buf, sizeof(buf)) < 0)
                return NULL;
        return json_string(buf);
}

static json_t *schema_json(const struct ice_schema *s, bool *ok)
{
        json_t *o = json_object(), *fields = json_array();

        set(o, "type", json_string("struct"), ok);
        set(o, "schema-id", json_integer(s->schema_id), ok);
        if (s->n_identifier_ids) {
                json_t *ids = json_array();

                for (size_t i = 0; ids && i < s->n_identifier_ids; i++)
                        append(ids, json_integer(s->identifier_ids[i]), ok);
                set(o, "identifier-field-ids", ids, ok);
        }
        for (size_t i = 0; fields && i < s->n_fields; i++) {
                const struct ice_field *f = &s->fields[i];
                json_t *fo = json_object();

                if (fo) {
                        set(fo, "id", json_integer(f->id), ok);
                        set(fo, "name", json_string(f->name), ok);
                        set(fo, "required", json_boolean(f->required), ok);
                        set(fo, "type", type_json(f), ok);
                        if (f->doc)
                                set(fo, "doc", json_string(f->doc), ok);
                }
                append(fields, fo, ok);
        }
        set(o, "fields", fields, ok);
        if (!o)
                *ok = false;
        return o;
}

static json_t *transform_json(const struct ice_transform *t, const char *text)
{
        char buf[32];

        if (t->kind == ICE_TRANSFORM_UNKNOWN || ice_transform_format(t, buf, sizeof(buf)) < 0)
                return text ? json_string(text) : NULL;
        return json_string(buf);
}

/* The fields of a spec: also the "partition-spec" key of a manifest. */
static json_t *spec_fields_json(const struct ice_partition_spec *s, bool *ok)
{
        json_t *fields = json_array();

        for (size_t i = 0; fields && i < s->n_fields; i++) {
                const struct ice_partition_field *f = &s->fields[i];
                json_t *fo = json_object();

                if (fo) {
                        set(fo, "name", json_string(f->name), ok);
                        set(fo, "transform", transform_json(&f->transform, f->transform_text), ok);
                        set(fo, "source-id", json_integer(f->source_id), ok);
                        set(fo, "field-id", json_integer(f->field_id), ok);
                }
                append(fields, fo, ok);
        }
        if (!fields)
                *ok = false;
        return fields;
}

static json_t *sort_order_json(const struct ice_sort_order *so, bool *ok)
{
        json_t *o = json_object(), *fields = json_array();

        set(o, "order-id", json_integer(so->order_id), ok);
        for (size_t i = 0; fields && i < so->n_fields; i++) {
                const struct ice_sort_field *f = &so->fields[i];
                json_t *fo = json_object();

                if (fo) {
                        set(fo, "transform", transform_json(&f->transform, f->transform_text), ok);
                        set(fo, "source-id", json_integer(f->source_id), ok);
                        set(fo, "direction", json_string(f->descending ? "desc" : "asc"), ok);
                        set(fo, "null-order",
                            json_string(f->nulls_first ? "nulls-first" : "nulls-last"), ok);
                }
                append(fields, fo, ok);
        }
        set(o, "fields", fields, ok);
        if (!o)
                *ok = false;
        return o;
}

static json_t *snapshot_json(const struct ice_snapshot *s, bool *ok)
{
        json_t *o = json_object();

        if (!o) {
                *ok = false;
                return NULL;
        }
        set(o, "sequence-number", json_integer(s->sequence_number), ok);
        set(o, "snapshot-id", json_integer(s->snapshot_id), ok);
        if (s->has_parent)
                set(o, "parent-snapshot-id", json_integer(s->parent_id), ok);
        set(o, "timestamp-ms", json_integer(s->timestamp_ms), ok);
        set(o, "summary", kvs_json(&s->summary, ok), ok);
        set(o, "manifest-list", json_string(s->manifest_list), ok);
        if (s->has_schema_id)
                set(o, "schema-id", json_integer(s->schema_id), ok);
        return o;
}

static json_t *refs_json(const struct ice_metadata *md, bool *ok)
{
        json_t *o = json_object();

        for (size_t i = 0; o && i < md->n_refs; i++) {
                const struct ice_ref *r = &md->refs[i];
                json_t *ro = json_object();

                if (ro) {
                        set(ro, "snapshot-id", json_integer(r->snapshot_id), ok);
                        set(ro, "type", json_string(r->tag ? "tag" : "branch"), ok);
                        if (r->min_snapshots_to_keep > 0)
                                set(ro, "min-snapshots-to-keep",
                                    json_integer(r->min_snapshots_to_keep), ok);
                        if (r->max_snapshot_age_ms > 0)
                                set(ro, "max-snapshot-age-ms", json_integer(r->max_snapshot_age_ms),
                                    ok);
                        if (r->max_ref_age_ms > 0)
                                set(ro, "max-ref-age-ms", json_integer(r->max_ref_age_ms), ok);
                }
                set(o, r->name, ro, ok);
        }
        if (!o)
                *ok = false;
        return o;
}

static json_t *logs_json(const struct ice_metadata *md, bool metadata, bool *ok)
{
        json_t *a = json_array();
        size_t n = metadata ? md->n_metadata_log : md->n_snapshot_log;

        for (size_t i = 0; a && i < n; i++) {
                json_t *e = json_object();

                if (e && metadata) {
                        set(e, "timestamp-ms", json_integer(md->metadata_log[i].timestamp_ms), ok);
                        set(e, "metadata-file", json_string(md->metadata_log[i].file), ok);
                } else if (e) {
                        set(e, "timestamp-ms", json_integer(md->snapshot_log[i].timestamp_ms), ok);
                        set(e, "snapshot-id", json_integer(md->snapshot_log[i].snapshot_id), ok);
                }
                append(a, e, ok);
        }
        if (!a)
                *ok = false;
        return a;
}

static json_t *metadata_json(const struct ice_metadata *md, bool *ok)
{
        json_t *o = json_object(), *a;
        const char *k;
        json_t *v;

        if (!o) {
                *ok = false;
                return NULL;
        }
        set(o, "format-version", json_integer(2), ok);
        set(o, "table-uuid", json_string(md->table_uuid), ok);
        set(o, "location", json_string(md->location), ok);
        set(o, "last-sequence-number", json_integer(md->last_sequence_number), ok);
        set(o, "last-updated-ms", json_integer(md->last_updated_ms), ok);
        set(o, "last-column-id", json_integer(md->last_column_id), ok);
        set(o, "current-schema-id", json_integer(md->current_schema_id), ok);
        a = json_array();
        for (size_t i = 0; a && i < md->n_schemas; i++)
                append(a, schema_json(&md->schemas[i], ok), ok);
        set(o, "schemas", a, ok);
        set(o, "default-spec-id", json_integer(md->default_spec_id), ok);
        a = json_array();
        for (size_t i = 0; a && i < md->n_specs; i++)
                append(a,
                       json_pack("{s:i,s:o*}", "spec-id", (int)md->specs[i].spec_id, "fields",
                                 spec_fields_json(&md->specs[i], ok)),
                       ok);
        set(o, "partition-specs", a, ok);
        set(o, "last-partition-id", json_integer(md->last_partition_id), ok);
        set(o, "default-sort-order-id", json_integer(md->default_sort_order_id), ok);
        a = json_array();
        for (size_t i = 0; a && i < md->n_sort_orders; i++)
                append(a, sort_order_json(&md->sort_orders[i], ok), ok);
        set(o, "sort-orders", a, ok);
        set(o, "properties", kvs_json(&md->properties, ok), ok);
        set(o, "current-snapshot-id", json_integer(md->current_snapshot_id), ok);
        set(o, "refs", refs_json(md, ok), ok);
        a = json_array();
        for (size_t i = 0; a && i < md->n_snapshots; i++)
                append(a, snapshot_json(&md->snapshots[i], ok), ok);
        set(o, "snapshots", a, ok);
        for (void *it = md->extra ? json_object_iter(md->extra) : NULL; it;
             it = json_object_iter_next(md->extra, it)) {
                k = json_object_iter_key(it);
                v = json_object_iter_value(it);
                set(o, k, json_deep_copy(v), ok);
        }
        set(o, "snapshot-log", logs_json(md, false, ok), ok);
        set(o, "metadata-log", logs_json(md, true, ok), ok);
        return o;
}

int ice_metadata_format(const struct ice_metadata *md, char **ret)
{
        bool ok = true;
        json_t *o;
        char *text, *copy;

        o = metadata_json(md, &ok);
        if (!ok) {
                json_decref(o);
                return -ENOMEM;
        }
        text = json_dumps(o, JSON_INDENT(2));
        json_decref(o);
        if (!text)
                return -ENOMEM;
        /* jansson allocates with malloc; callers free with floe_free */
        copy = floe_strdup(text);
        free(text);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int ice_metadata_copy(const struct ice_metadata *md, struct ice_metadata **ret)
{
        _cleanup_free_ char *text = NULL;
        struct ice_metadata *c;
        int r;

        r = ice_metadata_format(md, &text);
        if (r < 0)
                return r;
        r = ice_metadata_parse(text, strlen(text), &c, NULL, 0);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

static int dump(json_t *o, bool ok, char **ret)
{
        char *text, *copy = NULL;

        if (ok && o) {
                text = json_dumps(o, JSON_COMPACT);
                if (text)
                        copy = floe_strdup(text);
                free(text);
        }
        json_decref(o);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int ice_schema_format(const struct ice_schema *s, char **ret)
{
        bool ok = true;
        json_t *o = schema_json(s, &ok);

        return dump(o, ok, ret);
}

int ice_spec_fields_format(const struct ice_partition_spec *s, char **ret)
{
        bool ok = true;
        json_t *o = spec_fields_json(s, &ok);

        return dump(o, ok, ret);
}
