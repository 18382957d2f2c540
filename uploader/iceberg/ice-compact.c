/* SPDX-License-Identifier: Apache-2.0 */
/* Compaction: the small files of a partition read back and written again as files of the
 * target size, committed as one replace snapshot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "ice-maint.h"
#include "ice-writer-internal.h"
#include "store.h"

#define ENC(e) (UINT32_C(1) << PARQUET_ENC_##e)
/* The encodings ice_pq_read_chunk() decodes. */
#define DECODED                                                                            \
        (ENC(PLAIN) | ENC(PLAIN_DICTIONARY) | ENC(RLE) | ENC(BIT_PACKED) |                 \
         ENC(DELTA_BINARY_PACKED) | ENC(DELTA_LENGTH_BYTE_ARRAY) | ENC(DELTA_BYTE_ARRAY) | \
         ENC(RLE_DICTIONARY) | ENC(BYTE_STREAM_SPLIT))

struct cand {
        struct ice_data_file file;
        char *part; /* "<spec id>:<partition path>" */
};

struct plan {
        struct ice_writer *w;
        uint64_t small;
        struct cand *c;
        size_t n, cap;
        int err;
};

static int collect(void *ud, const struct ice_manifest_file *mf, const struct ice_manifest_entry *e)
{
        struct plan *p = ud;
        const struct ice_partition_spec *spec = ice_metadata_spec(p->w->t->md, mf->spec_id);
        const struct ice_data_file *f = &e->file;
        char path[2048];
        struct cand *c;
        size_t n;
        int r;

        if (f->content != ICE_CONTENT_DATA || !f->format || strcmp(f->format, "PARQUET") != 0 ||
            (uint64_t)f->file_size >= p->small || !spec ||
            ice_partition_path(spec, f->partition, f->n_partition, path, sizeof(path)) < 0)
                return 0;
        if (p->n == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 64;

                c = floe_reallocarray(p->c, cap, sizeof(*c));
                if (!c)
                        return -ENOMEM;
                p->c = c;
                p->cap = cap;
        }
        c = &p->c[p->n];
        *c = (struct cand){0};
        r = ice_data_file_copy(f, &c->file);
        if (r < 0)
                return r;
        c->file.spec_id = mf->spec_id;
        n = strlen(path) + 16;
        c->part = floe_malloc(n);
        if (!c->part) {
                ice_data_file_clear(&c->file);
                return -ENOMEM;
        }
        snprintf(c->part, n, "%d:%s", (int)mf->spec_id, path);
        p->n++;
        return 0;
}

static int cmp_cand(const void *a, const void *b)
{
        const struct cand *x = a, *y = b;
        int c = strcmp(x->part, y->part);

        return c ? c : strcmp(x->file.path, y->file.path);
}

static bool chosen(const struct ice_compact_opts *o, const char *part)
{
        const char *path = strchr(part, ':') + 1;

        if (o->n_partitions == 0)
                return true;
        for (size_t i = 0; i < o->n_partitions; i++)
                if (strcmp(o->partitions[i], path) == 0)
                        return true;
        return false;
}

/* A file that compaction can read: its footer, and per writer column the leaf (or -1). */
struct readable {
        struct ice_pq_src src;
        char key[2048];
        struct parquet_footer *f;
        int *leaf_of;
};

static void readable_clear(struct readable *rd)
{
        parquet_footer_free(rd->f);
        floe_free(rd->leaf_of);
        rd->f = NULL;
        rd->leaf_of = NULL;
}

