/* SPDX-License-Identifier: Apache-2.0 */
/* Avro schemas from their JSON form: primitives, records, enums, arrays, maps, unions, fixed,
 * named references, namespaces; plus Iceberg's field-id and element-id attributes. */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "avro.h"
#include "floe-alloc.h"

#define MAX_NODES 20000
#define MAX_NAMED 1000

struct avro_schema_tree {
        struct avro_schema **nodes; /* every node, for freeing; named nodes are shared */
        size_t n_nodes, cap_nodes;
        struct avro_schema *named[MAX_NAMED];
        size_t n_named;
        struct avro_schema *root;
};

static const char *const PRIMITIVES[] = {
        [AVRO_NULL] = "null",   [AVRO_BOOLEAN] = "boolean", [AVRO_INT] = "int",
        [AVRO_LONG] = "long",   [AVRO_FLOAT] = "float",     [AVRO_DOUBLE] = "double",
        [AVRO_BYTES] = "bytes", [AVRO_STRING] = "string",
};

static void node_free(struct avro_schema *s)
{
        for (size_t i = 0; i < s->n_fields; i++)
                floe_free(s->fields[i].name);
        floe_free(s->fields);
        floe_free(s->branches);
        floe_free(s->name);
        floe_free(s->logical_type);
        floe_free(s);
}

struct avro_schema_tree *avro_schema_tree_free(struct avro_schema_tree *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_nodes; i++)
                node_free(t->nodes[i]);
        floe_free(t->nodes);
        floe_free(t);
        return NULL;
}

const struct avro_schema *avro_schema_root(const struct avro_schema_tree *t)
{
        return t->root;
}

static int new_node(struct avro_schema_tree *t, enum avro_type type, struct avro_schema **ret)
{
        struct avro_schema *s;

        if (t->n_nodes >= MAX_NODES)
                return -E2BIG;
        if (t->n_nodes == t->cap_nodes) {
                size_t cap = t->cap_nodes ? 2 * t->cap_nodes : 16;
                struct avro_schema **n = floe_reallocarray(t->nodes, cap, sizeof(*n));

                if (!n)
                        return -ENOMEM;
                t->nodes = n;
                t->cap_nodes = cap;
        }
        s = floe_calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->type = type;
        t->nodes[t->n_nodes++] = s;
        *ret = s;
        return 0;
}

static int primitive_type(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(PRIMITIVES); i++)
                if (PRIMITIVES[i] && strcmp(PRIMITIVES[i], name) == 0)
                        return (int)i;
        return -1;
}

/* Avro names: [A-Za-z_][A-Za-z0-9_]*, dot-separated in full names. */
static bool valid_name(const char *s, bool dotted)
{
        bool start = true;

        if (!*s)
                return false;
        for (; *s; s++) {
                char c = *s;

                if (c == '.' && dotted && !start) {
                        start = true;
                        continue;
                }
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
                      (!start && c >= '0' && c <= '9')))
                        return false;
                start = false;
        }
        return !start;
}

