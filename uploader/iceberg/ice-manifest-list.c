/* SPDX-License-Identifier: Apache-2.0 */
/* Manifest lists (spec "Manifest Lists"): manifest_file records, v2 written, v1 and v2 read by
 * field id. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

static const char MANIFEST_LIST_SCHEMA[] =
        "{\"type\":\"record\",\"name\":\"manifest_file\",\"fields\":["
        "{\"name\":\"manifest_path\",\"type\":\"string\",\"field-id\":500},"
        "{\"name\":\"manifest_length\",\"type\":\"long\",\"field-id\":501},"
        "{\"name\":\"partition_spec_id\",\"type\":\"int\",\"field-id\":502},"
        "{\"name\":\"content\",\"type\":\"int\",\"field-id\":517},"
        "{\"name\":\"sequence_number\",\"type\":\"long\",\"field-id\":515},"
        "{\"name\":\"min_sequence_number\",\"type\":\"long\",\"field-id\":516},"
        "{\"name\":\"added_snapshot_id\",\"type\":\"long\",\"field-id\":503},"
        "{\"name\":\"added_files_count\",\"type\":\"int\",\"field-id\":504},"
        "{\"name\":\"existing_files_count\",\"type\":\"int\",\"field-id\":505},"
        "{\"name\":\"deleted_files_count\",\"type\":\"int\",\"field-id\":506},"
        "{\"name\":\"added_rows_count\",\"type\":\"long\",\"field-id\":512},"
        "{\"name\":\"existing_rows_count\",\"type\":\"long\",\"field-id\":513},"
        "{\"name\":\"deleted_rows_count\",\"type\":\"long\",\"field-id\":514},"
        "{\"name\":\"partitions\",\"type\":[\"null\",{\"type\":\"array\",\"items\":"
        "{\"type\":\"record\",\"name\":\"r508\",\"fields\":["
        "{\"name\":\"contains_null\",\"type\":\"boolean\",\"field-id\":509},"
        "{\"name\":\"contains_nan\",\"type\":[\"null\",\"boolean\"],\"default\":null,"
        "\"field-id\":518},"
        "{\"name\":\"lower_bound\",\"type\":[\"null\",\"bytes\"],\"default\":null,"
        "\"field-id\":510},"
        "{\"name\":\"upper_bound\",\"type\":[\"null\",\"bytes\"],\"default\":null,"
        "\"field-id\":511}]},\"element-id\":508}],\"default\":null,\"field-id\":507},"
        "{\"name\":\"key_metadata\",\"type\":[\"null\",\"bytes\"],\"default\":null,"
        "\"field-id\":519}]}";

void ice_manifest_file_clear(struct ice_manifest_file *m)
{
        floe_free(m->path);
        for (size_t i = 0; i < m->n_partitions; i++) {
                floe_free(m->partitions[i].lower);
                floe_free(m->partitions[i].upper);
        }
        floe_free(m->partitions);
        floe_free(m->key_metadata);
        *m = (struct ice_manifest_file){0};
}

void ice_manifest_files_free(struct ice_manifest_file *m, size_t n)
{
        for (size_t i = 0; m && i < n; i++)
                ice_manifest_file_clear(&m[i]);
        floe_free(m);
}

static int dup_bytes(const uint8_t *p, size_t n, uint8_t **ret)
{
        *ret = NULL;
        if (!p)
                return 0;
        *ret = floe_malloc(n ? n : 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, p, n);
        return 0;
}

int ice_manifest_file_copy(const struct ice_manifest_file *src, struct ice_manifest_file *ret)
{
        struct ice_manifest_file m = *src;
        int r = 0;

        m.path = NULL;
        m.partitions = NULL;
        m.n_partitions = 0;
        m.key_metadata = NULL;
        if (src->path) {
                m.path = floe_strdup(src->path);
                if (!m.path)
                        r = -ENOMEM;
        }
        if (r == 0)
                r = dup_bytes(src->key_metadata, src->key_metadata_len, &m.key_metadata);
        if (r == 0 && src->n_partitions) {
                m.partitions = floe_calloc(src->n_partitions, sizeof(*m.partitions));
                if (!m.partitions)
                        r = -ENOMEM;
                for (size_t i = 0; r == 0 && i < src->n_partitions; i++) {
                        m.partitions[i] = src->partitions[i];
                        m.partitions[i].lower = m.partitions[i].upper = NULL;
                        m.n_partitions = i + 1;
                        r = dup_bytes(src->partitions[i].lower, src->partitions[i].lower_len,
                                      &m.partitions[i].lower);
                        if (r == 0)
                                r = dup_bytes(src->partitions[i].upper,
                                              src->partitions[i].upper_len, &m.partitions[i].upper);
                }
        }
        if (r < 0) {
                ice_manifest_file_clear(&m);
                return r;
        }
        *ret = m;
        return 0;
}

static void put_opt_bytes(struct avro_buf *b, const uint8_t *p, size_t len)
{
        avro_put_long(b, p != NULL);
        if (p)
                avro_put_bytes(b, p, len);
}

int ice_manifest_list_write(int64_t snapshot_id, const int64_t *parent_id, int64_t sequence_number,
                            const struct ice_manifest_file *files, size_t n, enum avro_codec codec,
                            uint8_t **ret, size_t *ret_len)
{
        struct avro_writer *w;
        char num[24];
        int r;

        r = avro_writer_new(MANIFEST_LIST_SCHEMA, codec, &w);
        if (r < 0)
                return r;
        snprintf(num, sizeof(num), "%" PRId64, snapshot_id);
        r = avro_writer_set_meta(w, "snapshot-id", num);
        if (parent_id)
                snprintf(num, sizeof(num), "%" PRId64, *parent_id);
        if (r == 0)
                r = avro_writer_set_meta(w, "parent-snapshot-id", parent_id ? num : "null");
        snprintf(num, sizeof(num), "%" PRId64, sequence_number);
        if (r == 0)
                r = avro_writer_set_meta(w, "sequence-number", num);
        if (r == 0)
                r = avro_writer_set_meta(w, "format-version", "2");
        for (size_t i = 0; r == 0 && i < n; i++) {
                const struct ice_manifest_file *m = &files[i];
                struct avro_buf *b = avro_writer_datum(w);
                /* new manifests take this snapshot's numbers */
                bool fresh = m->sequence_number < 0;
                int64_t seq = fresh ? sequence_number : m->sequence_number;
                int64_t min = m->min_sequence_number < seq ? m->min_sequence_number : seq;

                if (!m->path || m->length < 0 || m->added_files < 0 || m->existing_files < 0 ||
                    m->deleted_files < 0) {
                        r = -EINVAL;
                        break;
                }
                avro_put_string(b, m->path);
                avro_put_long(b, m->length);
                avro_put_long(b, m->spec_id);
                avro_put_long(b, m->content);
                avro_put_long(b, seq);
                avro_put_long(b, fresh ? min : m->min_sequence_number);
                avro_put_long(b, fresh || m->added_snapshot_id < 0 ? snapshot_id
                                                                   : m->added_snapshot_id);
                avro_put_long(b, m->added_files);
                avro_put_long(b, m->existing_files);
                avro_put_long(b, m->deleted_files);
                avro_put_long(b, m->added_rows);
                avro_put_long(b, m->existing_rows);
                avro_put_long(b, m->deleted_rows);
                avro_put_long(b, m->has_partitions);
                if (m->has_partitions) {
                        if (m->n_partitions)
                                avro_put_long(b, (int64_t)m->n_partitions);
                        for (size_t k = 0; k < m->n_partitions; k++) {
                                const struct ice_field_summary *p = &m->partitions[k];

                                avro_put_bool(b, p->contains_null);
                                avro_put_long(b, p->contains_nan >= 0);
                                if (p->contains_nan >= 0)
                                        avro_put_bool(b, p->contains_nan);
                                put_opt_bytes(b, p->lower, p->lower_len);
                                put_opt_bytes(b, p->upper, p->upper_len);
                        }
                        avro_put_long(b, 0);
                }
                put_opt_bytes(b, m->key_metadata, m->key_metadata_len);
                r = avro_writer_end_datum(w);
        }
        if (r == 0)
                r = avro_writer_finish(w, ret, ret_len);
        avro_writer_free(w);
        return r;
}