static int check_file(struct ice_writer *w, const struct ice_data_file *df, struct readable *rd)
{
        _cleanup_free_ int32_t *ids = NULL;
        _cleanup_free_ enum parquet_kind *kinds = NULL;
        char err[256];
        bool by_name;
        int r;

        *rd = (struct readable){.src = {.fd = -1, .store = w->store}};
        rd->src.key = rd->key;
        rd->src.size = (uint64_t)df->file_size;
        r = lake_store_key(w->store, df->path, rd->key, sizeof(rd->key));
        if (r == 0)
                r = ice_pq_footer(&rd->src, &rd->f, err, sizeof(err));
        if (r < 0)
                return r;
        ids = floe_calloc(rd->f->n_leaves + 1, sizeof(*ids));
        kinds = floe_calloc(rd->f->n_leaves + 1, sizeof(*kinds));
        rd->leaf_of = floe_calloc(w->n_cols + 1, sizeof(*rd->leaf_of));
        if (!ids || !kinds || !rd->leaf_of)
                return -ENOMEM;
        r = ice_pq_match(rd->f, w->t->md, ids, kinds, &by_name, err, sizeof(err));
        if (r < 0)
                return r;
        for (size_t c = 0; c < w->n_cols; c++) {
                rd->leaf_of[c] = -1;
                for (size_t l = 0; l < rd->f->n_leaves; l++)
                        if (ids[l] == w->cols[c].field_id)
                                rd->leaf_of[c] = (int)l;
        }
        for (size_t g = 0; g < rd->f->n_row_groups; g++) {
                if (rd->f->row_groups[g].num_rows > (int64_t)(16 << 20))
                        return -EOPNOTSUPP; /* ice_pq_read_chunk()'s limit */
                for (size_t l = 0; l < rd->f->n_leaves; l++) {
                        const struct parquet_chunk *ch = &rd->f->row_groups[g].columns[l];

                        if ((ch->codec != PARQUET_CODEC_UNCOMPRESSED &&
                             ch->codec != PARQUET_CODEC_SNAPPY && ch->codec != PARQUET_CODEC_GZIP &&
                             ch->codec != PARQUET_CODEC_ZSTD) ||
                            (ch->encodings & ~DECODED) || ch->file_path)
                                return -EOPNOTSUPP;
                }
        }
        /* a column the writer cannot write would lose its values */
        for (size_t l = 0; l < rd->f->n_leaves; l++) {
                bool written = false;

                for (size_t c = 0; c < w->n_cols && !written; c++)
                        written = ids[l] == w->cols[c].field_id;
                if (!written)
                        return -EOPNOTSUPP;
        }
        return 0;
}

/* Every row of a file into the writer, a row group at a time. */
static int copy_rows(struct ice_writer *w, struct readable *rd, char *err, size_t errsize)
{
        _cleanup_free_ struct ice_pq_column *cols = floe_calloc(w->n_cols + 1, sizeof(*cols));
        _cleanup_free_ struct parquet_values *v = floe_calloc(w->n_cols + 1, sizeof(*v));
        _cleanup_free_ uint8_t *nulls = NULL;
        int r = 0;

        if (!cols || !v)
                return -ENOMEM;
        for (size_t g = 0; r == 0 && g < rd->f->n_row_groups; g++) {
                size_t n = (size_t)rd->f->row_groups[g].num_rows;

                floe_free(nulls);
                nulls = floe_calloc(n + 1, 16);
                if (!nulls)
                        return -ENOMEM;
                for (size_t c = 0; r == 0 && c < w->n_cols; c++) {
                        v[c] = (struct parquet_values){.data = nulls, .valid = nulls};
                        if (rd->leaf_of[c] < 0)
                                continue; /* a column the file does not have: null */
                        r = ice_pq_read_chunk(&rd->src, rd->f, g, (size_t)rd->leaf_of[c],
                                              w->cols[c].kind, &cols[c], err, errsize);
                        v[c] = (struct parquet_values){.data = cols[c].data,
                                                       .valid = cols[c].valid};
                }
                if (r == 0)
                        r = ice_writer_write(w, v, n);
                for (size_t c = 0; c < w->n_cols; c++)
                        ice_pq_column_clear(&cols[c]);
        }
        return r;
}

static int run(struct plan *p, const struct ice_compact_opts *o, struct ice_compact_result *res,
               struct ice_data_file **ret_removed, size_t *ret_n, char *err, size_t errsize)
{
        size_t min = o->min_files ? o->min_files : 2, n_rm = 0;
        struct ice_data_file *rm = floe_calloc(p->n + 1, sizeof(*rm));
        struct readable *rd = floe_calloc(p->n + 1, sizeof(*rd));
        int r = 0;