static int full_name(const char *name, const char *ns, char **ret)
{
        size_t nl, sl;
        char *p;

        if (strchr(name, '.') || !ns || !*ns) {
                p = floe_strdup(name);
        } else {
                nl = strlen(name);
                sl = strlen(ns);
                p = floe_malloc(sl + nl + 2);
                if (p) {
                        memcpy(p, ns, sl);
                        p[sl] = '.';
                        memcpy(p + sl + 1, name, nl + 1);
                }
        }
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

static struct avro_schema *find_exact(const struct avro_schema_tree *t, const char *full)
{
        for (size_t i = 0; i < t->n_named; i++)
                if (strcmp(t->named[i]->name, full) == 0)
                        return t->named[i];
        return NULL;
}

static struct avro_schema *lookup(const struct avro_schema_tree *t, const char *name,
                                  const char *ns)
{
        _cleanup_free_ char *full = NULL;
        struct avro_schema *s;

        if (full_name(name, ns, &full) < 0)
                return NULL;
        s = find_exact(t, full);
        /* a name from the null namespace used inside a namespaced schema */
        return s ? s : find_exact(t, name);
}

static int parse(struct avro_schema_tree *t, json_t *j, const char *ns, unsigned depth,
                 struct avro_schema **ret);

/* Sets s->name; *ret_ns: the namespace for names inside s (floe_malloc). */
static int parse_named(struct avro_schema_tree *t, json_t *j, struct avro_schema *s, const char *ns,
                       char **ret_ns)
{
        const char *name = json_string_value(json_object_get(j, "name")), *dot;
        json_t *jns = json_object_get(j, "namespace");
        char *child_ns;
        int r;

        if (!name || !valid_name(name, true))
                return -EBADMSG;
        if (jns && !json_is_string(jns) && !json_is_null(jns))
                return -EBADMSG;
        if (json_is_string(jns))
                ns = json_string_value(jns);
        if (ns && *ns && !valid_name(ns, true))
                return -EBADMSG;
        if (t->n_named >= MAX_NAMED)
                return -E2BIG;
        r = full_name(name, ns, &s->name);
        if (r < 0)
                return r;
        if (find_exact(t, s->name))
                return -EBADMSG; /* defined twice */
        t->named[t->n_named++] = s;
        dot = strrchr(s->name, '.');
        child_ns = floe_strndup(s->name, dot ? (size_t)(dot - s->name) : 0);
        if (!child_ns)
                return -ENOMEM;
        *ret_ns = child_ns;
        return 0;
}

static int parse_record(struct avro_schema_tree *t, json_t *j, const char *ns, unsigned depth,
                        struct avro_schema *s)
{
        json_t *fields = json_object_get(j, "fields"), *f;
        _cleanup_free_ char *own_ns = NULL;
        size_t i;
        int r;

        r = parse_named(t, j, s, ns, &own_ns);
        if (r < 0)
                return r;
        if (!json_is_array(fields))
                return -EBADMSG;
        if (json_array_size(fields) > 0) {
                s->fields = floe_calloc(json_array_size(fields), sizeof(*s->fields));
                if (!s->fields)
                        return -ENOMEM;
        }
        json_array_foreach(fields, i, f)
        {
                const char *name = json_string_value(json_object_get(f, "name"));
                json_t *id = json_object_get(f, "field-id");
                struct avro_field *fl = &s->fields[i];

                if (!name || !valid_name(name, false))
                        return -EBADMSG;
                for (size_t k = 0; k < i; k++)
                        if (strcmp(s->fields[k].name, name) == 0)
                                return -EBADMSG;
                fl->name = floe_strdup(name);
                if (!fl->name)
                        return -ENOMEM;
                s->n_fields = i + 1;
                if (id) {
                        if (!json_is_integer(id) || json_integer_value(id) < INT32_MIN ||
                            json_integer_value(id) > INT32_MAX)
                                return -EBADMSG;
                        fl->field_id = (int32_t)json_integer_value(id);
                        fl->has_field_id = true;
                }
                r = parse(t, json_object_get(f, "type"), own_ns, depth + 1, &fl->type);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_union(struct avro_schema_tree *t, json_t *j, const char *ns, unsigned depth,
                       struct avro_schema **ret)
{
        struct avro_schema *s;
        json_t *b;
        size_t i;
        int r;

        r = new_node(t, AVRO_UNION, &s);
        if (r < 0)
                return r;
        if (json_array_size(j) == 0)
                return -EBADMSG;
        s->branches = floe_calloc(json_array_size(j), sizeof(*s->branches));
        if (!s->branches)
                return -ENOMEM;
        json_array_foreach(j, i, b)
        {
                struct avro_schema *c;

                r = parse(t, b, ns, depth + 1, &c);
                if (r < 0)
                        return r;
                if (c->type == AVRO_UNION)
                        return -EBADMSG; /* unions may not contain unions */
                for (size_t k = 0; k < i; k++) {
                        const struct avro_schema *o = s->branches[k];

                        /* at most one branch per unnamed type, per name for named ones */
                        if (o->type == c->type &&
                            (!o->name || !c->name || strcmp(o->name, c->name) == 0))
                                return -EBADMSG;
                }
                s->branches[i] = c;
                s->n_branches = i + 1;
        }
        *ret = s;
        return 0;
}

static int parse_object(struct avro_schema_tree *t, json_t *j, const char *ns, unsigned depth,
                        struct avro_schema **ret)
{
        json_t *jt = json_object_get(j, "type"), *lt = json_object_get(j, "logicalType");
        const char *type = json_string_value(jt);
        struct avro_schema *s;
        int p, r;

        if (!type)
                return parse(t, jt, ns, depth + 1, ret); /* {"type": {...}} or {"type": [...]} */
        if (lt && !json_is_string(lt))
                return -EBADMSG;
        p = primitive_type(type);
        if (p >= 0) {
                r = new_node(t, (enum avro_type)p, &s);
        } else if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0) {
                r = new_node(t, AVRO_RECORD, &s);
                if (r >= 0)
                        r = parse_record(t, j, ns, depth, s);
        } else if (strcmp(type, "enum") == 0) {
                json_t *sym = json_object_get(j, "symbols"), *e;
                size_t i;

                _cleanup_free_ char *inner = NULL;

                r = new_node(t, AVRO_ENUM, &s);
                if (r >= 0)
                        r = parse_named(t, j, s, ns, &inner);
                if (r >= 0 && (!json_is_array(sym) || json_array_size(sym) == 0))
                        r = -EBADMSG;
                for (i = 0; r >= 0 && i < json_array_size(sym); i++) {
                        e = json_array_get(sym, i);
                        if (!json_is_string(e) || !valid_name(json_string_value(e), false))
                                r = -EBADMSG;
                }
                if (r >= 0)
                        s->n_symbols = json_array_size(sym);
        } else if (strcmp(type, "fixed") == 0) {
                json_t *size = json_object_get(j, "size");
                _cleanup_free_ char *inner = NULL;

                r = new_node(t, AVRO_FIXED, &s);
                if (r >= 0)
                        r = parse_named(t, j, s, ns, &inner);
                if (r >= 0 && (!json_is_integer(size) || json_integer_value(size) < 0 ||
                               json_integer_value(size) > INT32_MAX))
                        r = -EBADMSG;
                if (r >= 0)
                        s->size = (size_t)json_integer_value(size);
        } else if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
                bool array = type[0] == 'a';
                json_t *id = json_object_get(j, "element-id");

                r = new_node(t, array ? AVRO_ARRAY : AVRO_MAP, &s);
                if (r >= 0)
                        r = parse(t, json_object_get(j, array ? "items" : "values"), ns, depth + 1,
                                  &s->items);
                if (r >= 0 && id && array) {
                        if (!json_is_integer(id) || json_integer_value(id) < INT32_MIN ||
                            json_integer_value(id) > INT32_MAX)
                                return -EBADMSG;
                        s->element_id = (int32_t)json_integer_value(id);
                        s->has_element_id = true;
                }
        } else {
                /* {"type": "SomeName"}: a reference */
                return parse(t, jt, ns, depth + 1, ret);
        }
        if (r < 0)
                return r;
        if (lt) {
                s->logical_type = floe_strdup(json_string_value(lt));
                if (!s->logical_type)
                        return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static int parse(struct avro_schema_tree *t, json_t *j, const char *ns, unsigned depth,
                 struct avro_schema **ret)
{
        if (!j || depth > AVRO_SCHEMA_MAX_DEPTH)
                return -EBADMSG;
        if (json_is_string(j)) {
                const char *name = json_string_value(j);
                int p = primitive_type(name);
                struct avro_schema *s;

                if (p >= 0)
                        return new_node(t, (enum avro_type)p, ret);
                s = valid_name(name, true) ? lookup(t, name, ns) : NULL;
                if (!s)
                        return -EBADMSG; /* unknown name */
                *ret = s;
                return 0;
        }
        if (json_is_array(j))
                return parse_union(t, j, ns, depth, ret);
        if (json_is_object(j))
                return parse_object(t, j, ns, depth, ret);
        return -EBADMSG;
}

/* Which types can encode in zero bytes: null, fixed(0) and records of only those. A fixpoint,
 * since records may refer to themselves. */
static void compute_empty(struct avro_schema_tree *t)
{
        bool changed = true;

        while (changed) {
                changed = false;
                for (size_t i = 0; i < t->n_nodes; i++) {
                        struct avro_schema *s = t->nodes[i];
                        bool e = false;

                        if (s->may_be_empty)
                                continue;
                        if (s->type == AVRO_NULL || (s->type == AVRO_FIXED && s->size == 0)) {
                                e = true;
                        } else if (s->type == AVRO_RECORD) {
                                e = true;
                                for (size_t k = 0; k < s->n_fields; k++)
                                        e = e && s->fields[k].type->may_be_empty;
                        }
                        if (e) {
                                s->may_be_empty = true;
                                changed = true;
                        }
                }
        }
}

int avro_schema_parse(const char *json, size_t len, struct avro_schema_tree **ret)
{
        struct avro_schema_tree *t;
        json_t *j;
        int r;

        j = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
        if (!j)
                return -EBADMSG;
        t = floe_calloc(1, sizeof(*t));
        if (!t) {
                json_decref(j);
                return -ENOMEM;
        }
        r = parse(t, j, "", 0, &t->root);
        json_decref(j);
        if (r < 0) {
                avro_schema_tree_free(t);
                return r;
        }
        compute_empty(t);
        *ret = t;
        return 0;
}

const struct avro_field *avro_schema_field_by_id(const struct avro_schema *record, int32_t id,
                                                 size_t *ret_index)
{
        if (!record || record->type != AVRO_RECORD)
                return NULL;
        for (size_t i = 0; i < record->n_fields; i++)
                if (record->fields[i].has_field_id && record->fields[i].field_id == id) {
                        if (ret_index)
                                *ret_index = i;
                        return &record->fields[i];
                }
        return NULL;
}

const struct avro_schema *avro_schema_nonnull(const struct avro_schema *s)
{
        if (s->type != AVRO_UNION || s->n_branches != 2)
                return s;
        if (s->branches[0]->type == AVRO_NULL)
                return s->branches[1];
        if (s->branches[1]->type == AVRO_NULL)
                return s->branches[0];
        return s;
}