/* Reading, by field id. */

static int err_set(char *err, size_t errsize, int r, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int err_set(char *err, size_t errsize, int r, const char *fmt, ...)
{
        va_list ap;

        if (err && errsize) {
                va_start(ap, fmt);
                vsnprintf(err, errsize, fmt, ap);
                va_end(ap);
        }
        return r;
}

/* An int or long field; false when absent or null. */
static bool get_num(const struct avro_value *rec, int32_t id, int64_t *ret)
{
        const struct avro_value *v = avro_value_field_by_id(rec, id);

        if (avro_value_is_null(v))
                return false;
        if (v->schema->type == AVRO_INT)
                *ret = v->u.i;
        else if (v->schema->type == AVRO_LONG)
                *ret = v->u.l;
        else
                return false;
        return true;
}

static int get_bytes(const struct avro_value *rec, int32_t id, uint8_t **ret, size_t *ret_len)
{
        const struct avro_value *v = avro_value_field_by_id(rec, id);

        *ret = NULL;
        *ret_len = 0;
        if (avro_value_is_null(v))
                return 0;
        if (v->schema->type != AVRO_BYTES && v->schema->type != AVRO_FIXED)
                return -EBADMSG;
        *ret_len = v->u.bytes.len;
        return dup_bytes(v->u.bytes.ptr, v->u.bytes.len, ret);
}

static int read_summaries(const struct avro_value *rec, struct ice_manifest_file *m)
{
        const struct avro_value *a = avro_value_field_by_id(rec, 507);
        int r;

        if (avro_value_is_null(a))
                return 0;
        if (a->schema->type != AVRO_ARRAY)
                return -EBADMSG;
        m->has_partitions = true;
        if (a->u.list.n == 0)
                return 0;
        m->partitions = floe_calloc(a->u.list.n, sizeof(*m->partitions));
        if (!m->partitions)
                return -ENOMEM;
        for (size_t i = 0; i < a->u.list.n; i++) {
                const struct avro_value *s = &a->u.list.items[i], *v;
                struct ice_field_summary *p = &m->partitions[i];

                m->n_partitions = i + 1;
                v = avro_value_field_by_id(s, 509);
                if (avro_value_is_null(v) || v->schema->type != AVRO_BOOLEAN)
                        return -EBADMSG;
                p->contains_null = v->u.b;
                v = avro_value_field_by_id(s, 518);
                p->contains_nan = -1;
                if (!avro_value_is_null(v) && v->schema->type == AVRO_BOOLEAN)
                        p->contains_nan = v->u.b;
                r = get_bytes(s, 510, &p->lower, &p->lower_len);
                if (r == 0)
                        r = get_bytes(s, 511, &p->upper, &p->upper_len);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int read_one(const struct avro_value *rec, struct ice_manifest_file *m, char *err,
                    size_t errsize)
{
        const struct avro_value *path = avro_value_field_by_id(rec, 500);
        int64_t v;
        int r;

        if (avro_value_is_null(path) || path->schema->type != AVRO_STRING ||
            memchr(path->u.bytes.ptr, 0, path->u.bytes.len))
                return err_set(err, errsize, -EBADMSG, "manifest_path missing");
        m->path = floe_strndup((const char *)path->u.bytes.ptr, path->u.bytes.len);
        if (!m->path)
                return -ENOMEM;
        if (!get_num(rec, 501, &m->length) || m->length < 0 || !get_num(rec, 502, &v) ||
            !get_num(rec, 503, &m->added_snapshot_id))
                return err_set(err, errsize, -EBADMSG, "%s: a required field is missing", m->path);
        m->spec_id = (int32_t)v;
        /* v1 lists have no content or sequence numbers: 0 (spec Appendix E) */
        m->content = get_num(rec, 517, &v) ? (int)v : 0;
        if (!get_num(rec, 515, &m->sequence_number))
                m->sequence_number = 0;
        if (!get_num(rec, 516, &m->min_sequence_number))
                m->min_sequence_number = 0;
        m->added_files = get_num(rec, 504, &v) ? (int32_t)v : -1;
        m->existing_files = get_num(rec, 505, &v) ? (int32_t)v : -1;
        m->deleted_files = get_num(rec, 506, &v) ? (int32_t)v : -1;
        m->added_rows = get_num(rec, 512, &v) ? v : -1;
        m->existing_rows = get_num(rec, 513, &v) ? v : -1;
        m->deleted_rows = get_num(rec, 514, &v) ? v : -1;
        if (m->content < 0 || m->content > 1 || m->sequence_number < 0)
                return err_set(err, errsize, -EBADMSG, "%s: bad content or sequence number",
                               m->path);
        r = read_summaries(rec, m);
        if (r == 0)
                r = get_bytes(rec, 519, &m->key_metadata, &m->key_metadata_len);
        if (r < 0)
                return err_set(err, errsize, r, "%s: bad partition summaries", m->path);
        return 0;
}

int ice_manifest_list_read(const uint8_t *data, size_t len, struct ice_manifest_file **ret,
                           size_t *ret_n, char *err, size_t errsize)
{
        struct ice_manifest_file *files = NULL;
        struct avro_reader *rd;
        const struct avro_value *v;
        char why[200];
        size_t n = 0;
        int r;

        if (err && errsize)
                err[0] = '\0';
        r = avro_reader_open(data, len, NULL, &rd, why, sizeof(why));
        if (r < 0)
                return err_set(err, errsize, r, "manifest list: %s", why);
        if (avro_reader_schema(rd)->type != AVRO_RECORD ||
            !avro_schema_field_by_id(avro_reader_schema(rd), 500, NULL)) {
                avro_reader_free(rd);
                return err_set(err, errsize, -EBADMSG, "not a manifest list");
        }
        while ((r = avro_reader_next(rd, &v)) > 0) {
                struct ice_manifest_file *more = floe_reallocarray(files, n + 1, sizeof(*more));

                if (!more) {
                        r = -ENOMEM;
                        break;
                }
                files = more;
                files[n] = (struct ice_manifest_file){0};
                n++;
                r = read_one(v, &files[n - 1], err, errsize);
                if (r < 0)
                        break;
        }
        if (r < 0 && err && errsize && !err[0])
                err_set(err, errsize, r, "manifest list: %s", avro_reader_error(rd));
        avro_reader_free(rd);
        if (r < 0) {
                ice_manifest_files_free(files, n);
                return r;
        }
        *ret = files;
        *ret_n = n;
        return 0;
}