        if (!rm || !rd) {
                floe_free(rm);
                floe_free(rd);
                return -ENOMEM;
        }
        qsort(p->c, p->n, sizeof(*p->c), cmp_cand);
        for (size_t a = 0, b; r == 0 && a < p->n; a = b) {
                size_t ok = 0;

                for (b = a; b < p->n && strcmp(p->c[a].part, p->c[b].part) == 0; b++)
                        ;
                if (!chosen(o, p->c[a].part) || b - a < min)
                        continue;
                for (size_t i = a; i < b; i++) {
                        int c = check_file(p->w, &p->c[i].file, &rd[i]);

                        if (c == -ENOMEM) {
                                r = c;
                                break;
                        }
                        if (c < 0) {
                                readable_clear(&rd[i]);
                                res->skipped++;
                        } else {
                                ok++;
                        }
                }
                if (r < 0 || ok < min)
                        continue;
                res->partitions++;
                for (size_t i = a; r == 0 && i < b; i++) {
                        if (!rd[i].f)
                                continue;
                        r = copy_rows(p->w, &rd[i], err, errsize);
                        if (r < 0 && !err[0])
                                snprintf(err, errsize, "%s", ice_writer_error(p->w));
                        if (r < 0) {
                                size_t l = strlen(err);

                                snprintf(err + l, errsize - l, " (%s)", p->c[i].file.path);
                                break;
                        }
                        rm[n_rm++] = p->c[i].file;
                        p->c[i].file = (struct ice_data_file){0};
                        res->files_in++;
                        res->rows += (uint64_t)rm[n_rm - 1].record_count;
                        res->bytes_in += (uint64_t)rm[n_rm - 1].file_size;
                }
                if (r == 0)
                        r = ice_writer_finish_files(p->w);
        }
        for (size_t i = 0; i < p->n; i++)
                readable_clear(&rd[i]);
        floe_free(rd);
        *ret_removed = rm;
        *ret_n = n_rm;
        return r;
}

int ice_compact(struct lake_store *store, struct lake_catalog *catalog, const char *ns,
                const char *table, const struct ice_compact_opts *o, struct ice_compact_result *ret,
                char *err, size_t errsize)
{
        struct ice_writer_opts wo = {.target_file_bytes = o->target_bytes};
        struct ice_compact_result res = {0};
        struct ice_writer_result wr;
        struct ice_data_file *rm = NULL;
        struct plan p = {0};
        size_t n_rm = 0;
        int r;

        err[0] = '\0';
        r = ice_writer_open(store, catalog, ns, table, &wo, &p.w, err, errsize);
        if (r < 0)
                return r;
        p.small = o->small_bytes ? o->small_bytes : p.w->target / 4 * 3;
        r = ice_table_scan(p.w->t, -1, true, collect, &p);
        if (r < 0)
                snprintf(err, errsize, "%s", p.w->t->error[0] ? p.w->t->error : strerror(-r));
        if (r == 0)
                r = run(&p, o, &res, &rm, &n_rm, err, errsize);
        if (r == 0 && n_rm > 0) {
                struct ice_writer_commit c = {
                        .removed = rm,
                        .n_removed = n_rm,
                        .summary = o->summary,
                        .n_summary = o->n_summary,
                };

                r = ice_writer_commit(p.w, &c, &wr);
                if (r < 0) {
                        snprintf(err, errsize, "%s", ice_writer_error(p.w));
                } else {
                        res.snapshot_id = wr.snapshot_id;
                        res.files_out = wr.files;
                        res.bytes_out = wr.bytes;
                        res.retries = wr.retries;
                }
        } else if (r < 0 && !err[0]) {
                snprintf(err, errsize, "%s",
                         ice_writer_error(p.w)[0] ? ice_writer_error(p.w) : strerror(-r));
        }
        for (size_t i = 0; i < n_rm; i++)
                ice_data_file_clear(&rm[i]);
        floe_free(rm);
        for (size_t i = 0; i < p.n; i++) {
                ice_data_file_clear(&p.c[i].file);
                floe_free(p.c[i].part);
        }
        floe_free(p.c);
        ice_writer_free(p.w); /* aborts (deletes) what a failure left */
        if (r < 0)
                return r;
        *ret = res;
        return 0;
}
